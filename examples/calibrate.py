"""calibrate.py: calibration of the difftac.tactile lighting model from (depth map, RGB) pairs,
checked on synthetic data whose lighting parameters are known.

    .venv/bin/python examples/calibrate.py [--lib build/libdifftac.so] [--out out] [--seed 3]

1. True parameters: the library's defaults (dtac_optics_default_params) perturbed at random.
2. Synthetic presses: depth maps (H x W, m) of spherical caps and a tilted cylinder pressed into
   the flat gel, rendered to RGB with the true parameters by the library (dtac_optics_render).
   The same images are also rendered here with numpy from the model as docs/tactile.md writes
   it (central-difference normals, basis phi, clamp) and must agree to rounding.
3. Fit: dtac_optics_fit (linear least squares over all 33 parameters, saturated pixels left out).
4. Prints the true and recovered parameters; the error is max |fitted - true| over the 33
   parameters divided by max |true|. Exit status 1 if it is above 1e-6 (or the fit fails).
   Writes out/calibration.png: per press the depth map, the true image, the image rendered with
   the fitted parameters, and their difference.

Everything goes through the C API in include/difftac/difftac.h via ctypes; MuJoCo is not needed.
To calibrate a real sensor, replace the synthetic pairs by measured ones (indenter shape and
pose known, e.g. a ball pressed at known depths), call dtac_optics_fit the same way and write
the result as an `optics_file` (write_optics_file below) for the sensor's `optics_file` key.
"""
import argparse
import ctypes
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NBASIS = 10  # DTAC_TACTILE_NBASIS
BASIS_NAMES = ["nx", "ny", "nx2", "nxny", "ny2", "nx3", "nx2ny", "nxny2", "ny3", "depth_mm"]
TOL = 1e-6

_dp = np.ctypeslib.ndpointer(dtype=np.float64, flags="C_CONTIGUOUS")


def load_lib(path):
    lib = ctypes.CDLL(path)
    lib.dtac_optics_default_params.argtypes = [_dp, _dp]
    lib.dtac_optics_default_params.restype = None
    lib.dtac_optics_render.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_double, _dp, _dp,
                                       _dp, _dp]
    lib.dtac_optics_render.restype = None
    lib.dtac_optics_fit.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_double,
                                    _dp, _dp, _dp, _dp, ctypes.c_char_p, ctypes.c_int]
    lib.dtac_optics_fit.restype = ctypes.c_double
    lib.dtac_optics_basis_eval.argtypes = [_dp, ctypes.c_double, _dp]
    lib.dtac_optics_basis_eval.restype = None
    return lib


def default_params(lib):
    bg = np.zeros(3)
    coef = np.zeros(3 * NBASIS)
    lib.dtac_optics_default_params(bg, coef)
    return bg, coef


def render(lib, depth, pitch, bg, coef):
    H, W = depth.shape
    rgb = np.zeros((H, W, 3))
    lib.dtac_optics_render(W, H, pitch, np.ascontiguousarray(depth), np.ascontiguousarray(bg),
                           np.ascontiguousarray(coef), rgb)
    return rgb


def fit(lib, depths, rgbs, pitch):
    n, H, W = depths.shape
    bg = np.zeros(3)
    coef = np.zeros(3 * NBASIS)
    err = ctypes.create_string_buffer(512)
    rms = lib.dtac_optics_fit(n, W, H, pitch, np.ascontiguousarray(depths),
                              np.ascontiguousarray(rgbs), bg, coef, err, len(err))
    return rms, bg, coef, err.value.decode()


# ---- the documented model in numpy (docs/tactile.md, "Lighting model and calibration") --------


def normals_numpy(depth, pitch):
    """unit outward normals (H x W x 3) of the surface z = T - depth: central differences inside,
    one-sided at the border, n = (d depth/dx, d depth/dy, 1) / |.|"""
    ddx = np.zeros_like(depth)
    ddy = np.zeros_like(depth)
    ddx[:, 1:-1] = (depth[:, 2:] - depth[:, :-2]) / (2 * pitch)
    ddx[:, 0] = (depth[:, 1] - depth[:, 0]) / pitch
    ddx[:, -1] = (depth[:, -1] - depth[:, -2]) / pitch
    ddy[1:-1] = (depth[2:] - depth[:-2]) / (2 * pitch)
    ddy[0] = (depth[1] - depth[0]) / pitch
    ddy[-1] = (depth[-1] - depth[-2]) / pitch
    s = 1.0 / np.sqrt(1 + ddx**2 + ddy**2)
    return np.stack([ddx * s, ddy * s, s], axis=-1)


def basis_numpy(n, depth):
    x, y = n[..., 0], n[..., 1]
    return np.stack([x, y, x * x, x * y, y * y, x**3, x * x * y, x * y * y, y**3, 1e3 * depth],
                    axis=-1)


def render_numpy(depth, pitch, bg, coef):
    phi = basis_numpy(normals_numpy(depth, pitch), depth)
    return np.clip(bg + phi @ coef.reshape(3, NBASIS).T, 0, 1)


# ---- synthetic presses ----------------------------------------------------------------------


def sphere_cap(H, W, pitch, cx, cy, R, d0):
    """indentation of a sphere of radius R pressed d0 deep with its centre over (cx, cy)"""
    x = (np.arange(W) + 0.5) * pitch - cx
    y = (np.arange(H) + 0.5) * pitch - cy
    r2 = x[None, :] ** 2 + y[:, None] ** 2
    return np.maximum(0.0, np.sqrt(np.maximum(R * R - r2, 0)) - (R - d0))


def cylinder(H, W, pitch, cx, cy, R, d0, angle):
    """indentation of a cylinder of radius R (axis in the gel plane at `angle` to u) pressed d0"""
    x = (np.arange(W) + 0.5) * pitch - cx
    y = (np.arange(H) + 0.5) * pitch - cy
    s = -np.sin(angle) * x[None, :] + np.cos(angle) * y[:, None]  # distance across the axis
    return np.maximum(0.0, np.sqrt(np.maximum(R * R - s * s, 0)) - (R - d0))


def presses(H, W, pitch):
    w, h = W * pitch, H * pitch
    return [
        ("sphere R 4 mm, 0.6 mm", sphere_cap(H, W, pitch, 0.45 * w, 0.5 * h, 0.004, 0.0006)),
        ("sphere R 2 mm, 0.4 mm", sphere_cap(H, W, pitch, 0.75 * w, 0.3 * h, 0.002, 0.0004)),
        ("cylinder R 3 mm, 0.5 mm, 30 deg",
         cylinder(H, W, pitch, 0.5 * w, 0.5 * h, 0.003, 0.0005, np.radians(30))),
        ("two spheres R 3 mm, 0.5 / 0.3 mm",
         np.maximum(sphere_cap(H, W, pitch, 0.25 * w, 0.65 * h, 0.003, 0.0005),
                    sphere_cap(H, W, pitch, 0.7 * w, 0.7 * h, 0.003, 0.0003))),
    ]


def write_optics_file(path, bg, coef):
    """the parameters in the format of the sensor's `optics_file` key (docs/tactile.md)"""
    with open(path, "w") as f:
        f.write("# difftac.tactile lighting parameters (examples/calibrate.py)\n")
        f.write("background " + " ".join(f"{v:.17g}" for v in bg) + "\n")
        f.write("lighting\n")
        for c in range(3):
            f.write("  " + " ".join(f"{v:.17g}" for v in coef[c * NBASIS:(c + 1) * NBASIS]) +
                    "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default=os.path.join(
        ROOT, os.environ.get("DTAC_BUILD_DIR", "build"), "libdifftac.so"))
    ap.add_argument("--out", default=os.path.join(ROOT, "out"))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--size", type=int, nargs=2, default=[320, 240], metavar=("W", "H"))
    ap.add_argument("--pitch", type=float, default=6.5e-5, help="m per pixel")
    ap.add_argument("--no-plot", action="store_true", help="skip out/calibration.png")
    args = ap.parse_args(argv)
    lib = load_lib(args.lib)
    W, H = args.size
    pitch = args.pitch

    # 1. true parameters: defaults + a random perturbation
    rng = np.random.default_rng(args.seed)
    bg0, coef0 = default_params(lib)
    bg_true = bg0 + rng.uniform(-0.05, 0.05, 3)
    coef_true = coef0 + rng.uniform(-0.1, 0.1, 3 * NBASIS)
    p_true = np.concatenate([bg_true, coef_true])

    # 2. synthetic pairs rendered by the library, cross-checked against the documented model
    cases = presses(H, W, pitch)
    depths = np.stack([dm for _, dm in cases])
    rgbs = np.stack([render(lib, dm, pitch, bg_true, coef_true) for dm in depths])
    model_err = max(np.abs(render_numpy(dm, pitch, bg_true, coef_true) - img).max()
                    for dm, img in zip(depths, rgbs))
    sat = np.mean(np.any((rgbs <= 0) | (rgbs >= 1), axis=-1))
    print(f"{len(cases)} synthetic presses, {W} x {H} pixels at {1e3 * pitch:.3f} mm: "
          + "; ".join(name for name, _ in cases))
    print(f"library render vs numpy model of docs/tactile.md: max |diff| {model_err:.2e}; "
          f"saturated pixels (left out of the fit) {100 * sat:.1f} %")

    # 3. fit
    rms, bg_fit, coef_fit, msg = fit(lib, depths, rgbs, pitch)
    if rms < 0:
        print(f"dtac_optics_fit failed: {msg}")
        return 1
    p_fit = np.concatenate([bg_fit, coef_fit])

    # 4. report
    names = [f"background[{c}]" for c in "rgb"] + [
        f"lighting[{c}][{b}]" for c in "rgb" for b in BASIS_NAMES]
    print(f"{'parameter':<24} {'true':>12} {'fitted':>12} {'|error|':>10}")
    for nm, t, f in zip(names, p_true, p_fit):
        print(f"{nm:<24} {t:12.8f} {f:12.8f} {abs(f - t):10.2e}")
    abs_err = np.abs(p_fit - p_true).max()
    rel_err = abs_err / np.abs(p_true).max()
    print(f"fit rms colour residual {rms:.2e}; max parameter error {abs_err:.2e} "
          f"(relative {rel_err:.2e}, tolerance {TOL:g})")
    ok = np.isfinite(rel_err) and rel_err <= TOL and model_err <= 1e-12

    os.makedirs(args.out, exist_ok=True)
    write_optics_file(os.path.join(args.out, "calibration_optics.txt"), bg_fit, coef_fit)
    if not args.no_plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = len(cases)
        fig, axs = plt.subplots(n, 4, figsize=(13, 2.35 * n), squeeze=False)
        for i, (name, dm) in enumerate(cases):
            fitted = render(lib, dm, pitch, bg_fit, coef_fit)
            diff = np.abs(fitted - rgbs[i]).max(axis=-1)
            im = axs[i, 0].imshow(1e3 * dm, cmap="viridis")
            fig.colorbar(im, ax=axs[i, 0], label="mm", fraction=0.046)
            axs[i, 0].set_ylabel(name, fontsize=8)
            axs[i, 1].imshow(rgbs[i])
            axs[i, 2].imshow(fitted)
            im = axs[i, 3].imshow(diff, cmap="gray_r", vmin=0, vmax=max(diff.max(), 1e-300))
            fig.colorbar(im, ax=axs[i, 3], fraction=0.046)
            if i == 0:
                axs[i, 0].set_title("depth map")
                axs[i, 1].set_title("rgb, true parameters")
                axs[i, 2].set_title("rgb, fitted parameters")
            axs[i, 3].set_title(f"|fitted - true| (max {diff.max():.1e})", fontsize=9)
            for a in axs[i]:
                a.set_xticks([])
                a.set_yticks([])
        fig.suptitle(f"lighting calibration from {n} synthetic presses: 33 parameters, "
                     f"max relative error {rel_err:.1e}")
        fig.tight_layout()
        path = os.path.join(args.out, "calibration.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        print(f"wrote {path} and {os.path.join(args.out, 'calibration_optics.txt')}")
    print("OK" if ok else "FAILED: parameters not recovered")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
