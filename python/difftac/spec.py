"""Gel pads and tactile sensors on a ``mujoco.MjSpec``, without writing XML.

    import mujoco, difftac
    spec = mujoco.MjSpec.from_file("scene.xml")           # any scene with a site for the gel
    difftac.add_gel(spec, "finger_site", name="gel", size=(0.02, 0.025, 0.004), resolution=0.002)
    difftac.add_tactile(spec, "gel", "pressure", size=(40, 50), pitch=0.0005)
    difftac.add_tactile(spec, "gel", "force")
    m = spec.compile()

Both helpers activate the plugins on the spec (``spec.activate_plugin``: forgetting it is MuJoCo's
"unrecognized plugin" at compile) and check every key name and value against the documented keys
(docs/mjcf.md, docs/tactile.md) before anything is compiled: a bad key or value is a ``ValueError``
naming the instance, the key and the value. Numbers and sequences of numbers are written as MJCF
text (``(0.02, 0.025, 0.004)`` -> ``"0.02 0.025 0.004"``); strings are checked and passed as they are.

Why not ``sensor.plugin.config = {...}``: in MuJoCo 4.0 the ``mjsPlugin`` embedded in a new sensor
has no plugin element behind it (``element == NULL``), and both the ``config`` getter and setter of
the Python bindings (python/mujoco/specs.cc) call ``mjs_getPluginAttributes`` /
``mjs_setPluginAttributes`` (src/user/user_api.cc), which cast that NULL to ``mjCPlugin*`` and
dereference it: a segmentation fault in MuJoCo, with or without difftac loaded. The XML reader does
what ``add_tactile`` does here: it creates an unnamed plugin instance (``mjs_addPlugin``) and points
the sensor's plugin at it; from Python ``sensor.plugin.id = instance`` is the call that sets that
pointer (the binding's ``id`` setter copies the other plugin's element), after which ``config``
reads and writes the instance. See docs/guide.md ("from Python").
"""
import ctypes
import math
import numbers
import os

import mujoco

__all__ = ["add_gel", "add_tactile", "GEL_KEYS", "TACTILE_KEYS", "registered_keys",
           "format_value", "check_keys"]

ELASTOMER = "difftac.elastomer"
TACTILE = "difftac.tactile"
OUTPUTS = ("rgb", "depth", "pressure", "shear", "markers", "force")


# ---- the documented keys: (kind, n values, check, what the check means) -------------------------
def _pos(x):
    return x > 0


def _nonneg(x):
    return x >= 0


def _pos_or_auto(x):
    return x > 0 or x == -1


def _nonneg_or_auto(x):
    return x >= 0 or x == -1


def _device(s):
    if s in ("auto", "cpu", "cuda", "emu"):
        return True
    return s.startswith("cuda:") and s[5:].isdigit()


# kind: "name" (a non-empty name without spaces), "enum" (one of choices), "device", "path",
# "real"/"int" (n values, each passing check)
GEL_KEYS = {
    "site": ("name", 1, None, "an existing site"),
    "shape": ("enum", 1, ("box",), "box"),
    "size": ("real", 3, _pos, "three finite values > 0 (m)"),
    "resolution": ("real", 1, _pos, "a finite value > 0 (m)"),
    "young": ("real", 1, _pos, "a finite value > 0 (Pa)"),
    "poisson": ("real", 1, lambda x: -1 < x < 0.5, "a value in (-1, 0.5)"),
    "density": ("real", 1, _pos, "a finite value > 0 (kg/m^3)"),
    "damping": ("real", 1, _nonneg_or_auto, "a finite value >= 0, or -1 (s)"),
    "mass_damping": ("real", 1, _nonneg_or_auto, "a finite value >= 0, or -1 (1/s)"),
    "friction": ("real", 1, _nonneg, "a finite value >= 0"),
    "contact_stiffness": ("real", 1, _pos_or_auto, "a finite value > 0, or -1 (Pa/m)"),
    "contact_damping": ("real", 1, _nonneg, "a finite value >= 0"),
    "friction_stiffness": ("real", 1, _pos_or_auto, "a finite value > 0, or -1 (Pa/m)"),
    "contact_width": ("real", 1, _pos_or_auto, "a finite value > 0, or -1 (m)"),
    "contype": ("int", 1, _nonneg, "an integer >= 0"),
    "conaffinity": ("int", 1, _nonneg, "an integer >= 0"),
    "device": ("device", 1, _device, "auto, cpu, cuda, cuda:N or emu"),
    "coupling": ("enum", 1, ("substep", "explicit"), "substep or explicit"),
    "integrator": ("enum", 1, ("explicit", "implicit"), "explicit or implicit"),
    "tolerance": ("real", 1, lambda x: 0 < x < 1, "a value in (0, 1)"),
    "iterations": ("int", 1, lambda x: 1 <= x <= 1000, "an integer in [1, 1000]"),
    "material": ("enum", 1, ("neohookean", "linear"), "neohookean or linear (implicit only)"),
}

TACTILE_KEYS = {
    "elastomer": ("name", 1, None, "a difftac.elastomer instance"),
    "output": ("enum", 1, OUTPUTS, " | ".join(OUTPUTS)),
    "size": ("int", 2, lambda x: x >= 1, "two integers >= 1 (W H, pixels)"),
    "pitch": ("real", 1, _pos, "a finite value > 0 (m/pixel)"),
    "center": ("real", 2, None, "two finite values (m)"),
    "background": ("real", 3, None, "three finite values"),
    "lighting": ("real", 30, None, "30 finite values"),
    "optics_file": ("path", 1, None, "a readable file"),
    "markers": ("int", 2, lambda x: x >= 1, "two integers >= 1 (columns rows)"),
    "marker_pitch": ("real", 1, _pos, "a finite value > 0 (m)"),
}


# ---- the keys the loaded plugins registered with MuJoCo (mjpPlugin.attributes) -------------------
class _MjpPluginHead(ctypes.Structure):
    # the first members of mjpPlugin (include/mujoco/mjplugin.h, MuJoCo 3.x and 4.0)
    _fields_ = [("name", ctypes.c_char_p), ("nattribute", ctypes.c_int),
                ("attributes", ctypes.POINTER(ctypes.c_char_p))]


_libmujoco = None


def _mujoco_dll():
    global _libmujoco
    if _libmujoco is None:
        pkg = os.path.dirname(mujoco.__file__)
        names = sorted(f for f in os.listdir(pkg) if f.startswith("libmujoco.so"))
        # the same file the mujoco package linked: dlopen returns the already mapped library
        _libmujoco = ctypes.CDLL(os.path.join(pkg, names[-1]) if names else "libmujoco.so")
        _libmujoco.mjp_getPlugin.restype = ctypes.POINTER(_MjpPluginHead)
        _libmujoco.mjp_getPlugin.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    return _libmujoco


def registered_keys(plugin):
    """The config attribute names ``plugin`` (e.g. ``"difftac.elastomer"``) registered with MuJoCo,
    read from its ``mjpPlugin`` (``mjp_getPlugin``); ``None`` when it is not registered."""
    slot = ctypes.c_int(-1)
    p = _mujoco_dll().mjp_getPlugin(plugin.encode(), ctypes.byref(slot))
    if not p:
        return None
    head = p.contents
    return tuple(head.attributes[i].decode() for i in range(head.nattribute))


# ---- value formatting and checking -------------------------------------------------------------
def format_value(x):
    """MJCF text of one config value: numbers (not bools) and sequences of numbers joined by spaces,
    strings as they are. TypeError for anything else."""
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        raise TypeError("a bool")
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        return repr(float(x))
    try:
        items = list(x)
    except TypeError:
        raise TypeError(f"a {type(x).__name__}") from None
    if not items or any(isinstance(v, (str, bool)) or not isinstance(v, numbers.Real)
                        for v in items):
        raise TypeError("a sequence that is not all numbers")
    return " ".join(format_value(v) for v in items)


def _check(what, kind, n, check, meaning, key, text):
    """None when ``text`` is a valid value of the key, else the reason"""
    if kind == "name":
        return None if text and not text.isspace() else "an empty name"
    if kind == "enum":
        return None if text in check else f"not one of {', '.join(check)}"
    if kind == "device":
        return None if check(text) else "not a device"
    if kind == "path":
        return None if os.path.isfile(text) and os.access(text, os.R_OK) else "no readable file"
    parts = text.split()
    if len(parts) != n:
        return f"{len(parts)} value(s) where {n} are needed"
    vals = []
    for s in parts:
        try:
            v = float(s)
        except ValueError:
            return f"{s!r} is not a number"
        if not math.isfinite(v):
            return f"{s!r} is not finite"
        if kind == "int" and v != int(v):
            return f"{s!r} is not an integer"
        vals.append(v)
    if check is not None and not all(check(v) for v in vals):
        return "out of range"
    return None


def check_keys(plugin, instance, keys, table):
    """the config dict (key -> MJCF text) of ``keys`` for ``plugin``, each checked against ``table``
    and against the keys the loaded plugin registered; ValueError naming instance, key and value"""
    registered = registered_keys(plugin)
    config = {}
    for key, value in keys.items():
        known = key in table or (registered is not None and key in registered)
        if not known:
            names = sorted(set(table) | set(registered or ()))
            raise ValueError(f"{plugin} instance '{instance}': unknown key '{key}' (value "
                             f"{value!r}); keys are: {', '.join(names)}")
        try:
            text = format_value(value)
        except TypeError as e:
            raise ValueError(f"{plugin} instance '{instance}': key '{key}' has value {value!r}, "
                             f"{e}, not a number, numbers or a string") from None
        if key in table:
            kind, n, check, meaning = table[key]
            why = _check(plugin, kind, n, check, meaning, key, text)
            if why is not None:
                raise ValueError(f"{plugin} instance '{instance}': key '{key}' has value "
                                 f"{value!r} ({why}); expected {meaning}")
        config[key] = text
    return config


def _plugin_names(spec):
    return [p.name for p in spec.plugins if p.name]


def _activate(spec, plugin):
    if registered_keys(plugin) is None:
        raise ValueError(f"plugin '{plugin}' is not registered with MuJoCo: import difftac (or "
                         f"mujoco.mj_loadPluginLibrary('libdifftac.so')) first")
    spec.activate_plugin(plugin)  # idempotent: a second call lists the plugin once


def add_gel(spec, site, name="gel", **keys):
    """Adds a ``difftac.elastomer`` instance ``name`` with its back face on ``site`` (a site of
    ``spec``, by name or as an ``MjsSite``) to ``spec``; other keys as in docs/mjcf.md (numbers,
    sequences of numbers or strings). Activates the plugin. Returns the ``MjsPlugin``.

    ValueError, before anything is added, for a missing site, a taken name, or a key or value
    that docs/mjcf.md does not allow."""
    if not isinstance(spec, mujoco.MjSpec):
        raise TypeError(f"add_gel: spec must be a mujoco.MjSpec, not {type(spec).__name__}")
    if not isinstance(site, str):
        site = site.name
    if not isinstance(name, str) or not name or name.isspace():
        raise ValueError(f"{ELASTOMER}: instance name must be a non-empty string, not {name!r}")
    if "site" in keys:
        raise ValueError(f"{ELASTOMER} instance '{name}': give the site as add_gel's second "
                         f"argument, not as key 'site'")
    if spec.site(site) is None:
        raise ValueError(f"{ELASTOMER} instance '{name}': key 'site' has value '{site}', "
                         f"which is not a site of this spec")
    if name in _plugin_names(spec):
        raise ValueError(f"{ELASTOMER} instance '{name}': a plugin instance of that name exists")
    config = check_keys(ELASTOMER, name, dict(site=site, **keys), GEL_KEYS)
    _activate(spec, ELASTOMER)
    gel = spec.add_plugin(name=name, plugin_name=ELASTOMER, active=True)
    gel.config = config
    return gel


def add_tactile(spec, gel, output, name=None, **keys):
    """Adds a ``difftac.tactile`` sensor reading the gel ``gel`` (instance name or the
    ``MjsPlugin`` add_gel returned), with ``output`` one of rgb, depth, pressure, shear,
    markers, force; other keys as in docs/tactile.md (``size=(W, H)``, ``pitch``, ...). The sensor
    is named ``name`` (default ``"<gel>_<output>"``) and sits on the gel's site, as the XML form
    does. Activates the plugin. Returns the ``MjsSensor``.

    ValueError, before anything is added, for an unknown gel, a taken sensor name, or a key or
    value that docs/tactile.md does not allow."""
    if not isinstance(spec, mujoco.MjSpec):
        raise TypeError(f"add_tactile: spec must be a mujoco.MjSpec, not {type(spec).__name__}")
    gel_name = gel if isinstance(gel, str) else gel.name
    if name is None:
        name = f"{gel_name}_{output}"
    for k in ("elastomer", "output"):
        if k in keys:
            raise ValueError(f"{TACTILE} sensor '{name}': give '{k}' as add_tactile's argument")
    gels = [p for p in spec.plugins if p.name == gel_name and p.plugin_name == ELASTOMER]
    if not gels:
        have = [p.name for p in spec.plugins if p.plugin_name == ELASTOMER]
        raise ValueError(f"{TACTILE} sensor '{name}': key 'elastomer' has value '{gel_name}', "
                         f"which is not a {ELASTOMER} instance of this spec (instances: "
                         f"{', '.join(have) or 'none'}; add it with difftac.add_gel first)")
    if spec.sensor(name) is not None:
        raise ValueError(f"{TACTILE} sensor '{name}': a sensor of that name exists")
    config = check_keys(TACTILE, name, dict(elastomer=gel_name, output=output, **keys),
                        TACTILE_KEYS)
    site = gels[0].config.get("site")
    _activate(spec, TACTILE)
    # the sensor's own config lives in an unnamed instance, as <sensor><plugin><config .../>
    # makes it; sensor.plugin.id = inst points the sensor at it (assigning sensor.plugin.config
    # before that dereferences a NULL element inside MuJoCo: see the module docstring)
    inst = spec.add_plugin(plugin_name=TACTILE, active=True)
    inst.config = config
    sens = spec.add_sensor(name=name, type=mujoco.mjtSensor.mjSENS_PLUGIN,
                           objtype=mujoco.mjtObj.mjOBJ_SITE, objname=site)
    sens.plugin.plugin_name = TACTILE
    sens.plugin.active = True
    sens.plugin.id = inst
    return sens
