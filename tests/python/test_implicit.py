"""The implicit integrator (issue 13) in MuJoCo scenes: key `integrator="implicit"` steps every
gel of an mjData and the bodies they touch in one backward-Euler solve per MuJoCo step.

Real robots from the PyPI wheels (gymnasium-robotics' Fetch, robosuite's Panda gripper) with the
default coupling, the scene's grasp, a lift and a 2 s hold; Fetch's own reset motion; a blown-up
gel never passed on; run-time parameters far above the loaded ones; state save and restore, copies
and threads bit for bit; the load errors of the new keys."""
import os
import pathlib
import re
import sys
import threading

import mujoco
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIB = ROOT / os.environ.get("DTAC_BUILD_DIR", "build") / "libdifftac.so"
os.environ.setdefault("DIFFTAC_LIB", str(LIB))
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "tests" / "python"))
import difftac  # noqa: E402
from difftac import robots  # noqa: E402
import test_reliability as rel  # noqa: E402

FULL = mujoco.mjtState.mjSTATE_FULLPHYSICS
# the long robot runs (2 s holds, Fetch's full arm) only with DTAC_LONG_TESTS=1: they take
# minutes on two cores
long_test = pytest.mark.skipif(not os.environ.get("DTAC_LONG_TESTS"),
                               reason="long run: set DTAC_LONG_TESTS=1")
IMPLICIT = {"integrator": "implicit"}


def grasp_xml(keys):
    """models/grasp.xml with config keys added to both gels (those it sets already, replaced)"""
    xml = (ROOT / "models" / "grasp.xml").read_text()
    keys = dict(keys)
    for k in list(keys):
        pat = r'<config key="%s" value="[^"]*"/>' % k
        if re.search(pat, xml):
            xml = re.sub(pat, '<config key="%s" value="%s"/>' % (k, keys.pop(k)), xml)
    more = "".join('<config key="%s" value="%s"/>' % kv for kv in keys.items())
    for side in ("left", "right"):
        tag = '<config key="site" value="%s_site"/>' % side
        xml = xml.replace(tag, tag + more)
    return xml


def run_grasp(m, d, seconds, on_step=None):
    """grasp.xml's control sequence (close at 0.2 s, lift 0.6 -> 1.2 s, hold)"""
    n = int(round(seconds / m.opt.timestep))
    for _ in range(n):
        t = d.time
        d.ctrl[:] = [0.0 if t < 0.6 else min(0.04, 0.04 * (t - 0.6) / 0.6),
                     0.0 if t < 0.2 else 0.02]
        mujoco.mj_step(m, d)
        if on_step:
            on_step(m, d)


def test_grasp_lifts_holds_and_agrees_with_explicit():
    """The box is lifted 40 mm and held by both integrators alike: implicit at one solve per
    step puts it within 0.5 mm of the explicit substeps, settles (its velocity after the hold
    below 1 mm/s), warns nothing, every step converged"""
    zs = {}
    for integ in ("explicit", "implicit"):
        m = mujoco.MjModel.from_xml_string(grasp_xml({"integrator": integ}))
        d = mujoco.MjData(m)
        run_grasp(m, d, 2.0)
        box = m.body("object")
        zs[integ] = d.xpos[box.id][2]
        v = d.qvel[box.dofadr[0]:box.dofadr[0] + 3]
        assert np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.plugin_state))
        for g in ("left_gel", "right_gel"):
            info = difftac.gel_info(m, d, g)
            assert info.integrator == integ
            assert info.nwarning == 0
            assert info.nnonconverged == 0
        assert np.linalg.norm(v) < 1e-3, (integ, v)
        if integ == "implicit":
            assert info.ncontact > 0 and info.residual <= 1e-6
    assert zs["explicit"] > 0.05
    assert abs(zs["implicit"] - zs["explicit"]) < 5e-4, zs


def test_box_between_stiff_pads_is_held_still():
    """grasp.xml's 50 g box between two pads of about 38000 N/m (dt sqrt(2k/m) = 2.5, unstable
    for MuJoCo's explicit integration of the pads' force alone) with the box an unknown of the
    solve (coupling substep, the default): contact never lost while gripped, the box still"""
    m = mujoco.MjModel.from_xml_string(grasp_xml({"integrator": "implicit"}))
    d = mujoco.MjData(m)
    box = m.body("object")
    nmin, vmax = [10 ** 9], [0.0]

    def track(m, d):
        if d.time > 0.3:
            nmin[0] = min(nmin[0], difftac.gel_info(m, d, "left_gel").ncontact)
            vmax[0] = max(vmax[0], float(np.abs(d.qvel[box.dofadr[0]:box.dofadr[0] + 3]).max()))
    run_grasp(m, d, 0.6, track)
    assert nmin[0] > 100, nmin
    assert vmax[0] < 5e-3, vmax


# ---- real robots --------------------------------------------------------------------------------

def _need(package):
    try:
        robots.package_dir(package)
    except robots.RobotAssetsMissing as e:
        pytest.skip(str(e))


@long_test
@pytest.mark.parametrize("robot", ["fetch", "panda"])
def test_robot_grasp_lift_and_hold_two_seconds(robot):
    """The wheel's gripper with gels (robots.py) and the default coupling: close, lift 40 mm,
    hold 2 s; no warning, no NaN, every step converged, the held box settles"""
    import robot_grasp
    _need({"fetch": "gymnasium_robotics", "panda": "robosuite"}[robot])
    scene = robot_grasp.build(robot, gel=dict(resolution=0.003, coupling="substep", **IMPLICIT),
                              tactile={"force": {}})
    m = scene.spec.compile()
    d = mujoco.MjData(m)
    robots.reset(scene, m, d)
    box = m.body("object")
    z0 = d.xpos[box.id][2]
    vz = []
    robots.grasp(scene, m, d, close_time=0.3, settle_time=0.1, lift_time=0.4, hold_time=2.0,
                 callback=lambda ph, k, m, d: vz.append(d.qvel[box.dofadr[0] + 2]))
    assert d.xpos[box.id][2] - z0 > 0.035
    for a in (d.qpos, d.qvel, d.plugin_state, d.sensordata):
        assert np.all(np.isfinite(a))
    for g in scene.gels:
        info = difftac.gel_info(m, d, g)
        assert info.nwarning == 0 and info.nnonconverged == 0, (g, info)
    # the last 0.5 s of the hold: still
    assert np.max(np.abs(vz[-250:])) < 2e-3, np.max(np.abs(vz[-250:]))


FETCH_GEL = dict(IMPLICIT, contype=2, conaffinity=2, size="0.05 0.025 0.004")


@long_test
@pytest.mark.skipif(rel._fetch_dir() is None, reason="gymnasium-robotics is not installed")
def test_fetch_reset_motion_without_a_warning(tmp_path):
    """gymnasium-robotics' Fetch with a 50 x 25 x 4 mm gel on each finger (touching only what
    carries collision bit 2: nothing here) and its own reset motion, the wrist near 40 rad/s,
    coupling=explicit: no warning, no restart, every step converged"""
    keys = dict(FETCH_GEL, coupling="explicit")
    m = mujoco.MjModel.from_xml_path(str(rel.fetch_with_gels(tmp_path, keys)))
    d = mujoco.MjData(m)
    rel.fetch_reset_motion(m, d)
    assert rel.step_finite(m, d, 200) is None
    for g in ("gel_r", "gel_l"):
        info = difftac.gel_info(m, d, g)
        assert info.nwarning == 0 and info.nnonconverged == 0, (g, info)


@pytest.mark.skipif(rel._fetch_dir() is None, reason="gymnasium-robotics is not installed")
def test_fetch_reset_motion_with_substep_coupling(tmp_path):
    """the same reset motion with the default coupling (the fingers unknowns of the gels' solve):
    no warning, every step converged, and the arm moves as with coupling=explicit (joint speeds
    within 1 % of the fastest). Failed (strict xfail) while the fingers' inverse mass left out
    the arm's joint damping, which MuJoCo's Euler integrates implicitly: qvel doubled a step from
    step 4, the gels restarted."""
    qv = {}
    for coupling in ("explicit", "substep"):
        m = mujoco.MjModel.from_xml_path(str(rel.fetch_with_gels(tmp_path / coupling,
                                                                 dict(FETCH_GEL, coupling=coupling))))
        d = mujoco.MjData(m)
        rel.fetch_reset_motion(m, d)
        qv[coupling] = []
        for _ in range(30):
            mujoco.mj_step(m, d)
            assert not rel.bad_state(m, d)
            qv[coupling].append(d.qvel[:15].copy())
        for g in ("gel_r", "gel_l"):
            info = difftac.gel_info(m, d, g)
            assert info.nwarning == 0 and info.nnonconverged == 0, (coupling, g, info)
    a, b = np.array(qv["explicit"]), np.array(qv["substep"])
    assert np.max(np.abs(a)) > 30  # the wrist's fast swing
    assert np.max(np.abs(a - b)) < 0.01 * np.max(np.abs(a)), np.max(np.abs(a - b))


@pytest.mark.parametrize("integrator", ["explicit", "implicit"])
def test_injected_nan_never_reaches_the_robot(integrator):
    """A non-finite gel state written into plugin_state mid-grasp (as mj_setState with a bad
    vector would) on the Panda: the gel is restarted, warned, and qpos/qvel stay finite"""
    _need("robosuite")
    import robot_grasp
    scene = robot_grasp.build("panda", gel=dict(resolution=0.003, coupling="substep",
                                                integrator=integrator), tactile={"force": {}})
    m = scene.spec.compile()
    d = mujoco.MjData(m)
    robots.reset(scene, m, d)
    robots.grasp(scene, m, d, close_time=0.3, settle_time=0.05, lift_time=0.0, hold_time=0.0)
    g = m.plugin_stateadr[difftac.gel_id(m, scene.gels[0])]
    d.plugin_state[g + 3 * 7] = np.nan
    for _ in range(20):
        mujoco.mj_step(m, d)
        for a in (d.qpos, d.qvel, d.sensordata):
            assert np.all(np.isfinite(a))
    assert difftac.gel_info(m, d, scene.gels[0]).nwarning >= 1


# ---- parameters, state, copies, threads ---------------------------------------------------------

RAMP_XML = """
<mujoco>
  <option timestep="0.002"/>
  <extension><plugin plugin="difftac.elastomer"><instance name="gel">
    <config key="site" value="s"/><config key="size" value="0.012 0.012 0.003"/>
    <config key="resolution" value="0.001"/><config key="young" value="3e5"/>
    <config key="integrator" value="implicit"/>
  </instance></plugin></extension>
  <worldbody>
    <geom name="ball" type="sphere" size="0.004"/>
    <body name="f" mocap="true" pos="0 0 0.007"><site name="s" euler="180 0 0"/></body>
  </worldbody>
</mujoco>"""


def _ramp_force(ramp_s, depth=0.00025):
    """the gel's normal force one step after a mocap finger reached `depth` in `ramp_s`"""
    m = mujoco.MjModel.from_xml_string(RAMP_XML)
    d = mujoco.MjData(m)
    n = int(round(ramp_s / m.opt.timestep))
    for i in range(n + 1):
        d.mocap_pos[0] = [0, 0, 0.007 - min((i + 1) / n, 1.0) * depth]
        mujoco.mj_step(m, d)
    return abs(difftac.contact_wrench(m, d, "gel")[2])


def test_fast_press_reports_the_quasi_static_force():
    """a 40 ms press and a 640 ms press to the same 0.25 mm report the same force (within 1 %):
    the implicit step is quasi-static at MuJoCo's step, no overshoot"""
    fast, slow = _ramp_force(0.04), _ramp_force(0.64)
    assert slow > 0.05
    assert abs(fast - slow) < 0.01 * slow, (fast, slow)


@pytest.mark.parametrize("euler", ["180 0 0", "0 0 30", "20 0 0"])
@pytest.mark.parametrize("material", ["neohookean", "linear"])
def test_a_rotated_pad_rests_in_either_material(euler, material):
    """a pad on a rotated site, touching nothing, stays at its rest shape (within gravity's sag,
    0.2 um) in either material. The linear material once measured strain in the world frame
    (eps = sym(F) - I): a pad facing down collapsed 9.6 mm in 10 steps."""
    xml = RAMP_XML.replace('<site name="s" euler="180 0 0"/>', '<site name="s" euler="%s"/>' % euler)
    xml = xml.replace('<config key="integrator" value="implicit"/>',
                      '<config key="integrator" value="implicit"/>'
                      '<config key="material" value="%s"/>' % material)
    xml = xml.replace('pos="0 0 0.007"', 'pos="0 0 0.03"')
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    x0 = difftac.gel_positions(m, d, "gel").copy()
    for _ in range(10):
        mujoco.mj_step(m, d)
    assert np.max(np.abs(difftac.gel_positions(m, d, "gel") - x0)) < 1e-6


def test_young_ten_times_the_loaded_value_steps_stably():
    """dtac_param_set of gel/young 10x and the contact stiffness 10x above the loaded values:
    the explicit step refuses what its substep cannot take; implicit steps on, finite, no
    warning, and grips harder"""
    m = mujoco.MjModel.from_xml_string(grasp_xml(IMPLICIT))
    d = mujoco.MjData(m)
    run_grasp(m, d, 0.5)
    for g in ("left_gel", "right_gel"):
        y = difftac.param_get(m, d, g + "/young")
        difftac.param_set(m, d, g + "/young", 10 * y)
        k = difftac.param_get(m, d, g + "/contact_stiffness")
        difftac.param_set(m, d, g + "/contact_stiffness", 10 * k)
        assert difftac.param_get(m, d, g + "/young") == 10 * y
    run_grasp(m, d, 0.3)
    assert np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.plugin_state))
    for g in ("left_gel", "right_gel"):
        assert difftac.gel_info(m, d, g).nwarning == 0


def _pressed():
    m = mujoco.MjModel.from_xml_string(grasp_xml(IMPLICIT))
    d = mujoco.MjData(m)
    run_grasp(m, d, 0.7)
    return m, d


def test_get_set_state_and_copy_continue_bit_for_bit():
    """mj_getState / mj_setState (FULLPHYSICS) into a fresh mjData and mj_copyData continue the
    implicit rollout with the same bits (each step's preconditioner starts afresh)"""
    m, d = _pressed()
    s = np.zeros(mujoco.mj_stateSize(m, FULL))
    mujoco.mj_getState(m, d, s, FULL)
    d2 = mujoco.MjData(m)
    mujoco.mj_setState(m, d2, s, FULL)
    d3 = mujoco.MjData(m)
    mujoco.mj_copyData(d3, m, d)
    for dd in (d, d2, d3):
        run_grasp(m, dd, 0.1)
    np.testing.assert_array_equal(d.qpos, d2.qpos)
    np.testing.assert_array_equal(d.plugin_state, d2.plugin_state)
    np.testing.assert_array_equal(d.qpos, d3.qpos)
    np.testing.assert_array_equal(d.plugin_state, d3.plugin_state)


def test_threads_step_the_same_bits():
    """four mjData stepped in four threads end where one stepped alone ends (they factor at once:
    the factorization's lock around the serial OpenBLAS, src/implicit_solve.c)"""
    m, d = _pressed()
    s = np.zeros(mujoco.mj_stateSize(m, FULL))
    mujoco.mj_getState(m, d, s, FULL)
    datas = [mujoco.MjData(m) for _ in range(4)]
    for dd in datas:
        mujoco.mj_setState(m, dd, s, FULL)
    threads = [threading.Thread(target=run_grasp, args=(m, dd, 0.1)) for dd in datas]
    for t in threads:
        t.start()
    run_grasp(m, d, 0.1)
    for t in threads:
        t.join()
    for dd in datas:
        np.testing.assert_array_equal(dd.qpos, d.qpos)
        np.testing.assert_array_equal(dd.plugin_state, d.plugin_state)


# ---- load errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("keys,needle", [
    ({"integrator": "verlet"}, "key 'integrator' has value 'verlet'"),
    ({"material": "linear"}, "key 'material' has value 'linear'"),
    ({"integrator": "implicit", "material": "rubber"}, "key 'material' has value 'rubber'"),
    ({"integrator": "implicit", "tolerance": "0"}, "key 'tolerance' has value '0'"),
    ({"integrator": "implicit", "iterations": "0"}, "key 'iterations' has value '0'"),
    ({"integrator": "implicit", "device": "cuda"}, "key 'device' has value 'cuda"),
    # stiffness beyond what the implicit step's double-precision solve resolves (h^2 k / m above
    # 1e14; the explicit step refuses the same through its substep count): fuzz seeds 53, 251
    ({"integrator": "implicit", "young": "1e300"}, "key 'young' has value 1e+300"),
    ({"integrator": "implicit", "young": "1e16"}, "key 'young' has value 1e+16"),
    ({"integrator": "implicit", "contact_stiffness": "1e300"},
     "key 'contact_stiffness' has value 1e+300"),
    ({"integrator": "implicit", "friction_stiffness": "1e300"},
     "key 'friction_stiffness' has value 1e+300"),
    ({"integrator": "implicit", "damping": "1e300"}, "key 'damping' has value 1e+300"),
])
def test_bad_keys_are_load_errors(keys, needle):
    with pytest.raises(ValueError) as e:
        mujoco.MjModel.from_xml_string(grasp_xml(keys))
    assert needle in str(e.value), str(e.value)


def test_a_stiff_pad_within_the_implicit_bound_loads_and_steps():
    """young 1e12 (5e6 times the grasp's): h^2 k / m stays below the implicit step's bound"""
    m = mujoco.MjModel.from_xml_string(grasp_xml({"integrator": "implicit", "young": "1e12"}))
    d = mujoco.MjData(m)
    for _ in range(3):
        mujoco.mj_step(m, d)
    assert np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.plugin_state))


def test_gels_of_one_model_share_one_integrator():
    xml = grasp_xml({})
    tag = '<config key="site" value="left_site"/>'
    xml = xml.replace(tag, tag + '<config key="integrator" value="implicit"/>')
    with pytest.raises(ValueError) as e:
        mujoco.MjModel.from_xml_string(xml)
    assert "by one integrator" in str(e.value)
