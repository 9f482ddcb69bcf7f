"""tactile_grasp_vec_env.py: ``num_envs`` copies of the tactile grasp environment
(examples/tactile_grasp_env.py) as one ``gymnasium.vector.VectorEnv`` whose physics steps run
together in C on a pool of threads (``difftac.Batch``), instead of one ``mj_step`` call per
environment from Python.

    import tactile_grasp_vec_env                    # (examples/ on sys.path)
    envs = tactile_grasp_vec_env.TactileGraspVectorEnv(num_envs=8)
    obs, info = envs.reset(seed=0)
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())

Every sub-environment is a ``TactileGraspEnv`` (same keyword arguments, same observations,
reward and termination) whose ``model`` is one ``MjModel`` shared by all and whose ``data`` is one
of the batch's ``MjData``; each step bit-identical to that env's own ``step``. Autoreset: gymnasium's
next-step mode (the step after an episode ended resets that sub-environment and returns its first
observation, reward 0); observations are stacked along a first axis of size ``num_envs``.
"""
import pathlib
import sys

import gymnasium
import mujoco
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import tactile_grasp_env  # noqa: E402
from tactile_grasp_env import difftac  # noqa: E402


class TactileGraspVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` TactileGraspEnv stepped by one ``difftac.Batch`` on ``nthread`` threads
    (0: one per CPU); ``env_kwargs`` go to each TactileGraspEnv (rendering is not supported)."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs=8, nthread=0, **env_kwargs):
        if int(num_envs) < 1:
            raise ValueError(f"num_envs = {num_envs} must be at least 1")
        if env_kwargs.get("render_mode") is not None:
            raise ValueError("TactileGraspVectorEnv does not render")
        self.num_envs = int(num_envs)
        self.envs = [tactile_grasp_env.TactileGraspEnv(**env_kwargs) for _ in range(self.num_envs)]
        # one model for all (the same MJCF compiles to the same ids), one MjData each
        self.model = self.envs[0].model
        for env in self.envs[1:]:
            env.model = self.model
            env.data = mujoco.MjData(self.model)
            mujoco.mj_forward(self.model, env.data)
        self.batch = difftac.Batch(self.model, [env.data for env in self.envs], nthread=nthread)
        first = self.envs[0]
        self.frame_skip = first.frame_skip
        self.ctrl_speed = first.ctrl_speed
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(first.observation_space, self.num_envs)
        self.action_space = batch_space(first.action_space, self.num_envs)
        self.render_mode = None
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def _stack(self, obs):
        return {k: np.stack([o[k] for o in obs]) for k in obs[0]}

    def reset(self, *, seed=None, options=None):
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
        obs, infos = [], {}
        for i, env in enumerate(self.envs):
            o, info = env.reset(seed=seeds[i], options=options)
            obs.append(o)
            infos = self._add_info(infos, info, i)
        self._autoreset[:] = False
        return self._stack(obs), infos

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.num_envs,) + self.single_action_space.shape:
            raise ValueError(f"actions of shape {actions.shape}, expected "
                             f"{(self.num_envs,) + self.single_action_space.shape}")
        low, high = self.single_action_space.low, self.single_action_space.high
        targets = np.clip(actions, low, high)
        before = [env._instability_count() for env in self.envs]

        # the physics of every sub-environment at once (the ones about to be reset too: cheaper
        # than a batch per subset, and their step is discarded by the reset)
        if self.ctrl_speed is None:
            for env, u in zip(self.envs, targets):
                env.data.ctrl[:] = u
            self.batch.step(self.frame_skip)
        else:
            dmax = self.ctrl_speed * self.model.opt.timestep
            for _ in range(self.frame_skip):
                for env, u in zip(self.envs, targets):
                    env.data.ctrl[:] += np.clip(u - env.data.ctrl, -dmax, dmax)
                self.batch.step(1)

        obs, infos = [], {}
        reward = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        for i, env in enumerate(self.envs):
            if self._autoreset[i]:
                o, info = env.reset()
            else:
                o, reward[i], terminated[i], truncated[i], info = env.finish_step(before[i])
            obs.append(o)
            infos = self._add_info(infos, info, i)
        self._autoreset = terminated | truncated
        return self._stack(obs), reward, terminated, truncated, infos

    def close_extras(self, **kwargs):
        self.batch.close()
        for env in self.envs:
            env.close()


if __name__ == "__main__":
    # a short random rollout of 8 environments
    envs = TactileGraspVectorEnv(num_envs=8)
    obs, info = envs.reset(seed=0)
    envs.action_space.seed(0)
    total = np.zeros(envs.num_envs)
    for _ in range(50):
        obs, r, term, trunc, info = envs.step(envs.action_space.sample())
        total += r
    print(f"returns {total.round(2)} on {envs.batch.nthread} threads")
    envs.close()
