"""Real robot grippers from PyPI wheels with gels on both fingers (python/difftac/robots.py,
examples/robot_grasp.py): gymnasium-robotics' Fetch and robosuite's Panda grasp a box, lift it and
write their tactile images, offline (the wheels ship their MJCF and meshes; setup.sh installs
them with --no-deps). Short horizons, 3 mm gels: about 10 s for the file on two cores."""
import json
import os
import pathlib
import subprocess
import sys

import mujoco
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "examples"))
import difftac  # noqa: E402
from difftac import robots  # noqa: E402
import robot_grasp  # noqa: E402

WHEEL = {"fetch": "gymnasium_robotics", "panda": "robosuite"}
# pressure map integrated over the image (sum * pitch^2) against the force sensor's normal
# component, while the pads press with more than 1 N: measured 0.979-0.998 at 3 mm resolution
# (the map is interpolated over the coarse surface and the pad's edge overhangs the box's)
PRESSURE_TOL = 0.04


def _need(robot):
    try:
        robots.package_dir(WHEEL[robot])
    except robots.RobotAssetsMissing as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module", params=["fetch", "panda"])
def grasped(request, tmp_path_factory):
    robot = request.param
    _need(robot)
    out = tmp_path_factory.mktemp(robot)
    r = robot_grasp.run(robot, resolution=0.003, out=str(out), images=True, verbose=False,
                        close_time=0.3, settle_time=0.1, lift_time=0.4, hold_time=0.1)
    r["robot"] = robot
    return r


def test_box_is_lifted_by_the_gels(grasped):
    r = grasped
    # the hand rises 40 mm (smooth 0.4 s ramp, then 0.1 s hold); the box is held by the gels only
    assert r["lift"] > 0.025, (r["robot"], r["lift"])
    assert r["z"][0] < 0.001  # it started on the floor


def test_everything_finite_and_no_gel_warning(grasped):
    r = grasped
    assert r["finite"], r["robot"]
    assert r["nwarning"] == [0, 0], r["nwarning"]
    d = r["data"]
    for a in (d.qpos, d.qvel, d.plugin_state, d.sensordata):
        assert np.all(np.isfinite(a))


def test_both_pads_press_about_equally_with_the_grip_force(grasped):
    r = grasped
    f = r["force"][-1]                           # normal force on each pad at the end, N
    # the grip target asks for 4 N per finger (robots.fetch_scene / panda_scene grip_force)
    assert 3.0 < f[0] < 5.0 and 3.0 < f[1] < 5.0, f
    assert abs(f[0] - f[1]) < 0.05 * max(f), f


def test_pressure_map_integrates_to_the_force_output(grasped):
    r = grasped
    f, p = r["force"], r["pressure_sum"]
    touching = f.min(axis=1) > 1.0
    assert touching.sum() > 100                  # most of the run is a grasp
    ratio = p[touching] / f[touching]
    assert np.all(np.abs(ratio - 1) < PRESSURE_TOL), (ratio.min(), ratio.max())


def test_tactile_images_are_written(grasped):
    r = grasped
    names = {os.path.basename(f) for f in r["files"]}
    rb = r["robot"]
    assert names == {f"{rb}_{s}_{k}.png" for s in ("left", "right") for k in ("rgb", "pressure")} \
        | {f"{rb}_tactile.png"}
    import matplotlib.image as mpimg
    for f in r["files"]:
        img = mpimg.imread(f)
        assert img.ndim == 3 and img.shape[0] > 10 and img.shape[1] > 10, f
    # the pressure image shows the contact: not one flat colour
    img = mpimg.imread([f for f in r["files"] if f.endswith("left_pressure.png")][0])
    assert img[..., :3].std() > 0.02


def test_gel_and_tactile_keys_reach_the_model():
    _need("panda")
    sc = robots.panda_scene(gel=dict(resolution=0.004, young=2e5, friction=0.7),
                            tactile={"depth": dict(size=(8, 8), pitch=0.002), "force": {}})
    m = sc.spec.compile()
    d = mujoco.MjData(m)
    assert difftac.gels(m) == ["left_gel", "right_gel"]
    assert difftac.tactile_sensors(m) == ["left_depth", "left_force", "right_depth", "right_force"]
    info = difftac.tactile_info(m, d, "right_depth")
    assert (info.width, info.height, info.pitch) == (8, 8, 0.002)
    cfg = {p.name: p.config for p in sc.spec.plugins if p.name}
    assert cfg["left_gel"]["young"] == "200000.0" and cfg["left_gel"]["coupling"] == "explicit"
    with pytest.raises(ValueError, match="'yung'"):
        robots.panda_scene(gel=dict(yung=1e5))


def test_assets_come_from_the_wheels_without_importing_them():
    """the builders read the wheels' files; the packages themselves (whose dependencies setup.sh
    does not install) are never imported"""
    code = (
        "import sys, json; sys.path.insert(0, %r)\n"
        "import difftac; from difftac import robots\n"
        "out = {}\n"
        "for name, f in (('fetch', robots.fetch_xml), ('panda', robots.panda_gripper_xml)):\n"
        "    try: out[name] = str(f())\n"
        "    except robots.RobotAssetsMissing as e: out[name] = None\n"
        "robots.panda_scene(gel=dict(resolution=0.004)).spec.compile() if out['panda'] else None\n"
        "robots.fetch_scene(gel=dict(resolution=0.004)).spec.compile() if out['fetch'] else None\n"
        "out['imported'] = [m for m in ('gymnasium_robotics', 'robosuite') if m in sys.modules]\n"
        "print(json.dumps(out))\n") % str(ROOT / "python")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["imported"] == []
    for name, wheel in WHEEL.items():
        if out[name] is None:
            continue
        assert f"{os.sep}{wheel}{os.sep}" in out[name], out[name]
        assert "-packages" + os.sep in out[name], "assets must come from the installed wheel"


def test_headless_render_with_egl():
    """docs/robots.md: without a display, MUJOCO_GL=egl renders (Mesa's EGL, on the CPU here)"""
    _need("panda")
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "import mujoco, difftac\n"
        "from difftac import robots\n"
        "sc = robots.panda_scene(gel=dict(resolution=0.004))\n"
        "m = sc.spec.compile(); d = mujoco.MjData(m); robots.reset(sc, m, d)\n"
        "r = mujoco.Renderer(m, 120, 160); r.update_scene(d, camera='front')\n"
        "img = r.render(); print(img.shape, float(img.std()))\n") % str(ROOT / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MUJOCO_GL"] = "egl"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    shape, std = r.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert shape == "(120, 160, 3)" and float(std) > 5


def test_example_command_line_runs(tmp_path):
    """examples/panda_grasp.py as a user runs it (coarse gel): exit 0 and the PNGs"""
    _need("panda")
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "panda_grasp.py"),
                        "--resolution", "0.004", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-1000:] + r.stderr[-2000:]
    assert "box lifted" in r.stdout
    assert (tmp_path / "panda_tactile.png").is_file()
