#!/usr/bin/env python3
"""Soak: episodes of models/grasp_tactile.xml, in rotation with the other models/ scenes, for a long
time; reports RSS over time, warnings and non-finite counts, and whether repeated episodes of a
scene end bit-identically (issue 17 item 6; docs/fuzz.md, "Soak").

    .venv/bin/python bench/soak.py                 # 60 minutes
    .venv/bin/python bench/soak.py --minutes 5 --json out/soak.json

Every other episode is a grasp_tactile.xml grasp (open, close, lift, hold, release: 1.5 s, 750
steps); the others rotate over grasp.xml, grasp_env.xml, press.xml, press_tactile.xml,
press_small.xml and sysid.xml (press onto an indenter, slide, lift). Each episode starts from
mj_resetData; every 10th episode of a scene reloads its model (the old MjModel/MjData freed), so
that leaks of load and free show as RSS growth. RSS grows while scenes are met for the first time
(each model, its images and caches); `rss_mb.every_scene_loaded` is RSS once every scene has run
an episode, the baseline for judging growth after it. A progress line every --every seconds (stderr);
at the end one JSON object (stdout, and --json FILE). Exit status 1 if any step was non-finite.
"""
import argparse
import hashlib
import json
import os
import pathlib
import sys
import tempfile
import time

import mujoco
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

# grasp.xml's control sequence (see its header): ctrl = [lift, grip]
CLOSE_AT, LIFT_AT, LIFT_TIME, HOLD_AT, RELEASE_AT, GRASP_END = 0.1, 0.5, 0.6, 1.1, 1.3, 1.5


def grasp_ctrl(t):
    s = min(max((t - LIFT_AT) / LIFT_TIME, 0.0), 1.0)
    lift = 0.04 * s * s * (3 - 2 * s)
    grip = 0.02 if CLOSE_AT <= t < RELEASE_AT else 0.0
    return (lift, grip)


def press_ctrl(depth, x_indenter, slide):
    """x to the indenter, down `depth` past contact, slide `slide` in x, up (0.6 s)."""
    def f(t):
        if t < 0.15:
            return (x_indenter, 0.0)
        if t < 0.35:
            return (x_indenter, -depth)
        if t < 0.5:
            return (x_indenter + slide, -depth)
        return (x_indenter + slide, 0.0)
    return f


# scene, episode length (s), control law of time
SCENES = {
    "grasp_tactile.xml": (GRASP_END, grasp_ctrl),
    "grasp.xml": (GRASP_END, grasp_ctrl),
    "grasp_env.xml": (GRASP_END, grasp_ctrl),
    # press.xml / press_tactile.xml: finger at z 0.03, gel face 0.026, indenter tops at 0.02
    "press.xml": (0.6, press_ctrl(0.0065, 0.0, 0.001)),
    "press_tactile.xml": (0.6, press_ctrl(0.0065, -0.05, 0.001)),
    # press_small.xml / sysid.xml: gel face at 0.0145 over a ball topped at 0.014
    "press_small.xml": (0.6, press_ctrl(0.001, 0.0, 0.001)),
    "sysid.xml": (0.6, press_ctrl(0.001, 0.0, 0.001)),
}


def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class Warnings:
    """MuJoCo's warnings (difftac's included) go to stdout: fd 1 goes to a file, counted."""

    def __init__(self):
        self.f = tempfile.TemporaryFile(mode="w+b")
        sys.stdout.flush()
        self.saved = os.dup(1)
        os.dup2(self.f.fileno(), 1)
        self.pos = 0
        self.count = 0
        self.difftac = 0
        self.last = []

    def poll(self):
        self.f.seek(self.pos)
        chunk = self.f.read()
        self.pos += len(chunk)
        for ln in chunk.decode(errors="replace").splitlines():
            if ln.startswith("WARNING"):
                self.count += 1
                self.difftac += "difftac" in ln
                self.last = (self.last + [ln.strip()])[-5:]

    def close(self):
        self.poll()
        sys.stdout.flush()
        os.dup2(self.saved, 1)


def episode(m, d, length, ctrl):
    """One episode from reset; returns (steps, non-finite steps, hash of the final state)."""
    mujoco.mj_resetData(m, d)
    n = bad = 0
    while d.time < length - 1e-9:
        d.ctrl[:len(ctrl(d.time))] = ctrl(d.time)
        mujoco.mj_step(m, d)
        n += 1
        if not (np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.qvel)) and
                np.all(np.isfinite(d.sensordata))):
            bad += 1
    h = hashlib.sha1()
    for a in (d.qpos, d.qvel, d.sensordata, d.plugin_state):
        h.update(np.ascontiguousarray(a).tobytes())
    return n, bad, h.hexdigest()[:12]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="how long (default 60)")
    ap.add_argument("--every", type=float, default=30.0, help="seconds between progress lines")
    ap.add_argument("--json", help="also write the summary to this file")
    ap.add_argument("--scenes", help="comma-separated subset of models/ scenes")
    ap.add_argument("--lib", help="libdifftac.so (default: the difftac package's)")
    a = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT / "python"))
    if a.lib:
        os.environ["DIFFTAC_LIB"] = a.lib
    import difftac  # registers the plugins
    names = a.scenes.split(",") if a.scenes else list(SCENES)
    others = [s for s in names if s != "grasp_tactile.xml"]
    order = []
    for k in range(max(1, len(others))):
        if "grasp_tactile.xml" in names:
            order.append("grasp_tactile.xml")
        if others:
            order.append(others[k])
    loaded = {}
    per = {s: {"episodes": 0, "steps": 0, "nonfinite_steps": 0, "final_hashes": [],
               "step_s": 0.0, "reloads": 0} for s in names}
    w = Warnings()
    t0 = time.time()
    rss0 = rss_mb()
    series = [{"t_s": 0.0, "rss_mb": round(rss0, 1), "episodes": 0, "steps": 0}]
    last = t0
    ep = 0
    all_loaded = None  # RSS once every scene has run an episode (its model and caches exist)
    print("[soak] %s for %g min, scenes %s (library %s)" % (
        time.strftime("%H:%M:%S"), a.minutes, ",".join(names), difftac.library_path()),
        file=sys.stderr, flush=True)
    try:
        while time.time() - t0 < 60 * a.minutes:
            scene = order[ep % len(order)]
            st = per[scene]
            if scene not in loaded or (st["episodes"] and st["episodes"] % 10 == 0):
                if scene in loaded:
                    st["reloads"] += 1
                    del loaded[scene]
                m = mujoco.MjModel.from_xml_path(str(MODELS / scene))
                loaded[scene] = (m, mujoco.MjData(m))
            m, d = loaded[scene]
            length, ctrl = SCENES[scene]
            ts = time.time()
            n, bad, h = episode(m, d, length, ctrl)
            st["step_s"] += time.time() - ts
            st["episodes"] += 1
            st["steps"] += n
            st["nonfinite_steps"] += bad
            if h not in st["final_hashes"]:
                st["final_hashes"].append(h)
            ep += 1
            if all_loaded is None and all(per[x]["episodes"] for x in names):
                all_loaded = {"t_s": round(time.time() - t0, 1), "rss_mb": round(rss_mb(), 1),
                              "episodes": ep}
            w.poll()
            now = time.time()
            if now - last >= a.every:
                last = now
                steps = sum(s["steps"] for s in per.values())
                series.append({"t_s": round(now - t0, 1), "rss_mb": round(rss_mb(), 1),
                               "episodes": ep, "steps": steps})
                print("[soak] %6.0f s  %4d episodes  %7d steps  RSS %6.1f MB  warnings %d "
                      "(difftac %d)  non-finite steps %d" % (
                          now - t0, ep, steps, rss_mb(), w.count, w.difftac,
                          sum(s["nonfinite_steps"] for s in per.values())),
                      file=sys.stderr, flush=True)
    finally:
        w.close()
    elapsed = time.time() - t0
    steps = sum(s["steps"] for s in per.values())
    series.append({"t_s": round(elapsed, 1), "rss_mb": round(rss_mb(), 1), "episodes": ep,
                   "steps": steps})
    for s in per.values():
        s["ms_per_step"] = round(1000 * s["step_s"] / s["steps"], 2) if s["steps"] else None
        s["identical_episodes"] = len(s["final_hashes"]) <= 1
        del s["step_s"]
    # RSS after the first tenth of the run (warm caches) against the end
    warm = [p for p in series if p["t_s"] >= elapsed / 10] or series
    out = {"minutes": round(elapsed / 60, 2), "episodes": ep, "steps": steps,
           "rss_mb": {"start": round(rss0, 1), "warm": warm[0]["rss_mb"],
                      "every_scene_loaded": all_loaded, "end": series[-1]["rss_mb"],
                      "max": max(p["rss_mb"] for p in series)},
           "warnings": w.count, "difftac_warnings": w.difftac, "last_warnings": w.last,
           "nonfinite_steps": sum(s["nonfinite_steps"] for s in per.values()),
           "scenes": per, "rss_series": series}
    txt = json.dumps(out)
    print(txt)
    if a.json:
        pathlib.Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.json).write_text(json.dumps(out, indent=1))
    return 1 if out["nonfinite_steps"] else 0


if __name__ == "__main__":
    sys.exit(main())
