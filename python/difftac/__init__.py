"""difftac: differentiable FEM gels and tactile sensors for MuJoCo, from Python.

Importing the package finds ``libdifftac.so`` (the environment variable ``DIFFTAC_LIB``, else the
repository's ``build/`` next to this package's source, else a copy shipped inside the package),
checks that it was built against the running ``mujoco`` and registers its plugins
(``difftac.elastomer``, ``difftac.tactile``) with ``mujoco.mj_loadPluginLibrary``, once per process.
After that, ``mujoco.MjModel.from_xml_path`` loads scenes that use them. See docs/python.md.
"""
import ctypes
import dataclasses

import mujoco
import numpy as np

from ._lib import LibraryError, format_mujoco_version
from ._lib import load as _load

__all__ = [
    "LibraryError", "GelInfo", "TactileInfo", "version", "library_path", "mujoco_header_version",
    "cuda_available",
    "gels", "gel_id", "gel_info", "gel_positions", "gel_rest_positions", "contact_wrench",
    "elastic_energy", "kinetic_energy", "tactile_sensors", "tactile_info", "sensor",
    "marker_rest", "OUTPUTS", "param_names", "param_index", "param_get", "param_set",
    "grad_state_size", "Tape", "transition", "Batch", "make_datas", "add_gel", "add_tactile",
]

_dll, _path = _load()

from .grad import (  # noqa: E402
    Tape, grad_state_size, param_get, param_index, param_names, param_set, transition)
from .batch import Batch, make_datas  # noqa: E402
from .spec import add_gel, add_tactile  # noqa: E402

__version__ = _dll.dtac_version().decode()

# output kinds of difftac.tactile, in the order of the C enum DTAC_TACTILE_*
OUTPUTS = ("rgb", "depth", "pressure", "shear", "markers", "force")


def version():
    """Version string of the loaded libdifftac.so (``dtac_version``)."""
    return _dll.dtac_version().decode()


def library_path():
    """Absolute path of the loaded libdifftac.so."""
    return str(_path)


def mujoco_header_version():
    """The MuJoCo header version libdifftac.so was built against (equals ``mujoco.mj_version()``)."""
    return int(_dll.dtac_mujoco_header_version())


def cuda_available():
    """Number of CUDA GPUs this libdifftac.so can step gels on (0 without a GPU or without a CUDA
    build); the elastomer's ``device`` config key picks one (docs/gpu.md)."""
    return int(_dll.dtac_cuda_available())


# ---- C structs (include/difftac/difftac.h) -------------------------------------------------------

class _CGelInfo(ctypes.Structure):
    _fields_ = [("nnode", ctypes.c_int), ("ntet", ctypes.c_int), ("nsurf", ctypes.c_int),
                ("ncell", ctypes.c_int * 3), ("nsub", ctypes.c_int), ("dt_sub", ctypes.c_double),
                ("dt_stable", ctypes.c_double), ("omega_max", ctypes.c_double),
                ("mass", ctypes.c_double), ("site", ctypes.c_int), ("body", ctypes.c_int),
                ("ncontact", ctypes.c_int), ("nwarning", ctypes.c_int),
                ("nsub_last", ctypes.c_int), ("integrator", ctypes.c_int),
                ("iterations", ctypes.c_int), ("residual", ctypes.c_double),
                ("nnonconverged", ctypes.c_int)]


class _CTactileInfo(ctypes.Structure):
    _fields_ = [("output", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
                ("pitch", ctypes.c_double), ("x0", ctypes.c_double), ("y0", ctypes.c_double),
                ("gel", ctypes.c_int), ("nmarker", ctypes.c_int), ("marker_cols", ctypes.c_int),
                ("marker_rows", ctypes.c_int), ("marker_pitch", ctypes.c_double),
                ("nout", ctypes.c_int), ("nevaluation", ctypes.c_long),
                ("background", ctypes.c_double * 3), ("lighting", ctypes.c_double * 30)]


@dataclasses.dataclass(frozen=True)
class GelInfo:
    """One elastomer instance in one MjData (``dtac_gel_info``)."""
    name: str
    instance: int       # plugin instance id
    nnode: int          # mesh nodes
    ntet: int           # tetrahedra
    nsurf: int          # contact (surface) nodes
    ncell: tuple        # grid cells along x y z of the pad
    nsub: int           # explicit substeps per MuJoCo step
    dt_sub: float       # substep, s
    dt_stable: float    # largest stable substep, s
    omega_max: float    # highest elastic angular frequency at rest, rad/s
    mass: float         # gel mass, kg
    site: int           # MuJoCo site id of the gel frame
    body: int           # MuJoCo body id the back face is attached to
    ncontact: int       # surface nodes in contact after the last step
    nwarning: int       # blow-ups detected and recovered from
    nsub_last: int      # substeps the last step took (more when elements were compressed)
    integrator: str     # "explicit" or "implicit"
    iterations: int     # implicit: Newton iterations of the last step
    residual: float     # implicit: its final relative residual
    nnonconverged: int  # implicit: steps stopped short of the tolerance (state kept, finite)


@dataclasses.dataclass(frozen=True)
class TactileInfo:
    """One difftac.tactile sensor (``dtac_tactile_info``) and the shape of its output."""
    name: str
    sensor: int         # MuJoCo sensor id
    output: str         # one of OUTPUTS
    width: int          # image size, pixels
    height: int
    pitch: float        # m per pixel
    x0: float           # site-frame x, y of the image corner
    y0: float
    gel: int            # plugin instance id of the elastomer it reads
    nmarker: int
    marker_cols: int
    marker_rows: int
    marker_pitch: float
    shape: tuple        # what sensor() returns: (H, W, 3) rgb, (H, W) depth/pressure, ...
    background: tuple   # lighting: colour of the flat gel (rgb)


def _ptr(obj):
    return ctypes.c_void_p(obj._address)


def _check_pair(model, data):
    if not isinstance(model, mujoco.MjModel):
        raise TypeError(f"expected a mujoco.MjModel, got {type(model).__name__}")
    if data is not None and not isinstance(data, mujoco.MjData):
        raise TypeError(f"expected a mujoco.MjData, got {type(data).__name__}")
    if data is not None and data.plugin_state.shape[0] != model.npluginstate:
        raise ValueError("data was not made for this model (plugin_state sizes differ)")


# ---- elastomers ------------------------------------------------------------------------------------

def gels(model):
    """Names of the model's difftac.elastomer instances, in instance order."""
    _check_pair(model, None)
    names = []
    for i in range(model.nplugin):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_PLUGIN, i)
        if name and _dll.dtac_gel_find(_ptr(model), name.encode()) == i:
            names.append(name)
    return names


def gel_id(model, name):
    """Plugin instance id of the elastomer ``name`` (an int is passed through); KeyError if none."""
    if isinstance(name, (int, np.integer)):
        return int(name)
    i = _dll.dtac_gel_find(_ptr(model), str(name).encode())
    if i < 0:
        raise KeyError(f"no difftac.elastomer instance named {name!r}; the model has {gels(model)}")
    return i


def _info(model, data, name):
    _check_pair(model, data)
    i = gel_id(model, name)
    c = _CGelInfo()
    if _dll.dtac_gel_get_info(_ptr(model), _ptr(data), i, ctypes.byref(c)) != 0:
        raise KeyError(f"plugin instance {name!r} is not a difftac.elastomer")
    return i, c


def gel_info(model, data, name):
    """A GelInfo of the elastomer ``name`` (instance name or id) in ``data``."""
    i, c = _info(model, data, name)
    nm = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_PLUGIN, i) or ""
    return GelInfo(name=nm, instance=i, nnode=c.nnode, ntet=c.ntet, nsurf=c.nsurf,
                   ncell=tuple(c.ncell), nsub=c.nsub, dt_sub=c.dt_sub, dt_stable=c.dt_stable,
                   omega_max=c.omega_max, mass=c.mass, site=c.site, body=c.body,
                   ncontact=c.ncontact, nwarning=c.nwarning, nsub_last=c.nsub_last,
                   integrator="implicit" if c.integrator == 1 else "explicit",
                   iterations=c.iterations, residual=c.residual, nnonconverged=c.nnonconverged)


def gel_positions(model, data, name):
    """World positions of the gel's nodes, (nnode, 3): a view into ``data.plugin_state`` (no copy;
    writes go to the simulation state)."""
    i, c = _info(model, data, name)
    p = _dll.dtac_gel_positions(_ptr(model), _ptr(data), i)
    state = data.plugin_state
    off, rem = divmod(p - state.ctypes.data, state.itemsize)
    if not p or rem or off < 0 or off + 3 * c.nnode > state.shape[0]:
        raise RuntimeError("dtac_gel_positions does not point into data.plugin_state")
    return state[off:off + 3 * c.nnode].reshape(c.nnode, 3)


def gel_rest_positions(model, data, name):
    """Rest positions of the nodes in the gel's site frame, (nnode, 3) (a copy)."""
    i, c = _info(model, data, name)
    p = _dll.dtac_gel_rest_positions(_ptr(model), _ptr(data), i)
    return np.ctypeslib.as_array(ctypes.cast(p, ctypes.POINTER(ctypes.c_double)),
                                 shape=(c.nnode, 3)).copy()


def contact_wrench(model, data, name):
    """Net contact force (N) and torque (N m, about the site origin) the scene exerts on the gel,
    world frame, as of the last mj_forward / mj_step: array (6,)."""
    i, _ = _info(model, data, name)
    w = np.zeros(6)
    _dll.dtac_gel_contact_wrench(_ptr(model), _ptr(data), i,
                                 w.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
    return w


def elastic_energy(model, data, name):
    """Elastic strain energy of the gel, J."""
    i, _ = _info(model, data, name)
    return float(_dll.dtac_gel_elastic_energy(_ptr(model), _ptr(data), i))


def kinetic_energy(model, data, name):
    """Kinetic energy of the gel, J."""
    i, _ = _info(model, data, name)
    return float(_dll.dtac_gel_kinetic_energy(_ptr(model), _ptr(data), i))


# ---- tactile sensors -------------------------------------------------------------------------------

def tactile_sensors(model):
    """Names of the model's difftac.tactile sensors, in sensor order."""
    _check_pair(model, None)
    out = []
    for s in range(model.nsensor):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SENSOR, s)
        if name and _dll.dtac_tactile_find(_ptr(model), name.encode()) == s:
            out.append(name)
    return out


def _shape(output, width, height, nmarker):
    return {"rgb": (height, width, 3), "depth": (height, width), "pressure": (height, width),
            "shear": (height, width, 2), "markers": (nmarker, 2), "force": (6,)}[output]


def _sensor_id(model, name):
    if isinstance(name, (int, np.integer)):
        return int(name)
    s = _dll.dtac_tactile_find(_ptr(model), str(name).encode())
    if s < 0:
        raise KeyError(f"no difftac.tactile sensor named {name!r}; the model has "
                       f"{tactile_sensors(model)}")
    return s


def tactile_info(model, data, name):
    """A TactileInfo of the difftac.tactile sensor ``name`` (sensor name or id)."""
    _check_pair(model, data)
    s = _sensor_id(model, name)
    c = _CTactileInfo()
    if _dll.dtac_tactile_get_info(_ptr(model), _ptr(data), s, ctypes.byref(c)) != 0:
        raise KeyError(f"sensor {name!r} is not a difftac.tactile sensor")
    if not 0 <= c.output < len(OUTPUTS):
        raise RuntimeError(f"sensor {name!r}: unknown output kind {c.output}")
    output = OUTPUTS[c.output]
    shape = _shape(output, c.width, c.height, c.nmarker)
    if int(np.prod(shape)) != model.sensor_dim[s]:
        raise RuntimeError(f"sensor {name!r}: {output} of shape {shape} does not match its "
                           f"sensor_dim {model.sensor_dim[s]} (library and package out of step?)")
    return TactileInfo(name=mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SENSOR, s) or "",
                       sensor=s, output=output, width=c.width, height=c.height, pitch=c.pitch,
                       x0=c.x0, y0=c.y0, gel=c.gel, nmarker=c.nmarker, marker_cols=c.marker_cols,
                       marker_rows=c.marker_rows, marker_pitch=c.marker_pitch, shape=shape,
                       background=tuple(c.background))


def sensor(model, data, name):
    """The output of the difftac.tactile sensor ``name`` as a view into ``data.sensordata`` in its
    documented layout: rgb (H, W, 3) in [0, 1]; depth (H, W) m; pressure (H, W) Pa; shear (H, W, 2)
    Pa; markers (N, 2) pixels; force (6,) N, N m in the site frame (docs/tactile.md)."""
    info = tactile_info(model, data, name)
    adr, dim = model.sensor_adr[info.sensor], model.sensor_dim[info.sensor]
    return data.sensordata[adr:adr + dim].reshape(info.shape)


def marker_rest(model, data, name):
    """Rest pixel positions (u, v) of a markers sensor's grid, (N, 2)."""
    info = tactile_info(model, data, name)
    uv = np.zeros((info.nmarker, 2))
    n = _dll.dtac_tactile_marker_rest(_ptr(model), _ptr(data), info.sensor,
                                      uv.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
    if n < 0:
        raise KeyError(f"sensor {name!r} is not a difftac.tactile sensor")
    return uv
