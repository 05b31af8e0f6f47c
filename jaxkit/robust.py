"""Robustness: input Jacobians and their penalty, universal adversarial perturbations, input noise models.

Shared by the regularisation and the robustness/explanation work: attacks and
their projections live here once.

**Jacobian regularisation** (Co, Martinez Rego & Lupu, ICANN 2021; Hoffman et
al. 2019): ``L = CE + (lambda/2) (1/B) sum_i ||J(x_i)||_F^2`` with ``J`` the
Jacobian of the logits w.r.t. the input. :func:`jacobian_frobenius_penalty`
returns ``(1/B) sum_i ||J(x_i)||_F^2``, exactly (one reverse pass per class) or
by random projections, ``||J||_F^2 = C * E_v ||v^T J||^2`` with ``v`` uniform on
the unit sphere of the ``C`` logits. :func:`jacobian_cosine_similarity` gives
``<J_i, J_j> / (||J_i||_F ||J_j||_F)`` (the paper's alignment statistic).
The per-sample Jacobians assume the model treats samples independently (no
batch statistics: evaluate BatchNorm with running averages).

**Universal adversarial perturbation** (UAP): one ``delta`` for a whole data
set, ``||delta||_p <= eps``, found by stochastic projected ascent on the mean
loss of ``x + delta`` over random batches (:func:`universal_perturbation`,
one jitted ``fori_loop``); metrics :func:`universal_evasion_rate` (UER) and
:func:`targeted_success_rate` (TSR).

**Noise models** for robustness tests (LocalNorm paper):
:func:`multiplicative_gaussian_noise` ``x (1 + xi)``, ``xi ~ N(0, sigma^2)``,
and :func:`multiplicative_bernoulli_noise` ``x * b``, ``b ~ Bernoulli(1 - rate)``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["NORMS", "project", "input_jacobians", "jacobian_frobenius_penalty", "jacobian_cosine_similarity",
           "universal_perturbation", "universal_evasion_rate", "targeted_success_rate",
           "multiplicative_gaussian_noise", "multiplicative_bernoulli_noise"]

NORMS = ("inf", "2")


def _norm(norm) -> str:
    n = str(norm).lower().replace("linf", "inf").replace("l2", "2")
    if n not in NORMS:
        raise ValueError(f"`norm` must be one of {NORMS} (l-infinity or l2), got {norm!r}.")
    return n


def _eps(eps) -> float:
    e = float(eps)
    if not (np.isfinite(e) and e > 0):
        raise ValueError(f"`eps` must be a finite number > 0, got {eps}.")
    return e


def project(delta, eps: float, norm: str = "inf"):
    """Project one perturbation ``delta`` (any shape, taken as a whole) onto the ``eps``-ball of ``norm``:
    clip for ``"inf"``, rescale to norm ``eps`` when longer for ``"2"``."""
    n = _norm(norm)
    if n == "inf":
        return jnp.clip(delta, -eps, eps)
    nrm = jnp.sqrt(jnp.sum(delta * delta))
    return delta * jnp.minimum(1.0, eps / jnp.maximum(nrm, 1e-12))


def _logits_fn(apply_fn, params):
    return lambda x: apply_fn(params, x)


def input_jacobians(apply_fn: Callable, params, x):
    """Exact per-sample Jacobians of the logits w.r.t. the inputs: ``(B, C) + x.shape[1:]``.

    One reverse pass per logit over the batch (``jax.jacrev`` of the batch-summed logits).
    """
    x = jnp.asarray(x)
    f = _logits_fn(apply_fn, params)
    jac = jax.jacrev(lambda xx: jnp.sum(f(xx), axis=0))(x)  # (C, B, ...)
    return jnp.moveaxis(jac, 0, 1)


def jacobian_frobenius_penalty(apply_fn: Callable, params, x, key=None, n_proj: int = 1, exact: bool = False):
    """``(1/B) sum_i ||J(x_i)||_F^2`` -- multiply by ``lambda / 2`` for the paper's loss (``lambda = 0.05``).

    ``exact=True``: from :func:`input_jacobians` (``C`` reverse passes; fine for
    few classes). Otherwise ``n_proj`` random projections (Hoffman et al.):
    ``C * mean_v ||v^T J||^2``, ``v`` uniform on the unit sphere, one reverse pass
    each; unbiased, and exact for ``C = 1``. Differentiable w.r.t. ``params``.
    """
    x = jnp.asarray(x)
    if exact:
        jac = input_jacobians(apply_fn, params, x)
        return jnp.sum(jac.reshape(x.shape[0], -1) ** 2) / x.shape[0]
    if key is None:
        raise ValueError("`key` is required for the projection estimate (or pass exact=True).")
    if int(n_proj) < 1:
        raise ValueError(f"`n_proj` must be >= 1, got {n_proj}.")
    f = _logits_fn(apply_fn, params)
    z, vjp = jax.vjp(f, x)
    c = z.shape[-1]

    def one(k):
        v = jax.random.normal(k, z.shape, z.dtype)
        v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
        (g,) = vjp(v)
        return jnp.sum(g.reshape(x.shape[0], -1) ** 2) / x.shape[0]

    return c * jnp.mean(jax.vmap(one)(jax.random.split(key, int(n_proj))))


def jacobian_cosine_similarity(apply_fn: Callable, params, x):
    """``(B, B)`` matrix of ``<J_i, J_j> / (||J_i||_F ||J_j||_F)`` over the flattened per-sample Jacobians."""
    jac = input_jacobians(apply_fn, params, x)
    flat = jac.reshape(jac.shape[0], -1)
    unit = flat / jnp.maximum(jnp.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def _check_data(x, y):
    x, y = jnp.asarray(x), jnp.asarray(y)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"labels must be a vector with one entry per input, got shapes {x.shape} and {y.shape}.")
    return x, y


def universal_perturbation(key, apply_fn: Callable, params, data, eps: float, norm: str = "inf", target=None, *,
                           steps: int = 100, batch_size: int = 200, step_size: float | None = None,
                           clip: tuple[float, float] | None = None):
    """One perturbation ``delta`` (shape of one input) that fools the model on the whole data set.

    ``data = (x, y)``. Each of ``steps`` iterations draws ``batch_size`` samples
    and takes a projected ascent step on the mean cross-entropy of the true
    labels at ``x + delta`` (untargeted) or a descent step on the cross-entropy
    of ``target`` (targeted): ``delta <- P(delta +- step_size * s)`` with
    ``s = sign(g)`` for ``inf`` and ``g / ||g||`` for ``2`` (the usual
    projected-gradient form of the paper's SGD; ``step_size`` default
    ``2.5 eps / steps``, our choice). ``clip=(lo, hi)`` keeps ``x + delta`` in
    a valid input range during the search. Starts at 0; jitted ``fori_loop``.
    """
    eps = _eps(eps)
    n = _norm(norm)
    x, y = _check_data(*data)
    if int(steps) < 1 or int(batch_size) < 1:
        raise ValueError(f"`steps` and `batch_size` must be >= 1, got {steps} and {batch_size}.")
    lr = 2.5 * eps / int(steps) if step_size is None else float(step_size)
    targeted = target is not None
    tgt = jnp.asarray(0 if target is None else target, jnp.int32)
    return _uap(key, apply_fn, params, x, y, tgt, eps, n, targeted, int(steps), min(int(batch_size), x.shape[0]),
                lr, clip)


@jax.jit(static_argnames=("apply_fn", "norm", "targeted", "steps", "batch_size", "clip"))
def _uap(key, apply_fn, params, x, y, tgt, eps, norm, targeted, steps, batch_size, lr, clip):
    def loss(delta, xb, yb):
        xa = xb + delta
        if clip is not None:
            xa = jnp.clip(xa, clip[0], clip[1])
        logits = apply_fn(params, xa)
        labels = jnp.full_like(yb, tgt) if targeted else yb
        ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
        return -ce if targeted else ce

    def body(i, delta):
        idx = jax.random.choice(jax.random.fold_in(key, i), x.shape[0], (batch_size,), replace=False)
        g = jax.grad(loss)(delta, x[idx], y[idx])
        s = jnp.sign(g) if norm == "inf" else g / jnp.maximum(jnp.linalg.norm(g), 1e-12)
        return project(delta + lr * s, eps, norm)

    return jax.lax.fori_loop(0, steps, body, jnp.zeros(x.shape[1:], x.dtype))


def _predict(apply_fn, params, x, delta, clip):
    xa = x + delta
    if clip is not None:
        xa = jnp.clip(xa, clip[0], clip[1])
    return jnp.argmax(apply_fn(params, xa), -1)


def universal_evasion_rate(apply_fn: Callable, params, x, y, delta, clip=None):
    """UER: the share of ``x + delta`` the model misclassifies (all samples, as in Co et al.)."""
    x, y = _check_data(x, y)
    return jnp.mean(_predict(apply_fn, params, x, delta, clip) != y)


def targeted_success_rate(apply_fn: Callable, params, x, y, delta, target: int, clip=None):
    """TSR: the share of samples *not* of class ``target`` that ``x + delta`` sends to ``target``."""
    x, y = _check_data(x, y)
    hit = _predict(apply_fn, params, x, delta, clip) == target
    other = y != target
    return jnp.sum(hit & other) / jnp.maximum(jnp.sum(other), 1)


def multiplicative_gaussian_noise(key, x, sigma: float):
    """``x (1 + xi)``, ``xi ~ N(0, sigma^2)`` element-wise."""
    if not float(sigma) >= 0:
        raise ValueError(f"`sigma` must be >= 0, got {sigma}.")
    x = jnp.asarray(x)
    return x * (1.0 + sigma * jax.random.normal(key, x.shape, x.dtype))


def multiplicative_bernoulli_noise(key, x, rate: float):
    """``x * b``, ``b ~ Bernoulli(1 - rate)`` element-wise (each input value dropped with probability ``rate``)."""
    if not 0 <= float(rate) <= 1:
        raise ValueError(f"`rate` must be in [0, 1], got {rate}.")
    x = jnp.asarray(x)
    return x * jax.random.bernoulli(key, 1.0 - rate, x.shape).astype(x.dtype)
