#!/usr/bin/env python3
"""Tables for bench/RESULTS.md from bench/gpu.sh's results.jsonl.

Weights read per decoded token: the model file's size (all of a Q4_0 model's
tensors are read once per token at batch 1; the header and vocabulary are a
few MB of it), so bandwidth = file bytes x tokens/s, against the H200's
4.8 TB/s."""
import json
import os
import statistics
import sys

PEAK = 4.8e12
out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl")) if l.strip()]
models_dir = os.path.join(os.path.dirname(out), "xdg", "lemon", "models")


def size(m):
    try:
        return os.path.getsize(os.path.join(models_dir, m + ".gguf"))
    except OSError:
        return None


print("### Batch-1 decode: lemon serve vs the same llama-server started directly\n")
print("| backend | model | tokens/request | lemon t/s (client) | direct t/s (client) | lemon/direct | lemon t/s (server timings) | direct t/s (server timings) | weights read | % of 4.8 TB/s (lemon) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if r["kind"] != "decode":
        continue
    a, b = r["r"]["a"], r["r"]["b"]
    sz = size(r["model"])
    bw = "%.1f%%" % (100 * sz * a["client_tps_median"] / PEAK) if sz else "?"
    print("| %s | %s | %d | %.1f | %.1f | %.3fx | %s | %s | %s | %s |" % (
        r["backend"], r["model"], r["tokens"], a["client_tps_median"], b["client_tps_median"],
        a["client_tps_median"] / b["client_tps_median"],
        "%.1f" % a["server_tps_median"] if a["server_tps_median"] else "-",
        "%.1f" % b["server_tps_median"] if b["server_tps_median"] else "-",
        "%.2f GB" % (sz / 1e9) if sz else "?", bw))

print("\n### Aggregate tokens/s with concurrent streams (order per level: lemon, direct, direct, lemon)\n")
print("Both passes summed, and the warm pair alone (each server's second pass: the first pass at a new")
print("batch size can include the backend's one-time work for it, e.g. Vulkan pipeline creation).\n")
print("| backend | model | streams | tokens/stream | lemon t/s (both) | direct t/s (both) | lemon/direct (both) | lemon t/s (warm) | direct t/s (warm) | lemon/direct (warm) | lemon warm vs its 1-stream rate | errors (lemon/direct) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
agg = {}
for r in rows:
    if r["kind"] != "concurrent":
        continue
    k = (r["backend"], r["model"], r["r"]["streams"], r["tokens"])
    e = agg.setdefault(k, {"lemon": [0, 0.0, 0, []], "direct": [0, 0.0, 0, []]})
    w = e[r["who"]]
    w[0] += r["r"]["tokens"]
    w[1] += r["r"]["wall_s"]
    w[2] += r["r"]["errors"]
    w[3].append(r["r"]["tokens_per_s"])


def warm(w):
    # the median of the passes after the first (PASSES=2: the second)
    if not w[3]:
        return 0
    return statistics.median(w[3][1:]) if len(w[3]) > 1 else w[3][-1]


for (b, m, n, tok), e in agg.items():
    lt = e["lemon"][0] / e["lemon"][1] if e["lemon"][1] else 0
    dt = e["direct"][0] / e["direct"][1] if e["direct"][1] else 0
    lw, dw = warm(e["lemon"]), warm(e["direct"])
    one = agg.get((b, m, 1, tok))
    base = warm(one["lemon"]) if one else 0
    print("| %s | %s | %d | %d | %.1f | %.1f | %s | %.1f | %.1f | %s | %s | %d/%d |" % (
        b, m, n, tok, lt, dt, "%.3fx" % (lt / dt) if dt else "-", lw, dw,
        "%.3fx" % (lw / dw) if dw else "-",
        "%.2fx" % (lw / base) if base else "-", e["lemon"][2], e["direct"][2]))

print("\n### Arguments lemon gave its children (the direct runs used exactly these)\n")
for r in rows:
    if r["kind"] == "args":
        print("- %s %s: `%s %s` %s" % (r["backend"], r["model"], os.path.basename(r["exe"]),
                                     r["args"].strip(), ("env `%s`" % r["env"].strip()) if r["env"].strip() else ""))

place = [r for r in rows if r["kind"] == "place"]
if place:
    print("\n### One GPU, two GPUs, RPC workers (issue 15): the same model, slots and context\n")
    levels = sorted({r["r"]["streams"] for r in place if r["mode"] == "concurrent"})
    print("| placement | model | batch-1 t/s (median) | " +
          " | ".join("%d streams t/s" % n for n in levels) + " | errors |")
    print("|---|---|---|" + "---|" * len(levels) + "---|")
    seen = []
    for r in place:
        if r["what"] not in seen:
            seen.append(r["what"])
    for what in seen:
        rs = [r for r in place if r["what"] == what]
        dec = next((r for r in rs if r["mode"] == "decode"), None)
        cells, errs, model = [], 0, rs[0]["model"]
        for n in levels:
            c = next((r for r in rs if r["mode"] == "concurrent" and r["r"]["streams"] == n), None)
            cells.append("%.1f" % c["r"]["tokens_per_s"] if c else "-")
            errs += c["r"]["errors"] if c else 0
        print("| %s | %s | %s | %s | %d |" % (
            what, model, "%.1f" % dec["r"]["a"]["client_tps_median"] if dec else "-",
            " | ".join(cells), errs))
    for r in rows:
        if r["kind"] == "place-args":
            print("\n- %s: `%s %s` %s placement %s" % (
                r["what"], os.path.basename(r["exe"]), r["args"].strip(),
                ("env `%s`" % r["env"].strip()) if r["env"].strip() else "",
                "; ".join(p for p in r["placement"] if p) or "-"))
