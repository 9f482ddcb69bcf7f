"""tactile_grasp_env.py: a Gymnasium environment in which a parallel gripper with two difftac gel pads
(models/grasp_env.xml, derived from models/grasp.xml) grasps a 3 cm, 50 g box and lifts it, seeing
low-resolution tactile images of both pads.

    import tactile_grasp_env                       # (examples/ on sys.path) registers the id too
    env = tactile_grasp_env.TactileGraspEnv()      # or gymnasium.make("difftac/TactileGrasp-v0")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Follows gymnasium's MuJoCo conventions (the interface of ``gymnasium.envs.mujoco.MujocoEnv``, which
is not subclassed because it needs the optional ``imageio``): ``frame_skip`` physics steps of 2 ms
per ``step``, ``dt = 0.002 * frame_skip``, ``model``/``data``, ``init_qpos``/``init_qvel``,
``set_state``, ``do_simulation``, ``reset_model``; ``render_mode="rgb_array"`` renders the camera
``front`` offscreen with ``mujoco.Renderer`` (needs an OpenGL context: MUJOCO_GL=egl or osmesa when
headless, or a display).

Action (Box, float32, the actuators' ctrlrange): ``[lift, grip]`` position targets in m: the
gripper height above its start (-0.01 .. 0.1) and the closure of the two fingers together
(-0.01 .. 0.03; the pads touch the box at about 0.01, the grip force saturates at 4 N). The
actuators' controls move towards the targets at ``ctrl_speed`` (0.1 m/s each) at most, like a real
gripper's speed limit; ``ctrl_speed=None`` applies targets at once, but then random jumps of
several cm per step fling the held box hard enough to make a gel blow up (difftac resets it).

Observation (Dict, float64):
    tactile  (2, H, W)    left and right pad images (default: pressure in kPa, 16 x 20 pixels at
                          1.25 mm covering each 20 x 25 mm pad; ``tactile="depth"`` gives mm,
                          ``"shear"`` (2, H, W, 2) kPa, ``"rgb"`` (2, H, W, 3) in [0, 1])
    force    (2, 6)       each pad's contact force (N) and torque (N m) in its site frame
                          (pressing gives force[:, 2] < 0)
    qpos     (3,)         joint positions lift, left, right (m)
    qvel     (3,)         their velocities (m/s)
Sensor readings are those MuJoCo computed in the last physics step (before its integration).

Reward per step: ``grasped * (0.1 + min(max(dz, 0), lift_goal) / lift_goal)``, where ``grasped``
means both pads press on the box with more than ``grasp_force`` (0.05 N) and dz is the box's height
above its start; lift_goal = 4 cm. So holding the box on the floor earns 0.1 per step, holding it
4 cm up 1.1. Terminated when the box leaves the gripper sideways (more than 2 cm off its start in
x or y), or when the step was unstable (a gel blow-up that difftac recovered from, a MuJoCo
auto-reset, a non-finite observation; ``info["unstable"]``, reward 0); truncated after
``max_episode_steps`` (default 150, 1.5 s).
The box starts at a random offset of up to ``reset_noise`` (1 mm) in x and y.

``integrator="implicit"`` steps the gels by one backward-Euler solve per physics step instead of
explicit substeps (docs/mjcf.md, "Which integrator ... for which job"); the default stays
``"explicit"``, whose gradients cover every coupling.
"""
import os
import pathlib
import re
import sys

import gymnasium
import mujoco
import numpy as np
from gymnasium import spaces, utils

try:
    import difftac
except ImportError:  # not pip-installed: use the package in the repository
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
    import difftac

SCENE = pathlib.Path(__file__).resolve().parents[1] / "models" / "grasp_env.xml"
ENV_ID = "difftac/TactileGrasp-v0"

# unit scaling of each tactile output into the observation
_SCALE = {"pressure": 1e-3, "depth": 1e3, "shear": 1e-3, "rgb": 1.0}
_CHANNELS = {"pressure": (), "depth": (), "shear": (2,), "rgb": (3,)}


def scene_xml(resolution=0.003, young=1e5, tactile="pressure", tactile_size=(16, 20),
              path=SCENE, integrator="explicit"):
    """The env's MJCF with the gels' resolution, Young's modulus and integrator and the tactile
    sensors' output and size (W, H) substituted; the pixel pitch is chosen so the image covers the
    pad."""
    xml = pathlib.Path(path).read_text()
    xml = re.sub(r'(key="resolution" value=")[^"]*(")', rf"\g<1>{resolution:g}\2", xml)
    xml = re.sub(r'(<config key="resolution" value="[^"]*"/>)',
                 rf'\1<config key="integrator" value="{integrator}"/>', xml)
    xml = re.sub(r'(key="young" value=")[^"]*(")', rf"\g<1>{young:g}\2", xml)
    w, h = tactile_size
    pitch = max(0.020 / w, 0.025 / h)
    for side in ("left", "right"):
        pat = re.compile(rf'(<plugin name="{side}_tactile".*?</plugin>)', re.S)
        block = pat.search(xml).group(1)
        new = re.sub(r'(key="output" value=")[^"]*(")', rf"\g<1>{tactile}\2", block)
        new = re.sub(r'(key="size" value=")[^"]*(")', rf"\g<1>{w} {h}\2", new)
        new = re.sub(r'(key="pitch" value=")[^"]*(")', rf"\g<1>{pitch:.6g}\2", new)
        xml = xml.replace(block, new)
    return xml


class TactileGraspEnv(gymnasium.Env, utils.EzPickle):
    """Grasp and lift a box with two tactile gel pads (module docstring: spaces and reward)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}

    def __init__(self, frame_skip=5, resolution=0.003, young=1e5, tactile="pressure",
                 tactile_size=(16, 20), max_episode_steps=150, lift_goal=0.04, grasp_force=0.05,
                 reset_noise=0.001, ctrl_speed=(0.1, 0.1), render_mode=None, width=480, height=360,
                 camera_name="front", integrator="explicit"):
        if tactile not in _SCALE:
            raise ValueError(f"tactile must be one of {sorted(_SCALE)}, got {tactile!r}")
        utils.EzPickle.__init__(self, frame_skip, resolution, young, tactile, tactile_size,
                                max_episode_steps, lift_goal, grasp_force, reset_noise,
                                ctrl_speed, render_mode, width, height, camera_name, integrator)
        self._xml = scene_xml(resolution, young, tactile, tuple(tactile_size),
                              integrator=integrator)
        self.tactile = tactile
        self.max_episode_steps = max_episode_steps
        self.lift_goal = lift_goal
        self.grasp_force = grasp_force
        self.reset_noise = reset_noise
        self.ctrl_speed = None if ctrl_speed is None else np.asarray(ctrl_speed, dtype=np.float64)
        self.metadata = dict(self.metadata, render_fps=int(round(1.0 / (0.002 * frame_skip))))
        w, h = tactile_size
        tshape = (2, h, w) + _CHANNELS[tactile]
        inf = np.inf
        observation_space = spaces.Dict({
            "tactile": spaces.Box(-inf, inf, tshape, np.float64),
            "force": spaces.Box(-inf, inf, (2, 6), np.float64),
            "qpos": spaces.Box(-inf, inf, (3,), np.float64),
            "qvel": spaces.Box(-inf, inf, (3,), np.float64),
        })
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.width, self.height, self.camera_name = width, height, camera_name
        self._renderer = None
        self.frame_skip = int(frame_skip)
        self.model, self.data = self._initialize_simulation()
        mujoco.mj_forward(self.model, self.data)
        self.init_qpos = self.data.qpos.ravel().copy()
        self.init_qvel = self.data.qvel.ravel().copy()
        self.observation_space = observation_space
        low, high = self.model.actuator_ctrlrange.copy().astype(np.float32).T
        self.action_space = spaces.Box(low=low, high=high, dtype=np.float32)
        m = self.model
        jid = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n) for n in ("lift", "left", "right")]
        self._qadr = m.jnt_qposadr[jid]
        self._dadr = m.jnt_dofadr[jid]
        self._obj = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "object")
        self._obj_qadr = m.jnt_qposadr[self._obj]
        self._obj_z0 = float(self.init_qpos[self._obj_qadr + 2])
        self._tactile = ["left_tactile", "right_tactile"]
        self._force = ["left_force", "right_force"]
        self._gels = ["left_gel", "right_gel"]
        self._elapsed = 0

    def _initialize_simulation(self):
        model = mujoco.MjModel.from_xml_string(self._xml)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    # ---- MujocoEnv conventions -------------------------------------------------------------------

    @property
    def dt(self):
        return self.model.opt.timestep * self.frame_skip

    def set_state(self, qpos, qvel):
        assert qpos.shape == (self.model.nq,) and qvel.shape == (self.model.nv,)
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        mujoco.mj_forward(self.model, self.data)

    def do_simulation(self, ctrl, n_frames):
        """n_frames physics steps towards the targets ctrl; with ctrl_speed, data.ctrl moves to
        them at that many m/s at most (a real gripper's speed limit)."""
        if np.shape(ctrl) != (self.model.nu,):
            raise ValueError(f"action shape {np.shape(ctrl)}, expected {(self.model.nu,)}")
        if self.ctrl_speed is None:
            self.data.ctrl[:] = ctrl
            mujoco.mj_step(self.model, self.data, nstep=n_frames)
            return
        dmax = self.ctrl_speed * self.model.opt.timestep
        for _ in range(n_frames):
            self.data.ctrl[:] += np.clip(ctrl - self.data.ctrl, -dmax, dmax)
            mujoco.mj_step(self.model, self.data)

    def state_vector(self):
        return np.concatenate([self.data.qpos.flat, self.data.qvel.flat])

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() without render_mode; make the env with "
                                  "render_mode='rgb_array'")
            return None
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.height, self.width)
        self._renderer.update_scene(self.data, camera=self.camera_name)
        return self._renderer.render()

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ---- gymnasium API ---------------------------------------------------------------------------

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), self.action_space.low,
                         self.action_space.high)
        before = self._instability_count()
        self.do_simulation(action, self.frame_skip)
        return self.finish_step(before)

    def finish_step(self, before):
        """Everything step does after its physics, given the instability count before it (also
        used by tactile_grasp_vec_env.py, whose physics runs in a batch)."""
        self._elapsed += 1
        obs = self._get_obs()
        # a gel blow-up (reset to rest by difftac) or a MuJoCo auto-reset ends the episode
        unstable = self._instability_count() != before or not all(
            np.all(np.isfinite(v)) for v in obs.values())
        if unstable:
            obs = {k: np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for k, v in obs.items()}
        reward, info = self._reward(obs)
        info["unstable"] = unstable
        if unstable:
            reward = 0.0
        away = np.max(np.abs(info["object_pos"][:2] - self.init_qpos[self._obj_qadr:self._obj_qadr + 2]))
        terminated = bool(unstable or away > 0.02)
        truncated = bool(self.max_episode_steps is not None and
                         self._elapsed >= self.max_episode_steps)
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)  # resets the gels' plugin_state too
        obs = self.reset_model()
        return obs, self._get_reset_info()

    def reset_model(self):
        qpos = self.init_qpos.copy()
        qvel = self.init_qvel.copy()
        a = self._obj_qadr
        qpos[a:a + 2] += self.np_random.uniform(-self.reset_noise, self.reset_noise, 2)
        self.set_state(qpos, qvel)  # mj_forward: the gels are placed at their sites
        self.data.ctrl[:] = 0.0
        self._elapsed = 0
        return self._get_obs()

    def _get_reset_info(self):
        return self._reward(self._get_obs())[1]

    # ---- observation and reward ------------------------------------------------------------------

    def _get_obs(self):
        m, d = self.model, self.data
        scale = _SCALE[self.tactile]
        return {
            "tactile": np.stack([difftac.sensor(m, d, s) for s in self._tactile]) * scale,
            "force": np.stack([difftac.sensor(m, d, s) for s in self._force]).copy(),
            "qpos": d.qpos[self._qadr].copy(),
            "qvel": d.qvel[self._dadr].copy(),
        }

    def _reward(self, obs):
        a = self._obj_qadr
        pos = self.data.qpos[a:a + 3].copy()
        dz = float(pos[2] - self._obj_z0)
        normal = -obs["force"][:, 2]
        grasped = bool(np.all(normal > self.grasp_force))
        lifted = min(max(dz, 0.0), self.lift_goal) / self.lift_goal
        reward = float(grasped) * (0.1 + lifted)
        info = {"object_pos": pos, "object_height": dz, "grasped": grasped,
                "normal_force": normal.copy(), "success": grasped and dz > 0.9 * self.lift_goal}
        return reward, info

    def _instability_count(self):
        w = self.data.warning
        return (self.gel_warnings() + w[mujoco.mjtWarning.mjWARN_BADQACC].number +
                w[mujoco.mjtWarning.mjWARN_BADQPOS].number + w[mujoco.mjtWarning.mjWARN_BADQVEL].number)

    def gel_warnings(self):
        """Blow-ups the gels detected and recovered from so far (0 in a healthy run)."""
        return sum(difftac.gel_info(self.model, self.data, g).nwarning for g in self._gels)


def register():
    """Registers ENV_ID with gymnasium (idempotent)."""
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point=TactileGraspEnv)


register()


if __name__ == "__main__":
    # a scripted grasp: close, lift, hold; prints what the pads see
    env = TactileGraspEnv()
    obs, info = env.reset(seed=0)
    total = 0.0
    for k in range(env.max_episode_steps):
        t = k * env.dt
        lift = 0.0 if t < 0.3 else min(0.05, 0.05 * (t - 0.3) / 0.6)
        obs, r, term, trunc, info = env.step(np.array([lift, 0.02], dtype=np.float32))
        total += r
        if k % 25 == 0 or term or trunc:
            print(f"t {t + env.dt:.2f} s  box dz {1e3 * info['object_height']:6.2f} mm  "
                  f"normal force {info['normal_force'].round(2)} N  peak pressure "
                  f"{obs['tactile'].max():.1f} kPa  reward {r:.2f}", flush=True)
        if term or trunc:
            break
    print(f"return {total:.2f}, success {info['success']}, gel warnings {env.gel_warnings()}")
