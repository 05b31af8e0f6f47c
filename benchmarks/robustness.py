"""Robustness and explanation benchmarks (issue: robustness & explanations).

1. Robust accuracy at 10 values of eps: ``robust.robust_accuracy`` (one jitted
   call, vmapped over eps; for FGSM the input gradient is shared by all
   budgets) vs the loop a user writes -- per eps, the jitted attack, then a
   jitted forward pass and the accuracy. FGSM and BIM (10 steps). Target >= 5x.
   Also ``vectorize=False`` (the budgets in sequence inside the same call).
2. Grad-CAM of 256 images in one batched call vs one image at a time (the same
   jitted function on batches of one).

A trained-shape ``models.SmallCNN`` on the digits test split (360 images, 8x8);
best of ``--repeat`` runs after a compile.

    python benchmarks/robustness.py
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import best_time, parse, report

from jaxkit import data, explain, models, robust

# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"n_eps": 20, "bim_steps": 40}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--n-eps", type=int, default=10)
    p.add_argument("--bim-steps", type=int, default=10)
    args = parse(p, argv, FULL)
    ds = data.load_digits()
    x, y = jnp.asarray(ds.test.x), jnp.asarray(ds.test.y)
    model = models.SmallCNN()
    params = model.init(jax.random.key(0), x[:1])
    eps = list(np.linspace(0.0, 0.3, args.n_eps))
    fwd = jax.jit(model.apply)

    def loop(attack):
        accs = []
        for e in eps:
            if e == 0:
                xa = x
            elif attack == "fgsm":
                xa = robust.fgsm(model.apply, params, x, y, e, clip=(0.0, 1.0))
            else:
                xa = robust.bim(model.apply, params, x, y, e, steps=args.bim_steps, clip=(0.0, 1.0))
            accs.append(float(jnp.mean(jnp.argmax(fwd(params, xa), -1) == y)))
        return np.asarray(accs)

    for attack in ("fgsm", "bim"):
        kw = {"steps": args.bim_steps} if attack == "bim" else {}
        vm = lambda: robust.robust_accuracy(model.apply, params, x, y, eps, attack, clip=(0.0, 1.0), **kw)
        lp = lambda: loop(attack)
        np.testing.assert_allclose(vm(), lp(), atol=1.5 / len(y))  # same numbers (one flip of rounding allowed)
        sq = lambda: robust.robust_accuracy(
            model.apply, params, x, y, eps, attack, clip=(0.0, 1.0), vectorize=False, **kw
        )
        t_loop, _ = best_time(lp, args.repeat)
        t_vm, _ = best_time(vm, args.repeat)
        t_sq, _ = best_time(sq, args.repeat)
        report(f"robust accuracy, {attack.upper()} at {len(eps)} eps, vmapped vs Python loop", t_loop, t_vm)
        report(
            f"robust accuracy, {attack.upper()} at {len(eps)} eps, one call with lax.map vs Python loop", t_loop, t_sq
        )

    xb = x[:256]
    batch = lambda: explain.gradcam(model.apply, params, xb).block_until_ready()
    one = lambda: [explain.gradcam(model.apply, params, xb[i : i + 1]).block_until_ready() for i in range(256)]
    np.testing.assert_allclose(batch(), np.concatenate(one()), rtol=1e-4, atol=1e-5)
    t_one, _ = best_time(one, max(args.repeat // 3, 2))
    t_batch, _ = best_time(batch, args.repeat)
    report("Grad-CAM of 256 images, one batch vs one image at a time", t_one, t_batch)


if __name__ == "__main__":
    main()
