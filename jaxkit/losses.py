"""Losses and soft targets shared by several methods.

Label smoothing (Liu & JaJa, ICANN 2021, "Class-similarity based label smoothing"):

* :func:`class_mean_pairwise_distance` -- ``d_k(k')``, the mean distance over
  all pairs of examples of classes ``k`` and ``k'`` (L2 via the Gram trick,
  L1 in row chunks so memory stays bounded; the diagonal averages distinct
  pairs of one class);
* :func:`class_similarity_matrix` -- each row standardised (with or without
  the diagonal: the paper does not say; a parameter), ``softmax(-beta d)``,
  the diagonal zeroed and the row renormalised;
* :func:`similarity_smooth_labels` -- ``(1 - alpha) e_k + alpha s_k``: alpha is
  exactly the mass put on the other classes; :func:`uniform_smooth_labels`
  (Szegedy et al.: ``(1 - alpha) e_k + alpha / C``) for comparison.

Both targets plug into ``optax.softmax_cross_entropy(logits, targets)``.

Distribution shift and class imbalance (a TU Delft dissertation on
sensitivities of visual learning; "Deep Learning in the Wild"):

* :func:`hir_loss` -- hypothesis-invariant representations: the sum over
  same-class pairs ``i < j`` of ``KL(p_i || p_j)`` (or the symmetric sum), from
  one ``O(B^2)`` pairwise-KL matrix; add ``alpha * hir`` to the cross-entropy;
* :func:`mk_mmd` -- multi-kernel MMD (biased / unbiased MMD^2, or its root)
  with equally weighted Gaussian kernels, bandwidths by the median heuristic;
* :func:`class_balanced_weights`, :func:`focal_loss`,
  :func:`class_balanced_focal_loss` -- Cui et al. (2019) effective-number
  weights ``(1 - beta) / (1 - beta^n_y)`` times the sigmoid focal loss;
* :class:`RunningMeanBalancer` -- multi-task ``sum_t L_t / m_t`` with ``m_t``
  an exponential running mean of ``L_t`` (optax-style state, resumable).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit._checks import is_concrete

__all__ = ["class_mean_pairwise_distance", "class_similarity_matrix", "similarity_smooth_labels",
           "uniform_smooth_labels", "hir_loss", "pairwise_kl", "median_bandwidths", "mk_mmd",
           "class_balanced_weights", "focal_loss", "class_balanced_focal_loss", "RunningMeanBalancer",
           "BalancerState", "balanced_sum"]


def _labels(labels, n, num_classes=None, ref="x"):
    y = jnp.asarray(_c.array(labels, "labels", kind="i"))
    if n < 0:
        raise ValueError(f"`labels` must be a vector of class indices, got shape {y.shape}.")
    if y.shape[0:1] == (0,) or n == 0:
        raise ValueError(f"`labels` is empty (shape {y.shape}); expected one class per example.")
    if y.shape != (n,):
        raise ValueError(f"`labels` must have shape ({n},) (one class per row of `{ref}`), got {y.shape}.")
    if num_classes is None:
        if not is_concrete(y):
            raise ValueError("`num_classes` must be given when `labels` is traced.")
        num_classes = int(np.max(np.asarray(y))) + 1
    if is_concrete(y) and y.size:
        ya = np.asarray(y)
        if ya.min() < 0 or ya.max() >= int(num_classes):
            raise ValueError(f"`labels` must lie in [0, {num_classes}), got range [{ya.min()}, {ya.max()}].")
    return y.astype(jnp.int32), int(num_classes)


def class_mean_pairwise_distance(x, labels, num_classes: int | None = None, *, p: int = 2,
                                 chunk: int = 256) -> jax.Array:
    """``[C, C]`` mean distance between examples of each pair of classes (``p`` = 1 or 2, on flattened ``x``).

    Off-diagonal entries average all cross-class pairs; the diagonal averages
    the distinct pairs ``i != j`` within a class (0 for a class of one).
    """
    x = _batch(x, "x")
    x = x.reshape(x.shape[0], -1)
    y, c = _labels(labels, x.shape[0], num_classes)
    if p not in (1, 2):
        raise ValueError(f"`p` must be 1 or 2, got {p}.")
    return _pairwise(x, y, c, int(p), int(chunk))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _pairwise(x, y, c, p, chunk):
    n = x.shape[0]
    pad = (-n) % chunk
    xp = jnp.concatenate([x, jnp.zeros((pad, x.shape[1]), x.dtype)])
    yp = jnp.concatenate([y, jnp.full((pad,), c, jnp.int32)])  # padded rows go to a dummy class c
    onehot = jax.nn.one_hot(y, c + 1, dtype=x.dtype)  # [n, c+1]
    sq = jnp.sum(x * x, 1)

    def rows(i):
        xi = jax.lax.dynamic_slice_in_dim(xp, i * chunk, chunk)
        yi = jax.lax.dynamic_slice_in_dim(yp, i * chunk, chunk)
        if p == 2:
            d2 = jnp.sum(xi * xi, 1)[:, None] + sq[None, :] - 2.0 * xi @ x.T
            d = jnp.sqrt(jnp.maximum(d2, 0.0))
        else:
            d = jnp.sum(jnp.abs(xi[:, None, :] - x[None, :, :]), -1)
        per_class = d @ onehot  # [chunk, c+1]: sum of distances to each class
        return jax.ops.segment_sum(per_class, yi, num_segments=c + 1)

    tot = jnp.sum(jax.lax.map(rows, jnp.arange(xp.shape[0] // chunk)), 0)[:c, :c]
    cnt = jnp.sum(onehot[:, :c], 0)
    pairs = cnt[:, None] * cnt[None, :] - jnp.diag(cnt)  # distinct pairs on the diagonal
    return jnp.where(pairs > 0, tot / jnp.where(pairs > 0, pairs, 1.0), 0.0)


def class_similarity_matrix(distances, beta: float = 1.0, *, standardize: bool = True,
                            include_diagonal: bool = False) -> jax.Array:
    """``S[k, k'] = softmax_{k'}(-beta d_k(k'))`` over ``k' != k`` (rows sum to 1, zero diagonal).

    ``standardize`` z-scores each row first, over the off-diagonal entries
    (``include_diagonal=False``, our default) or the whole row. ``beta = 0``
    gives the uniform distribution over the other classes.
    """
    d = _c.array(distances, "distances", ndim=2, kind="r")
    _c.finite(d, "distances")
    d = jnp.asarray(d, jnp.float32)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] < 2:
        raise ValueError(f"`distances` must be a square [C, C] matrix with C >= 2, got shape {d.shape}.")
    c = d.shape[0]
    off = ~jnp.eye(c, dtype=bool)
    if standardize:
        m = off if not include_diagonal else jnp.ones_like(off)
        cnt = jnp.sum(m, 1, keepdims=True)
        mu = jnp.sum(jnp.where(m, d, 0.0), 1, keepdims=True) / cnt
        sd = jnp.sqrt(jnp.sum(jnp.where(m, (d - mu) ** 2, 0.0), 1, keepdims=True) / cnt)
        d = (d - mu) / jnp.where(sd > 0, sd, 1.0)
    logits = jnp.where(off, -float(beta) * d, -jnp.inf)
    return jnp.where(jnp.isnan(d).any(1, keepdims=True), jnp.nan, jax.nn.softmax(logits, axis=1))


def similarity_smooth_labels(labels, similarity, alpha: float = 0.1) -> jax.Array:
    """``[N, C]`` soft targets ``(1 - alpha) e_y + alpha S[y]`` (``S`` from :func:`class_similarity_matrix`)."""
    s = _c.array(similarity, "similarity", ndim=2, kind="r")
    _c.finite(s, "similarity")
    s = jnp.asarray(s)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"`similarity` must be a square [C, C] matrix, got shape {s.shape}.")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"`alpha` must lie in [0, 1], got {alpha}.")
    y, c = _labels(labels, jnp.shape(labels)[0] if jnp.ndim(labels) == 1 else -1, s.shape[0])
    return (1.0 - alpha) * jax.nn.one_hot(y, c) + alpha * s[y]


def uniform_smooth_labels(labels, num_classes: int, alpha: float = 0.1) -> jax.Array:
    """``[N, C]`` soft targets ``(1 - alpha) e_y + alpha / C`` (uniform label smoothing)."""
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"`alpha` must lie in [0, 1], got {alpha}.")
    y, c = _labels(labels, jnp.shape(labels)[0] if jnp.ndim(labels) == 1 else -1, num_classes)
    return (1.0 - alpha) * jax.nn.one_hot(y, c) + alpha / c


# ------------------------------------------------------------------------------------------ distribution shift
def _logits(logits, min_rows=1):
    z = _c.array(logits, "logits", ndim=2, kind="f")
    if z.shape[0] < min_rows or z.shape[1] == 0:
        raise ValueError(f"`logits` must be (batch, classes) with at least {min_rows} row(s), got shape {z.shape}.")
    _c.no_nan(z, "logits")
    return jnp.asarray(z)


def _batch(x, name, ndim=None):
    """A non-empty real batch ``[N, ...]`` as float32, finite when concrete."""
    a = _c.array(x, name, min_ndim=1 if ndim is None else None, ndim=ndim, kind="r", nonempty=True)
    _c.finite(a, name)
    return jnp.asarray(a, jnp.float32)


def _logits_labels(logits, labels):
    z = _logits(logits, min_rows=2)  # pairs need two samples
    y, _ = _labels(labels, z.shape[0], z.shape[1], ref="logits")
    return z, y


def pairwise_kl(logits):
    """``K[i, j] = KL(p_i || p_j)`` for the softmax posteriors of ``logits`` ``(B, C)``: ``(B, B)``."""
    logp = jax.nn.log_softmax(_logits(logits), axis=-1)
    p = jnp.exp(logp)
    return jnp.sum(p * logp, axis=-1)[:, None] - p @ logp.T


def hir_loss(logits, labels, symmetric: bool = False, reduction: str = "sum"):
    """Hypothesis-invariant-representation loss: ``sum_c sum_{i<j, y_i=y_j=c} KL(p_i || p_j)``.

    ``symmetric=True`` adds ``KL(p_j || p_i)`` for each pair. ``reduction``:
    ``"sum"`` (the thesis's: its scale grows with the number of same-class
    pairs, so ``alpha`` must match the batch) or ``"mean"`` over those pairs.
    Pool the batch over domains; use ``L = CE + alpha * hir_loss``.
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
    """The median pairwise distance of the pooled samples times ``factors`` (our default for MK-MMD).

    The median is taken over at most ``max_samples`` pooled points (evenly
    strided, deterministic) so that large feature sets stay cheap; no
    gradient flows through it.
    """
    xs, xt = _batch(xs, "xs"), _batch(xt, "xt")
    if xs.shape[1:] != xt.shape[1:]:
        raise ValueError(f"`xs` and `xt` must have the same sample shape, got {xs.shape[1:]} and {xt.shape[1:]}.")
    x = jnp.concatenate([xs, xt]).reshape(len(xs) + len(xt), -1)
    x = jax.lax.stop_gradient(x)  # a heuristic, not part of the loss: no gradient (and no sqrt(0) NaN)
    step = max(1, -(-x.shape[0] // int(max_samples)))
    sub = x[::step]
    iu = jnp.triu_indices(sub.shape[0], 1)
    d = jnp.sqrt(_sq_dists(sub, sub)[iu])
    return jnp.maximum(jnp.median(d), 1e-12) * jnp.asarray(factors, jnp.float32)


def mk_mmd(xs, xt, bandwidths=None, unbiased: bool = True, squared: bool = True):
    """Multi-kernel maximum mean discrepancy between source ``xs (n, ...)`` and target ``xt (m, ...)`` samples.

    ``k(x, y) = mean_s exp(-||x - y||^2 / (2 sigma_s^2))`` over ``bandwidths``
    (default :func:`median_bandwidths`: the median pairwise distance times
    1/4, 1/2, 1, 2, 4 -- the thesis uses five kernels without giving them).
    ``MMD^2 = E k(s, s') + E k(t, t') - 2 E k(s, t)``: ``unbiased=True`` drops
    the ``i = j`` terms of the within-set averages (its mean is 0 when both
    sets come from one distribution; it can be slightly negative). ``squared=False``
    returns ``sqrt(max(MMD^2, 0))`` (the thesis writes the norm).
    """
    xs, xt = _batch(xs, "xs"), _batch(xt, "xt")
    xs, xt = xs.reshape(len(xs), -1), xt.reshape(len(xt), -1)
    if xs.shape[1] != xt.shape[1]:
        raise ValueError(f"`xs` and `xt` must have the same feature size, got {xs.shape[1]} and {xt.shape[1]}.")
    n, m = xs.shape[0], xt.shape[0]
    if min(n, m) < 2:
        raise ValueError(f"need at least 2 source (`xs`) and 2 target (`xt`) samples, got {n} and {m}.")
    bw = median_bandwidths(xs, xt) if bandwidths is None else jnp.asarray(bandwidths, jnp.float32).reshape(-1)
    if bandwidths is not None and is_concrete(bw) and not np.all(np.asarray(bw) > 0):
        raise ValueError(f"`bandwidths` must all be > 0, got {np.asarray(bw)}.")

    coef = 1.0 / (2.0 * bw ** 2)

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


# ------------------------------------------------------------------------------------------ class imbalance
def class_balanced_weights(counts, beta: float | None = None, normalize: bool = False):
    """Effective-number weights ``(1 - beta) / (1 - beta^n_c)`` per class (Cui et al. 2019).

    ``beta`` default ``(N - 1) / N`` with ``N = sum(counts)`` (the thesis's
    choice); ``beta = 0`` gives 1 for every class. ``normalize=True`` rescales
    the weights to sum to the number of classes (Cui et al.); the thesis does not.
    """
    c = np.asarray(_c.array(counts, "counts", kind="r"), np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"`counts` must be a non-empty vector of class sizes, got shape {c.shape}.")
    if np.any(c <= 0) or not np.all(np.isfinite(c)):
        raise ValueError(f"`counts` must all be positive (a class with no sample has no weight), got {c.tolist()}.")
    n = c.sum()
    b = (n - 1) / n if beta is None else float(beta)
    if not 0 <= b < 1:
        raise ValueError(f"`beta` must lie in [0, 1), got {beta}.")
    w = (1 - b) / (1 - b ** c) if b > 0 else np.ones_like(c)
    if normalize:
        w = w * c.size / w.sum()
    return jnp.asarray(w, jnp.float32)


def focal_loss(logits, labels, gamma: float = 2.0):
    """Per-sample sigmoid focal loss ``sum_c (1 - p^t_c)^gamma (-log p^t_c)``, ``p^t_c = sigma(z_c)`` for the
    true class and ``1 - sigma(z_c)`` otherwise (Lin et al. 2017; ``gamma = 0``: summed binary cross-entropy)."""
    z = _logits(logits)
    if not float(gamma) >= 0:
        raise ValueError(f"`gamma` must be >= 0, got {gamma}.")
    y, _ = _labels(labels, z.shape[0], z.shape[1], ref="logits")
    onehot = jax.nn.one_hot(y, z.shape[1], dtype=bool)
    t = jnp.where(onehot, z, -z)  # p^t = sigmoid(t), 1 - p^t = sigmoid(-t)
    # all in log space: (1 - p^t)^gamma = exp(gamma log sigmoid(-t)) has a finite gradient at saturated logits,
    # where (1 - exp(log p^t))^gamma gave NaN (gamma = 0: 0 * inf) or inf (0 < gamma < 1)
    return jnp.sum(jnp.exp(gamma * jax.nn.log_sigmoid(-t)) * -jax.nn.log_sigmoid(t), axis=-1)


def class_balanced_focal_loss(logits, labels, counts, beta: float | None = None, gamma: float = 2.0,
                              normalize: bool = False):
    """Mean over the batch of ``class_balanced_weights(counts, beta)[y] * focal_loss(logits, y, gamma)``.

    ``gamma`` is not given in the thesis: 2 (Lin et al.'s default) is our choice.
    """
    w = class_balanced_weights(counts, beta, normalize)
    z = _logits(logits)
    if w.shape[0] != z.shape[1]:
        raise ValueError(f"`counts` has {w.shape[0]} classes but `logits` has {z.shape[1]}.")
    y, _ = _labels(labels, z.shape[0], z.shape[1], ref="logits")
    return jnp.mean(w[y] * focal_loss(z, y, gamma))


class BalancerState(NamedTuple):
    """``mean``: running mean of each task's loss; ``count``: updates so far (int32)."""

    mean: jax.Array
    count: jax.Array


class RunningMeanBalancer(NamedTuple):
    """Multi-task loss balancing by running means: ``total = sum_t L_t / m_t`` (``m_t`` held fixed in gradients).

    ``m_t <- decay * m_t + (1 - decay) * L_t`` after a first value ``m_t = L_t``
    (exponential averaging and ``decay`` are our choice; the case study gives
    neither). ``update`` returns the weights ``1 / m_t`` that already include
    the current losses, so the first step weighs every task to 1. Optax-style:
    ``state = init(num_tasks)``; ``weights, state = update(losses, state)``;
    the state is a pytree (checkpoint it to resume).
    """

    decay: float = 0.99
    eps: float = 1e-12

    def init(self, num_tasks: int) -> BalancerState:
        if not 0 <= float(self.decay) < 1:
            raise ValueError(f"`decay` must lie in [0, 1), got {self.decay}.")
        return BalancerState(jnp.zeros((int(num_tasks),), jnp.float32), jnp.zeros((), jnp.int32))

    def update(self, losses, state: BalancerState):
        l_now = jax.lax.stop_gradient(jnp.asarray(losses, jnp.float32))
        if l_now.shape != state.mean.shape:
            raise ValueError(f"`losses` must have shape {state.mean.shape} (one per task), got {l_now.shape}.")
        mean = jnp.where(state.count == 0, l_now, self.decay * state.mean + (1 - self.decay) * l_now)
        return 1.0 / jnp.maximum(mean, self.eps), BalancerState(mean, state.count + 1)


def balanced_sum(losses, weights):
    """``sum_t w_t L_t`` with the weights held constant (no gradient through them)."""
    losses = jnp.asarray(_c.array(losses, "losses", ndim=1, kind="r", nonempty=True))
    weights = jnp.asarray(_c.array(weights, "weights", ndim=1, kind="r", nonempty=True))
    if losses.shape != weights.shape:
        raise ValueError(f"`losses` {losses.shape} and `weights` {weights.shape} must have one entry per task each.")
    return jnp.sum(jax.lax.stop_gradient(weights) * losses)
