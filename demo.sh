#!/usr/bin/env bash
# Sets everything up (./setup.sh) and runs the demo: a GelSight-Mini-sized gel pressed into a
# sphere, a cylinder and a box edge (force-indentation tables), a two-pad grasp lifting a box,
# the pictures (out/press.png, out/tactile.png, ...), and gradients: the gel's stiffness and
# friction identified from a tactile recording (out/sysid.png).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
BUILD=${DTAC_BUILD:-build}
echo; echo "[demo 1/5] press: force against indentation"
"$BUILD/examples/press"
echo; echo "[demo 2/5] grasp: two gel pads lift a 50 g box"
"$BUILD/examples/grasp"
echo; echo "[demo 3/5] gel indentation map and force curve -> out/press.png"
DTAC_BUILD_DIR="$BUILD" .venv/bin/python examples/press_plot.py
echo; echo "[demo 4/5] tactile images -> out/"
DTAC_BUILD_DIR="$BUILD" .venv/bin/python examples/tactile_images.py
echo; echo "[demo 5/5] gradients: young and friction from a marker recording -> out/sysid.png"
DTAC_BUILD_DIR="$BUILD" .venv/bin/python examples/sysid.py --quick
