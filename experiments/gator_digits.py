"""Gator on digits: channel gates with FLOPs / memory / latency costs vs L1 pruning at the same MACs.

"Gator: Customizable Channel Pruning of Neural Networks with Gating" (Passov,
David, Netanyahu, ICANN 2021). A small CIFAR-style ResNet (option-B shortcuts,
so residual streams are gated edges too) is trained on digits; then for each
cost kind, the iterative loop with increasing ``alpha``: a gated phase (gates
``theta_0 = ln 199``, binary Gumbel samples with the straight-through gradient,
``loss = CE + alpha * cost``, gates with theta <= 0 pruned for good) that starts
from the previous alpha's **gated** weights, then the gates are folded, the
channels removed physically and the narrower net fine-tuned. The baseline
prunes the pre-trained net by L1 norm with one uniform per-edge ratio chosen to
match Gator's MACs, and gets the same fine-tuning.

Prints accuracy (mean ± std over seeds) vs params / MACs / measured CPU latency
of the physically pruned model, the removed residual blocks, and saves the
accuracy-vs-MACs trade-off plot.

    python experiments/gator_digits.py                       # ~10 min on 2 CPU cores
    python experiments/gator_digits.py --kinds flops --alphas 0.25 0.5 1 2 4 --seeds 0 1 2

Paper (CIFAR-10 ResNet-56): 93.58 % (unpruned 93.63) at -43.39 % FLOPs (FLOPs
cost, alpha = 1); 92.59 % at -57.98 % FLOPs / -75.08 % memory (memory, alpha = 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

import common
from jaxkit import data as jdata
from jaxkit import gates, models, prune


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", help="'digits' or 'tfds:NAME' (prepared offline)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--stages", default="1,1,1", help="blocks per stage")
    p.add_argument("--widths", default="16,32,32")
    p.add_argument("--kinds", nargs="+", default=["flops", "memory", "latency"])
    p.add_argument("--alphas", type=float, nargs="+", default=[1.0, 4.0, 16.0], help="increasing; iterative")
    p.add_argument("--pretrain-epochs", type=int, default=12)
    p.add_argument("--gated-epochs", type=int, default=5)
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam lr for pre-training")
    p.add_argument("--model-lr", type=float, default=1e-3, help="Adam lr of the weights in gated/fine-tune phases")
    p.add_argument("--gate-lr", type=float, default=2.0, help="SGD (momentum 0.9) lr of the gates")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", default="results/gator_digits")
    return p.parse_args(argv)


def latency(model, variables, x, repeat=20):
    f = jax.jit(partial(model.apply, train=False))
    jax.block_until_ready(f(variables, x))
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(f(variables, x))
        best = min(best, time.perf_counter() - t)
    return best


def gated_phase(args, model, graph, variables, theta, cm, alpha, ds, key):
    apply = gates.gated(model, graph)
    tx = gates.split_optimizer(optax.adam(args.model_lr), optax.sgd(args.gate_lr, 0.9))
    params = {"model": variables["params"], "gates": theta}
    opt = tx.init(params)
    step = gates.make_train_step(apply, cm, tx)
    stats = variables["batch_stats"]
    for e in range(args.gated_epochs):
        for i, (xb, yb) in enumerate(jdata.batches(jax.random.fold_in(key, e), ds.train.x, ds.train.y,
                                                   batch_size=args.batch_size, drop_remainder=True)):
            k = jax.random.fold_in(jax.random.fold_in(key, 99), e * 1000 + i)
            params, opt, stats, _ = step(params, opt, stats, xb, yb, k, alpha)
    return {"params": params["model"], "batch_stats": stats}, params["gates"]


def finetune(args, small, variables, ds, key):
    st = common.small_state(small, variables, ds.train.x[:1], optax.adam(args.model_lr))
    st, _ = models.train(st, ds, key=key, epochs=args.finetune_epochs, batch_size=args.batch_size, progress=False)
    return models.evaluate(st, ds.test.x, ds.test.y)["accuracy"]


def l1_masks_at(graph, variables, names, target_macs):
    """Uniform per-edge L1 ratio (bisection) whose MACs come closest to ``target_macs`` from above."""
    all_s = prune.scores("l1", graph, variables, groups=names)
    lo, hi = 0.0, 0.95
    for _ in range(20):
        mid = (lo + hi) / 2
        masks = prune.channel_masks(all_s, ratio=mid)
        if prune.count(graph, masks).macs > target_macs:
            lo = mid
        else:
            hi = mid
    return prune.channel_masks(all_s, ratio=lo)


def main(argv=None):
    args = parse_args(argv)
    ds = common.load_dataset(args.dataset, args.data_dir)
    stages = tuple(int(s) for s in args.stages.split(","))
    widths = tuple(int(s) for s in args.widths.split(","))
    common.print_config(args, {"data": repr(ds)})
    model = models.ResNet(stages, widths, ds.num_classes, "B")
    t_all = time.perf_counter()
    rows = {}
    base_acc = []
    x_lat = jnp.asarray(ds.test.x[:256])
    for seed in args.seeds:
        k_init, k_train = jax.random.split(jax.random.key(seed))
        steps = max(args.pretrain_epochs * (len(ds.train) // args.batch_size), 1)
        st = models.create_train_state(k_init, model, ds.train.x[:1],
                                       optax.adam(optax.cosine_decay_schedule(args.lr, steps)))
        st, _ = models.train(st, ds, key=k_train, epochs=args.pretrain_epochs, batch_size=args.batch_size,
                             progress=False)
        base = models.evaluate(st, ds.test.x, ds.test.y)["accuracy"]
        base_acc.append(base)
        graph = prune.build_graph(model, st.variables, ds.train.x[:1])
        names = gates.edges(graph)
        full_cost = prune.count(graph)
        full_lat = latency(model, st.variables, x_lat)
        print(f"seed {seed}: unpruned {base:.4f}, {full_cost.params:,} params, {full_cost.macs:,} MACs, "
              f"{len(names)} gated edges, latency {full_lat * 1e3:.2f} ms / 256", flush=True)
        for kind in args.kinds:
            lat_table = None
            if kind == "latency":
                def build(masks, st=st, graph=graph):
                    small = common.narrow_resnet(model, graph, masks) if masks else model
                    v = prune.remove(graph, masks, st.variables) if masks else st.variables
                    f = jax.jit(partial(small.apply, train=False))
                    return lambda: f(v, x_lat)
                lat_table = gates.latency_factors(build, graph, names, repeat=10)
            cm = gates.cost_model(graph, kind, names=names, latency=lat_table)
            variables, theta = st.variables, gates.init_gates(graph, groups=names)
            for a_i, alpha in enumerate(args.alphas):
                key = jax.random.fold_in(jax.random.key(seed), 100 * a_i + len(kind))
                variables, theta = gated_phase(args, model, graph, variables, theta, cm, alpha, ds, key)
                masks = gates.fold(theta)
                dead = [n for n in names if not np.any(np.asarray(theta[n]) > 0)]
                blocks = [n.split("/")[1] for n in dead if n.endswith("/Conv_0") and "BasicBlock" in n]
                small = common.narrow_resnet(model, graph, masks)
                pv = prune.remove(graph, masks, variables)
                acc = finetune(args, small, pv, ds, jax.random.fold_in(key, 1))
                cost = prune.count(graph, masks)
                lat = latency(small, pv, x_lat)
                # L1 baseline at the same MACs, from the pre-trained weights, same fine-tuning
                l1 = l1_masks_at(graph, st.variables, names, cost.macs)
                l1_cost = prune.count(graph, l1)
                l1_acc = finetune(args, common.narrow_resnet(model, graph, l1), prune.remove(graph, l1, st.variables),
                                  ds, jax.random.fold_in(key, 1))
                r = rows.setdefault((kind, alpha), {"acc": [], "params": [], "macs": [], "lat": [], "blocks": [],
                                                    "l1_acc": [], "l1_macs": []})
                for k_, v_ in (("acc", acc), ("params", cost.params), ("macs", cost.macs), ("lat", lat / full_lat),
                               ("blocks", len(blocks)), ("l1_acc", l1_acc), ("l1_macs", l1_cost.macs)):
                    r[k_].append(v_)
                print(f"  {kind:8s} alpha {alpha:5.2f}: acc {acc:.4f} (L1 {l1_acc:.4f} at {l1_cost.macs:,} MACs)  "
                      f"params {cost.params:,}  MACs {cost.macs:,}  latency x{full_lat / lat:.2f}  "
                      f"removed blocks {blocks}", flush=True)
    table = []
    for (kind, alpha), r in rows.items():
        table.append([kind, alpha, common.mean_std(r["acc"], 100), common.mean_std(r["l1_acc"], 100),
                      f"{np.mean(r['params']):,.0f}", f"-{1 - np.mean(r['macs']) / full_cost.macs:.1%}",
                      f"{1 / np.mean(r['lat']):.2f}x", f"{np.mean(r['blocks']):.1f}"])
    print(common.format_table(["cost", "alpha", "Gator acc %", "L1 acc % (same MACs)", "params", "MACs",
                               "CPU speed-up", "blocks removed"], table,
                              title=f"\nUnpruned {common.mean_std(base_acc, 100)} % ({full_cost.params:,} params, "
                                    f"{full_cost.macs:,} MACs); {len(args.seeds)} seeds"))
    out = common.output_dir(args.out)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"config": vars(args), "unpruned": base_acc,
                   "rows": [{"kind": k, "alpha": a, **r} for (k, a), r in rows.items()]}, f, indent=1)
    plt = common.pyplot()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        for kind in args.kinds:
            pts = [(np.mean(r["macs"]), np.mean(r["acc"])) for (k, _), r in rows.items() if k == kind]
            ax.plot(*zip(*pts), "o-", label=f"Gator ({kind})")
        pts = sorted((np.mean(r["l1_macs"]), np.mean(r["l1_acc"])) for r in rows.values())
        ax.plot(*zip(*pts), "s--", color="k", label="L1, same MACs")
        ax.axhline(np.mean(base_acc), color="grey", ls=":", label="unpruned")
        ax.set_xlabel("MACs")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "tradeoff.png"), dpi=120)
    print(f"\ntotal {time.perf_counter() - t_all:.1f} s; outputs in {out}")
    return {"unpruned": base_acc, "rows": {f"{k}:{a}": r for (k, a), r in rows.items()}}


if __name__ == "__main__":
    main()
