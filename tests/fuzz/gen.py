"""Scene generator of the difftac fuzzer (docs/fuzz.md).

``make_case(seed, profile)`` returns a case: a dict that is all a run needs (plain JSON):

- ``xml``: an MJCF scene with one or two ``difftac.elastomer`` gels and 0-3 ``difftac.tactile``
  sensors per gel, over every documented config key of both plugins (docs/mjcf.md,
  docs/tactile.md): each key present or absent, with a typical value, a documented-valid extreme,
  and in some cases exactly one bad value, odd text (hexadecimal, padded, ``inf``) or random garbage;
- ``xml_plain``: the same scene without difftac (extension and plugin sensors removed), for the
  "is it the scene or is it difftac" question;
- ``actions``: the number of steps (3-8) and per step the controls (held, random within ctrlrange,
  or a jump to its edge) and an optional event: garbage into ``plugin_state`` or ``qpos`` through
  ``mj_setState``, ``mj_resetData``, ``mj_copyData``, a mocap jump;
- ``bad``: the one bad value, if any (``{"kind", "owner", "key", "value"}``), which should be a
  load error naming the owner (instance or sensor), the key and the value;
- ``tags``: what is odd about the scene, for the summary.

Everything comes from ``random.Random(seed)``: a seed is a reproducible case. The ``sample``
profile (the fixed sample in the default test run) keeps meshes small and images small, so that a
few hundred cases run in under two minutes; the ``full`` profile (the default) goes up to the
documented limits.
"""
import math
import random
from xml.sax.saxutils import quoteattr

NO_EXTREME = ("site", "shape", "coupling", "elastomer", "output", "optics_file")
DEFAULT_SIZE = [0.02075, 0.02525, 0.004]
GEOM_TYPES = ("plane", "sphere", "capsule", "ellipsoid", "cylinder", "box", "mesh")
OUTPUTS = ("rgb", "depth", "pressure", "shear", "markers", "force")
GEL_KEYS = ("site", "shape", "size", "resolution", "young", "poisson", "density", "damping",
            "mass_damping", "friction", "contact_stiffness", "contact_damping",
            "friction_stiffness", "contact_width", "contype", "conaffinity", "device", "coupling")
SENSOR_KEYS = ("elastomer", "output", "size", "pitch", "center", "background", "lighting",
               "optics_file", "markers", "marker_pitch")
STATE_GARBAGE = ("nan_all", "nan_one", "inf_one", "huge_one", "finite_node", "placed_nan",
                 "placed_two", "anchor_nan", "zeros", "random_all")
QPOS_GARBAGE = ("qpos_offset", "qpos_nan", "qvel_huge")


def fmt(r, x):
    """A number as MJCF text, in one of several spellings."""
    if isinstance(x, int):
        return str(x)
    f = r.choice(("%g", "%.17g", "%.6e", "%r"))
    t = (f % x) if f != "%r" else repr(float(x))
    # a spelling that rounds (0.49999999999 as "%g" is 0.5) would change the value's validity
    return t if float(t) == x else repr(float(x))


def loguni(r, a, b):
    return math.exp(r.uniform(math.log(a), math.log(b)))


def garbage(r):
    """Random text: printable ASCII, some Unicode, sometimes empty-looking or very long."""
    k = r.random()
    if k < 0.1:
        return " "
    if k < 0.2:
        return "x" * r.randint(200, 3000)
    alphabet = ("abcdefghijklmnopqrstuvwxyz0123456789 .,;:-+eE_/\\()[]{}#!?*%$'"
                "\u00e9\u00df\u2212\u00b5\u4e2d")
    return "".join(r.choice(alphabet) for _ in range(r.randint(1, 24)))


def odd_number(r, x):
    """Text that strtod reads as a number but that is not a plain decimal number (issue 17:
    parsers must accept decimal numbers only)."""
    return r.choice(("0x10", "  %s  " % fmt(r, x), "\t%s" % fmt(r, x), "inf", "nan", "-nan",
                     "infinity", "0x1p-3", "1e99999"))


# ---- per-key value generators: (text, category); category in valid, extreme, bad --------------

def _gel_value(r, key, ctx, mode):
    """A value for gel key ``key``; ``mode`` is 'valid', 'extreme' or 'bad'."""
    prof = ctx["profile"]
    if key == "site":
        if mode == "bad":
            return r.choice(("nosuchsite", ctx["body_name"], "s" * 300))
        return ctx["site_name"]
    if key == "shape":
        if mode == "bad":
            return r.choice(("dome", "Box", "mesh", "sphere"))
        return r.choice(("box", ""))
    if key == "size":
        if mode == "bad":
            return r.choice(("0.01 0.01", "0.01 0.01 0", "-0.01 0.01 0.004", "0.01 0.01 nan",
                             "0.01 inf 0.004", "0.01 0.01 0.004 0.1", "a b c"))
        if mode == "extreme":
            ext = [(1e-6, 1e-6, 1e-6), (0.02, 0.02, 1e-300), (0.5, 0.5, 0.05),
                   (1e-300, 0.01, 0.004), (10.0, 10.0, 1.0), (0.02, 0.02, 1e-5)]
            if prof == "sample":  # a 1e-5 m thin pad takes seconds per step (issue 17 item 3)
                ext = ext[:5]
            return " ".join(fmt(r, v) for v in r.choice(ext))
        return " ".join(fmt(r, v) for v in ctx["size"])
    if key == "resolution":
        if mode == "bad":
            return r.choice(("0", "-0.001", "nan", "inf", "1e-7", "0.001 0.002"))
        if mode == "extreme":
            if prof == "sample":
                return fmt(r, r.choice((1.0, 1e300, ctx["size"][2] * 1.5)))
            return fmt(r, r.choice((1.0, 1e300, ctx["size"][2] * 1.5, 2e-4, 1.5e-4)))
        es = ctx.get("eff_size", ctx["size"])
        if len(es) == 3 and all(0 < x < 1e9 for x in es):
            # the generator's resolution, relative to the size actually used
            return fmt(r, ctx["resolution"] * max(es) / max(ctx["size"]))
        return fmt(r, ctx["resolution"])
    if key == "young":
        if mode == "bad":
            return r.choice(("0", "-3e5", "nan", "inf", "1e400", "3e5Pa"))
        if mode == "extreme":
            if prof == "sample":
                return fmt(r, r.choice((1e-300, 1e-6, 1.0, 1e300)))
            return fmt(r, r.choice((1e-300, 1e-6, 1.0, 1e10, 1e13, 1e300)))
        return fmt(r, loguni(r, 1e4, 3e6))
    if key == "poisson":
        if mode == "bad":
            return r.choice(("0.5", "-1", "0.7", "nan", "-1.5", "1"))
        if mode == "extreme":
            return fmt(r, r.choice((-0.999999, 0.4999999, 0.0, -0.5, 0.49999999999)))
        return fmt(r, r.uniform(0.0, 0.49))
    if key == "density":
        if mode == "bad":
            return r.choice(("0", "-1000", "nan", "inf"))
        if mode == "extreme":
            return fmt(r, r.choice((1e-300, 1e-6, 1e6, 1e9, 1e300)))
        return fmt(r, loguni(r, 300, 3000))
    if key == "damping":
        if mode == "bad":
            return r.choice(("-0.5", "-2", "nan", "inf"))
        if mode == "extreme":
            return fmt(r, r.choice((1.0, 1e3, 1e300, 1e-300)))
        return r.choice(("-1", "0", fmt(r, loguni(r, 1e-6, 1e-3))))
    if key == "mass_damping":
        if mode == "bad":
            return r.choice(("-0.5", "-3", "nan", "inf"))
        if mode == "extreme":
            return fmt(r, r.choice((1e5, 1e9, 1e300, 1e-300)))
        return r.choice(("-1", "0", fmt(r, loguni(r, 1, 1000))))
    if key == "friction":
        if mode == "bad":
            return r.choice(("-1", "nan", "inf", "0.5 0.5"))
        if mode == "extreme":
            return fmt(r, r.choice((1e6, 1e300, 1e-300)))
        return fmt(r, r.uniform(0, 2))
    if key == "contact_stiffness":
        if mode == "bad":
            return r.choice(("0", "-3", "nan", "inf"))
        if mode == "extreme":
            return fmt(r, r.choice((1e-300, 1e-3, 1e14, 1e300)))
        return r.choice(("-1", fmt(r, loguni(r, 1e7, 1e10))))
    if key == "contact_damping":
        if mode == "bad":
            return r.choice(("-1", "nan", "inf"))
        if mode == "extreme":
            return fmt(r, r.choice((1e3, 1e6, 1e300)))
        return fmt(r, r.uniform(0, 2))
    if key == "friction_stiffness":
        if mode == "bad":
            return r.choice(("0", "-5", "nan", "inf"))
        if mode == "extreme":
            return fmt(r, r.choice((1e-300, 1e14, 1e300)))
        return r.choice(("-1", fmt(r, loguni(r, 1e6, 1e10))))
    if key == "contact_width":
        if mode == "bad":
            return r.choice(("0", "-1e-5", "nan", "inf"))
        if mode == "extreme":
            return fmt(r, r.choice((1e-300, 1.0, 1e300)))
        return r.choice(("-1", fmt(r, loguni(r, 1e-7, 1e-4))))
    if key in ("contype", "conaffinity"):
        if mode == "bad":
            return r.choice(("-1", "1.5", "x", "2147483648", "1e3"))
        if mode == "extreme":
            return r.choice(("0", "2147483647", "1073741824"))
        return r.choice(("0", "1", "1", "1", "2", "3"))
    if key == "device":
        if mode == "bad":
            return r.choice(("gpu", "cuda:", "cuda:-1", "cuda:99999999999", "CPU", "cuda:0x1"))
        if mode == "extreme":
            # documented values a CPU machine rejects (a load error naming the key) or steps slowly
            return r.choice(("cuda", "cuda:0", "cuda:3", "emu"))
        return r.choice(("auto", "cpu", ""))
    if key == "coupling":
        if mode == "bad":
            return r.choice(("implicit", "Substep", "none"))
        return r.choice(("substep", "explicit"))
    raise KeyError(key)


def _sensor_value(r, key, ctx, mode):
    prof = ctx["profile"]
    if key == "elastomer":
        if mode == "bad":
            return r.choice(("nosuchgel", "", ctx["site_name"]))
        return ctx["gel_name"]
    if key == "output":
        if mode == "bad":
            return r.choice(("foo", "RGB", "rgb depth", ""))
        return ctx["output"]
    if key == "size":
        if mode == "bad":
            return r.choice(("0 5", "-1 2", "4097 4096", "abc", "1.5 2", "320", "320 240 3"))
        if mode == "extreme":
            if prof == "sample":
                return r.choice(("1 1", "1 200", "200 1"))
            return r.choice(("1 1", "4096 1", "1 4096", "2048 2048"))
        return r.choice(("320 240", "160 120", "32 24", "64 48"))
    if key == "pitch":
        if mode == "bad":
            return r.choice(("0", "-6.5e-5", "nan", "inf"))
        if mode == "extreme":
            return fmt(r, r.choice((1e-300, 1e-9, 1.0, 1e300)))
        return fmt(r, loguni(r, 2e-5, 3e-4))
    if key == "center":
        if mode == "bad":
            return r.choice(("nan 0", "0", "0 0 0", "inf inf"))
        if mode == "extreme":
            return r.choice(("1e300 0", "0 -1e300", "1 1"))
        return "%s %s" % (fmt(r, r.uniform(-0.003, 0.003)), fmt(r, r.uniform(-0.003, 0.003)))
    if key == "background":
        if mode == "bad":
            return r.choice(("0.4 0.4", "nan 0 0", "0.4 0.4 0.4 0.4"))
        if mode == "extreme":
            return r.choice(("1e300 -1e300 0", "-5 5 0", "0 0 0"))
        return " ".join(fmt(r, r.uniform(0, 1)) for _ in range(3))
    if key == "lighting":
        if mode == "bad":
            return " ".join("0.1" for _ in range(r.choice((29, 31, 3))))
        if mode == "extreme":
            return " ".join(fmt(r, r.choice((1e300, -1e300, 0.0))) for _ in range(30))
        return " ".join(fmt(r, r.uniform(-0.3, 0.3)) for _ in range(30))
    if key == "optics_file":
        if mode == "bad":
            return r.choice(("@missing", "@dir", "@garbage", "@short"))
        return r.choice(("@valid", "@empty", "@comments"))
    if key == "markers":
        if mode == "bad":
            return r.choice(("0 0", "-1 3", "9", "9.5 7", "100000 100000"))
        if mode == "extreme":
            return r.choice(("1 1", "1 50", "40 40"))
        return r.choice(("9 7", "5 5", "3 4"))
    if key == "marker_pitch":
        if mode == "bad":
            return r.choice(("0", "-0.002", "nan"))
        if mode == "extreme":
            return fmt(r, r.choice((1e-300, 1e-6, 1.0)))
        return fmt(r, loguni(r, 5e-4, 3e-3))
    raise KeyError(key)


def _pick_values(r, keys, required, value_fn, ctx, bad_slot, tags, owner_kind):
    """Values for ``keys``: required ones always, others with probability 1/2, each an extreme
    with probability 0.12; ``bad_slot`` (kind, key) puts one bad/odd/garbage value in."""
    out = []
    bad = None
    for key in keys:
        include = key in required or r.random() < 0.5
        if bad_slot and bad_slot[1] == key:
            kind = bad_slot[0]
            if kind == "bad":
                v = value_fn(r, key, ctx, "bad")
            elif kind == "odd":
                v = odd_number(r, 1.0)
            else:
                v = garbage(r)
            if key == "optics_file" and v.startswith("@"):
                v = v  # resolved by the runner into a real path
            out.append((key, v))
            bad = {"kind": kind, "owner_kind": owner_kind, "key": key, "value": v}
            continue
        if not include:
            if key == "size":
                ctx["eff_size"] = DEFAULT_SIZE
            continue
        mode = "extreme" if r.random() < 0.12 else "valid"
        v = value_fn(r, key, ctx, mode)
        if key == "size" and owner_kind == "gel":
            try:
                ctx["eff_size"] = [float(t) for t in v.split()][:3]
            except ValueError:
                pass
        if mode == "extreme" and key not in NO_EXTREME:
            tags.append("extreme:%s.%s=%s" % (owner_kind, key, v[:24]))
        out.append((key, v))
    return out, bad


# ---- geometry ------------------------------------------------------------------------------------

def _mesh(r, name, prof):
    kind = r.choice(("tetra", "octa", "random", "random", "flat"))
    s = loguni(r, 0.002, 0.02)
    if kind == "tetra":
        pts = [(1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)]
    elif kind == "octa":
        pts = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
    elif kind == "flat":  # a thin slab: a nearly degenerate hull
        pts = [(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1e-3, 1e-3)]
    else:
        n = r.randint(8, 60 if prof == "sample" else 400)
        pts = []
        for _ in range(n):
            v = [r.gauss(0, 1) for _ in range(3)]
            nv = math.sqrt(sum(c * c for c in v)) or 1.0
            pts.append(tuple(c / nv for c in v))
    pts = [(x * s, y * s, z * s * r.choice((1, 1, 0.5, 2))) for (x, y, z) in pts]
    top = max(p[2] for p in pts)
    vert = " ".join("%.6g %.6g %.6g" % p for p in pts)
    return '<mesh name="%s" vertex="%s"/>' % (name, vert), top, kind


def _indenter(r, k, x0, prof, assets, tags):
    """One geom whose top is near z = 0 under the finger at x0; returns (xml, has_dof)."""
    t = r.choice(GEOM_TYPES)
    tags.append("geom:" + t)
    home = r.choice(("static", "static", "static", "free", "mocap"))
    if t == "plane":
        home = r.choice(("static", "mocap"))
    tilt = r.random() < 0.2
    euler = "0 0 0"
    xy = (x0 + r.uniform(-0.004, 0.004), r.uniform(-0.004, 0.004))
    big = r.random() < 0.05
    attrs = ""
    if t == "plane":
        size = "0.2 0.2 0.01"
        ztop, zpos = 0.0, 0.0
    elif t == "sphere":
        R = 100.0 if big else loguni(r, 0.001, 0.03)
        size = fmt(r, R)
        zpos = -R
    elif t == "capsule":
        rad, hl = loguni(r, 0.001, 0.01), loguni(r, 0.001, 0.02)
        size = "%s %s" % (fmt(r, rad), fmt(r, hl))
        if r.random() < 0.5:
            euler, zpos = "90 0 0", -rad
        else:
            zpos = -(rad + hl)
    elif t == "cylinder":
        rad = 100.0 if big else loguni(r, 0.001, 0.02)
        hl = loguni(r, 0.001, 0.02)
        size = "%s %s" % (fmt(r, rad), fmt(r, hl))
        if r.random() < 0.5 and not big:
            euler, zpos = "90 0 0", -rad
        else:
            zpos = -hl
    elif t == "ellipsoid":
        a = [loguni(r, 0.001, 0.02) for _ in range(3)]
        size = " ".join(fmt(r, v) for v in a)
        zpos = -a[2]
    elif t == "box":
        a = [loguni(r, 0.001, 0.03) for _ in range(3)]
        size = " ".join(fmt(r, v) for v in a)
        zpos = -a[2]
    else:  # mesh
        name = "mesh%d" % k
        mx, top, kind = _mesh(r, name, prof)
        tags.append("mesh:" + kind)
        assets.append(mx)
        size = None
        zpos = -top
        attrs = ' mesh="%s"' % name
    if tilt:
        euler = " ".join(fmt(r, r.uniform(-60, 60)) for _ in range(3))
        tags.append("tilted")
    if big:
        tags.append("huge-geom")
    con = ""
    if r.random() < 0.15:
        con = ' contype="%d" conaffinity="%d"' % (r.choice((0, 2)), r.choice((0, 2)))
    geom = '<geom type="%s"%s%s euler="%s"%s' % (
        t, (' size="%s"' % size) if size else "", attrs, euler, con)
    zpos += r.choice((0.0, 0.0, -0.0005, 0.0005))
    if home == "static":
        return '%s pos="%.6g %.6g %.6g"/>' % (geom, xy[0], xy[1], zpos), False
    mass = r.choice((1e-4, 0.01, 0.05, 1.0, 100.0))
    body = '<body name="ind%d" pos="%.6g %.6g %.6g"%s>' % (
        k, xy[0], xy[1], zpos, ' mocap="true"' if home == "mocap" else "")
    inner = ("<freejoint/>" if home == "free" else "") + geom + (
        ' mass="%s"/>' % fmt(r, mass) if home == "free" else "/>")
    tags.append("indenter:" + home)
    return body + inner + "</body>", home == "free"


def _finger(r, i, x0, h, prof, tags, actuators):
    """The body holding gel i's site; the gel's free face starts at ``gap`` above z = 0."""
    kind = r.choice(("slide", "slide", "slide", "slide", "slide3", "hinge", "free", "mocap",
                     "world", "ball"))
    tags.append("finger:" + kind)
    mass = r.choice((1e-4, 5e-4, 1e-3, 0.01, 0.05, 0.05, 0.2, 1.0, 10.0, 100.0))
    if mass < 1e-3:
        tags.append("light-finger")
    if mass >= 10:
        tags.append("heavy-finger")
    gap = r.choice((0.001, 0.0003, 0.0, 0.0, -0.0001, -0.0003, -0.001, -h / 2, 0.02))
    if gap < 0:
        tags.append("start-overlap")
    site_kind = r.choice(("down",) * 7 + ("random", "up", "tilted", "far", "nested", "offset"))
    if site_kind != "down":
        tags.append("site:" + site_kind)
    euler = {"down": "180 0 0", "up": "0 0 0", "tilted": "150 20 0",
             "random": " ".join("%.4g" % r.uniform(-180, 180) for _ in range(3))}.get(
                 site_kind, "180 0 0")
    site_pos = {"far": "0 0 0.5", "offset": "0.003 -0.002 0"}.get(site_kind, "0 0 0")
    z = h + gap + (0 if site_kind != "far" else -0.5)
    sname, bname = "s%d" % i, "finger%d" % i
    site = '<site name="%s" pos="%s" euler="%s"/>' % (sname, site_pos, euler)
    if site_kind == "nested":
        site = '<body name="nest%d" pos="0 0 0"><site name="%s" euler="%s"/></body>' % (
            i, sname, euler)
    con = ' contype="0" conaffinity="0"' if r.random() < 0.8 else ""
    geom = '<geom type="box" size="0.006 0.006 0.001" pos="0 0 0.001" mass="%s"%s/>' % (
        fmt(r, mass), con)
    damp = fmt(r, r.choice((0.0, 0.1, 2.0, 50.0)))
    joints = ""
    if kind == "slide":
        joints = '<joint name="j%d" type="slide" axis="0 0 1" damping="%s"/>' % (i, damp)
        actuators.append(('<position joint="j%d" kp="%s" ctrlrange="-0.01 0.01"/>'
                          % (i, fmt(r, loguni(r, 10, 1e4))), (-0.01, 0.01)))
    elif kind == "slide3":
        for ax, a in (("x", "1 0 0"), ("y", "0 1 0"), ("z", "0 0 1")):
            joints += '<joint name="j%d%s" type="slide" axis="%s" damping="%s"/>' % (i, ax, a, damp)
            actuators.append(('<position joint="j%d%s" kp="%s" ctrlrange="-0.005 0.005"/>'
                              % (i, ax, fmt(r, loguni(r, 10, 1e4))), (-0.005, 0.005)))
    elif kind == "hinge":
        joints = ('<joint name="j%d" type="hinge" axis="0 1 0" pos="0 0 0.05" damping="%s"/>'
                  % (i, damp))
        actuators.append(('<position joint="j%d" kp="%s" ctrlrange="-0.3 0.3"/>'
                          % (i, fmt(r, loguni(r, 1, 1e3))), (-0.3, 0.3)))
    elif kind == "free":
        joints = "<freejoint/>"
    elif kind == "ball":
        joints = '<joint name="j%d" type="ball" damping="%s"/>' % (i, damp)
    if kind == "world":
        # the site directly on the world body: a static gel
        return None, '<site name="%s" pos="%.6g 0 %.6g" euler="%s"/>' % (sname, x0, z, euler), \
            sname, "world"
    grav = ' gravcomp="1"' if r.random() < 0.5 else ""
    body = '<body name="%s" pos="%.6g 0 %.6g"%s%s>%s%s%s</body>' % (
        bname, x0, z, ' mocap="true"' if kind == "mocap" else "", grav,
        joints if kind != "mocap" else "", geom, site)
    return bname, body, sname, kind


SAMPLE_MAX_NODES = 20000


def _cap_nodes(vals, cap):
    """The sample profile: a valid size and resolution that would mesh more than ``cap`` nodes
    get a coarser resolution (a big mesh is seconds to minutes of load, issue 17 item 3)."""
    d = dict(vals)
    try:
        sz = [float(t) for t in d["size"].split()]
        res = float(d["resolution"])
    except (KeyError, ValueError):
        return
    if len(sz) != 3 or not all(math.isfinite(x) and x > 0 for x in sz) or \
            not (math.isfinite(res) and res > 0):
        return
    n = 1.0
    for x in sz:
        n *= max(1, round(x / res)) + 1
    if n > cap:
        for j, (k, v) in enumerate(vals):
            if k == "resolution":
                vals[j] = (k, repr(max(sz) / 10))


# ---- the case ------------------------------------------------------------------------------------

def make_case(seed, profile="full"):
    r = random.Random(seed)
    tags = []
    ngel = 1 if r.random() < 0.85 else 2
    timestep = r.choice((0.002,) * 6 + (0.001, 0.0005, 1e-4, 0.005, 0.01))
    if timestep != 0.002:
        tags.append("timestep:%g" % timestep)
    integrator = r.choice(("Euler",) * 4 + ("implicitfast", "implicit", "RK4"))
    # at most one bad value per case: which owner, which key, what kind
    bad_slot = None
    p = r.random()
    if p < 0.30:
        kind = r.choice(("bad", "bad", "bad", "odd", "garbage"))
        if r.random() < 0.7:
            key = r.choice(GEL_KEYS)
            if kind == "odd" and key in ("site", "shape", "device", "coupling"):
                kind = "garbage"
            bad_slot = ("gel", 0, kind, key)
        else:
            key = r.choice(SENSOR_KEYS)
            if kind == "odd" and key in ("elastomer", "output", "optics_file"):
                kind = "garbage"
            bad_slot = ("sensor", 0, kind, key)
    mutate_xml = r.random() < 0.02

    assets, world, actuators, ext_instances, sensors = [], [], [], [], []
    bad = None
    free_bodies = []
    for g in range(ngel):
        x0 = 0.06 * g
        size = [loguni(r, 0.005, 0.025), loguni(r, 0.005, 0.025), loguni(r, 0.001, 0.006)]
        if profile == "sample":
            res = max(min(size) / r.uniform(1, 4), max(size) / 10)
        else:
            res = max(min(size) / r.uniform(1, 6), max(size) / 40)
        bname, body, sname, fkind = _finger(r, g, x0, size[2], profile, tags, actuators)
        world.append(body)
        if fkind == "free":
            free_bodies.append(bname)
        gname = "gel%d" % g
        ctx = {"profile": profile, "site_name": sname, "body_name": bname or "world",
               "size": size, "resolution": res, "gel_name": gname}
        slot = None
        if bad_slot and bad_slot[0] == "gel" and g == 0:
            slot = (bad_slot[2], bad_slot[3])
        vals, b = _pick_values(r, GEL_KEYS, ("site",), _gel_value, ctx, slot, tags, "gel")
        if b:
            b["owner"] = gname
            bad = b
        # keep a sample case fast: a documented default resolution on a large pad is slow
        if profile == "sample" and not any(k == "resolution" for k, _ in vals):
            vals.append(("resolution", fmt(r, res)))
        if not any(k == "size" for k, _ in vals) and profile == "sample":
            vals.append(("size", " ".join(fmt(r, v) for v in size)))
        if profile == "sample":
            _cap_nodes(vals, SAMPLE_MAX_NODES)
        ext_instances.append((gname, vals))
        # sensors of this gel
        nsens = r.choice((0, 0, 1, 1, 2, 3))
        if bad_slot and bad_slot[0] == "sensor" and g == 0:
            nsens = max(nsens, 1)
        for s in range(nsens):
            out = r.choice(OUTPUTS)
            sctx = dict(ctx, output=out)
            sslot = None
            if bad_slot and bad_slot[0] == "sensor" and g == 0 and s == 0:
                sslot = (bad_slot[2], bad_slot[3])
            svals, sb = _pick_values(r, SENSOR_KEYS, ("elastomer", "output"), _sensor_value,
                                     sctx, sslot, tags, "sensor")
            sens_name = "t%d_%d" % (g, s)
            if sb:
                sb["owner"] = sens_name
                bad = sb
            if profile == "sample" and not any(k == "size" for k, _ in svals):
                svals.append(("size", r.choice(("32 24", "64 48", "16 12"))))
            obj = r.random()
            if obj < 0.7:
                objattr = ' objtype="site" objname="%s"' % sname
            elif obj < 0.9:
                objattr = ""
            else:
                objattr = ' objtype="site" objname="odd_site"'
                tags.append("sensor-site-mismatch")
            sensors.append((sens_name, objattr, svals))
        # indenters under this gel
        for k in range(r.choice((0, 1, 1, 1, 2, 3))):
            x, has_dof = _indenter(r, 10 * g + k, x0, profile, assets, tags)
            world.append(x)
    if r.random() < 0.3:
        world.append('<geom type="plane" size="0.3 0.3 0.01" pos="0 0 %s"/>'
                     % fmt(r, r.choice((-0.05, -0.01, 0.0))))
        tags.append("floor")
    world.append('<site name="odd_site" pos="0.1 0.1 0.1"/>')

    # actions
    nstep = r.randint(3, 8)
    steps = []
    event_at = r.randrange(nstep) if r.random() < 0.35 else -1
    for k in range(nstep):
        ctrl = []
        for _, (lo, hi) in actuators:
            c = r.random()
            if k == 0 or c < 0.4:
                ctrl.append(None)  # hold
            elif c < 0.75:
                ctrl.append(r.uniform(lo, hi))
            else:
                ctrl.append(r.choice((lo, hi)))
        if any(c in (lo, hi) for c, (_, (lo, hi)) in zip(ctrl, actuators)):
            if "ctrl-jump" not in tags:
                tags.append("ctrl-jump")
        ev = None
        if k == event_at:
            e = r.random()
            if e < 0.45:
                ev = {"kind": "plugin_state", "what": r.choice(STATE_GARBAGE),
                      "frac": r.random(), "scale": r.choice((1e-3, 1e-2, 1.0, 1e30))}
            elif e < 0.6:
                ev = {"kind": "qpos", "what": r.choice(QPOS_GARBAGE), "frac": r.random()}
            elif e < 0.75:
                ev = {"kind": "reset"}
            elif e < 0.85:
                ev = {"kind": "copy"}
            elif e < 0.95:
                ev = {"kind": "mocap", "dz": r.choice((-0.005, -0.001, 0.01))}
            else:
                ev = {"kind": "forward"}
            tags.append("event:" + ev["kind"] + (":" + ev["what"] if "what" in ev else ""))
        steps.append({"ctrl": ctrl, "event": ev})

    def render(with_difftac):
        out = ['<mujoco model="fuzz-%d">' % seed,
               '  <option timestep="%g" integrator="%s"/>' % (timestep, integrator)]
        if assets:
            out.append("  <asset>" + "".join(assets) + "</asset>")
        if with_difftac:
            out.append('  <extension>\n    <plugin plugin="difftac.elastomer">')
            for gname, vals in ext_instances:
                out.append('      <instance name="%s">' % gname)
                for k, v in vals:
                    out.append('        <config key="%s" value=%s/>' % (k, quoteattr(v)))
                out.append("      </instance>")
            out.append("    </plugin>")
            if sensors:
                out.append('    <plugin plugin="difftac.tactile"/>')
            out.append("  </extension>")
        out.append("  <worldbody>")
        out.extend("    " + w for w in world)
        out.append("  </worldbody>")
        if actuators:
            out.append("  <actuator>" + "".join(a for a, _ in actuators) + "</actuator>")
        if with_difftac and sensors:
            out.append("  <sensor>")
            for sname, objattr, svals in sensors:
                out.append('    <plugin name="%s" plugin="difftac.tactile"%s>' % (sname, objattr))
                for k, v in svals:
                    out.append('      <config key="%s" value=%s/>' % (k, quoteattr(v)))
                out.append("    </plugin>")
            out.append("  </sensor>")
        out.append("</mujoco>")
        return "\n".join(out) + "\n"

    xml = render(True)
    if mutate_xml:
        # random garbage inside the extension block's attribute values
        tags.append("xml-mutated")
        lo = xml.find("<extension>")
        hi = xml.find("</extension>")
        if lo >= 0 and hi > lo:
            chars = list(xml)
            for _ in range(r.randint(1, 4)):
                j = r.randrange(lo, hi)
                if chars[j] not in '<>"/=':
                    chars[j] = r.choice("0123456789.e-+ x")
            xml = "".join(chars)
    return {"seed": seed, "profile": profile, "xml": xml, "xml_plain": render(False),
            "steps": steps, "bad": bad, "tags": sorted(set(tags)), "ngel": ngel,
            "gels": [g for g, _ in ext_instances], "sensors": [s for s, _, _ in sensors]}
