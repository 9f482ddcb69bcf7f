"""trajopt.py: trajectory optimisation through the rollout tape. The finger of models/sysid.xml
presses its gel onto the ball so that the normal contact force follows a target profile (nothing
for 10 % of the time, a ramp up to 1 N until 45 %, then hold), by optimising the z position
actuator's control at every step with L-BFGS on the gradients of difftac.Tape.

The normal force is read from the difftac.tactile `force` sensor (N = -force[2], site frame).
With --sensor rigid it is instead the force the gel exerts on the finger by Newton's law on the
finger, from plain MuJoCo sensors: N = M * (-acc_z) - F_actuator + c * v_z (accelerometer in the
site frame, whose z is world -z; M the finger's and gel's mass, c the joint damping), which agrees
with the tactile force to within 0.01 N here (the gel is not a rigid part of the finger).

Loss: 0.5 * mean((N_t - N*_t)^2) / (1 N)^2 + smoothing * 0.5 * mean((u_{t+1} - u_t)^2) / (1 mm)^2.
Row t of the sensors is what step t wrote (the state it started from), so the first ctrl acts on
row 1 on. Start: a guess by the gel's stiffness (the profile turned into a position ramp).

Prints a line per iteration and
  RESULT method=lbfgs iters=.. rollouts=.. backward=.. time_s=.. rms_before=.. rms_after=..
         max_after=..        (tracking errors, N, from row 10 % on)
and writes out/trajopt.png (target and achieved force before and after, the controls). Exits 1
if the rms tracking error did not drop below 2 % of the held force.

    .venv/bin/python examples/trajopt.py [--quick] [--steps 80] [--sensor tactile|rigid]
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

YOUNG = 2e5     # Pa, the gel's stiffness in this run
F_HOLD = 1.0    # N, the held normal force
TOL = 0.02      # the claim: rms tracking error below 2 % of F_HOLD


def target(nstep):
    """the normal-force profile, N (nstep,)"""
    s = np.arange(nstep) / nstep
    return F_HOLD * np.clip((s - 0.1) / 0.35, 0.0, 1.0)


class Problem:
    """loss(u) and its gradient over the z controls u (nstep,), mm"""

    def __init__(self, nstep, sensor, smoothing):
        self.m = mujoco.MjModel.from_xml_path(str(ROOT / "models" / "sysid.xml"))
        self.d = mujoco.MjData(self.m)
        m, d = self.m, self.d
        difftac.param_set(m, d, "gel/young", YOUNG)
        self.T = nstep
        self.target = target(nstep)
        self.smoothing = smoothing
        # the normal force as a linear function of sensordata: N_t = c @ y_t
        self.c = np.zeros(m.nsensordata)
        if sensor == "tactile":
            self.c[m.sensor("force").adr[0] + 2] = -1.0
        else:
            finger = m.body("finger").id
            mass = m.body_subtreemass[finger] + difftac.gel_info(m, d, "gel").mass
            self.c[m.sensor("acc").adr[0] + 2] = -mass
            self.c[m.sensor("fz").adr[0]] = -1.0
            self.c[m.sensor("vz").adr[0]] = m.dof_damping[m.joint("z").dofadr[0]]
        self.first = int(0.1 * nstep)  # rows weighed: from where the target leaves 0
        self.tape = difftac.Tape(m, d, nstep)
        self.rollouts = self.backwards = 0

    def forces(self, u_mm):
        """normal force per step (nstep,) and the tactile sensor's force[2] (for comparison)"""
        m, d = self.m, self.d
        mujoco.mj_resetData(m, d)
        mujoco.mj_forward(m, d)
        self.tape.reset()
        y = np.empty((self.T, m.nsensordata))
        for t in range(self.T):
            self.tape.step([0.0, 1e-3 * u_mm[t]])
            y[t] = d.sensordata
        self.rollouts += 1
        if difftac.gel_info(m, d, "gel").nwarning:
            raise RuntimeError("the gel blew up")
        self.y = y
        return y @ self.c, -y[:, m.sensor("force").adr[0] + 2]

    def loss(self, u_mm):
        n, _ = self.forces(u_mm)
        self.res = np.zeros(self.T)
        self.res[self.first:] = (n - self.target)[self.first:]
        du = np.diff(u_mm)
        self.du = du
        k = self.T - self.first
        return 0.5 * float(self.res @ self.res) / k + 0.5 * self.smoothing * float(du @ du) / (
            self.T - 1)

    def grad(self, u_mm):
        """gradient at the rollout loss() recorded last"""
        k = self.T - self.first
        sensor_bar = np.outer(self.res / k, self.c)
        g = self.tape.backward(sensor_bar=sensor_bar)
        self.backwards += 1
        gu = 1e-3 * g["ctrl"][:, 1]  # d loss / d u_mm
        s = self.smoothing * self.du / (self.T - 1)
        gu[1:] += s
        gu[:-1] -= s
        return gu


def tracking(prob, n):
    e = (n - prob.target)[prob.first:]
    return float(np.sqrt(np.mean(e ** 2))), float(np.abs(e).max())


def lbfgs(prob, x0, maxiter, memory=8, gtol=1e-9):
    """L-BFGS (two-loop recursion) with an Armijo backtracking line search; each trial is one
    recorded rollout, the accepted one's gradient one reverse pass on that recording"""
    t0 = time.time()
    x = x0.copy()
    f = prob.loss(x)
    g = prob.grad(x)
    S, Y = [], []
    hist = [(0, f, x.copy())]

    def report(it):
        rms, mx = tracking(prob, prob.y @ prob.c)
        print(f"[lbfgs {it:3d}] loss {f:.4e}  tracking rms {rms:.4f} N  max {mx:.4f} N  "
              f"rollouts {prob.rollouts:3d}  backward {prob.backwards:3d}  "
              f"{time.time() - t0:6.1f} s", flush=True)
    report(0)
    for it in range(1, maxiter + 1):
        q = g.copy()
        al = []
        for s, y in reversed(list(zip(S, Y))):
            a = (s @ q) / (y @ s)
            al.append(a)
            q -= a * y
        if S:
            q *= (S[-1] @ Y[-1]) / (Y[-1] @ Y[-1])
        else:
            q *= 0.05 / np.abs(g).max()  # first step: 0.05 mm at most along steepest descent
        for (s, y), a in zip(zip(S, Y), reversed(al)):
            b = (y @ q) / (y @ s)
            q += (a - b) * s
        p = -q
        if g @ p >= 0:  # not a descent direction: restart
            S, Y = [], []
            p = -g * (0.05 / np.abs(g).max())
        a = 1.0
        while True:
            xn = x + a * p
            fn = prob.loss(xn)
            if fn <= f + 1e-4 * a * (g @ p) or a < 1e-4:
                break
            a *= 0.5
        gn = prob.grad(xn)
        s, y = xn - x, gn - g
        if s @ y > 1e-12 * np.linalg.norm(s) * np.linalg.norm(y):
            S.append(s)
            Y.append(y)
            if len(S) > memory:
                S.pop(0)
                Y.pop(0)
        x, f, g = xn, fn, gn
        hist.append((it, f, x.copy()))
        report(it)
        if np.abs(g).max() < gtol or a < 1e-4:
            break
    return x, hist, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 steps, 12 iterations (tests)")
    ap.add_argument("--steps", type=int, default=None, help="horizon (default 80)")
    ap.add_argument("--iterations", type=int, default=None, help="default 40 (12 with --quick)")
    ap.add_argument("--sensor", choices=("tactile", "rigid"), default="tactile")
    ap.add_argument("--smoothing", type=float, default=1e-4)
    ap.add_argument("--out", default=str(ROOT / "out" / "trajopt.png"))
    args = ap.parse_args()
    nstep = args.steps or (40 if args.quick else 80)
    iters = args.iterations or (12 if args.quick else 40)

    prob = Problem(nstep, args.sensor, args.smoothing)
    print(f"trajopt: {nstep} steps of {prob.m.opt.timestep * 1e3:g} ms, {nstep} z controls, "
          f"normal force from the {args.sensor} sensors; target: ramp to {F_HOLD:g} N, hold",
          flush=True)
    # start: the finger's touch height (-0.5 mm) plus a depth guess per newton
    u0 = -0.5 - 2.0 * prob.target / F_HOLD
    n0, _ = prob.forces(u0)
    rms0, max0 = tracking(prob, n0)
    u, hist, wall = lbfgs(prob, u0, iters)
    n1, n1_tactile = prob.forces(u)
    rms1, max1 = tracking(prob, n1)
    if args.sensor == "rigid":
        print(f"rigid estimate vs the tactile force sensor: max |diff| "
              f"{np.abs(n1 - n1_tactile).max():.2e} N")
    print(f"RESULT method=lbfgs iters={hist[-1][0]} rollouts={prob.rollouts} "
          f"backward={prob.backwards} time_s={wall:.2f} rms_before={rms0:.4e} "
          f"rms_after={rms1:.4e} max_after={max1:.4e}", flush=True)

    dt = prob.m.opt.timestep
    t_ms = 1e3 * dt * np.arange(nstep)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    ax.plot(t_ms, prob.target, "k-", lw=2, label="target")
    ax.plot(t_ms, n0, "C1--", label=f"before (rms {rms0:.3f} N)")
    ax.plot(t_ms, n1, "C0-", label=f"after {hist[-1][0]} iterations (rms {rms1:.4f} N)")
    ax.axvline(1e3 * dt * prob.first, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("time, ms")
    ax.set_ylabel("normal force, N")
    ax.legend(fontsize=8)
    ax.set_title(f"normal force ({args.sensor} sensors)")
    ax = axes[1]
    ax.plot(t_ms, u0, "C1--", label="before")
    ax.plot(t_ms, u, "C0-", label="after")
    ax.set_xlabel("time, ms")
    ax.set_ylabel("z position target, mm")
    ax.legend(fontsize=8)
    ax.set_title("control")
    fig.tight_layout()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")
    prob.tape.close()
    if rms1 > TOL * F_HOLD:
        print(f"FAIL: rms tracking error {rms1:.4f} N is above {TOL * F_HOLD:g} N")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
