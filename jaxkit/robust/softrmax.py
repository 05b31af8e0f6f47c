"""softRmax (Cao, Lengyel et al., CVPR 2022 / TU Delft thesis ch. 5): a conservative, distance-based
softmax replacement and its cross-entropy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxkit import _checks as _c

__all__ = ["softrmax", "softrmax_cross_entropy", "softrmax_distances", "softrmax_log_probs"]


def softrmax_distances(z):
    """``d_k = ||z - e_k||^2`` for every class ``k`` (``e_k`` one-hot), shape of ``z``.

    ``||z||^2 - 2 z_k + 1`` in O(k), except for ``k = argmax z``, recomputed as
    ``sum_{i != k} z_i^2 + (z_k - 1)^2``: the identity cancels catastrophically
    in float32 near ``z = e_k`` (exactly where training drives ``z``), and only
    the largest component can give a small ``d_k``, so the cost stays O(k).
    """
    z = _c.logits(z)
    sq = z * z
    total = jnp.sum(sq, axis=-1, keepdims=True)
    d = total - 2.0 * z + 1.0
    top = jax.nn.one_hot(jnp.argmax(z, axis=-1), z.shape[-1], dtype=bool)
    others = jnp.sum(jnp.where(top, 0.0, sq), axis=-1, keepdims=True)
    direct = others + (z - 1.0) ** 2
    return jnp.where(top, direct, d)


def softrmax_log_probs(z, floor: float = 1e-12):
    """``log p_i``, ``p_i(z) = ||z - e_i||^-2 / sum_k ||z - e_k||^-2`` (softRmax).

    Log domain: ``log p = -log d - logsumexp(-log d)`` with ``d`` from
    :func:`softrmax_distances` floored at ``floor`` (so ``z = e_k`` exactly gives
    a finite, near-one-hot posterior instead of ``inf / inf``). Far from the
    centres every ``d_k ~ ||z||^2`` and ``p -> 1/k`` (conservative), where
    softmax goes one-hot.
    """
    if not float(floor) > 0:
        raise ValueError(f"`floor` must be > 0, got {floor}.")
    neg = -jnp.log(jnp.maximum(softrmax_distances(z), floor))
    return neg - jax.nn.logsumexp(neg, axis=-1, keepdims=True)


def softrmax(z, floor: float = 1e-12):
    """softRmax posteriors (rows sum to one); see :func:`softrmax_log_probs`."""
    return jnp.exp(softrmax_log_probs(z, floor))


def softrmax_cross_entropy(logits, labels, floor: float = 1e-12):
    """``-log p_y`` under softRmax, per example: a drop-in for
    ``optax.softmax_cross_entropy_with_integer_labels(logits, labels)``."""
    logits = _c.logits(logits)
    labels = jnp.asarray(labels)
    _c.labels_for(logits, labels)
    lp = softrmax_log_probs(logits, floor)
    return -jnp.take_along_axis(lp, labels[..., None], axis=-1)[..., 0]
