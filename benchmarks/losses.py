"""Shift losses: HIR on a batch of 250 jitted vs a Python double loop; MK-MMD on 4,096 x 4,096 features jitted vs
NumPy. Lines printed as ``<what>: <ratio>x (baseline <t> s, jaxkit <t> s)`` (ratio > 1 = jaxkit faster).

    python benchmarks/losses.py      # ~1 min on 2 CPU cores
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from benchkit import best_time, parse, report

from jaxkit import losses


def hir_loop(z, y):
    """The definition: a double loop over pairs of the batch (NumPy inside)."""
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    logp = np.log(p)
    total = 0.0
    for i in range(len(y)):
        for j in range(i + 1, len(y)):
            if y[i] == y[j]:
                total += float(np.sum(p[i] * (logp[i] - logp[j])))
    return total


def mmd_numpy(xs, xt, bw):
    def k(a, b):
        d = np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0)
        return sum(np.exp(-d / (2 * s * s)) for s in bw) / len(bw)

    n, m = len(xs), len(xt)
    kss, ktt, kst = k(xs, xs), k(xt, xt), k(xs, xt)
    return (kss.sum() - np.trace(kss)) / (n * (n - 1)) + (ktt.sum() - np.trace(ktt)) / (m * (m - 1)) - 2 * kst.mean()


# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"mmd_n": 16384}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--mmd-n", type=int, default=4096, help="source and target features of MK-MMD (default %(default)s)"
    )
    args = parse(ap, argv, FULL)
    n = args.mmd_n
    rng = np.random.default_rng(0)
    z = rng.normal(size=(250, 10)).astype(np.float32)
    y = np.repeat(np.arange(10), 25)
    hir = jax.jit(losses.hir_loss)
    zj, yj = jnp.asarray(z), jnp.asarray(y)
    np.testing.assert_allclose(float(hir(zj, yj)), hir_loop(z, y), rtol=1e-4)
    t_loop, _ = best_time(lambda: hir_loop(z, y), 3)
    t_jit, _ = best_time(lambda: jax.block_until_ready(hir(zj, yj)), 20)
    report("HIR loss, batch 250 x 10 classes: jitted pairwise-KL matrix vs Python double loop", t_loop, t_jit)

    xs = rng.normal(size=(n, 64)).astype(np.float32)
    xt = (rng.normal(size=(n, 64)) + 0.1).astype(np.float32)
    bw = np.asarray(losses.median_bandwidths(xs, xt))
    mmd = jax.jit(losses.mk_mmd)
    xsj, xtj, bwj = jnp.asarray(xs), jnp.asarray(xt), jnp.asarray(bw)
    np.testing.assert_allclose(float(mmd(xsj, xtj, bwj)), mmd_numpy(xs, xt, bw), rtol=1e-2, atol=1e-5)
    t_np, _ = best_time(lambda: mmd_numpy(xs, xt, bw), 3)
    t_j, _ = best_time(lambda: jax.block_until_ready(mmd(xsj, xtj, bwj)), 5)
    report(f"MK-MMD^2 (unbiased, 5 kernels), {n} x {n} x 64 features: jitted vs NumPy", t_np, t_j)


if __name__ == "__main__":
    main()
