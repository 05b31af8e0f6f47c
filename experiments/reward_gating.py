"""Intrinsic motivation based on reward gating (Pecháč & Farkaš, ICANN 2021) on MountainCar.

Four DDPG agents -- Baseline (external reward only), FM (prediction-error
reward), MC (predictive-surprise reward from the meta-critic) and gated MC
(the max of both, squashed) -- times ``--seeds`` runs each, trained as ONE
compiled program: the whole loop is a ``lax.scan`` and the agents x seeds are a
``vmap`` (sharded over devices when there are several). Seed s of every agent
uses the same key (common random numbers), so agents differ only in their
intrinsic reward.

Printed: Table 2 (mean ± std over seeds of the average cumulative external
reward per episode, plus the share of episodes that reach the goal), Table 3
(per quarter of training, the share of steps where the surprise term wins the
gate), and reliability after Chan et al. 2020 on the learning curves (mean
external reward per step in ``--bins`` windows): dispersion across runs (IQR,
median over time), risk across runs (CVaR of the final window), dispersion
across time (IQR of detrended curve in windows, median over runs), short- and
long-term risk across time (CVaR of differences / of drawdown). Learning-curve
and reliability plots are saved in ``--out``.

    python experiments/reward_gating.py                    # 4 agents x 5 seeds x 100k steps, ~4 min on 2 cores
    python experiments/reward_gating.py --full             # 15 seeds per agent (the paper's count)
    python experiments/reward_gating.py --noise ou         # temporally correlated exploration (see below)
    python experiments/reward_gating.py --env navigate     # sparse lidar-style task (eps = 0.01)

Interrupted runs resume from ``--out/checkpoints`` (chunks of ``--chunk`` steps).

Why our rewards are far below the paper's (measured on 2 cores, 15 seeds per agent; reward per episode, share of
episodes at the flag). The environment is not the cause: it equals Gym's equations (float64 transcription) and
gymnax 1.0.1's step for step (except at the left wall, where gymnax departs from Gym). Exploration is:

* iid Gaussian noise (std 1.0 -> 0.05, the default): 20k steps -- all four negative (-24.8 ... -27.6), 0-0.7 %
  of episodes at the flag; 100k steps (``--full``, 1,346 s with other runs on the cores) -- the paper's order,
  gated MC 8.3 (31 %) > MC -15.7 > FM -18.3 > Baseline -19.0 (6-10 %), gated MC ahead of MC by +24.0 ± 44.2
  paired over 15 seeds (beyond two standard errors: the verdict says "supports"). Independent pushes rarely carry
  the car up the hill.
* Ornstein-Uhlenbeck noise (``--noise ou``, theta 0.15, the same std schedule): the baseline alone solves the task
  -- 20k: Baseline 41.3 (67 %) > FM 26.5 (61 %) > gated MC -10.3 (40 %) > MC -15.5 (37 %); 100k: Baseline 85.6
  (97 %) > FM 52.9 (81 %) > gated MC 32.5 (66 %) > MC 28.8 (63 %). Smaller OU scales reach the flag less
  (noise-init 0.5: Baseline 29.8, 47 %; 0.3: 2.2, 6 %), with the same order.
* OU with the intrinsic terms scaled down (``--eps 0.1``): Baseline 41.3 > FM 35.7 > MC 33.8 > gated MC 24.9.

So intrinsic motivation helps here only where exploration is poor (iid noise), and there gated MC is best, as in
the paper; once exploration reaches the flag, the intrinsic terms (up to eps per step against the flag's +100
once) distract. The surprise term wins the gate far more often than in the paper early on (first quarter: 5.7 %
of all steps at 100k, 8-14 % of the learning steps at 20k, vs 0.36 %) and almost never afterwards, as in the
paper. The default therefore runs the paper's length (100k steps) with 5 seeds per agent (~4 min).
"""

from __future__ import annotations

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expkit

from jaxkit import rl
from jaxkit.checkpoint import Run, config_digest
from jaxkit.rl import reliability as rel

NAMES = {"baseline": "Baseline", "fm": "FM", "mc": "MC", "gated": "gated MC"}


def parse_args(argv=None):
    p = expkit.parser(__doc__.split("\n\n")[0])
    p.add_argument("--env", default="mountaincar", choices=["mountaincar", "navigate"])
    p.add_argument("--agents", nargs="+", default=list(rl.AGENTS), choices=rl.AGENTS)
    p.add_argument("--seeds", type=int, default=5, help="runs per agent (paper: 15, --full)")
    p.add_argument("--seed", type=int, default=0, help="run s of every agent uses key seed + s")
    p.add_argument("--steps", type=int, default=100_000, help="environment steps per run (100k: our paper length)")
    p.add_argument("--hidden", default="32,32", help="hidden widths of all four networks (our choice)")
    p.add_argument("--sigma", type=float, default=0.01, help="surprise threshold (our choice, see docs)")
    p.add_argument("--eps", type=float, default=None, help="eps_fm = eps_mc (paper: 1; 0.01 in the sparse task)")
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--tau", type=float, default=0.005, help="target soft-update rate (our choice)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--buffer", type=int, default=100_000, help="replay capacity (our choice)")
    p.add_argument("--warmup", type=int, default=1_000, help="transitions before learning starts (our choice)")
    p.add_argument("--noise-init", type=float, default=1.0, help="exploration std at step 0 (our choice)")
    p.add_argument("--noise-final", type=float, default=0.05, help="exploration std at the end (our choice)")
    p.add_argument(
        "--noise",
        choices=["gaussian", "ou"],
        default="gaussian",
        help="exploration noise: independent Gaussian draws, or an Ornstein-Uhlenbeck process (Lillicrap et al.)",
    )
    p.add_argument("--noise-theta", type=float, default=0.15, help="OU mean-reversion rate per step")
    p.add_argument("--bins", type=int, default=100, help="points of each learning curve")
    p.add_argument("--alpha", type=float, default=0.05, help="CVaR tail fraction")
    p.add_argument("--chunk", type=int, default=5_000, help="steps per compiled call / checkpoint")
    p.add_argument("--full", action="store_true", help="15 seeds per agent, as the paper")
    p.add_argument("--out", default="results/reward_gating")
    p.add_argument("--restart", action="store_true", help="discard this configuration's checkpoints and start over")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.full:
        args.seeds = 15
    if args.eps is None:
        args.eps = 0.01 if args.env == "navigate" else 1.0
    if args.steps % args.bins or (args.steps // args.bins) < 2:
        p.error("--steps must be a multiple of --bins with at least 2 steps per bin")
    args.chunk = min(args.chunk, args.steps)
    if args.steps % args.chunk:
        p.error("--steps must be a multiple of --chunk")
    return args


def make_trainer(args):
    env = rl.MountainCarContinuous() if args.env == "mountaincar" else rl.SparseNavigate()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    agent = rl.DDPG(env.obs_dim, env.act_dim, hidden=hidden, gamma=args.gamma, tau=args.tau)
    im = rl.IntrinsicMotivation(
        env.obs_dim, env.act_dim, sigma=args.sigma, eps_fm=args.eps, eps_mc=args.eps, hidden=hidden
    )
    return rl.Trainer(
        env,
        agent,
        im,
        total_steps=args.steps,
        buffer_size=args.buffer,
        batch_size=args.batch_size,
        warmup_steps=args.warmup,
        noise_init=args.noise_init,
        noise_final=args.noise_final,
        noise=args.noise,
        noise_theta=args.noise_theta,
    )


def empty_history(n_runs, bins):
    z = lambda *s: np.zeros(s).tolist()
    return {
        "steps_done": 0,
        "curve_sum": z(n_runs, bins),
        "ret_sum": z(n_runs),
        "episodes": z(n_runs),
        "successes": z(n_runs),
        "wins": z(n_runs, 4),
        "wins_learning": z(n_runs, 4),  # only the steps after the warm-up (the modules are learning)
        "int_sum": z(n_runs, 4),
        "mc_sum": z(n_runs, 4),
        "diverged": [False] * n_runs,
    }


def accumulate(hist, logs, start, args):
    """Fold one chunk of per-step logs (runs, chunk) into the history's running sums (host side)."""
    lg = {k: np.asarray(v, np.float64) for k, v in logs.items()}
    n_runs, chunk = lg["ext_reward"].shape
    bin_size, q_size = args.steps // args.bins, args.steps // 4
    t = start + np.arange(chunk)
    curve = np.asarray(hist["curve_sum"])
    np.add.at(curve, (slice(None), t // bin_size), lg["ext_reward"])
    hist["curve_sum"] = curve.tolist()
    done = lg["done"] > 0
    hist["ret_sum"] = (np.asarray(hist["ret_sum"]) + np.sum(np.where(done, lg["episode_return"], 0), 1)).tolist()
    hist["episodes"] = (np.asarray(hist["episodes"]) + done.sum(1)).tolist()
    hist["successes"] = (np.asarray(hist["successes"]) + (lg["success"] > 0).sum(1)).tolist()
    for name, key in (("wins", "surprise_wins"), ("int_sum", "int_reward"), ("mc_sum", "mc_term")):
        acc = np.asarray(hist[name])
        for q in range(4):
            sel = (t // q_size) == q
            acc[:, q] += lg[key][:, sel].sum(1)
        hist[name] = acc.tolist()
    acc = np.asarray(hist.setdefault("wins_learning", np.zeros((n_runs, 4)).tolist()))
    for q in range(4):
        sel = ((t // q_size) == q) & (t >= args.warmup)
        acc[:, q] += lg["surprise_wins"][:, sel].sum(1)
    hist["wins_learning"] = acc.tolist()
    hist["steps_done"] = start + chunk
    return hist


def train(args, trainer, kinds, keys, ckdir, config=None):
    n = len(kinds)
    run = Run(
        ckdir,
        trainer.init_many(keys),
        {"run": config, "kinds": kinds, "keys": keys},
        total=args.steps,
        what="step",
        overwrite=args.restart,
    )
    states = jax.tree.map(jnp.asarray, run.state)
    hist = run.metadata.get("history", empty_history(n, args.bins))
    placed, _ = rl.place_runs(states)
    kinds_p, _ = rl.place_runs(jnp.asarray(kinds))
    from tqdm.auto import tqdm

    bar = tqdm(total=args.steps, initial=hist["steps_done"], desc=f"{n} runs", unit="step", disable=args.no_progress)
    while hist["steps_done"] < args.steps:
        start = hist["steps_done"]
        placed, logs = trainer.run_many(placed, kinds_p, args.chunk)
        logs = jax.tree.map(lambda x: np.asarray(x)[:n], logs)
        hist = accumulate(hist, logs, start, args)
        hist["diverged"] = np.asarray(placed.diverged)[:n].tolist()
        run.save(hist["steps_done"], jax.tree.map(lambda x: x[:n], placed), {"history": hist})
        bar.update(args.chunk)
        bar.set_postfix(successes=int(np.sum(hist["successes"])))
    bar.close()
    run.close()
    return hist


def reliability_table(curves, alpha, window):
    """Chan et al. measures for one agent's (runs, T) curves."""
    smooth = np.asarray(rel.moving_average(curves, max(1, curves.shape[1] // 20)))
    return {
        "DR (IQR across runs)": float(np.median(rel.dispersion_across_runs(smooth))),
        "RR (CVaR across runs)": float(rel.risk_across_runs(curves[:, -1], alpha)),
        "DT (IQR across time)": float(np.median(np.mean(rel.dispersion_across_time(curves, window), axis=1))),
        "SRT (CVaR of differences)": float(np.median(rel.short_term_risk_across_time(curves, alpha))),
        "LRT (CVaR of drawdown)": float(np.median(rel.long_term_risk_across_time(curves, alpha))),
    }


def report(args, hist, agent_of_run, out):
    bin_size = args.steps // args.bins
    curves = np.asarray(hist["curve_sum"]) / bin_size
    avg_ret = np.asarray(hist["ret_sum"]) / np.maximum(np.asarray(hist["episodes"]), 1)
    succ = np.asarray(hist["successes"]) / np.maximum(np.asarray(hist["episodes"]), 1)
    q_steps = args.steps // 4
    diverged = np.asarray(hist["diverged"], bool)
    res = {"config": vars(args), "agents": {}}
    rows, rows3, rows_r = [], [], []
    for a in args.agents:
        sel = (np.asarray(agent_of_run) == a) & ~diverged
        bad = [int(i) for i in np.where((np.asarray(agent_of_run) == a) & diverged)[0]]
        wins = np.asarray(hist["wins"])[sel] / q_steps
        learn_steps = [max(min((q + 1) * q_steps, args.steps) - max(q * q_steps, args.warmup), 0) for q in range(4)]
        wins_l = np.asarray(hist.get("wins_learning", np.zeros((len(sel), 4))))[sel] / np.maximum(learn_steps, 1)
        r = reliability_table(curves[sel], args.alpha, max(2, args.bins // 10)) if sel.sum() >= 2 else {}
        res["agents"][a] = {
            "avg_return": avg_ret[sel].tolist(),
            "success_rate": succ[sel].tolist(),
            "surprise_share_per_quarter": wins.mean(0).tolist() if len(wins) else [],
            "surprise_share_after_warmup": wins_l.mean(0).tolist() if len(wins_l) else [],
            "reliability": r,
            "diverged_runs": bad,
            "curves": curves[sel].tolist(),
        }
        rows.append(
            [
                NAMES[a],
                expkit.mean_std(avg_ret[sel]),
                expkit.mean_std(succ[sel], 100, 1),
                f"{sel.sum()}" + (f" ({len(bad)} diverged)" if bad else ""),
            ]
        )
        if a in ("mc", "gated"):
            rows3.append([NAMES[a], "all steps"] + [f"{100 * w:.2f} %" for w in wins.mean(0)])
            rows3.append(["", f"after the {args.warmup:,}-step warm-up"] + [f"{100 * w:.2f} %" for w in wins_l.mean(0)])
        rows_r.append([NAMES[a]] + [f"{v:.4g}" for v in r.values()])
    print(
        expkit.format_table(
            ["agent", "avg cumulative external reward / episode", "episodes at goal %", "runs"],
            rows,
            "Table 2 -- mean ± std over seeds",
        )
    )
    print("paper (MountainCar, DDPG): Baseline 53.4 ± 58.4, FM 54.8 ± 59.3, MC 60.2 ± 52.7, gated MC 66.1 ± 55.6\n")
    if rows3:
        print(
            expkit.format_table(
                ["agent", "steps counted", "Q1", "Q2", "Q3", "Q4"],
                rows3,
                "Table 3 -- share of steps where the surprise term wins the gate",
            )
        )
        print("paper (MountainCar, gated MC): 0.36 % in the first quarter, 0 % later\n")
    names = list(reliability_table(curves[:2], args.alpha, 2).keys()) if len(curves) >= 2 else []
    print(expkit.format_table(["agent"] + names, rows_r, f"Reliability (Chan et al. 2020; alpha = {args.alpha})"))
    plots(args, res, out)
    res["verdict"] = expkit.verdict(_verdict(args, res), out)
    expkit.write_json(out, res)
    return res


PAPER_REWARD = {"baseline": 53.4, "fm": 54.8, "mc": 60.2, "gated": 66.1}


def _verdict(args, res):
    agents = {a: r for a, r in res["agents"].items() if r["avg_return"]}
    mean = {a: float(np.mean(r["avg_return"])) for a, r in agents.items()}
    paper_order = [a for a in ("gated", "mc", "fm", "baseline") if a in mean]
    here_order = sorted(mean, key=lambda a: -mean[a])
    goal = {a: 100 * float(np.mean(r["success_rate"])) for a, r in agents.items()}
    rows = []
    if args.env == "mountaincar" and "gated" in mean and len(mean) >= 2:
        runner_up = max((a for a in mean if a != "gated"), key=mean.get)
        d, text = expkit.paired(
            agents["gated"]["avg_return"], agents[runner_up]["avg_return"], scale=1.0, unit="reward"
        )
        rows.append(
            expkit.claim(
                "reward gating (gated MC) gives the highest external reward",
                "gated MC 66.1 ± 55.6 vs MC 60.2, FM 54.8, Baseline 53.4 (reward per episode, 15 runs)",
                f"gated MC {mean['gated']:.1f} vs the next best, {NAMES[runner_up]} {mean[runner_up]:.1f}: "
                f"paired difference {text}",
                d > 0,
                "gated MC is best beyond seed noise"
                if d > 0
                else "gated MC is not best beyond seed noise"
                + (
                    f"; with {args.seeds} seeds a difference of the paper's size is within the noise (--full runs 15: "
                    "gated MC 8.3 ± 45.4 > MC -15.7 > FM -18.3 > Baseline -19.0 measured, "
                    "+24.0 ± 44.2 over MC: supports)"
                    if args.seeds < 15 and args.noise == "gaussian"
                    else ""
                ),
            )
        )
    if args.env == "mountaincar" and len(paper_order) >= 2:
        rows.append(
            expkit.claim(
                "reward gating gives the highest external reward: gated MC > MC > FM > Baseline",
                "avg cumulative external reward per episode: "
                + ", ".join(f"{NAMES[a]} {PAPER_REWARD[a]}" for a in paper_order),
                ", ".join(f"{NAMES[a]} {mean[a]:.1f}" for a in here_order)
                + " (episodes at goal: "
                + ", ".join(f"{NAMES[a]} {goal[a]:.0f} %" for a in here_order)
                + f"); {args.seeds} seeds x {args.steps:,} steps",
                here_order == paper_order,
                ("the paper's order of the means" if here_order == paper_order else "another order of the means")
                + (
                    "; rewards below the paper's: most episodes end without reaching the goal"
                    if max(mean.values()) < 0.5 * min(PAPER_REWARD.values())
                    else ""
                ),
            )
        )
    if "gated" in agents and agents["gated"]["surprise_share_per_quarter"]:
        q = [100 * w for w in agents["gated"]["surprise_share_after_warmup"]]
        q_all = [100 * w for w in agents["gated"]["surprise_share_per_quarter"]]
        rows.append(
            expkit.claim(
                "in gated MC the surprise term rarely wins the gate, and ever less often",
                "0.36 % of steps in the first quarter, 0 % later (Table 3)",
                "share per quarter after the warm-up "
                + " / ".join(f"{v:.2f} %" for v in q)
                + " (all steps, the untrained warm-up included: "
                + " / ".join(f"{v:.2f} %" for v in q_all)
                + ")",
                q[0] <= 1.0 and q[-1] <= q[0],
                "rare (at most 1 % of the learning steps) and falling"
                if q[0] <= 1.0 and q[-1] <= q[0]
                else f"falling, but {q[0] / 0.36:.0f}x the paper's share in the first quarter"
                if q[-1] <= q[0]
                else "not falling",
                comparable=True if args.env == "mountaincar" else "another environment (--env)",
            )
        )
    return rows


def plots(args, res, out):
    plt = expkit.pyplot()
    if plt is None:
        return
    x = (np.arange(args.bins) + 0.5) * (args.steps // args.bins)
    fig, ax = plt.subplots(figsize=(7, 4))
    for a, r in res["agents"].items():
        c = np.asarray(r["curves"])
        if len(c) == 0:
            continue
        ax.plot(x, np.median(c, 0), label=NAMES[a])
        ax.fill_between(x, np.percentile(c, 25, 0), np.percentile(c, 75, 0), alpha=0.2)
    ax.set_xlabel("environment step")
    ax.set_ylabel("mean external reward per step (median, IQR)")
    ax.legend()
    expkit.save_figure(fig, out, "learning_curves.png")
    agents = [a for a, r in res["agents"].items() if r["reliability"]]
    if agents:
        keys = list(res["agents"][agents[0]]["reliability"])
        fig, axes = plt.subplots(1, len(keys), figsize=(3 * len(keys), 3))
        for ax, k in zip(np.atleast_1d(axes), keys):
            ax.bar([NAMES[a] for a in agents], [res["agents"][a]["reliability"][k] for a in agents])
            ax.set_title(k, fontsize=8)
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        expkit.save_figure(fig, out, "reliability.png")


@expkit.experiment
def main(argv=None):
    args = parse_args(argv)
    agent_of_run = [a for a in args.agents for _ in range(args.seeds)]
    seeds = [args.seed + s for a in args.agents for s in range(args.seeds)]
    expkit.print_config(args, {"runs": len(seeds), "seeds": sorted(set(seeds))})
    out = expkit.output_dir(args.out)
    trainer = make_trainer(args)
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in seeds])
    kinds = rl.kinds_index(agent_of_run)
    keep = {k: v for k, v in vars(args).items() if k not in ("out", "no_progress", "chunk", "full", "restart")}
    tag = config_digest(keep, 10)
    t0 = time.time()
    hist = train(args, trainer, kinds, keys, expkit.state_dir(args.out, "checkpoints", tag), keep)
    dt = time.time() - t0
    print(
        f"{len(seeds)} runs x {args.steps} steps in {dt:.1f} s "
        f"({len(seeds) * args.steps / max(dt, 1e-9):.0f} run-steps/s)\n"
    )
    return report(args, hist, agent_of_run, out)


if __name__ == "__main__":
    main()
