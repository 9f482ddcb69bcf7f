"""tactile_images.py: presses the GelSight-Mini-sized gel of models/press_tactile.xml onto the
sphere, slides it a little, and writes what the difftac.tactile sensors see into out/:
rgb.png, depth.png, pressure.png, shear.png, markers.png and the combined
tactile.png (RGB, depth, pressure, markers; the README picture).

    .venv/bin/python examples/tactile_images.py [--lib build/libdifftac.so] [--out out]

Image axes: column u along the gel site's +x, row v along its +y, row 0 at the top of each
picture (docs/tactile.md). sensordata layouts: rgb H x W x 3, depth/pressure H x W,
shear H x W x 2, markers N x 2, force 6.
"""
import argparse
import ctypes
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def marker_rest(lib, m, d, name):
    """rest pixel positions of a markers sensor, from the C API"""
    sid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, name)
    n = m.sensor_dim[sid] // 2
    uv = np.zeros((n, 2))
    lib.dtac_tactile_marker_rest.restype = ctypes.c_int
    lib.dtac_tactile_marker_rest(ctypes.c_void_p(m._address), ctypes.c_void_p(d._address),
                                 ctypes.c_int(sid), uv.ctypes.data_as(ctypes.c_void_p))
    return uv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default=os.path.join(
        ROOT, os.environ.get("DTAC_BUILD_DIR", "build"), "libdifftac.so"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "press_tactile.xml"))
    ap.add_argument("--out", default=os.path.join(ROOT, "out"))
    ap.add_argument("--press", type=float, default=0.0008, help="finger travel past touch, m")
    ap.add_argument("--slide", type=float, default=0.0005, help="sideways slide, m")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    mujoco.mj_loadPluginLibrary(args.lib)
    lib = ctypes.CDLL(args.lib)
    m = mujoco.MjModel.from_xml_path(args.model)
    d = mujoco.MjData(m)

    # finger over the sphere (top at z = 20 mm), gel face 0.5 mm above it; the gel is placed at
    # the site by the first step after the reset
    x0 = -0.05
    touch = -0.0065  # finger z at which the gel face (z = 0.026 + qz) meets the sphere top
    d.qpos[:2] = [x0, touch + 0.0005]
    t0 = time.time()
    steps = [(0.06, touch + 0.0005, 0), (0.12, touch - args.press, 0),
             (0.10, touch - args.press, args.slide)]
    for dur, z, dx in steps:
        n = int(round(dur / m.opt.timestep))
        z_start, dx_start = d.ctrl[1] if d.time > 0 else z, d.ctrl[0] - x0 if d.time > 0 else 0
        for i in range(n):
            s = (i + 1) / n
            d.ctrl[0] = x0 + dx_start + (dx - dx_start) * s
            d.ctrl[1] = z_start + (z - z_start) * s
            mujoco.mj_step(m, d)
    mujoco.mj_forward(m, d)
    print(f"simulated {d.time:.2f} s in {time.time() - t0:.1f} s")

    H, W = 240, 320
    rgb = d.sensor("rgb").data.reshape(H, W, 3)
    depth = d.sensor("depth").data.reshape(H, W)
    pressure = d.sensor("pressure").data.reshape(H, W)
    shear = d.sensor("shear").data.reshape(H, W, 2)
    markers = d.sensor("markers").data.reshape(-1, 2)
    force = d.sensor("force").data
    pitch = 6.5e-5
    print(f"force on the gel (site frame): F = {force[:3]} N, torque = {force[3:]} N m")
    print(f"sum pressure dA = {pressure.sum() * pitch**2:.4f} N (= -Fz), "
          f"sum shear dA = {shear.reshape(-1, 2).sum(0) * pitch**2} N (= Fx, Fy)")
    print(f"max depth {1e3 * depth.max():.3f} mm, max pressure {1e-3 * pressure.max():.1f} kPa, "
          f"max marker displacement {np.abs(markers).max():.2f} px")
    rest = marker_rest(lib, m, d, "markers")

    written = []

    def save(fig, name):
        fig.savefig(os.path.join(args.out, name), dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(name)

    # one picture per output
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow(rgb)
    ax.set_title("rgb")
    save(fig, "rgb.png")
    fig, ax = plt.subplots(figsize=(4.6, 3))
    im = ax.imshow(1e3 * depth, cmap="viridis")
    fig.colorbar(im, label="indentation, mm")
    ax.set_title("depth")
    save(fig, "depth.png")
    fig, ax = plt.subplots(figsize=(4.6, 3))
    im = ax.imshow(1e-3 * pressure, cmap="inferno")
    fig.colorbar(im, label="pressure, kPa")
    ax.set_title("pressure")
    save(fig, "pressure.png")
    fig, ax = plt.subplots(figsize=(4.6, 3))
    mag = np.hypot(shear[..., 0], shear[..., 1])
    im = ax.imshow(1e-3 * mag, cmap="magma")
    fig.colorbar(im, label="|shear|, kPa")
    s = 12
    vv, uu = np.mgrid[s // 2:H:s, s // 2:W:s]
    ax.quiver(uu, vv, shear[s // 2::s, s // 2::s, 0], shear[s // 2::s, s // 2::s, 1],
              color="c", angles="xy", scale_units="xy", scale=max(mag.max(), 1e-12) / (1.5 * s))
    ax.set_title("shear traction on the gel")
    save(fig, "shear.png")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow(rgb)
    scale = 5.0
    ax.quiver(rest[:, 0] - 0.5, rest[:, 1] - 0.5, scale * markers[:, 0], scale * markers[:, 1],
              color="w", angles="xy", scale_units="xy", scale=1)
    ax.plot(rest[:, 0] - 0.5, rest[:, 1] - 0.5, "k.", ms=3)
    ax.set_title(f"markers (displacement x{scale:g})")
    save(fig, "markers.png")

    # the combined picture (README): physical axes in mm, u along the site's +x, v along +y
    x0, y0 = -0.5 * W * pitch, -0.5 * H * pitch
    ext = [1e3 * x0, 1e3 * (x0 + W * pitch), 1e3 * (y0 + H * pitch), 1e3 * y0]
    rest_mm = 1e3 * (np.array([x0, y0]) + rest * pitch)
    disp_mm = 1e3 * markers * pitch
    fig, axs = plt.subplots(1, 4, figsize=(17, 3.6), layout="constrained")
    axs[0].imshow(rgb, extent=ext)
    axs[0].set_title("RGB (lighting model)")
    im = axs[1].imshow(1e3 * depth, cmap="viridis", extent=ext)
    fig.colorbar(im, ax=axs[1], label="indentation (mm)", shrink=0.85)
    axs[1].set_title("depth")
    im = axs[2].imshow(1e-3 * pressure, cmap="inferno", extent=ext)
    fig.colorbar(im, ax=axs[2], label="pressure (kPa)", shrink=0.85)
    axs[2].set_title("pressure")
    axs[3].imshow(rgb, extent=ext, alpha=0.6)
    axs[3].plot(rest_mm[:, 0], rest_mm[:, 1], "k.", ms=4)
    axs[3].quiver(rest_mm[:, 0], rest_mm[:, 1], scale * disp_mm[:, 0], scale * disp_mm[:, 1],
                  color="crimson", angles="xy", scale_units="xy", scale=1, width=0.008)
    axs[3].set_title(f"markers (displacement x{scale:g}, "
                     f"max {1e3 * np.abs(disp_mm).max():.0f} µm)")
    for a in axs:
        a.set_xlabel("u (mm)")
    axs[0].set_ylabel("v (mm)")
    fig.suptitle(f"difftac.tactile: a 6 mm sphere pressed {1e3 * depth.max():.2f} mm into a "
                 f"GelSight-Mini-sized gel and slid {1e3 * args.slide:.1f} mm along u "
                 f"({-force[2]:.2f} N normal, {np.hypot(force[0], force[1]):.2f} N shear)",
                 fontsize=11)
    save(fig, "tactile.png")
    print("wrote", ", ".join(written), "to", args.out)


if __name__ == "__main__":
    main()
