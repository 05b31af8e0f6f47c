"""softRmax (Cao, Lengyel et al., CVPR 2022 / TU Delft thesis ch. 5): a conservative, distance-based
softmax replacement and its cross-entropy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxkit import _checks as _c

__all__ = ["softrmax", "softrmax_cross_entropy", "softrmax_distances", "softrmax_log_probs"]


def softrmax_distances(z):
    """The squared distances ``d_k = ||z - e_k||^2`` of ``z`` to every one-hot ``e_k`` (shape of ``z``).

    ``||z||^2 - 2 z_k + 1`` in O(k), except for ``k = argmax z``, recomputed as
    ``sum_{i != k} z_i^2 + (z_k - 1)^2``: the identity cancels catastrophically
    in float32 near ``z = e_k`` (exactly where training drives ``z``), and only
    the largest component can give a small ``d_k``, so the cost stays O(k).

    Args:
      z: ``[..., C]`` outputs.

    Returns:
      ``[..., C]`` squared distances.

    Raises:
      ValueError: ``z`` empty or not real.

    References:
      Cao, Lengyel et al., CVPR 2022, and the TU Delft dissertation on sensitivities of visual learning (its ch. 5 on
      robustness) (softRmax).

    Examples:
      >>> print(np.asarray(jaxkit.robust.softrmax_distances(jnp.array([0.9, 0.1, 0.0])), float).round(3))
      [0.02 1.62 1.82]
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
    """softRmax log-posteriors ``log p_i``, ``p_i(z) = ||z - e_i||^-2 / sum_k ||z - e_k||^-2``.

    Log domain: ``log p = -log d - logsumexp(-log d)`` with ``d`` from
    :func:`softrmax_distances` floored at ``floor`` (so ``z = e_k`` exactly gives
    a finite, near-one-hot posterior instead of ``inf / inf``). Far from the
    centres every ``d_k ~ ||z||^2`` and ``p -> 1/k`` (conservative), where
    softmax goes one-hot.

    Args:
      z: ``[..., C]`` outputs.
      floor: the smallest distance used.

    Returns:
      ``[..., C]`` log-probabilities.

    Raises:
      ValueError: ``z`` empty or not real, a non-positive ``floor``.

    References:
      Cao, Lengyel et al., CVPR 2022, and the TU Delft dissertation on sensitivities of visual learning (its ch. 5 on
      robustness) (softRmax).

    Examples:
      >>> print(np.asarray(jaxkit.robust.softrmax_log_probs(jnp.array([0.9, 0.1, 0.0])), float).round(3))
      [-0.023 -4.418 -4.534]
    """
    if not float(floor) > 0:
        raise ValueError(f"`floor` must be > 0, got {floor}.")
    neg = -jnp.log(jnp.maximum(softrmax_distances(z), floor))
    return neg - jax.nn.logsumexp(neg, axis=-1, keepdims=True)


def softrmax(z, floor: float = 1e-12):
    """softRmax posteriors (rows sum to one): ``p_i(z) = ||z - e_i||^-2 / sum_k ||z - e_k||^-2``.

    Far from every one-hot centre the posteriors tend to ``1/C`` (conservative), where softmax goes one-hot.

    Args:
      z: ``[..., C]`` outputs.
      floor: the smallest distance used (see :func:`softrmax_log_probs`).

    Returns:
      ``[..., C]`` probabilities.

    Raises:
      ValueError: as :func:`softrmax_log_probs`.

    References:
      Cao, Lengyel et al., CVPR 2022, and the TU Delft dissertation on sensitivities of visual learning (its ch. 5 on
      robustness) (softRmax).

    Examples:
      >>> p = jaxkit.robust.softrmax(jnp.array([[0.9, 0.1, 0.0], [10.0, 10.0, 10.0]]))
      >>> print(np.asarray(p, float).round(3))
      [[0.977 0.012 0.011]
       [0.333 0.333 0.333]]
    """
    return jnp.exp(softrmax_log_probs(z, floor))


def softrmax_cross_entropy(logits, labels, floor: float = 1e-12):
    """``-log p_y`` under softRmax, per example: a drop-in for ``optax.softmax_cross_entropy_with_integer_labels``.

    Args:
      logits: ``[N, C]`` outputs.
      labels: ``[N]`` integer labels.
      floor: as :func:`softrmax_log_probs`.

    Returns:
      ``[N]`` losses.

    Raises:
      ValueError: labels out of range or of another length; as :func:`softrmax_log_probs`.

    References:
      Cao, Lengyel et al., CVPR 2022, and the TU Delft dissertation on sensitivities of visual learning (its ch. 5 on
      robustness) (softRmax).

    Examples:
      >>> loss = jaxkit.robust.softrmax_cross_entropy(jnp.array([[0.9, 0.1, 0.0]]), jnp.array([0]))
      >>> print(np.asarray(loss, float).round(4))
      [0.0231]
    """
    logits = _c.logits(logits)
    labels = jnp.asarray(labels)
    _c.labels_for(logits, labels)
    lp = softrmax_log_probs(logits, floor)
    return -jnp.take_along_axis(lp, labels[..., None], axis=-1)[..., 0]
