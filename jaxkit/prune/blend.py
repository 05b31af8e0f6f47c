"""Building blocks of "Blending Pruning Criteria for CNNs" (He et al., ICANN 2021).

* :func:`rankdata` / :func:`spearman` / :func:`correlation_matrix` -- Spearman
  rank correlation between criteria, ranks with ties averaged exactly as
  ``scipy.stats.rankdata(method="average")`` (the paper's Eq. 1 prints value
  differences where rank differences belong: we use ranks);
* :func:`kmeans` -- jitted Lloyd's k-means (k-means++ seeding from an explicit
  key) to cluster criteria per layer on their rows of the correlation matrix;
* :func:`blend` -- ``sum_i w_i * s_{c_i}`` of selected (normalised) criteria.

The evolutionary search over selections and weights lives in the evolution
module.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp

from jaxkit import _checks as _c

__all__ = ["blend", "correlation_matrix", "kmeans", "rankdata", "score_groups", "spearman"]


def rankdata(x: jax.Array) -> jax.Array:
    """1-based ranks along the last axis, ties getting their average rank (scipy's ``"average"``).

    A row holding NaN gets NaN ranks (NaN has no rank).

    Args:
      x: ``[..., C]`` values.

    Returns:
      ``[..., C]`` float ranks.

    References:
      Spearman, "The proof and measurement of association between two things", Am. J. Psychol. 15, 1904;
      ``scipy.stats.rankdata(method="average")``.

    Examples:
      >>> print(jaxkit.prune.rankdata(jnp.array([3.0, 1.0, 3.0])))
      [2.5 1.  2.5]
    """
    x = _c.array(x, "x", min_ndim=1, kind="r")
    if x.shape[-1] == 0:
        raise ValueError(f"`x` is empty along its last axis (shape {x.shape}).")
    x = jnp.asarray(x)
    less = jnp.sum(x[..., None, :] < x[..., :, None], axis=-1)
    equal = jnp.sum(x[..., None, :] == x[..., :, None], axis=-1)
    return jnp.where(jnp.isnan(x).any(-1, keepdims=True), jnp.nan, less + (equal + 1) / 2.0)


def _pearson(a, b):
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = jnp.sqrt(jnp.sum(a * a, -1) * jnp.sum(b * b, -1))
    return jnp.where(den > 0, jnp.sum(a * b, -1) / jnp.where(den > 0, den, 1.0), jnp.nan)


@jax.jit
def spearman(a: jax.Array, b: jax.Array) -> jax.Array:
    """Spearman's rho along the last axis (NaN if either input is constant, as scipy).

    The Pearson correlation of :func:`rankdata` ranks.

    Args:
      a: ``[..., C]`` values.
      b: ``[..., C]`` values.

    Returns:
      ``[...]`` correlations.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Eq. (1) (with rank differences);
      ``scipy.stats.spearmanr``.

    Examples:
      >>> float(jaxkit.prune.spearman(jnp.array([1.0, 2.0, 3.0, 4.0]), jnp.array([2.0, 4.0, 6.0, 9.0])))
      1.0
    """
    return _pearson(rankdata(a), rankdata(b))


@jax.jit
def _corr(s):
    r = rankdata(s)
    return jax.vmap(lambda a: jax.vmap(lambda b: _pearson(a, b))(r))(r)


def correlation_matrix(scores: Mapping[str, jax.Array] | jax.Array) -> jax.Array:
    """The ``[K, K]`` Spearman matrix between K criteria's scores of one layer.

    ``scores``: ``{criterion: scores[C]}`` (rows in the mapping's order) or a
    ``[K, C]`` array.

    Args:
      scores: ``{criterion: scores [C]}`` or ``[K, C]``.

    Returns:
      ``[K, K]`` correlations.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Sec. 3.1.

    Examples:
      >>> print(jaxkit.prune.correlation_matrix({"a": jnp.array([1.0, 2, 3]), "b": jnp.array([3.0, 2, 1])}))
      [[ 1. -1.]
       [-1.  1.]]
    """
    if isinstance(scores, Mapping):
        s = jnp.stack([jnp.asarray(_c.array(v, f"scores[{k!r}]", ndim=1, kind="r")) for k, v in scores.items()])
    else:
        s = jnp.asarray(_c.array(scores, "scores", kind="r"))
    if s.ndim != 2 or s.shape[1] < 2 or s.shape[0] == 0:
        raise ValueError(f"`scores` must be K criteria x C >= 2 channels, got shape {s.shape}.")
    return _corr(s)


def kmeans(key: jax.Array, x: jax.Array, k: int, iters: int = 50) -> tuple[jax.Array, jax.Array]:
    """Lloyd's k-means on the rows of ``x`` with k-means++ seeding; returns ``(labels[N], centers[k, D])``.

    Jitted; ``key`` drives the seeding. NaN entries (constant criteria) are
    treated as 0 correlation.

    Args:
      key: PRNG key of the seeding.
      x: ``[N, D]`` rows.
      k: clusters (``1 <= k <= N``).
      iters: Lloyd iterations.

    Returns:
      ``(labels [N], centers [k, D])``.

    Raises:
      ValueError: ``k`` outside ``[1, N]``, ``x`` not ``[N, D]``.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Sec. 3.1 (clustering the criteria); Arthur &
      Vassilvitskii, "k-means++: The Advantages of Careful
      Seeding", SODA 2007.

    Examples:
      >>> labels, centers = jaxkit.prune.kmeans(jax.random.key(0), jnp.array([[0.0, 0], [0.1, 0], [5, 5], [5.1, 5]]), 2)
      >>> bool(labels[0] == labels[1]), bool(labels[1] != labels[2]), centers.shape
      (True, True, (2, 2))
    """
    x = _c.array(x, "x", ndim=2, kind="r", nonempty=True)
    x = jnp.nan_to_num(jnp.asarray(x, jnp.float32))
    if x.ndim != 2:
        raise ValueError(f"`x` must be [N, D], got shape {x.shape}.")
    if not 1 <= int(k) <= x.shape[0]:
        raise ValueError(f"`k` must be in [1, {x.shape[0]}] (number of rows), got {k}.")
    return _kmeans(key, x, int(k), int(iters))


@functools.partial(jax.jit, static_argnames=("k", "iters"))
def _kmeans(key, x, k, iters):
    n = x.shape[0]

    def d2(c):
        return jnp.sum((x[:, None, :] - c[None, :, :]) ** 2, -1)

    def seed(carry, i):
        centers, key = carry
        key, sub = jax.random.split(key)
        dist = jnp.min(jnp.where(jnp.arange(k)[None, :] < i, d2(centers), jnp.inf), axis=1)
        p = jnp.where(i == 0, jnp.ones(n), dist)
        p = jnp.where(jnp.sum(p) > 0, p, jnp.ones(n))
        j = jax.random.choice(sub, n, p=p / jnp.sum(p))
        return (centers.at[i].set(x[j]), key), None

    (centers, _), _ = jax.lax.scan(seed, (jnp.zeros((k, x.shape[1]), x.dtype), key), jnp.arange(k))

    def lloyd(centers, _):
        labels = jnp.argmin(d2(centers), axis=1)
        onehot = jax.nn.one_hot(labels, k, dtype=x.dtype)
        cnt = onehot.sum(0)
        new = (onehot.T @ x) / jnp.maximum(cnt, 1)[:, None]
        return jnp.where(cnt[:, None] > 0, new, centers), None

    centers, _ = jax.lax.scan(lloyd, centers, None, length=iters)
    return jnp.argmin(d2(centers), axis=1), centers


def score_groups(scores: Mapping[str, Mapping[str, Any]], criteria: Sequence[str], name: str = "criteria") -> tuple:
    """The channel groups every criterion of ``criteria`` scores, in order: ``ValueError`` naming ``name`` when a
    criterion is missing from ``scores``, or when two criteria cover different groups."""
    missing = [c for c in criteria if c not in scores]
    if missing:
        raise ValueError(f"`{name}` {missing} are not in `scores` (have {sorted(scores)}).")
    groups = tuple(scores[criteria[0]])
    for c in criteria:
        if tuple(scores[c]) != groups:
            raise ValueError(f"Criterion {c!r} covers groups {sorted(scores[c])}, expected {sorted(groups)}.")
    return groups


def blend(
    scores: Mapping[str, Mapping[str, jax.Array]], selected: Sequence[str], weights: Sequence[float] | jax.Array
) -> dict[str, jax.Array]:
    """The blended score ``{group: sum_i weights[i] * scores[selected[i]][group]}``.

    Criteria are min-max normalised beforehand (:func:`all_scores` with ``normalize=True``).

    Args:
      scores: ``{criterion: {group: scores [C]}}``.
      selected: the blended criteria.
      weights: one weight per selected criterion.

    Returns:
      ``{group: scores [C]}``.

    Raises:
      ValueError: an unknown criterion, weights of another length, criteria covering different groups.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Eq. (2).

    Examples:
      >>> scores = {"a": {"g": jnp.array([1.0, 0.0])}, "b": {"g": jnp.array([0.0, 1.0])}}
      >>> jaxkit.prune.blend(scores, ["a", "b"], [0.25, 0.75])
      {'g': Array([0.25, 0.75], dtype=float32)}
    """
    sel = list(selected)
    w = jnp.asarray(_c.array(weights, "weights", ndim=1, kind="r"), jnp.float32)
    if w.shape != (len(sel),):
        raise ValueError(f"`weights` must have one entry per selected criterion ({len(sel)}), got shape {w.shape}.")
    groups = list(score_groups(scores, sel, "selected"))
    for c in sel:
        for g in groups:
            a = _c.array(scores[c][g], f"scores[{c!r}][{g!r}]", ndim=1, kind="r", nonempty=True)
            if jnp.shape(a) != jnp.shape(scores[sel[0]][g]):
                raise ValueError(
                    f"`scores[{c!r}][{g!r}]` has shape {jnp.shape(a)}, expected "
                    f"{jnp.shape(scores[sel[0]][g])} (one score per channel)."
                )
    return {g: cast(jax.Array, sum(w[i] * jnp.asarray(scores[c][g]) for i, c in enumerate(sel))) for g in groups}
