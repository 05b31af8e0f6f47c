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
    """The prediction margin ``M_z = z_y - max_{i != y} z_i`` per example (negative when misclassified).

    Args:
      logits: ``[N, C]``.
      y: ``[N]`` integer labels.

    Returns:
      ``[N]`` margins.

    Raises:
      ValueError: logits not ``[N, C]`` with ``C >= 2``, labels out of range or of another length.

    References:
      the TU Delft dissertation on sensitivities of visual learning (its ch. 5 on robustness).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> print(np.asarray(jaxkit.robust.prediction_margin(x @ weights, y), float).round(3))
      [2.  2.  0.4]
    """
    logits = _c.logits(logits)
    y = _c.labels_for(logits, y, "y")
    zy = jnp.take_along_axis(logits, y[..., None], -1)[..., 0]
    other = jnp.where(jax.nn.one_hot(y, logits.shape[-1], dtype=bool), -jnp.inf, logits)
    return zy - jnp.max(other, axis=-1)


def magnitude_margin_ratio(apply_fn: Callable, params, x, y, ord: str = "l1"):
    """The magnitude-margin ratio ``R = m / M_z`` per example: the first-order FGSM view of robustness.

    ``m = ||grad_x z_y - grad_x z_j||_1 / n`` (``ord="l1"``, the thesis's
    derivation; ``n`` the input size) or ``||...||_2`` (``ord="l2"``, the
    author's code), ``j`` the runner-up class, ``M_z`` the
    :func:`prediction_margin`. An l-inf step of ``eps`` lowers the margin by
    about ``eps n m`` (l1 form), so a small ``R`` means a robust example.

    Args:
      apply_fn: ``(params, x) -> logits [N, C]``.
      params: the model's params.
      x: ``[N, ...]`` inputs.
      y: ``[N]`` integer labels.
      ord: ``"l1"`` (the thesis's) or ``"l2"`` (the author's code).

    Returns:
      ``[N]`` ratios.

    Raises:
      ValueError: an unknown ``ord``; as :func:`prediction_margin`.

    References:
      the TU Delft dissertation on sensitivities of visual learning (its ch. 5 on robustness).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> ratio = jaxkit.robust.magnitude_margin_ratio(apply_fn, weights, x, y)  # m = 2 for all three
      >>> print(np.asarray(ratio, float).round(3))
      [1. 1. 5.]
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
