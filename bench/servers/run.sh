#!/usr/bin/env bash
# Benchmark hornbeam against gunicorn (sync, gthread), uWSGI, waitress and a
# bare Go net/http server, on this machine, in one run. See README.md.
#
#   bash bench/servers/run.sh           # full: 3 rounds, ~13 minutes
#   bash bench/servers/run.sh --quick   # 1 short round, ~2.5 minutes
#   bash bench/servers/run.sh --asgi    # the ASGI servers (hornbeam -k asgi,
#                                       # uvicorn, hypercorn, daphne), ~12 min;
#                                       # with --quick: 1 short round
#
# Knobs (environment): BENCH_ROUNDS, BENCH_WARMUP, BENCH_DURATION (seconds),
# BENCH_WORKERS (default 2), BENCH_THREADS (gthread/waitress, default 4),
# BENCH_SLOW_CLIENTS (default 500), BENCH_SERVERS and BENCH_WORKLOADS
# (comma-separated subsets, for development), BENCH_BASELINE (an earlier
# hornbeam binary, run as "hornbeam-baseline" for before/after ratios) and
# BENCH_BASELINE_ARGS (extra flags for it, e.g. the defaults of today).
# ASGI (--asgi) knobs: BENCH_ROUNDS, BENCH_WARMUP, BENCH_DURATION,
# BENCH_WORKERS, BENCH_SERVERS, BENCH_WORKLOADS (asgi-hello, fastapi, ws-echo,
# ws-idle), BENCH_WS_CONNS (echo connections, 64), BENCH_WS_SIZE (echo
# message bytes, 32), BENCH_WS_IDLE (idle WebSockets, 10000),
# BENCH_WS_SOURCES (loopback source addresses, 4), BENCH_HORNBEAM_ARGS.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

quick=""
asgi=""
for a in "$@"; do
	case "$a" in
	--quick) quick="--quick" ;;
	--asgi) asgi=1 ;;
	-h | --help)
		sed -n '2,23p' "$0"
		exit 0
		;;
	*)
		echo "unknown argument: $a (want --quick, --asgi or nothing)" >&2
		exit 2
		;;
	esac
done

# Debian packages: the servers, the load generators, Flask, Debian's python3.
if [ -n "$asgi" ]; then
	bash "$repo/scripts/debian-packages.sh" python3 python3-uvicorn python3-hypercorn daphne python3-fastapi wrk
else
	bash "$repo/scripts/debian-packages.sh" python3 gunicorn uwsgi uwsgi-plugin-python3 python3-waitress python3-flask wrk nghttp2-client
fi
export PATH="/usr/local/go/bin:$PATH"

tmp="$(mktemp -d /tmp/hornbeam-bench-servers.XXXXXX)"
pidfile="$tmp/pgids"
: >"$pidfile"
driver=""
watchdog=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	[ -n "$watchdog" ] && kill -TERM "$watchdog" 2>/dev/null || true
	if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
		kill -TERM "$driver" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$driver" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$driver" 2>/dev/null || true
	fi
	# Last resort: every process group the driver started (servers, slow
	# clients); each was started in its own session, so its pgid is its pid.
	while read -r pg; do
		[ -n "$pg" ] && kill -KILL -- "-$pg" 2>/dev/null || true
	done <"$pidfile"
	if [ "${KEEP_LOGS:-}" = "1" ] || [ "$rc" -ne 0 ]; then
		echo "server logs kept in $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ -n "$asgi" ]; then
	echo "building hornbeam and wsload ..."
	(
		cd "$repo"
		go build -o "$tmp/hornbeam" ./cmd/hornbeam
		# The worker library beside it: the embedded workers are python3
		# hosting it (README "Worker modes").
		go build -buildmode=c-shared -o "$tmp/hornbeam-worker.so" ./cmd/hornbeam-worker
		go build -o "$tmp/wsload" ./bench/servers/wsload
	)
	out="$here/results/asgi-latest.json"
	# ~12 min (full) / ~4 min (quick) planned; the same kind of hard stop.
	limit=1500
	[ -n "$quick" ] && limit=600
	/usr/bin/python3 "$here/asgi.py" $quick --hornbeam "$tmp/hornbeam" --wsload "$tmp/wsload" \
		--tmp "$tmp" --pidfile "$pidfile" --out "$out" &
	driver=$!
else
	echo "building hornbeam, gohello and slowclients ..."
	(
		cd "$repo"
		go build -o "$tmp/hornbeam" ./cmd/hornbeam
		# hornbeam-hosted: the same binary with the worker library beside it.
		mkdir -p "$tmp/hosted"
		cp "$tmp/hornbeam" "$tmp/hosted/hornbeam"
		go build -buildmode=c-shared -o "$tmp/hosted/hornbeam-worker.so" ./cmd/hornbeam-worker
		go build -o "$tmp/gohello" ./bench/servers/gohello
		go build -o "$tmp/slowclients" ./bench/servers/slowclients
	)

	# Bounded in time: the driver's own plan is ~13 min (full) / ~2.5 min
	# (quick); past these limits it is stopped and everything it started killed.
	limit=1200
	[ -n "$quick" ] && limit=300

	out="$here/results/latest.json"
	/usr/bin/python3 "$here/bench.py" $quick \
		--hornbeam "$tmp/hornbeam" --hornbeam-hosted "$tmp/hosted/hornbeam" --gohello "$tmp/gohello" --slowclients "$tmp/slowclients" \
		--tmp "$tmp" --pidfile "$pidfile" --out "$out" &
	driver=$!
fi
# wait is interrupted by signals (the traps above then run cleanup).
(
	trap 'kill "$s" 2>/dev/null; exit 0' TERM
	sleep "$limit" &
	s=$!
	wait "$s"
	echo "time limit ${limit}s reached, stopping" >&2
	kill -TERM "$driver" 2>/dev/null
) &
watchdog=$!
set +e
wait "$driver"
rc=$?
set -e
kill -TERM "$watchdog" 2>/dev/null || true
wait "$watchdog" 2>/dev/null || true
watchdog=""
driver=""
[ "$rc" -eq 0 ] || exit "$rc"

/usr/bin/python3 "$here/chart.py" "$out" "${out%.json}.svg"
