"""Real robot grippers from PyPI wheels, with gel pads and tactile sensors on both fingers.

The grippers' MJCF and meshes are read at run time from the installed wheels (nothing of them is
copied into difftac), found with ``importlib.util.find_spec`` without importing the packages (whose
own dependencies may be missing: ``setup.sh`` installs both with ``pip install --no-deps`` so the
pinned mujoco stays):

* ``gymnasium-robotics``: Fetch's gripper (``envs/assets/fetch/pick_and_place.xml``, body
  ``robot0:gripper_link`` with its two flat box fingers), see :func:`fetch_scene`;
* ``robosuite``: the Panda gripper (``models/assets/grippers/panda_gripper.xml``), see
  :func:`panda_scene`.

Each scene builder returns a :class:`RobotScene`: an ``MjSpec`` with a floor, a 4 cm box on it, a
``hand`` body on a vertical slide (actuator ``lift``) holding the gripper fingers down, a site on
each finger's inner face with a ``difftac.elastomer`` instance (``left_gel``, ``right_gel``, added
by :func:`difftac.add_gel`) and tactile sensors (``left_pressure``, ``right_force``, ...: added by
:func:`difftac.add_tactile`); the gripper's own geoms collide with nothing, so the box is held by
the gels only. ``gel=`` and ``tactile=`` take config keys (docs/mjcf.md, docs/tactile.md) that
override the defaults below, so the defaults can change (issue 13) without changing callers.

Settings that work with today's explicit gel integrator (issue 13): ``coupling="explicit"`` (the
default ``substep`` coupling blows up on Fetch's fingers in fast motions), fingers on moderate
position gains (a few N of grip, not the wheels' 30000 N/m on Fetch) closing over 0.3 s, and a
smooth lift. :func:`grasp` runs close, lift, hold.
"""
import dataclasses
import importlib.util
import pathlib

import mujoco
import numpy as np

from .spec import add_gel, add_tactile

__all__ = ["RobotAssetsMissing", "package_dir", "fetch_xml", "panda_gripper_xml", "RobotScene",
           "fetch_scene", "panda_scene", "reset", "grasp", "DEFAULT_GEL"]

# gel keys used unless the caller overrides them (see the module docstring)
DEFAULT_GEL = dict(resolution=0.002, young=3e5, poisson=0.45, friction=1.0, coupling="explicit",
                   contype=2, conaffinity=2)
BOX_HALF = 0.02
OPEN_GAP = 0.003  # fingers start this far (m) from touching the box: a slow, short approach


class RobotAssetsMissing(FileNotFoundError):
    """The wheel that ships a robot's MJCF is not installed (or lacks the file)."""


def package_dir(package):
    """Folder of an installed package, found without importing it (its dependencies may be absent)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise RobotAssetsMissing(
            f"the Python package '{package}' is not installed; install its wheel without its "
            f"dependencies (keeps the mujoco pin): pip install --no-deps "
            f"{package.replace('_', '-')}")
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def _asset(package, rel):
    path = package_dir(package) / rel
    if not path.is_file():
        raise RobotAssetsMissing(f"{path} is missing from the installed '{package}'")
    return path


def fetch_xml():
    """gymnasium-robotics' Fetch pick-and-place MJCF (includes robot.xml and shared.xml)."""
    return _asset("gymnasium_robotics", "envs/assets/fetch/pick_and_place.xml")


def panda_gripper_xml():
    """robosuite's Panda gripper MJCF."""
    return _asset("robosuite", "models/assets/grippers/panda_gripper.xml")


@dataclasses.dataclass
class RobotScene:
    """A scene builder's result: the spec and what :func:`grasp` needs to drive it."""
    spec: mujoco.MjSpec
    name: str
    fingers: list          # [(actuator name, open ctrl, grip ctrl)], one per finger
    finger_joints: list    # joint names, in the order of fingers
    finger_open: list      # initial joint positions (open, near the box)
    gels: tuple = ("left_gel", "right_gel")
    sides: tuple = ("left", "right")
    box_half: float = BOX_HALF
    lift: float = 0.04


def _world(spec, name, box_half, box_mass, hand_z, hand_quat):
    spec.modelname = name
    spec.option.timestep = 0.002
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.visual.global_.offwidth = 640
    spec.visual.global_.offheight = 480
    w = spec.worldbody
    w.add_light(pos=[0, 0, 1.0], dir=[0, 0, -1])
    w.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0.3, 0.3, 0.01],
               rgba=[0.85, 0.85, 0.85, 1], contype=1, conaffinity=1)
    # looking along -x at the fingers (they close along y) and the box between them
    w.add_camera(name="front", pos=[0.3, 0, 0.08], xyaxes=[0, 1, 0, -0.2, 0, 1])
    box = w.add_body(name="object", pos=[0, 0, box_half])
    box.add_freejoint(name="object")
    # collision bits: floor 1, gels 2 (DEFAULT_GEL), box 3 (both)
    box.add_geom(name="object", type=mujoco.mjtGeom.mjGEOM_BOX, size=[box_half] * 3,
                 mass=box_mass, contype=3, conaffinity=3, rgba=[0.8, 0.4, 0.2, 1])
    hand = w.add_body(name="hand", pos=[0, 0, hand_z], gravcomp=1)
    hand.add_joint(name="lift", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 0, 1],
                   range=[-0.02, 0.15], damping=100)
    hand.add_geom(name="wrist", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.03, 0.01],
                  pos=[0, 0, 0.01], mass=0.5, contype=0, conaffinity=0, rgba=[0.3, 0.3, 0.35, 1])
    frame = hand.add_frame(quat=hand_quat)
    return hand, frame


def _finish(spec, prefix, gel_sites, gel_size, gel, tactile, image_pitch):
    # the gripper touches nothing through MuJoCo; its bodies float (gravity compensated)
    for g in spec.geoms:
        if g.name not in ("floor", "object"):
            g.contype = 0
            g.conaffinity = 0
    for b in spec.bodies:
        if b.name.startswith(prefix):
            b.gravcomp = 1
    keys = dict(DEFAULT_GEL, size=gel_size)
    keys.update(gel or {})
    for side, site in gel_sites.items():
        add_gel(spec, site, name=f"{side}_gel", **keys)
    outputs = dict(tactile if tactile is not None else
                   {"pressure": {}, "rgb": {}, "force": {}})
    # images without a size cover the pad's face, here at image_pitch (docs/tactile.md)
    for side in gel_sites:
        for out, okeys in outputs.items():
            k = {} if out in ("force", "markers") else dict(pitch=image_pitch)
            k.update(okeys or {})
            add_tactile(spec, f"{side}_gel", out, name=f"{side}_{out}", **k)
    spec.add_actuator(name="lift", target="lift", trntype=mujoco.mjtTrn.mjTRN_JOINT,
                      gainprm=[2000] + [0] * 9, biasprm=[0, -2000, -200] + [0] * 7,
                      biastype=mujoco.mjtBias.mjBIAS_AFFINE, ctrlrange=[-0.02, 0.15],
                      ctrllimited=True)


def fetch_scene(gel=None, tactile=None, image_pitch=0.0005, gel_size=(0.03, 0.02, 0.004),
                box_mass=0.1, grip_force=4.0, finger_kp=1000.0, finger_damping=300.0,
                finger_armature=0.1, pad_height=0.012):
    """Fetch's gripper (gymnasium-robotics) with a gel on each flat finger, above a 4 cm box.

    ``gel``: elastomer keys over :data:`DEFAULT_GEL` (``size`` defaults to ``gel_size``: 30 mm
    along the finger, 20 mm across, 4 mm thick, near the fingertip); ``tactile``: ``{output:
    keys}`` of the sensors on each gel (default pressure, rgb and force; images cover the pad at
    ``image_pitch``). The wheel's finger actuators (kp 30000, joint armature 100, damping 1000) are
    re-tuned to ``finger_kp``, ``finger_armature``, ``finger_damping``, and the grip target is
    set ``grip_force / finger_kp`` inside the box's faces. ``pad_height``: the pads' centres above
    the box's centre, m."""
    src = mujoco.MjSpec.from_file(str(fetch_xml()))
    spec = mujoco.MjSpec()
    # gripper_link's x (its fingers' length) points down: 90 degrees about y
    s = np.sqrt(0.5)
    # gel centres 20 mm from the finger origin towards the tip, pad_height above the box's
    # centre (by default the pad overhangs the box's top edge by 7 mm: the edge shows in images)
    tip_offset = 0.1664 + 0.02
    hand_z = BOX_HALF + pad_height + tip_offset
    hand, frame = _world(spec, "difftac fetch gripper", BOX_HALF, box_mass, hand_z, [s, 0, s, 0])
    frame.attach_body(src.body("robot0:gripper_link"), "fetch/", "")
    # each finger's box geom: half size 0.0385 0.007 0.0135 at y -/+ 0.008 in its body, so its
    # inner face is at y = -/+ 0.015; the site's +z points at the other finger
    sites = {}
    for side, body, y in (("left", "fetch/robot0:l_gripper_finger_link", 0.015),
                          ("right", "fetch/robot0:r_gripper_finger_link", -0.015)):
        sites[side] = f"{side}_gel_site"
        spec.body(body).add_site(name=sites[side], pos=[0.02, y, 0],
                                 zaxis=[0, np.sign(y), 0], size=[0.002] * 3,
                                 rgba=[0.2, 0.6, 1, 1])
    for j in ("fetch/robot0:l_gripper_finger_joint", "fetch/robot0:r_gripper_finger_joint"):
        joint = spec.joint(j)
        joint.armature = finger_armature
        joint.damping = [finger_damping] + [0.0] * (len(joint.damping) - 1)
    _finish(spec, "fetch/", sites, gel_size, gel, tactile, image_pitch)
    thick = _gel_thickness(gel, gel_size)
    # joint q moves a finger outwards; its face is at 0.0009 + q from the centre, the gel surface
    # at 0.0009 + q - thick: touching the box at q = box_half + thick - 0.0009
    q_touch = BOX_HALF + thick - 0.0009
    target = q_touch - grip_force / finger_kp
    fingers = []
    for side in ("l", "r"):
        name = f"fetch/robot0:{side}_gripper_finger_joint"
        a = spec.actuator(name)
        a.gainprm[0] = finger_kp
        a.biasprm[1] = -finger_kp
        fingers.append((name, q_touch + OPEN_GAP, target))
    return RobotScene(spec, "fetch", fingers,
                      ["fetch/robot0:l_gripper_finger_joint", "fetch/robot0:r_gripper_finger_joint"],
                      [q_touch + OPEN_GAP] * 2)


def panda_scene(gel=None, tactile=None, image_pitch=0.0005, gel_size=(0.016, 0.016, 0.003),
                box_mass=0.1, grip_force=4.0, finger_kp=1000.0, pad_height=0.014):
    """robosuite's Panda gripper with a gel on each finger pad (16 x 16 x 3 mm by default, the
    pad's face), above a 4 cm box, ``pad_height`` (m) the pads' centres above the box's centre.
    Keys as :func:`fetch_scene`; the wheel's finger actuators
    (kp 1000, force range 20 N) keep their gain unless ``finger_kp`` differs."""
    src = mujoco.MjSpec.from_file(str(panda_gripper_xml()))
    spec = mujoco.MjSpec()
    # fingers along the gripper's +z: turn it upside down (180 degrees about x); the pads' centres
    # are 0.0934 m along it (finger 0.0524 + tip 0.056 - 0.015), pad_height above the box's
    # centre (by default the box's top edge crosses the pads 2 mm below their top)
    hand_z = BOX_HALF + pad_height + 0.0934
    hand, frame = _world(spec, "difftac panda gripper", BOX_HALF, box_mass, hand_z, [0, 1, 0, 0])
    frame.attach_body(src.body("right_gripper"), "panda/", "")
    # pad boxes (half 0.008 0.004 0.008) at y -/+ 0.005 in the tip bodies: inner faces at -/+ 0.009
    sites = {}
    for side, body, y in (("left", "panda/finger_joint1_tip", -0.009),
                          ("right", "panda/finger_joint2_tip", 0.009)):
        sites[side] = f"{side}_gel_site"
        spec.body(body).add_site(name=sites[side], pos=[0, y, -0.015], zaxis=[0, np.sign(y), 0],
                                 size=[0.002] * 3, rgba=[0.2, 0.6, 1, 1])
    _finish(spec, "panda/", sites, gel_size, gel, tactile, image_pitch)
    thick = _gel_thickness(gel, gel_size)
    # finger 1 opens along +q, finger 2 along -q; pad faces at -/+ 0.0005 -/+ q
    q_touch = BOX_HALF + thick + 0.0005
    target = q_touch - grip_force / finger_kp
    fingers = []
    for i, sign in ((1, 1.0), (2, -1.0)):
        name = f"panda/gripper_finger_joint{i}"
        a = spec.actuator(name)
        a.gainprm[0] = finger_kp
        a.biasprm[1] = -finger_kp
        fingers.append((name, sign * (q_touch + OPEN_GAP), sign * target))
    return RobotScene(spec, "panda", fingers, ["panda/finger_joint1", "panda/finger_joint2"],
                      [q_touch + OPEN_GAP, -(q_touch + OPEN_GAP)])


def _gel_thickness(gel, gel_size):
    size = (gel or {}).get("size", gel_size)
    if isinstance(size, str):
        size = size.split()
    return float(size[2])


def reset(scene, m, d):
    """mj_resetData, fingers open OPEN_GAP (3 mm) from the box, controls at their start values"""
    mujoco.mj_resetData(m, d)
    for j, q in zip(scene.finger_joints, scene.finger_open):
        d.qpos[m.joint(j).qposadr[0]] = q
    for a, open_, _ in scene.fingers:
        d.ctrl[m.actuator(a).id] = open_
    d.ctrl[m.actuator("lift").id] = 0
    mujoco.mj_forward(m, d)


def grasp(scene, m, d, close_time=0.3, settle_time=0.1, lift_time=0.4, hold_time=0.2,
          lift=None, callback=None):
    """From :func:`reset`'s state: closes the fingers to their grip targets (smoothly, over
    ``close_time``), lets the grip settle, lifts the hand by ``lift`` (default scene.lift) with a
    smooth profile, holds. ``callback(phase, step, m, d)`` after every step; returns the phases'
    end times."""
    lift = scene.lift if lift is None else lift
    lift_id = m.actuator("lift").id
    fingers = [(m.actuator(a).id, o, g) for a, o, g in scene.fingers]
    dt = m.opt.timestep
    ends = {}
    step = 0
    for phase, dur in (("close", close_time), ("settle", settle_time), ("lift", lift_time),
                       ("hold", hold_time)):
        n = max(1, int(round(dur / dt)))
        for i in range(n):
            s = (i + 1) / n
            smooth = 3 * s * s - 2 * s * s * s
            if phase == "close":
                for a, o, g in fingers:
                    d.ctrl[a] = o + (g - o) * smooth
            elif phase == "lift":
                d.ctrl[lift_id] = lift * smooth
            mujoco.mj_step(m, d)
            step += 1
            if callback is not None:
                callback(phase, step, m, d)
        ends[phase] = d.time
    return ends
