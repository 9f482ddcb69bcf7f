"""grasp_images.py: the parallel gripper of models/grasp_tactile.xml closes on the 50 g box, lifts
it 4 cm and holds it; at the hold it writes what the tactile sensors on both pads see into out/:

    grasp_left_rgb.png, grasp_left_pressure.png, grasp_left_markers.png,
    grasp_right_rgb.png, grasp_right_pressure.png, grasp_right_markers.png,
    grasp_tactile.png (all of them in one figure)

    .venv/bin/python examples/grasp_images.py [--lib build/libdifftac.so] [--out out]

The control sequence is the one in the header of models/grasp.xml (open, close, lift, hold).
The pictures are drawn as seen from behind each pad (the sensor camera's view), turned so that
world up is up: the horizontal axis is world y seen from that camera, the vertical one world z.
Axes in mm about the pad's centre. Marker arrows are enlarged (the factor is in each title),
drawn on the rgb image with its contrast stretched 5x about the flat gel's colour: at the hold
the box's weight shears the pads' surfaces downwards by some 30 micrometres. The box face covers
the whole pad, so the rgb image is nearly the flat gel's colour (within 0.03) and the pressure
nearly uniform, higher along the pad's edges.
"""
import argparse
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
difftac = None  # the difftac package, imported in main() once --lib is known

# the control sequence of models/grasp.xml (s, m)
CLOSE_AT, LIFT_AT, LIFT_TIME, HOLD_AT = 0.1, 0.5, 0.6, 1.1
LIFT, CLOSED = 0.04, 0.02


def lift_target(t):
    s = min(max((t - LIFT_AT) / LIFT_TIME, 0.0), 1.0)
    return LIFT * s * s * (3 - 2 * s)


class Sensors:
    """the difftac.tactile sensors of one pad, read through the difftac package"""

    def __init__(self, m, d, side):
        self.side = side
        self.m, self.d = m, d
        self.names = {k: f"{side}_{k}" for k in ("rgb", "pressure", "markers", "force")}
        if any(mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, n) < 0
               for n in self.names.values()):
            raise SystemExit(f"the model lacks the {side}_* tactile sensors of grasp_tactile.xml")
        self.site = m.sensor_objid[m.sensor(self.names["rgb"]).id]

    def info(self, key):
        return difftac.tactile_info(self.m, self.d, self.names[key])

    def data(self, key):
        return difftac.sensor(self.m, self.d, self.names[key])

    def view(self):
        """2 x 2 matrix A: site-frame (x, y) -> picture (right, down), world up = picture up,
        right as seen by the camera (looking along the site's +z)"""
        R = self.d.site_xmat[self.site].reshape(3, 3)
        up = np.array([0.0, 0.0, 1.0])
        right = np.cross(R[:, 2], up)
        return np.array([R[:, :2].T @ right, R[:, :2].T @ -up])

    def image(self, key, channels):
        """the image turned into the picture frame (row 0 at the top), and its extent in mm
        (for imshow: right, up about the site's origin, the pad's centre)"""
        info = self.info(key)
        img = self.data(key).reshape(info.height, info.width, channels)  # [v, u, c]
        A = np.round(self.view()).astype(int)  # axis-aligned: a signed permutation
        if A[0, 0] == 0:  # picture rows along u: swap the axes
            img = img.transpose(1, 0, 2)
            sr, sd = A[0, 1], A[1, 0]
        else:
            sr, sd = A[0, 0], A[1, 1]
        if sd < 0:
            img = img[::-1]
        if sr < 0:
            img = img[:, ::-1]
        x1, y1 = info.x0 + info.width * info.pitch, info.y0 + info.height * info.pitch
        corners = np.array([[info.x0, info.y0], [x1, y1]])
        c = 1e3 * corners @ self.view().T  # picture (right, down), mm
        ext = [c[:, 0].min(), c[:, 0].max(), -c[:, 1].max(), -c[:, 1].min()]  # (right, up)
        return img[..., 0] if channels == 1 else img, ext

    def markers(self):
        """marker rest positions and displacements in the picture frame (right, up), mm"""
        info = self.info("markers")
        uv = difftac.marker_rest(self.m, self.d, self.names["markers"])
        rest = np.array([info.x0, info.y0]) + uv * info.pitch
        disp = self.data("markers").reshape(-1, 2) * info.pitch
        A = self.view() * np.array([[1.0], [-1.0]])  # (right, down) -> (right, up)
        return 1e3 * rest @ A.T, 1e3 * disp @ A.T


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default=os.path.join(
        ROOT, os.environ.get("DTAC_BUILD_DIR", "build"), "libdifftac.so"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "grasp_tactile.xml"))
    ap.add_argument("--out", default=os.path.join(ROOT, "out"))
    ap.add_argument("--hold", type=float, default=0.2, help="seconds of hold before the images")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    os.environ["DIFFTAC_LIB"] = os.path.abspath(args.lib)
    global difftac
    import difftac  # noqa: E402  (loads the library into mujoco)

    m = mujoco.MjModel.from_xml_path(args.model)
    d = mujoco.MjData(m)
    pads = [Sensors(m, d, side) for side in ("left", "right")]
    gels = ["left_gel", "right_gel"]
    box = m.body("object").id
    lift, grip = m.actuator("lift").id, m.actuator("grip").id

    # the sensors are only read at the end: skip their evaluation while stepping (the gels'
    # contact forces, which they read, are computed with the passive forces either way)
    m.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_SENSOR)
    phases = [("open", CLOSE_AT), ("close", LIFT_AT), ("lift", HOLD_AT),
              ("hold", HOLD_AT + args.hold)]
    t0 = time.time()
    for k, (name, t_end) in enumerate(phases):
        while d.time < t_end - 0.5 * m.opt.timestep:
            d.ctrl[lift] = lift_target(d.time)
            d.ctrl[grip] = 0.0 if d.time < CLOSE_AT else CLOSED
            mujoco.mj_step(m, d)
        fn = []
        for g in gels:
            fn.append(abs(difftac.contact_wrench(m, d, g)[0]))  # the pads squeeze along world x
        print(f"[{k + 1}/{len(phases)}] {name:<5} until t = {d.time:.2f} s: box z "
              f"{1e3 * d.xpos[box][2]:6.2f} mm, pad normal forces {fn[0]:.2f} / {fn[1]:.2f} N "
              f"({time.time() - t0:.1f} s)", flush=True)
    m.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_SENSOR)
    mujoco.mj_forward(m, d)
    if d.xpos[box][2] < 0.015 + 0.5 * LIFT:
        print("warning: the box was not lifted")

    written = []

    def save(fig, name):
        fig.savefig(os.path.join(args.out, name), dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(name)

    # one scale for both pads' arrows: the largest displacement drawn as 1.5 mm
    dmax = max(np.abs(p.markers()[1]).max() for p in pads)
    scale = float(f"{1.5 / max(dmax, 1e-9):.1g}")
    pmax = max(p.image("pressure", 1)[0].max() for p in pads)

    def draw(ax, pad, key, fig=None):
        if key == "rgb":
            img, ext = pad.image("rgb", 3)
            ax.imshow(img, extent=ext)
            ax.set_title(f"{pad.side} pad: rgb")
        elif key == "pressure":
            img, ext = pad.image("pressure", 1)
            im = ax.imshow(1e-3 * img, extent=ext, cmap="inferno", vmin=0, vmax=1e-3 * pmax)
            if fig is not None:
                fig.colorbar(im, ax=ax, label="pressure (kPa)", shrink=0.85)
            f = pad.data("force")
            ax.set_title(f"{pad.side} pad: pressure (normal {-f[2]:.2f} N)")
        else:
            # on the rgb image with its contrast stretched about the flat gel's colour
            img, ext = pad.image("rgb", 3)
            bg = np.array(pad.info("rgb").background)
            ax.imshow(np.clip(bg + 5 * (img - bg), 0, 1), extent=ext, alpha=0.6)
            rest, disp = pad.markers()
            ax.quiver(rest[:, 0], rest[:, 1], scale * disp[:, 0], scale * disp[:, 1],
                      color="crimson", angles="xy", scale_units="xy", scale=1, width=0.008)
            ax.plot(rest[:, 0], rest[:, 1], "k.", ms=3)
            f = pad.data("force")
            ax.set_title(f"{pad.side} pad: markers x{scale:g} (max "
                         f"{1e3 * np.hypot(disp[:, 0], disp[:, 1]).max():.0f} µm)\n"
                         f"shear {np.hypot(f[0], f[1]):.2f} N", fontsize=9)
        ax.set_xlabel("across (world y), seen from behind (mm)", fontsize=8)
        ax.set_ylabel("up (world z) (mm)", fontsize=8)

    for pad in pads:
        for key in ("rgb", "pressure", "markers"):
            fig, ax = plt.subplots(figsize=(4.6, 3.6))
            draw(ax, pad, key, fig)
            save(fig, f"grasp_{pad.side}_{key}.png")
    fig, axs = plt.subplots(2, 3, figsize=(13, 7.5), layout="constrained")
    for i, pad in enumerate(pads):
        for j, key in enumerate(("rgb", "pressure", "markers")):
            draw(axs[i, j], pad, key, fig)
    fig.suptitle(f"difftac.tactile on both pads of the gripper holding the 50 g box "
                 f"(t = {d.time:.2f} s)")
    save(fig, "grasp_tactile.png")

    for pad in pads:
        f = pad.data("force")
        print(f"{pad.side}: force on the gel (site frame) {np.round(f[:3], 3)} N; max pressure "
              f"{1e-3 * pad.image('pressure', 1)[0].max():.1f} kPa; max marker displacement "
              f"{np.abs(pad.data('markers')).max():.2f} px")
    print("wrote", ", ".join(written), "to", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
