"""Which mjtState flags carry the gel (docs/robots.md, "State"): in MuJoCo 4.0 the gel lives in
plugin_state (mjSTATE_PLUGIN), which mjSTATE_FULLPHYSICS and mjSTATE_INTEGRATION include and
mjSTATE_PHYSICS does not. Fails if either claim stops being true."""
import pathlib
import sys

import mujoco
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
import difftac  # noqa: E402,F401

S = mujoco.mjtState


def test_flag_bits():
    assert S.mjSTATE_FULLPHYSICS & S.mjSTATE_PLUGIN
    assert S.mjSTATE_INTEGRATION & S.mjSTATE_PLUGIN
    assert not S.mjSTATE_PHYSICS & S.mjSTATE_PLUGIN


def _run(m, d, n):
    out = []
    for _ in range(n):
        mujoco.mj_step(m, d)
        out.append(np.concatenate([d.qpos, d.sensordata, d.plugin_state]))
    return np.array(out)


@pytest.fixture(scope="module")
def press():
    m = mujoco.MjModel.from_xml_path(str(ROOT / "models" / "press_small.xml"))
    d = mujoco.MjData(m)
    d.ctrl[:] = [0.0005, -0.004]       # pressed into the sphere and sliding over it
    _run(m, d, 40)
    return m, d


@pytest.mark.parametrize("flag, restores_gel", [("mjSTATE_INTEGRATION", True),
                                                 ("mjSTATE_FULLPHYSICS", True),
                                                 ("mjSTATE_PHYSICS", False)])
def test_get_set_state_continues_the_gel(press, flag, restores_gel):
    m, d0 = press
    spec = getattr(S, flag)
    d = mujoco.MjData(m)
    mujoco.mj_copyData(d, m, d0)
    state = np.empty(mujoco.mj_stateSize(m, spec))
    mujoco.mj_getState(m, d, state, spec)
    ref = _run(m, d, 10)
    _run(m, d, 30)                        # move on: the gel deforms further
    mujoco.mj_setState(m, d, state, spec)
    again = _run(m, d, 10)
    if restores_gel:
        # the same steps again; FULLPHYSICS leaves out the warm start, so the constraint solver
        # may start elsewhere: equal to solver precision, bit-identical with INTEGRATION
        if flag == "mjSTATE_INTEGRATION":
            np.testing.assert_array_equal(again, ref)
        else:
            np.testing.assert_allclose(again, ref, rtol=1e-6, atol=1e-9)
    else:
        # the rigid state is restored but the gel is where 30 more steps left it
        ngel = m.nplugin and d.plugin_state.size
        gel_ref, gel_again = ref[0, -ngel:], again[0, -ngel:]
        assert np.abs(gel_again - gel_ref).max() > 1e-6
        assert np.abs(again[0, :m.nq] - ref[0, :m.nq]).max() < np.abs(gel_again - gel_ref).max()
