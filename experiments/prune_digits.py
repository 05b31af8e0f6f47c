"""The blending paper's Table 1 on digits: 12 pruning criteria, prune 50 % of filters, fine-tune.

"Blending Pruning Criteria for CNNs" (He et al., ICANN 2021) compares 12
channel-importance criteria by the accuracy of the pruned network before and
after fine-tuning. Here: a VGG-style CNN with BatchNorm on scikit-learn's
digits (CIFAR-10 via ``--dataset tfds:cifar10``), a uniform per-layer pruning
rate (our choice; the paper used Li et al.'s per-layer configuration), the same
fine-tuning budget for every criterion, mean ± std over seeds. Also prints the
Spearman correlation between criteria for one layer and saves it as a heatmap.

    python experiments/prune_digits.py                       # ~1-2 min on 2 CPU cores
    python experiments/prune_digits.py --seeds 0 --ratio 0.7 --finetune-epochs 5

Outputs (``--out``, default ``results/prune_digits``): ``table.json``, ``spearman.png``.
"""

from __future__ import annotations

import os
import time

import expkit
import jax
import numpy as np
import optax

from jaxkit import models, prune


def parse_args(argv=None):
    p = expkit.parser(__doc__)
    expkit.add_augment_flag(p)
    p.add_argument("--dataset", default="digits", help="'digits' or 'tfds:NAME' (prepared offline)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--cfg", default="16,16,M,32,32,M")
    p.add_argument("--epochs", type=int, default=15, help="training epochs of the unpruned network")
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--ratio", type=float, default=0.5, help="fraction of filters removed in every conv layer")
    p.add_argument("--stat-batches", type=int, default=4, help="batches for activation/gradient criteria")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam lr for training (cosine decay)")
    p.add_argument("--finetune-lr", type=float, default=1e-3, help="Adam lr for fine-tuning (same for all)")
    p.add_argument("--spearman-layer", default="params/Conv_2")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="results/prune_digits")
    return p.parse_args(argv)


@expkit.experiment
def main(argv=None):
    args = parse_args(argv)
    cfg = expkit.parse_cfg(args.cfg)
    ds = expkit.load_dataset(args.dataset, args.data_dir)
    expkit.print_config(args, {"data": repr(ds), "vgg_cfg": cfg, "criteria": prune.CRITERIA})
    ft_tx = None
    rows = {c: {"pruned": [], "finetuned": []} for c in prune.CRITERIA}
    base_acc, spearman = [], None
    t_all = time.perf_counter()
    for seed in args.seeds:
        model, state = expkit.pretrain_vgg(
            ds, cfg, seed, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, augment=expkit.augmentation(args)
        )
        k_ft = jax.random.fold_in(jax.random.key(seed), 1)
        base = models.evaluate(state, ds.test.x, ds.test.y)["accuracy"]
        base_acc.append(base)
        variables = state.variables
        graph = prune.build_graph(model, variables, ds.train.x[:1])
        n = args.stat_batches * args.batch_size
        xs = ds.train.x[:n].reshape((args.stat_batches, args.batch_size) + ds.train.x.shape[1:])
        ys = ds.train.y[:n].reshape(args.stat_batches, args.batch_size)
        stats = prune.collect_stats(model, variables, xs, ys, graph)
        scores = prune.all_scores(graph, variables, stats)
        if spearman is None:
            layer = args.spearman_layer
            spearman = np.asarray(prune.correlation_matrix({c: scores[c][layer] for c in prune.CRITERIA}))
        print(f"seed {seed}: unpruned test accuracy {base:.4f}", flush=True)
        for c in prune.CRITERIA:
            masks = prune.channel_masks(scores[c], ratio=args.ratio)
            elem = prune.expand(graph, masks, state.params)
            if ft_tx is None:  # one optimizer object for all criteria: the train step compiles once
                ft_tx = optax.chain(optax.adam(args.finetune_lr), prune.masked_updates(elem))
            opt_state = optax.tree_utils.tree_set(ft_tx.init(state.params), masks=elem)
            pruned = state.replace(params=prune.apply_masks(state.params, elem), tx=ft_tx, opt_state=opt_state)
            acc_p = models.evaluate(pruned, ds.test.x, ds.test.y)["accuracy"]
            tuned, _ = models.train(
                pruned,
                ds,
                key=k_ft,
                epochs=args.finetune_epochs,
                batch_size=args.batch_size,
                progress=False,
                augment=expkit.augmentation(args),
            )
            acc_f = models.evaluate(tuned, ds.test.x, ds.test.y)["accuracy"]
            assert all(
                np.all(np.asarray(p)[~np.asarray(m)] == 0)
                for p, m in zip(jax.tree.leaves(tuned.params), jax.tree.leaves(elem))
            ), "pruned weights moved"
            rows[c]["pruned"].append(acc_p)
            rows[c]["finetuned"].append(acc_f)
            print(f"  {c:16s} pruned {acc_p:.4f}  fine-tuned {acc_f:.4f}", flush=True)
    base_cost = prune.count(graph)
    cost = prune.count(graph, prune.channel_masks(scores["l1"], ratio=args.ratio))  # same for every criterion
    p_red, m_red = cost.reduction(base_cost)
    table = []
    for c in prune.CRITERIA:
        drop = [b - f for b, f in zip(base_acc, rows[c]["finetuned"])]
        table.append(
            [
                c,
                expkit.mean_std(rows[c]["pruned"], 100),
                expkit.mean_std(rows[c]["finetuned"], 100),
                expkit.mean_std(drop, 100),
                f"{cost.params:,}",
                f"{cost.macs:,}",
            ]
        )
    print(
        expkit.format_table(
            ["criterion", "pruned acc %", "fine-tuned acc %", "drop vs unpruned %", "params", "MACs"],
            table,
            title=f"Unpruned: {expkit.mean_std(base_acc, 100)} % test accuracy, {base_cost.params:,} params, "
            f"{base_cost.macs:,} MACs; pruned {args.ratio:.0%} of filters per layer "
            f"(-{p_red:.1%} params, -{m_red:.1%} MACs); {len(args.seeds)} seeds",
        )
    )
    print(f"\nSpearman correlation between criteria, layer {args.spearman_layer} (seed {args.seeds[0]}):")
    short = [c.replace("taylor_", "t_") for c in prune.CRITERIA]
    print(expkit.format_table([""] + short, [[s] + [f"{v:+.2f}" for v in r] for s, r in zip(short, spearman)]))
    out = expkit.output_dir(args.out)
    expkit.write_json(
        out,
        {
            "config": vars(args),
            "unpruned": base_acc,
            "rows": rows,
            "params": [base_cost.params, cost.params],
            "macs": [base_cost.macs, cost.macs],
            "spearman": spearman.tolist(),
        },
        "table.json",
    )
    plt = expkit.pyplot()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(7, 6))
        im = ax.imshow(spearman, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(short)), short, rotation=60, ha="right")
        ax.set_yticks(range(len(short)), short)
        ax.set_title(f"Spearman correlation of criteria, {args.spearman_layer}")
        fig.colorbar(im)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "spearman.png"), dpi=120)
    means = {c: float(np.mean(rows[c]["finetuned"])) for c in prune.CRITERIA}
    order = sorted(means, key=lambda c: -means[c])
    spread = 100 * (means[order[0]] - means[order[-1]])
    magnitude = [c for c in ("l1", "l2", "fpgm") if c in order[: len(order) // 2]]
    expkit.verdict(
        [
            expkit.claim(
                "after the same fine-tune the 12 criteria end close together",
                "VGG-16 / ResNet on CIFAR-10: a spread of about one point after fine-tuning (Table 1)",
                f"spread of the fine-tuned means {spread:.2f} points ({order[0]} {100 * means[order[0]]:.2f} % ... "
                f"{order[-1]} {100 * means[order[-1]]:.2f} %)",
                spread <= 1.5,
                "within 1.5 points" if spread <= 1.5 else "wider than 1.5 points",
            ),
            expkit.claim(
                "the weight-magnitude criteria (L1, L2, FPGM) are among the best",
                "FPGM, L1 and L2 among the top criteria after fine-tuning (Table 1)",
                f"in the better half here: {', '.join(magnitude) or 'none of them'} (ranking: {', '.join(order)})",
                len(magnitude) >= 2,
                "at least two of the three in the better half" if len(magnitude) >= 2 else "fewer than two of three",
            ),
        ],
        out,
    )
    print(f"\ntotal {time.perf_counter() - t_all:.1f} s; outputs in {out}")
    return {
        "unpruned": base_acc,
        "rows": rows,
        "spearman": spearman,
        "params": (base_cost.params, cost.params),
        "macs": (base_cost.macs, cost.macs),
    }


if __name__ == "__main__":
    main()
