"""menagerie_scene.py: a MuJoCo Menagerie Robotiq 2F-85 with a difftac gel pad on each fingertip
grasps and lifts a box.

The gripper comes from the PyPI package `mujoco-menagerie` (`pip install mujoco-menagerie`;
the model is downloaded into its cache on first use, or read from MENAGERIE_ROOT=<folder with
robotiq_2f85/>); nothing of it is copied into this repository. The scene is built with mjSpec:

  * a world with a floor and a 4 cm, 50 g box (free joint) on it,
  * a `hand` body on a vertical slide (`lift`, position actuator) holding the 2F-85 upside down
    (`MjsFrame.attach_body` of the Menagerie model's `base_mount`),
  * on each finger's pad body a site on the pad's inner face whose +z points at the other finger,
    and a `difftac.elastomer` instance (`MjSpec.add_plugin`) there: a 20 x 34 x 4 mm gel,
  * a difftac.tactile `force` sensor per gel (and optionally a depth image).

Contact: the gels have collision bits 2, the box 3 (floor and gels), the floor 1; every geom of
the gripper is set to 0, so the box is held by the gels only (MuJoCo never sees finger vs box).

    .venv/bin/python examples/menagerie_scene.py                 # grasp, lift, print forces
    .venv/bin/python examples/menagerie_scene.py --viewer        # same scene in mujoco.viewer
    .venv/bin/python examples/menagerie_scene.py --xml out/menagerie_2f85.xml   # for the C viewer

Actuators: g_fingers_actuator (the Menagerie's: 0 open .. 255 closed, first, as it comes with the
attached model) and lift (m, hand height above its start).
"""
import argparse
import os
import pathlib
import sys
import time

import mujoco
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
LIB = ROOT / os.environ.get("DTAC_BUILD_DIR", "build") / "libdifftac.so"

ROBOT = "robotiq_2f85"
# the 2F-85 pad box (pad_box1 + pad_box2 of the Menagerie model, in the pad body's frame):
# x in [-0.011, 0.011], y in [-0.0066, 0.0014] (inner face at y = -0.0066), z in [0, 0.0375]
PAD_FACE_Y = -0.0066
PAD_CENTER_Z = 0.01875
GEL_SIZE = (0.020, 0.034, 0.004)
BOX_HALF = 0.02
BOX_MASS = 0.05


def gripper_xml():
    """path of the Menagerie 2F-85 MJCF (downloads it into the package's cache if needed)"""
    import mujoco_menagerie

    return mujoco_menagerie.get(ROBOT).xml("2f85")


def build_spec(resolution=0.002, tactile_images=False, hand_z=None):
    """the scene as an MjSpec; compile with spec.compile() after mj_loadPluginLibrary"""
    spec = mujoco.MjSpec()
    spec.modelname = "difftac menagerie 2f85"
    spec.option.timestep = 0.002
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10
    spec.visual.global_.offwidth = 1280
    spec.visual.global_.offheight = 720
    spec.activate_plugin("difftac.elastomer")
    spec.activate_plugin("difftac.tactile")

    world = spec.worldbody
    world.add_light(pos=[0, 0, 1.0], dir=[0, 0, -1])
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0.3, 0.3, 0.01],
                   rgba=[0.85, 0.85, 0.85, 1], contype=1, conaffinity=1)
    box = world.add_body(name="object", pos=[0, 0, BOX_HALF])
    box.add_freejoint(name="object")
    box.add_geom(name="object", type=mujoco.mjtGeom.mjGEOM_BOX, size=[BOX_HALF] * 3,
                 mass=BOX_MASS, contype=3, conaffinity=3, rgba=[0.8, 0.4, 0.2, 1])

    # the hand: fingers pointing down (180 degrees about x), sliding in z
    if hand_z is None:
        hand_z = default_hand_z()
    hand = world.add_body(name="hand", pos=[0, 0, hand_z], quat=[0, 1, 0, 0], gravcomp=1)
    hand.add_joint(name="lift", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 0, -1],
                   range=[-0.02, 0.15], damping=50)
    hand.add_geom(name="wrist", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.035, 0.01],
                  pos=[0, 0, -0.01], mass=0.5, contype=0, conaffinity=0,
                  rgba=[0.3, 0.3, 0.35, 1])

    gripper = mujoco.MjSpec.from_file(str(gripper_xml()))
    frame = hand.add_frame()
    frame.attach_body(gripper.body("base_mount"), "g_", "")

    # the gripper touches nothing through MuJoCo; its bodies are gravity compensated
    for g in spec.geoms:
        if g.name not in ("floor", "object"):
            g.contype = 0
            g.conaffinity = 0
    for b in spec.bodies:
        if b.name.startswith("g_"):
            b.gravcomp = 1

    # a site on each pad's inner face, z towards the other finger (the pad's -y), y along the
    # finger: a rotation of 90 degrees about the pad's x
    q = [np.sqrt(0.5), np.sqrt(0.5), 0, 0]
    for side in ("left", "right"):
        pad = spec.body(f"g_{side}_pad")
        pad.add_site(name=f"{side}_gel_site", pos=[0, PAD_FACE_Y, PAD_CENTER_Z], quat=q,
                     size=[0.002, 0.002, 0.002], rgba=[0.2, 0.6, 1, 1])
        gel = spec.add_plugin(name=f"{side}_gel", plugin_name="difftac.elastomer", active=True)
        gel.config = {
            "site": f"{side}_gel_site",
            "size": " ".join(str(v) for v in GEL_SIZE),
            "resolution": str(resolution),
            "young": "3e5",
            "poisson": "0.45",
            "friction": "1.0",
            "contype": "2",
            "conaffinity": "2",
        }
        outputs = ["force"] + (["depth", "pressure"] if tactile_images else [])
        for out in outputs:
            # a tactile plugin instance carries the config; the sensor names it (as
            # <sensor><plugin instance="..."/> does; setting sens.plugin.config crashes 4.0.0)
            inst = spec.add_plugin(name=f"{side}_{out}_tactile", plugin_name="difftac.tactile",
                                   active=True)
            cfg = {"elastomer": f"{side}_gel", "output": out}
            if out != "force":
                # the gel's 20 x 34 mm at 0.2 mm per pixel
                cfg.update({"size": "100 170", "pitch": "0.0002"})
            inst.config = cfg
            sens = spec.add_sensor(name=f"{side}_{out}", type=mujoco.mjtSensor.mjSENS_PLUGIN,
                                   objtype=mujoco.mjtObj.mjOBJ_SITE, objname=f"{side}_gel_site")
            sens.plugin.name = inst.name
            sens.plugin.plugin_name = "difftac.tactile"
            sens.plugin.active = True

    spec.add_actuator(name="lift", target="lift", trntype=mujoco.mjtTrn.mjTRN_JOINT,
                      gainprm=[2000] + [0] * 9, biasprm=[0, -2000, -100] + [0] * 7,
                      biastype=mujoco.mjtBias.mjBIAS_AFFINE, ctrlrange=[-0.02, 0.15],
                      ctrllimited=True)
    # the Menagerie's own finger actuator came with the attached model: g_fingers_actuator
    return spec


def default_hand_z():
    """hand height that puts the gels' centres 5 mm above the box's centre when the fingers
    close on it (the gel sites are 0.152 m below the hand there: measured from the kinematics)"""
    return BOX_HALF + 0.152 + 0.005


def load_plugin(lib=LIB):
    mujoco.mj_loadPluginLibrary(str(lib))


def gel_ids(m):
    """plugin instance ids of the two gels (the order of <instance>s in the model)"""
    names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_PLUGIN, i) for i in range(m.nplugin)]
    return [names.index("left_gel"), names.index("right_gel")]


def pad_forces(m, d):
    """normal force (N) on each gel from its force sensor: -force[2] in the site frame"""
    return [-d.sensor(f"{s}_force").data[2] for s in ("left", "right")]


def grasp(m, d, close_time=0.6, lift_time=0.6, hold_time=0.3, report=None, lift=0.04):
    """closes the fingers, lifts by `lift`, holds; calls report(phase, m, d) every 50 steps"""
    fingers = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, "g_fingers_actuator")
    lift_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, "lift")
    dt = m.opt.timestep
    phases = [("close", close_time), ("lift", lift_time), ("hold", hold_time)]
    step = 0
    for name, dur in phases:
        n = int(round(dur / dt))
        for i in range(n):
            s = (i + 1) / n
            if name == "close":
                d.ctrl[fingers] = 255 * min(1.0, 2 * s)  # close over the first half
                d.ctrl[lift_id] = 0
            elif name == "lift":
                d.ctrl[lift_id] = lift * (3 * s * s - 2 * s * s * s)
            mujoco.mj_step(m, d)
            step += 1
            if report and step % 50 == 0:
                report(name, m, d)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default=str(LIB))
    ap.add_argument("--resolution", type=float, default=0.002, help="gel element size, m")
    ap.add_argument("--images", action="store_true", help="add depth and pressure sensors")
    ap.add_argument("--viewer", action="store_true", help="open the scene in mujoco.viewer")
    ap.add_argument("--xml", help="also save the scene as MJCF (absolute mesh paths) here")
    args = ap.parse_args()

    load_plugin(args.lib)
    try:
        spec = build_spec(args.resolution, tactile_images=args.images or args.viewer)
    except Exception as e:  # no package, no network and no MENAGERIE_ROOT
        sys.exit(f"could not get the Menagerie {ROBOT}: {type(e).__name__}: {e}")
    m = spec.compile()
    d = mujoco.MjData(m)
    if args.xml:
        spec.meshdir = str(pathlib.Path(gripper_xml()).parent / "assets")
        pathlib.Path(args.xml).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.xml).write_text(spec.to_xml())
        order = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, i) for i in range(m.nu)]
        ctrl = ",".join("255" if n == "g_fingers_actuator" else "0" for n in order)
        print(f"wrote {args.xml} (actuators {order}): "
              f"./build/examples/viewer {args.xml} --ctrl {ctrl}")
    if args.viewer:
        from mujoco import viewer

        fingers = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, "g_fingers_actuator")
        d.ctrl[fingers] = 255
        viewer.launch(m, d)
        return

    gels = gel_ids(m)
    print(f"{m.nbody} bodies, {m.nq} qpos, {m.nu} actuators; gels:", end="")
    for g in gels:
        nn = m.plugin_statenum[g]
        print(f" {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_PLUGIN, g)} ({nn} state values)", end="")
    print()
    box = m.body("object").id
    t0 = time.time()

    def report(phase, m, d):
        fl, fr = pad_forces(m, d)
        print(f"{phase:6s} t={d.time:5.2f} s  box z={1e3 * d.xpos[box][2]:6.1f} mm  "
              f"pad normal force L={fl:6.3f} N R={fr:6.3f} N  ({time.time() - t0:5.1f} s wall)")

    grasp(m, d, report=report)
    z = d.xpos[box][2]
    print(f"box lifted {1e3 * (z - BOX_HALF):.1f} mm (hand 40 mm); "
          f"state finite: {np.all(np.isfinite(d.plugin_state))}")


if __name__ == "__main__":
    main()
