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
# run.
one() {
	local bin=$1
	shift
	flock /tmp/shoal-bench.lock "$bin" -libs "$lib" -count 1 "$@" 2>&1 |
		awk -v lib="$lib" '$1 == lib { gsub(",", "", $3); x = $NF; sub("ns$", "", x); print $3, x + 0; exit }'
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
