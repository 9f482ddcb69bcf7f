#!/usr/bin/env bash
# Sets everything up (./setup.sh) and runs every test: C/C++ GoogleTest suites through ctest, then
# the Python tests. Long soak and benchmark runs are separate (bench/, docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
BUILD=${DTAC_BUILD:-build}
echo "[test] ctest"
ctest --test-dir "$BUILD" --output-on-failure -j "${DTAC_TEST_JOBS:-2}" --timeout 900
if ls tests/python/test_*.py >/dev/null 2>&1; then
  echo "[test] pytest"
  DTAC_BUILD_DIR="$BUILD" .venv/bin/python -m pytest -q tests/python
fi
