#!/bin/sh
# Integration test of llama.cpp RPC across network namespaces: two
# namespaces joined to the root one by veth pairs (private 10.231.x.0/24
# addresses), a real `lemon worker` (real rpc-server from the CPU bundle)
# in each, and `lemon serve --workers` in the root namespace on a fixture
# machine with 16 MiB of RAM, so the models fit nowhere locally and are
# placed across both workers (--rpc, --tensor-split). Checked: the
# placement in /api/v1/health and `lemon ps`; a second model unloads the
# first, idle, from the workers (an rpc-server serves one client at a
# time), while one with a request in flight makes it BUSY; a worker killed mid-stream
# ends the stream with an error event and the next request is served by
# the model re-placed on the remaining worker, without restarting lemon;
# with no worker left the model is refused with a clear error; a worker
# that goes away or comes back is seen in /api/v1/health and `lemon ps`
# without a load (probed every 30 s and when health is asked); an
# unreachable worker (silent address) is reported within bounded time; a
# worker answering garbage and one claiming absurd free memory are
# reported unusable, not planned with. Needs root and `ip netns`; skips
# with a message where namespaces are refused. Prints "ok NAME" or
# "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-rpcns.XXXXXX)
FAILS=0
MPID=
LPID=
W1=
W2=
G1=
G2=
NA=lemon-rpc-$$-a
NB=lemon-rpc-$$-b
VA=lra$$
VB=lrb$$

. tests/integration/lib.sh

cleanup() {
	for p in $LPID $W1 $W2 $G1 $G2 $MPID; do
		kill "$p" 2>/dev/null
	done
	for p in $LPID $W1 $W2; do
		wait "$p" 2>/dev/null
	done
	ip link del "${VA}r" 2>/dev/null
	ip link del "${VB}r" 2>/dev/null
	ip netns del "$NA" 2>/dev/null
	ip netns del "$NB" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! ip netns add "$NA" 2>"$T/netns.err"; then
	echo "skip test_rpc_netns: ip netns add refused here ($(cat "$T/netns.err")); needs root and iproute2"
	exit 0
fi
ip netns add "$NB" || { echo "FAIL setup: ip netns add $NB"; exit 1; }
# root 10.231.1.1 <-> A 10.231.1.2, root 10.231.2.1 <-> B 10.231.2.2
setup_ns() { # NS VETH SUBNET
	ip link add "${2}r" type veth peer name "${2}n" &&
		ip link set "${2}n" netns "$1" &&
		ip addr add "10.231.$3.1/24" dev "${2}r" &&
		ip link set "${2}r" up &&
		ip netns exec "$1" ip addr add "10.231.$3.2/24" dev "${2}n" &&
		ip netns exec "$1" ip link set "${2}n" up &&
		ip netns exec "$1" ip link set lo up
}
setup_ns "$NA" "$VA" 1 && setup_ns "$NB" "$VB" 2 ||
	{ echo "FAIL setup: veth pairs"; exit 1; }

need_lemon
need_bundle
start_bundle_mirror
export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_HOST LEMON_PORT LEMON_MIRROR LEMON_WORKERS
need_tiny_model
[ -f build/models/slow.gguf ] ||
	python3 tests/tools/make-tiny-gguf.py --seed 5 --embd 128 --layers 4 --ctx 4096 \
		--out build/models/slow.gguf > /dev/null || { echo "FAIL setup: slow model"; exit 1; }
"$LEMON" pull --file "$MODEL" tiny > /dev/null && "$LEMON" pull --file build/models/slow.gguf slow > /dev/null ||
	{ echo "FAIL setup: pull"; exit 1; }
# the bundle is installed from the root namespace (the mirror is on its
# loopback); the workers find it in the shared data directory
"$LEMON" install-backend llamacpp:cpu --mirror "$MIRROR" > "$T/install.log" 2>&1 ||
	{ echo "FAIL setup: install-backend: $(tail -n 3 "$T/install.log")"; exit 1; }

# a machine with 16 MiB of RAM: every model is too large for it
cp -r tests/fixtures/cpu-vm "$T/small"
sed -i 's/^MemTotal:.*/MemTotal:          16384 kB/' "$T/small/proc/meminfo"

ip netns exec "$NA" "$LEMON" worker --host 10.231.1.2 --port 50052 --backend cpu > "$T/w1.log" 2>&1 &
W1=$!
ip netns exec "$NB" "$LEMON" worker --host 10.231.2.2 --port 50052 --backend cpu > "$T/w2.log" 2>&1 &
W2=$!

# hostile workers on the root loopback: garbage, and absurd memory. Each
# binds a port the kernel picks and writes it to a file (a port picked by
# free_port and then + 1 could be taken meanwhile); a worker at PORT - 1
# has its endpoint at PORT
hostile() { # PORTFILE BODY
	python3 - "$1" "$2" <<'PY' &
import http.server, sys
body = sys.argv[2].encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % srv.server_address[1])
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
PY
}
hostile_port() { # PORTFILE -> the worker's port (the endpoint's - 1)
	i=0
	while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	echo $(($(head -n 1 "$1") - 1))
}
hostile "$T/gport" '<html>{{{ not json'
G1=$!
hostile "$T/aport" '{"lemon_worker":1,"backend":"cpu","free_bytes":1e30,"rpc_running":true}'
G2=$!
GP=$(hostile_port "$T/gport")
AP=$(hostile_port "$T/aport")

i=0
while [ $i -lt 150 ]; do
	grep -q "worker on" "$T/w1.log" 2>/dev/null && grep -q "worker on" "$T/w2.log" 2>/dev/null && break
	sleep 0.1
	i=$((i + 1))
done
grep -q "WARNING: rpc-server has no authentication" "$T/w1.log" &&
	grep -q "worker on cpu" "$T/w2.log" && ok workers_started_in_namespaces ||
	fail workers_started_in_namespaces "$(tail -n 3 "$T/w1.log" "$T/w2.log")"
sleep 0.5

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
# 10.231.1.9: on A's link, but nobody answers (ARP fails): a silent worker
t0=$(date +%s)
"$LEMON" serve --port "$PORT" --backend cpu --sysroot "$T/small" \
	--workers "10.231.1.2:50052,10.231.2.2:50052,10.231.1.9:50052,127.0.0.1:$GP,127.0.0.1:$AP" \
	> "$T/serve.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 300 ] && ! grep -q "listening on" "$T/serve.log" 2>/dev/null; do
	kill -0 "$LPID" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
t1=$(date +%s)
grep -q "listening on" "$T/serve.log" || { fail serve_started "$(tail -n 5 "$T/serve.log")"; exit 1; }
[ $((t1 - t0)) -le 15 ] && ok unreachable_worker_bounded || fail unreachable_worker_bounded "start took $((t1 - t0)) s"

health() { curl -s -m 10 "$URL/api/v1/health"; }
wstate() { # ADDRESS -> "state|error"
	health | jq -r --arg a "$1" '.workers[] | select(.address == $a) | "\(.state)|\(.error // "")"'
}
[ "$(wstate 10.231.1.2:50052)" = "up|" ] && [ "$(wstate 10.231.2.2:50052)" = "up|" ] &&
	ok workers_up || fail workers_up "$(health | jq -c .workers)"
case $(wstate 10.231.1.9:50052) in
unusable\|*connecting*) ok unreachable_reported ;;
*) fail unreachable_reported "$(wstate 10.231.1.9:50052)" ;;
esac
case $(wstate "127.0.0.1:$GP") in
unusable\|*"not a JSON object"*) ok garbage_worker_unusable ;;
*) fail garbage_worker_unusable "$(wstate "127.0.0.1:$GP")" ;;
esac
case $(wstate "127.0.0.1:$AP") in
unusable\|*"not believed"*) ok absurd_memory_unusable ;;
*) fail absurd_memory_unusable "$(wstate "127.0.0.1:$AP")" ;;
esac

# the plans route shows where a load would place tiny: across both
# workers (it said "too large" before, from this machine alone)
p=$(curl -s -m 10 "$URL/api/v1/plans/tiny" | jq -r '"\(.plan)|\(.rpc // "")|\(.summary)"')
case $p in
"workers|10.231.1.2:50052,10.231.2.2:50052|across workers 10.231.1.2:50052,10.231.2.2:50052 (tensor split "*) ok plans_show_workers ;;
*) fail plans_show_workers "'$p'" ;;
esac

chat() { # MODEL [EXTRA]
	curl -s -m 60 -H 'Content-Type: application/json' -w '\n%{http_code}' "$URL/v1/chat/completions" \
		-d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8}"
}
r=$(chat tiny | tail -n 1)
pl=$(health | jq -r '.loaded[] | select(.model == "tiny") | .placement')
case $pl in
*10.231.1.2:50052,10.231.2.2:50052*"tensor split"*) [ "$r" = 200 ] && ok split_across_both || fail split_across_both "status $r" ;;
*) fail split_across_both "status $r, placement '$pl'" ;;
esac
"$LEMON" ps --port "$PORT" > "$T/ps" 2>&1
grep -q "placed: rpc 10.231.1.2:50052,10.231.2.2:50052" "$T/ps" &&
	grep -q "worker 10.231.2.2:50052 up cpu" "$T/ps" &&
	grep -q "worker 127.0.0.1:$AP unusable" "$T/ps" && ok ps_shows_placement ||
	fail ps_shows_placement "$(cat "$T/ps")"
# the worker's rpc-server holds its share: it has a connection from the head
ip netns exec "$NB" ss -tn state established '( sport = :50052 )' | grep -q 10.231.2.1 &&
	ok worker_b_serves_layers || fail worker_b_serves_layers "no connection to B's rpc-server"

# tiny holds both rpc-servers: health, asked for 16 s (the workers are
# probed again 2 s after each round), keeps them up; probing their rpc
# ports queued behind tiny's connection (an rpc-server queues one more),
# so the third round timed out and called them unusable
bad=
i=0
while [ $i -lt 32 ]; do
	for a in 10.231.1.2:50052 10.231.2.2:50052; do
		w=$(wstate $a)
		[ "$w" = "up|" ] || bad="$bad $a=$w"
	done
	sleep 0.5
	i=$((i + 1))
done
[ -z "$bad" ] && ok held_workers_stay_up || fail held_workers_stay_up "$bad"

# an rpc-server serves one client at a time: a second model needs the
# workers the first holds; the first, idle (no request in flight), is
# unloaded for it, as the LRU unloads an idle model for memory
out=$(chat slow)
pl=$(health | jq -r '[.loaded[] | select(.model == "slow")][0].placement // ""')
tl=$(health | jq -r '[.loaded[] | select(.model == "tiny")] | length')
case $pl in
*10.231.1.2:50052,10.231.2.2:50052*) [ "$(echo "$out" | tail -n 1)" = 200 ] && [ "$tl" = 0 ] &&
	grep -q "unloading tiny (idle, holding the workers) to place slow" "$T/serve.log" &&
	ok idle_holder_evicted || fail idle_holder_evicted "tiny children $tl: $out" ;;
*) fail idle_holder_evicted "placement '$pl': $out" ;;
esac
unload() {
	curl -s -m 30 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		"$URL/api/v1/unload" -d "{\"model_name\":\"$1\"}"
}

# --- slow streams (a request in flight holds the workers): tiny is refused
# BUSY, slow is not unloaded for it; then worker B is killed mid-stream
# (SIGKILL: its rpc-server dies with it)
curl -s -N -m 60 -H 'Content-Type: application/json' "$URL/v1/chat/completions" \
	-d '{"model":"slow","messages":[{"role":"user","content":"go"}],"max_tokens":3000,"stream":true,"ignore_eos":true}' \
	> "$T/stream" &
cp=$!
i=0
# (grep -c prints nothing while curl has not yet created the file)
while n=$(grep -c '^data: {' "$T/stream" 2>/dev/null); [ "${n:-0}" -lt 3 ] && [ $i -lt 300 ]; do
	sleep 0.05
	i=$((i + 1))
done
out=$(chat tiny)
case $out in
*"workers are held"*"by 'slow'"*) [ "$(echo "$out" | tail -n 1)" = 503 ] &&
	! grep -q '^data: \[DONE\]' "$T/stream" && ok leased_holder_busy ||
	fail leased_holder_busy "$out" ;;
*) fail leased_holder_busy "$out" ;;
esac
unload tiny > /dev/null
kill -KILL "$W2"
wait "$W2" 2>/dev/null
W2=
wait $cp
if grep -q '"code":"backend_failed"' "$T/stream" && ! grep -q '^data: \[DONE\]' "$T/stream"; then
	ok stream_ends_with_error
else
	fail stream_ends_with_error "$(tail -c 300 "$T/stream")"
fi
r=$(chat slow | tail -n 1)
pl=$(health | jq -r '.loaded[] | select(.model == "slow") | .placement')
case $pl in
"rpc 10.231.1.2:50052, "*) [ "$r" = 200 ] && kill -0 "$LPID" && ok replaced_on_remaining ||
	fail replaced_on_remaining "status $r" ;;
*) fail replaced_on_remaining "status $r, placement '$pl'" ;;
esac
[ "$(wstate 10.231.2.2:50052 | cut -d'|' -f1)" = unusable ] && ok lost_worker_reported ||
	fail lost_worker_reported "$(wstate 10.231.2.2:50052)"

# --- no worker left: seen without a load (the workers are probed every
# 30 s and when /api/v1/health is asked), then refused with the sizes,
# promptly, lemon still up
kill -TERM "$W1"
wait "$W1" 2>/dev/null
W1=
wait_wstate() { # ADDRESS STATE: polls /api/v1/health up to 20 s
	_i=0
	while [ "$(wstate "$1" | cut -d'|' -f1)" != "$2" ] && [ $_i -lt 40 ]; do
		sleep 0.5
		_i=$((_i + 1))
	done
	[ "$(wstate "$1" | cut -d'|' -f1)" = "$2" ]
}
wait_wstate 10.231.1.2:50052 unusable && ok went_away_reported ||
	fail went_away_reported "$(wstate 10.231.1.2:50052)"
unload slow > /dev/null
out=$(chat tiny)
case $out in
*"no worker is reachable"*) [ "$(echo "$out" | tail -n 1)" != 200 ] && kill -0 "$LPID" &&
	ok refused_without_workers || fail refused_without_workers "$out" ;;
*) fail refused_without_workers "$out" ;;
esac

# --- worker B comes back: seen without a load, then used
ip netns exec "$NB" "$LEMON" worker --host 10.231.2.2 --port 50052 --backend cpu > "$T/w2b.log" 2>&1 &
W2=$!
if wait_wstate 10.231.2.2:50052 up; then
	"$LEMON" ps --port "$PORT" > "$T/ps2" 2>&1
	grep -q "worker 10.231.2.2:50052 up cpu" "$T/ps2" && ok came_back_reported ||
		fail came_back_reported "$(cat "$T/ps2")"
else
	fail came_back_reported "$(wstate 10.231.2.2:50052) $(tail -n 3 "$T/w2b.log")"
fi
# (its refusal above is kept 5 s: unloaded, it is placed anew at once)
unload tiny > /dev/null
r=$(chat tiny | tail -n 1)
pl=$(health | jq -r '.loaded[] | select(.model == "tiny") | .placement')
case $pl in
"rpc 10.231.2.2:50052, "*) [ "$r" = 200 ] && ok placed_on_returned || fail placed_on_returned "status $r" ;;
*) fail placed_on_returned "status $r, placement '$pl'" ;;
esac

[ $FAILS = 0 ] || { tail -n 20 "$T/serve.log"; exit 1; }
