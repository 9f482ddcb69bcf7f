#!/usr/bin/env bash
# Builds and runs the benchmarks; see docs/benchmarks.md.
#   bench_gel:     difftac gel vs MuJoCo flex
#   bench_tactile: difftac.tactile frame cost per output and image size, next to the gel step
#   bench/run.sh [gel_seconds_per_case [tactile_seconds_per_case]]   (defaults 2 and 1; ~80 s in all)
# Writes out/bench_gel.jsonl and out/bench_tactile.jsonl (one JSON object per line) and prints
# tables on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${DTAC_BUILD:-build}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  ./setup.sh
fi
cmake --build "$BUILD" -j "${DTAC_JOBS:-1}" --target bench_gel bench_tactile
mkdir -p out
echo "# benchmarks $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$BUILD/bench/bench_gel" "${1:-2}" | tee out/bench_gel.jsonl
echo "wrote out/bench_gel.jsonl" >&2
"$BUILD/bench/bench_tactile" "${2:-1}" | tee out/bench_tactile.jsonl
echo "wrote out/bench_tactile.jsonl" >&2
