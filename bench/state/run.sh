#!/usr/bin/env bash
# Shared-state round trips per second from ONE Python worker: hornbeam's
# state_incr/state_get versus redis-py INCR/GET against a local redis-server
# (unix socket and TCP 127.0.0.1).
#
#   bench/state/run.sh            # from anywhere; about 60 s
#   SECONDS_PER_ROUND=2 ROUNDS=5 PROFILE=1 bench/state/run.sh
#
# It builds ./cmd/hornbeam, starts its own redis-server (no persistence) and
# hornbeam (-w 1) on free ports, twice: as is and with --cpu-affinity. For
# each it prints a table of the median ops/s and
# a cProfile of the hornbeam loop when hornbeam is not 3x redis (or PROFILE=1),
# and stops everything it started.
set -euo pipefail

PY=/usr/bin/python3
ROUNDS=${ROUNDS:-3}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-1}
TARGET=3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/hornbeam-state-bench.XXXXXX)
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_until SECONDS CMD...: retry CMD every 0.1 s.
wait_until() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			echo "timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.1
	done
}

echo "building hornbeam..." >&2
(cd "$root" && go build -o "$tmp/hornbeam" ./cmd/hornbeam)

rport=$(free_port)
rsock=$tmp/redis.sock
redis-server --port "$rport" --bind 127.0.0.1 --unixsocket "$rsock" --unixsocketperm 700 \
	--save '' --appendonly no --daemonize no --logfile "$tmp/redis.log" &
pids+=($!)
wait_until 10 redis-cli -s "$rsock" ping

# measure LABEL [HORNBEAM FLAGS...]: start hornbeam -w 1 with the flags, run
# the benchmark in its worker, print the table; the cProfile of a missed op
# is printed for the first configuration (or all, with PROFILE=1).
measure() {
	local label=$1; shift
	local hport url
	hport=$(free_port)
	"$tmp/hornbeam" --python "$PY" --pythonpath "$here" -w 1 -b "127.0.0.1:$hport" \
		--timeout 300 "$@" state_bench_app:application 2>"$tmp/hornbeam.log" &
	local hpid=$!
	pids+=($hpid)
	url=http://127.0.0.1:$hport
	if ! wait_until 30 curl -sf "$url/ping"; then
		cat "$tmp/hornbeam.log" >&2
		exit 1
	fi

	local budget=$((ROUNDS * 6 * ${SECONDS_PER_ROUND%.*} + 60))
	echo "measuring hornbeam $label ($ROUNDS rounds of ${SECONDS_PER_ROUND}s per op and backend)..." >&2
	curl -sf --max-time "$budget" -o "$tmp/result.json" \
		"$url/bench?seconds=$SECONDS_PER_ROUND&rounds=$ROUNDS&redis_port=$rport&redis_unix=$rsock" || {
		echo "benchmark request failed; hornbeam log:" >&2
		cat "$tmp/hornbeam.log" >&2
		exit 1
	}
	curl -sf --max-time 60 -o "$tmp/breakdown.json" "$url/breakdown?seconds=$SECONDS_PER_ROUND"
	echo
	echo "== hornbeam $label"
	"$PY" - "$tmp/result.json" "$tmp/breakdown.json" "$TARGET" "$tmp/missed" <<'PYEOF'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
bd = json.load(open(sys.argv[2]))
target = float(sys.argv[3])
med = {op: {b: statistics.median(v) for b, v in bs.items()} for op, bs in r["ops"].items()}
print("one Python worker (pid %d), median of %d rounds, round trips per second:" % (r["pid"], len(r["ops"]["incr"]["hornbeam"])))
hdr = "%-5s %12s %12s %12s %9s %9s" % ("op", "hornbeam", "redis unix", "redis tcp", "vs unix", "vs tcp")
print(hdr)
print("-" * len(hdr))
missed = []
for op, m in med.items():
    h, u, t = m["hornbeam"], m["redis_unix"], m["redis_tcp"]
    print("%-5s %12.0f %12.0f %12.0f %8.2fx %8.2fx" % (op, h, u, t, h / u, h / t))
    if h / max(u, t) < target:
        missed.append(op)
print("target hornbeam >= %gx redis: %s" % (target, "MISSED for " + ", ".join(missed) if missed else "met"))
print()
print("breakdown (ops/s; microseconds per op):")
for name, v in bd.items():
    print("  %-24s %10.0f  %6.1f us" % (name, v, 1e6 / v))
for op, m in med.items():
    print("  %-24s %10.0f  %6.1f us" % ("hornbeam_" + op + " (above)", m["hornbeam"], 1e6 / m["hornbeam"]))
open(sys.argv[4], "w").write(" ".join(missed))
PYEOF
	local missed
	missed=$(cat "$tmp/missed")
	if [[ -n "$missed" && $((profiled++)) == 0 || "${PROFILE:-0}" == 1 ]]; then
		for op in ${missed:-incr get}; do
			echo
			curl -sf --max-time 120 "$url/profile?op=$op&n=50000"
		done
	fi
	kill "$hpid"
	wait "$hpid" 2>/dev/null || true
}

profiled=0
measure "(default)"
measure "--cpu-affinity" --cpu-affinity
