"""Label smoothing (Liu & JaJa, ICANN 2021, "Class-similarity based label smoothing").

* :func:`class_mean_pairwise_distance` -- ``d_k(k')``, the mean distance over all pairs of examples of
  classes ``k`` and ``k'`` (L2 via the Gram trick, L1 in row chunks so memory stays bounded; the diagonal
  averages distinct pairs of one class);
* :func:`class_similarity_matrix` -- each row standardised (with or without the diagonal: the paper does
  not say; a parameter), ``softmax(-beta d)``, the diagonal zeroed and the row renormalised;
* :func:`similarity_smooth_labels` -- ``(1 - alpha) e_k + alpha s_k``: alpha is exactly the mass put on
  the other classes; :func:`uniform_smooth_labels` (Szegedy et al.: ``(1 - alpha) e_k + alpha / C``) for
  comparison.

Both targets plug into ``optax.softmax_cross_entropy(logits, targets)``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkit import _checks as _c

__all__ = [
    "class_mean_pairwise_distance",
    "class_similarity_matrix",
    "similarity_smooth_labels",
    "uniform_smooth_labels",
]


def class_mean_pairwise_distance(
    x, labels, num_classes: int | None = None, *, p: int = 2, chunk: int = 256
) -> jax.Array:
    """The ``[C, C]`` mean distance ``d_k(k')`` between examples of each pair of classes.

    ``d_k(k') = mean over i in k, j in k' of ||x_i - x_j||_p`` on flattened ``x``; the diagonal averages the
    distinct pairs ``i != j`` within a class (0 for a class of one). L2 by the Gram trick, L1 in row chunks
    (memory bounded by ``chunk``).

    Args:
      x: ``[N, ...]`` examples.
      labels: ``[N]`` integer labels.
      num_classes: ``C`` (default ``max(labels) + 1``).
      p: 1 or 2.
      chunk: rows per block of the L1 computation.

    Returns:
      ``[C, C]`` symmetric float array.

    Raises:
      ValueError: ``x`` empty or NaN, labels out of range or of another length, ``p`` not 1 or 2, a class with
        no example.

    References:
      Liu & JaJa, "Class-similarity based label smoothing for confidence calibration", ICANN 2021, Sec. 3 (the class
      distance).

    Examples:
      >>> x = jnp.array([[0.0], [0.0], [1.0], [3.0]])
      >>> d = jaxkit.losses.class_mean_pairwise_distance(x, jnp.array([0, 0, 1, 2]))
      >>> print(np.asarray(d, float).round(2))
      [[0. 1. 3.]
       [1. 0. 2.]
       [3. 2. 0.]]
    """
    x = _c.real_batch(x, "x")
    x = x.reshape(x.shape[0], -1)
    y, c = _c.class_labels(labels, x.shape[0], num_classes)
    if p not in (1, 2):
        raise ValueError(f"`p` must be 1 or 2, got {p}.")
    if _c.is_concrete(y):
        missing = np.setdiff1d(np.arange(c), np.asarray(y))
        if missing.size:  # its distances are undefined (they would read 0: the most similar class)
            raise ValueError(f"`labels` has no example of class(es) {missing.tolist()} of the {c} classes.")
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


def class_similarity_matrix(
    distances, beta: float = 1.0, *, standardize: bool = True, include_diagonal: bool = False
) -> jax.Array:
    """Class similarities ``S[k, k'] = softmax_{k'}(-beta d_k(k'))`` over ``k' != k`` (rows sum to 1).

    ``standardize`` z-scores each row first, over the off-diagonal entries (``include_diagonal=False``, our
    default: the paper does not say) or the whole row; the diagonal is zeroed and each row renormalised.
    ``beta = 0`` gives the uniform distribution over the other classes.

    Args:
      distances: ``[C, C]`` class distances (:func:`class_mean_pairwise_distance`), ``C >= 2``.
      beta: inverse temperature (>= 0).
      standardize: z-score each row before the softmax.
      include_diagonal: include the diagonal in the row statistics.

    Returns:
      ``[C, C]`` row-stochastic array with a zero diagonal.

    Raises:
      ValueError: ``distances`` not a finite square matrix with ``C >= 2``, ``beta < 0``.

    References:
      Liu & JaJa, "Class-similarity based label smoothing for confidence calibration", ICANN 2021, Sec. 3 (the
      similarity-based smoothing distribution).

    Examples:
      >>> d = jnp.array([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
      >>> print(np.asarray(jaxkit.losses.class_similarity_matrix(d), float).round(3))
      [[0.    0.881 0.119]
       [0.881 0.    0.119]
       [0.119 0.881 0.   ]]
    """
    d = _c.array(distances, "distances", ndim=2, kind="r")
    _c.finite(d, "distances")
    if not float(beta) >= 0:
        raise ValueError(f"`beta` must be >= 0 (0: uniform over the other classes), got {beta}.")
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
    """Similarity-based soft targets ``(1 - alpha) e_y + alpha S[y]`` (``S`` from :func:`class_similarity_matrix`).

    ``alpha`` is exactly the mass put on the other classes, spread by class similarity. Plug into
    ``optax.softmax_cross_entropy(logits, targets)``.

    Args:
      labels: ``[N]`` integer labels.
      similarity: ``[C, C]`` row-stochastic matrix with a zero diagonal.
      alpha: the smoothing mass in ``[0, 1]``.

    Returns:
      ``[N, C]`` targets, rows summing to 1.

    Raises:
      ValueError: labels out of range, ``similarity`` not row-stochastic ``[C, C]``, ``alpha`` outside
        ``[0, 1]``.

    References:
      Liu & JaJa, "Class-similarity based label smoothing for confidence calibration", ICANN 2021, Sec. 3.

    Examples:
      >>> s = jnp.array([[0.0, 0.881, 0.119], [0.881, 0.0, 0.119], [0.119, 0.881, 0.0]])
      >>> t = jaxkit.losses.similarity_smooth_labels(jnp.array([0]), s, alpha=0.2)
      >>> print(np.asarray(t, float).round(3))
      [[0.8   0.176 0.024]]
    """
    s = _c.array(similarity, "similarity", ndim=2, kind="r")
    _c.finite(s, "similarity")
    s = jnp.asarray(s)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"`similarity` must be a square [C, C] matrix, got shape {s.shape}.")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"`alpha` must lie in [0, 1], got {alpha}.")
    if _c.is_concrete(s):
        rows = np.asarray(s, np.float64)
        if np.any(rows < 0) or not np.allclose(rows.sum(1), 1.0, atol=1e-4):
            raise ValueError(
                "`similarity` must be row-stochastic (non-negative rows summing to 1, as class_similarity_matrix "
                f"gives), got row sums {rows.sum(1).round(4).tolist()}."
            )
    y, c = _c.class_labels(labels, jnp.shape(labels)[0] if jnp.ndim(labels) == 1 else -1, s.shape[0])
    return (1.0 - alpha) * jax.nn.one_hot(y, c) + alpha * s[y]


def uniform_smooth_labels(labels, num_classes: int, alpha: float = 0.1) -> jax.Array:
    """Uniform label smoothing: ``[N, C]`` soft targets ``(1 - alpha) e_y + alpha / C``.

    ``optax.smooth_labels`` applied to one-hot labels.

    Args:
      labels: ``[N]`` integer labels.
      num_classes: ``C``.
      alpha: the smoothing mass in ``[0, 1]``.

    Returns:
      ``[N, C]`` targets, rows summing to 1.

    Raises:
      ValueError: labels out of ``0..C-1``, ``alpha`` outside ``[0, 1]``.

    References:
      Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016, Sec. 7.

    Examples:
      >>> t = jaxkit.losses.uniform_smooth_labels(jnp.array([0, 2]), 3, alpha=0.3)
      >>> print(np.asarray(t, float).round(2))
      [[0.8 0.1 0.1]
       [0.1 0.1 0.8]]
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"`alpha` must lie in [0, 1], got {alpha}.")
    y, c = _c.class_labels(labels, jnp.shape(labels)[0] if jnp.ndim(labels) == 1 else -1, num_classes)
    return optax.smooth_labels(jax.nn.one_hot(y, c), alpha)
