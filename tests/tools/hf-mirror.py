#!/usr/bin/env python3
"""Loopback Hugging Face-style file server for lemon's pull tests and bench.

  hf-mirror.py make DIR [--tiny PATH] [--big-mb N] [--registry FILE]
      writes test repos under DIR (DIR/<owner>/<repo>/<file>):
        lemon-test/tiny-GGUF/tiny.gguf          (PATH copied when given,
                                                 else a small synthetic GGUF)
        lemon-test/split-GGUF/tiny-split-0000{1,2}-of-00002.gguf
                                                (a llama.cpp-style split:
                                                 every part a GGUF with
                                                 split.no/count/tensors.count)
        lemon-test/tiny-real-split-GGUF/tiny-real-0000{1,2}-of-00002.gguf
                                                (with --tiny: PATH split in
                                                 two loadable parts)
        lemon-test/bad-GGUF/bad.gguf            (a GGUF header claiming 2^60
                                                 tensors: must be refused)
        lemon-test/big-GGUF/big.gguf            (with --big-mb, N MiB)
      and with --registry a lemon models.json naming them tiny, tiny-split,
      bad, missing (a file the server does not have) and big (no sha256:
      the server's X-Linked-Etag is the reference).

  hf-mirror.py serve DIR [--control FILE] [--log FILE]
      serves GET/HEAD /<owner>/<repo>/resolve/main/<file> on 127.0.0.1 with
      X-Linked-Etag (the file's SHA-256, as the hub sends for LFS files),
      X-Linked-Size, ETag and byte ranges; prints the port as the first line
      of stdout. Knobs, re-read from the JSON control file on each request:
        drop_once_at: N   the next GET of each file closes the connection
                          after N body bytes (Content-Length promises all)
        bad_sha: true     X-Linked-Etag and ETag announce a wrong digest
        require_token: T  answer 401 unless "Authorization: Bearer T"
        rate: N           send bodies at about N bytes per second (a pull
                          that takes long enough to race against)
      --log appends one JSON line per request (method, path, range, status,
      authorization seen or not, body bytes sent).

Acceptance by hand: the shipped registry's `tiny` is ggml-org/models-moved
tinyllamas/stories260K.gguf, which `make` also writes (from the same bytes as
lemon-test/tiny-GGUF/tiny.gguf):
  tests/tools/hf-mirror.py make /tmp/hub --tiny build/models/tiny.gguf
  tests/tools/hf-mirror.py serve /tmp/hub &      # prints the port M
  HF_ENDPOINT=http://127.0.0.1:M build/lemon pull tiny
Standard library only.
"""
import argparse
import hashlib
import http.server
import json
import os
import shutil
import struct
import sys
import threading
import time

CHUNK = 256 * 1024
ALIGN = 32
T_U16, T_I32, T_STR, T_U32 = 2, 5, 8, 4


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gguf_str(key) + struct.pack("<I", vtype)
    if vtype == T_STR:
        return out + gguf_str(value)
    return out + struct.pack({T_U16: "<H", T_I32: "<i", T_U32: "<I"}[vtype],
                             value)


def pad(n):
    return (ALIGN - n % ALIGN) % ALIGN


def write_gguf(path, tensors, meta, fill=None):
    """tensors: [(name, n_elements)] of F32; data is fill(n_bytes) or a
    deterministic pattern"""
    infos, off, sizes = [], 0, []
    for name, n in tensors:
        infos.append(gguf_str(name) + struct.pack("<I", 1) +
                     struct.pack("<Q", n) + struct.pack("<IQ", 0, off))
        size = n * 4
        sizes.append(size)
        off += size + pad(size)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    head += b"".join(meta) + b"".join(infos)
    head += b"\0" * pad(len(head))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head)
        for i, size in enumerate(sizes):
            left = size
            while left > 0:
                n = min(left, 4 << 20)
                if fill:
                    f.write(fill(n))
                else:
                    f.write(bytes([(i * 7 + 1) & 0xff]) * n)
                left -= n
            f.write(b"\0" * pad(size))
    os.replace(tmp, path)


def base_meta(name):
    return [kv("general.architecture", T_STR, "llama"),
            kv("general.name", T_STR, name),
            kv("general.alignment", T_U32, ALIGN)]


class Reader:
    """bounds-checked little-endian reader of a GGUF header"""
    SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8,
              12: 8}

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("truncated GGUF at offset %d" % self.pos)
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def string(self):
        return self.take(self.u64()).decode()

    def skip(self, vtype):
        if vtype in self.SCALAR:
            self.take(self.SCALAR[vtype])
        elif vtype == T_STR:
            self.take(self.u64())
        elif vtype == 9:
            etype, count = self.u32(), self.u64()
            if etype in self.SCALAR:
                self.take(self.SCALAR[etype] * count)
            else:
                for _ in range(count):
                    self.skip(etype)
        else:
            raise ValueError("unknown GGUF value type %d" % vtype)


def split_real(src, out_dir, prefix, n=2):
    """splits a real GGUF the way llama.cpp's split files are laid out: the
    first part keeps every key, each part holds split.no/count/
    tensors.count and a share of the tensors, offsets relative to its own
    data section"""
    with open(src, "rb") as f:
        r = Reader(f.read())
    if r.take(4) != b"GGUF" or r.u32() != 3:
        raise ValueError("%s: not a GGUF v3 file" % src)
    n_t, n_kv = r.u64(), r.u64()
    kvs, align = [], ALIGN
    for _ in range(n_kv):
        start = r.pos
        key = r.string()
        vtype = r.u32()
        vpos = r.pos
        r.skip(vtype)
        if key == "general.alignment":
            align = struct.unpack("<I", r.data[vpos:vpos + 4])[0]
        kvs.append(r.data[start:r.pos])
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.u32()
        dims = [r.u64() for _ in range(nd)]
        ttype, off = r.u32(), r.u64()
        infos.append((name, dims, ttype, off))
    data0 = r.pos + (align - r.pos % align) % align
    offs = sorted(i[3] for i in infos) + [len(r.data) - data0]
    size = {o: offs[k + 1] - o for k, o in enumerate(offs[:-1])}
    per = (n_t + n - 1) // n
    for i in range(n):
        part = infos[i * per:(i + 1) * per]
        meta = (kvs if i == 0 else []) + [
            kv("split.no", T_U16, i), kv("split.count", T_U16, n),
            kv("split.tensors.count", T_I32, n_t)]
        tinfo, blobs, off = [], [], 0
        for name, dims, ttype, o in part:
            tinfo.append(gguf_str(name) + struct.pack("<I", len(dims)) +
                         b"".join(struct.pack("<Q", d) for d in dims) +
                         struct.pack("<IQ", ttype, off))
            blobs.append(r.data[data0 + o:data0 + o + size[o]])
            off += size[o]
        head = b"GGUF" + struct.pack("<IQQ", 3, len(part), len(meta))
        head += b"".join(meta) + b"".join(tinfo)
        head += b"\0" * ((align - len(head) % align) % align)
        path = os.path.join(out_dir, "%s-%05d-of-%05d.gguf" % (prefix, i + 1, n))
        with open(path, "wb") as f:
            f.write(head + b"".join(blobs))


def make(a):
    root = a.dir
    tiny = os.path.join(root, "lemon-test", "tiny-GGUF")
    split = os.path.join(root, "lemon-test", "split-GGUF")
    for d in (tiny, split):
        os.makedirs(d, exist_ok=True)
    if a.tiny:
        shutil.copyfile(a.tiny, os.path.join(tiny, "tiny.gguf"))
    else:
        write_gguf(os.path.join(tiny, "tiny.gguf"),
                   [("token_embd.weight", 4096)], base_meta("tiny"))
    # the shipped registry's `tiny` (ggml-org/models-moved, stories260K)
    # served from the same bytes, so `HF_ENDPOINT=... lemon pull tiny`
    # works without a test registry
    shipped = os.path.join(root, "ggml-org", "models-moved", "tinyllamas")
    os.makedirs(shipped, exist_ok=True)
    shutil.copyfile(os.path.join(tiny, "tiny.gguf"),
                    os.path.join(shipped, "stories260K.gguf"))
    n = 2
    for i in range(n):
        meta = [kv("split.no", T_U16, i), kv("split.count", T_U16, n),
                kv("split.tensors.count", T_I32, n)]
        if i == 0:
            meta = base_meta("tiny-split") + meta
        write_gguf(os.path.join(split, "tiny-split-%05d-of-%05d.gguf"
                                % (i + 1, n)),
                   [("blk.%d.ffn_up.weight" % i, 8192 + i * 1024)], meta)
    models = [
        {"name": "tiny", "repo": "lemon-test/tiny-GGUF",
         "files": [{"file": "tiny.gguf"}], "labels": ["llm"]},
        {"name": "tiny-split", "repo": "lemon-test/split-GGUF",
         "files": [{"file": "tiny-split-%05d-of-%05d.gguf" % (i + 1, n)}
                   for i in range(n)], "labels": ["llm"]},
    ]
    if a.tiny:
        real = os.path.join(root, "lemon-test", "tiny-real-split-GGUF")
        os.makedirs(real, exist_ok=True)
        split_real(a.tiny, real, "tiny-real")
        models.append({"name": "tiny-real-split",
                       "repo": "lemon-test/tiny-real-split-GGUF",
                       "files": [{"file": "tiny-real-%05d-of-00002.gguf"
                                  % (i + 1)} for i in range(2)],
                       "labels": ["llm"]})
    bad = os.path.join(root, "lemon-test", "bad-GGUF")
    os.makedirs(bad, exist_ok=True)
    with open(os.path.join(bad, "bad.gguf"), "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 1 << 60, 0) + b"\0" * 64)
    models += [
        {"name": "bad", "repo": "lemon-test/bad-GGUF",
         "files": [{"file": "bad.gguf"}], "labels": ["llm"]},
        {"name": "missing", "repo": "lemon-test/bad-GGUF",
         "files": [{"file": "missing.gguf"}], "labels": ["llm"]},
    ]
    if a.big_mb:
        big = os.path.join(root, "lemon-test", "big-GGUF")
        os.makedirs(big, exist_ok=True)
        write_gguf(os.path.join(big, "big.gguf"),
                   [("token_embd.weight", a.big_mb * (1 << 18))],
                   base_meta("big"), fill=os.urandom)
        models.append({"name": "big", "repo": "lemon-test/big-GGUF",
                       "files": [{"file": "big.gguf"}], "labels": ["llm"]})
    for m in models:
        m["recipe"] = "llamacpp"
        m["source"] = "generated by tests/tools/hf-mirror.py make"
    if a.registry:
        with open(a.registry, "w") as f:
            json.dump({"schema": 1, "models": models}, f, indent=1)
    print(root)


class Files:
    """SHA-256 of served files, computed once per (path, size, mtime)"""

    def __init__(self):
        self.lock = threading.Lock()
        self.cache = {}

    def sha(self, path):
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        with self.lock:
            if key in self.cache:
                return self.cache[key]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                h.update(b)
        with self.lock:
            self.cache[key] = h.hexdigest()
        return self.cache[key]


def make_handler(a, files, dropped, lock):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def knobs(self):
            if a.control and os.path.exists(a.control):
                try:
                    with open(a.control) as f:
                        return json.load(f)
                except (OSError, ValueError):
                    pass
            return {}

        def log(self, status, sent, rng):
            if not a.log:
                return
            entry = {"method": self.command, "path": self.path,
                     "range": rng, "status": status, "bytes": sent,
                     "auth": self.headers.get("Authorization") is not None}
            with lock, open(a.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

        def fail(self, status, rng=None):
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.log(status, 0, rng)

        def resolve(self):
            parts = self.path.split("?")[0].split("/")
            # /owner/repo/resolve/main/file...
            if len(parts) < 6 or parts[3] != "resolve" or parts[4] != "main":
                return None
            rel = parts[1:3] + parts[5:]
            if any(p in ("", ".", "..") for p in rel):
                return None
            path = os.path.join(a.dir, *rel)
            return path if os.path.isfile(path) else None

        def serve(self, body):
            k = self.knobs()
            rng = self.headers.get("Range")
            tok = k.get("require_token")
            if tok and self.headers.get("Authorization") != "Bearer " + tok:
                return self.fail(401, rng)
            path = self.resolve()
            if path is None:
                return self.fail(404, rng)
            size = os.path.getsize(path)
            sha = files.sha(path)
            if k.get("bad_sha"):
                sha = hashlib.sha256(sha.encode()).hexdigest()
            start, end, status = 0, size - 1, 200
            if rng and rng.startswith("bytes="):
                s, _, e = rng[6:].partition("-")
                start = int(s)
                end = int(e) if e else size - 1
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return self.log(416, 0, rng)
                status = 206
            self.send_response(status)
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("X-Linked-Etag", '"%s"' % sha)
            self.send_header("X-Linked-Size", str(size))
            self.send_header("ETag", '"%s"' % sha)
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d"
                                 % (start, end, size))
            self.end_headers()
            if not body:
                return self.log(status, 0, rng)
            cut = None
            drop = k.get("drop_once_at")
            with lock:
                if drop is not None and path not in dropped:
                    dropped.add(path)
                    cut = int(drop)
            sent = 0
            rate = k.get("rate")
            t0 = time.monotonic()
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    n = min(left, CHUNK if not rate else 64 * 1024)
                    if cut is not None:
                        n = min(n, cut - sent)
                        if n <= 0:
                            break
                    b = f.read(n)
                    if not b:
                        break
                    try:
                        self.wfile.write(b)
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    sent += len(b)
                    left -= len(b)
                    if rate:
                        ahead = sent / float(rate) - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
            self.log(status, sent, rng)
            if cut is not None:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)

        def do_GET(self):
            self.serve(True)

        def do_HEAD(self):
            self.serve(False)

    return H


def serve(a):
    files, dropped, lock = Files(), set(), threading.Lock()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port),
                                          make_handler(a, files, dropped,
                                                       lock))
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--tiny", help="a real GGUF to serve as tiny.gguf")
    m.add_argument("--big-mb", type=int, default=0)
    m.add_argument("--registry", help="write a models.json here")
    s = sub.add_parser("serve")
    s.add_argument("dir")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--control")
    s.add_argument("--log")
    a = ap.parse_args()
    if a.cmd == "make":
        make(a)
    else:
        serve(a)


if __name__ == "__main__":
    sys.exit(main())
