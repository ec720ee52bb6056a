#!/bin/sh
# Stops a running bench/gpu.sh and what it started (lemon, llama-server,
# the load client), by /proc, never matching the caller's own command line.
me=$$
for d in /proc/[0-9]*; do
	p=${d#/proc/}
	[ "$p" = "$me" ] && continue
	c=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
	case $c in
	"sh bench/gpu.sh"* | *gpu-client.py* | */.dev/lemon* | *lemon.real* | */llama-server\ *) kill "$p" 2>/dev/null ;;
	esac
done
sleep 2
