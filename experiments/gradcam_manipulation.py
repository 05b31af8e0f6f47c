"""Manipulating Grad-CAM by editing a CNN's parameters ("How to Manipulate CNNs to Make Them Lie: the GradCAM
Case", BMVC-W 2019; TU Delft thesis).

A ``models.SmallCNN`` (single dense head, the setting in which the constructions
are exact) is trained on the data, then manipulated four ways with
``jaxkit.explain.manipulate``: T1 constant map (a pure params transform), T2 a
fixed target image (an "X"), T3 a semi-random side branch, T4 a sticker
backdoor (maps unchanged until stickers appear -- ``--stickers`` per image).
For each: test accuracy before/after, the largest logit change, and the mean L1
distance between the normalised top-1 Grad-CAM map and the attacker's target
(T1: all ones; T2: the image; T3/T4: the normalised side-branch output; T4
without stickers: the original model's map). Mean ± std over seeds; an image
grid of original vs manipulated maps.

Paper (VGG-16, ImageNet val): accuracy 0.71592 -> 0.71594 / 0.71592; max logit change 0.017 (T1), 0.005 (T2)
from half-precision rounding, 0 (T3); L1 to target 0.005 (T1), 0.011 (T2), 0.059 (T3), 0.00006 (T4 stickers).

    python experiments/gradcam_manipulation.py                      # digits, ~1 min CPU
    python experiments/gradcam_manipulation.py --dataset tfds:mnist --widths 32,64 --epochs 5
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

from jaxkit import explain, models
from jaxkit.explain import manipulate as mp

KINDS = ("T1", "T2", "T3", "T4")


def parse_args(argv=None):
    p = expkit.parser(__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="digits", help="'digits' or 'tfds:NAME' (pixels scaled to [0, 1])")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--widths", default="16,32", help="SmallCNN conv widths (the last one is manipulated)")
    p.add_argument(
        "--head",
        default="flatten",
        choices=("flatten", "gap"),
        help="flatten -> dense (VGG-like, the paper) or global average pooling -> dense",
    )
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--c-a", type=float, default=100.0, help="T1 constant channel value c_A")
    p.add_argument("--c-w", type=float, default=100.0, help="T1 dense weight c_W")
    p.add_argument("--c-w2", type=float, default=10.0, help="T2 dense weight c_W")
    p.add_argument("--c-i", type=float, default=100.0, help="T2 image scale c_I (our choice; not in the paper)")
    p.add_argument("--c-f", type=float, default=1e7, help="T3 side-branch scale c_F")
    p.add_argument("--c-f4", type=float, default=1e9, help="T4 sticker-detector scale c_F")
    p.add_argument("--sticker", type=int, default=3, help="T4 sticker size (binary random pattern)")
    p.add_argument("--stickers", type=int, default=3, help="stickers pasted per image in the T4 evaluation")
    p.add_argument("--grid", type=int, default=6, help="examples in the image grid")
    p.add_argument("--out", default="results/gradcam_manipulation")
    return p.parse_args(argv)


def x_target(h, w):
    """An 'X' drawn on the feature map's grid (T2's target image)."""
    i, j = np.mgrid[:h, :w]
    return jnp.asarray(
        (
            (np.abs(i / max(h - 1, 1) - j / max(w - 1, 1)) < 0.3)
            | (np.abs(i / max(h - 1, 1) + j / max(w - 1, 1) - 1) < 0.3)
        ).astype(np.float32)
    )


def accuracy_and_logits(f, p, x, y):
    z = f(p, x)
    return float(jnp.mean(jnp.argmax(z, -1) == y)), z


def l1(a, b):
    return float(jnp.mean(jnp.abs(a - b)))


def run_seed(args, ds, seed):
    widths = tuple(int(w) for w in args.widths.split(","))
    model = models.SmallCNN(widths, ds.num_classes, head=args.head)
    wide = models.SmallCNN(widths[:-1] + (widths[-1] + 1,), ds.num_classes, head=args.head)
    tx = optax.adam(args.lr)
    step = expkit.classifier_step(lambda v, x, train=False: model.apply(v, x), tx, batch_norm=False)
    epoch = expkit.make_epoch(step, ds.train.x, ds.train.y, batch_size=args.batch_size)
    params = models.init_variables(model, jax.random.key(seed), jnp.asarray(ds.train.x[:1]))
    (params, _), _ = expkit.fit_epochs(
        epoch, (params, tx.init(params["params"])), jax.random.fold_in(jax.random.key(seed), 1), epochs=args.epochs
    )
    x, y = jnp.asarray(ds.test.x), jnp.asarray(ds.test.y)
    conv, dense = f"Conv_{len(widths) - 1}", "Dense_0"
    acc0, z0 = accuracy_and_logits(model.apply, params, x, y)
    maps0 = explain.gradcam(model.apply, params, x)
    h, w = maps0.shape[1:]
    out, grids = {"clean": acc0, "zero_maps": float(jnp.mean(jnp.all(maps0 == 0, axis=(1, 2))))}, {"original": maps0}

    v1 = mp.inject_constant_explanation(params, conv, dense, c_A=args.c_a, c_W=args.c_w)
    acc, z = accuracy_and_logits(wide.apply, v1, x, y)
    m = explain.gradcam(wide.apply, v1, x)
    out["T1"] = {"acc": acc, "dlogit": float(jnp.max(jnp.abs(z - z0))), "l1": l1(m, 1.0)}
    grids["T1"] = m

    target = x_target(h, w)
    f2, b2 = mp.inject_target_explanation(
        wide.apply, params, x, target, conv=conv, dense=dense, c_W=args.c_w2, c_I=args.c_i
    )
    acc, z = accuracy_and_logits(f2, b2, x, y)
    m = explain.gradcam(f2, b2, x)
    out["T2"] = {"acc": acc, "dlogit": float(jnp.max(jnp.abs(z - z0))), "l1": l1(m, target)}
    grids["T2"] = m

    f3, b3 = mp.inject_semi_random_explanation(
        jax.random.fold_in(jax.random.key(seed), 3), wide.apply, params, x, conv=conv, dense=dense, c_F=args.c_f
    )
    acc, z = accuracy_and_logits(f3, b3, x, y)
    m = explain.gradcam(f3, b3, x)
    ref = explain.normalize_maps(f3.term(b3["term"], x))
    out["T3"] = {
        "acc": acc,
        "dlogit": float(jnp.max(jnp.abs(z - z0))),
        "l1": l1(m, ref),
        # the output term alone: logits of the manipulated vs the merely widened model
        "dlogit_term": float(jnp.max(jnp.abs(z - wide.apply(b3["model"], x)))),
    }
    grids["T3"] = m

    sticker = mp.random_sticker(jax.random.fold_in(jax.random.key(seed), 4), args.sticker, x.shape[-1])
    f4, b4 = mp.inject_backdoor_explanation(wide.apply, params, x, sticker, conv=conv, dense=dense, c_F=args.c_f4)
    acc, z = accuracy_and_logits(f4, b4, x, y)
    m = explain.gradcam(f4, b4, x)
    fired = np.asarray(jnp.any(f4.term(b4["term"], x) > 0, axis=(1, 2)))
    xs = mp.place_stickers(jax.random.fold_in(jax.random.key(seed), 5), x, sticker, args.stickers)
    acc_s0, zs0 = accuracy_and_logits(model.apply, params, xs, y)
    acc_s, zs = accuracy_and_logits(f4, b4, xs, y)
    ms = explain.gradcam(f4, b4, xs)
    ref = explain.normalize_maps(f4.term(b4["term"], xs))
    out["T4"] = {
        "acc": acc,
        "dlogit": float(jnp.max(jnp.abs(z - z0))),
        "l1": l1(m, maps0),
        "acc_stickers_original": acc_s0,
        "acc_stickers": acc_s,
        "dlogit_stickers": float(jnp.max(jnp.abs(zs - zs0))),
        "l1_stickers": l1(ms, ref),
        "clean_fired": float(fired.mean()),
    }
    grids["T4"], grids["T4 + stickers"], grids["x + stickers"] = m, ms, xs[..., 0]
    grids["x"] = x[..., 0]
    return out, grids


@expkit.experiment
def main(argv=None):
    args = parse_args(argv)
    ds = expkit.load_dataset(args.dataset, args.data_dir)
    expkit.print_config(args, {"data": repr(ds), "seeds": args.seeds})
    out = expkit.output_dir(args.out)
    results, t0 = [], time.time()
    for s in args.seeds:
        r, grids = run_seed(args, ds, s)
        results.append(r)
        print(
            f"seed {s}: clean {100 * r['clean']:.2f} %, "
            + ", ".join(
                f"{k} acc {100 * r[k]['acc']:.2f} % dlogit {r[k]['dlogit']:.2g} L1 {r[k]['l1']:.2g}" for k in KINDS
            )
            + f"  ({time.time() - t0:.0f} s)",
            flush=True,
        )
    rows = []
    for k in KINDS:
        rows.append(
            [
                k,
                expkit.mean_std([r["clean"] for r in results], 100),
                expkit.mean_std([r[k]["acc"] for r in results], 100),
                expkit.mean_std([r[k]["dlogit"] for r in results], 1, 4),
                expkit.mean_std([r[k]["l1"] for r in results], 1, 4),
            ]
        )
    rows.append(
        [
            "T4 + stickers",
            expkit.mean_std([r["T4"]["acc_stickers_original"] for r in results], 100),
            expkit.mean_std([r["T4"]["acc_stickers"] for r in results], 100),
            expkit.mean_std([r["T4"]["dlogit_stickers"] for r in results], 1, 4),
            expkit.mean_std([r["T4"]["l1_stickers"] for r in results], 1, 5),
        ]
    )
    print(
        expkit.format_table(
            ["manipulation", "acc before %", "acc after %", "max |dlogit|", "L1 to target"],
            rows,
            f"\nfloat32, mean ± std over seeds {args.seeds} (T4 row: L1 to the original map; "
            "T4 + stickers: accuracies on stickered inputs)",
        )
    )
    print(
        "T3 logit change from the output term alone (vs the widened model without it): "
        + expkit.mean_std([r["T3"]["dlogit_term"] for r in results], 1, 8)
        + "; the rest is float32 rounding of the widened dense layer's summation order"
    )
    print(
        "original model: share of all-zero Grad-CAM maps (ReLU of a negative weighted sum; frequent with a "
        "flatten head on small maps, see --head gap): "
        + expkit.mean_std([r["zero_maps"] for r in results], 100, 1)
        + " %"
    )
    print(
        "T4 detector fired on clean test images: "
        + expkit.mean_std([r["T4"]["clean_fired"] for r in results], 100)
        + " %"
    )
    print(
        "paper (VGG-16, ImageNet): accuracy unchanged; max logit change 0.017 (T1), 0.005 (T2), 0 (T3); "
        "L1 0.005 (T1), 0.011 (T2), 0.059 (T3), 0.00006 (T4 with stickers)"
    )
    plt = expkit.pyplot()
    if plt is not None:
        cols = ["x", "original", "T1", "T2", "T3", "T4", "x + stickers", "T4 + stickers"]
        n = min(args.grid, grids["x"].shape[0])
        fig = expkit.map_grid(plt, grids, cols, n, lambda c: c.startswith("x"), "normalised Grad-CAM")
        expkit.save_figure(fig, out, "gradcam_grid.png")
    acc_change = max(abs(r[k]["acc"] - r["clean"]) for r in results for k in KINDS)
    l1s = {k: float(np.mean([r[k]["l1"] for r in results])) for k in ("T1", "T2", "T3")}
    l1s["T4 stickers"] = float(np.mean([r["T4"]["l1_stickers"] for r in results]))
    verdict = expkit.verdict(
        [
            expkit.claim(
                "the manipulations leave the predictions unchanged",
                "ImageNet val accuracy 0.71592 -> 0.71594 / 0.71592 (T1-T4)",
                f"largest accuracy change over T1-T4 and {len(results)} seeds: {100 * acc_change:.2f} points",
                acc_change <= 0.005,
                "within half a point" if acc_change <= 0.005 else "accuracy moved by more than half a point",
            ),
            expkit.claim(
                "Grad-CAM then shows the attacker's map",
                "L1 to target 0.005 (T1), 0.011 (T2), 0.059 (T3), 0.00006 (T4 with stickers)",
                "L1 to target " + ", ".join(f"{v:.4f} ({k})" for k, v in l1s.items()),
                max(l1s.values()) <= 0.1,
                "every map is within 0.1 mean L1 of its target (maps normalised to [0, 1])",
            ),
        ],
        out,
    )
    expkit.write_json(out, {"config": vars(args), "results": results, "verdict": verdict})
    return results


if __name__ == "__main__":
    main()
