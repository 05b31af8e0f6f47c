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

    Args:
      apply_fn: ``(params, x) -> logits [B, C]`` (samples treated independently).
      params: the model's params.
      x: ``[B, ...]`` inputs.

    Returns:
      ``[B, C, ...]`` Jacobians.

    Raises:
      ValueError: empty or non-finite ``x`` (when concrete), a model that does not return ``[B, C]``.

    References:
      Co, Martinez Rego & Lupu, "Jacobian Regularization for Mitigating Universal Adversarial Perturbations", ICANN
      2021.

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> j = jaxkit.robust.input_jacobians(apply_fn, weights, x)
      >>> j.shape, bool(jnp.allclose(j[0], weights.T))
      ((3, 2, 2), True)
    """
    x = _c.float_batch(x)
    _c.fits(apply_fn, params, x)
    f = functools.partial(apply_fn, params)
    jac = jax.jacrev(lambda xx: jnp.sum(f(xx), axis=0))(x)  # (C, B, ...)
    return _c.nan_rows(x, jnp.moveaxis(jac, 0, 1))


def jacobian_frobenius_penalty(apply_fn: Callable, params, x, key=None, n_proj: int = 1, exact: bool = False):
    """The Jacobian penalty ``(1/B) sum_i ||J(x_i)||_F^2`` -- multiply by ``lambda / 2`` for the paper's loss.

    ``exact=True``: from :func:`input_jacobians` (``C`` reverse passes; fine for
    few classes). Otherwise ``n_proj`` random projections (Hoffman et al.):
    ``C * mean_v ||v^T J||^2``, ``v`` uniform on the unit sphere, one reverse pass
    each; unbiased, and exact for ``C = 1``. Differentiable w.r.t. ``params``.

    Args:
      apply_fn: ``(params, x) -> logits [B, C]``.
      params: the model's params.
      x: ``[B, ...]`` inputs.
      key: PRNG key of the projections (required unless ``exact``).
      n_proj: random projections.
      exact: the exact penalty from :func:`input_jacobians`.

    Returns:
      A scalar array.

    Raises:
      ValueError: no ``key`` for the projections, ``n_proj < 1``; as :func:`input_jacobians`.

    References:
      Co, Martinez Rego & Lupu, "Jacobian Regularization for Mitigating Universal Adversarial Perturbations", ICANN 2021
      (``lambda = 0.05``); Hoffman, Roberts & Yaida, "Robust Learning with Jacobian Regularization", arXiv:1908.02729,
      2019, Sec. 2 (random projections).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> float(jaxkit.robust.jacobian_frobenius_penalty(apply_fn, weights, x, exact=True))  # ||W||_F^2
      4.0
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
    """``(B, B)`` matrix of ``<J_i, J_j> / (||J_i||_F ||J_j||_F)`` over the flattened per-sample Jacobians.

    Args:
      apply_fn: ``(params, x) -> logits [B, C]``.
      params: the model's params.
      x: ``[B, ...]`` inputs.

    Returns:
      ``[B, B]`` cosine similarities.

    Raises:
      ValueError: as :func:`input_jacobians`.

    References:
      Co, Martinez Rego & Lupu, "Jacobian Regularization for Mitigating Universal Adversarial Perturbations", ICANN 2021
      (the alignment of input Jacobians).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> sim = jaxkit.robust.jacobian_cosine_similarity(apply_fn, weights, x)  # a linear model: one J for all
      >>> print(np.asarray(sim, float).round(3))
      [[1. 1. 1.]
       [1. 1. 1.]
       [1. 1. 1.]]
    """
    jac = input_jacobians(apply_fn, params, x)
    flat = jac.reshape(jac.shape[0], -1)
    unit = flat / jnp.maximum(jnp.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T
