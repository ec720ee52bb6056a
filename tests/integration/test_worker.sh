#!/bin/sh
# Integration tests of `lemon worker` with the real CPU bundle: first-run
# provisioning from a loopback mirror, the bundle's real rpc-server
# listening on the port asked for, the worker endpoint's JSON (backend,
# free memory from /proc/meminfo, capped by --mem-limit), rpc-server
# restarted when it dies, a clean stop on SIGTERM (rpc-server gone too),
# the no-authentication warning on a non-loopback --host, and bad
# arguments refused. Prints "ok NAME" or "FAIL NAME: why"; exits non-zero
# on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-worker.XXXXXX)
FAILS=0
MPID=
WPID=

. tests/integration/lib.sh

cleanup() {
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon
need_bundle
start_bundle_mirror
export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_HOST LEMON_PORT LEMON_MIRROR

# whether something accepts TCP connections on 127.0.0.1:$1
listening() {
	python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$1" 2>/dev/null
}

# field $2 of the JSON at URL $1
field() {
	curl -sS --max-time 5 "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

RPORT=$(free_port)
APORT=$(free_port)
"$LEMON" worker --port "$RPORT" --api-port "$APORT" --backend cpu --mirror "$MIRROR" \
	--mem-limit 1000000 > "$T/w.log" 2>&1 &
WPID=$!
i=0
while [ $i -lt 600 ] && ! grep -q "worker on" "$T/w.log"; do
	kill -0 "$WPID" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
if grep -q "worker on cpu backend" "$T/w.log"; then
	ok worker_started
else
	fail worker_started "$(tail -n 5 "$T/w.log")"
	exit 1
fi
find "$T/data" -name rpc-server -perm -u+x | grep -q . &&
	ok bundle_provisioned || fail bundle_provisioned "no rpc-server under $T/data"

i=0
while [ $i -lt 50 ] && ! listening "$RPORT"; do sleep 0.1; i=$((i + 1)); done
listening "$RPORT" && ok rpc_listening || fail rpc_listening "nothing on $RPORT"
RPID=$(pgrep -P "$WPID" -x rpc-server)
[ -n "$RPID" ] && grep -q rpc-server "/proc/$RPID/cmdline" &&
	tr '\0' ' ' < "/proc/$RPID/cmdline" | grep -q -- "-H 127.0.0.1 -p $RPORT" &&
	ok rpc_child_args || fail rpc_child_args "rpc-server child '$RPID'"

U=http://127.0.0.1:$APORT/api/v1/worker
[ "$(field "$U" backend)" = cpu ] && [ "$(field "$U" rpc_port)" = "$RPORT" ] &&
	[ "$(field "$U" rpc_running)" = True ] && ok endpoint_json ||
	fail endpoint_json "$(curl -sS --max-time 5 "$U")"
[ "$(field "$U" free_bytes)" = 1000000 ] && ok mem_limit_caps ||
	fail mem_limit_caps "free_bytes $(field "$U" free_bytes)"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$APORT/nope")
[ "$code" = 404 ] && ok endpoint_404 || fail endpoint_404 "got $code"

# rpc-server killed: restarted, on the same port
kill -KILL "$RPID"
i=0
while [ $i -lt 50 ]; do
	N=$(pgrep -P "$WPID" -x rpc-server)
	[ -n "$N" ] && [ "$N" != "$RPID" ] && listening "$RPORT" && break
	sleep 0.1
	i=$((i + 1))
done
[ -n "$N" ] && [ "$N" != "$RPID" ] && [ "$(field "$U" restarts)" = 1 ] &&
	listening "$RPORT" && ok rpc_restarted || fail rpc_restarted "$(tail -n 3 "$T/w.log")"

kill -TERM "$WPID"
wait "$WPID"
rc=$?
WPID=
[ $rc = 0 ] && ! kill -0 "$N" 2>/dev/null && ! listening "$RPORT" && ok clean_stop ||
	fail clean_stop "rc $rc, rpc-server $N still there?"

# free memory without a limit: MemAvailable, in bytes
RPORT=$(free_port)
APORT=$(free_port)
"$LEMON" worker --port "$RPORT" --api-port "$APORT" --backend cpu > "$T/w2.log" 2>&1 &
WPID=$!
i=0
while [ $i -lt 300 ] && ! grep -q "worker on" "$T/w2.log"; do sleep 0.1; i=$((i + 1)); done
avail=$(python3 -c 'print([int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.startswith("MemAvailable:")][0])')
got=$(field "http://127.0.0.1:$APORT/api/v1/worker" free_bytes)
python3 -c 'import sys; a,g=int(sys.argv[1]),int(sys.argv[2]); sys.exit(0 if abs(a-g) < a/4 else 1)' \
	"$avail" "${got:-0}" && ok free_is_memavailable || fail free_is_memavailable "got '$got', MemAvailable $avail"
kill -TERM "$WPID"
wait "$WPID"
WPID=

# a non-loopback --host: the warning comes before anything binds (here
# provisioning fails first: an empty data directory and no mirror)
XDG_DATA_HOME=$T/empty "$LEMON" worker --host 0.0.0.0 --port "$(free_port)" --backend cpu \
	--mirror http://127.0.0.1:1 > "$T/w3.log" 2>&1
rc=$?
grep -q "WARNING: rpc-server has no authentication" "$T/w3.log" && [ $rc != 0 ] &&
	ok nonloopback_warns || fail nonloopback_warns "rc $rc: $(cat "$T/w3.log")"

bad=0
for args in "--port 0" "--port 70000" "--mem-limit x" "--mem-limit 0" "--backend nope" \
	"--host a/b" "--device -x" "--port 5 --api-port 5" "--bogus 1" "--port"; do
	# shellcheck disable=SC2086
	"$LEMON" worker $args > /dev/null 2>&1
	r=$?
	[ $r = 2 ] || { bad=1; echo "# worker $args: exit $r"; }
done
[ $bad = 0 ] && ok bad_args_refused || fail bad_args_refused "see above"

[ $FAILS = 0 ] || exit 1
