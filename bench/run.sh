#!/usr/bin/env bash
# Builds and runs the gel benchmark (difftac gel vs MuJoCo flex); see docs/benchmarks.md.
#   bench/run.sh [seconds_timed_per_case]     (default 2; about 1 minute in all)
# Writes out/bench_gel.jsonl (one JSON object per line) and prints a table on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${DTAC_BUILD:-build}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  ./setup.sh
fi
cmake --build "$BUILD" -j "${DTAC_JOBS:-1}" --target bench_gel
mkdir -p out
echo "# bench_gel $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1)" >&2
"$BUILD/bench/bench_gel" "${1:-2}" | tee out/bench_gel.jsonl
echo "wrote out/bench_gel.jsonl" >&2
