"""LocalNorm vs BatchNorm under input noise (Yin, Scholte & Bohté, ICANN 2021).

The same small CNN with BatchNorm or LocalNorm (``K`` groups of consecutive
samples per training batch, per-group statistics and affine, no running
averages), trained with the same optimizer, epochs and seeds, then tested on
clean and noisy inputs: multiplicative Gaussian ``x (1 + xi)``, ``xi ~
N(0, sigma^2)``, and multiplicative Bernoulli (pixels dropped with ``rate``).

Methods: BN (running averages), dynamic BN (BN with the test batch's own
statistics), LocalNorm's four test modes -- ``single`` (each image alone, group
0's affine), ``single_vote`` (each image alone through all K groups, majority
vote), ``groups`` (test batches split into K groups like in training) and
``batch_vote`` (the test batch as one group through all K affines, vote) --
and, with ``--convert``, a BN model converted to LocalNorm (``bn_to_localnorm``)
and fine-tuned, tested with voting.

Paper (CIFAR-10, VGG19, K = 8 groups of 16): clean BN 88.83 %, LocalNorm with
voting 95.29 %; Gaussian noise sigma = 1: BN 29 %, LocalNorm voting 83 %.

    python experiments/localnorm_noise.py                       # digits, a few minutes on CPU
    python experiments/localnorm_noise.py --dataset tfds:cifar10 --widths 64,128,256 --epochs 60
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

from jaxkit import models, robust
from jaxkit import normalize as nz


def parse_args(argv=None):
    p = expkit.parser(__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="digits", help="'digits' or 'tfds:NAME' (prepared offline)")
    expkit.add_augment_flag(p)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--widths", default="16,32", help="conv widths (each block halves the resolution)")
    p.add_argument("--groups", type=int, default=8, help="LocalNorm groups K")
    p.add_argument("--group-size", type=int, default=16, help="samples per group (batch = K * size)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (cosine decay)")
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5], help="Gaussian noise std")
    p.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.4], help="Bernoulli drop rates")
    p.add_argument("--convert", action="store_true", help="also convert the BN model to LocalNorm and fine-tune")
    p.add_argument("--finetune-epochs", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="results/localnorm_noise")
    return p.parse_args(argv)


def trainer(model, tx, ds, batch_size, bn, augment=None):
    if bn:
        apply = model.apply
    else:  # LocalNorm has no train flag

        def apply(v, x, train=True):
            del train
            return model.apply(v, x)

    return expkit.make_epoch(
        expkit.classifier_step(apply, tx, bn), ds.train.x, ds.train.y, batch_size=batch_size, augment=augment
    )


@expkit.experiment
def main(argv=None):
    args = parse_args(argv)
    ds = expkit.load_dataset(args.dataset, args.data_dir)
    widths = tuple(int(w) for w in args.widths.split(","))
    k, batch = args.groups, args.groups * args.group_size
    expkit.print_config(args, {"data": repr(ds), "batch_size": batch, "seeds": args.seeds})
    out = expkit.output_dir(args.out)
    bn_net = models.NormCNN(ds.num_classes, "bn", k, widths)
    ln_net = models.NormCNN(ds.num_classes, "local", k, widths)
    steps = args.epochs * (len(ds.train) // batch)
    tx = optax.adam(optax.cosine_decay_schedule(args.lr, max(steps, 1)))
    tx_ft = optax.adam(args.lr / 10)
    aug = expkit.augmentation(args)
    epoch_bn, epoch_ln = trainer(bn_net, tx, ds, batch, True, aug), trainer(ln_net, tx, ds, batch, False, aug)
    epoch_ft = trainer(ln_net, tx_ft, ds, batch, False, aug) if args.convert else None
    n_test = (len(ds.test) // k) * k  # every test batch splits into K groups
    xte, yte = jnp.asarray(ds.test.x[:n_test]), np.asarray(ds.test.y[:n_test])

    def batched(fn, x):  # test batches of the training batch size (the last one smaller, still divisible by K)
        return jnp.concatenate([fn(x[i : i + batch]) for i in range(0, len(x), batch)])

    bn_eval = jax.jit(lambda v, x: jnp.argmax(bn_net.apply(v, x), -1))
    dyn_eval = jax.jit(lambda v, x: jnp.argmax(nz.dynamic_bn_apply(bn_net.apply, v, x), -1))
    modes = {m: jax.jit(lambda v, x, m=m: nz.localnorm_predict(ln_net.apply, v, x, k, m)) for m in nz.TEST_MODES}

    noises = [("gauss", s) for s in args.sigmas] + [("bernoulli", r) for r in args.rates]
    acc: dict = {}
    t0 = time.time()
    for seed in args.seeds:
        key = jax.random.key(seed)
        x0 = jnp.asarray(ds.train.x[:1])
        vb = models.init_variables(bn_net, jax.random.fold_in(key, 0), x0)
        vl = models.init_variables(ln_net, jax.random.fold_in(key, 0), x0, group=0)
        (vb, _), _ = expkit.fit_epochs(
            epoch_bn, (vb, tx.init(vb["params"])), jax.random.fold_in(key, 1), epochs=args.epochs
        )
        (vl, _), _ = expkit.fit_epochs(
            epoch_ln, (vl, tx.init(vl["params"])), jax.random.fold_in(key, 1), epochs=args.epochs
        )
        preds = {"BN": lambda x: bn_eval(vb, x), "dynamic BN": lambda x: dyn_eval(vb, x)}
        preds.update({f"LocalNorm {m}": (lambda x, m=m: modes[m](vl, x)) for m in nz.TEST_MODES})
        if args.convert:
            vc = nz.bn_to_localnorm(vb, k)
            (vc, _), _ = expkit.fit_epochs(
                epoch_ft, (vc, tx_ft.init(vc["params"])), jax.random.fold_in(key, 2), epochs=args.finetune_epochs
            )
            preds["BN -> LocalNorm single_vote"] = lambda x: modes["single_vote"](vc, x)
        for j, (kind, level) in enumerate(noises):
            nk = jax.random.fold_in(key, 1000 + j)
            xn = (
                robust.multiplicative_gaussian_noise(nk, xte, level)
                if kind == "gauss"
                else robust.multiplicative_bernoulli_noise(nk, xte, level)
            )
            for name, fn in preds.items():
                a = float(np.mean(np.asarray(batched(fn, xn)) == yte))
                acc.setdefault(name, {}).setdefault(f"{kind} {level}", []).append(a)
        print(
            f"seed {seed}: clean BN {acc['BN']['gauss 0.0'][-1]:.3f}, LocalNorm single_vote "
            f"{acc['LocalNorm single_vote']['gauss 0.0'][-1]:.3f}  ({time.time() - t0:.0f} s)",
            flush=True,
        )
    cols = [f"{kind} {level}" for kind, level in noises]
    rows = [[name] + [expkit.mean_std(acc[name][c], 100, 1) for c in cols] for name in acc]
    print(
        expkit.format_table(
            ["method"] + [c.replace("gauss", "sigma").replace("bernoulli", "drop") for c in cols],
            rows,
            f"\nTest accuracy % under multiplicative noise, mean ± std over seeds {args.seeds}",
        )
    )
    print("paper (CIFAR-10, VGG19): clean BN 88.83 %, LocalNorm voting 95.29 %; sigma = 1: BN 29 %, LocalNorm 83 %")
    plt = expkit.pyplot()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for name in acc:
            ax.plot(args.sigmas, [100 * np.mean(acc[name][f"gauss {s}"]) for s in args.sigmas], marker="o", label=name)
        ax.set_xlabel("multiplicative Gaussian noise sigma")
        ax.set_ylabel("test accuracy %")
        ax.legend(fontsize=7)
        expkit.save_figure(fig, out, "accuracy_vs_noise.png")
    verdict = expkit.verdict(_verdict(args, acc), out)
    expkit.write_json(out, {"config": vars(args), "accuracy": acc, "verdict": verdict})
    return acc


def _verdict(args, acc):
    vote = "LocalNorm batch_vote" if "LocalNorm batch_vote" in acc else "LocalNorm single_vote"
    if "BN" not in acc or vote not in acc:
        return []
    sigma = min(args.sigmas, key=lambda x: abs(x - 1.0))
    top, clean = f"gauss {sigma}", f"gauss {min(args.sigmas)}"
    d0, t0 = expkit.paired(acc[vote][clean], acc["BN"][clean])
    d1, t1 = expkit.paired(acc[vote][top], acc["BN"][top])
    return [
        expkit.claim(
            f"LocalNorm with voting is more accurate than BatchNorm on clean inputs (sigma {min(args.sigmas)})",
            "CIFAR-10 VGG19: BN 88.83 %, LocalNorm voting 95.29 %",
            f"{vote} - BN, clean: {t0}",
            d0 > 0,
            "more accurate" if d0 > 0 else ("not more accurate" if not d0 < 0 else "less accurate"),
        ),
        expkit.claim(
            f"LocalNorm is far more robust to multiplicative Gaussian noise (sigma {sigma})",
            "sigma = 1: BN 29 %, LocalNorm voting 83 %",
            f"{vote} - BN at sigma {sigma}: {t1}",
            d1 > 0,
            "more accurate under noise" if d1 > 0 else "not more accurate under noise",
        ),
    ]


if __name__ == "__main__":
    main()
