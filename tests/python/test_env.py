"""examples/tactile_grasp_env.py: gymnasium's env checker, a 1000-step random policy, a scripted
grasp that earns the lift reward."""
import os
import pathlib
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "examples"))

import tactile_grasp_env as tge  # noqa: E402


@pytest.fixture(scope="module")
def env():
    e = tge.TactileGraspEnv()
    yield e
    e.close()


def test_spaces(env):
    assert env.action_space.shape == (2,)
    np.testing.assert_allclose(env.action_space.low, [-0.01, -0.01])
    np.testing.assert_allclose(env.action_space.high, [0.1, 0.03])
    assert env.observation_space["tactile"].shape == (2, 20, 16)
    assert env.observation_space["force"].shape == (2, 6)
    assert env.dt == pytest.approx(0.01) and env.metadata["render_fps"] == 100


def test_check_env(env):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advice on unbounded / unnormalised Boxes
        check_env(env.unwrapped)


def test_random_policy_1000_steps(env):
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    episodes, unstable = 0, 0
    for _ in range(1000):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert np.isfinite(reward) and 0.0 <= reward <= 1.1 + 1e-9
        unstable += info["unstable"]
        if terminated or truncated:
            episodes += 1
            obs, info = env.reset()
    assert episodes >= 6  # 150-step episodes
    assert unstable == 0 and env.gel_warnings() == 0


def test_scripted_grasp_lifts_and_is_rewarded(env):
    _scripted_grasp(env)


def test_scripted_grasp_with_the_implicit_gel():
    """the same grasp with integrator="implicit": the pads see it, the lift is rewarded"""
    e = tge.TactileGraspEnv(integrator="implicit")
    try:
        _scripted_grasp(e)
        assert e.gel_warnings() == 0
    finally:
        e.close()


def _scripted_grasp(env):
    obs, _ = env.reset(seed=1)
    assert np.all(obs["tactile"] == 0)
    rewards, infos = [], []
    for k in range(120):
        lift = 0.0 if k < 30 else 0.05
        obs, r, term, trunc, info = env.step(np.array([lift, 0.02], dtype=np.float32))
        assert not term
        rewards.append(r)
        infos.append(info)
    assert infos[29]["grasped"] and rewards[29] == pytest.approx(0.1, abs=0.01)
    assert obs["tactile"].max() > 1.0  # kPa on both pads
    assert np.all(obs["tactile"].reshape(2, -1).max(axis=1) > 1.0)
    assert np.all(obs["force"][:, 2] < -1.0)
    assert infos[-1]["success"] and rewards[-1] == pytest.approx(1.1)


def test_seeded_resets_are_reproducible(env):
    a, _ = env.reset(seed=7)
    qa = env.data.qpos.copy()
    env.step(np.array([0.0, 0.02], dtype=np.float32))
    b, _ = env.reset(seed=7)
    np.testing.assert_array_equal(qa, env.data.qpos)
    c, _ = env.reset(seed=8)
    assert not np.array_equal(qa, env.data.qpos)


def test_registered_with_gymnasium():
    e = gymnasium.make(tge.ENV_ID, tactile="rgb", tactile_size=(8, 10), max_episode_steps=5)
    obs, _ = e.reset(seed=0)
    assert obs["tactile"].shape == (2, 10, 8, 3)
    for _ in range(5):
        obs, r, term, trunc, info = e.step(e.action_space.sample())
    assert trunc
    e.close()


@pytest.mark.skipif(not (os.environ.get("DISPLAY") or os.environ.get("MUJOCO_GL")),
                    reason="offscreen rendering needs a display or MUJOCO_GL=egl/osmesa")
def test_render_rgb_array():
    e = tge.TactileGraspEnv(render_mode="rgb_array", width=160, height=120)
    e.reset(seed=0)
    img = e.render()
    assert img.shape == (120, 160, 3) and img.dtype == np.uint8 and img.std() > 0
    e.close()
