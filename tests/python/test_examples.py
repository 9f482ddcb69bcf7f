"""The examples run and do what they say: calibration recovers known lighting parameters, the
marker field is drawn by the tactile sensor's visualize callback, grasp_tactile.xml is grasp.xml
plus sensors, and a smoke run of examples/tactile_images.py writes its pictures."""
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
BUILD = os.environ.get("DTAC_BUILD_DIR", "build")
LIB = ROOT / BUILD / "libdifftac.so"
ENV = dict(os.environ, DTAC_BUILD_DIR=BUILD, MPLBACKEND="Agg")


@pytest.fixture(scope="module", autouse=True)
def plugin():
    mujoco.mj_loadPluginLibrary(str(LIB))


def run_example(name, *args, timeout=120):
    t0 = time.time()
    r = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=timeout)
    return r, time.time() - t0


# ---- calibration --------------------------------------------------------------------------------


def test_calibrate_recovers_known_lighting(tmp_path):
    r, _ = run_example("calibrate.py", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"max parameter error (\S+) \(relative (\S+),", r.stdout)
    assert m, r.stdout
    assert float(m.group(2)) < 1e-6
    # the library's renderer is the model docs/tactile.md writes down
    m = re.search(r"numpy model of docs/tactile.md: max \|diff\| (\S+);", r.stdout)
    assert m and float(m.group(1)) < 1e-12, r.stdout
    assert (tmp_path / "calibration.png").stat().st_size > 10000
    # the fitted parameters, written as an optics_file, load into a sensor: a flat gel shows
    # the fitted background
    path = tmp_path / "calibration_optics.txt"
    bg = np.array([float(v) for v in path.read_text().split("background")[1].split()[:3]])
    xml = MARKER_SCENE.replace('name="depth"', 'name="rgb"').replace(
        '<config key="output" value="depth"/>',
                               f'<config key="output" value="rgb"/>'
                               f'<config key="optics_file" value="{path}"/>')
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    rgb = d.sensor("rgb").data.reshape(-1, 3)
    np.testing.assert_allclose(rgb[20 * 40 + 20], bg, atol=1e-12)


def test_calibrate_other_seed_and_coarser_images(tmp_path):
    r, _ = run_example("calibrate.py", "--out", str(tmp_path), "--seed", "11", "--size", "120",
                       "90", "--pitch", "1.5e-4", "--no-plot")
    assert r.returncode == 0, r.stdout + r.stderr


def test_fit_of_flat_images_is_a_clear_failure():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import calibrate
    finally:
        sys.path.pop(0)
    lib = calibrate.load_lib(str(LIB))
    depth = np.zeros((2, 30, 40))
    rgb = np.full((2, 30, 40, 3), 0.5)
    rms, _, _, msg = calibrate.fit(lib, depth, rgb, 1e-4)
    assert rms < 0 and len(msg) > 10


# ---- marker drawing (tactile visualize) -------------------------------------------------------

MARKER_SCENE = """
<mujoco>
  <extension>
    <plugin plugin="difftac.elastomer"><instance name="gel">
      <config key="site" value="s"/><config key="size" value="0.012 0.012 0.004"/>
      <config key="resolution" value="0.002"/>
    </instance></plugin>
    <plugin plugin="difftac.tactile"/>
  </extension>
  <worldbody>
    <geom type="sphere" size="0.005" pos="0.001 0 0.005"/>
    <body pos="0 0 0.0142" gravcomp="1">
      <joint name="z" type="slide" axis="0 0 1" damping="2"/>
      <geom type="box" size="0.007 0.007 0.001" pos="0 0 0.001" mass="0.05" contype="0"
            conaffinity="0"/>
      <site name="s" euler="180 0 0"/>
    </body>
  </worldbody>
  <sensor>
    <plugin name="markers" plugin="difftac.tactile" objtype="site" objname="s">
      <config key="elastomer" value="gel"/><config key="output" value="markers"/>
      <config key="markers" value="3 3"/><config key="marker_pitch" value="0.003"/>
    </plugin>
    <plugin name="depth" plugin="difftac.tactile" objtype="site" objname="s">
      <config key="elastomer" value="gel"/><config key="output" value="depth"/>
      <config key="size" value="40 40"/><config key="pitch" value="2e-4"/>
    </plugin>
  </sensor>
  <actuator><position joint="z" kp="500"/></actuator>
</mujoco>
"""
ARROW_SCALE = 10.0  # MARKER_ARROW_SCALE in plugin/tactile.c
PITCH = 6.5e-5     # the markers sensor's default pixel size


def pressed_marker_scene():
    m = mujoco.MjModel.from_xml_string(MARKER_SCENE)
    d = mujoco.MjData(m)
    d.ctrl[0] = -0.001
    for _ in range(100):
        mujoco.mj_step(m, d)
    mujoco.mj_forward(m, d)
    return m, d


def update_scene(m, d, maxgeom):
    scn = mujoco.MjvScene(m, maxgeom)
    mujoco.mjv_updateScene(m, d, mujoco.MjvOption(), mujoco.MjvPerturb(), mujoco.MjvCamera(),
                           mujoco.mjtCatBit.mjCAT_ALL, scn)
    return scn


def plugin_geoms(m, scn, sensor):
    inst = m.sensor_plugin[m.sensor(sensor).id]
    return [scn.geoms[i] for i in range(scn.ngeom)
            if scn.geoms[i].objtype == mujoco.mjtObj.mjOBJ_PLUGIN and scn.geoms[i].objid == inst]


def test_markers_are_drawn_at_their_deformed_positions_with_arrows():
    m, d = pressed_marker_scene()
    disp = d.sensor("markers").data.reshape(-1, 2)  # pixels
    assert np.abs(disp).max() > 0.1, "the press should move the markers"
    scn = update_scene(m, d, 10000)
    mine = plugin_geoms(m, scn, "markers")
    spheres = [g for g in mine if g.type == mujoco.mjtGeom.mjGEOM_SPHERE]
    arrows = [g for g in mine if g.type == mujoco.mjtGeom.mjGEOM_ARROW]
    assert len(spheres) == 9
    assert 1 <= len(arrows) <= 9
    # image outputs draw nothing
    assert plugin_geoms(m, scn, "depth") == []
    site = m.site("s").id
    R = d.site_xmat[site].reshape(3, 3)
    rest = 0.003 * np.array([(c - 1, r - 1) for r in range(3) for c in range(3)])
    for k, g in enumerate(spheres):
        local = R.T @ (g.pos - d.site_xpos[site])
        # on the sensor's deformed marker position (site-frame xy), just off the gel's top face
        np.testing.assert_allclose(local[:2], rest[k] + PITCH * disp[k], atol=1e-9)
        assert 0.0035 < local[2] < 0.0045
    for g in arrows:
        # the arrow starts at a marker's rest position, passes through the marker after its
        # in-plane displacement and is ARROW_SCALE times that long
        axis = g.mat.reshape(3, 3)[:, 2]
        local = R.T @ (g.pos - d.site_xpos[site])
        k = int(np.argmin(np.linalg.norm(rest - local[:2], axis=1)))
        np.testing.assert_allclose(local[:2], rest[k], atol=1e-9)
        dk = PITCH * np.linalg.norm(disp[k])
        np.testing.assert_allclose(g.pos + dk * axis, spheres[k].pos, atol=1e-8)
        assert g.size[2] == pytest.approx(ARROW_SCALE * dk, rel=1e-5)


def test_marker_drawing_respects_maxgeom():
    m, d = pressed_marker_scene()
    full = update_scene(m, d, 10000)
    nfull = full.ngeom
    assert len(plugin_geoms(m, full, "markers")) > 9
    for maxgeom in (1, 2, 3, nfull // 2, nfull - 3, nfull - 1, nfull):
        scn = update_scene(m, d, maxgeom)
        assert scn.ngeom <= maxgeom
        assert all(np.all(np.isfinite(scn.geoms[i].pos)) for i in range(scn.ngeom))
    assert update_scene(m, d, nfull).ngeom == nfull


def test_markers_drawn_before_the_first_step():
    m = mujoco.MjModel.from_xml_string(MARKER_SCENE)
    d = mujoco.MjData(m)
    mujoco.mj_kinematics(m, d)
    scn = update_scene(m, d, 10000)
    mine = plugin_geoms(m, scn, "markers")
    assert len(mine) == 9  # spheres only: nothing is displaced yet
    assert all(np.all(np.isfinite(g.pos)) for g in mine)


# ---- grasp_tactile.xml -------------------------------------------------------------------------


def test_grasp_tactile_is_grasp_plus_sensors():
    a = mujoco.MjModel.from_xml_path(str(ROOT / "models" / "grasp.xml"))
    b = mujoco.MjModel.from_xml_path(str(ROOT / "models" / "grasp_tactile.xml"))
    names = {b.sensor(i).name for i in range(b.nsensor)}
    for side in ("left", "right"):
        assert {f"{side}_rgb", f"{side}_pressure", f"{side}_markers"} <= names
    assert (a.nq, a.nv, a.nu, a.nbody, a.ngeom) == (b.nq, b.nv, b.nu, b.nbody, b.ngeom)
    da, db = mujoco.MjData(a), mujoco.MjData(b)
    for d in (da, db):
        d.ctrl[:] = [0.0, 0.02]
    for _ in range(60):
        mujoco.mj_step(a, da)
        mujoco.mj_step(b, db)
    np.testing.assert_array_equal(da.qpos, db.qpos)
    np.testing.assert_array_equal(da.plugin_state, db.plugin_state)


# ---- smoke run ---------------------------------------------------------------------------------


def test_tactile_images_smoke(tmp_path):
    # about 20 s on one core (140 steps of the 1 mm press gel); the limit leaves room for load
    r, wall = run_example("tactile_images.py", "--out", str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in ("rgb", "depth", "pressure", "shear", "markers", "tactile"):
        assert (tmp_path / f"{f}.png").stat().st_size > 5000, f
    m = re.search(r"sum pressure dA = (\S+) N", r.stdout)
    assert m and float(m.group(1)) > 0.5, r.stdout
    print(f"tactile_images.py took {wall:.1f} s")
