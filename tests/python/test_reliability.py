"""Reliability cases of issue 17, one small named test each: a gel never hands a non-finite value
to MuJoCo, parsers take decimal numbers only, failed loads do not leak, loads end.

Each failed on the code before the issue-17 fixes (they were strict xfails then, naming the
defect) and passes now: a blown-up gel's corrections are left out and it restarts moving with its
site (src/world.c), non-finite or absurd forces are never applied (src/passive.c), the 'placed'
flag and the friction anchors are checked (src/elastomer.c), the substep count cannot overflow
(src/gel.c), numbers are decimal only and optics files regular files (plugin/config.c), a failed
init frees what was made (dtac_init_abort).
"""
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import mujoco
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIB = ROOT / os.environ.get("DTAC_BUILD_DIR", "build") / "libdifftac.so"
FULL = mujoco.mjtState.mjSTATE_FULLPHYSICS
os.environ.setdefault("DIFFTAC_LIB", str(LIB))
sys.path.insert(0, str(ROOT / "python"))
import difftac  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def plugin():
    mujoco.mj_loadPluginLibrary(str(LIB))


def bad_state(m, d):
    """What is wrong with d: non-finite qpos/qvel/sensordata/plugin_state, or MuJoCo's own
    bad-state warnings (it resets the data when it sees a NaN, so the NaN may be gone)."""
    out = [n for n in ("qpos", "qvel", "sensordata", "plugin_state")
           if getattr(d, n).size and not np.all(np.isfinite(getattr(d, n)))]
    W = mujoco.mjtWarning
    out += [w for w in ("mjWARN_BADQPOS", "mjWARN_BADQVEL", "mjWARN_BADQACC")
            if d.warning[getattr(W, w)].number]
    return out


def step_finite(m, d, n, ctrl=None):
    """Steps n times; returns the first (step, what) that went wrong, or None."""
    for k in range(n):
        if ctrl is not None:
            d.ctrl[:] = ctrl
        mujoco.mj_step(m, d)
        b = bad_state(m, d)
        if b:
            return k, b
    return None


def gel_xml(gel_keys, world, actuator="", sensors="", option=""):
    keys = "".join('<config key="%s" value="%s"/>' % kv for kv in gel_keys.items())
    return textwrap.dedent("""
    <mujoco>
      %s
      <extension>
        <plugin plugin="difftac.elastomer"><instance name="gel">%s</instance></plugin>
        <plugin plugin="difftac.tactile"/>
      </extension>
      <worldbody>%s</worldbody>
      %s
      %s
    </mujoco>""") % (option, keys, world, actuator, sensors)


FINGER = """<body pos="0 0 {z}"><joint name="z" type="slide" axis="0 0 1"/>
  <geom type="box" size="0.01 0.01 0.001" mass="{mass}" contype="0" conaffinity="0"/>
  <site name="s" euler="180 0 0"/></body>"""


# ---- issue 17 item 1: the minimal cases ---------------------------------------------------------

@pytest.mark.parametrize("mass", [
    1e-4,
    1e-3])
def test_light_finger_resting_on_a_plane(mass):
    """A default-sized gel (about 2 g) at 2 mm resolution on a slide-jointed finger resting on a
    plane: 0.1 g goes NaN on the first step today; 1 g is fine (the control)."""
    m = mujoco.MjModel.from_xml_string(gel_xml(
        {"site": "s", "resolution": "0.002"},
        '<geom type="plane" size="1 1 0.1"/>' + FINGER.format(z=0.004, mass=mass)))
    d = mujoco.MjData(m)
    assert step_finite(m, d, 15) is None


@pytest.mark.parametrize("mass", [
    1e-4,
    1e-3])
def test_light_finger_without_contact(mass):
    """Issue 17's first case: a default-sized gel (2 mm resolution) on a 0.1 g slide-jointed
    finger falling freely, no contact at all: NaN in qpos on the first step; 1 g is fine."""
    m = mujoco.MjModel.from_xml_string(gel_xml(
        {"site": "s", "resolution": "0.002"}, FINGER.format(z=0.1, mass=mass)))
    d = mujoco.MjData(m)
    assert step_finite(m, d, 15) is None


def test_pad_starting_inside_a_box():
    """The pad starts buried in a box turned 45 degrees (its edge 18 mm above the gel's face):
    NaN in qpos on the first step today."""
    m = mujoco.MjModel.from_xml_string(gel_xml(
        {"site": "s", "size": "0.01 0.01 0.002", "resolution": "0.001"},
        '<geom type="box" size="0.02 0.02 0.01" pos="0 0 -0.01" euler="0 45 0"/>' +
        FINGER.format(z=0.0015, mass=0.05)))
    d = mujoco.MjData(m)
    assert step_finite(m, d, 5) is None


def test_pad_starting_in_a_shallow_overlap():
    """A pad starting 0.1-2 mm into a flat box face: holds today (guard)."""
    for ov in (1e-4, 1e-3, 2e-3):
        m = mujoco.MjModel.from_xml_string(gel_xml(
            {"site": "s", "size": "0.01 0.01 0.004", "resolution": "0.002"},
            '<geom type="box" size="0.02 0.02 0.01" pos="0 0 -0.01"/>' +
            FINGER.format(z=0.004 - ov, mass=0.05)))
        d = mujoco.MjData(m)
        assert step_finite(m, d, 5) is None, ov


@pytest.fixture(scope="module")
def pressed():
    """models/press_tactile.xml pressed onto the cylinder (z control -6.3 mm: the gel face 0.3 mm
    below the cylinder's top), 100 steps; its FULLPHYSICS state."""
    m = mujoco.MjModel.from_xml_path(str(ROOT / "models" / "press_tactile.xml"))
    d = mujoco.MjData(m)
    d.ctrl[:] = (0.0, -0.0063)
    assert step_finite(m, d, 100) is None
    s = np.zeros(mujoco.mj_stateSize(m, FULL))
    mujoco.mj_getState(m, d, s, FULL)
    return m, s


def test_press_then_control_jump_to_ctrlrange_corner(pressed):
    m, s = pressed
    d = mujoco.MjData(m)
    mujoco.mj_setState(m, d, s, FULL)
    assert step_finite(m, d, 20, ctrl=(-0.08, -0.03)) is None


@pytest.mark.parametrize("ctrl", [(0.0, -0.03), (0.08, -0.0063), (0.0, 0.03)])
def test_press_then_control_jump_along_one_axis(pressed, ctrl):
    """Jumps along one axis to the edge of ctrlrange: hold today (guards)."""
    m, s = pressed
    d = mujoco.MjData(m)
    mujoco.mj_setState(m, d, s, FULL)
    assert step_finite(m, d, 20, ctrl=ctrl) is None


def test_force_sensor_after_the_gel_was_reset():
    """A mocap-mounted gel placed inside a 100 m cylinder, coupling=explicit, dt 1e-4: the gel
    blows up and is reset on every step (a warning each); the force sensor must stay finite.
    Issue 17 saw 6 NaN values here; at this commit they are finite (guard)."""
    m = mujoco.MjModel.from_xml_string(gel_xml(
        {"site": "s", "coupling": "explicit"},
        '<geom type="cylinder" size="100 1" pos="0 0 -1"/>'
        '<body mocap="true" pos="0 0 -0.5"><site name="s" euler="180 0 0"/></body>',
        sensors='<sensor><plugin name="f" plugin="difftac.tactile" objtype="site" objname="s">'
                '<config key="elastomer" value="gel"/><config key="output" value="force"/>'
                '</plugin></sensor>', option='<option timestep="1e-4"/>'))
    d = mujoco.MjData(m)
    for _ in range(4):
        mujoco.mj_step(m, d)
        assert np.all(np.isfinite(d.sensordata)), d.sensordata
    mujoco.mj_resetData(m, d)
    mujoco.mj_step(m, d)
    assert np.all(np.isfinite(d.sensordata)), d.sensordata


# ---- a coupled body's joint damping ------------------------------------------------------------

def _damped_press(coupling, integrator, mj_integrator, n=400):
    """a 50 g finger on a slide with damping 2000 N s/m (MuJoCo's Euler and implicitfast take it
    implicitly: the finger's mass in the velocity update is 0.05 + h 2000 = 4 kg), pushed by 2 N
    onto a sphere: its height each step and the gel's normal force at the end"""
    xml = gel_xml({"site": "s", "size": "0.01 0.01 0.003", "resolution": "0.002",
                   "coupling": coupling, "integrator": integrator},
                  '<geom type="sphere" size="0.005" pos="0 0 -0.005"/>'
                  '<body pos="0 0 0.0035"><joint name="z" type="slide" axis="0 0 1" damping="2000"/>'
                  '<geom type="box" size="0.01 0.01 0.001" mass="0.05" contype="0" conaffinity="0"/>'
                  '<site name="s" euler="180 0 0"/></body>',
                  actuator='<actuator><motor joint="z"/></actuator>',
                  option='<option integrator="%s"/>' % mj_integrator)
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    z = []
    for _ in range(n):
        d.ctrl[0] = -2.0
        mujoco.mj_step(m, d)
        z.append(d.qpos[0])
    assert difftac.gel_info(m, d, "gel").nwarning == 0
    return np.array(z), difftac.contact_wrench(m, d, "gel")[2]


@pytest.mark.parametrize("integrator", ["explicit", "implicit"])
@pytest.mark.parametrize("mj_integrator", ["Euler", "implicitfast"])
def test_coupled_body_moves_with_the_damping_mujoco_integrates(integrator, mj_integrator):
    """The substep coupling (the finger an unknown of the gel's step) and the explicit coupling
    (the gel's force a passive force that MuJoCo integrates) agree on a heavily damped finger:
    height within 2 um over the press, force within 1 %. Failed while the coupling took the
    finger's mobility as M^-1 without the damping (20 % low force with the implicit gel, 4 % and
    10 um with the explicit one)."""
    za, fa = _damped_press("explicit", integrator, mj_integrator)
    zb, fb = _damped_press("substep", integrator, mj_integrator)
    assert fa > 0.5, fa
    assert np.max(np.abs(za - zb)) < 2e-6, np.max(np.abs(za - zb))
    assert abs(fb - fa) < 0.01 * fa, (fa, fb)


# ---- gymnasium-robotics' Fetch during its own reset motion --------------------------------------

def _fetch_dir():
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.origin:
        return None
    p = pathlib.Path(spec.origin).parent / "envs" / "assets" / "fetch"
    return p if (p / "pick_and_place.xml").exists() else None


def fetch_with_gels(tmp_path, keys=None):
    """Fetch's pick_and_place.xml with a default difftac gel on the inner face of each gripper
    finger (sites added to robot.xml, an extension block to the scene; more config keys in
    keys); the asset folder is copied so that its relative mesh paths still resolve."""
    import shutil
    src = _fetch_dir()
    dst = tmp_path / "assets"
    shutil.copytree(src.parent, dst)
    robot = dst / "fetch" / "robot.xml"
    t = robot.read_text()
    for side, y in (("r", "-0.015"), ("l", "0.015")):
        tag = '<body childclass="robot0:fetchGripper" name="robot0:%s_gripper_finger_link"' % side
        i = t.index(tag)
        j = t.index(">", i) + 1
        # the site's +z points at the other finger
        euler = "90 0 0" if side == "r" else "-90 0 0"
        t = t[:j] + '<site name="gel_%s" pos="0 %s 0" euler="%s"/>' % (side, y, euler) + t[j:]
    robot.write_text(t)
    scene = dst / "fetch" / "pick_and_place.xml"
    s = scene.read_text()
    more = "".join('<config key="%s" value="%s"/>' % kv for kv in (keys or {}).items())
    ext = ('<extension><plugin plugin="difftac.elastomer">'
           '<instance name="gel_r"><config key="site" value="gel_r"/>%s</instance>'
           '<instance name="gel_l"><config key="site" value="gel_l"/>%s</instance>'
           '</plugin></extension>') % (more, more)
    i = s.index("<mujoco")
    j = s.index(">", i) + 1
    scene.write_text(s[:j] + ext + s[j:])
    return scene


@pytest.mark.skipif(_fetch_dir() is None, reason="gymnasium-robotics is not installed "
                    "(pip install --no-deps gymnasium-robotics)")
def test_fetch_reset_motion(tmp_path):
    """The motion of gymnasium-robotics' FetchPickAndPlace reset (_env_setup): initial joint
    positions, mocap welds reset, the gripper target 0.2 m above the table, 10 x 20 steps."""
    m = mujoco.MjModel.from_xml_path(str(fetch_with_gels(tmp_path)))
    d = mujoco.MjData(m)
    fetch_reset_motion(m, d)
    assert step_finite(m, d, 200) is None


def fetch_reset_motion(m, d):
    """FetchPickAndPlace's _env_setup on (m, d): initial joints, mocap welds, the target"""
    init = {"robot0:slide0": 0.405, "robot0:slide1": 0.48, "robot0:slide2": 0.0,
            "object0:joint": [1.25, 0.53, 0.4, 1.0, 0.0, 0.0, 0.0]}
    for name, v in init.items():
        j = m.joint(name)
        d.qpos[j.qposadr[0]:j.qposadr[0] + np.size(v)] = v
    for i in range(m.neq):
        if m.eq_type[i] == mujoco.mjtEq.mjEQ_WELD:
            m.eq_data[i, 3:10] = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
    mujoco.mj_forward(m, d)
    grip = d.site("robot0:grip").xpos.copy()
    d.mocap_pos[0] = np.array([-0.498, 0.005, -0.431 + 0.2]) + grip
    d.mocap_quat[0] = np.array([1.0, 0.0, 1.0, 0.0]) / np.sqrt(2)


# ---- garbage in plugin_state ------------------------------------------------------------------

def _small_press():
    m = mujoco.MjModel.from_xml_string(gel_xml(
        {"site": "s", "size": "0.01 0.01 0.004", "resolution": "0.002"},
        '<geom type="sphere" size="0.005" pos="0 0 -0.005"/>' + FINGER.format(z=0.004, mass=0.05),
        actuator='<actuator><position joint="z" kp="500" ctrlrange="-0.01 0.01"/></actuator>'))
    d = mujoco.MjData(m)
    d.ctrl[0] = -0.0005
    for _ in range(5):
        mujoco.mj_step(m, d)
    return m, d


def _poke(m, d, index_from_end):
    s = np.zeros(mujoco.mj_stateSize(m, FULL))
    mujoco.mj_getState(m, d, s, FULL)
    s[len(s) - index_from_end] = np.nan
    mujoco.mj_setState(m, d, s, FULL)


def test_nan_placed_flag_in_plugin_state_is_recovered():
    m, d = _small_press()
    _poke(m, d, 1)  # the last plugin_state entry: the gel's placed flag
    for _ in range(3):
        mujoco.mj_step(m, d)
    assert np.all(np.isfinite(d.plugin_state))


def test_nan_friction_anchor_in_plugin_state_is_recovered():
    m, d = _small_press()
    _poke(m, d, 2)  # the last anchor entry, just before the placed flag
    for _ in range(3):
        mujoco.mj_step(m, d)
    assert np.all(np.isfinite(d.plugin_state))
    assert not bad_state(m, d)


# ---- documented-valid extremes (issue 17 item 2) ----------------------------------------------

def test_huge_damping_is_a_load_error_or_steps_finite():
    xml = gel_xml({"site": "s", "size": "0.01 0.01 0.004", "resolution": "0.002",
                   "damping": "1e300"},
                  '<geom type="sphere" size="0.005" pos="0 0 -0.005"/>' +
                  FINGER.format(z=0.004, mass=0.05))
    try:
        m = mujoco.MjModel.from_xml_string(xml)
    except ValueError as e:
        assert "damping" in str(e)
        return
    d = mujoco.MjData(m)
    assert step_finite(m, d, 5) is None


# ---- gels heavier than their finger, gels that cannot hold their shape (issue 17 items 1-2) ----

BALL_FINGER = """<body pos="0 0 0.01"><joint type="ball"/>
  <geom type="box" size="0.006 0.006 0.001" mass="{mass}" contype="0" conaffinity="0"/>
  <site name="s" pos="0.003 -0.002 0" euler="180 0 0"/></body>"""


@pytest.mark.parametrize("size,res,finger", [
    # a 5.6 kg pad (0.5 x 0.5 x 0.05 m) on a 1 g slide finger (fuzz seed 364): qpos > 1e10 on the
    # first step, no warning, before the site body's frequency entered the substep
    ("0.5 0.5 0.05", "0.05", FINGER.format(z=0.1, mass=0.001)),
    # the same pad on a 1 g ball-jointed finger, its site off the joint
    ("0.5 0.5 0.05", "0.05", BALL_FINGER.format(mass=0.001)),
    # a default-sized gel on a 10 mg finger (a mass ratio of 200)
    ("0.02 0.02 0.004", "0.002", FINGER.format(z=0.1, mass=1e-5)),
])
def test_finger_much_lighter_than_its_gel_steps_finite_without_restart(size, res, finger):
    xml = gel_xml({"site": "s", "size": size, "resolution": res, "density": "450"}, finger)
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    assert step_finite(m, d, 10) is None
    # the gel stayed in one piece: no restart (a restart would reset it to rest every step)
    state = d.plugin_state
    assert np.all(np.isfinite(state)) and np.abs(state).max() < 10


@pytest.mark.parametrize("density,young", [("1e300", "3e5"), ("1e9", "3e5"), ("1000", "100")])
def test_gel_its_own_weight_would_tear_is_a_load_error(density, young):
    """density 1e300 (fuzz seed 95) made the finger's qpos reach 1e10 in its first step; a pad
    whose own weight strains it by more than 10 % (density g size[2] / young) is a load error
    naming density and its value."""
    xml = gel_xml({"site": "s", "size": "0.02 0.02 0.004", "resolution": "0.002",
                   "density": density, "young": young}, FINGER.format(z=0.1, mass=0.05))
    with pytest.raises(ValueError, match=re.escape("key 'density' has value %g" % float(density))):
        mujoco.MjModel.from_xml_string(xml)


def test_rk4_integrator_is_a_load_error():
    """RK4 leaves d's kinematics at its last stage, so the gel's step moved the back face twice
    (fuzz seeds 11, 20, 269, 283: a 1 g ball-jointed finger reached qvel 1e18 in two steps)."""
    xml = gel_xml({"site": "s", "size": "0.02 0.02 0.004", "resolution": "0.002"},
                  BALL_FINGER.format(mass=0.001), option='<option integrator="RK4"/>')
    with pytest.raises(ValueError, match="option 'integrator' has value 'RK4'"):
        mujoco.MjModel.from_xml_string(xml)


# ---- parser strictness (issue 17 item 2: decimal numbers only) --------------------------------

@pytest.mark.parametrize("key,value", [
    ("resolution", "0x10"),
    ("friction", "  7  "),
    ("young", "0x1p+18"),
    ("poisson", "0.3abc"),
    ("young", "inf"),
])
def test_odd_number_text_is_a_load_error(key, value):
    xml = gel_xml({"site": "s", "size": "0.01 0.01 0.004", "resolution": "0.002", key: value},
                  FINGER.format(z=0.01, mass=0.05))
    with pytest.raises(ValueError, match=key):
        mujoco.MjModel.from_xml_string(xml)


# ---- failed loads: no leak, no hang (subprocesses) --------------------------------------------

LEAK_SCRIPT = r"""
import mujoco, sys
mujoco.mj_loadPluginLibrary(sys.argv[1])
xml = '''%s'''
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
for i in range(45):
    if i == 5:
        r0 = rss()
    try:
        mujoco.MjData(mujoco.MjModel.from_xml_string(xml))
    except Exception:
        pass
print(rss() - r0)
""" % gel_xml({"site": "s", "size": "0.01 0.01 0.004", "resolution": "0.002"},
              FINGER.format(z=0.01, mass=0.05) + '<site name="other"/>',
              sensors='<sensor><plugin name="t" plugin="difftac.tactile" objtype="site" '
                      'objname="other"><config key="elastomer" value="gel"/>'
                      '<config key="output" value="rgb"/></plugin></sensor>')


def test_failed_loads_do_not_grow_rss():
    out = subprocess.run([sys.executable, "-c", LEAK_SCRIPT, str(LIB)], capture_output=True,
                         text=True, timeout=300)
    grow = float(out.stdout.strip().splitlines()[-1])
    assert grow < 4.0, "40 failed loads grew RSS by %.1f MB" % grow


def test_optics_file_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "optics.fifo"
    os.mkfifo(fifo)
    xml = gel_xml({"site": "s", "size": "0.01 0.01 0.004", "resolution": "0.002"},
                  FINGER.format(z=0.01, mass=0.05),
                  sensors='<sensor><plugin name="t" plugin="difftac.tactile" objtype="site" '
                          'objname="s"><config key="elastomer" value="gel"/>'
                          '<config key="output" value="rgb"/><config key="optics_file" '
                          'value="%s"/></plugin></sensor>' % fifo)
    code = ("import mujoco,sys; mujoco.mj_loadPluginLibrary(sys.argv[1])\n"
            "try:\n mujoco.MjModel.from_xml_string(sys.argv[2])\nexcept ValueError: pass\n")
    try:
        subprocess.run([sys.executable, "-c", code, str(LIB), xml], timeout=10,
                       capture_output=True)
    except subprocess.TimeoutExpired:
        pytest.fail("loading a model whose optics_file is a FIFO did not end in 10 s")
