"""train_grasp.py: the cross-entropy method (CEM) on TactileGraspEnv (examples/tactile_grasp_env.py)
over a two-parameter open-loop schedule, and its learning curve in out/learning_curve.png.

The schedule: for the first 0.3 s the gripper closes to the grip target ``g`` (m) at lift 0; then
it lifts towards ``h`` (m) while holding the grip target. CEM samples (g, h) from a Gaussian,
rolls each sample out for one 1 s episode, and refits the Gaussian to the best quarter. A grip
target short of contact (about 0.01) never grasps (return 0); a grasp earns 0.1 per step on the
floor and up to 1.1 per step once the box is 4 cm up, so the optimum closes firmly and lifts at
least 4 cm. Takes about a minute with the defaults.

    .venv/bin/python examples/train_grasp.py [--iterations 6] [--samples 8] [--seed 0]
"""
import argparse
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import tactile_grasp_env as tge  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLOSE_TIME = 0.3  # s


def rollout(env, params, steps, seed):
    """Return of one episode under the open-loop schedule params = (grip, lift)."""
    g, h = np.clip(params, env.action_space.low[::-1], env.action_space.high[::-1])
    env.reset(seed=seed)
    total, info = 0.0, {}
    for k in range(steps):
        lift = 0.0 if k * env.dt < CLOSE_TIME else h
        _, r, terminated, truncated, info = env.step(np.array([lift, g], dtype=np.float32))
        total += r
        if terminated or truncated:
            break
    return total, info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument("--samples", type=int, default=8, help="rollouts per iteration")
    ap.add_argument("--elite", type=float, default=0.25, help="fraction refitted")
    ap.add_argument("--steps", type=int, default=100, help="env steps per rollout (10 ms each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "out" / "learning_curve.png"))
    args = ap.parse_args()

    env = tge.TactileGraspEnv(max_episode_steps=args.steps)
    rng = np.random.default_rng(args.seed)
    # (grip target, lift target), m; the start is a poor guess: a grip barely reaching the box
    mean, std = np.array([0.008, 0.01]), np.array([0.008, 0.03])
    lo = env.action_space.low[::-1].astype(float)
    hi = env.action_space.high[::-1].astype(float)
    nelite = max(2, int(round(args.elite * args.samples)))
    history = []  # per iteration: (returns, samples, mean)
    best = (-np.inf, None)
    t0 = time.time()
    print(f"CEM: {args.iterations} iterations x {args.samples} rollouts of {args.steps * env.dt:.1f} s; "
          f"params (grip, lift) m, start mean {mean}, std {std}", flush=True)
    for it in range(args.iterations):
        samples = np.clip(rng.normal(mean, std, size=(args.samples, 2)), lo, hi)
        returns = np.empty(args.samples)
        for i, p in enumerate(samples):
            returns[i], info = rollout(env, p, args.steps, seed=int(rng.integers(1 << 31)))
            if returns[i] > best[0]:
                best = (returns[i], p.copy())
        history.append((returns, samples, mean.copy()))
        elite = samples[np.argsort(returns)[-nelite:]]
        mean = elite.mean(axis=0)
        std = np.maximum(elite.std(axis=0), 1e-4)
        print(f"[{it + 1}/{args.iterations}] return mean {returns.mean():6.2f} max {returns.max():6.2f}"
              f"  -> mean grip {1e3 * mean[0]:5.1f} mm, lift {1e3 * mean[1]:5.1f} mm "
              f"(std {1e3 * std[0]:.1f}, {1e3 * std[1]:.1f})  {time.time() - t0:5.1f} s", flush=True)

    final, info = rollout(env, mean, args.steps, seed=args.seed)
    print(f"final mean schedule: grip {1e3 * mean[0]:.1f} mm, lift {1e3 * mean[1]:.1f} mm -> return "
          f"{final:.2f}, box up {1e3 * info['object_height']:.1f} mm, success {info['success']}")
    env.close()

    its = np.arange(1, args.iterations + 1)
    R = np.array([h[0] for h in history])
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    ax[0].plot(np.repeat(its, args.samples), R.ravel(), ".", color="0.6", label="rollouts")
    ax[0].plot(its, R.mean(axis=1), "o-", label="mean")
    ax[0].plot(its, R.max(axis=1), "s--", label="best")
    ax[0].axhline(final, color="C2", lw=1, ls=":", label=f"final mean schedule ({final:.1f})")
    ax[0].set_xlabel("CEM iteration")
    ax[0].set_ylabel(f"episode return ({args.steps * env.dt:.0f} s)")
    ax[0].set_title("TactileGraspEnv: learning curve")
    ax[0].grid(alpha=0.3)
    ax[0].legend(loc="lower right")
    S = np.array([h[1] for h in history])
    sc = ax[1].scatter(1e3 * S[..., 0].ravel(), 1e3 * S[..., 1].ravel(), c=np.repeat(its, args.samples),
                       s=12 + 25 * np.clip(R.ravel(), 0, None) / max(R.max(), 1e-9), cmap="viridis")
    M = np.array([h[2] for h in history] + [mean])
    ax[1].plot(1e3 * M[:, 0], 1e3 * M[:, 1], "k.-", label="CEM mean")
    ax[1].axvline(10, color="C3", lw=1, ls=":", label="pads touch the box")
    ax[1].set_xlabel("grip target (mm)")
    ax[1].set_ylabel("lift target (mm)")
    ax[1].set_title("samples (colour: iteration, size: return)")
    ax[1].legend(loc="upper left")
    fig.colorbar(sc, ax=ax[1], label="iteration")
    fig.tight_layout()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
