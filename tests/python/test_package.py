"""The difftac Python package (python/difftac): loading, version checks, gels, tactile sensors."""
import os
import pathlib
import re
import subprocess
import sys

import mujoco
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))  # the package's source, installed or not

import difftac  # noqa: E402
from difftac import _lib  # noqa: E402

TOUCH = -0.0065  # press_tactile.xml: finger z at which the gel face meets the sphere top


def press_tactile(resolution="0.002"):
    """press_tactile.xml with a coarser gel (the default 1 mm mesh costs 0.15 s a step)."""
    xml = (ROOT / "models" / "press_tactile.xml").read_text()
    xml = xml.replace('key="resolution" value="0.001"', f'key="resolution" value="{resolution}"')
    m = mujoco.MjModel.from_xml_string(xml)
    return m, mujoco.MjData(m)


@pytest.fixture(scope="module")
def pressed():
    """the gel pressed 0.3 mm onto the sphere for a few steps"""
    m, d = press_tactile()
    d.qpos[:2] = [-0.05, TOUCH - 0.0003]
    d.ctrl[:] = d.qpos[:2]
    for _ in range(5):
        mujoco.mj_step(m, d)
    return m, d


def test_version_matches_header_and_running_mujoco():
    header = (ROOT / "include" / "difftac" / "difftac.h").read_text()
    assert difftac.version() == re.search(r'DTAC_VERSION_STRING "([^"]+)"', header).group(1)
    assert difftac.__version__ == difftac.version()
    assert difftac.mujoco_header_version() == mujoco.mj_version()
    assert os.path.isfile(difftac.library_path())
    assert pathlib.Path(difftac.library_path()).name == "libdifftac.so"


def test_loaded_once():
    lib1, path1 = _lib.load()
    lib2, path2 = _lib.load()
    assert lib1 is lib2 and path1 == path2 == pathlib.Path(difftac.library_path())


def test_version_mismatch_is_a_clear_error():
    _lib.check_versions(4000000, 4000000)
    with pytest.raises(difftac.LibraryError, match=r"built against MuJoCo 3\.3\.7.*running mujoco is 4\.0\.0"):
        _lib.check_versions(337, 4000000, "libdifftac.so")
    assert _lib.format_mujoco_version(4001002) == "4.1.2"


def test_missing_library_is_a_clear_error_in_a_fresh_process(tmp_path):
    bad = tmp_path / "nowhere" / "libdifftac.so"
    env = dict(os.environ, DIFFTAC_LIB=str(bad), PYTHONPATH=str(ROOT / "python"))
    r = subprocess.run([sys.executable, "-c", "import difftac"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    assert "LibraryError" in r.stderr and "not found" in r.stderr
    assert str(bad) in r.stderr and "DIFFTAC_LIB" in r.stderr


def test_not_a_library_is_a_clear_error_in_a_fresh_process(tmp_path):
    bad = tmp_path / "libdifftac.so"
    bad.write_text("not an ELF file")
    env = dict(os.environ, DIFFTAC_LIB=str(bad), PYTHONPATH=str(ROOT / "python"))
    r = subprocess.run([sys.executable, "-c", "import difftac"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    assert "LibraryError" in r.stderr and "cannot load" in r.stderr and str(bad) in r.stderr


def test_gels_listed():
    m = mujoco.MjModel.from_xml_path(str(ROOT / "models" / "grasp.xml"))
    assert difftac.gels(m) == ["left_gel", "right_gel"]
    m, d = press_tactile()
    assert difftac.gels(m) == ["gel"]
    assert difftac.tactile_sensors(m) == ["rgb", "depth", "pressure", "shear", "markers", "force"]
    with pytest.raises(KeyError, match="no difftac.elastomer instance named 'nope'"):
        difftac.gel_info(m, d, "nope")
    with pytest.raises(KeyError, match="no difftac.tactile sensor"):
        difftac.sensor(m, d, "nope")


def test_gel_info(pressed):
    m, d = pressed
    info = difftac.gel_info(m, d, "gel")
    assert info.name == "gel" and info.instance == 0
    nx, ny, nz = info.ncell
    assert info.nnode == (nx + 1) * (ny + 1) * (nz + 1)
    assert info.nsub >= 1 and info.dt_sub == pytest.approx(m.opt.timestep / info.nsub)
    assert info.site == mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "gel_site")
    assert info.ncontact > 0 and info.nwarning == 0
    assert info.mass == pytest.approx(1000 * 0.02075 * 0.02525 * 0.004, rel=1e-6)
    assert difftac.gel_info(m, d, 0) == info  # by instance id too


def test_gel_positions_view_shares_plugin_state(pressed):
    m, d = pressed
    x = difftac.gel_positions(m, d, "gel")
    info = difftac.gel_info(m, d, "gel")
    assert x.shape == (info.nnode, 3)
    assert np.shares_memory(x, d.plugin_state)
    before = x.copy()
    mujoco.mj_step(m, d)  # the view follows the simulation
    assert not np.array_equal(x, before)
    np.testing.assert_array_equal(x, difftac.gel_positions(m, d, "gel"))
    # rest positions are in the site frame; at rest the world positions are their image
    m2, d2 = press_tactile()
    mujoco.mj_forward(m2, d2)
    X = difftac.gel_rest_positions(m2, d2, "gel")
    R = d2.site_xmat[info.site].reshape(3, 3)
    np.testing.assert_allclose(difftac.gel_positions(m2, d2, "gel"),
                               X @ R.T + d2.site_xpos[info.site], atol=1e-12)


def test_sensor_shapes_for_each_output(pressed):
    m, d = pressed
    expect = {"rgb": (240, 320, 3), "depth": (240, 320), "pressure": (240, 320),
              "shear": (240, 320, 2), "markers": (63, 2), "force": (6,)}
    for name, shape in expect.items():
        s = difftac.sensor(m, d, name)
        assert s.shape == shape, name
        assert np.shares_memory(s, d.sensordata), name
        info = difftac.tactile_info(m, d, name)
        assert info.output == name and info.shape == shape
    assert difftac.marker_rest(m, d, "markers").shape == (63, 2)
    rgb = difftac.sensor(m, d, "rgb")
    assert 0 <= rgb.min() and rgb.max() <= 1
    assert difftac.sensor(m, d, "depth").max() > 0


def test_contact_wrench_when_pressed(pressed):
    m, d = pressed
    w = difftac.contact_wrench(m, d, "gel")
    assert w.shape == (6,)
    assert w[2] > 0.05  # the sphere pushes the downward-facing gel up (world frame)
    force = difftac.sensor(m, d, "force")
    assert force[2] < -0.05  # site frame: pressing gives force[2] < 0
    np.testing.assert_allclose(abs(force[2]), w[2], rtol=1e-9)
    pitch = difftac.tactile_info(m, d, "pressure").pitch
    assert difftac.sensor(m, d, "pressure").sum() * pitch**2 == pytest.approx(w[2], rel=0.05)
    assert difftac.elastic_energy(m, d, "gel") > 0


def test_no_contact_no_wrench():
    m, d = press_tactile()
    mujoco.mj_step(m, d)
    np.testing.assert_array_equal(difftac.contact_wrench(m, d, "gel"), np.zeros(6))


def test_viewer_module_parses_arguments(tmp_path):
    from difftac import viewer
    args = viewer.parse_args([str(ROOT / "models" / "grasp.xml")])
    assert args.scene.endswith("grasp.xml") and args.lib is None and not args.from_path
    assert viewer.parse_args([]).scene is None
    with pytest.raises(SystemExit):
        viewer.parse_args([str(tmp_path / "missing.xml")])
    r = subprocess.run([sys.executable, "-m", "difftac.viewer", "--help"], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT / "python")))
    assert r.returncode == 0 and "mujoco.viewer" in r.stdout


def test_device_key_from_python():
    """cuda_available() reports the GPUs; the `emu` device (the GPU code path on the CPU) steps
    press_tactile as the CPU does, and a GPU that is not there is a load error naming the key."""
    n = difftac.cuda_available()
    assert n >= 0
    runs = {}
    for dev in ("cpu", "emu"):
        xml = (ROOT / "models" / "press_tactile.xml").read_text()
        xml = xml.replace('key="resolution" value="0.001"', 'key="resolution" value="0.002"')
        xml = xml.replace('<config key="site"', f'<config key="device" value="{dev}"/><config key="site"')
        m = mujoco.MjModel.from_xml_string(xml)
        d = mujoco.MjData(m)
        d.qpos[:2] = [-0.05, TOUCH - 0.0003]
        d.ctrl[:] = d.qpos[:2]
        for _ in range(5):
            mujoco.mj_step(m, d)
        runs[dev] = d.plugin_state.copy(), d.sensordata.copy()
    assert np.allclose(runs["cpu"][0], runs["emu"][0], rtol=0, atol=1e-12)
    assert np.allclose(runs["cpu"][1], runs["emu"][1], rtol=0, atol=1e-9)
    bad = f"cuda:{n + 2}"
    xml = (ROOT / "models" / "press_tactile.xml").read_text().replace(
        '<config key="site"', f'<config key="device" value="{bad}"/><config key="site"')
    with pytest.raises(ValueError, match=f"device.*{bad}"):
        mujoco.MjModel.from_xml_string(xml)
