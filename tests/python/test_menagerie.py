"""A MuJoCo Menagerie Robotiq 2F-85 with difftac gels on its fingertips grasps and lifts a box
(examples/menagerie_scene.py: the scene is built with mjSpec from the `mujoco-menagerie`
package's model, nothing copied into this repository).

Skipped, with the reason, when the package is not installed or its model cannot be had (the
package downloads it on first use; offline, point MENAGERIE_ROOT at a folder holding
robotiq_2f85/).
"""
import os
import pathlib
import sys

import mujoco
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIB = ROOT / os.environ.get("DTAC_BUILD_DIR", "build") / "libdifftac.so"
sys.path.insert(0, str(ROOT / "examples"))

menagerie = pytest.importorskip("mujoco_menagerie", reason="mujoco-menagerie is not installed")
import menagerie_scene as ms  # noqa: E402


@pytest.fixture(scope="module")
def grasped():
    """the scene after closing (0.6 s) and after lifting 40 mm and holding (0.9 s)"""
    try:
        ms.gripper_xml()
    except menagerie.MenagerieError as e:
        pytest.skip(f"Menagerie model {ms.ROBOT} not available (offline? set MENAGERIE_ROOT): {e}")
    mujoco.mj_loadPluginLibrary(str(LIB))
    spec = ms.build_spec(resolution=0.002)
    m = spec.compile()
    d = mujoco.MjData(m)
    snaps = {}

    def report(phase, m, d):
        snaps[phase] = dict(force=ms.pad_forces(m, d), box=d.xpos[m.body("object").id].copy(),
                            finite=bool(np.all(np.isfinite(d.plugin_state))))

    ms.grasp(m, d, close_time=0.6, lift_time=0.6, hold_time=0.3, report=report)
    return m, d, snaps


def test_scene_is_built_from_menagerie_with_two_gels(grasped):
    m, d, _ = grasped
    assert m.body("g_base").id > 0  # the Menagerie gripper's own bodies, prefixed
    assert len(ms.gel_ids(m)) == 2
    # the gels sit on the fingertip pads
    for side in ("left", "right"):
        assert m.site_bodyid[m.site(f"{side}_gel_site").id] == m.body(f"g_{side}_pad").id


def test_both_gels_touch_the_box_with_finite_state(grasped):
    m, d, snaps = grasped
    close = snaps["close"]
    assert close["finite"]
    fl, fr = close["force"]
    # both pads press on the box, about equally (the gripper's linkage is symmetric)
    assert fl > 1.0 and fr > 1.0, close["force"]
    assert abs(fl - fr) < 0.3 * max(fl, fr), close["force"]
    # the box was squeezed in place, not pushed away
    assert np.linalg.norm(close["box"][:2]) < 0.005, close["box"]


def test_box_is_lifted_by_the_gels(grasped):
    m, d, snaps = grasped
    hold = snaps["hold"]
    assert hold["finite"] and np.all(np.isfinite(d.qpos))
    assert min(hold["force"]) > 1.0, hold["force"]
    # the hand rose 40 mm; the box (held only by the gels: the gripper's geoms collide with
    # nothing) follows within a few millimetres of slip
    lifted = hold["box"][2] - ms.BOX_HALF
    assert lifted > 0.03, lifted
