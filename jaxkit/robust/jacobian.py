"""Jacobian regularisation (Co, Martinez Rego & Lupu, ICANN 2021; Hoffman et al. 2019).

``L = CE + (lambda/2) (1/B) sum_i ||J(x_i)||_F^2`` with ``J`` the Jacobian of the logits w.r.t. the input.
:func:`jacobian_frobenius_penalty` returns ``(1/B) sum_i ||J(x_i)||_F^2``, exactly (one reverse pass per
class) or by random projections, ``||J||_F^2 = C * E_v ||v^T J||^2`` with ``v`` uniform on the unit sphere
of the ``C`` logits. :func:`jacobian_cosine_similarity` gives ``<J_i, J_j> / (||J_i||_F ||J_j||_F)`` (the
paper's alignment statistic). The per-sample Jacobians assume the model treats samples independently (no
batch statistics: evaluate BatchNorm with running averages).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxkit import _checks as _c

__all__ = ["input_jacobians", "jacobian_cosine_similarity", "jacobian_frobenius_penalty"]


def input_jacobians(apply_fn: Callable, params, x):
    """Exact per-sample Jacobians of the logits w.r.t. the inputs: ``(B, C) + x.shape[1:]``.

    One reverse pass per logit over the batch (``jax.jacrev`` of the batch-summed logits).
    """
    x = _c.float_batch(x)
    _c.fits(apply_fn, params, x)
    f = functools.partial(apply_fn, params)
    jac = jax.jacrev(lambda xx: jnp.sum(f(xx), axis=0))(x)  # (C, B, ...)
    return _c.nan_rows(x, jnp.moveaxis(jac, 0, 1))


def jacobian_frobenius_penalty(apply_fn: Callable, params, x, key=None, n_proj: int = 1, exact: bool = False):
    """``(1/B) sum_i ||J(x_i)||_F^2`` -- multiply by ``lambda / 2`` for the paper's loss (``lambda = 0.05``).

    ``exact=True``: from :func:`input_jacobians` (``C`` reverse passes; fine for
    few classes). Otherwise ``n_proj`` random projections (Hoffman et al.):
    ``C * mean_v ||v^T J||^2``, ``v`` uniform on the unit sphere, one reverse pass
    each; unbiased, and exact for ``C = 1``. Differentiable w.r.t. ``params``.
    """
    x = _c.float_batch(x)
    _c.fits(apply_fn, params, x)
    if exact:
        jac = input_jacobians(apply_fn, params, x)
        return jnp.sum(jac.reshape(x.shape[0], -1) ** 2) / x.shape[0]
    if key is None:
        raise ValueError("`key` is required for the projection estimate (or pass exact=True).")
    if int(n_proj) < 1:
        raise ValueError(f"`n_proj` must be >= 1, got {n_proj}.")
    f = functools.partial(apply_fn, params)
    z, vjp = jax.vjp(f, x)
    c = z.shape[-1]

    def one(k):
        v = jax.random.normal(k, z.shape, z.dtype)
        v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
        (g,) = vjp(v)
        return jnp.sum(g.reshape(x.shape[0], -1) ** 2) / x.shape[0]

    val = c * jnp.mean(jax.vmap(one)(jax.random.split(key, int(n_proj))))
    return jnp.where(jnp.isnan(x).any(), jnp.nan, val)


def jacobian_cosine_similarity(apply_fn: Callable, params, x):
    """``(B, B)`` matrix of ``<J_i, J_j> / (||J_i||_F ||J_j||_F)`` over the flattened per-sample Jacobians."""
    jac = input_jacobians(apply_fn, params, x)
    flat = jac.reshape(jac.shape[0], -1)
    unit = flat / jnp.maximum(jnp.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T
