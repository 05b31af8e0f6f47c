"""WGAN-GP: batched recreation cost and the fused training iteration, each against its baseline.

1. The recreation cost of ``--pixels`` pixels with all restarts in **one jitted
   loop** (pixels x starts batched through the generator) vs the same jitted
   minimisation run for one pixel at a time (target >= 5x).
2. One WGAN-GP iteration (5 critic steps in ``lax.scan`` + a generator step)
   as **one jitted call** vs the same iteration as separate jitted critic and
   generator steps driven from Python.
3. Throughput of the recreation cost at the thesis's ``thorough`` preset
   (16 starts x 100 iterations) and the extrapolated time for the thesis's
   1600 x 700 image, next to the thesis's ~20 h on 4 GPUs.

Thesis networks (DIM 8, NOISE_DIM 4, WINDOW 1). Compile time excluded (one
warm-up call each), best of ``--repeat``.

    python benchmarks/wgan_gp.py [--pixels 128] [--repeat 3]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from benchkit import best_time, parse, report

from jaxkit import anomaly, gan

# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"pixels": 512, "thorough_pixels": 1024, "batch": 256}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pixels", type=int, default=128)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--thorough-pixels", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    args = parse(ap, argv, FULL)
    print(f"devices: {jax.devices()}")
    generator, critic = gan.Generator(), gan.Critic()
    g_params = generator.init(jax.random.key(0), jnp.zeros((1, 4)))["params"]
    ga = lambda p, z: generator.apply({"params": p}, z)
    ca = lambda p, x: critic.apply({"params": p}, x)
    x = np.asarray(jax.random.uniform(jax.random.key(2), (args.pixels, 20, 1, 1), minval=-1, maxval=1))
    kw = dict(noise_dim=4, runs=args.runs, iterations=args.iterations)

    def batched():
        return anomaly.recreation_cost(jax.random.key(0), ga, g_params, x, chunk=args.pixels, **kw)

    def one_at_a_time():
        return np.concatenate(
            [
                anomaly.recreation_cost(jax.random.key(i), ga, g_params, x[i : i + 1], chunk=1, **kw)
                for i in range(len(x))
            ]
        )

    batched(), anomaly.recreation_cost(jax.random.key(0), ga, g_params, x[:1], chunk=1, **kw)
    tb, _ = best_time(batched, args.repeat)
    to, _ = best_time(one_at_a_time, 1)
    print(
        f"recreation cost, {args.pixels} pixels x {args.runs} starts x {args.iterations} iterations: "
        f"{args.pixels / tb:,.0f} pixels/s batched, {args.pixels / to:,.1f} pixels/s one at a time"
    )
    report("recreation cost batched vs one pixel at a time", to, tb)

    # 2. fused iteration vs separate jitted pieces
    preset = gan.PRESETS["gulrajani"]
    g_tx, d_tx = preset.optimizers()
    state = gan.init_state(jax.random.key(3), generator, critic, 4, x[:1], g_tx, d_tx)
    fused = gan.make_train_step(ga, ca, g_tx, d_tx, noise_dim=4, n_critic=5, order="critic_first")
    real = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (5, args.batch, 20, 1, 1)).astype(np.float32))

    @jax.jit
    def critic_step(s, r, key):
        kz, kg = jax.random.split(key)
        fake = ga(s.g_params, jax.random.normal(kz, (r.shape[0], 4)))
        grads = jax.grad(lambda p: gan.critic_loss(ca, kg, p, r, fake)[0])(s.d_params)
        upd, d_opt = d_tx.update(grads, s.d_opt, s.d_params)
        return s.replace(d_params=optax.apply_updates(s.d_params, upd), d_opt=d_opt)

    @jax.jit
    def generator_step(s, key):
        z = jax.random.normal(key, (args.batch, 4))
        grads = jax.grad(lambda p: gan.generator_loss(ca, s.d_params, ga(p, z)))(s.g_params)
        upd, g_opt = g_tx.update(grads, s.g_opt, s.g_params)
        return s.replace(g_params=optax.apply_updates(s.g_params, upd), g_opt=g_opt, step=s.step + 1)

    def run_fused(n=10):
        s = state
        for i in range(n):
            s, _ = fused(s, real, jax.random.key(i))
        return jax.block_until_ready(s)

    def run_pieces(n=10):
        s = state
        for i in range(n):
            for j in range(5):
                s = critic_step(s, real[j], jax.random.fold_in(jax.random.key(i), j))
            s = generator_step(s, jax.random.key(i))
        return jax.block_until_ready(s)

    run_fused(1), run_pieces(1)
    tf, _ = best_time(run_fused, args.repeat)
    tp, _ = best_time(run_pieces, args.repeat)
    print(f"WGAN-GP iteration (5 critic + 1 generator step, batch {args.batch}): {tf / 10 * 1e3:.1f} ms fused")
    report("train iteration fused vs separate jitted pieces", tp, tf)

    # 3. thorough preset throughput and extrapolation
    xt = np.asarray(jax.random.uniform(jax.random.key(4), (args.thorough_pixels, 20, 1, 1), minval=-1, maxval=1))
    th = lambda: anomaly.recreation_cost(
        jax.random.key(0), ga, g_params, xt, noise_dim=4, runs=16, iterations=100, chunk=args.thorough_pixels
    )
    th()
    tt, _ = best_time(th, 1)
    rate = args.thorough_pixels / tt
    hours = 1600 * 700 / rate / 3600
    print(
        f"thorough (16 x 100): {rate:,.0f} pixels/s on {jax.devices()[0].platform}; a 1600 x 700 image would take "
        f"{hours:.1f} h here (thesis: ~20 h on 4 GPUs)"
    )


if __name__ == "__main__":
    main()
