"""Class imbalance on long-tailed digits: plain CE vs class weights vs balanced sampling vs class-balanced focal
loss vs rare-class injection ("Deep Learning in the Wild"; Cui et al. 2019 as used in a TU Delft thesis).

The digits training split is made long-tailed (power-law class sizes, largest /
smallest = ``--imbalance``); the test split stays balanced. The same MLP,
optimizer, steps and seeds for every method:

* CE -- cross-entropy on uniformly drawn minibatches;
* weighted CE -- cross-entropy weighted by the effective-number class weights
  ``(1 - beta) / (1 - beta^n_c)`` (normalised to sum to C);
* balanced sampling -- every class equally likely in each minibatch;
* CB focal -- the class-balanced sigmoid focal loss (gamma = 2, beta = (N-1)/N);
* injection -- ``--inject`` synthetic samples of the rare classes (``--rare``
  smallest) appended to every minibatch, from a pool of ``--pool`` images per
  rare class synthesised by augmentation of the few real ones.

Printed: per-class recall and balanced accuracy (mean ± std over seeds);
the confusion matrices are plotted.

    python experiments/imbalance_digits.py                     # about a minute on CPU
    python experiments/imbalance_digits.py --imbalance 200 --steps 4000
"""

from __future__ import annotations

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expkit

from jaxkit import data, losses, models

METHODS = ("CE", "weighted CE", "balanced sampling", "CB focal", "injection")


def parse_args(argv=None):
    p = expkit.parser(__doc__.split("\n\n")[0])
    p.add_argument("--imbalance", type=float, default=50.0, help="largest / smallest class size")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--gamma", type=float, default=2.0, help="focal exponent (our choice)")
    p.add_argument("--rare", type=int, default=3, help="rare classes (the smallest) for injection")
    p.add_argument("--pool", type=int, default=300, help="synthesised images per rare class")
    p.add_argument("--inject", type=int, default=12, help="synthetic images appended to every minibatch")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="results/imbalance_digits")
    return p.parse_args(argv)


@expkit.experiment
def main(argv=None):
    args = parse_args(argv)
    d = data.load_digits(seed=0, images=False)
    train = data.make_imbalanced(d.train, args.imbalance, seed=0)
    counts = np.bincount(train.y, minlength=d.num_classes)
    rare = list(np.argsort(counts, kind="stable")[: args.rare])
    expkit.print_config(
        args,
        {
            "class_sizes": counts.tolist(),
            "rare_classes": [int(r) for r in rare],
            "seeds": args.seeds,
            "expected_wait_batches": data.expected_wait(args.rare, args.inject),
        },
    )
    out = expkit.output_dir(args.out)
    pool_x = np.concatenate(
        [
            data.synthesize(train.x[train.y == r].reshape(-1, 8, 8, 1), args.pool, seed=int(r)).reshape(args.pool, -1)
            for r in rare
        ]
    )
    pool_y = np.repeat(np.asarray(rare, np.int32), args.pool)
    x, y = jnp.asarray(train.x), jnp.asarray(train.y)
    px, py = jnp.asarray(pool_x), jnp.asarray(pool_y)
    net = models.MLP((args.hidden, args.hidden, d.num_classes))
    tx = optax.adam(args.lr)
    weights = losses.class_balanced_weights(counts, normalize=True)
    balanced = data.balanced_sampler(train.y, d.num_classes)
    inject = data.injection_sampler(pool_y, args.inject)

    def make_train(method):
        def loss_fn(p, xb, yb):
            z = net.apply(p, xb)
            if method == "weighted CE":
                return jnp.mean(weights[yb] * optax.softmax_cross_entropy_with_integer_labels(z, yb))
            if method == "CB focal":
                return losses.class_balanced_focal_loss(z, yb, counts, gamma=args.gamma)
            return optax.softmax_cross_entropy_with_integer_labels(z, yb).mean()

        @jax.jit
        def run(key):
            p = net.init(jax.random.fold_in(key, 0), x[:1])

            def step(c, k):
                p, o = c
                k1, k2 = jax.random.split(k)
                if method == "balanced sampling":
                    idx = balanced(k1, args.batch_size)
                else:
                    idx = jax.random.randint(k1, (args.batch_size,), 0, len(y))
                xb, yb = x[idx], y[idx]
                if method == "injection":
                    j = inject(k2)
                    xb, yb = jnp.concatenate([xb, px[j]]), jnp.concatenate([yb, py[j]])
                l, g = jax.value_and_grad(loss_fn)(p, xb, yb)
                u, o = tx.update(g, o, p)
                return (optax.apply_updates(p, u), o), l

            (p, _), _ = jax.lax.scan(step, (p, tx.init(p)), jax.random.split(jax.random.fold_in(key, 1), args.steps))
            return jnp.argmax(net.apply(p, jnp.asarray(d.test.x)), -1)

        return run

    res, conf, t0 = {}, {}, time.time()
    for m in args.methods:
        run = make_train(m)
        recalls, cms = [], []
        for s in args.seeds:
            pred = np.asarray(run(jax.random.key(s)))
            cm = np.zeros((d.num_classes, d.num_classes), int)
            np.add.at(cm, (d.test.y, pred), 1)
            cms.append(cm)
            recalls.append(np.diag(cm) / cm.sum(1))
        res[m] = np.asarray(recalls)
        conf[m] = np.sum(cms, 0)
        print(
            f"{m}: balanced accuracy {expkit.mean_std(res[m].mean(1), 100)} %  ({time.time() - t0:.0f} s)", flush=True
        )
    headers = ["method", "balanced acc %", "rare-class recall %"] + [f"c{c} (n={counts[c]})" for c in range(10)]
    rows = [
        [m, expkit.mean_std(r.mean(1), 100), expkit.mean_std(r[:, rare].mean(1), 100)]
        + [f"{100 * r[:, c].mean():.0f}" for c in range(10)]
        for m, r in res.items()
    ]
    print(
        expkit.format_table(
            headers, rows, f"\nPer-class test recall (mean over seeds {args.seeds}); imbalance {args.imbalance:g}"
        )
    )
    plt = expkit.pyplot()
    if plt is not None:
        fig, axes = plt.subplots(1, len(conf), figsize=(3 * len(conf) + 1, 3.2), layout="constrained")
        for ax, (m, cm) in zip(np.atleast_1d(axes), conf.items()):
            im = ax.imshow(cm / np.maximum(cm.sum(1, keepdims=True), 1), vmin=0, vmax=1, cmap="viridis")
            ax.set_title(m, fontsize=8)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_xticks(range(d.num_classes))
            ax.set_yticks(range(d.num_classes))
            ax.tick_params(labelsize=6)
        fig.colorbar(im, ax=axes, label="share of the true class", shrink=0.8)
        expkit.save_figure(fig, out, "confusion_matrices.png")
    rows = []
    if "CE" in res:
        base = res["CE"].mean(1)
        for m in res:
            if m == "CE":
                continue
            diff, text = expkit.paired(res[m].mean(1), base)
            rows.append(
                expkit.claim(
                    f"{m} raises balanced accuracy over plain cross-entropy on long-tailed data",
                    "long-tailed CIFAR-10 (imbalance 100): error 29.64 % (softmax CE) -> 25.43 % (class-balanced "
                    "focal), Cui et al. 2019, Table 2; rare-class injection helps the thesis's case study",
                    f"{m} - CE balanced accuracy: {text} (imbalance {args.imbalance:g})",
                    diff > 0,
                    "higher than CE" if diff > 0 else "not higher than CE",
                )
            )
    verdict = expkit.verdict(rows, out)
    expkit.write_json(
        out,
        {
            "config": vars(args),
            "class_sizes": counts.tolist(),
            "recall": {m: r.tolist() for m, r in res.items()},
            "verdict": verdict,
        },
    )
    return res


if __name__ == "__main__":
    main()
