#!/usr/bin/env bash
# The GPU checks in one run, for a machine with a CUDA GPU (docs/gpu.md): the CPU-GPU parity
# tests with device `cuda`, the element kernel's roofline, and the single- and many-environment
# step rates on the GPU. Writes everything to $OUT (default out/gpu).
#
# The device machine is bare and offline, so build here and carry the build and MuJoCo's library:
#   carry: build  .venv/lib/python3.11/site-packages/mujoco/libmujoco.so.4.0.0
#   command: bash bench/gpu.sh
# (the test binaries name /work/main/... paths: a link is made there when the tree is elsewhere)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
BUILD=${DTAC_BUILD:-build}
mkdir -p "$OUT"
if [ "$(pwd -P)" != "/work/main" ] && [ ! -e /work/main ]; then
  mkdir -p /work && ln -s "$(pwd -P)" /work/main
fi
{ nvidia-smi; nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv; } > "$OUT/nvidia-smi.txt" 2>&1
if [ ! -x "$BUILD/tests/test_plugin" ]; then ./setup.sh > "$OUT/setup.log" 2>&1 || exit 1; fi
rc=0

# 1. parity: every Device test runs its scenes on cpu, emu and cuda (kernels and batches too)
echo "== parity" >&2
"$BUILD/tests/test_plugin" --gtest_filter='Device.*:Batch.*' 2>&1 | tee "$OUT/parity.log" | grep -E "rel diff|OK|FAILED|SKIPPED|PASSED" >&2 || rc=1
grep -q "FAILED" "$OUT/parity.log" && rc=1
# the same scenes with each environment's team held to one thread block (no team barrier)
DTAC_DEV_BLOCKS=1 "$BUILD/tests/test_plugin" --gtest_filter='Device.*MatchesCpu:Device.BatchOf*' 2>&1 | tee "$OUT/parity_1block.log" | grep -E "rel diff|FAILED" >&2 || rc=1
grep -q "FAILED" "$OUT/parity_1block.log" && rc=1

# 2. the element kernel against the copy bandwidth
echo "== element kernel" >&2
"$BUILD/bench/bench_device" 2 > "$OUT/bench_device.jsonl" || rc=1

# 3. single environment (the 4x finer pad: 20 steps) and batches of N environments, on the GPU
# and on the CPU
echo "== step rates" >&2
DTAC_DEVICE=cuda "$BUILD/bench/bench_batch" 1 20 > "$OUT/bench_batch_cuda.jsonl" || rc=1
DTAC_DEVICE=cpu "$BUILD/bench/bench_batch" 1 0 > "$OUT/bench_batch_cpu.jsonl" || rc=1

# 4. one environment of the default pad by teams of 1 to 16 thread blocks (auto: above)
echo "== team size" >&2
for nb in 1 2 4 8 16; do
  DTAC_DEV_BLOCKS=$nb DTAC_DEVICE=cuda "$BUILD/bench/bench_batch" 1 0 single >> "$OUT/bench_team.jsonl" || rc=1
done
echo "gpu.sh: rc=$rc; results in $OUT" >&2
exit $rc
