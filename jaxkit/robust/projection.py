"""Norm balls shared by the attacks and the universal perturbation: the supported norms, and projections
of one perturbation (:func:`project`) or of a batch, one ball per example (:func:`project_batch`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c

__all__ = ["NORMS", "project", "project_batch"]


NORMS = ("inf", "2")


def norm_name(norm) -> str:
    """The canonical name of ``norm`` (``'inf'`` or ``'2'``; ``'linf'``/``'l2'`` accepted)."""
    n = str(norm).lower().replace("linf", "inf").replace("l2", "2")
    if n not in NORMS:
        raise ValueError(f"`norm` must be one of {NORMS} (l-infinity or l2), got {norm!r}.")
    return n


def positive_eps(eps) -> float:
    """``eps`` as a float if finite and > 0."""
    e = float(eps)
    if not (np.isfinite(e) and e > 0):
        raise ValueError(f"`eps` must be a finite number > 0, got {eps}.")
    return e


def project(delta, eps: float, norm: str = "inf"):
    """Project one perturbation ``delta`` (taken as a whole) onto the ``eps``-ball of ``norm``.

    ``"inf"``: clip each entry to ``[-eps, eps]``; ``"2"``: rescale to norm ``eps`` when longer.

    Args:
      delta: a perturbation of any shape.
      eps: the radius (>= 0).
      norm: ``"inf"`` or ``"2"``.

    Returns:
      The projected perturbation.

    Raises:
      ValueError: an unknown ``norm``, a negative ``eps``.

    References:
      Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018 (the projection
      of PGD).

    Examples:
      >>> project = jaxkit.robust.project
      >>> print(project(jnp.array([3.0, 4.0]), 1.0, "2"), project(jnp.array([3.0, -4.0]), 1.0))
      [0.6 0.8] [ 1. -1.]
    """
    n = norm_name(norm)
    if _c.is_concrete(eps):
        nonneg_eps(eps)
    delta = jnp.asarray(_c.array(delta, "delta", kind="f"))
    if n == "inf":
        return jnp.clip(delta, -eps, eps)
    nrm = jnp.sqrt(jnp.sum(delta * delta))
    return delta * jnp.minimum(1.0, eps / jnp.maximum(nrm, 1e-12))


def nonneg_eps(eps, name="eps"):
    """``eps`` (scalar or per example) as float64 if finite and >= 0."""
    e = np.asarray(eps, dtype=np.float64)
    if not (np.all(np.isfinite(e)) and np.all(e >= 0)):
        raise ValueError(f"`{name}` must be finite and >= 0, got {eps}.")
    return e


def clip_range(clip):
    """``None`` or a valid ``(low, high)`` input range with ``low < high``."""
    if clip is None:
        return None
    lo, hi = (float(c) for c in clip)
    if not lo < hi:
        raise ValueError(f"`clip` must be (low, high) with low < high, got {clip}.")
    return (lo, hi)


def batch_norms(g, norm):
    """Per-example ``norm`` of ``g`` ``[N, ...]``, shaped to broadcast against ``g``."""
    axes = tuple(range(1, g.ndim))
    if norm == "inf":
        return jnp.max(jnp.abs(g), axis=axes, keepdims=True)
    return jnp.sqrt(jnp.sum(g * g, axis=axes, keepdims=True))


def ascent_direction(g, norm):
    """The steepest-ascent unit step for ``norm``: ``sign(g)`` (l-inf) or ``g / ||g||_2`` per example."""
    if norm == "inf":
        return jnp.sign(g)
    return g / jnp.maximum(batch_norms(g, "2"), 1e-12)


def project_batch(delta, eps, norm: str = "inf"):
    """Project each example's perturbation ``delta[i]`` onto its own ``eps``-ball (``eps`` scalar or per example).

    Args:
      delta: ``[N, ...]`` perturbations.
      eps: a radius, or ``[N]`` radii.
      norm: ``"inf"`` or ``"2"``.

    Returns:
      ``[N, ...]`` projected perturbations.

    Raises:
      ValueError: an unknown ``norm``, negative radii, ``eps`` of another length.

    References:
      Madry et al., ICLR 2018.

    Examples:
      >>> print(jaxkit.robust.project_batch(jnp.array([[3.0, 4.0], [0.3, 0.4]]), 1.0, "2"))
      [[0.6 0.8]
       [0.3 0.4]]
    """
    delta = jnp.asarray(_c.array(delta, "delta", min_ndim=1, kind="f", nonempty=True))
    if jnp.size(eps) not in (1, delta.shape[0]):
        raise ValueError(
            f"`eps` must be a scalar or one radius per example ({delta.shape[0]}), got shape {jnp.shape(eps)}."
        )
    if _c.is_concrete(eps):
        nonneg_eps(eps)
    return project_each(
        delta, jnp.reshape(jnp.asarray(eps, delta.dtype), (-1,) + (1,) * (delta.ndim - 1)), norm_name(norm)
    )


def project_each(delta, e, norm):
    """Project each ``delta[i]`` onto its ``e[i]``-ball (``e`` broadcastable to ``delta``; ``norm`` canonical)."""
    if norm == "inf":
        return jnp.clip(delta, -e, e)
    return delta * jnp.minimum(1.0, e / jnp.maximum(batch_norms(delta, "2"), 1e-12))
