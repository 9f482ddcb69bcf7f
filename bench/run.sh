#!/usr/bin/env bash
# Builds and runs the benchmarks; see docs/benchmarks.md.
#   bench_gel:     difftac gel vs MuJoCo flex
#   bench_tactile: difftac.tactile frame cost per output and image size, next to the gel step
#   bench_grad:    the tape's reverse pass against the forward pass; tape memory for 1000 steps
#   bench_batch:   many environments: dtac_batch_step at N = 1 ... 4096 against one mj_step;
#                  one environment of the default and a 4x finer pad
#   bench/run.sh [gel_seconds_per_case [tactile_seconds_per_case [grad_steps
#                [batch_seconds_per_case [fine_pad_steps]]]]]
#                (defaults 2, 1, 100, 2 and 1; about 5 min in all, 2.5 of them bench_batch,
#                half of that the fine pad: fine_pad_steps 0 skips it)
# Writes out/bench_gel.jsonl, out/bench_tactile.jsonl, out/bench_grad.jsonl and
# out/bench_batch.jsonl (one JSON object per line) and prints
# tables on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${DTAC_BUILD:-build}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  ./setup.sh
fi
cmake --build "$BUILD" -j "${DTAC_JOBS:-1}" --target bench_gel bench_tactile bench_grad bench_batch
mkdir -p out
echo "# benchmarks $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$BUILD/bench/bench_gel" "${1:-2}" | tee out/bench_gel.jsonl
echo "wrote out/bench_gel.jsonl" >&2
"$BUILD/bench/bench_tactile" "${2:-1}" | tee out/bench_tactile.jsonl
echo "wrote out/bench_tactile.jsonl" >&2
"$BUILD/bench/bench_grad" "${3:-100}" | tee out/bench_grad.jsonl
echo "wrote out/bench_grad.jsonl" >&2
"$BUILD/bench/bench_batch" "${4:-2}" "${5:-1}" | tee out/bench_batch.jsonl
echo "wrote out/bench_batch.jsonl" >&2
