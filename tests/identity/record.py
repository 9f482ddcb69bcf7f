"""Records a run of every model in models/ (state, sensors, gel outputs, a gradient, a transition)
to one .npz per model, and compares two such recordings bit for bit.

  python tests/identity/record.py record OUTDIR [--steps N]
  python tests/identity/record.py compare DIR_A DIR_B

Used to show that a change which must not change results (a refactor) leaves every output
bit-identical: record with the previous commit's build, record with the new one, compare.
The library is the one `import difftac` finds (DIFFTAC_LIB or the repository's build/).
"""
import argparse
import pathlib
import sys

import numpy as np
import mujoco

import difftac
import difftac.grad as dg

ROOT = pathlib.Path(__file__).resolve().parents[2]


def ctrl_at(model, t, k):
    """A deterministic control sweep inside each actuator's ctrlrange: press, hold, slide."""
    u = np.zeros(model.nu)
    for i in range(model.nu):
        lo, hi = model.actuator_ctrlrange[i] if model.actuator_ctrllimited[i] else (-1.0, 1.0)
        s = 0.5 + 0.5 * np.sin(2 * np.pi * (0.3 + 0.17 * i) * k / 60.0 + i)
        u[i] = lo + (hi - lo) * s
    return u


def run(path, nstep):
    m = mujoco.MjModel.from_xml_path(str(path))
    d = mujoco.MjData(m)
    out = {}
    rows = []
    for k in range(nstep):
        d.ctrl[:] = ctrl_at(m, d.time, k)
        mujoco.mj_step(m, d)
        rows.append(np.concatenate([d.qpos, d.qvel, d.plugin_state, d.sensordata, d.qfrc_passive]))
    out["trace"] = np.array(rows)
    for g in difftac.gels(m):
        out[f"gel_{g}_x"] = np.array(difftac.gel_positions(m, d, g))
        out[f"gel_{g}_wrench"] = np.array(difftac.contact_wrench(m, d, g))
        out[f"gel_{g}_energy"] = np.array([difftac.elastic_energy(m, d, g)])
    # mj_copyData continues bit-identically from the copy
    d2 = mujoco.MjData(m)
    mujoco.mj_copyData(d2, m, d)
    for k in range(3):
        d2.ctrl[:] = ctrl_at(m, d2.time, nstep + k)
        mujoco.mj_step(m, d2)
    out["copy_cont"] = np.concatenate([d2.qpos, d2.qvel, d2.plugin_state, d2.sensordata])
    # a short taped rollout and its gradient, and the transition Jacobians
    if difftac.gels(m):
        d3 = mujoco.MjData(m)
        mujoco.mj_copyData(d3, m, d)
        tape = dg.Tape(m, d3, 3)
        for k in range(3):
            tape.step(ctrl_at(m, d3.time, nstep + k))
        n = dg.grad_state_size(m)
        rng = np.random.default_rng(0)
        sb = rng.standard_normal(n)
        g = tape.backward(state_bar=sb)
        for key in ("state0", "ctrl", "param"):
            out[f"grad_{key}"] = np.asarray(g[key])
        d4 = mujoco.MjData(m)
        mujoco.mj_copyData(d4, m, d)
        A, B, C, D = dg.transition(m, d4)
        out["A"], out["B"], out["C"], out["D"] = A, B, C, D
    return out


def record(outdir, nstep):
    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "models").glob("*.xml")):
        print(f"[record] {path.name}", flush=True)
        np.savez(outdir / (path.stem + ".npz"), **run(path, nstep))


def compare(a, b):
    a, b = pathlib.Path(a), pathlib.Path(b)
    bad = 0
    files = sorted(a.glob("*.npz"))
    if not files:
        print(f"no recordings in {a}")
        return 1
    for fa in files:
        fb = b / fa.name
        if not fb.exists():
            print(f"{fa.name}: missing in {b}")
            bad += 1
            continue
        ra, rb = np.load(fa), np.load(fb)
        keys = sorted(set(ra.files) | set(rb.files))
        diff = []
        for k in keys:
            if k not in ra.files or k not in rb.files:
                diff.append(f"{k} (only in one)")
            elif ra[k].shape != rb[k].shape or ra[k].tobytes() != rb[k].tobytes():
                d = np.nanmax(np.abs(ra[k] - rb[k])) if ra[k].shape == rb[k].shape else "shape"
                diff.append(f"{k} (max diff {d})")
        status = "bit-identical" if not diff else "DIFFERS: " + ", ".join(diff)
        print(f"{fa.name}: {len(keys)} arrays {status}")
        bad += bool(diff)
    print(f"{len(files) - bad} identical, {bad} differ")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("outdir")
    r.add_argument("--steps", type=int, default=40)
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = ap.parse_args()
    if args.cmd == "record":
        record(args.outdir, args.steps)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
