#!/usr/bin/env python3
"""Loopback fake of GitHub's release API and its object store, for lemon's
provisioning tests (tests/integration/test_github.sh, test_pin_backends.sh)
and bench/provision.sh.

Two real HTTP servers:
  - the API host on 127.0.0.1 answers
      GET /repos/{owner}/{repo}/releases/tags/{tag}
    with release JSON as GitHub shapes it (tag_name, assets[] with name,
    size, state, browser_download_url, digest "sha256:<hex>"), an ETag and
    304 for a matching If-None-Match; it also stands for github.com:
      GET /{owner}/{repo}/releases/download/{tag}/{name}
    answers 302 to the object store, as github.com does;
  - the object store on 127.0.0.2 (a second loopback address, so a second
    host to curl) serves the files with byte ranges.

What it serves comes from a JSON control file re-read on every request
(--control), so a test changes it between runs:
  {"releases": {"owner/repo": {"tag": [
       {"name": "asset name", "file": "file in --dir",
        "digest": "auto" | "none" | "flip" | "sha256:<hex>"}]}},
   "rate_limit": {"status": 403, "reset": <epoch>} or
                 {"status": 429, "retry_after": <seconds>},
                 ("times": N answers only the first N requests so)
   "server_error": {"status": 502, "times": N},  # the first N release
                        # requests answer that status
   "drop_once_at": N,   # the object store closes the first response for
                        # each file after N body bytes
   "rate": BPS}         # the object store throttles bodies
"digest": "auto" is the file's real SHA-256, "flip" the same with its first
hex digit changed, "none" leaves the digest out (assets uploaded before
GitHub computed digests).

The ports are printed on stdout as "API_PORT STORE_PORT". --log FILE gets a
JSON line per request: host ("api" or "store"), path, status, the request's
Authorization, Accept, X-GitHub-Api-Version, If-None-Match and Range
headers, bytes sent.
"""
import argparse
import hashlib
import http.server
import json
import os
import socketserver
import sys
import threading
import time

CHUNK = 64 * 1024


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.dropped = set()
        self.limited = {}
        self.digests = {}
        self.api_port = 0
        self.store_port = 0

    def control(self):
        try:
            with open(self.args.control) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def sha256(self, path):
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        with self.lock:
            if key not in self.digests:
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for b in iter(lambda: f.read(1 << 20), b""):
                        h.update(b)
                self.digests[key] = h.hexdigest()
            return self.digests[key]

    def log(self, entry):
        if not self.args.log:
            return
        with self.lock, open(self.args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Base(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def entry(self, host):
        h = self.headers
        return {"host": host, "path": self.path, "t": time.time(),
                "authorization": h.get("Authorization"),
                "accept": h.get("Accept"),
                "api_version": h.get("X-GitHub-Api-Version"),
                "if_none_match": h.get("If-None-Match"),
                "range": h.get("Range"), "sent": 0}

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Api(Base):
    server_version = "github-api-fake"

    def do_GET(self):
        st = self.server.state
        ctl = st.control()
        e = self.entry("api")
        parts = self.path.split("?")[0].strip("/").split("/")
        try:
            if len(parts) == 6 and parts[0] == "repos" and parts[3:5] == ["releases", "tags"]:
                self.release(st, ctl, e, parts[1] + "/" + parts[2], parts[5])
            elif len(parts) == 6 and parts[2:4] == ["releases", "download"]:
                self.download(st, ctl, e, parts[0] + "/" + parts[1], parts[4], parts[5])
            else:
                e["status"] = 404
                self.reply(404, b'{"message": "Not Found"}')
        finally:
            st.log(e)

    def assets(self, ctl, repo, tag):
        return ctl.get("releases", {}).get(repo, {}).get(tag)

    def release(self, st, ctl, e, repo, tag):
        err = ctl.get("server_error")
        if err:
            key = "err" + json.dumps(err, sort_keys=True)
            with st.lock:
                st.limited[key] = st.limited.get(key, 0) + 1
                hit = st.limited[key] <= err.get("times", 1 << 30)
            if hit:
                e["status"] = err.get("status", 502)
                self.reply(e["status"], b'{"message": "Server Error"}')
                return
        rl = ctl.get("rate_limit")
        if rl and "times" in rl:
            key = json.dumps(rl, sort_keys=True)
            with st.lock:
                st.limited[key] = st.limited.get(key, 0) + 1
                if st.limited[key] > rl["times"]:
                    rl = None
        if rl:
            e["status"] = rl.get("status", 403)
            hdrs = [("X-RateLimit-Limit", "60"), ("X-RateLimit-Used", "60")]
            if "retry_after" in rl:
                hdrs.append(("Retry-After", str(rl["retry_after"])))
            else:
                hdrs += [("X-RateLimit-Remaining", "0"),
                         ("X-RateLimit-Reset", str(rl["reset"]))]
            self.reply(e["status"], b'{"message": "API rate limit exceeded"}', hdrs)
            return
        listed = self.assets(ctl, repo, tag)
        if listed is None:
            e["status"] = 404
            self.reply(404, b'{"message": "Not Found"}')
            return
        out = []
        for i, a in enumerate(listed):
            path = os.path.join(st.args.dir, a["file"])
            sha = st.sha256(path)
            d = a.get("digest", "auto")
            item = {
                "url": "http://127.0.0.1:%d/repos/%s/releases/assets/%d" % (st.api_port, repo, 1000 + i),
                "id": 1000 + i, "name": a["name"], "label": "", "state": a.get("state", "uploaded"),
                "content_type": "application/gzip", "size": os.path.getsize(path),
                "download_count": 7, "created_at": "2026-11-01T00:00:00Z",
                "uploader": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
                "browser_download_url": "http://127.0.0.1:%d/%s/releases/download/%s/%s"
                % (st.api_port, repo, tag, a["name"]),
            }
            if d == "auto":
                item["digest"] = "sha256:" + sha
            elif d == "flip":
                item["digest"] = "sha256:" + ("0" if sha[0] != "0" else "1") + sha[1:]
            elif d != "none":
                item["digest"] = d
            out.append(item)
        body = json.dumps({"url": "http://127.0.0.1:%d/repos/%s/releases/1" % (st.api_port, repo),
                           "id": 1, "tag_name": tag, "name": tag, "draft": False,
                           "prerelease": False, "assets": out}, indent=1).encode()
        etag = '"%s"' % hashlib.sha256(body).hexdigest()[:40]
        if self.headers.get("If-None-Match") == etag:
            e["status"] = 304
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        e["status"] = 200
        e["sent"] = len(body)
        self.reply(200, body, [("Content-Type", "application/json; charset=utf-8"),
                               ("ETag", etag), ("X-RateLimit-Remaining", "59")])

    def download(self, st, ctl, e, repo, tag, name):
        for a in self.assets(ctl, repo, tag) or []:
            if a["name"] == name:
                e["status"] = 302
                loc = "http://127.0.0.2:%d/objects/%s?sig=fake" % (st.store_port, a["file"])
                self.reply(302, b"", [("Location", loc)])
                return
        e["status"] = 404
        self.reply(404, b"Not Found")


class Store(Base):
    server_version = "object-store-fake"

    def do_GET(self):
        st = self.server.state
        ctl = st.control()
        e = self.entry("store")
        try:
            self.serve(st, ctl, e)
        finally:
            st.log(e)

    def serve(self, st, ctl, e):
        name = self.path.split("?")[0]
        if not name.startswith("/objects/") or "/" in name[9:]:
            e["status"] = 404
            self.reply(404, b"")
            return
        name = name[9:]
        path = os.path.join(st.args.dir, name)
        if not os.path.isfile(path):
            e["status"] = 404
            self.reply(404, b"")
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng[6:].split("-")[0]:
            start = int(rng[6:].split("-")[0])
            if rng[6:].split("-")[1]:
                end = min(size - 1, int(rng[6:].split("-")[1]))
            if start >= size:
                e["status"] = 416
                self.reply(416, b"", [("Content-Range", "bytes */%d" % size)])
                return
        e["status"] = 206 if rng else 200
        self.send_response(e["status"])
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        limit = end - start + 1
        with st.lock:
            if ctl.get("drop_once_at") is not None and name not in st.dropped:
                st.dropped.add(name)
                limit = min(limit, int(ctl["drop_once_at"]))
                self.close_connection = True
        rate = ctl.get("rate")
        t0 = time.monotonic()
        with open(path, "rb") as f:
            f.seek(start)
            while e["sent"] < limit:
                buf = f.read(min(CHUNK, limit - e["sent"]))
                if not buf:
                    break
                try:
                    self.wfile.write(buf)
                except OSError:
                    return
                e["sent"] += len(buf)
                if rate:
                    ahead = e["sent"] / float(rate) - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        if e["sent"] < end - start + 1:
            self.close_connection = True


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="directory of the served files")
    ap.add_argument("--control", required=True, help="JSON control file (see above)")
    ap.add_argument("--log", help="append a JSON line per request")
    args = ap.parse_args()
    st = State(args)
    api = Server(("127.0.0.1", 0), Api)
    store = Server(("127.0.0.2", 0), Store)
    api.state = store.state = st
    st.api_port = api.server_address[1]
    st.store_port = store.server_address[1]
    threading.Thread(target=store.serve_forever, daemon=True).start()
    sys.stdout.write("%d %d\n" % (st.api_port, st.store_port))
    sys.stdout.flush()
    api.serve_forever()


if __name__ == "__main__":
    main()
