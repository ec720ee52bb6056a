#!/usr/bin/env python3
"""The arguments lemon gave one of its llama-server children, read from
/proc/PID/cmdline, as shell words (for `eval "set -- $ARGS"`), so a
benchmark can start the same llama-server directly with exactly them.

  child-args.py PID PORT   --port's value replaced by PORT
  child-args.py PID        --port and its value left out
"""
import shlex
import sys

a = [x.decode() for x in open("/proc/%s/cmdline" % sys.argv[1], "rb").read().split(b"\0")[1:-1]]
i = a.index("--port")
if len(sys.argv) > 2:
    a[i + 1] = sys.argv[2]
else:
    del a[i:i + 2]
print(shlex.join(a))
