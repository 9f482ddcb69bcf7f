#!/usr/bin/env python3
"""difftac fuzzer: random MJCF scenes over every config key of difftac.elastomer and
difftac.tactile, each loaded and stepped 3-8 steps in its own process (fork) under a wall-time and
an address-space limit, classified (docs/fuzz.md).

    python tests/fuzz/fuzz.py --minutes 20          # seeds 0, 1, 2, ... for 20 minutes
    python tests/fuzz/fuzz.py --seeds 100:200       # exactly these seeds
    python tests/fuzz/fuzz.py --replay out/fuzz/<run>/seed_123/case.json   # one case, in-process
    python tests/fuzz/fuzz.py --seeds 123:124 --show   # print the case's XML and actions

Exit status 1 if any case crashed, hung, or ended non-finite where the same scene without
difftac is stable ("nonfinite-difftac"); 0 otherwise. Failing inputs are kept under out/fuzz/.
"""
import argparse
import collections
import json
import os
import pathlib
import select
import signal
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import gen  # noqa: E402

# outcome classes, in the order of the summary table; FAILING make the exit status 1
CLASSES = ("ok", "warning", "load-error", "load-error-unnamed", "bad-accepted", "step-error",
           "nonfinite-scene", "nonfinite-difftac", "crash", "hang")
FAILING = ("crash", "hang", "nonfinite-difftac")
KEEP = FAILING + ("load-error-unnamed", "bad-accepted", "step-error")
SLOW_S = 10.0  # issue 17: no case should take longer (unless its mesh is above a documented size)

OPTICS_VALID = ("background 0.45 0.47 0.52\nlighting " + " ".join(["0.01"] * 30) + "\n")


def library_path():
    if os.environ.get("DIFFTAC_LIB"):
        return os.environ["DIFFTAC_LIB"]
    build = os.environ.get("DTAC_BUILD_DIR", "build")
    p = pathlib.Path(build)
    if not p.is_absolute():
        p = ROOT / p
    return str(p / "libdifftac.so")


# ---- one case, inside the child --------------------------------------------------------------

def _files(scratch):
    """The optics files a case may name (@valid, @empty, ...), created once per scratch folder."""
    d = pathlib.Path(scratch)
    files = {"@valid": d / "optics_valid.txt", "@empty": d / "optics_empty.txt",
             "@comments": d / "optics_comments.txt", "@garbage": d / "optics_garbage.txt",
             "@short": d / "optics_short.txt", "@dir": d, "@missing": d / "no_such_file.txt"}
    if not files["@valid"].exists():
        files["@valid"].write_text(OPTICS_VALID)
        files["@empty"].write_text("")
        files["@comments"].write_text("# only a comment\n\n# and another\n")
        files["@garbage"].write_bytes(bytes(range(256)) * 8)
        files["@short"].write_text("background 0.1 0.2\nlighting 1 2 3\n")
    return {k: str(v) for k, v in files.items()}


def resolve_xml(xml, scratch):
    for k, v in _files(scratch).items():
        xml = xml.replace('value="%s"' % k, 'value="%s"' % v)
    return xml


def _finite_report(m, d, mujoco, np):
    bad = []
    for name in ("qpos", "qvel", "sensordata", "plugin_state"):
        a = getattr(d, name)
        if a.size and not np.all(np.isfinite(a)):
            bad.append(name)
        elif name in ("qpos", "qvel") and a.size and np.max(np.abs(a)) > 1e10:
            bad.append(name + ">1e10")
    W = mujoco.mjtWarning
    for w in ("mjWARN_BADQPOS", "mjWARN_BADQVEL", "mjWARN_BADQACC"):
        if d.warning[getattr(W, w)].number > 0:
            bad.append(w[7:].lower() + "(mujoco reset)")
    return bad


def run_case(case, plain=False, scratch=".", progress=None):
    """Loads and steps one case in this process; returns a result dict (no classification).
    ``progress(dict)`` is told the stage reached (so that a hang says where it hung)."""
    import mujoco
    import numpy as np
    res = {"stage": "load", "nonfinite": [], "nonfinite_step": -1, "error": None}
    xml = resolve_xml(case["xml_plain" if plain else "xml"], scratch)
    t0 = time.time()
    try:
        m = mujoco.MjModel.from_xml_string(xml)
        res["stage"] = "makedata"
        d = mujoco.MjData(m)
    except Exception as e:  # ValueError from the compiler, FatalError from mju_error
        res["error"] = "%s: %s" % (type(e).__name__, e)
        res["load_s"] = time.time() - t0
        return res
    res["load_s"] = time.time() - t0
    res["stage"] = "step"
    res["nplugin"] = int(m.nplugin)
    res["npluginstate"] = int(m.npluginstate)
    if progress:
        progress({"stage": "step", "step": 0, "load_s": res["load_s"],
                  "npluginstate": res["npluginstate"]})
    full = mujoco.mjtState.mjSTATE_FULLPHYSICS
    nstate = mujoco.mj_stateSize(m, full)
    try:
        for k, st in enumerate(case["steps"]):
            for a, c in enumerate(st["ctrl"][:m.nu]):
                if c is not None:
                    d.ctrl[a] = c
            ev = st.get("event") if not plain or (st.get("event") or {}).get("kind") != \
                "plugin_state" else None
            if ev:
                d = _event(m, d, ev, mujoco, np, full, nstate)
            mujoco.mj_step(m, d)
            if progress:
                progress({"stage": "step", "step": k + 1, "load_s": res["load_s"],
                          "npluginstate": res["npluginstate"], "t": time.time() - t0})
            bad = _finite_report(m, d, mujoco, np)
            if bad and not res["nonfinite"]:
                res["nonfinite"] = bad
                res["nonfinite_step"] = k
        res["stage"] = "done"
    except Exception as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    res["wall_s"] = time.time() - t0
    return res


def _event(m, d, ev, mujoco, np, full, nstate):
    kind = ev["kind"]
    if kind == "plugin_state" and m.npluginstate:
        mujoco.mj_forward(m, d)
        s = np.zeros(nstate)
        mujoco.mj_getState(m, d, s, full)
        ps = mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_PLUGIN)
        # the plugin state sits at the end of FULLPHYSICS (after time, qpos, qvel, act, ...)
        off = nstate - ps
        seg = s[off:]
        n = len(seg)
        i = min(n - 1, int(ev["frac"] * n))
        what, scale = ev["what"], ev.get("scale", 1.0)
        # layout of one gel (docs/mjcf.md, State): x (3 nnode), v (3 nnode), anchors, placed flag
        if what == "nan_all":
            seg[:] = np.nan
        elif what == "nan_one":
            seg[i] = np.nan
        elif what == "inf_one":
            seg[i] = np.inf
        elif what == "huge_one":
            seg[i] = 1e300
        elif what == "finite_node":
            seg[i] += scale
        elif what == "placed_nan":
            seg[n - 1] = np.nan
        elif what == "placed_two":
            seg[n - 1] = 2.0
        elif what == "anchor_nan":
            seg[max(0, n - 2 - int(ev["frac"] * min(n - 1, 64)))] = np.nan
        elif what == "zeros":
            seg[:] = 0
        elif what == "random_all":
            rng = np.random.default_rng(int(ev["frac"] * 1e9))
            seg[:] = rng.normal(0, scale, n)
        s[off:] = seg
        mujoco.mj_setState(m, d, s, full)
    elif kind == "qpos" and m.nq:
        i = min(m.nq - 1, int(ev["frac"] * m.nq))
        if ev["what"] == "qpos_offset":
            d.qpos[i] += 0.01
        elif ev["what"] == "qpos_nan":
            d.qpos[i] = np.nan
        elif m.nv:
            d.qvel[min(m.nv - 1, i)] = 1e6
    elif kind == "reset":
        mujoco.mj_resetData(m, d)
    elif kind == "copy":
        d2 = mujoco.MjData(m)
        mujoco.mj_copyData(d2, m, d)
        d = d2
    elif kind == "mocap" and m.nmocap:
        d.mocap_pos[:, 2] += ev["dz"]
    elif kind == "forward":
        mujoco.mj_forward(m, d)
        mujoco.mj_forward(m, d)
    return d


# ---- running a case in its own process -------------------------------------------------------

def _vmsize():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu_seconds(pid):
    """user + system CPU seconds of a running child (0 if it cannot be read)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Runner:
    """Forks one child per case (the parent has libmujoco and libdifftac loaded already, so a
    child starts in about a millisecond), with RLIMIT_AS and a wall-time limit."""

    def __init__(self, timeout, mem_mb, scratch):
        import mujoco
        self.mujoco = mujoco
        mujoco.mj_loadPluginLibrary(library_path())
        import numpy  # noqa: F401  (imported before forking, once)
        self.timeout = timeout
        self.mem = _vmsize() + mem_mb * (1 << 20)
        self.scratch = pathlib.Path(scratch)
        self.scratch.mkdir(parents=True, exist_ok=True)
        _files(self.scratch)
        self.running = {}  # pid -> (fd, t0, job, logpath, buf)

    def start(self, job):
        case, plain = job["case"], job["plain"]
        log = self.scratch / ("log_%d_%d.txt" % (case["seed"], int(plain)))
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            try:
                os.close(rfd)
                import resource
                resource.setrlimit(resource.RLIMIT_AS, (self.mem, self.mem))
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                fd = os.open(str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.chdir(str(self.scratch))  # MUJOCO_LOG.TXT lands there
                import faulthandler
                faulthandler.enable()
                sys.stdout = os.fdopen(1, "w", buffering=1)
                def progress(p):
                    os.write(wfd, (json.dumps(p) + "\n").encode())
                res = run_case(case, plain, str(self.scratch), progress)
                os.write(wfd, (json.dumps(res) + "\n").encode())
            except BaseException as e:  # noqa: BLE001
                try:
                    os.write(wfd, ("\n" + json.dumps({"stage": "child", "error": repr(e),
                                                     "nonfinite": []}) + "\n").encode())
                except Exception:
                    pass
            finally:
                os._exit(0)
        os.close(wfd)
        self.running[pid] = [rfd, time.time(), job, log, b""]
        return pid

    def poll(self, wait=0.05):
        """Returns the jobs that finished: list of (job, raw result dict)."""
        done = []
        fds = {v[0]: pid for pid, v in self.running.items()}
        if fds:
            r, _, _ = select.select(list(fds), [], [], wait)
            for fd in r:
                pid = fds[fd]
                chunk = os.read(fd, 1 << 20)
                if chunk:
                    self.running[pid][4] += chunk
                else:
                    done.append(pid)
        now = time.time()
        out = []
        for pid in list(self.running):
            fd, t0, job, log, buf = self.running[pid]
            # the limit is on the child's CPU time (a shared, loaded machine or nice 19 must not
            # turn slow into "hang"), with a wall-time cap of 3x for a child that blocks
            cpu = _cpu_seconds(pid)
            timed_out = cpu > self.timeout or now - t0 > 3 * self.timeout
            if pid not in done and not timed_out:
                continue
            if timed_out and pid not in done:
                os.kill(pid, signal.SIGKILL)
            _, status, ru = os.wait4(pid, 0)
            cpu = ru.ru_utime + ru.ru_stime
            os.close(fd)
            del self.running[pid]
            res = {}
            lines = [ln for ln in buf.decode(errors="replace").split("\n") if ln.strip()]
            if lines:
                try:
                    res = json.loads(lines[-1])
                except ValueError:
                    res = {}
            if res.get("stage") == "step" and "nonfinite" not in res:
                res = {"progress": res}  # only a progress line: the case did not finish
            res["elapsed_s"] = now - t0
            res["cpu_s"] = cpu
            if timed_out and pid not in done:
                res["hang"] = True
            elif os.WIFSIGNALED(status):
                res["signal"] = os.WTERMSIG(status)
            elif "nonfinite" not in res:
                res["signal"] = -1  # exited without a result (os._exit from C?)
                res["exit"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            try:
                text = log.read_text(errors="replace")
                res["log"] = text[-6000:]
                # a sanitizer's report (a build with -fsanitize, docs/fuzz.md): its first lines
                for pat in ("runtime error", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer"):
                    i = text.find(pat)
                    if i >= 0:
                        i = text.rfind("\n", 0, i) + 1
                        res["sanitizer"] = "\n".join(text[i:].splitlines()[:14])
                        break
                log.unlink()
            except OSError:
                res["log"] = ""
            out.append((job, res))
        return out


def _warnings(log):
    return [ln.strip() for ln in log.splitlines() if ln.startswith("WARNING")]


def _names_value(msg, value):
    """Whether an error message shows the bad value (as given, or as the number it reads as)."""
    import re
    v = value.strip()
    if not v:
        return True  # an empty or blank value: nothing to show
    if v.startswith("@"):
        return "'/" in msg  # an optics file named by the runner: its path
    if v in msg or v[:40] in msg:
        return True
    # a vector key may name the one bad component ("key 'size' has value -0.01")
    nums = []
    for tok in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan", msg):
        try:
            nums.append(float(tok))
        except ValueError:
            pass
    for t in v.split():
        try:
            x = float(t)
        except ValueError:
            continue
        if t in msg:
            return True
        for y in nums:
            if y == x or (x != 0 and abs(y - x) <= 1e-5 * abs(x)):
                return True
    return False


def classify(case, res):
    """The outcome class of a main run (before the plain-scene check)."""
    info = {}
    if res.get("hang"):
        return "hang", info
    if res.get("signal"):
        return "crash", info
    err = res.get("error")
    bad = case.get("bad")
    if res.get("stage") in ("load", "makedata") and err:
        info["error_stage"] = res["stage"]
        if "difftac.elastomer instance '" in err or "difftac.tactile sensor '" in err:
            # a difftac load error: it names the owner (instance or sensor) and the key, and when
            # it is about the value we put in, that value. (An error about another key comes
            # first sometimes: a cuda device on a CPU machine; then that key must be named.)
            owner_ok = True
            key_ok = value_ok = True
            if bad and ("'%s'" % bad["key"]) in err:
                owner_ok = ("'%s'" % bad["owner"]) in err
                value_ok = _names_value(err, bad["value"])
            else:
                # a valid-looking config rejected: the message must still name an owner and a key
                owner_ok = any(("'%s'" % o) in err for o in case["gels"] + case["sensors"])
                key_ok = any(("'%s'" % k) in err for k in gen.GEL_KEYS + gen.SENSOR_KEYS) or \
                    "objname" in err or "option 'integrator'" in err
            info.update(named_owner=owner_ok, named_key=key_ok, named_value=value_ok)
            if not (owner_ok and key_ok and value_ok):
                return "load-error-unnamed", info
        return "load-error", info
    if res.get("stage") == "child":
        return "step-error", info
    if bad and bad["kind"] in ("bad", "odd") and "xml-mutated" not in case["tags"]:
        # a documented-bad value (or odd number text) that loaded
        return "bad-accepted", info
    if res.get("nonfinite"):
        return "nonfinite", info
    if err:
        return "step-error", info
    if _warnings(res.get("log", "")):
        return "warning", info
    return "ok", info


# ---- the driver ------------------------------------------------------------------------------

def summarize(results, elapsed):
    counts = collections.Counter(r["class"] for r in results)
    flags = collections.Counter()
    for r in results:
        for f in r.get("flags", []):
            flags[f] += 1
    # per failing or kept class, the three simplest cases (fewest tags): where to start
    examples = {}
    for c in KEEP:
        rs = sorted((r for r in results if r["class"] == c), key=lambda r: (len(r["tags"]),
                                                                            r["seed"]))[:3]
        if rs:
            examples[c] = [{"seed": r["seed"], "tags": r["tags"],
                            "what": (r.get("nonfinite") and "%s at step %d" % (
                                ",".join(r["nonfinite"]), r["nonfinite_step"])) or
                            r.get("error", "")[:160] or r.get("where") or
                            ("signal %s" % r.get("signal")),
                            "first_warning": (r.get("warnings") or [""])[0][:160]}
                           for r in rs]
    return {"cases": len(results), "elapsed_s": round(elapsed, 1), "examples": examples,
            "counts": {c: counts.get(c, 0) for c in CLASSES}, "flags": dict(flags),
            "failing": {c: sorted(r["seed"] for r in results if r["class"] == c)
                        for c in FAILING},
            "kept": {c: sorted(r["seed"] for r in results if r["class"] == c) for c in KEEP
                     if c not in FAILING}}


def table(summary):
    lines = ["%-20s %7s" % ("class", "cases")]
    for c in CLASSES:
        lines.append("%-20s %7d%s" % (c, summary["counts"][c], "  <- fails" if c in FAILING and
                                      summary["counts"][c] else ""))
    lines.append("%-20s %7d" % ("total", summary["cases"]))
    for f, n in sorted(summary["flags"].items()):
        lines.append("  flag %-15s %7d" % (f, n))
    return "\n".join(lines)


def _keep(outdir, case, rec):
    d = outdir / ("seed_%d" % case["seed"])
    d.mkdir(parents=True, exist_ok=True)
    (d / "case.xml").write_text(case["xml"])
    (d / "plain.xml").write_text(case["xml_plain"])
    (d / "case.json").write_text(json.dumps({"case": case, "outcome": rec}, indent=1))


def run_many(seeds, profile="full", jobs=2, timeout=30.0, mem_mb=3000, minutes=None,
             outdir=None, progress=True, check_plain=True):
    """Runs the cases of ``seeds`` (an iterable; with ``minutes``, stops starting new ones when the
    time is up) and returns (list of per-case records, summary)."""
    t0 = time.time()
    outdir = pathlib.Path(outdir).resolve() if outdir else None
    scratch = (outdir or (ROOT / "out" / "fuzz")) / ("scratch_%d" % os.getpid())
    runner = Runner(timeout, mem_mb, scratch)
    seeds = iter(seeds)
    queue = collections.deque()  # pending jobs (plain reruns first)
    results, cases = [], {}
    last = 0.0
    exhausted = False
    while True:
        while len(runner.running) < jobs:
            if queue:
                runner.start(queue.popleft())
                continue
            if exhausted or (minutes is not None and time.time() - t0 > 60 * minutes):
                exhausted = True
                break
            try:
                seed = next(seeds)
            except StopIteration:
                exhausted = True
                break
            case = gen.make_case(seed, profile)
            cases[seed] = {"case": case}
            runner.start({"case": case, "plain": False})
        if not runner.running and not queue:
            break
        for job, res in runner.poll():
            case = job["case"]
            ent = cases[case["seed"]]
            if not job["plain"]:
                cls, info = classify(case, res)
                rec = {"seed": case["seed"], "class": cls, "tags": case["tags"],
                       "elapsed_s": round(res.get("elapsed_s", 0), 3),
                       "cpu_s": round(res.get("cpu_s", 0), 2),
                       "error": (res.get("error") or "")[:500],
                       "nonfinite": res.get("nonfinite", []),
                       "nonfinite_step": res.get("nonfinite_step", -1),
                       "signal": res.get("signal"), "warnings": _warnings(res.get("log", ""))[:5],
                       "flags": []}
                rec.update(info)
                if max(rec["cpu_s"], rec["elapsed_s"] if cls != "hang" else 0) > SLOW_S and \
                        rec["cpu_s"] > SLOW_S / 2:
                    rec["flags"].append("slow>%gs" % SLOW_S)
                if res.get("sanitizer"):
                    rec["sanitizer"] = res["sanitizer"]
                if cls in ("crash", "hang"):
                    rec["log_tail"] = res.get("log", "")[-3000:]
                    # where it was: "load" (no progress line) or the last step it finished
                    rec["where"] = res.get("progress", {"stage": "load"})
                ent["rec"] = rec
                if cls == "nonfinite":
                    if check_plain:
                        queue.appendleft({"case": case, "plain": True})
                        continue
                    rec["class"] = "nonfinite-difftac"
            else:
                rec = ent["rec"]
                stable = not res.get("nonfinite") and not res.get("error") and \
                    not res.get("hang") and not res.get("signal")
                rec["plain"] = {"nonfinite": res.get("nonfinite", []),
                                "error": (res.get("error") or "")[:300],
                                "hang": bool(res.get("hang")), "signal": res.get("signal")}
                rec["class"] = "nonfinite-difftac" if stable else "nonfinite-scene"
            rec = ent["rec"]
            results.append(rec)
            if outdir and rec["class"] in KEEP:
                _keep(outdir, case, rec)
            del cases[case["seed"]]
        if progress and time.time() - last > 5:
            last = time.time()
            c = collections.Counter(r["class"] for r in results)
            print("[fuzz] %5d cases %6.0f s  " % (len(results), time.time() - t0) +
                  " ".join("%s %d" % (k, c[k]) for k in CLASSES if c.get(k)), file=sys.stderr,
                  flush=True)
    results.sort(key=lambda r: r["seed"])
    try:
        for f in scratch.iterdir():
            if f.is_file():
                f.unlink()
        scratch.rmdir()
    except OSError:
        pass
    return results, summarize(results, time.time() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, help="run seeds from --start on for this long")
    ap.add_argument("--seeds", help="A:B, the seeds A..B-1")
    ap.add_argument("--start", type=int, default=0, help="first seed with --minutes (default 0)")
    ap.add_argument("--profile", default="full", choices=("full", "sample"))
    ap.add_argument("--jobs", type=int, default=2, help="cases at once (default 2)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="CPU-time limit per case, s (wall-time cap 3x); over it is a hang "
                         "(default 30)")
    ap.add_argument("--mem-mb", type=int, default=3000,
                    help="address space a case may add to the parent's, MiB (default 3000)")
    ap.add_argument("--out", help="output folder (default out/fuzz/<date-time>)")
    ap.add_argument("--no-plain", action="store_true",
                    help="do not rerun non-finite cases without difftac")
    ap.add_argument("--replay", help="a kept case.json: run it in this process, print the result")
    ap.add_argument("--plain", action="store_true", help="with --replay: the scene without difftac")
    ap.add_argument("--show", action="store_true", help="print the cases of --seeds, run nothing")
    a = ap.parse_args(argv)

    if a.replay:
        import mujoco
        mujoco.mj_loadPluginLibrary(library_path())
        case = json.loads(pathlib.Path(a.replay).read_text())
        case = case.get("case", case)
        scratch = ROOT / "out" / "fuzz" / "scratch_replay"
        scratch.mkdir(parents=True, exist_ok=True)
        res = run_case(case, a.plain, str(scratch))
        print(json.dumps(res, indent=1))
        return 0
    if a.seeds:
        lo, hi = (int(x) for x in a.seeds.split(":"))
        seeds = range(lo, hi)
    elif a.minutes is not None:
        seeds = iter(lambda c=[a.start - 1]: c.__setitem__(0, c[0] + 1) or c[0], None)
    else:
        ap.error("give --minutes or --seeds (or --replay)")
    if a.show:
        for s in seeds:
            c = gen.make_case(s, a.profile)
            print("=== seed %d tags %s bad %s" % (s, c["tags"], c["bad"]))
            print(c["xml"])
            print(json.dumps(c["steps"]))
        return 0
    out = pathlib.Path(a.out).resolve() if a.out else ROOT / "out" / "fuzz" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    print("[fuzz] library %s, profile %s, %d jobs, timeout %g s, output %s" % (
        library_path(), a.profile, a.jobs, a.timeout, out), file=sys.stderr, flush=True)
    results, summary = run_many(seeds, a.profile, a.jobs, a.timeout, a.mem_mb, a.minutes, out,
                                check_plain=not a.no_plain)
    summary["profile"] = a.profile
    summary["seeds"] = [results[0]["seed"], results[-1]["seed"] + 1] if results else []
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    with open(out / "results.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    print(table(summary))
    print(json.dumps(summary))
    print("[fuzz] kept failing inputs under %s (seed_N/case.xml, case.json); reproduce one with "
          "python tests/fuzz/fuzz.py --replay %s/seed_N/case.json" % (out, out), file=sys.stderr)
    return 1 if any(summary["counts"][c] for c in FAILING) else 0


if __name__ == "__main__":
    sys.exit(main())
