"""libdifftac loads into the Python `mujoco` package (the same libmujoco) and steps a scene."""
import os
import pathlib

import mujoco
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIB = ROOT / os.environ.get("DTAC_BUILD_DIR", "build") / "libdifftac.so"


@pytest.fixture(scope="module", autouse=True)
def plugin():
    mujoco.mj_loadPluginLibrary(str(LIB))


SCENE = """
<mujoco>
  <extension><plugin plugin="difftac.elastomer"><instance name="gel">
    <config key="site" value="s"/><config key="size" value="0.01 0.01 0.004"/>
    <config key="resolution" value="0.002"/>
  </instance></plugin></extension>
  <worldbody>
    <geom type="sphere" size="0.005" pos="0 0 0.005"/>
    <body pos="0 0 0.0142" gravcomp="1">
      <joint name="z" type="slide" axis="0 0 1" damping="2"/>
      <geom type="box" size="0.006 0.006 0.001" pos="0 0 0.001" mass="0.05" contype="0" conaffinity="0"/>
      <site name="s" euler="180 0 0"/>
    </body>
  </worldbody>
  <actuator><position joint="z" kp="500"/></actuator>
</mujoco>
"""


def test_scene_steps_and_gel_pushes_back():
    m = mujoco.MjModel.from_xml_string(SCENE)
    d = mujoco.MjData(m)
    assert m.npluginstate > 0
    d.ctrl[0] = -0.001
    for _ in range(100):
        mujoco.mj_step(m, d)
    assert np.all(np.isfinite(d.plugin_state))
    # the gel holds the finger above where the actuator alone would put it
    assert d.qpos[0] > -0.001 + 1e-5
    assert d.qfrc_passive[0] > 0.01


def test_bad_config_is_a_python_error_naming_key_and_value():
    with pytest.raises(ValueError, match="poisson.*0.7"):
        mujoco.MjModel.from_xml_string(SCENE.replace(
            '<config key="resolution" value="0.002"/>',
            '<config key="resolution" value="0.002"/><config key="poisson" value="0.7"/>'))


def test_rollout_threads_match_serial():
    m = mujoco.MjModel.from_xml_string(SCENE)
    datas = [mujoco.MjData(m) for _ in range(3)]
    nstep = 30
    ctrl = np.full((3, nstep, 1), -0.001)
    state0 = np.zeros((3, mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_FULLPHYSICS)))
    for k, d in enumerate(datas):
        mujoco.mj_forward(m, d)
        mujoco.mj_getState(m, d, state0[k], mujoco.mjtState.mjSTATE_FULLPHYSICS)
    from mujoco import rollout
    s1, _ = rollout.rollout(m, datas, state0, ctrl)
    s2, _ = rollout.rollout(m, datas[0], state0, ctrl)
    np.testing.assert_array_equal(s1, s2)
    assert np.all(np.isfinite(s1))


def _load_stderr(resolution):
    """stderr of a fresh process that loads a default pad at `resolution` and makes its data."""
    import subprocess
    import sys
    code = f"""
import mujoco
mujoco.mj_loadPluginLibrary({str(LIB)!r})
m = mujoco.MjModel.from_xml_string('''<mujoco><extension><plugin plugin="difftac.elastomer">
<instance name="pad"><config key="site" value="s"/><config key="resolution" value="{resolution}"/>
</instance></plugin></extension><worldbody><site name="s"/></worldbody></mujoco>''')
mujoco.MjData(m)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stderr


def test_a_big_gel_says_what_it_builds():
    # 0.6 mm: 61,740 tets, past the 50,000 above which a load takes seconds
    err = _load_stderr(0.0006)
    assert "instance 'pad': building a gel of" in err and "61740 tets" in err, err
    # the default pad loads quietly
    assert "building a gel" not in _load_stderr(0.001)
