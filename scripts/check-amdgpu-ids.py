#!/usr/bin/env python3
"""Checks that every AMD GPU device id lemon may meet resolves to a gfx target.

Walks libdrm's amdgpu.ids (the machine's copy, /usr/share/libdrm/amdgpu.ids
or $LEMON_AMDGPU_IDS, and the newest upstream copy kept in
compat/upstream/amdgpu.ids) and the kernel's amdgpu pciidlist extract
(compat/upstream/amdgpu-pciidlist.txt), and looks each id (and revision) up
in compat/gpus.json + compat/gpus-local.json the way compat_gpu_lookup does:
a vvvv:dddd:rr entry, else the vvvv:dddd one. Prints the share that resolves
per list and every id that does not; exit 1 when any does not.

Usage: scripts/check-amdgpu-ids.py [AMDGPU_IDS...]
Python 3 standard library only.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPAT = os.path.join(ROOT, "compat")
MACHINE_IDS = os.environ.get("LEMON_AMDGPU_IDS", "/usr/share/libdrm/amdgpu.ids")


def table():
    keys = {}
    for name in ("gpus.json", "gpus-local.json"):
        with open(os.path.join(COMPAT, name), encoding="utf-8") as f:
            for k, v in json.load(f)["gpus"].items():
                keys[k] = v["gfx"]
    return keys


def ids_file(path):
    """(device, revision) pairs of an amdgpu.ids file"""
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or "," not in line:
                continue
            parts = [p.strip().lower() for p in line.split(",", 2)]
            pairs.append((parts[0], parts[1]))
    return pairs


def pciidlist(path):
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            pairs += [(w, None) for w in words[1:] if w != "apu"]
    return pairs


def resolve(keys, dev, rev):
    if rev is not None and "1002:%s:%s" % (dev, rev) in keys:
        return keys["1002:%s:%s" % (dev, rev)]
    return keys.get("1002:%s" % dev)


def report(keys, label, pairs):
    devs = sorted({d for d, _ in pairs})
    bad = sorted({"%s:%s" % (d, r) if r else d for d, r in pairs
                  if resolve(keys, d, r) is None})
    bad_devs = sorted({b.split(":")[0] for b in bad})
    ok = len(devs) - len(bad_devs)
    pct = 100.0 * ok / len(devs) if devs else 100.0
    print("amdgpu ids: %s: %d of %d device ids resolve to a gfx target (%.1f%%)"
          % (label, ok, len(devs), pct))
    for b in bad:
        print("amdgpu ids: %s: unresolved 1002:%s" % (label, b))
    return 1 if bad else 0


def main(argv):
    keys = table()
    lists = [(p, ids_file(p)) for p in argv]
    if not argv:
        if os.path.exists(MACHINE_IDS):
            lists.append((MACHINE_IDS, ids_file(MACHINE_IDS)))
        else:
            print("amdgpu ids: %s: not on this machine, skipped" % MACHINE_IDS)
        up = os.path.join(COMPAT, "upstream", "amdgpu.ids")
        lists.append(("compat/upstream/amdgpu.ids", ids_file(up)))
        kl = os.path.join(COMPAT, "upstream", "amdgpu-pciidlist.txt")
        lists.append(("kernel pciidlist", pciidlist(kl)))
    rc = 0
    for label, pairs in lists:
        rc |= report(keys, label, pairs)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
