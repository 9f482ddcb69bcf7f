"""Opens a scene that uses difftac's plugins in MuJoCo's interactive viewer.

    python -m difftac.viewer models/grasp.xml

Importing difftac registers the plugins first (the plain ``python -m mujoco.viewer`` would not know
them). Needs a display.
"""
import argparse
import os
import sys


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m difftac.viewer",
        description="Open an MJCF scene using difftac plugins in mujoco.viewer (needs a display).")
    ap.add_argument("scene", nargs="?", default=None,
                    help="MJCF file; without it the viewer opens empty (drag a file in)")
    ap.add_argument("--lib", default=None,
                    help="libdifftac.so to load (default: DIFFTAC_LIB, else the repository build)")
    ap.add_argument("--from-path", action="store_true",
                    help="let mujoco.viewer.launch_from_path load the scene (reloadable with "
                         "Ctrl+L; see docs/python.md for the first-step blow-up this can cause)")
    args = ap.parse_args(argv)
    if args.scene is not None and not os.path.isfile(args.scene):
        ap.error(f"no such scene file: {args.scene}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.lib:
        os.environ["DIFFTAC_LIB"] = args.lib
    import difftac  # noqa: F401  (registers the plugins)
    import mujoco.viewer
    print(f"difftac {difftac.version()} from {difftac.library_path()}", flush=True)
    if args.scene is None:
        mujoco.viewer.launch()
        return 0
    if args.from_path:
        mujoco.viewer.launch_from_path(os.path.abspath(args.scene))
        return 0
    # load here and run mj_forward before the viewer draws: a gel is placed at its site by the first
    # evaluation, and a scene drawn before any kinematics (launch_from_path) would place it with
    # all-zero site poses and blow up in the first step
    m = mujoco.MjModel.from_xml_path(os.path.abspath(args.scene))
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    mujoco.viewer.launch(m, d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
