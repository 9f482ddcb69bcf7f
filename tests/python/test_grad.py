"""Gradients from Python (python/difftac/grad.py): parameter names and values, errors for bad
names and values, the Tape's shapes and errors, its reverse pass against central differences of a
short rollout in contact, and the sysid and trajopt examples."""
import os
import pathlib
import re
import subprocess
import sys
import time

import mujoco
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))  # the package's source, installed or not

import difftac  # noqa: E402

# a finger on x and z slides presses a gel pad onto a sphere and slides over it (shared with
# tests/plugin/test_grad.cc)
PRESS = (ROOT / "models" / "press_small.xml").read_text()
NAMES = ["gel/young", "gel/poisson", "gel/damping", "gel/mass_damping", "gel/friction",
         "gel/contact_stiffness", "gel/contact_damping", "gel/friction_stiffness"]
WARM, T = 40, 10  # steps into contact, steps differentiated


def press_control(t):
    """press 0.5 mm into the ball, then slide along x while pressing"""
    tt = t * 0.002
    return np.array([0.02 * (tt - 0.08) if tt > 0.08 else 0.0,
                     -0.0015 - 0.002 * min(tt / 0.08, 1.0)])


@pytest.fixture
def scene():
    m = mujoco.MjModel.from_xml_string(PRESS)
    return m, mujoco.MjData(m)


# the same with the implicit integrator, the gel's forces applied by MuJoCo's step (coupling
# 'explicit'), solved far below the differences' step
IMPLICIT_KEYS = ('<config key="integrator" value="implicit"/><config key="coupling" '
                 'value="explicit"/><config key="tolerance" value="1e-11"/>'
                 '<config key="iterations" value="100"/>')
PRESS_IMPLICIT = PRESS.replace('<config key="young"', IMPLICIT_KEYS + '<config key="young"', 1)


def _pressed(xml):
    """the scene WARM steps into the press, its integration state, and the next T controls"""
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    for t in range(WARM):
        d.ctrl[:] = press_control(t)
        mujoco.mj_step(m, d)
    sig = mujoco.mjtState.mjSTATE_INTEGRATION
    s0 = np.zeros(mujoco.mj_stateSize(m, sig))
    mujoco.mj_getState(m, d, s0, sig)
    ctrl = np.array([press_control(WARM + t) for t in range(T)])
    return m, d, s0, ctrl


@pytest.fixture(scope="module")
def pressed():
    return _pressed(PRESS)


# ---- parameters ----------------------------------------------------------------------------------


def test_param_names_are_instance_slash_parameter(scene):
    m, _ = scene
    assert difftac.param_names(m) == NAMES
    assert difftac.param_index(m, "gel/friction") == 4
    assert difftac.param_index(m, 2) == 2


def test_param_get_set_round_trip_per_data(scene):
    m, d = scene
    assert difftac.param_get(m, d, "gel/young") == 2e5
    assert difftac.param_get(m, d, 4) == 0.8
    difftac.param_set(m, d, "gel/young", 3.5e5)
    difftac.param_set(m, d, 4, 0.25)
    assert difftac.param_get(m, d, "gel/young") == 3.5e5
    assert difftac.param_get(m, d, "gel/friction") == 0.25
    # each MjData has its own parameters
    assert difftac.param_get(m, mujoco.MjData(m), "gel/young") == 2e5


def test_unknown_parameter_is_a_value_error_listing_the_names(scene):
    m, d = scene
    with pytest.raises(ValueError, match=r"no parameter named 'gel/nope'.*gel/young"):
        difftac.param_get(m, d, "gel/nope")
    with pytest.raises(ValueError, match=r"no parameter 99: the model has 8"):
        difftac.param_set(m, d, 99, 1.0)
    with pytest.raises(ValueError, match=r"no parameter -1"):
        difftac.param_get(m, d, -1)


def test_out_of_range_value_is_a_value_error_and_keeps_the_value(scene):
    m, d = scene
    with pytest.raises(ValueError, match=r"parameter gel/friction: value -1\.0 is out of range.*"
                                         r"stays 0\.8"):
        difftac.param_set(m, d, "gel/friction", -1)
    assert difftac.param_get(m, d, "gel/friction") == 0.8
    with pytest.raises(ValueError, match=r"parameter gel/young: value 'soft' is not a number"):
        difftac.param_set(m, d, "gel/young", "soft")
    with pytest.raises(ValueError, match=r"gel/young.*nan"):
        difftac.param_set(m, d, "gel/young", float("nan"))
    assert difftac.param_get(m, d, "gel/young") == 2e5


def test_grad_state_size_is_2nv_na_npluginstate(scene):
    m, _ = scene
    assert difftac.grad_state_size(m) == 2 * m.nv + m.na + m.npluginstate


# ---- tape ------------------------------------------------------------------------------------------


def test_tape_backward_shapes_and_finite(pressed):
    m, d, s0, ctrl = pressed
    mujoco.mj_setState(m, d, s0, mujoco.mjtState.mjSTATE_INTEGRATION)
    with difftac.Tape(m, d, T) as tape:
        assert tape.nstep == 0 and tape.capacity == T
        assert tape.memory > 0
        for t in range(T):
            assert tape.step(ctrl[t]) == t
        assert tape.nstep == T
        g = tape.backward(np.ones((T, m.nsensordata)), np.ones(difftac.grad_state_size(m)))
        assert g["state0"].shape == (difftac.grad_state_size(m),)
        assert g["ctrl"].shape == (T, m.nu)
        assert g["param"].shape == (len(NAMES),)
        for v in g.values():
            assert np.all(np.isfinite(v))
        assert np.abs(g["ctrl"]).max() > 0 and np.abs(g["param"]).max() > 0
        # no cotangents: zero gradients
        g0 = tape.backward()
        assert all(not np.any(v) for v in g0.values())
    assert "closed" in repr(tape)


def test_tape_errors(pressed):
    m, d, s0, ctrl = pressed
    mujoco.mj_setState(m, d, s0, mujoco.mjtState.mjSTATE_INTEGRATION)
    tape = difftac.Tape(m, d, 2)
    with pytest.raises(RuntimeError, match="no recorded steps"):
        tape.backward()
    tape.step(ctrl[0])
    tape.step(ctrl[1])
    with pytest.raises(RuntimeError, match=r"the tape is full \(2 steps\)"):
        tape.step()
    with pytest.raises(ValueError, match=r"sensor_bar has shape \(3, 2\); expected \(2, 2\)"):
        tape.backward(sensor_bar=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"state_bar has shape \(5,\); expected"):
        tape.backward(state_bar=np.zeros(5))
    with pytest.raises(ValueError, match="non-finite"):
        tape.backward(sensor_bar=np.full((2, 2), np.nan))
    tape.reset()
    assert tape.nstep == 0
    tape.close()
    tape.close()
    with pytest.raises(RuntimeError, match="closed"):
        tape.step()
    with pytest.raises(ValueError, match="nstep = 0"):
        difftac.Tape(m, d, 0)
    with pytest.raises(TypeError, match="MjData"):
        difftac.Tape(m, m, 3)


def test_tape_keeps_model_and_data_alive():
    m = mujoco.MjModel.from_xml_string(PRESS)
    tape = difftac.Tape(m, mujoco.MjData(m), 3)
    del m
    for _ in range(3):
        tape.step([0.0, -0.001])
    assert np.all(np.isfinite(tape.backward(state_bar=np.ones(tape.nx))["state0"]))
    tape.close()


def rollout(m, d, s0, ctrl, wy, wx, qbase, perturb=None):
    """loss = sum_t <wy[t], sensordata after step t> + <wx, final (qpos - qbase, qvel)>"""
    mujoco.mj_setState(m, d, s0, mujoco.mjtState.mjSTATE_INTEGRATION)
    if perturb:
        perturb(d)
    loss = 0.0
    for t in range(len(ctrl)):
        d.ctrl[:] = ctrl[t]
        mujoco.mj_step(m, d)
        loss += wy[t] @ d.sensordata
    return loss + wx[:m.nv] @ (d.qpos - qbase) + wx[m.nv:2 * m.nv] @ d.qvel


def test_tape_matches_central_differences_of_a_rollout(pressed):
    check_tape_against_central_differences(*pressed)


def test_tape_through_the_implicit_integrator_matches_central_differences():
    """the implicit step's reverse (implicit function theorem) in the same rollout"""
    check_tape_against_central_differences(*_pressed(PRESS_IMPLICIT))


def test_tape_through_an_implicit_step_solved_with_its_bodies_matches_central_differences():
    """coupling 'substep' makes the finger an unknown of the implicit solve: the joint reverse"""
    xml = PRESS_IMPLICIT.replace('value="explicit"', 'value="substep"', 1)
    check_tape_against_central_differences(*_pressed(xml))


def check_tape_against_central_differences(m, d, s0, ctrl):
    rng = np.random.default_rng(5)
    wy = rng.normal(size=(T, m.nsensordata))
    nx = difftac.grad_state_size(m)
    wx = np.zeros(nx)
    wx[:2 * m.nv] = rng.normal(size=2 * m.nv)  # final qpos (slide joints: tangent = qpos) and qvel
    mujoco.mj_setState(m, d, s0, mujoco.mjtState.mjSTATE_INTEGRATION)
    with difftac.Tape(m, d, T) as tape:
        for t in range(T):
            tape.step(ctrl[t])
        assert difftac.gel_info(m, d, "gel").ncontact > 5, "the rollout must end in contact"
        qbase = d.qpos.copy()
        g = tape.backward(wy, wx)

    def fd(perturb_ctrl=None, perturb=None, e=1.0):
        # fourth-order central differences in e
        val = {}
        for a in (e, -e, 2 * e, -2 * e):
            u = ctrl + perturb_ctrl * a if perturb_ctrl is not None else ctrl
            val[a] = rollout(m, d, s0, u, wy, wx, qbase, perturb and (lambda dd: perturb(dd, a)))
        return (8 * (val[e] - val[-e]) - (val[2 * e] - val[-2 * e])) / (12 * e)

    def close(what, tape_value, num):
        err = abs(tape_value - num) / max(abs(num), 1e-12)
        print(f"  {what:18s} tape {tape_value:+.10e}  fd {num:+.10e}  rel err {err:.1e}")
        assert abs(num) > 1e-9, f"{what} has no effect"
        assert err < 1e-4, f"{what}: tape {tape_value} finite differences {num}"

    du = 1e-4 * rng.normal(size=ctrl.shape)
    close("controls", np.sum(g["ctrl"] * du), fd(perturb_ctrl=du, e=1e-2))
    dv = 0.01 * rng.normal(size=m.nv)
    close("initial qvel", g["state0"][m.nv:2 * m.nv] @ dv,
          fd(perturb=lambda dd, a: dd.qvel.__iadd__(a * dv), e=1e-3))
    for name in ("gel/young", "gel/friction"):
        i = difftac.param_index(m, name)
        v0 = difftac.param_get(m, d, name)

        def set_param(dd, a):
            difftac.param_set(m, dd, name, v0 * (1 + a))
        try:
            close(name, g["param"][i] * v0, fd(perturb=set_param, e=1e-5))
        finally:
            difftac.param_set(m, d, name, v0)


def test_tape_through_tactile_sensors_matches_central_differences():
    # the press scene with a marker and a force sensor; the loss weighs only those
    xml = PRESS.replace("</extension>", '<plugin plugin="difftac.tactile"/></extension>').replace(
        "<sensor>", """<sensor>
    <plugin name="markers" plugin="difftac.tactile" objtype="site" objname="gel_site">
      <config key="elastomer" value="gel"/><config key="output" value="markers"/>
      <config key="markers" value="3 3"/><config key="marker_pitch" value="0.003"/>
    </plugin>
    <plugin name="force" plugin="difftac.tactile" objtype="site" objname="gel_site">
      <config key="elastomer" value="gel"/><config key="output" value="force"/>
    </plugin>""")
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    for t in range(WARM):
        d.ctrl[:] = press_control(t)
        mujoco.mj_step(m, d)
    sig = mujoco.mjtState.mjSTATE_INTEGRATION
    s0 = np.zeros(mujoco.mj_stateSize(m, sig))
    mujoco.mj_getState(m, d, s0, sig)
    ctrl = np.array([press_control(WARM + t) for t in range(T)])
    rng = np.random.default_rng(7)
    wy = np.zeros((T, m.nsensordata))
    tactile = np.r_[m.sensor("markers").adr[0]:m.sensor("force").adr[0] + 6]
    wy[:, tactile] = rng.normal(size=(T, len(tactile)))
    wx = np.zeros(difftac.grad_state_size(m))
    mujoco.mj_setState(m, d, s0, sig)
    with difftac.Tape(m, d, T) as tape:
        for t in range(T):
            tape.step(ctrl[t])
        qbase = d.qpos.copy()
        g = tape.backward(wy, wx)

    def fd(du=None, name=None, e=1.0):
        val = {}
        for a in (e, -e, 2 * e, -2 * e):
            u = ctrl + a * du if du is not None else ctrl
            v0 = name and difftac.param_get(m, d, name)
            pert = name and (lambda dd: difftac.param_set(m, dd, name, v0 * (1 + a)))
            try:
                val[a] = rollout(m, d, s0, u, wy, wx, qbase, pert)
            finally:
                if name:
                    difftac.param_set(m, d, name, v0)
        return (8 * (val[e] - val[-e]) - (val[2 * e] - val[-2 * e])) / (12 * e)

    du = 1e-4 * rng.normal(size=ctrl.shape)
    checks = [("controls", np.sum(g["ctrl"] * du), fd(du=du, e=1e-2))]
    for name in ("gel/young", "gel/friction"):
        checks.append((name, g["param"][difftac.param_index(m, name)] *
                       difftac.param_get(m, d, name), fd(name=name, e=1e-5)))
    for what, an, num in checks:
        err = abs(an - num) / max(abs(num), 1e-12)
        print(f"  {what:18s} tape {an:+.10e}  fd {num:+.10e}  rel err {err:.1e}")
        assert abs(num) > 1e-9, f"{what} has no effect"
        assert err < 1e-4, f"{what}: tape {an} finite differences {num}"


# ---- examples --------------------------------------------------------------------------------------


def run_example(name, *args, timeout=300):
    env = dict(os.environ, MPLBACKEND="Agg")
    t0 = time.time()
    r = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout)
    return r, time.time() - t0


def results(stdout):
    """the RESULT lines as {method: {key: value}}"""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            kv = dict(f.split("=", 1) for f in line.split()[1:])
            out[kv.pop("method")] = kv
    return out


def test_sysid_quick_recovers_young_and_friction(tmp_path):
    # about 30 s: 40-step rollouts of models/sysid.xml, BFGS then Nelder-Mead
    r, wall = run_example("sysid.py", "--quick", "--out", str(tmp_path / "sysid.png"))
    assert r.returncode == 0, r.stdout + r.stderr
    res = results(r.stdout)
    assert set(res) == {"gradient", "nelder-mead"}, r.stdout
    for method, kv in res.items():
        assert abs(float(kv["young_err"])) < 0.01 and abs(float(kv["friction_err"])) < 0.01, \
            f"{method}: {kv}"
    assert int(res["gradient"]["backward"]) > 0
    assert (tmp_path / "sysid.png").stat().st_size > 10000
    print(f"sysid.py --quick took {wall:.1f} s")


def test_trajopt_quick_tracks_the_force_profile(tmp_path):
    # about 20 s: 40 steps, 12 L-BFGS iterations
    r, wall = run_example("trajopt.py", "--quick", "--out", str(tmp_path / "trajopt.png"))
    assert r.returncode == 0, r.stdout + r.stderr
    kv = results(r.stdout)["lbfgs"]
    assert float(kv["rms_after"]) < 0.02 < float(kv["rms_before"]), kv
    assert (tmp_path / "trajopt.png").stat().st_size > 10000
    print(f"trajopt.py --quick took {wall:.1f} s")


def test_transition_matches_mjd_transitionFD_on_sensors_and_shapes():
    m = mujoco.MjModel.from_xml_string(PRESS)
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    for t in range(WARM):
        d.ctrl[:] = [0.0, -0.0015 - 0.002 * min(t * 0.002 / 0.08, 1.0)]
        mujoco.mj_step(m, d)
    qpos = d.qpos.copy()
    A, B, C, D = difftac.transition(m, d)
    ndx = 2 * m.nv + m.na
    assert A.shape == (ndx, ndx) and B.shape == (ndx, m.nu)
    assert C.shape == (m.nsensordata, ndx) and D.shape == (m.nsensordata, m.nu)
    assert np.array_equal(d.qpos, qpos)
    Af, Bf = np.zeros((ndx, ndx)), np.zeros((ndx, m.nu))
    Cf, Df = np.zeros((m.nsensordata, ndx)), np.zeros((m.nsensordata, m.nu))
    mujoco.mjd_transitionFD(m, d, 1e-6, True, Af, Bf, Cf, Df)
    assert np.allclose(C, Cf, atol=1e-6) and np.allclose(D, Df, atol=1e-6)
    # A and B agree with mjd_transitionFD's finite differences to their accuracy
    assert np.abs(A - Af).max() < 1e-3 * np.abs(Af).max()
    assert np.abs(B - Bf).max() < 1e-3 * max(np.abs(Bf).max(), 1.0)
