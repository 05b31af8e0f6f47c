"""Masks: batched criteria and masked optimizer steps, each against its baseline in the same process.

1. All 12 criteria for every layer in **one jitted call** (``prune.all_scores``)
   vs a Python loop that calls one jitted criterion per layer (12 x layers calls).
2. A training step with ``masked_updates`` + ``apply_masks`` vs the same step
   unmasked (the overhead of keeping pruned weights at zero; target < 1.2x).

Compile time excluded (one warm-up call each), best of ``--repeat``.

    python benchmarks/masks.py [--repeat 3]
"""

from __future__ import annotations

import argparse

import jax
import optax
from benchkit import best_time, parse, report

from jaxkit import models, prune

CFG = (32, 32, "M", 64, 64, "M", 128, 128, "M")


# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"batch": 256}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    args = parse(ap, argv, FULL)
    model = models.VGG(CFG, num_classes=10)
    x = jax.random.uniform(jax.random.key(0), (args.batch, 32, 32, 3))
    y = jax.random.randint(jax.random.key(1), (args.batch,), 0, 10)
    variables = model.init(jax.random.key(2), x[:1])
    graph = prune.build_graph(model, variables, x[:1])
    stats = prune.collect_stats(model, variables, x.reshape((2, -1) + x.shape[1:]), y.reshape(2, -1), graph)
    names = [g.name for g in graph.prunable]
    print(f"VGG {CFG} on 32x32x3, {len(names)} prunable layers, 12 criteria, batch {args.batch}")

    def batched():
        jax.block_until_ready(prune.all_scores(graph, variables, stats))

    def loop():
        out = {}
        for c in prune.CRITERIA:
            for n in names:
                out[(c, n)] = prune.all_scores(graph, variables, stats, criteria=[c], groups=[n])[c][n]
        jax.block_until_ready(out)

    batched(), loop()
    tb, _ = best_time(batched, args.repeat)
    tl, _ = best_time(loop, args.repeat)
    report("criteria: 12 x all layers in one jitted call vs per-layer loop", tl, tb)

    masks = prune.channel_masks(prune.scores("l1", graph, variables), ratio=0.5)
    elem = prune.expand(graph, masks, variables["params"])
    params = prune.apply_masks(variables["params"], elem)
    rest = {k: v for k, v in variables.items() if k != "params"}

    def make_step(tx, masked):
        @jax.jit
        def step(p, s):
            def loss(p):
                logits, _ = model.apply({"params": p, **rest}, x, train=True, mutable=["batch_stats"])
                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

            g = jax.grad(loss)(p)
            u, s = tx.update(g, s, p)
            p = optax.apply_updates(p, u)
            return (prune.apply_masks(p, elem) if masked else p), s

        return step

    base_tx = optax.sgd(0.01, momentum=0.9)
    mask_tx = optax.chain(base_tx, prune.masked_updates(elem))
    runs = {}
    for name, tx, masked in (("plain", base_tx, False), ("masked", mask_tx, True)):
        step, s = make_step(tx, masked), tx.init(params)

        def run(step=step, s=s):
            p, st = params, s
            for _ in range(10):
                p, st = step(p, st)
            jax.block_until_ready(p)

        run()
        runs[name], _ = best_time(run, args.repeat)
    overhead = runs["masked"] / runs["plain"]
    print(f"masked step overhead: {overhead:.3f}x (target < 1.2x)")
    report(
        "train step: unmasked vs masked_updates + apply_masks (overhead, < 1.2x wanted; ratio > 0.83 means met)",
        runs["plain"],
        runs["masked"],
    )


if __name__ == "__main__":
    main()
