"""Finds libdifftac.so, checks it against the running mujoco and loads it (once)."""
import ctypes
import os
import pathlib
import threading

import mujoco

LIBNAME = "libdifftac.so"
_PKG_DIR = pathlib.Path(__file__).resolve().parent
# python/difftac/_lib.py -> the repository root (meaningful for a source checkout / editable install)
_REPO_ROOT = _PKG_DIR.parents[1]


class LibraryError(ImportError):
    """libdifftac.so is missing, cannot be loaded, or was built against another MuJoCo."""


def format_mujoco_version(v):
    """MuJoCo's integer version as 'major.minor.patch' (4.x: 4000000 -> '4.0.0'; 3.x: 325 -> '3.2.5')."""
    v = int(v)
    if v >= 1000000:
        return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"
    return f"{v // 100}.{v // 10 % 10}.{v % 10}"


def candidates():
    """Where the library is looked for, in order, as (path, origin) pairs."""
    env = os.environ.get("DIFFTAC_LIB")
    if env:
        return [(pathlib.Path(env).expanduser(), "DIFFTAC_LIB")]
    cands = []
    # the package's source in a difftac checkout (python/difftac): the repository's build
    if (_REPO_ROOT / "include" / "difftac" / "difftac.h").is_file():
        build = os.environ.get("DTAC_BUILD_DIR", "build")
        cands.append((_REPO_ROOT / build / LIBNAME, f"the repository's {build}/"))
    cands.append((_PKG_DIR / LIBNAME, "the copy shipped in the package"))
    # imported from a checkout's python/ (examples and tests put it on sys.path) with no build
    # there: the library a `pip install ./python` built into site-packages
    try:
        import importlib.metadata as md
        dist = md.distribution("difftac")
        for f in dist.files or []:
            if f.name == LIBNAME:
                path = pathlib.Path(dist.locate_file(f))
                if path.resolve() != (_PKG_DIR / LIBNAME).resolve():
                    cands.append((path, "the installed difftac package"))
    except Exception:  # no installed distribution, or one without a file list
        pass
    return cands


def find():
    """Path of the library to load; LibraryError naming every place looked at when none exists."""
    cands = candidates()
    for path, _ in cands:
        if path.is_file():
            return path.resolve()
    looked = "\n".join(f"  {p} ({origin})" for p, origin in cands)
    if os.environ.get("DIFFTAC_LIB"):
        hint = "DIFFTAC_LIB must name an existing libdifftac.so (unset it to use the repository's build)."
    else:
        hint = ("Build it with ./setup.sh (or cmake --build build) in the difftac repository, or set "
                "DIFFTAC_LIB to its path.")
    raise LibraryError(f"difftac: {LIBNAME} not found; looked at\n{looked}\n{hint}")


def rebuild_hint(path):
    """what rebuilds the library at ``path`` against the running mujoco"""
    if pathlib.Path(path).resolve().parent == _PKG_DIR and not (
            _REPO_ROOT / "include" / "difftac" / "difftac.h").is_file():
        return ("an installed copy: rebuild it against this mujoco with pip install "
                "--force-reinstall --no-deps <difftac checkout>/python, docs/python.md")
    return "rebuild it against this mujoco with ./setup.sh or cmake --build build"


def check_versions(built, running, path="libdifftac.so"):
    """LibraryError unless the MuJoCo header version the library was built with is the running one."""
    if int(built) != int(running):
        raise LibraryError(
            f"difftac: {path} was built against MuJoCo {format_mujoco_version(built)} (header "
            f"{built}) but the running mujoco is {format_mujoco_version(running)} ({running}); "
            f"{rebuild_hint(path)}, or install the matching mujoco")


def _prototype(lib):
    c_int, c_double, c_char_p, vp = ctypes.c_int, ctypes.c_double, ctypes.c_char_p, ctypes.c_void_p
    dp = ctypes.POINTER(ctypes.c_double)
    sig = {
        "dtac_version": (c_char_p, []),
        "dtac_mujoco_header_version": (c_int, []),
        "dtac_cuda_available": (c_int, []),
        "dtac_gel_find": (c_int, [vp, c_char_p]),
        "dtac_gel_get_info": (c_int, [vp, vp, c_int, vp]),
        "dtac_gel_positions": (vp, [vp, vp, c_int]),
        "dtac_gel_rest_positions": (vp, [vp, vp, c_int]),
        "dtac_gel_contact_wrench": (c_int, [vp, vp, c_int, dp]),
        "dtac_gel_elastic_energy": (c_double, [vp, vp, c_int]),
        "dtac_gel_kinetic_energy": (c_double, [vp, vp, c_int]),
        "dtac_tactile_find": (c_int, [vp, c_char_p]),
        "dtac_tactile_get_info": (c_int, [vp, vp, c_int, vp]),
        "dtac_tactile_marker_rest": (c_int, [vp, vp, c_int, dp]),
        # gradients
        "dtac_param_count": (c_int, [vp]),
        "dtac_param_name": (c_int, [vp, c_int, c_char_p, c_int]),
        "dtac_param_find": (c_int, [vp, c_char_p]),
        "dtac_param_get": (c_double, [vp, vp, c_int]),
        "dtac_param_set": (c_int, [vp, vp, c_int, c_double]),
        "dtac_grad_state_size": (c_int, [vp]),
        "dtac_tape_make": (vp, [vp, vp, c_int, c_int]),
        "dtac_tape_free": (None, [vp]),
        "dtac_tape_step": (c_int, [vp]),
        "dtac_tape_nstep": (c_int, [vp]),
        "dtac_tape_reset": (None, [vp]),
        "dtac_tape_memory": (ctypes.c_size_t, [vp]),
        "dtac_tape_backward": (c_int, [vp, dp, dp, dp, dp, dp]),
        "dtac_transition": (c_int, [vp, vp, dp, dp, dp, dp]),
        # many environments
        "dtac_batch_make": (vp, [vp, c_int]),
        "dtac_batch_free": (None, [vp]),
        "dtac_batch_step": (c_int, [vp, vp, c_int, c_int]),
        "dtac_batch_nthread": (c_int, [vp]),
    }
    for name, (res, args) in sig.items():
        try:
            f = getattr(lib, name)
        except AttributeError as e:
            raise LibraryError(f"difftac: {lib._name} has no symbol {name}; is it libdifftac.so "
                               f"from this version of difftac?") from e
        f.restype, f.argtypes = res, args


_lock = threading.Lock()
_state = {"lib": None, "path": None}


def load():
    """Loads the library once per process; returns (ctypes handle, path)."""
    with _lock:
        if _state["lib"] is not None:
            return _state["lib"], _state["path"]
        path = find()
        try:
            # dlopen: the same handle mujoco.mj_loadPluginLibrary gets for this path below
            lib = ctypes.CDLL(str(path))
        except OSError as e:
            hint = ""
            if "libmujoco" in str(e):
                hint = (f"\nIt was built against another mujoco than the running "
                        f"{mujoco.__version__} ({rebuild_hint(path)})")
            raise LibraryError(f"difftac: cannot load {path}: {e}{hint}") from e
        _prototype(lib)
        check_versions(lib.dtac_mujoco_header_version(), mujoco.mj_version(), path)
        mujoco.mj_loadPluginLibrary(str(path))
        _state["lib"], _state["path"] = lib, path
        return lib, path


class CHandle:
    """A Python owner of one C object: ``close()`` frees it once (``_free`` names how), and so do
    ``with`` and garbage collection. Subclasses keep the pointer in ``_handle``."""

    _handle = None

    def _free(self, handle):
        raise NotImplementedError

    def close(self):
        """Frees the C object (idempotent)."""
        if getattr(self, "_handle", None):
            self._free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass
