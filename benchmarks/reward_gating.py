"""Reward-gating RL: many seeds as one vmapped program vs sequential runs of the same jitted program.

Lines printed (``<what>: <ratio>x (baseline <t> s, jaxkit <t> s)``; ratio > 1 = jaxkit faster), then the
environment steps per second of each:

(a) 15 runs (the gated-MC agent, 15 seeds) of ``--steps`` MountainCar steps
    each: one ``Trainer.run_many`` call (``jit(vmap(scan))``) vs 15 calls of
    the single-run program ``Trainer.run`` (``jit(scan)``), both compiled
    beforehand, on one device;
(b) the same with the 15 runs spread over the 2 forced host CPU devices
    (``jaxkit.rl.place_runs``; padded to 16), i.e. both cores, vs the same
    sequential baseline (the script forces 2 host devices before JAX starts,
    unless ``XLA_FLAGS`` is already set; the baseline runs on the first).

Hidden widths: the experiment's default (32, 32) and, with ``--hidden``, others.
At these sizes one run's step is a few dozen tiny matmuls: XLA:CPU already
runs each near one core's peak, so ``vmap`` removes the per-op overhead but
cannot beat the arithmetic; the second core is what sharding adds.

    python benchmarks/reward_gating.py      # ~2 min on 2 CPU cores
"""

from __future__ import annotations

import os

if "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from benchkit import best_time, parse, report

from jaxkit import rl


def bench(hidden, steps, runs, repeat):
    env = rl.MountainCarContinuous()
    tr = rl.Trainer(
        env,
        rl.DDPG(2, 1, hidden=hidden),
        rl.IntrinsicMotivation(2, 1, hidden=hidden),
        total_steps=10 * steps,
        buffer_size=10_000,
        warmup_steps=100,
    )
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in range(runs)])
    kinds = rl.kinds_index(["gated"] * runs)
    dev0 = jax.devices()[0]
    states = jax.device_put(tr.init_many(keys), dev0)
    singles = [jax.tree.map(lambda x, i=i: x[i], states) for i in range(runs)]

    t = time.perf_counter()
    jax.block_until_ready(tr.run(singles[0], kinds[0], steps))
    jax.block_until_ready(tr.run_many(states, jnp.asarray(kinds), steps))
    print(f"hidden {hidden}: compile + first call {time.perf_counter() - t:.1f} s", flush=True)

    def sequential():
        return jax.block_until_ready([tr.run(s, k, steps)[1]["ext_reward"] for s, k in zip(singles, kinds)])

    def vmapped():
        return jax.block_until_ready(tr.run_many(states, jnp.asarray(kinds), steps)[1]["ext_reward"])

    t_seq, out_seq = best_time(sequential, repeat)
    t_vm, out_vm = best_time(vmapped, repeat)
    np.testing.assert_allclose(np.stack(out_seq), np.asarray(out_vm), rtol=1e-3, atol=1e-4)
    total = runs * steps
    report(f"{runs} seeds x {steps} steps, hidden {hidden}: vmapped (1 device) vs {runs} sequential runs", t_seq, t_vm)
    lines = [f"  steps/s: sequential {total / t_seq:,.0f}, vmapped {total / t_vm:,.0f}"]
    if jax.device_count() > 1:
        placed, n = rl.place_runs(states)
        kp, _ = rl.place_runs(jnp.asarray(kinds))
        jax.block_until_ready(tr.run_many(placed, kp, steps))

        def sharded():
            return jax.block_until_ready(tr.run_many(placed, kp, steps)[1]["ext_reward"])

        t_sh, out_sh = best_time(sharded, repeat)
        np.testing.assert_allclose(np.asarray(out_sh)[:n], np.asarray(out_vm), rtol=1e-3, atol=1e-4)
        report(
            f"{runs} seeds x {steps} steps, hidden {hidden}: vmapped over {jax.device_count()} host devices vs "
            f"{runs} sequential runs",
            t_seq,
            t_sh,
        )
        lines.append(f"  steps/s: vmapped + sharded {total / t_sh:,.0f}")
    print("\n".join(lines), flush=True)


# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"runs": 64, "steps": 2000}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--hidden", nargs="+", default=["32,32"], help="hidden widths to try, e.g. 16,16 32,32 64,64")
    args = parse(p, argv, FULL)
    print(f"devices: {jax.devices()}")
    for h in args.hidden:
        bench(tuple(int(x) for x in h.split(",")), args.steps, args.runs, args.repeat)


if __name__ == "__main__":
    main()
