#!/usr/bin/env python3
"""Load generator for bench/gpu.sh (standard library only).

Requests are non-streamed OpenAI completions with ignore_eos, so every
request decodes exactly max_tokens tokens (random-weight models emit byte
tokens that a stream may hold back as incomplete UTF-8, so counting stream
chunks would undercount); tokens are the server's usage.completion_tokens.

  gpu-client.py decode URL_A URL_B MODEL ROUNDS MAX_TOKENS
      batch 1: ROUNDS requests to each server, alternating A, B, B, A...;
      per server the median of completion_tokens / client wall time and
      of the server's own timings.predicted_per_second, as JSON
  gpu-client.py concurrent URL MODEL STREAMS MAX_TOKENS
      STREAMS requests at once (one connection each); aggregate tokens/s =
      all completion tokens / wall time from the first request sent to the
      last answer, as JSON
"""
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

PROMPT = "The quick brown fox jumps over the lazy dog. Once upon a time"


def complete(url, model, max_tokens, c=None):
    u = urllib.parse.urlparse(url)
    own = c is None
    if own:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({"model": model, "prompt": PROMPT, "max_tokens": max_tokens,
                       "ignore_eos": True, "temperature": 0,
                       "cache_prompt": False})
    for attempt in (0, 1):
        t0 = time.perf_counter()
        try:
            c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            break
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # llama-server closes a kept connection idle for 5 s (its
            # default; lemon keeps one 30 s): the alternating decode left
            # the direct server's idle through two 70B requests on Vulkan.
            # Reconnect once and time the request from there.
            if own or attempt:
                raise
            c.close()
    wall = time.perf_counter() - t0
    if own:
        c.close()
    if r.status != 200:
        raise RuntimeError("status %d: %s" % (r.status, data[:200]))
    j = json.loads(data)
    n = j["usage"]["completion_tokens"]
    server = j.get("timings", {}).get("predicted_per_second")
    return n, wall, server


def decode(a, b, model, rounds, max_tokens):
    conns = {}
    for url in (a, b):
        u = urllib.parse.urlparse(url)
        conns[url] = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    res = {a: {"client": [], "server": []}, b: {"client": [], "server": []}}
    for url in (a, b, a, b):  # warm-up, not recorded
        complete(url, model, 16, conns[url])
    for i in range(rounds):
        for url in ((a, b) if i % 2 == 0 else (b, a)):
            n, wall, server = complete(url, model, max_tokens, conns[url])
            if n != max_tokens:
                raise RuntimeError("%s decoded %d of %d tokens" % (url, n, max_tokens))
            res[url]["client"].append(n / wall)
            if server:
                res[url]["server"].append(server)
    out = {}
    for url, name in ((a, "a"), (b, "b")):
        r = res[url]
        out[name] = {"url": url, "n": len(r["client"]),
                     "client_tps_median": statistics.median(r["client"]),
                     "server_tps_median": statistics.median(r["server"]) if r["server"] else None,
                     "client_tps": [round(x, 2) for x in r["client"]]}
    return out


def concurrent(url, model, streams, max_tokens):
    tokens, errors = [], []
    lock = threading.Lock()

    def one():
        try:
            n, _, _ = complete(url, model, max_tokens)
            with lock:
                tokens.append(n)
        except Exception as e:  # reported, never hidden
            with lock:
                errors.append(str(e)[:200])

    threads = [threading.Thread(target=one) for _ in range(streams)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"streams": streams, "errors": len(errors), "first_errors": errors[:3],
            "tokens": sum(tokens), "wall_s": wall,
            "tokens_per_s": sum(tokens) / wall if wall > 0 else 0}


def main():
    mode = sys.argv[1]
    if mode == "decode":
        print(json.dumps(decode(sys.argv[2], sys.argv[3], sys.argv[4],
                                int(sys.argv[5]), int(sys.argv[6]))))
    elif mode == "concurrent":
        print(json.dumps(concurrent(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                                    int(sys.argv[5]))))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
