"""Gates: overhead of a gated training step, and latency of the physically pruned model.

1. A training step of a ResNet with Gator gates (per-sample gate sampling,
   straight-through gradient, FLOPs cost loss) vs the same step ungated
   (target < 1.3x).
2. Inference latency of the full model vs the model with half of every gated
   edge removed (``gates.fold`` + ``prune.remove``), as a speed-up ratio.

Compile time excluded (one warm-up call each), best of ``--repeat``.

    python benchmarks/gates.py [--repeat 3]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from benchkit import best_time, parse, report

from jaxkit import gates, models, prune

# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"batch": 256, "steps": 20}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    args = parse(ap, argv, FULL)
    model = models.ResNet((2, 2, 2), (16, 32, 64), 10, "B")
    x = jax.random.normal(jax.random.key(0), (args.batch, 32, 32, 3))
    y = jax.random.randint(jax.random.key(1), (args.batch,), 0, 10)
    v = model.init(jax.random.key(2), x[:1])
    graph = prune.build_graph(model, v, x[:1])
    names = gates.edges(graph)
    cm = gates.cost_model(graph, "flops")
    apply = gates.gated(model, graph)
    print(f"ResNet (2,2,2) x (16,32,64), option B, 32x32x3, batch {args.batch}: {len(names)} gated edges")
    tx = optax.sgd(0.01, 0.9)

    def make_step(gated_run):
        @jax.jit
        def step(params, opt, stats, key):
            def loss_fn(p):
                variables = {"params": p["model"], "batch_stats": stats}
                if gated_run:
                    g = gates.sample_gates(key, p["gates"], x.shape[0])
                    logits, upd = apply(variables, x, gates=g, train=True, mutable=["batch_stats"])
                    extra = gates.cost_loss(cm, g, 1.0)
                else:
                    logits, upd = model.apply(variables, x, train=True, mutable=["batch_stats"])
                    extra = 0.0
                return models.cross_entropy(logits, y).mean() + extra, upd["batch_stats"]

            (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            upd, opt = tx.update(grads, opt, params)
            return optax.apply_updates(params, upd), opt, stats

        return step

    def runner(gated_run):
        params = {"model": v["params"], "gates": gates.init_gates(graph)} if gated_run else {"model": v["params"]}
        step, opt = make_step(gated_run), tx.init(params)

        def run():
            p, o, s = params, opt, v["batch_stats"]
            for i in range(args.steps):
                p, o, s = step(p, o, s, jax.random.key(i))
            return jax.block_until_ready(p)

        run()
        return run

    tg, _ = best_time(runner(True), args.repeat)
    tu, _ = best_time(runner(False), args.repeat)
    print(f"training step: {tu / args.steps * 1e3:.1f} ms ungated, {tg / args.steps * 1e3:.1f} ms gated")
    report("gated step overhead (ungated / gated; target > 0.77, i.e. < 1.3x slower)", tu, tg)

    # 2. latency of the removed model
    theta = {
        n: jnp.where(jnp.arange(t.shape[0]) < (t.shape[0] + 1) // 2, 1.0, -1.0)
        for n, t in gates.init_gates(graph).items()
    }
    masks = gates.fold(theta)
    kept = prune.kept_counts(graph, masks)
    inner = tuple(kept[f"params/BasicBlock_{i}/Conv_0"] for i in range(6))
    widths = tuple(kept[graph.group(f"params/BasicBlock_{i}/Conv_1").name] for i in (1, 3, 5))
    small = models.ResNet((2, 2, 2), widths, 10, "B", inner_widths=inner)
    sv = prune.remove(graph, masks, v)
    xb = jax.random.normal(jax.random.key(3), (256, 32, 32, 3))
    full_f, small_f = jax.jit(model.apply), jax.jit(small.apply)
    np.testing.assert_allclose(
        small_f(sv, xb[:4]), apply(v, xb[:4], gates=gates.deterministic_gates(theta)), rtol=1e-4, atol=1e-4
    )
    jax.block_until_ready(full_f(v, xb)), jax.block_until_ready(small_f(sv, xb))
    tf, _ = best_time(lambda: jax.block_until_ready(full_f(v, xb)), args.repeat)
    ts, _ = best_time(lambda: jax.block_until_ready(small_f(sv, xb)), args.repeat)
    c0, c1 = prune.count(graph), prune.count(graph, masks)
    print(f"half of every edge removed: MACs {c0.macs:,} -> {c1.macs:,}, params {c0.params:,} -> {c1.params:,}")
    report("inference latency full vs pruned (batch 256)", tf, ts)


if __name__ == "__main__":
    main()
