"""Losses against distribution shift (a TU Delft dissertation on sensitivities of visual learning).

* :func:`hir_loss` -- hypothesis-invariant representations: the sum over same-class pairs ``i < j`` of
  ``KL(p_i || p_j)`` (or the symmetric sum), from one ``O(B^2)`` pairwise-KL matrix (:func:`pairwise_kl`);
  add ``alpha * hir`` to the cross-entropy;
* :func:`mk_mmd` -- multi-kernel MMD (biased / unbiased MMD^2, or its root) with equally weighted Gaussian
  kernels, bandwidths by the median heuristic (:func:`median_bandwidths`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c

__all__ = ["hir_loss", "median_bandwidths", "mk_mmd", "pairwise_kl"]


def _logits_labels(logits, labels):
    z = _c.logit_matrix(logits, min_rows=2)  # pairs need two samples
    y, _ = _c.class_labels(labels, z.shape[0], z.shape[1], ref="logits")
    return z, y


def pairwise_kl(logits):
    """All pairwise KL divergences of the softmax posteriors: ``K[i, j] = KL(p_i || p_j)``.

    ``KL(p_i || p_j) = sum_c p_ic (log p_ic - log p_jc)`` with ``p = softmax(logits)``, from log-softmax (finite
    for saturated logits); one ``O(B^2 C)`` computation.

    Args:
      logits: ``[B, C]`` logits.

    Returns:
      ``[B, B]`` array, zero diagonal.

    Raises:
      ValueError: logits not a finite ``[B, C]`` matrix (when concrete).

    References:
      Kullback & Leibler, "On Information and Sufficiency", Ann. Math. Stat. 22, 1951; the building block of
      :func:`hir_loss`.

    Examples:
      >>> logits = jnp.array([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
      >>> labels = jnp.array([0, 0, 1])
      >>> print(np.asarray(jaxkit.losses.pairwise_kl(logits), float).round(3))
      [[0.    0.067 2.326]
       [0.083 0.    1.66 ]
       [1.841 1.075 0.   ]]
    """
    logp = jax.nn.log_softmax(_c.logit_matrix(logits), axis=-1)
    p = jnp.exp(logp)
    return jnp.sum(p * logp, axis=-1)[:, None] - p @ logp.T


def hir_loss(logits, labels, symmetric: bool = False, reduction: str = "sum"):
    """Hypothesis-invariant-representation loss: ``sum_c sum_{i<j, y_i=y_j=c} KL(p_i || p_j)``.

    Same-class samples, pooled over domains, should get the same posterior. ``symmetric=True`` adds
    ``KL(p_j || p_i)`` for each pair. Pool the batch over domains; use ``L = CE + alpha * hir_loss``.

    Args:
      logits: ``[B, C]`` logits, ``B >= 2``.
      labels: ``[B]`` integer labels.
      symmetric: add the reverse divergence of each pair.
      reduction: ``"sum"`` (the thesis's: its scale grows with the number of same-class pairs, so ``alpha``
        must match the batch) or ``"mean"`` over those pairs.

    Returns:
      A scalar array (0 when no two samples share a class).

    Raises:
      ValueError: logits not ``[B, C]`` with ``B >= 2``, labels out of range or of another length, an unknown
        ``reduction``.

    References:
      the TU Delft dissertation on sensitivities of visual learning that jaxkit.losses reproduces (its
      distribution-shift chapter).

    Examples:
      >>> logits = jnp.array([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
      >>> labels = jnp.array([0, 0, 1])
      >>> round(float(jaxkit.losses.hir_loss(logits, labels)), 4)  # the one same-class pair (0, 1)
      0.0671
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"`reduction` must be 'sum' or 'mean', got {reduction!r}.")
    z, y = _logits_labels(logits, labels)
    k = pairwise_kl(z)
    if symmetric:
        k = k + k.T
    b = z.shape[0]
    mask = (y[:, None] == y[None, :]) & (jnp.arange(b)[:, None] < jnp.arange(b)[None, :])
    total = jnp.sum(jnp.where(mask, k, 0.0))
    return total if reduction == "sum" else total / jnp.maximum(jnp.sum(mask), 1)


def _sq_dists(a, b):
    return jnp.maximum(jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2 * a @ b.T, 0.0)


def median_bandwidths(xs, xt, factors=(0.25, 0.5, 1.0, 2.0, 4.0), max_samples: int = 1024):
    """Kernel bandwidths for MK-MMD: the median pairwise distance of the pooled samples times ``factors``.

    The median is taken over at most ``max_samples`` pooled points (evenly strided, deterministic) so that large
    feature sets stay cheap; no gradient flows through it.

    Args:
      xs: ``[n, ...]`` source samples.
      xt: ``[m, ...]`` target samples (same trailing shape).
      factors: multipliers of the median (our default: 1/4 to 4; the thesis uses five kernels without giving
        them).
      max_samples: pooled points the median is taken over.

    Returns:
      ``[len(factors)]`` bandwidths ``sigma_s``.

    Raises:
      ValueError: samples of different trailing shapes, empty or NaN (when concrete); non-positive factors.

    References:
      Gretton et al., "A Kernel Two-Sample Test", JMLR 13, 2012, Sec. 8 (the median heuristic).

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> xs, xt = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 1
      >>> print(np.asarray(jaxkit.losses.median_bandwidths(xs, xt), float).round(2))
      [0.47 0.94 1.88 3.75 7.51]
    """
    xs, xt = _c.real_batch(xs, "xs"), _c.real_batch(xt, "xt")
    if xs.shape[1:] != xt.shape[1:]:
        raise ValueError(f"`xs` and `xt` must have the same sample shape, got {xs.shape[1:]} and {xt.shape[1:]}.")
    f = np.asarray(factors, np.float64)
    if f.ndim != 1 or f.size == 0 or not np.all(np.isfinite(f) & (f > 0)):
        raise ValueError(f"`factors` must be a non-empty sequence of positive numbers, got {f.tolist()}.")
    x = jnp.concatenate([xs, xt]).reshape(len(xs) + len(xt), -1)
    x = jax.lax.stop_gradient(x)  # a heuristic, not part of the loss: no gradient (and no sqrt(0) NaN)
    step = max(1, -(-x.shape[0] // int(max_samples)))
    sub = x[::step]
    iu = jnp.triu_indices(sub.shape[0], 1)
    d = jnp.sqrt(_sq_dists(sub, sub)[iu])
    return jnp.maximum(jnp.median(d), 1e-12) * jnp.asarray(factors, jnp.float32)


def mk_mmd(xs, xt, bandwidths=None, unbiased: bool = True, squared: bool = True):
    """Multi-kernel maximum mean discrepancy between source ``xs [n, ...]`` and target ``xt [m, ...]`` samples.

    ``k(x, y) = mean_s exp(-||x - y||^2 / (2 sigma_s^2))`` over ``bandwidths``;
    ``MMD^2 = E k(s, s') + E k(t, t') - 2 E k(s, t)``. ``unbiased=True`` drops the ``i = j`` terms of the
    within-set averages (its mean is 0 when both sets come from one distribution; it can be slightly negative).
    ``squared=False`` returns ``sqrt(max(MMD^2, 0))`` (the thesis writes the norm).

    Args:
      xs: ``[n, ...]`` source samples (flattened per sample).
      xt: ``[m, ...]`` target samples.
      bandwidths: ``sigma_s`` (default :func:`median_bandwidths`: the median pairwise distance times 1/4, 1/2,
        1, 2, 4).
      unbiased: the unbiased estimate (needs ``n, m >= 2``).
      squared: return ``MMD^2`` rather than ``MMD``.

    Returns:
      A scalar array.

    Raises:
      ValueError: samples of different trailing shapes, too few samples, NaN (when concrete), non-positive
        bandwidths.

    References:
      Gretton et al., "A Kernel Two-Sample Test", JMLR 13, 2012, Lemma 6 (biased and unbiased MMD^2); Long et
      al., "Learning Transferable Features with Deep Adaptation Networks", ICML 2015 (multi-kernel MMD).

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> xs, same, shifted = rng.normal(size=(3, 200, 2))
      >>> mmd = jaxkit.losses.mk_mmd
      >>> bool(abs(mmd(xs, same)) < 0.01), round(float(mmd(xs, shifted + 1)), 2)
      (True, 0.13)
    """
    xs, xt = _c.real_batch(xs, "xs"), _c.real_batch(xt, "xt")
    xs, xt = xs.reshape(len(xs), -1), xt.reshape(len(xt), -1)
    if xs.shape[1] != xt.shape[1]:
        raise ValueError(f"`xs` and `xt` must have the same feature size, got {xs.shape[1]} and {xt.shape[1]}.")
    n, m = xs.shape[0], xt.shape[0]
    if min(n, m) < 2:
        raise ValueError(f"need at least 2 source (`xs`) and 2 target (`xt`) samples, got {n} and {m}.")
    bw = median_bandwidths(xs, xt) if bandwidths is None else jnp.asarray(bandwidths, jnp.float32).reshape(-1)
    if bandwidths is not None and _c.is_concrete(bw) and not np.all(np.asarray(bw) > 0):
        raise ValueError(f"`bandwidths` must all be > 0, got {np.asarray(bw)}.")

    coef = 1.0 / (2.0 * bw**2)

    def k_of(d):  # mean over the kernels, as one fused element-wise sum (no (kernels, n, m) array)
        return sum(jnp.exp(-d * coef[i]) for i in range(coef.shape[0])) / coef.shape[0]

    def k_sum(a, b):
        return jnp.sum(k_of(_sq_dists(a, b)))

    if unbiased:  # k(x_i, x_i) = 1 for every kernel: the diagonal sums to n
        ss = (k_sum(xs, xs) - n) / (n * (n - 1))
        tt = (k_sum(xt, xt) - m) / (m * (m - 1))
    else:
        ss, tt = k_sum(xs, xs) / (n * n), k_sum(xt, xt) / (m * m)
    mmd2 = ss + tt - 2 * k_sum(xs, xt) / (n * m)
    return mmd2 if squared else jnp.sqrt(jnp.maximum(mmd2, 0.0))
