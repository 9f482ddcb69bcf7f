"""Opens a scene that uses difftac's plugins in MuJoCo's interactive viewer, with what the tactile
sensors see drawn over it.

    python -m difftac.viewer models/press_tactile.xml --ctrl 0,-0.007
    python -m difftac.viewer models/grasp.xml --plain       # mujoco.viewer.launch, no tactile images

Importing difftac registers the plugins first (the plain ``python -m mujoco.viewer`` would not know
them). Needs a display. By default the scene runs in ``mujoco.viewer.launch_passive``: this module
steps the physics in real time (as far as the CPU allows) and, every frame, puts each image
sensor's output (rgb as is; depth, pressure and shear as colour maps; markers as dots and
displacement arrows) along the bottom of the 3D view with ``Handle.set_images`` and their names,
ranges and the force sensors' values in a text block with ``Handle.set_texts``. Space pauses the
physics, backspace resets (``--ctrl`` applied again).
"""
import argparse
import os
import sys
import time

import numpy as np

# viridis at 9 evenly spaced points (matplotlib's table), interpolated linearly
_VIRIDIS = np.array([
    [0.267, 0.005, 0.329], [0.279, 0.175, 0.483], [0.230, 0.322, 0.546], [0.173, 0.449, 0.558],
    [0.128, 0.567, 0.551], [0.158, 0.684, 0.502], [0.369, 0.789, 0.383], [0.678, 0.864, 0.190],
    [0.993, 0.906, 0.144]])
# floors of the colour maps' ranges (as the C viewer): a touch-free gel stays dark
_FLOOR = {"depth": 1e-4, "pressure": 1e3, "shear": 1e3}
_UNIT = {"depth": (1e3, "mm"), "pressure": (1e-3, "kPa"), "shear": (1e-3, "kPa")}


def colormap(x, vmax):
    """H x W array -> H x W x 3 uint8 through viridis, 0 .. vmax"""
    t = np.clip(np.asarray(x, float) / vmax, 0.0, 1.0) * (len(_VIRIDIS) - 1)
    i = np.minimum(t.astype(int), len(_VIRIDIS) - 2)
    f = (t - i)[..., None]
    rgb = _VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f
    return (255 * rgb + 0.5).astype(np.uint8)


def _markers_image(m, d, name, info):
    import difftac
    img = np.zeros((info.height, info.width, 3), np.uint8)
    img[:] = (40, 40, 48)
    rest = difftac.marker_rest(m, d, name)
    disp = difftac.sensor(m, d, name)
    longest = float(np.abs(disp).max()) if disp.size else 0.0
    # enlarged so that the longest arrow is half the marker spacing (at least x5)
    spacing = info.marker_pitch / info.pitch
    scale = max(5.0, 0.5 * spacing / longest) if longest > 0 else 5.0
    for (u, v), (du, dv) in zip(rest, disp):
        for s in np.linspace(0, 1, 12):
            x, y = int(round(u + s * scale * du)), int(round(v + s * scale * dv))
            if 0 <= x < info.width and 0 <= y < info.height:
                img[y, x] = (255, 200, 60)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                x, y = int(round(u)) + dx, int(round(v)) + dy
                if 0 <= x < info.width and 0 <= y < info.height:
                    img[y, x] = (255, 255, 255)
    return img, f"x{scale:.0f}"


def tactile_panels(m, d):
    """[(sensor name, H x W x 3 uint8 image, label)] for every image-producing difftac.tactile
    sensor (rgb, depth, pressure, shear, markers), and [(name, force 6-vector)] for the force
    sensors, from the outputs MuJoCo last computed"""
    import difftac
    panels, forces = [], []
    for name in difftac.tactile_sensors(m):
        info = difftac.tactile_info(m, d, name)
        out = info.output
        y = difftac.sensor(m, d, name)
        if out == "force":
            forces.append((name, np.array(y)))
            continue
        if out == "rgb":
            img = (255 * np.clip(y, 0, 1) + 0.5).astype(np.uint8)
            label = "rgb"
        elif out == "markers":
            img, label = _markers_image(m, d, name, info)
            label = f"markers {label}"
        else:
            v = np.linalg.norm(y, axis=-1) if out == "shear" else np.asarray(y)
            vmax = max(float(v.max()), _FLOOR[out])
            k, unit = _UNIT[out]
            img = colormap(v, vmax)
            label = f"{out} 0-{k * vmax:.3g} {unit}"
        panels.append((name, img, label))
    return panels, forces


def layout(viewport_width, viewport_height, panels, max_frac=0.5, gap=4):
    """Places the panels in a grid in the bottom-left of the 3D view (at most max_frac of its
    height), each enlarged by an integer factor (or shrunk by an integer stride) to the largest
    size that fits, the column count chosen for the largest tiles: [(left, bottom, image)] in the
    viewport's pixels, in reading order (left to right, then the next row down)"""
    if not panels:
        return []
    n = len(panels)
    wmax = max(img.shape[1] for _, img, _ in panels)
    hmax = max(img.shape[0] for _, img, _ in panels)
    best = None
    for cols in range(1, n + 1):
        rows = -(-n // cols)
        s = min((viewport_width - gap * (cols + 1)) / cols / wmax,
                (max_frac * viewport_height - gap * (rows + 1)) / rows / hmax)
        if best is None or s > best[0]:
            best = (s, cols, rows)
    s, cols, rows = best
    if s >= 1:
        k = int(s)
        scale = lambda img: np.repeat(np.repeat(img, k, axis=0), k, axis=1)  # noqa: E731
        cw, ch = wmax * k, hmax * k
    else:
        k = int(np.ceil(1 / max(s, 1e-6)))
        scale = lambda img: img[::k, ::k]  # noqa: E731
        cw, ch = -(-wmax // k), -(-hmax // k)
    placed = []
    for i, (_, img, _) in enumerate(panels):
        r, c = divmod(i, cols)
        im = np.ascontiguousarray(scale(img))
        left = gap + c * (cw + gap)
        bottom = gap + (rows - 1 - r) * (ch + gap)
        placed.append((int(left), int(bottom), im))
    return placed


def _texts(panels, forces):
    left = "\n".join(f"{i + 1}: {name}" for i, (name, _, _) in enumerate(panels))
    if panels:
        left = "tactile, bottom left,\nin reading order\n" + left
    right = "\n".join(label for _, _, label in panels)
    if panels:
        right = "\n\n" + right
    for name, f in forces:
        left += f"\n{name}"
        right += f"\nF {f[0]:+.2f} {f[1]:+.2f} {f[2]:+.2f} N"
    return left, right


def run_passive(m, d, ctrl=None, duration=None, realtime=True, fps=30.0, ui=True):
    """The passive viewer with tactile overlays; returns when the window closes (or after
    ``duration`` seconds of wall time)"""
    import mujoco
    import mujoco.viewer

    state = {"paused": False, "reset": False}

    def key(keycode):
        if keycode == 32:            # space
            state["paused"] = not state["paused"]
        elif keycode == 259:         # backspace
            state["reset"] = True

    def apply_ctrl():
        if ctrl is not None:
            d.ctrl[:len(ctrl)] = ctrl

    apply_ctrl()
    mujoco.mj_forward(m, d)
    t_start = time.time()
    with mujoco.viewer.launch_passive(m, d, key_callback=key, show_left_ui=ui,
                                      show_right_ui=ui) as v:
        sim_t0, wall_t0 = d.time, time.time()
        frames = 0
        while v.is_running():
            frame_start = time.time()
            with v.lock():
                if state["reset"]:
                    mujoco.mj_resetData(m, d)
                    apply_ctrl()
                    mujoco.mj_forward(m, d)
                    state["reset"] = False
                    sim_t0, wall_t0 = d.time, time.time()
                if not state["paused"]:
                    # catch up with the wall clock, but give the frame back after 1/fps
                    while True:
                        mujoco.mj_step(m, d)
                        behind = (time.time() - wall_t0) - (d.time - sim_t0)
                        if not realtime or behind <= 0 or time.time() - frame_start > 1 / fps:
                            break
                panels, forces = tactile_panels(m, d)
            vp = v.viewport
            if vp is not None and panels:
                imgs = []
                for left, bottom, im in layout(vp.width, vp.height, panels):
                    imgs.append((mujoco.MjrRect(vp.left + left, vp.bottom + bottom, im.shape[1],
                                                im.shape[0]), im))
                v.set_images(imgs)
            if panels or forces:
                t1, t2 = _texts(panels, forces)
                v.set_texts((mujoco.mjtFontScale.mjFONTSCALE_100, mujoco.mjtGridPos.mjGRID_TOPRIGHT,
                             t1, t2))
            v.sync()
            frames += 1
            if duration is not None and time.time() - t_start > duration:
                return frames
            rest = 1 / fps - (time.time() - frame_start)
            if rest > 0 and (state["paused"] or realtime):
                time.sleep(rest)
    return frames


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m difftac.viewer",
        description="Open an MJCF scene using difftac plugins in mujoco.viewer, with the tactile "
                    "sensors' images drawn over it (needs a display).")
    ap.add_argument("scene", nargs="?", default=None,
                    help="MJCF file; without it the viewer opens empty (drag a file in; --plain)")
    ap.add_argument("--lib", default=None,
                    help="libdifftac.so to load (default: DIFFTAC_LIB, else the repository build)")
    ap.add_argument("--ctrl", default=None,
                    help="comma-separated mjData.ctrl applied at the start and after each reset")
    ap.add_argument("--plain", action="store_true",
                    help="mujoco.viewer.launch (MuJoCo steps the physics; no tactile images)")
    ap.add_argument("--from-path", action="store_true",
                    help="with --plain: let mujoco.viewer.launch_from_path load the scene "
                         "(reloadable with Ctrl+L; see docs/python.md for the first-step blow-up "
                         "this can cause)")
    ap.add_argument("--duration", type=float, default=None,
                    help="close after this many seconds (for scripted runs)")
    ap.add_argument("--fast", action="store_true", help="do not hold the physics to real time")
    ap.add_argument("--no-ui", action="store_true",
                    help="hide the viewer's side panels (more room for the scene and images)")
    args = ap.parse_args(argv)
    if args.scene is not None and not os.path.isfile(args.scene):
        ap.error(f"no such scene file: {args.scene}")
    if args.ctrl is not None:
        try:
            args.ctrl = [float(c) for c in args.ctrl.split(",")]
        except ValueError:
            ap.error(f"--ctrl takes comma-separated numbers, not {args.ctrl!r}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.lib:
        os.environ["DIFFTAC_LIB"] = args.lib
    import difftac  # noqa: F401  (registers the plugins)
    import mujoco
    import mujoco.viewer
    print(f"difftac {difftac.version()} from {difftac.library_path()}", flush=True)
    if args.scene is None:
        mujoco.viewer.launch()
        return 0
    if args.plain and args.from_path:
        mujoco.viewer.launch_from_path(os.path.abspath(args.scene))
        return 0
    # load here and run mj_forward before the viewer draws: a gel is placed at its site by the first
    # evaluation, and a scene drawn before any kinematics (launch_from_path) would place it with
    # all-zero site poses and blow up in the first step
    m = mujoco.MjModel.from_xml_path(os.path.abspath(args.scene))
    d = mujoco.MjData(m)
    if args.ctrl is not None:
        d.ctrl[:len(args.ctrl)] = args.ctrl
    mujoco.mj_forward(m, d)
    if args.plain:
        mujoco.viewer.launch(m, d)
        return 0
    frames = run_passive(m, d, ctrl=args.ctrl, duration=args.duration, realtime=not args.fast,
                         ui=not args.no_ui)
    print(f"viewer closed after {frames} frames, t = {d.time:.3f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
