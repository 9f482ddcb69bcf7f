"""Gradients from Python: the differentiable parameters and the rollout tape (ctypes over the
"gradients" section of include/difftac/difftac.h; docs/gradients_python.md).

The gradient state of a model is one vector of ``grad_state_size(model)`` values:
``[qpos tangent (nv, as mj_differentiatePos), qvel (nv), act (na), plugin_state (npluginstate)]``.
"""
import ctypes

import mujoco
import numpy as np

from ._lib import CHandle
from ._lib import load as _load

__all__ = ["param_names", "param_index", "param_get", "param_set", "grad_state_size", "Tape",
           "transition"]

_dll, _ = _load()
_NAME_LEN = 256


def _ptr(obj):
    return ctypes.c_void_p(obj._address)


def _dptr(a):
    return None if a is None else a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def _check_model(model):
    if not isinstance(model, mujoco.MjModel):
        raise TypeError(f"expected a mujoco.MjModel, got {type(model).__name__}")


def _check_data(model, data):
    _check_model(model)
    if not isinstance(data, mujoco.MjData):
        raise TypeError(f"expected a mujoco.MjData, got {type(data).__name__}")
    if data.plugin_state.shape[0] != model.npluginstate or data.qpos.shape[0] != model.nq:
        raise ValueError("data was not made for this model (qpos or plugin_state sizes differ)")


# ---- parameters ----------------------------------------------------------------------------------

def param_names(model):
    """Names of the model's differentiable parameters, ``"<plugin instance>/<parameter>"``
    (e.g. ``gel/young``), in the order of ``Tape.backward()["param"]``."""
    _check_model(model)
    buf = ctypes.create_string_buffer(_NAME_LEN)
    names = []
    for i in range(_dll.dtac_param_count(_ptr(model))):
        if _dll.dtac_param_name(_ptr(model), i, buf, _NAME_LEN) != 0:
            raise RuntimeError(f"dtac_param_name failed for parameter {i}")
        names.append(buf.value.decode())
    return names


def param_index(model, name):
    """Index of the parameter ``name`` (an int is checked and passed through); ValueError naming
    the parameters there are when there is no such parameter."""
    _check_model(model)
    n = _dll.dtac_param_count(_ptr(model))
    if isinstance(name, (int, np.integer)):
        if not 0 <= int(name) < n:
            raise ValueError(f"no parameter {int(name)}: the model has {n} "
                             f"({', '.join(param_names(model))})")
        return int(name)
    i = _dll.dtac_param_find(_ptr(model), str(name).encode())
    if i < 0:
        raise ValueError(f"no parameter named {name!r}; the model has {param_names(model)}")
    return i


def _param_label(model, i, name):
    return name if isinstance(name, str) else f"{i} ({param_names(model)[i]})"


def param_get(model, data, name):
    """Value of parameter ``name`` (name or index) in ``data``, as the step uses it."""
    _check_data(model, data)
    i = param_index(model, name)
    return float(_dll.dtac_param_get(_ptr(model), _ptr(data), i))


def param_set(model, data, name, value):
    """Sets parameter ``name`` (name or index) in ``data`` (each MjData has its own). ValueError
    naming the parameter and the value if the library rejects it (out of range); the parameter
    then keeps its value."""
    _check_data(model, data)
    i = param_index(model, name)
    try:
        v = float(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"parameter {_param_label(model, i, name)!s}: value {value!r} is not a "
                         f"number") from e
    if _dll.dtac_param_set(_ptr(model), _ptr(data), i, v) != 0:
        old = _dll.dtac_param_get(_ptr(model), _ptr(data), i)
        raise ValueError(f"parameter {_param_label(model, i, name)!s}: value {v!r} is out of range "
                         f"(the library refused it; it stays {old!r})")


def grad_state_size(model):
    """Size of the gradient state: 2 nv + na + npluginstate."""
    _check_model(model)
    return int(_dll.dtac_grad_state_size(_ptr(model)))


# ---- tape ------------------------------------------------------------------------------------------

class Tape(CHandle):
    """Records up to ``nstep`` ``mj_step`` calls of ``data`` and differentiates them in reverse.

    Creating it runs ``mj_forward(model, data)``. Set ``data.ctrl`` (or pass ``ctrl`` to
    :meth:`step`) before each step. ``every`` is the checkpoint interval (0: every step when the
    states fit in 64 MiB, else ceil(sqrt(nstep))).
    The tape keeps ``model`` and ``data`` alive; free it with :meth:`close` or a ``with`` block.
    """

    def __init__(self, model, data, nstep, every=0):
        _check_data(model, data)
        if int(nstep) < 1:
            raise ValueError(f"nstep = {nstep} must be at least 1")
        if int(every) < 0:
            raise ValueError(f"every = {every} must be 0 (automatic) or positive")
        if model.opt.integrator not in (mujoco.mjtIntegrator.mjINT_EULER,
                                        mujoco.mjtIntegrator.mjINT_IMPLICITFAST):
            raise ValueError("the tape differentiates the Euler and implicitfast integrators only; "
                             f"the model uses {mujoco.mjtIntegrator(model.opt.integrator).name}")
        self._model, self._data = model, data  # the C tape points into both
        self.capacity = int(nstep)
        self.every = int(every)
        self._handle = _dll.dtac_tape_make(_ptr(model), _ptr(data), self.capacity, self.every)
        if not self._handle:
            raise RuntimeError(f"dtac_tape_make failed for {nstep} steps (see the MuJoCo warning)")
        self.nx = grad_state_size(model)
        self.nparam = int(_dll.dtac_param_count(_ptr(model)))

    @property
    def model(self):
        return self._model

    @property
    def data(self):
        return self._data

    def _live(self):
        if not self._handle:
            raise RuntimeError("the tape is closed")
        return self._handle

    @property
    def nstep(self):
        """Steps recorded so far."""
        return int(_dll.dtac_tape_nstep(self._live()))

    @property
    def memory(self):
        """Bytes the tape holds: its recorded states, and after a backward pass what the plugins
        allocated for it (with a library that reports that)."""
        return int(_dll.dtac_tape_memory(self._live()))

    def step(self, ctrl=None):
        """``mj_step`` on the tape's data, recorded (``ctrl``, if given, is written to
        ``data.ctrl`` first); returns the step's index. RuntimeError when the tape is full."""
        tp = self._live()
        if self.nstep >= self.capacity:
            raise RuntimeError(f"the tape is full ({self.capacity} steps); reset() it or make a "
                               f"longer one")
        if ctrl is not None:
            self._data.ctrl[:] = ctrl
        t = _dll.dtac_tape_step(tp)
        if t < 0:
            raise RuntimeError(f"dtac_tape_step failed (the tape holds {self.capacity} steps)")
        return t

    def reset(self):
        """Forgets the recorded steps (the data is left where it is)."""
        _dll.dtac_tape_reset(self._live())

    def backward(self, sensor_bar=None, state_bar=None):
        """The reverse pass over the recorded steps.

        sensor_bar: cotangent of ``data.sensordata`` after each recorded step, (nstep,
        nsensordata); row t weighs what step t wrote (the sensors of the state it started from).
        state_bar: cotangent of the final gradient state, (grad_state_size,). None: zero.

        Returns a dict: ``state0`` (grad_state_size,) the gradient at the state of the first
        recorded step, ``ctrl`` (nstep, nu) at the ctrl each step used, ``param``
        (len(param_names),) at the parameters.
        """
        tp = self._live()
        m = self._model
        n = self.nstep
        if n == 0:
            raise RuntimeError("the tape has no recorded steps")
        sb = self._array("sensor_bar", sensor_bar, (n, m.nsensordata),
                         "(nstep recorded, nsensordata)")
        xb = self._array("state_bar", state_bar, (self.nx,), "(grad_state_size,)")
        state0 = np.zeros(self.nx)
        ctrl = np.zeros((n, m.nu))
        param = np.zeros(self.nparam)
        if _dll.dtac_tape_backward(tp, _dptr(sb), _dptr(xb), _dptr(state0),
                                   _dptr(ctrl) if m.nu else None,
                                   _dptr(param) if self.nparam else None) != 0:
            raise RuntimeError("dtac_tape_backward failed" + self._why(sb))
        return {"state0": state0, "ctrl": ctrl, "param": param}

    def _array(self, what, a, shape, text):
        if a is None:
            return None
        a = np.asarray(a, dtype=np.float64)
        if a.shape != shape:
            raise ValueError(f"{what} has shape {a.shape}; expected {shape} = {text}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} has non-finite entries")
        return np.ascontiguousarray(a)

    def _why(self, sb):
        # the C side says why in a MuJoCo warning; name the likely cause here as well
        m = self._model
        if sb is not None:
            bad = []
            for s in range(m.nsensor):
                if m.sensor_type[s] != mujoco.mjtSensor.mjSENS_PLUGIN:
                    continue
                adr, dim = m.sensor_adr[s], m.sensor_dim[s]
                if np.any(sb[:, adr:adr + dim] != 0):
                    bad.append(mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_SENSOR, s) or f"#{s}")
            if bad:
                return (f" (see the MuJoCo warning; sensor_bar weighs the plugin sensors {bad}: "
                        f"one of them may have no derivative in this library)")
        return " (see the MuJoCo warning)"

    def _free(self, handle):
        _dll.dtac_tape_free(handle)

    def __repr__(self):
        if not self._handle:
            return "<difftac.Tape closed>"
        return (f"<difftac.Tape {self.nstep}/{self.capacity} steps, {self.memory} bytes>")


# ---- transition Jacobians -----------------------------------------------------------------------

def transition(model, data, sensors=True):
    """Transition Jacobians of one step at ``data``'s state, laid out as ``mujoco.mjd_transitionFD``
    returns them: ``A`` (ndx, ndx) and ``B`` (ndx, nu) for the next rigid state (ndx = 2 nv + na:
    qpos tangent, qvel, act) with the gels' state held, from one reverse pass (the gels
    analytic); ``C`` (nsensordata, ndx) and ``D`` (nsensordata, nu) for this state's sensordata,
    by central differences of the forward pass (skipped, returned as None, with
    ``sensors=False``). Returns ``(A, B, C, D)``; ``data``'s state is left as it was."""
    _check_data(model, data)
    ndx = 2 * model.nv + model.na
    A = np.zeros((ndx, ndx))
    B = np.zeros((ndx, model.nu))
    C = np.zeros((model.nsensordata, ndx)) if sensors else None
    D = np.zeros((model.nsensordata, model.nu)) if sensors else None
    rc = _dll.dtac_transition(_ptr(model), _ptr(data), _dptr(A), _dptr(B), _dptr(C), _dptr(D))
    if rc != 0:
        raise RuntimeError("dtac_transition failed (see MuJoCo's warnings)")
    return A, B, C, D
