#!/usr/bin/env python3
"""Loopback HTTP mirror for lemon's provisioning tests and benchmark.

Serves the files of one directory on 127.0.0.1 (port 0: the kernel picks
one; the port is printed as the first line of stdout), with byte ranges,
and with knobs that make it misbehave the way real servers do:

  --drop-once-at N  the first response for an asset closes the connection
                    after N body bytes (Content-Length still promises all)
  --drop-every-at N every response closes after N body bytes
  --not-found NAME  answer 404 for NAME (repeatable)
  --tamper NAME     flip one byte in the middle of NAME as it is served
  --rate BPS        throttle bodies to about BPS bytes per second
  --no-range        ignore Range headers (answer 200 with the whole file)
  --log FILE        append one JSON line per request (path, range, status,
                    bytes sent)

The knobs can also be changed while it runs: a JSON object in the file
named by --control (keys as above without dashes, e.g. {"tamper": ["x"]})
is re-read on every request.
"""
import argparse
import http.server
import json
import os
import socket
import sys
import threading
import time

CHUNK = 64 * 1024


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.dropped = set()

    def knobs(self):
        k = {
            "drop_once_at": self.args.drop_once_at,
            "drop_every_at": self.args.drop_every_at,
            "not_found": list(self.args.not_found),
            "tamper": list(self.args.tamper),
            "rate": self.args.rate,
            "no_range": self.args.no_range,
        }
        if self.args.control and os.path.exists(self.args.control):
            try:
                with open(self.args.control) as f:
                    k.update(json.load(f))
            except (OSError, ValueError):
                pass
        return k

    def log(self, entry):
        if not self.args.log:
            return
        with self.lock, open(self.args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


def parse_range(header, size):
    """(start, end) inclusive for 'bytes=a-b' / 'bytes=a-', or None"""
    if not header or not header.startswith("bytes="):
        return None
    spec = header[6:].split(",")[0].strip()
    a, _, b = spec.partition("-")
    if not a:
        return None
    start = int(a)
    end = int(b) if b else size - 1
    return start, min(end, size - 1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "lemon-test-mirror"

    def log_message(self, fmt, *args):
        pass

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        st = self.server.state
        knobs = st.knobs()
        name = self.path.split("?")[0].lstrip("/")
        entry = {"path": name, "range": self.headers.get("Range"), "t": time.time()}
        path = os.path.join(self.server.root, name)
        if "/" in name or name in knobs["not_found"] or not os.path.isfile(path):
            entry.update(status=404, sent=0)
            st.log(entry)
            self.send_error(404)
            return
        size = os.path.getsize(path)
        rng = None if knobs["no_range"] else parse_range(self.headers.get("Range"), size)
        if rng is not None and rng[0] >= size:
            entry.update(status=416, sent=0)
            st.log(entry)
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % size)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = rng if rng else (0, size - 1)
        length = end - start + 1
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if head:
            entry.update(status=200, sent=0)
            st.log(entry)
            return
        limit = length
        with st.lock:
            if knobs["drop_once_at"] is not None and name not in st.dropped \
                    and name != "manifest.json":
                st.dropped.add(name)
                limit = min(limit, int(knobs["drop_once_at"]))
        if knobs["drop_every_at"] is not None and name != "manifest.json":
            limit = min(limit, int(knobs["drop_every_at"]))
        tamper_at = size // 2 if name in knobs["tamper"] else -1
        rate = knobs["rate"]
        sent = 0
        t0 = time.monotonic()
        try:
            with open(path, "rb") as f:
                f.seek(start)
                while sent < limit:
                    buf = bytearray(f.read(min(CHUNK, limit - sent)))
                    if not buf:
                        break
                    off = start + sent
                    if off <= tamper_at < off + len(buf):
                        buf[tamper_at - off] ^= 0xFF
                    self.wfile.write(buf)
                    sent += len(buf)
                    if rate:
                        ahead = sent / float(rate) - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        entry.update(status=206 if rng else 200, sent=sent, start=start,
                     t_end=time.time())
        st.log(entry)
        if sent < length:
            # drop: end the connection with the body short of its
            # Content-Length; a clean FIN so the client has every byte sent
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--drop-once-at", type=int)
    ap.add_argument("--drop-every-at", type=int)
    ap.add_argument("--not-found", action="append", default=[])
    ap.add_argument("--tamper", action="append", default=[])
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--no-range", action="store_true")
    ap.add_argument("--log")
    ap.add_argument("--control")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.root = os.path.abspath(args.dir)
    srv.state = State(args)
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
