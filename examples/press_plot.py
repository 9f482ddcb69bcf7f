"""Presses the GelSight-Mini-sized gel of models/press.xml into the sphere and plots what it does:
the indentation of the gel's contact face and the force-indentation curve. Writes out/press.png.

    .venv/bin/python examples/press_plot.py
"""
import pathlib
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mujoco
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
import difftac  # noqa: E402  (loads libdifftac.so into mujoco)


def main():
    m = mujoco.MjModel.from_xml_path(str(ROOT / "models" / "press.xml"))
    d = mujoco.MjData(m)
    info = difftac.gel_info(m, d, "gel")
    nx, ny, nz = info.ncell
    print(f"gel: {info.nnode} nodes, {info.ntet} tets, {info.nsub} substeps per step")

    # the finger over the sphere, lowered step by step; face = 0.026 + qz, sphere top at 0.02
    d.qpos[:] = [-0.05, -0.006]
    curve = []
    targets = np.linspace(0.2e-3, 1.2e-3, 6)
    for i, ind in enumerate(targets):
        d.ctrl[:] = [-0.05, -0.006 - ind]
        for _ in range(40):
            mujoco.mj_step(m, d)
        face = d.site_xpos[info.site][2] - 0.004
        curve.append((1e3 * (0.02 - face), difftac.contact_wrench(m, d, "gel")[2]))
        print(f"  [{i + 1}/{len(targets)}] indentation {curve[-1][0]:.3f} mm, "
              f"force {curve[-1][1]:.3f} N", flush=True)

    # top-face nodes (k = nz) in the site frame: indentation = thickness - local z
    x = difftac.gel_positions(m, d, "gel")
    R = d.site_xmat[info.site].reshape(3, 3)
    local = (x - d.site_xpos[info.site]) @ R
    top = local.reshape(nz + 1, ny + 1, nx + 1, 3)[nz]
    depth = 1e3 * (0.004 - top[..., 2])

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    im = ax[0].pcolormesh(1e3 * top[..., 0], 1e3 * top[..., 1], depth, shading="gouraud",
                          cmap="magma")
    ax[0].set_aspect("equal")
    ax[0].set_xlabel("x (mm)")
    ax[0].set_ylabel("y (mm)")
    ax[0].set_title("gel face indentation by a 6 mm sphere")
    fig.colorbar(im, ax=ax[0], label="indentation (mm)")
    c = np.array(curve)
    ax[1].plot(c[:, 0], c[:, 1], "o-")
    ax[1].set_xlabel("back face travel past first touch (mm)")
    ax[1].set_ylabel("contact force on the gel (N)")
    ax[1].set_title("force-indentation")
    ax[1].grid(alpha=0.3)
    fig.tight_layout()
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    fig.savefig(out / "press.png", dpi=110)
    print(f"wrote {out / 'press.png'}")


if __name__ == "__main__":
    sys.exit(main())
