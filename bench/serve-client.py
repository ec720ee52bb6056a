#!/usr/bin/env python3
"""Streaming benchmark client for bench/serve.sh (standard library only).

  alternate and paired keep one connection per server open, as real clients
  (the openai packages) do; concurrent opens one connection per stream.

  serve-client.py alternate URL_A URL_B ROUNDS MAX_TOKENS
      streams ROUNDS chat completions from each server, alternating A, B,
      A, B...; prints per-server medians of time to first token (request
      sent -> first content chunk) and decode tokens/s (content chunks
      after the first / time from first to last chunk) as JSON
  serve-client.py paired URL_A URL_B N
      N streaming requests to each, alternating; medians of the
      time to the response head and to the first content chunk, and the
      median of the paired differences A - B (the added latency)
  serve-client.py concurrent URL CLIENTS MAX_TOKENS
      CLIENTS streaming requests at once; prints errors, total content
      chunks and aggregate chunks/s as JSON
"""
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


_conns = {}


def conn(url):
    """one persistent connection per server, like real clients keep"""
    u = urllib.parse.urlparse(url)
    c = _conns.get(url)
    if c is None:
        c = _conns[url] = http.client.HTTPConnection(u.hostname, u.port,
                                                     timeout=300)
    return c


def stream(url, max_tokens, prompt="Tell me a story", keep=True):
    u = urllib.parse.urlparse(url)
    body = json.dumps({"model": "tiny", "stream": True, "max_tokens": max_tokens,
                       "ignore_eos": True, "temperature": 0,
                       "messages": [{"role": "user", "content": prompt}]})
    c = conn(url) if keep else http.client.HTTPConnection(u.hostname, u.port,
                                                          timeout=300)
    t0 = time.perf_counter()
    try:
        c.request("POST", "/v1/chat/completions", body,
                  {"Content-Type": "application/json"})
        r = c.getresponse()
    except (http.client.RemoteDisconnected, ConnectionError):
        # the server closed the kept connection: reconnect, as clients do
        c.close()
        _conns.pop(url, None)
        c = conn(url)
        t0 = time.perf_counter()
        c.request("POST", "/v1/chat/completions", body,
                  {"Content-Type": "application/json"})
        r = c.getresponse()
    th = time.perf_counter()
    if r.status != 200:
        raise RuntimeError("status %d" % r.status)
    first = last = None
    n = 0
    done = False
    while True:
        line = r.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        if line.startswith(b"data: [DONE]"):
            done = True
            break
        ev = json.loads(line[6:])
        if "error" in ev:
            raise RuntimeError(ev["error"]["message"])
        delta = ev["choices"][0].get("delta", {}) if ev.get("choices") else {}
        if delta.get("content"):
            now = time.perf_counter()
            if first is None:
                first = now
            last = now
            n += 1
    r.read()  # the rest of the chunked body, so the connection can be reused
    if not keep:
        c.close()
    if not done:
        raise RuntimeError("stream ended without [DONE]")
    return t0, first, last, n, th


def alternate(a, b, rounds, max_tokens):
    res = {a: {"ttft": [], "tps": []}, b: {"ttft": [], "tps": []}}
    for _ in range(2):  # warm-up, not recorded
        stream(a, 8)
        stream(b, 8)
    for i in range(rounds):
        for url in ((a, b) if i % 2 == 0 else (b, a)):
            t0, first, last, n, _ = stream(url, max_tokens)
            res[url]["ttft"].append((first - t0) * 1000)
            if n > 1 and last > first:
                res[url]["tps"].append((n - 1) / (last - first))
    out = {}
    for url, name in ((a, "a"), (b, "b")):
        out[name] = {"url": url,
                     "ttft_ms_median": statistics.median(res[url]["ttft"]),
                     "tokens_per_s_median": statistics.median(res[url]["tps"]),
                     "n": len(res[url]["ttft"])}
    return out


def once(url):
    t0, first, _, _, th = stream(url, 4)
    return (th - t0) * 1000, (first - t0) * 1000


def paired(a, b, n):
    ra, rb = [], []
    for _ in range(3):
        once(a)
        once(b)
    for _ in range(n):
        ra.append(once(a))
        rb.append(once(b))
    med = statistics.median
    return {"a_head_ms": med(x[0] for x in ra), "a_content_ms": med(x[1] for x in ra),
            "b_head_ms": med(x[0] for x in rb), "b_content_ms": med(x[1] for x in rb),
            "added_content_ms": med(x[1] - y[1] for x, y in zip(ra, rb)),
            "n": n}


def concurrent(url, clients, max_tokens):
    errors, counts, lock = [], [], threading.Lock()

    def one():
        try:
            _, _, _, n, _ = stream(url, max_tokens, "Hi", keep=False)
            with lock:
                counts.append(n)
        except Exception as e:  # noqa: BLE001 - every failure is counted
            with lock:
                errors.append(str(e))
    ts = [threading.Thread(target=one) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    return {"url": url, "clients": clients, "errors": len(errors),
            "first_errors": errors[:3], "chunks": sum(counts),
            "wall_s": wall, "chunks_per_s": sum(counts) / wall}


def main():
    mode = sys.argv[1]
    if mode == "alternate":
        print(json.dumps(alternate(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                                   int(sys.argv[5]))))
    elif mode == "paired":
        print(json.dumps(paired(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    elif mode == "concurrent":
        threading.stack_size(256 * 1024)
        print(json.dumps(concurrent(sys.argv[2], int(sys.argv[3]),
                                    int(sys.argv[4]))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
