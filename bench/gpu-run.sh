#!/bin/sh
# Starts bench/gpu.sh detached (its own session, so it outlives the device
# call that starts it: the machine stays up while calls follow each other)
# and waits for it like bench/gpu-wait.sh. usage: sh bench/gpu-run.sh [WAIT_S]
W=${GPU_WORK:-/tmp/gpu}
mkdir -p "$W"
rm -f "$W/done"; rm -rf "$W/out" "$W/xdg/lemon/backends" "$W/config" "$W/cache" "$W/mirror"
# from a copy: the device call's next command replaces the checkout
rm -rf "$W/repo"
mkdir -p "$W/repo"
tar -c --exclude=./.git . | tar -x -C "$W/repo"
(cd "$W/repo" && setsid sh bench/gpu.sh > "$W/run.log" 2>&1 < /dev/null &)
exec sh bench/gpu-wait.sh "${1:-540}"
