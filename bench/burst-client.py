#!/usr/bin/env python3
"""Burst probe for bench/burst.sh (standard library only).

  burst-client.py LEMON_URL DIRECT_URL MODEL STREAMS MAX_TOKENS REPS \
      CHILD_PID DIRECT_PID LEMON_LOG DIRECT_LOG

Per pass, STREAMS threads each open their own connection, wait at a barrier
and send one non-streamed /v1/completions request at once (the H200's
bench/gpu-client.py `concurrent` pass, with the sends lined up). Passes go
lemon, direct, direct, lemon... REPS times each. Per pass:

  launch spread: the last `launch_slot_` minus the first in that server's
      log (llama-server's own M.SS.mmm.uuu times): how many engine steps the
      burst needed to enter;
  receipt: when each request's last byte was read by the llama-server
      process (lemon's child, or the direct one), from ftrace's syscall
      events on the same monotonic clock as the client's sends; only where
      /sys/kernel/tracing is writable (root);
  wall: first send to last answer.

Prints one JSON object: per-pass rows and, per side, medians.
"""
import http.client
import json
import os
import re
import statistics
import sys
import threading
import time
import urllib.parse

PROMPT = "The quick brown fox jumps over the lazy dog. Once upon a time"
TRACE = "/sys/kernel/tracing/instances/lemon-burst"
EVENTS = ("syscalls/sys_enter_recvfrom", "syscalls/sys_exit_recvfrom")
LAUNCH = re.compile(r"(\d+)\.(\d\d)\.(\d\d\d)\.(\d\d\d) I slot launch_slot_")
EVENT = re.compile(r"^\s*\S+-(\d+)\s+\(\s*(\d+)\)\s+\[\d+\]\s+\S+\s+([\d.]+): (sys_\w+)(.*)$")


def tracing_on():
    try:
        os.makedirs(TRACE, exist_ok=True)
        for name, value in (("tracing_on", "0"), ("trace_clock", "mono"),
                            ("buffer_size_kb", "8192"), ("options/record-tgid", "1")):
            with open(os.path.join(TRACE, name), "w") as f:
                f.write(value)
        for e in EVENTS:
            with open(os.path.join(TRACE, "events", e, "enable"), "w") as f:
                f.write("1")
        return True
    except OSError:
        return False


def trace(op):
    with open(os.path.join(TRACE, "tracing_on"), "w") as f:
        f.write("1" if op == "start" else "0")
    if op == "start":
        with open(os.path.join(TRACE, "trace"), "w") as f:
            f.write("")
        return None
    with open(os.path.join(TRACE, "trace")) as f:
        return f.read()


def receipts(text, tgid):
    """per connection of tgid that received a request (>= 200 bytes): the
    time its last byte was read"""
    pend, per = {}, {}
    for line in text.splitlines():
        m = EVENT.match(line)
        if not m or m.group(2) != tgid:
            continue
        tid, ts, ev, rest = m.group(1), float(m.group(3)), m.group(4), m.group(5)
        if ev != "sys_recvfrom":
            continue
        if "->" not in rest:
            pend[tid] = rest.split("fd: ")[1].split(",")[0]
        elif tid in pend:
            n = int(rest.split("->")[1].strip(), 16)
            if n > 0:
                fd = pend[tid]
                got, _ = per.get(fd, (0, ts))
                per[fd] = (got + n, ts)
    return sorted(t for got, t in per.values() if got >= 200)


def launches(path, start):
    with open(path, errors="replace") as f:
        f.seek(start)
        text = f.read()
    return [int(m) * 60 + int(s) + int(ms) / 1e3 + int(us) / 1e6
            for m, s, ms, us in LAUNCH.findall(text)]


def burst(url, model, streams, max_tokens):
    u = urllib.parse.urlparse(url)
    bar = threading.Barrier(streams)
    sends, dones, errors = [0.0] * streams, [0.0] * streams, []
    body = json.dumps({"model": model, "prompt": PROMPT, "max_tokens": max_tokens,
                       "ignore_eos": True, "temperature": 0, "cache_prompt": False})

    def one(i):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        bar.wait()
        sends[i] = time.monotonic()
        try:
            c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                errors.append(r.status)
        except Exception as e:  # reported, never hidden
            errors.append(str(e)[:200])
        dones[i] = time.monotonic()
        c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sends, dones, errors


def main():
    (lurl, durl, model, streams, max_tokens, reps, cpid, dpid, llog, dlog) = sys.argv[1:11]
    streams, max_tokens, reps = int(streams), int(max_tokens), int(reps)
    traced = tracing_on()
    time.sleep(0.6)  # the warm-up's lines reach lemon's log first
    side = {"lemon": (lurl, cpid, llog), "direct": (durl, dpid, dlog)}
    rows = []
    for r in range(reps):
        for who in (("lemon", "direct") if r % 2 == 0 else ("direct", "lemon")):
            url, pid, log = side[who]
            start = os.path.getsize(log)
            if traced:
                trace("start")
            sends, dones, errors = burst(url, model, streams, max_tokens)
            text = trace("stop") if traced else ""
            time.sleep(0.6)  # lemon copies its child's log every 250 ms
            s0 = min(sends)
            row = {"who": who, "errors": len(errors), "first_errors": errors[:2],
                   "wall_s": max(dones) - s0}
            lt = launches(log, start)
            row["launches"] = len(lt)
            row["launch_spread_ms"] = (max(lt) - min(lt)) * 1000 if lt else None
            if traced:
                rt = receipts(text, pid)
                row["received"] = len(rt)
                row["receipt_ms"] = [round((t - s0) * 1000, 2) for t in rt]
                row["last_receipt_ms"] = (max(rt) - s0) * 1000 if rt else None
            rows.append(row)
            time.sleep(0.3)
    if traced:
        try:
            os.rmdir(TRACE)  # the instance and its buffer go away
        except OSError:
            pass
    out = {"streams": streams, "max_tokens": max_tokens, "reps": reps, "traced": traced,
           "rows": rows}
    for who in ("lemon", "direct"):
        mine = [x for x in rows if x["who"] == who]
        med = {}
        for k in ("wall_s", "launch_spread_ms", "last_receipt_ms"):
            v = [x[k] for x in mine if x.get(k) is not None]
            med[k] = statistics.median(v) if v else None
        med["errors"] = sum(x["errors"] for x in mine)
        out[who] = med
    print(json.dumps(out))


if __name__ == "__main__":
    main()
