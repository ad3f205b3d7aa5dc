#!/usr/bin/env bash
# pair.sh compares two shoalbench binaries on one row, in alternating runs,
# and prints the median of the paired ratios B/A with its quartiles. On a
# small, noisy machine a change of a few percent shows only this way: the
# two builds see the same drift, and the median of many pairs ignores the
# runs a neighbour disturbed.
#
#   git stash; go build -o /tmp/a ./bench/cmd/shoalbench; git stash pop
#   go build -o /tmp/b ./bench/cmd/shoalbench
#   bench/scripts/pair.sh 20 /tmp/a /tmp/b -workload sleep -producers 8
#
# Each run is one shoalbench child (a fresh process) of the row named by
# -lib (default shoal.Submit); the order of A and B alternates from pair to
# pair. Runs take /tmp/shoal-bench.lock (flock), so two comparisons on one
# machine do not overlap.
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

# one BIN prints the row's ns/task from one run.
one() {
	local bin=$1
	shift
	flock /tmp/shoal-bench.lock "$bin" -libs "$lib" -count 1 "$@" 2>&1 |
		awk -v lib="$lib" '$1 == lib { gsub(",", "", $3); print $3; exit }'
}

ratios=()
for i in $(seq "$pairs"); do
	if ((i % 2)); then
		ta=$(one "$a" "$@")
		tb=$(one "$b" "$@")
	else
		tb=$(one "$b" "$@")
		ta=$(one "$a" "$@")
	fi
	if [ -z "$ta" ] || [ -z "$tb" ]; then
		echo "pair $i: no $lib row in the output (check the flags)" >&2
		exit 1
	fi
	r=$(awk -v x="$tb" -v y="$ta" 'BEGIN { printf "%.3f", x / y }')
	ratios+=("$r")
	echo "pair $i: A $ta ns/task, B $tb ns/task, B/A $r"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '
	{ v[NR] = $1 }
	END {
		printf "median B/A %.3f, quartiles %.3f and %.3f, %d pairs\n",
			v[int((NR + 1) / 2)], v[int((NR + 3) / 4)], v[int((3 * NR + 1) / 4)], NR
	}'
