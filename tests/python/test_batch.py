"""Many environments from Python (python/difftac/batch.py): difftac.Batch steps many MjData
bit-identically to mujoco.mj_step on each alone, on threads it starts once, without the GIL;
reports blow-ups; rejects bad arguments."""
import os
import pathlib
import sys
import threading

import mujoco
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))  # the package's source, installed or not

import difftac  # noqa: E402

PRESS = (ROOT / "models" / "press_small.xml").read_text()


@pytest.fixture(scope="module")
def model():
    return mujoco.MjModel.from_xml_string(PRESS)


def pressed(model, n, warm=30):
    """n environments pressed onto the ball, each with its own qvel kick and ctrl"""
    d0 = mujoco.MjData(model)
    d0.ctrl[:] = [0.0005, -0.003]
    for _ in range(warm):
        mujoco.mj_step(model, d0)
    datas = difftac.make_datas(model, n)
    for i, d in enumerate(datas):
        mujoco.mj_copyData(d, model, d0)
        d.qvel[:] += 1e-3 * (i + 1) * np.array([1, -1])
        d.ctrl[:] *= 1 + 0.05 * i
    return datas


def copies(model, datas):
    out = difftac.make_datas(model, len(datas))
    for a, b in zip(out, datas):
        mujoco.mj_copyData(a, model, b)
    return out


def snapshot(model, d):
    """bytes of everything mj_step carries over (mjSTATE_INTEGRATION) and the sensors"""
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    s = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, d, s, spec)
    return s.tobytes() + d.sensordata.tobytes()


def os_threads():
    return len(os.listdir("/proc/self/task"))


@pytest.mark.parametrize("nthread", [1, 2, 3])
def test_batch_bit_identical_to_sequential_mj_step(model, nthread):
    n, nstep = 5, 6
    start = pressed(model, n)
    ref = copies(model, start)
    for d in ref:
        for _ in range(nstep):
            mujoco.mj_step(model, d)
    # the comparison sees a 1-ulp change of the start, and the environments differ
    off = copies(model, start[-1:])[0]
    off.qvel[0] = np.nextafter(off.qvel[0], np.inf)
    for _ in range(nstep):
        mujoco.mj_step(model, off)
    assert snapshot(model, off) != snapshot(model, ref[-1])
    assert snapshot(model, ref[0]) != snapshot(model, ref[1])
    assert difftac.gel_info(model, ref[0], "gel").ncontact > 0

    datas = copies(model, start)
    with difftac.Batch(model, datas, nthread=nthread) as batch:
        assert batch.nthread == nthread
        assert len(batch) == n
        assert batch.step(2) is True
        assert batch.step(nstep - 2) is True
    for i in range(n):
        assert snapshot(model, datas[i]) == snapshot(model, ref[i]), f"environment {i}"


def test_batch_starts_its_threads_once_and_stops_them(model):
    datas = pressed(model, 4, warm=0)
    before = os_threads()
    batch = difftac.Batch(model, datas, nthread=3)
    assert os_threads() == before + 2  # the caller is the third
    batch.step(3)
    assert os_threads() == before + 2  # no thread per step
    assert all(d.time == pytest.approx(3 * model.opt.timestep) for d in datas)
    batch.close()
    assert os_threads() == before
    with pytest.raises(RuntimeError, match="closed"):
        batch.step()
    batch.close()  # idempotent
    with difftac.Batch(model, datas) as b0:
        assert b0.nthread == os.sysconf("SC_NPROCESSORS_ONLN")


def test_batch_step_releases_the_gil(model):
    datas = pressed(model, 2, warm=0)
    count, running = [0], [True]

    def spin():
        while running[0]:
            count[0] += 1

    t = threading.Thread(target=spin)
    with difftac.Batch(model, datas, nthread=1) as batch:
        t.start()
        try:
            c0 = count[0]
            batch.step(60)  # about 0.2 s in C
            c1 = count[0]
        finally:
            running[0] = False
            t.join()
    # the Python thread kept running while the step was in C
    assert c1 - c0 > 1000


def test_batch_reports_a_blow_up_and_steps_the_others(model):
    datas = pressed(model, 3, warm=5)
    ref = copies(model, datas)
    for d in ref:
        mujoco.mj_step(model, d)
    # a non-finite gel velocity in environment 1, as a diverging solve would give
    nnode = difftac.gel_info(model, datas[1], "gel").nnode
    datas[1].plugin_state[3 * nnode + 3 * (nnode - 1)] = np.nan
    with difftac.Batch(model, datas, nthread=2) as batch:
        assert batch.step() is False
        assert difftac.gel_info(model, datas[1], "gel").nwarning == 1
        assert np.all(np.isfinite(datas[1].plugin_state))
        for i in (0, 2):
            assert snapshot(model, datas[i]) == snapshot(model, ref[i])
        assert batch.step() is True


def test_batch_rejects_bad_arguments(model):
    other = mujoco.MjModel.from_xml_path(str(ROOT / "models" / "press.xml"))
    datas = difftac.make_datas(model, 2)
    assert len(difftac.make_datas(model, 0)) == 0
    with pytest.raises(ValueError, match="n = -1"):
        difftac.make_datas(model, -1)
    with pytest.raises(TypeError):
        difftac.Batch(datas[0], datas)
    with pytest.raises(TypeError, match=r"datas\[1\]"):
        difftac.Batch(model, [datas[0], "data"])
    with pytest.raises(ValueError, match=r"datas\[1\] was not made for this model"):
        difftac.Batch(model, [datas[0], mujoco.MjData(other)])
    with pytest.raises(ValueError, match="more than once"):
        difftac.Batch(model, [datas[0], datas[1], datas[0]])
    with pytest.raises(ValueError, match="nthread"):
        difftac.Batch(model, datas, nthread=-1)
    with difftac.Batch(model, datas, nthread=2) as batch:
        with pytest.raises(ValueError, match="nstep"):
            batch.step(-1)
        assert batch.step(0) is True
        assert "2 MjData" in repr(batch)
    assert all(d.time == 0 for d in datas)


def test_vector_env_matches_single_envs_and_autoresets():
    """examples/tactile_grasp_vec_env.py: its sub-environments step exactly as TactileGraspEnv
    alone does (same seeds, same actions), through an autoreset, in a short random rollout."""
    sys.path.insert(0, str(ROOT / "examples"))
    import tactile_grasp_env as tge
    import tactile_grasp_vec_env as tgv

    n, kwargs = 3, dict(max_episode_steps=4)
    envs = tgv.TactileGraspVectorEnv(num_envs=n, nthread=2, **kwargs)
    singles = [tge.TactileGraspEnv(**kwargs) for _ in range(n)]
    obs, _ = envs.reset(seed=7)
    assert obs["tactile"].shape == (n,) + envs.single_observation_space["tactile"].shape
    assert envs.observation_space.contains(obs)
    ref = [e.reset(seed=7 + i)[0] for i, e in enumerate(singles)]
    envs.action_space.seed(1)
    saw_reset = False
    for t in range(6):
        actions = envs.action_space.sample()
        obs, reward, term, trunc, info = envs.step(actions)
        for i, e in enumerate(singles):
            if t == 4:  # the step after truncation: the vector env resets
                o, r = e.reset()[0], 0.0
                saw_reset = True
            else:
                o, r, _, tr, _ = e.step(actions[i])
                assert trunc[i] == tr
            for k in o:
                assert np.array_equal(obs[k][i], o[k]), f"env {i} step {t} {k}"
            assert reward[i] == r
        assert np.all(np.isfinite(obs["tactile"]))
    assert saw_reset
    # the comparison sees a 1e-12 m change of a joint position
    a = envs.action_space.sample()
    o1 = envs.step(a)[0]
    b = singles[0]
    q = b._qadr[0]
    b.data.qpos[q] += 1e-12
    o2 = b.step(a[0])[0]
    assert not np.array_equal(o1["qpos"][0], o2["qpos"])
    envs.close()
    assert envs.batch._handle is None


def test_batch_with_gels_on_a_device():
    """the emulated device (the GPU code path on the CPU): a Batch steps every environment's gels
    through the device phases, bit-identical to each environment stepped alone on that device
    and equal to the CPU to rounding"""
    xml = PRESS.replace('<config key="site"', '<config key="device" value="emu"/><config key="site"')
    m_emu = mujoco.MjModel.from_xml_string(xml)
    m_cpu = mujoco.MjModel.from_xml_string(PRESS)
    batch_d, alone, cpu = pressed(m_emu, 3), pressed(m_emu, 3), pressed(m_cpu, 3)
    with difftac.Batch(m_emu, batch_d, nthread=2) as batch:
        assert batch.step(nstep=20)
    for d in alone:
        for _ in range(20):
            mujoco.mj_step(m_emu, d)
    for d in cpu:
        for _ in range(20):
            mujoco.mj_step(m_cpu, d)
    for a, b, c in zip(batch_d, alone, cpu):
        assert snapshot(m_emu, a) == snapshot(m_emu, b)
        assert np.allclose(a.plugin_state, c.plugin_state, rtol=0, atol=1e-12)
    assert not np.array_equal(batch_d[0].plugin_state, batch_d[1].plugin_state)
