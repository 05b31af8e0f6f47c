"""Margins: the prediction margin of the logits and the magnitude-margin ratio (input-gradient norm over
margin).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxkit import _checks as _c

__all__ = ["magnitude_margin_ratio", "prediction_margin"]


def prediction_margin(logits, y):
    """``M_z = z_y - max_{i != y} z_i`` per example (negative when misclassified)."""
    logits = _c.logits(logits)
    y = _c.labels_for(logits, y, "y")
    zy = jnp.take_along_axis(logits, y[..., None], -1)[..., 0]
    other = jnp.where(jax.nn.one_hot(y, logits.shape[-1], dtype=bool), -jnp.inf, logits)
    return zy - jnp.max(other, axis=-1)


def magnitude_margin_ratio(apply_fn: Callable, params, x, y, ord: str = "l1"):
    """``R = m / M_z`` per example: the first-order FGSM view of robustness (thesis ch. 5).

    ``m = ||grad_x z_y - grad_x z_j||_1 / n`` (``ord="l1"``, the thesis's
    derivation; ``n`` the input size) or ``||...||_2`` (``ord="l2"``, the
    author's code), ``j`` the runner-up class, ``M_z`` the
    :func:`prediction_margin`. An l-inf step of ``eps`` lowers the margin by
    about ``eps n m`` (l1 form), so a small ``R`` means a robust example.
    """
    if ord not in ("l1", "l2"):
        raise ValueError(f"`ord` must be 'l1' or 'l2', got {ord!r}.")
    x, y = _c.batch_and_labels(x, y)
    return _mmr(apply_fn, params, x, y, ord)


@jax.jit(static_argnames=("apply_fn", "ord"))
def _mmr(apply_fn, params, x, y, ord):
    z = apply_fn(params, x)
    other = jnp.where(jax.nn.one_hot(y, z.shape[-1], dtype=bool), -jnp.inf, z)
    j = jnp.argmax(other, axis=-1)

    def gap(xx):
        zz = apply_fn(params, xx)
        return jnp.sum(jnp.take_along_axis(zz, y[:, None], 1) - jnp.take_along_axis(zz, j[:, None], 1))

    g = jax.grad(gap)(x).reshape(x.shape[0], -1)
    m = jnp.sum(jnp.abs(g), 1) / g.shape[1] if ord == "l1" else jnp.sqrt(jnp.sum(g * g, 1))
    return m / prediction_margin(z, y)
