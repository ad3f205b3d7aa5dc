#!/usr/bin/env bash
# pair.sh compares two shoalbench binaries on one row, in alternating runs,
# and prints the median of the paired ratios B/A with its quartiles. On a
# small, noisy machine a change of a few percent shows only this way: the
# two builds see the same drift, and the median of many pairs ignores the
# runs a neighbour disturbed.
#
#   git worktree add /tmp/base HEAD
#   (cd /tmp/base && go build -o /tmp/a ./bench/cmd/shoalbench)
#   git worktree remove /tmp/base
#   go build -o /tmp/b ./bench/cmd/shoalbench
#   bench/scripts/pair.sh 20 /tmp/a /tmp/b -workload sleep -producers 8
#
# Each run is one shoalbench child (a fresh process) of the row named by
# -lib (default shoal.Submit); the order of A and B alternates from pair to
# pair. A pair whose two runs measured xcore more than twofold apart (the
# host moved the CPUs between them) is left out of the median. Runs take
# /tmp/shoal-bench.lock (flock), so two comparisons on one machine do not
# overlap.
set -euo pipefail

if [ $# -lt 3 ]; then
	echo "usage: $0 PAIRS BIN_A BIN_B [-lib ROW] [shoalbench flags...]" >&2
	exit 2
fi
pairs=$1 a=$2 b=$3
shift 3
lib=shoal.Submit
if [ "${1:-}" = "-lib" ]; then
	lib=$2
	shift 2
fi

# one BIN prints the row's ns/task and its xcore (ns, 0 if absent) from one
# run; if BIN fails, it prints BIN's output on stderr and fails. The table
# prints xcore as a duration: 240ns, 1.23µs, 2.5ms. awk reads the whole
# output, so the binary never writes to a closed pipe.
one() {
	local bin=$1 out
	shift
	if ! out=$(flock /tmp/shoal-bench.lock "$bin" -libs "$lib" -count 1 "$@" 2>&1); then
		printf '%s failed:\n%s\n' "$bin" "$out" >&2
		return 1
	fi
	printf '%s\n' "$out" | awk -v lib="$lib" '
		function ns(d, v) {
			v = d + 0
			if (d ~ /ns$/) return v
			if (d ~ /µs$/) return v * 1e3
			if (d ~ /ms$/) return v * 1e6
			if (d ~ /s$/) return v * 1e9
			return v
		}
		!found && $1 == lib { gsub(",", "", $3); t = $3; x = ns($NF); found = 1 }
		END { if (found) printf "%s %.0f\n", t, x }'
}

ratios=()
moved=0
for i in $(seq "$pairs"); do
	if ((i % 2)); then
		ra=$(one "$a" "$@")
		rb=$(one "$b" "$@")
	else
		rb=$(one "$b" "$@")
		ra=$(one "$a" "$@")
	fi
	if [ -z "$ra" ] || [ -z "$rb" ]; then
		echo "pair $i: no $lib row in the output (check the flags)" >&2
		exit 1
	fi
	read -r ta xa <<<"$ra"
	read -r tb xb <<<"$rb"
	r=$(awk -v x="$tb" -v y="$ta" 'BEGIN { printf "%.3f", x / y }')
	# A pair whose runs' xcore differ more than twofold ran with the host's
	# CPUs placed differently (see docs/BENCHMARKS.md): left out.
	if awk -v p="$xa" -v q="$xb" 'BEGIN { exit !(p > 0 && q > 0 && (p > 2 * q || q > 2 * p)) }'; then
		moved=$((moved + 1))
		echo "pair $i: A $ta ns/task (xcore ${xa} ns), B $tb ns/task (xcore ${xb} ns): the CPUs moved between the runs, left out"
		continue
	fi
	ratios+=("$r")
	echo "pair $i: A $ta ns/task, B $tb ns/task, B/A $r"
done
if [ ${#ratios[@]} -eq 0 ]; then
	echo "no pair ran with the CPUs placed alike in both runs" >&2
	exit 1
fi
# The median is the middle ratio, or the mean of the two middle ones; the
# quartiles are the ratios of rank ceil(n/4) from either end (nearest
# rank), so that both lie as far from the median.
printf '%s\n' "${ratios[@]}" | sort -n | awk -v moved="$moved" '
	{ v[NR] = $1 }
	END {
		q = int((NR + 3) / 4)
		printf "median B/A %.3f, quartiles %.3f and %.3f, %d pairs", (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2, v[q], v[NR + 1 - q], NR
		if (moved > 0) printf " (%d more left out: the CPUs moved between their runs)", moved
		printf "\n"
	}'
