"""sysid.py: system identification through the rollout tape. Recovers the gel's Young's modulus and
friction coefficient from a recording of a tactile sensor, by gradient descent on the squared
sensor error (gradients from difftac.Tape), and compares with a gradient-free Nelder-Mead search.

The scene is models/sysid.xml: a 12 x 12 x 3 mm gel pad on a finger that presses onto a 4 mm ball
and then slides over it (press, then slip: the press tells the stiffness, the slip the friction).
The "recording" is simulated with hidden parameters (young 2e5 Pa, friction 0.5): the 5 x 5
marker displacements (pixels) after every step. Both optimisers start 2x off (young x2,
friction / 2) and work on log-parameters, within bounds (young at most the scene's load-time
value). The loss is 0.5 * mean squared error, each sensor
scaled by the rms of its recording.

  gradient:     BFGS with a projected Armijo backtracking line search; each trial is one recorded
                rollout, and an accepted trial's gradient is one reverse pass on that recording.
  nelder-mead:  the downhill simplex on the same loss, one rollout per evaluation.

Prints a line per iteration and one machine-readable line per method:
  RESULT method=gradient iters=.. rollouts=.. backward=.. time_s=.. loss=.. young=.. friction=..
         young_err=.. friction_err=..        (errors relative, signed)
and writes out/sysid.png (parameter errors against iterations and against wall time). Exits 1 if the
gradient method does not recover both parameters within 1 %.

    .venv/bin/python examples/sysid.py [--quick] [--steps 80] [--sensor markers|rigid]

--sensor rigid identifies from the finger's joint positions and velocities instead (plain MuJoCo
sensors), --quick is a shorter recording (40 steps) for tests.
"""
import argparse
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
import difftac  # noqa: E402

PARAMS = ("gel/young", "gel/friction")
TRUTH = np.array([2e5, 0.5])
START = TRUTH * np.array([2.0, 0.5])
SENSORS = {"markers": ("markers",), "rigid": ("qx", "qz", "vx", "vz")}
TOL = 0.01  # the claim: both parameters within 1 %


def schedule(nstep, dt):
    """ctrl (nstep, 2) of the x and z position actuators: press 2.5 mm past the touch in the first
    quarter, then slide 3 mm along x from 0.3 of the way on."""
    t = np.arange(nstep) * dt
    t_end = nstep * dt
    z = -0.0005 - 0.0025 * np.minimum(t / (0.25 * t_end), 1.0)
    x = 0.003 * np.clip((t - 0.3 * t_end) / (0.7 * t_end), 0.0, 1.0)
    return np.stack([x, z], axis=1)


class Problem:
    """The loss over log-parameters and its gradient through one reused tape."""

    def __init__(self, nstep, sensors):
        self.m = mujoco.MjModel.from_xml_path(str(ROOT / "models" / "sysid.xml"))
        self.d = mujoco.MjData(self.m)
        m = self.m
        self.T = nstep
        self.ctrl = schedule(nstep, m.opt.timestep)
        self.ip = [difftac.param_index(m, p) for p in PARAMS]
        # the scene's young is the largest that stays stable at its substep
        young_max = difftac.param_get(m, self.d, "gel/young")
        self.lo = np.log([2e4, 0.05])
        self.hi = np.log([young_max, 2.0])
        self.cols = np.concatenate([np.arange(m.sensor(s).adr[0], m.sensor(s).adr[0] +
                                              m.sensor(s).dim[0]) for s in sensors])
        self.tape = difftac.Tape(m, self.d, nstep)
        self.rollouts = self.backwards = 0
        self.target = None
        self.weight = None
        # the recording, and per-sensor weights 1 / (N rms^2)
        y = self.simulate(np.log(TRUTH))
        self.target = y
        w = np.zeros(m.nsensordata)
        for s in sensors:
            a, n = m.sensor(s).adr[0], m.sensor(s).dim[0]
            w[a:a + n] = 1.0 / max(np.mean(y[:, a:a + n] ** 2), 1e-300)
        self.weight = w / (nstep * len(self.cols))
        self.rollouts = 0

    def simulate(self, logp):
        """sensordata (T, nsensordata) of the rollout at parameters exp(logp), recorded on the
        tape"""
        m, d = self.m, self.d
        mujoco.mj_resetData(m, d)
        for i, v in zip(self.ip, np.exp(logp)):
            difftac.param_set(m, d, i, v)
        mujoco.mj_forward(m, d)
        self.tape.reset()
        y = np.empty((self.T, m.nsensordata))
        for t in range(self.T):
            self.tape.step(self.ctrl[t])
            y[t] = d.sensordata
        self.rollouts += 1
        if difftac.gel_info(m, d, "gel").nwarning:
            raise RuntimeError(f"the gel blew up at {np.exp(logp)}")
        return y

    def loss(self, logp):
        self.y = self.simulate(logp)
        self.r = self.y - self.target
        return 0.5 * float(np.sum(self.weight * self.r ** 2))

    def grad(self, logp):
        """gradient of the loss at the rollout loss() recorded last, w.r.t. log-parameters"""
        g = self.tape.backward(sensor_bar=self.weight * self.r)
        self.backwards += 1
        return g["param"][self.ip] * np.exp(logp)


def errors(logp):
    return np.exp(logp) / TRUTH - 1


def report(tag, it, prob, f, logp, t0):
    e = errors(logp)
    p = np.exp(logp)
    print(f"[{tag:11s} {it:3d}] loss {f:.3e}  young {p[0]:.5g} ({100 * e[0]:+7.3f} %)  friction "
          f"{p[1]:.5g} ({100 * e[1]:+7.3f} %)  rollouts {prob.rollouts:3d}  backward "
          f"{prob.backwards:3d}  {time.time() - t0:6.1f} s", flush=True)


def gradient_descent(prob, x0, maxiter, xtol):
    """BFGS on log-parameters with a projected Armijo backtracking line search."""
    t0 = time.time()
    x = x0.copy()
    f = prob.loss(x)
    g = prob.grad(x)
    H = None
    hist = [(0, prob.rollouts, time.time() - t0, x.copy(), f)]
    report("gradient", 0, prob, f, x, t0)
    for it in range(1, maxiter + 1):
        # first step: 0.3 along the steepest descent (log units); then quasi-Newton
        p = -g * (0.3 / np.abs(g).max()) if H is None else -H @ g
        if np.abs(p).max() > 1.0:
            p /= np.abs(p).max()
        a = 1.0
        while True:
            xn = np.clip(x + a * p, prob.lo, prob.hi)
            fn = prob.loss(xn)
            if fn <= f + 1e-4 * g @ (xn - x) or a < 1e-6:
                break
            a *= 0.5
        gn = prob.grad(xn)  # on the accepted trial's recording
        s, yv = xn - x, gn - g
        if s @ yv > 1e-12 * np.linalg.norm(s) * np.linalg.norm(yv):
            if H is None:
                H = np.eye(2) * (s @ yv) / (yv @ yv)
            r = 1.0 / (s @ yv)
            V = np.eye(2) - r * np.outer(s, yv)
            H = V @ H @ V.T + r * np.outer(s, s)
        x, f, g = xn, fn, gn
        hist.append((it, prob.rollouts, time.time() - t0, x.copy(), f))
        report("gradient", it, prob, f, x, t0)
        if np.abs(s).max() < xtol:
            break
    return x, f, hist, time.time() - t0


def nelder_mead(prob, x0, maxiter, xtol, step=0.1):
    """The downhill simplex (reflection 1, expansion 2, contraction 1/2, shrink 1/2) on
    log-parameters, evaluated at points clipped to the bounds; stops when every vertex is within
    xtol of the best in every coordinate."""
    t0 = time.time()

    def fun(x):
        return prob.loss(np.clip(x, prob.lo, prob.hi))

    n = len(x0)
    sim = [x0.copy()] + [x0 + step * np.eye(n)[i] for i in range(n)]
    fs = [fun(v) for v in sim]
    order = np.argsort(fs)
    hist = [(0, prob.rollouts, time.time() - t0, sim[order[0]].copy(), fs[order[0]])]
    report("nelder-mead", 0, prob, fs[order[0]], sim[order[0]], t0)
    for it in range(1, maxiter + 1):
        order = np.argsort(fs)
        sim = [sim[i] for i in order]
        fs = [fs[i] for i in order]
        c = np.mean(sim[:-1], axis=0)
        xr = c + (c - sim[-1])
        fr = fun(xr)
        if fr < fs[0]:
            xe = c + 2 * (c - sim[-1])
            fe = fun(xe)
            sim[-1], fs[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < fs[-2]:
            sim[-1], fs[-1] = xr, fr
        else:
            # contraction outside or inside
            xc = c + 0.5 * (xr - c) if fr < fs[-1] else c + 0.5 * (sim[-1] - c)
            fc = fun(xc)
            if fc < min(fr, fs[-1]):
                sim[-1], fs[-1] = xc, fc
            else:
                for i in range(1, n + 1):
                    sim[i] = sim[0] + 0.5 * (sim[i] - sim[0])
                    fs[i] = fun(sim[i])
        b = int(np.argmin(fs))
        hist.append((it, prob.rollouts, time.time() - t0, np.clip(sim[b], prob.lo, prob.hi), fs[b]))
        report("nelder-mead", it, prob, fs[b], np.clip(sim[b], prob.lo, prob.hi), t0)
        if max(np.abs(v - sim[b]).max() for v in sim) < xtol:
            break
    b = int(np.argmin(fs))
    return np.clip(sim[b], prob.lo, prob.hi), fs[b], hist, time.time() - t0


def result(method, prob, x, f, hist, wall):
    e = errors(x)
    p = np.exp(x)
    print(f"RESULT method={method} iters={hist[-1][0]} rollouts={prob.rollouts} "
          f"backward={prob.backwards} time_s={wall:.2f} loss={f:.3e} young={p[0]:.6g} "
          f"friction={p[1]:.6g} young_err={e[0]:.3e} friction_err={e[1]:.3e}", flush=True)
    return e


def plot(path, runs, sensors):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (name, hist), color in zip(runs, ("C0", "C1")):
        it = np.array([h[0] for h in hist])
        wall = np.array([h[2] for h in hist])
        e = np.abs(np.array([errors(h[3]) for h in hist]))
        for ax, xs in zip(axes, (it, wall)):
            ax.semilogy(xs, np.maximum(e[:, 0], 1e-8), "-o", ms=3, color=color,
                        label=f"{name}: young")
            ax.semilogy(xs, np.maximum(e[:, 1], 1e-8), "--s", ms=3, color=color,
                        label=f"{name}: friction")
    for ax, xl in zip(axes, ("iteration", "wall time, s (rollouts and reverse passes)")):
        ax.axhline(TOL, color="gray", lw=0.8, ls=":")
        ax.set_xlabel(xl)
        ax.set_ylabel("|relative parameter error|")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"sysid: young and friction from a recording of {', '.join(sensors)}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 40-step recording (tests)")
    ap.add_argument("--steps", type=int, default=None, help="recording length (default 80)")
    ap.add_argument("--sensor", choices=sorted(SENSORS), default="markers")
    ap.add_argument("--maxiter", type=int, default=40, help="gradient iterations at most")
    ap.add_argument("--nm-maxiter", type=int, default=150, help="Nelder-Mead iterations at most")
    ap.add_argument("--xtol", type=float, default=1e-4, help="stop tolerance (log-parameters)")
    ap.add_argument("--no-nelder-mead", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "out" / "sysid.png"))
    args = ap.parse_args()
    nstep = args.steps or (40 if args.quick else 80)

    prob = Problem(nstep, SENSORS[args.sensor])
    print(f"sysid: {nstep} steps of {prob.m.opt.timestep * 1e3:g} ms, sensors "
          f"{', '.join(SENSORS[args.sensor])} ({len(prob.cols)} values a step); truth young "
          f"{TRUTH[0]:g} friction {TRUTH[1]:g}; start young {START[0]:g} friction {START[1]:g}; "
          f"tape {prob.tape.memory / 1e6:.2f} MB", flush=True)
    x0 = np.log(START)
    runs = []
    x, f, hist, wall = gradient_descent(prob, x0, args.maxiter, args.xtol)
    eg = result("gradient", prob, x, f, hist, wall)
    runs.append(("gradient", hist))
    if not args.no_nelder_mead:
        prob.rollouts = prob.backwards = 0
        x, f, hist, wall = nelder_mead(prob, x0, args.nm_maxiter, args.xtol)
        result("nelder-mead", prob, x, f, hist, wall)
        runs.append(("nelder-mead", hist))
    plot(pathlib.Path(args.out), runs, SENSORS[args.sensor])
    prob.tape.close()
    if np.abs(eg).max() > TOL:
        print(f"FAIL: the gradient method did not recover both parameters within {100 * TOL:g} %")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
