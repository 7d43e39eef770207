#!/usr/bin/env bash
# compare.sh [SECONDS] [ROUNDS]: wrk against the embedded mode (embedserve)
# and the process mode (hornbeam -w 1), one process each, GOMAXPROCS=1
# (EMBED_GOMAXPROCS=2 for the embedded server's), interleaved rounds, for
# the hello world and a Flask route. Prints req/s and the server's CPU time
# per request (the process mode's includes its zygote and Python worker),
# then the ratios. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
SECS=${1:-5}
ROUNDS=${2:-3}
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)"; exit 1; }
bin=$(mktemp -d)
trap 'for p in ${pids:-}; do kill "$p" 2>/dev/null || true; done; rm -rf "$bin"' EXIT
CGO_ENABLED=0 go build -o "$bin/embedserve" ./wsgiembed/embedserve
CGO_ENABLED=0 go build -o "$bin/hornbeam" ./cmd/hornbeam

# cpu_ticks PID: utime+stime of PID and of all its descendants still
# running (the process mode's worker is the child of a zygote).
descendants() {
	local c
	for c in $(pgrep -P "$1" || true); do
		echo "$c"
		descendants "$c"
	done
}
cpu_ticks() {
	local t=0 p
	for p in $1 $(descendants "$1"); do
		[ -r /proc/$p/stat ] || continue
		t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat)))
	done
	echo $t
}

wait_up() {
	for _ in $(seq 100); do
		curl -sf -o /dev/null "$1" && return 0
		sleep 0.1
	done
	echo "no answer from $1" >&2
	exit 1
}

hz=$(getconf CLK_TCK)
declare -A rps cpu
for app in hello flask; do
	case $app in
	hello) spec=hello:application ;;
	flask) spec=flask_app:application ;;
	esac
	GOMAXPROCS=${EMBED_GOMAXPROCS:-1} "$bin/embedserve" -b 127.0.0.1:18101 --python $PY --pythonpath examples $spec 2>"$bin/embed.log" &
	epid=$!
	GOMAXPROCS=1 "$bin/hornbeam" -b 127.0.0.1:18102 -w 1 --max-requests 0 --python $PY --pythonpath examples $spec 2>"$bin/proc.log" &
	ppid=$!
	pids="$epid $ppid"
	wait_up http://127.0.0.1:18101/
	wait_up http://127.0.0.1:18102/
	for mode in embedded process; do # warm-up
		port=18101; [ $mode = process ] && port=18102
		wrk -t1 -c32 -d1s http://127.0.0.1:$port/ >/dev/null
	done
	for r in $(seq "$ROUNDS"); do
		for mode in embedded process; do
			port=18101 pid=$epid
			[ $mode = process ] && port=18102 pid=$ppid
			c0=$(cpu_ticks $pid)
			out=$(wrk -t1 -c32 -d${SECS}s http://127.0.0.1:$port/)
			c1=$(cpu_ticks $pid)
			n=$(echo "$out" | awk '/requests in/ {print $1}')
			rs=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
			errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}')
			us=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v n="$n" 'BEGIN {printf "%.1f", c / hz / n * 1e6}')
			printf "%-6s %-9s round %d: %9s req/s  %6s us CPU/request %s\n" $app $mode "$r" "$rs" "$us" "$errs"
			rps[$app,$mode]+="$rs "
			cpu[$app,$mode]+="$us "
		done
	done
	kill $epid $ppid
	wait $epid $ppid 2>/dev/null || true
	pids=""
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
printf "%-6s %14s %14s %7s   %12s %12s %7s\n" app "embedded r/s" "process r/s" ratio "embedded us" "process us" ratio
for app in hello flask; do
	e=$(echo "${rps[$app,embedded]}" | median)
	p=$(echo "${rps[$app,process]}" | median)
	ec=$(echo "${cpu[$app,embedded]}" | median)
	pc=$(echo "${cpu[$app,process]}" | median)
	awk -v a=$app -v e="$e" -v p="$p" -v ec="$ec" -v pc="$pc" 'BEGIN {printf "%-6s %14.0f %14.0f %6.2fx   %12.1f %12.1f %6.2fx\n", a, e, p, e / p, ec, pc, pc / ec}'
done
echo "(medians of $ROUNDS interleaved rounds of ${SECS}s, wrk -t1 -c32; CPU ratio = process / embedded)"
