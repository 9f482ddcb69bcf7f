"""difftac.add_gel / difftac.add_tactile (python/difftac/spec.py): gels and tactile sensors added to
an MjSpec, keys checked before compiling, and the same model as the XML form."""
import pathlib
import subprocess
import sys
import textwrap

import mujoco
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
import difftac  # noqa: E402
from difftac import spec as dspec  # noqa: E402

# press_small.xml's scene without its <extension>: a finger with a site over a 4 mm sphere
SCENE = """
<mujoco model="press">
  <option timestep="0.002"/>
  <worldbody>
    <geom name="ball" type="sphere" pos="0 0 0.01" size="0.004"/>
    <body name="finger" pos="0 0 0.0175">
      <joint name="x" type="slide" axis="1 0 0" damping="2"/>
      <joint name="z" type="slide" axis="0 0 1" damping="2"/>
      <geom type="box" size="0.008 0.008 0.002" pos="0 0 0.003" mass="0.05" contype="0"
            conaffinity="0"/>
      <site name="gel_site" euler="180 0 0"/>
    </body>
  </worldbody>
  <actuator>
    <position name="x" joint="x" kp="300"/>
    <position name="z" joint="z" kp="300"/>
  </actuator>
  {sensor}
</mujoco>
"""
GEL = dict(size=(0.012, 0.012, 0.003), resolution=0.0015, young=2e5, poisson=0.4, friction=0.8)
SENSORS = [("pressure", dict(size=(24, 24), pitch=0.0005)), ("depth", dict(size=(24, 24), pitch=0.0005)),
           ("markers", dict(markers=(4, 4), marker_pitch=0.002)), ("force", {})]

XML_SENSORS = """
  <extension>
    <plugin plugin="difftac.elastomer">
      <instance name="gel">
        <config key="site" value="gel_site"/>
        <config key="size" value="0.012 0.012 0.003"/>
        <config key="resolution" value="0.0015"/>
        <config key="young" value="2e5"/>
        <config key="poisson" value="0.4"/>
        <config key="friction" value="0.8"/>
      </instance>
    </plugin>
    <plugin plugin="difftac.tactile"/>
  </extension>
  <sensor>
    <plugin name="gel_pressure" plugin="difftac.tactile" objtype="site" objname="gel_site">
      <config key="elastomer" value="gel"/><config key="output" value="pressure"/>
      <config key="size" value="24 24"/><config key="pitch" value="0.0005"/>
    </plugin>
    <plugin name="gel_depth" plugin="difftac.tactile" objtype="site" objname="gel_site">
      <config key="elastomer" value="gel"/><config key="output" value="depth"/>
      <config key="size" value="24 24"/><config key="pitch" value="0.0005"/>
    </plugin>
    <plugin name="gel_markers" plugin="difftac.tactile" objtype="site" objname="gel_site">
      <config key="elastomer" value="gel"/><config key="output" value="markers"/>
      <config key="markers" value="4 4"/><config key="marker_pitch" value="0.002"/>
    </plugin>
    <plugin name="gel_force" plugin="difftac.tactile" objtype="site" objname="gel_site">
      <config key="elastomer" value="gel"/><config key="output" value="force"/>
    </plugin>
  </sensor>
"""


def spec_scene():
    spec = mujoco.MjSpec.from_string(SCENE.format(sensor=""))
    gel = difftac.add_gel(spec, "gel_site", name="gel", **GEL)
    for out, keys in SENSORS:
        difftac.add_tactile(spec, gel, out, **keys)
    return spec


def press(m, n=60):
    d = mujoco.MjData(m)
    out = []
    for t in range(n):
        d.ctrl[:] = [0.0003 * t / n, -0.004 * min(1.0, 2 * t / n)]
        mujoco.mj_step(m, d)
    out.append(d.sensordata.copy())
    return d, np.concatenate(out)


def test_spec_built_model_equals_xml_built_on_a_press():
    m_spec = spec_scene().compile()
    m_xml = mujoco.MjModel.from_xml_string(SCENE.format(sensor=XML_SENSORS))
    assert m_spec.nplugin == m_xml.nplugin
    assert list(m_spec.sensor_dim) == list(m_xml.sensor_dim)
    assert [m_spec.sensor(i).name for i in range(m_spec.nsensor)] == \
        [m_xml.sensor(i).name for i in range(m_xml.nsensor)]
    d1, y_spec = press(m_spec)
    d2, y_xml = press(m_xml)
    # the press touches: the pressure map and the force are not zero
    f = difftac.sensor(m_spec, d1, "gel_force")
    assert -f[2] > 0.05, f
    assert difftac.sensor(m_spec, d1, "gel_pressure").max() > 0
    assert np.all(np.isfinite(y_spec))
    np.testing.assert_array_equal(y_spec, y_xml)
    np.testing.assert_array_equal(d1.plugin_state, d2.plugin_state)


def test_returned_objects_and_round_trip_through_xml():
    spec = spec_scene()
    xml = spec.to_xml()
    # the sensor's config is written inline, as an XML author would write it
    assert '<config key="output" value="pressure"/>' in xml
    assert xml.count('plugin="difftac.elastomer"') == 1 and xml.count('plugin="difftac.tactile"') >= 5
    m = mujoco.MjModel.from_xml_string(xml)
    info = difftac.tactile_info(m, mujoco.MjData(m), "gel_pressure")
    assert (info.width, info.height, info.pitch) == (24, 24, 0.0005)
    assert difftac.gels(m) == ["gel"]


def test_activation_is_done_and_idempotent():
    spec = mujoco.MjSpec.from_string(SCENE.format(sensor=""))
    difftac.add_gel(spec, "gel_site", name="g1", resolution=0.003, size=(0.012, 0.012, 0.003))
    spec.worldbody.add_site(name="s2", pos=[0.1, 0, 0.05], euler=[np.pi, 0, 0])
    difftac.add_gel(spec, "s2", name="g2", resolution=0.003, size=(0.012, 0.012, 0.003))
    difftac.add_tactile(spec, "g1", "force")
    difftac.add_tactile(spec, "g2", "force", name="f2")
    m = spec.compile()                                  # no "unrecognized plugin"
    assert difftac.gels(m) == ["g1", "g2"]
    assert difftac.tactile_sensors(m) == ["g1_force", "f2"]


@pytest.mark.parametrize("call, words", [
    (lambda s: difftac.add_gel(s, "gel_site", yung=3e5), ["'gel'", "'yung'", "300000"]),
    (lambda s: difftac.add_gel(s, "gel_site", young="soft"), ["'gel'", "'young'", "'soft'"]),
    (lambda s: difftac.add_gel(s, "gel_site", young=-1.0), ["'young'", "-1.0"]),
    (lambda s: difftac.add_gel(s, "gel_site", poisson=0.5), ["'poisson'", "0.5"]),
    (lambda s: difftac.add_gel(s, "gel_site", size=(0.01, 0.01)), ["'size'", "2 value"]),
    (lambda s: difftac.add_gel(s, "gel_site", size=(0.01, "a", 0.01)), ["'size'", "not all numbers"]),
    (lambda s: difftac.add_gel(s, "gel_site", resolution=float("nan")), ["'resolution'", "nan"]),
    (lambda s: difftac.add_gel(s, "gel_site", contype=1.5), ["'contype'", "1.5"]),
    (lambda s: difftac.add_gel(s, "gel_site", coupling="implicitly"), ["'coupling'", "implicitly"]),
    (lambda s: difftac.add_gel(s, "gel_site", device="gpu"), ["'device'", "gpu"]),
    (lambda s: difftac.add_gel(s, "gel_site", shape="dome"), ["'shape'", "dome"]),
    (lambda s: difftac.add_gel(s, "gel_site", friction=True), ["'friction'", "True"]),
    (lambda s: difftac.add_gel(s, "no_site"), ["'site'", "no_site"]),
    (lambda s: difftac.add_tactile(s, "nogel", "rgb"), ["'elastomer'", "nogel"]),
])
def test_bad_gel_key_is_a_value_error_before_compile(call, words):
    spec = mujoco.MjSpec.from_string(SCENE.format(sensor=""))
    nplug = len(spec.plugins)
    with pytest.raises(ValueError) as e:
        call(spec)
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    assert len(spec.plugins) == nplug  # nothing was added


@pytest.mark.parametrize("keys, words", [
    (dict(output="colour"), ["'gel_colour'", "'output'", "colour"]),
    (dict(output="rgb", size=(320, 240.5)), ["'size'", "240.5"]),
    (dict(output="rgb", size=(0, 240)), ["'size'", "out of range"]),
    (dict(output="rgb", pitch=0), ["'pitch'", "0"]),
    (dict(output="rgb", pich=6.5e-5), ["'pich'", "unknown key"]),
    (dict(output="rgb", optics_file="/nonexistent/optics.txt"), ["'optics_file'", "nonexistent"]),
    (dict(output="markers", markers=(9,)), ["'markers'", "1 value"]),
    (dict(output="rgb", lighting=[0.0] * 29), ["'lighting'", "29 value"]),
])
def test_bad_tactile_key_is_a_value_error_before_compile(keys, words):
    spec = mujoco.MjSpec.from_string(SCENE.format(sensor=""))
    difftac.add_gel(spec, "gel_site", **GEL)
    nsens = len(spec.sensors)
    out = keys.pop("output")
    with pytest.raises(ValueError) as e:
        difftac.add_tactile(spec, "gel", out, **keys)
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    assert len(spec.sensors) == nsens


def test_documented_keys_are_the_registered_ones():
    """the Python key tables cover exactly what the C plugins registered (mjpPlugin.attributes):
    a key added in C must be documented and added to python/difftac/spec.py"""
    assert set(dspec.registered_keys("difftac.elastomer")) == set(dspec.GEL_KEYS)
    reg = set(dspec.registered_keys("difftac.tactile"))
    assert set(dspec.TACTILE_KEYS) <= reg, set(dspec.TACTILE_KEYS) - reg
    # the tactile plugin also registers the per-channel background aliases
    assert reg - set(dspec.TACTILE_KEYS) <= {"background_r", "background_g", "background_b"}


def test_sensor_plugin_config_on_a_new_sensor_crashes_mujoco_not_difftac():
    """the crash the helpers avoid is MuJoCo's own (a NULL plugin element), without difftac; if a
    MuJoCo release fixes it, this test says so"""
    code = textwrap.dedent("""
        import mujoco
        spec = mujoco.MjSpec()
        s = spec.add_sensor(name="x", type=mujoco.mjtSensor.mjSENS_PLUGIN)
        s.plugin.config = {"a": "b"}
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert r.returncode == -11, (r.returncode, r.stderr.decode()[-500:])
    # and the call add_tactile uses instead works on the same sensor
    code_ok = textwrap.dedent("""
        import mujoco
        spec = mujoco.MjSpec()
        s = spec.add_sensor(name="x", type=mujoco.mjtSensor.mjSENS_PLUGIN)
        inst = spec.add_plugin(plugin_name="mujoco.sensor.touch_grid", active=True)
        s.plugin.id = inst
        s.plugin.config = {"a": "b"}
        assert inst.config == {"a": "b"}, inst.config
    """)
    r = subprocess.run([sys.executable, "-c", code_ok], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()[-500:]
