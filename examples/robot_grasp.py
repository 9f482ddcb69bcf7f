"""robot_grasp.py: a real robot gripper from a PyPI wheel, with a difftac gel and tactile sensors on
each finger, grasps a 4 cm box, lifts it 40 mm and holds it; writes the pads' tactile images.

    .venv/bin/python examples/fetch_grasp.py      # gymnasium-robotics' Fetch gripper
    .venv/bin/python examples/panda_grasp.py      # robosuite's Panda gripper
    .venv/bin/python examples/robot_grasp.py fetch --resolution 0.002 --out out

The scenes are built by difftac.robots (python/difftac/robots.py) at run time from the wheels'
own MJCF and meshes (setup.sh installs both wheels with --no-deps; nothing of them is copied here).

Settings that work today (issue 13 is about the defaults): the gels use coupling=explicit (the
default substep coupling has blown up on the full Fetch arm's fast reset motions), the fingers
start 3 mm from the box and close on moderate position gains (about 4 N of grip per finger; the
Fetch wheel's own kp of 30000 N/m would slam a finger of 4 kg into the gel), and the lift is a
smooth 0.4 s ramp. Pass other gel keys with --gel key=value.

Writes <out>/<robot>_{left,right}_{rgb,pressure}.png (each pad as the sensor sees it: rgb as is,
pressure as a colour map with its range in the title) and <out>/<robot>_tactile.png (all four).
"""
import argparse
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

ROBOTS = ("fetch", "panda")


def parse_keys(items):
    keys = {}
    for it in items or []:
        k, _, v = it.partition("=")
        if not _:
            raise SystemExit(f"--gel takes key=value, not {it!r}")
        keys[k] = v
    return keys


def build(robot, gel=None, tactile=None, **kw):
    from difftac import robots
    make = {"fetch": robots.fetch_scene, "panda": robots.panda_scene}[robot]
    return make(gel=gel, tactile=tactile, **kw)


def run(robot, resolution=0.002, gel_keys=None, out="out", images=True, close_time=0.3,
        settle_time=0.1, lift_time=0.4, hold_time=0.2, report_every=0.1, verbose=True):
    """builds the scene, grasps, lifts, holds; returns a dict of what happened (and writes the
    images when ``images``)"""
    import difftac
    from difftac import robots

    gel = dict(resolution=resolution)
    gel.update(gel_keys or {})
    tactile = {"pressure": {}, "force": {}}
    if images:
        tactile["rgb"] = {}
    t0 = time.time()
    scene = build(robot, gel=gel, tactile=tactile)
    m = scene.spec.compile()
    d = mujoco.MjData(m)
    robots.reset(scene, m, d)
    t_build = time.time() - t0
    infos = [difftac.gel_info(m, d, g) for g in scene.gels]
    if verbose:
        print(f"{robot}: {m.nbody} bodies, {m.nu} actuators, gels "
              + ", ".join(f"{g} {i.nnode} nodes {i.nsub} substeps" for g, i in zip(scene.gels, infos))
              + f" (built in {t_build:.2f} s)")
    box = m.body("object").id
    z0 = d.xpos[box][2]
    pitch = difftac.tactile_info(m, d, f"{scene.sides[0]}_pressure").pitch
    record = {"force": [], "pressure_sum": [], "z": [], "t": [], "finite": True}
    every = max(1, int(round(report_every / m.opt.timestep)))
    t1 = time.time()

    def callback(phase, step, m, d):
        fz = [-difftac.sensor(m, d, f"{s}_force")[2] for s in scene.sides]
        ps = [difftac.sensor(m, d, f"{s}_pressure").sum() * pitch ** 2 for s in scene.sides]
        record["force"].append(fz)
        record["pressure_sum"].append(ps)
        record["z"].append(d.xpos[box][2] - z0)
        record["t"].append(d.time)
        if not (np.all(np.isfinite(d.plugin_state)) and np.all(np.isfinite(d.qpos))
                and np.all(np.isfinite(d.sensordata))):
            record["finite"] = False
        if verbose and step % every == 0:
            print(f"  {phase:6s} t={d.time:4.2f} s  box +{1e3 * (d.xpos[box][2] - z0):5.1f} mm  "
                  f"normal force L {fz[0]:5.2f} R {fz[1]:5.2f} N  "
                  f"pressure map sum L {ps[0]:5.2f} R {ps[1]:5.2f} N  ({time.time() - t1:4.1f} s)")

    ends = robots.grasp(scene, m, d, close_time=close_time, settle_time=settle_time,
                        lift_time=lift_time, hold_time=hold_time, callback=callback)
    wall = time.time() - t1
    nstep = len(record["t"])
    result = dict(model=m, data=d, scene=scene, ends=ends, lift=d.xpos[box][2] - z0,
                  force=np.array(record["force"]), pressure_sum=np.array(record["pressure_sum"]),
                  z=np.array(record["z"]), t=np.array(record["t"]), finite=record["finite"],
                  nwarning=[difftac.gel_info(m, d, g).nwarning for g in scene.gels],
                  wall=wall, ms_per_step=1e3 * wall / nstep, files=[])
    if verbose:
        print(f"{robot}: box lifted {1e3 * result['lift']:.1f} mm (hand {1e3 * scene.lift:.0f} mm), "
              f"{nstep} steps at {result['ms_per_step']:.1f} ms/step, gel warnings "
              f"{result['nwarning']}, all finite: {result['finite']}")
    if images:
        result["files"] = write_images(robot, m, d, scene, out)
        if verbose:
            print("wrote " + " ".join(result["files"]))
    return result


def write_images(robot, m, d, scene, out):
    import difftac

    os.makedirs(out, exist_ok=True)
    files = []
    fig, axes = plt.subplots(2, 2, figsize=(7, 6))
    for col, side in enumerate(scene.sides):
        rgb = np.clip(difftac.sensor(m, d, f"{side}_rgb"), 0, 1)
        p = difftac.sensor(m, d, f"{side}_pressure") / 1e3  # kPa
        pmax = max(float(p.max()), 1.0)
        f = os.path.join(out, f"{robot}_{side}_rgb.png")
        plt.imsave(f, rgb)
        files.append(f)
        f = os.path.join(out, f"{robot}_{side}_pressure.png")
        plt.imsave(f, p, cmap="viridis", vmin=0, vmax=pmax)
        files.append(f)
        axes[0, col].imshow(rgb)
        axes[0, col].set_title(f"{side} pad rgb")
        im = axes[1, col].imshow(p, cmap="viridis", vmin=0, vmax=pmax)
        axes[1, col].set_title(f"{side} pressure, 0-{pmax:.0f} kPa")
        fig.colorbar(im, ax=axes[1, col], fraction=0.046)
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{robot} gripper holding the box ({d.time:.2f} s)")
    fig.tight_layout()
    f = os.path.join(out, f"{robot}_tactile.png")
    fig.savefig(f, dpi=100)
    plt.close(fig)
    files.append(f)
    return files


def main(argv=None, robot=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    if robot is None:
        ap.add_argument("robot", choices=ROBOTS)
    ap.add_argument("--resolution", type=float, default=0.002, help="gel element size, m")
    ap.add_argument("--gel", action="append", metavar="KEY=VALUE",
                    help="an elastomer config key (docs/mjcf.md), e.g. --gel coupling=substep")
    ap.add_argument("--out", default="out", help="folder for the PNGs")
    ap.add_argument("--no-images", action="store_true")
    args = ap.parse_args(argv)
    robot = robot or args.robot
    from difftac.robots import RobotAssetsMissing
    try:
        r = run(robot, resolution=args.resolution, gel_keys=parse_keys(args.gel), out=args.out,
                images=not args.no_images)
    except RobotAssetsMissing as e:
        sys.exit(str(e))
    return 0 if r["finite"] and r["lift"] > 0.03 else 1


if __name__ == "__main__":
    sys.exit(main())
