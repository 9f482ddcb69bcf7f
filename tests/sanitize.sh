#!/usr/bin/env bash
# The GoogleTest suites under AddressSanitizer + UndefinedBehaviorSanitizer (issue 17 item 5).
#
#   tests/sanitize.sh                 build build-asan (if needed) and run ctest under ASan+UBSan
#   SAN_BUILD_ONLY=1 tests/sanitize.sh    only build
#   SAN_EXCLUDE='regex' tests/sanitize.sh ctest -E regex (default: '^Hertz\.', see below)
#   SAN_JOBS=2                          parallel build and ctest jobs (default 2)
#
# Build: libdifftac and both suites with -fsanitize=address,undefined -fno-sanitize-recover=all
# (a UB report is an error, not a line in a log), RelWithDebInfo for readable stacks, no CUDA
# (nvcc cannot take -fsanitize; the emulated device runs the same code path on the CPU).
# libmujoco.so is not instrumented: ASan sees its mallocs and frees (interposed), so leak
# detection covers it; tests/lsan.supp suppresses MuJoCo's own leaks, each entry documented, and
# lists separately the leaks that are OURS (issue 17, to fix) so that the run is red only on new
# findings. Docs: docs/fuzz.md, "Sanitizers".
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${SAN_BUILD:-build-asan}
JOBS=${SAN_JOBS:-2}
PY=${DTAC_PYTHON:-.venv/bin/python}
MJ_PKG=$("$PY" -c "import mujoco,os;print(os.path.dirname(mujoco.__file__))")
t0=$(date +%s)

echo "[sanitize] configuring $BUILD (address,undefined) against $MJ_PKG"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDTAC_CUDA=OFF \
  -DDTAC_SANITIZE=address,undefined \
  -DCMAKE_C_FLAGS="-fno-sanitize-recover=all" -DCMAKE_CXX_FLAGS="-fno-sanitize-recover=all" \
  -DMUJOCO_PYPI_DIR="$MJ_PKG" >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target difftac test_kernels test_plugin
t1=$(date +%s)
echo "[sanitize] build: $((t1 - t0)) s"
[ -n "${SAN_BUILD_ONLY:-}" ] && exit 0

export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"

echo "[sanitize] ctest under ASan+UBSan (ASAN_OPTIONS=$ASAN_OPTIONS)"
# Left out by default, to fit CI's time (each passed under ASan+UBSan when run, and all run
# unsanitized in ./test.sh): Hertz.* and Implicit.Hertz* (pure arithmetic on a finely graded
# block, 10-14 minutes each under ASan on two cores), and the longest rollouts (Grasp.*, the
# press-and-slide gradients, the device teams and batch comparisons: 30-70 s each unsanitized),
# whose code paths the shorter tests of the same suites cover. SAN_EXCLUDE= (empty) runs them.
SAN_EXCLUDE=${SAN_EXCLUDE-'^Hertz\.|^Implicit\.Hertz|^Grasp\.|^RolloutGrad\.PressAndSlide|^Device\.(TeamsOfThreads|EveryGeomType|BatchOfEnvironments)'}
set +e
ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" --timeout 1800 \
  ${SAN_EXCLUDE:+-E "$SAN_EXCLUDE"}
rc=$?
set -e
t2=$(date +%s)
echo "[sanitize] tests: $((t2 - t1)) s, total $((t2 - t0)) s, ctest exit $rc"
exit $rc
