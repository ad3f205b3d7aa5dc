#!/usr/bin/env bash
# multicore.sh measures how shoal, pond and ants scale with the number of
# CPUs: it runs the noop, cpu and sleep workloads at GOMAXPROCS 2, 4, 8 and
# 16 (each row in a fresh child process, which inherits GOMAXPROCS; 3 runs
# per row, the median reported) and writes one JSON file per value,
# $OUT/p2.json ... $OUT/p16.json, one object per row. It prints the machine
# (architecture, CPU count, CPU model) first; docs/MULTICORE.md is written
# from its output. Run it from the repository root on a machine with at
# least 16 cores, after building the binary:
#
#   go build -o bin/shoalbench ./bench/cmd/shoalbench
#   OUT=/tmp/multicore bash bench/scripts/multicore.sh
#
# OUT defaults to a new temporary directory; SHOALBENCH names another binary
# (default ./bin/shoalbench).
set -euo pipefail

bin=${SHOALBENCH:-./bin/shoalbench}
OUT=${OUT:-$(mktemp -d -t shoal-multicore.XXXXXX)}
mkdir -p "$OUT"
if [ ! -x "$bin" ]; then
	echo "multicore.sh: $bin is not an executable (build it first, or set SHOALBENCH)" >&2
	exit 2
fi

libs=shoal.Submit,shoal.Go,pond,ants.Pool,chan+lanes,ants.Pool+lanes,pond+lanes

{
	echo "arch: $(uname -m)"
	echo "nproc: $(nproc)"
	echo "cpu: $(awk -F': *' '$1 ~ /^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel: $(uname -sr)"
} | tee "$OUT/machine.txt"
echo "output: $OUT"

for P in 2 4 8 16; do
	began=$SECONDS
	GOMAXPROCS=$P "$bin" -count 3 -json -workload noop,cpu,sleep -libs "$libs" >"$OUT/p$P.json"
	echo "GOMAXPROCS=$P: $(wc -l <"$OUT/p$P.json") rows in $((SECONDS - began))s" | tee -a "$OUT/machine.txt"
done
