"""Regularisation transforms: their cost per training step, and LocalNorm voting vmapped vs a loop.

Lines printed (``<what>: <ratio>x (baseline <t> s, jaxkit <t> s)``; ratio > 1 = jaxkit faster, so an overhead
shows as a ratio below 1 and is also printed as ``overhead = jaxkit / baseline``):

(a) gradient centralisation: a jitted SGD+momentum training step (50 steps in one ``lax.scan``) of the
    digits CNN and of an MLP, with ``optax.chain(centralize_gradients(), sgd)`` vs plain ``sgd`` (target:
    overhead < 1.1x); WC as a forward reparameterisation (``reparameterize``) vs plain; our GC vs
    ``optax.centralize`` (same arithmetic on other slices), warm and first call of one MLP step in a fresh process;
(b) the projected Jacobian penalty (1 projection, lambda = 0.05) added to the loss vs the plain loss;
(c) LocalNorm voting over K = 8 groups for 128 test images: one vmapped program
    (``localnorm_predict(..., "single_vote" / "batch_vote")``) vs a Python loop over the groups calling a
    jitted per-group prediction, then voting.

    python benchmarks/regularisation.py      # ~1 min on 2 CPU cores
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from benchkit import best_time, first_call, parse, report

from jaxkit import data, models, robust
from jaxkit import normalize as nz


def scan_steps(apply, tx, params, x, y, n=50, penalty=0.0):
    def loss_fn(p, key):
        loss = optax.softmax_cross_entropy_with_integer_labels(apply(p, x), y).mean()
        if penalty:
            loss = loss + penalty / 2 * robust.jacobian_frobenius_penalty(apply, p, x, key)
        return loss

    @jax.jit
    def run(p, o):
        def body(c, k):
            p, o = c
            g = jax.grad(loss_fn)(p, k)
            u, o = tx.update(g, o, p)
            return (optax.apply_updates(p, u), o), None

        return jax.lax.scan(body, (p, o), jax.random.split(jax.random.key(0), n))[0]

    o = tx.init(params)
    jax.block_until_ready(run(params, o))
    t, _ = best_time(lambda: jax.block_until_ready(run(params, o)), 5)
    return t


def overhead(what, base, ours):
    report(what, base, ours)
    print(f"  overhead = {ours / base:.3f}x", flush=True)


FIRST_GC = """
import jax, jax.numpy as jnp, optax
from jaxkit import data, models
from jaxkit import normalize as nz
ds = data.load_digits(seed=0)
x, y = jnp.asarray(ds.train.x[:64]).reshape(64, -1), jnp.asarray(ds.train.y[:64])
mlp = models.MLP((256, 256, 10))
params = mlp.init(jax.random.key(0), x)
tx = optax.chain({gc}, optax.sgd(0.05, momentum=0.9))
o = tx.init(params)
@jax.jit
def step(p, o):
    g = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(mlp.apply(p, x), y).mean())(p)
    u, o = tx.update(g, o, p)
    return optax.apply_updates(p, u), o
def run():
    jax.block_until_ready(step(params, o))
"""


def first_call_gc():
    """One jitted GC + SGD step of the MLP, first call in a fresh process: jaxkit's vs optax.centralize."""
    t_o, n_o = first_call(FIRST_GC.format(gc="optax.centralize()"))
    t_j, n_j = first_call(FIRST_GC.format(gc="nz.centralize_gradients()"))
    report(
        f"(a) GC step, MLP 64-256-256-10, first call in a fresh process (no compilation cache; {n_j} vs {n_o} XLA "
        "compilations): jaxkit centralize_gradients vs optax.centralize",
        t_o,
        t_j,
    )


# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"batch": 512}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64, help="training batch of (a) and (b) (default %(default)s)")
    args = parse(ap, argv, FULL)
    b = args.batch
    ds = data.load_digits(seed=0)
    x, y = jnp.asarray(ds.train.x[:b]), jnp.asarray(ds.train.y[:b])
    sgd = optax.sgd(0.05, momentum=0.9)
    gc = optax.chain(nz.centralize_gradients(), sgd)
    cnn = models.VGG(cfg=(16, "M", 32, "M"), num_classes=10, batch_norm=False, hidden=(64,))
    mlp = models.MLP((256, 256, 10))
    for name, model, xx in (("digits CNN", cnn, x), ("MLP 64-256-256-10", mlp, x.reshape(b, -1))):
        params = model.init(jax.random.key(0), xx)
        apply = lambda p, v, model=model: model.apply(p, v)
        base = scan_steps(apply, sgd, params, xx, y)
        overhead(
            f"(a) GC step, {name}, batch {b}: centralize_gradients+sgd vs sgd",
            base,
            scan_steps(apply, gc, params, xx, y),
        )
        overhead(
            f"(a) WC reparameterisation step, {name}: reparameterize(apply) vs apply",
            base,
            scan_steps(nz.reparameterize(apply, "center"), sgd, params, xx, y),
        )
        moved = jax.tree.map(lambda a: jnp.moveaxis(a, -1, 0) if a.ndim > 1 else a, params)
        moved_apply = lambda p, v, apply=apply: apply(
            jax.tree.map(lambda a: jnp.moveaxis(a, 0, -1) if a.ndim > 1 else a, p), v
        )
        report(
            f"(a) GC, {name}: jaxkit centralize_gradients vs optax.centralize on output-first kernels",
            scan_steps(moved_apply, optax.chain(optax.centralize(), sgd), moved, xx, y),
            scan_steps(apply, gc, params, xx, y),
        )
    first_call_gc()
    params = cnn.init(jax.random.key(0), x)
    apply = lambda p, v: cnn.apply(p, v)
    overhead(
        "(b) Jacobian penalty step (1 projection), digits CNN: CE + penalty vs CE",
        scan_steps(apply, sgd, params, x, y),
        scan_steps(apply, sgd, params, x, y, penalty=0.05),
    )

    k = 8
    net = models.NormCNN(10, "local", k)
    xt = jnp.asarray(ds.test.x[:128])
    v = net.init(jax.random.key(1), xt, group=0)
    for mode in ("single_vote", "batch_vote"):
        vm = jax.jit(lambda v, x, mode=mode: nz.localnorm_predict(net.apply, v, x, k, mode))
        if mode == "single_vote":
            one = jax.jit(lambda v, x, g: jax.vmap(lambda xi: net.apply(v, xi[None], group=g)[0])(x))
        else:
            one = jax.jit(lambda v, x, g: net.apply(v, x, group=g))

        def loop():
            logits = jnp.stack([one(v, xt, g) for g in range(k)])
            return np.asarray(nz.majority_vote(logits))

        ref = loop()
        np.testing.assert_array_equal(ref, np.asarray(vm(v, xt)))
        t_loop, _ = best_time(loop, 20)
        t_vm, _ = best_time(lambda: np.asarray(vm(v, xt)), 20)
        report(
            f"(c) LocalNorm {mode}, K = {k}, 128 images: vmapped over groups vs Python loop over groups", t_loop, t_vm
        )


if __name__ == "__main__":
    main()
