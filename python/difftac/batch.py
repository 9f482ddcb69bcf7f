"""Many environments from Python: steps many ``MjData`` of one model on a pool of C worker threads
(ctypes over the "many environments" section of include/difftac/difftac.h; docs/python.md).

    datas = difftac.make_datas(model, 64)
    batch = difftac.Batch(model, datas)           # nthread=0: one thread per CPU
    for d in datas: d.ctrl[:] = ...
    batch.step(nstep=5)                           # mj_step 5 times each, in parallel, GIL released

Each ``MjData`` ends exactly (bit for bit) where ``mujoco.mj_step`` alone would have left it.
"""
import ctypes

import mujoco

from ._lib import CHandle
from ._lib import load as _load

__all__ = ["Batch", "make_datas"]

_dll, _ = _load()


def make_datas(model, n):
    """A list of ``n`` new ``mujoco.MjData(model)``."""
    if not isinstance(model, mujoco.MjModel):
        raise TypeError(f"expected a mujoco.MjModel, got {type(model).__name__}")
    if int(n) < 0:
        raise ValueError(f"n = {n} must be 0 or more")
    return [mujoco.MjData(model) for _ in range(int(n))]


class Batch(CHandle):
    """Steps the ``MjData`` of ``datas`` (all made for ``model``) with ``dtac_batch_step``, on
    ``nthread`` threads (0: one per CPU; the calling thread is one of them). The worker threads
    are started once, here, and stopped by :meth:`close` (or a ``with`` block, or when the batch
    is garbage-collected). The batch keeps ``model`` and ``datas`` alive; change their contents
    (``ctrl``, ``qpos``, ``mj_resetData``...) freely between steps, but not the list itself.
    """

    def __init__(self, model, datas, nthread=0):
        if not isinstance(model, mujoco.MjModel):
            raise TypeError(f"expected a mujoco.MjModel, got {type(model).__name__}")
        datas = list(datas)
        for i, d in enumerate(datas):
            if not isinstance(d, mujoco.MjData):
                raise TypeError(f"datas[{i}] is a {type(d).__name__}, not a mujoco.MjData")
            if (d.qpos.shape[0] != model.nq or d.plugin_state.shape[0] != model.npluginstate
                    or d.sensordata.shape[0] != model.nsensordata):
                raise ValueError(f"datas[{i}] was not made for this model")
        if len({id(d) for d in datas}) != len(datas):
            raise ValueError("an MjData appears more than once in datas")
        if int(nthread) < 0:
            raise ValueError(f"nthread = {nthread} must be 0 (one per CPU) or more")
        self._model, self._datas = model, datas  # the C batch points into both
        self._ptrs = (ctypes.c_void_p * len(datas))(*[d._address for d in datas])
        self._handle = _dll.dtac_batch_make(ctypes.c_void_p(model._address), int(nthread))
        if not self._handle:
            raise RuntimeError("dtac_batch_make failed (see the MuJoCo warning)")

    @property
    def model(self):
        return self._model

    @property
    def datas(self):
        """The environments' ``MjData``, in stepping order (a copy of the list)."""
        return list(self._datas)

    def __len__(self):
        return len(self._datas)

    @property
    def nthread(self):
        """Threads the batch steps on (the calling thread included)."""
        return int(_dll.dtac_batch_nthread(self._live()))

    def _live(self):
        if not self._handle:
            raise RuntimeError("the batch is closed")
        return self._handle

    def step(self, nstep=1):
        """``mujoco.mj_step`` ``nstep`` times on every MjData, in parallel (the GIL is released).
        Returns True, or False when an environment reported a blow-up during the call (a gel
        reset by difftac, or MuJoCo's bad qpos/qvel/qacc warning; see ``gel_info(...).nwarning``
        and ``data.warning``): every step was still taken."""
        if int(nstep) < 0:
            raise ValueError(f"nstep = {nstep} must be 0 or more")
        rc = _dll.dtac_batch_step(self._live(), self._ptrs, len(self._datas), int(nstep))
        return rc == 0

    def _free(self, handle):
        _dll.dtac_batch_free(handle)

    def __repr__(self):
        state = f"nthread={self.nthread}" if self._handle else "closed"
        return f"<difftac.Batch of {len(self._datas)} MjData, {state}>"
