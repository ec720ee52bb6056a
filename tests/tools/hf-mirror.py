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
      --log appends one JSON line per request (method, path, range, status,
      authorization seen or not, body bytes sent).
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
            json.dump({"models": models}, f, indent=1)
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
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    n = min(left, CHUNK)
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
