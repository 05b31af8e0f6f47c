"""Local spatial entropy of explanation maps, and an attack detector built on it.

"Deep Learning in the Wild" (quality-control case study): under an adversarial
attack the network's feature-response map (guided backpropagation) spreads --
the model "does not know where to look" -- so the map's local spatial entropy
rises. The paper gives no window, bin count, aggregation or threshold rule;
ours, all parameters:

- :func:`local_spatial_entropy`: quantise the map to ``bins`` levels over
  ``value_range``, histogram a ``window x window`` square around each pixel
  (pixels outside the image are not counted, as in
  ``skimage.filters.rank.entropy``), entropy in bits (log base 2).
- :func:`entropy_scores`: the mean local entropy of each map.
- :func:`fit_threshold`: the ``1 - fpr`` quantile of clean scores
  (``fpr = 0.05``), so about 5 % of clean inputs are flagged.
- :func:`feature_response`: ``max_channel |guided backprop|`` normalised to
  ``[0, 1]`` per image -- the map the detector reads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit import metrics

from .maps import guided_backprop, normalize_maps

__all__ = ["detect", "detection_report", "entropy_scores", "feature_response", "fit_threshold", "local_spatial_entropy"]


def _check_maps(maps, bins, window, value_range):
    maps = _c.array(maps, "maps", ndim=(2, 3), kind="r", nonempty=True)
    if 0 in jnp.shape(maps):
        raise ValueError(f"`maps` is empty (shape {jnp.shape(maps)}).")
    _c.finite(maps, "maps")
    maps = jnp.asarray(maps)
    if int(bins) < 2:
        raise ValueError(f"`bins` must be >= 2, got {bins}.")
    if int(window) < 1 or int(window) % 2 == 0:
        raise ValueError(f"`window` must be an odd size >= 1, got {window}.")
    lo, hi = (float(v) for v in value_range)
    if not lo < hi:
        raise ValueError(f"`value_range` must be (low, high) with low < high, got {value_range}.")
    return maps, (lo, hi)


def local_spatial_entropy(maps, window: int = 5, bins: int = 16, value_range=(0.0, 1.0)):
    """Entropy (bits) of the level histogram in a ``window x window`` square around every pixel.

    Float maps are quantised to ``floor((m - lo) / (hi - lo) * bins)`` clipped to
    ``[0, bins - 1]``; integer maps are taken as levels already (e.g. uint8 with
    ``bins=256``, the convention of ``skimage.filters.rank.entropy``). Window
    pixels outside the image are left out of the histogram.

    Args:
      maps: ``[H, W]`` or ``[B, H, W]`` maps.
      window: the square's side (odd).
      bins: quantisation levels.
      value_range: ``(lo, hi)`` of float maps.

    Returns:
      Entropies of the maps' shape.

    Raises:
      ValueError: maps not 2-D / 3-D or empty, an even or non-positive ``window``, ``bins < 2``, an inverted
        ``value_range``.

    References:
      the "Deep Learning in the Wild" quality-control case study (its saliency-entropy attack detector; window, bins and
      threshold rule are ours); ``skimage.filters.rank.entropy`` (the window convention).

    Examples:
      >>> stripes = jnp.zeros((8, 8)).at[:, ::2].set(1.0)  # two levels, half and half in every row
      >>> round(float(jaxkit.explain.local_spatial_entropy(stripes, window=3, bins=2)[4, 4]), 3)
      0.918
    """
    maps, vr = _check_maps(maps, bins, window, value_range)
    return _lse(maps, int(window), int(bins), vr)


@functools.partial(jax.jit, static_argnames=("window", "bins", "vr"))
def _lse(maps, window, bins, vr):
    single = maps.ndim == 2
    m = maps[None] if single else maps
    if m.dtype == jnp.bool_:
        m = m.astype(jnp.int32)
    if jnp.issubdtype(m.dtype, jnp.integer):
        q = jnp.clip(m.astype(jnp.int32), 0, bins - 1)
    else:
        q = jnp.clip(jnp.floor((m - vr[0]) / (vr[1] - vr[0]) * bins), 0, bins - 1).astype(jnp.int32)
    onehot = jax.nn.one_hot(q, bins, dtype=jnp.float32)  # (B, H, W, bins)
    r = window // 2
    pad = ((0, 0), (r, r), (r, r), (0, 0))
    counts = jax.lax.reduce_window(onehot, 0.0, jax.lax.add, (1, window, window, 1), (1, 1, 1, 1), pad)
    total = jnp.sum(counts, axis=-1, keepdims=True)
    p = counts / total
    ent = -jnp.sum(jnp.where(p > 0, p * jnp.log2(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)
    if not jnp.issubdtype(maps.dtype, jnp.integer):  # inside a trace, a NaN pixel makes its windows NaN
        nan = (
            jax.lax.reduce_window(
                jnp.isnan(m).astype(jnp.float32),
                0.0,
                jax.lax.add,
                (1, window, window),
                (1, 1, 1),
                ((0, 0), (r, r), (r, r)),
            )
            > 0
        )
        ent = jnp.where(nan, jnp.nan, ent)
    return ent[0] if single else ent


def entropy_scores(maps, window: int = 5, bins: int = 16, value_range=(0.0, 1.0)):
    """The mean local spatial entropy of each map: ``(B,)`` (a scalar for one map).

    Args:
      maps: ``[H, W]`` or ``[B, H, W]`` maps.
      window: as :func:`local_spatial_entropy`.
      bins: as :func:`local_spatial_entropy`.
      value_range: as :func:`local_spatial_entropy`.

    Returns:
      ``[B]`` scores (or a scalar).

    Raises:
      ValueError: as :func:`local_spatial_entropy`.

    References:
      the "Deep Learning in the Wild" quality-control case study (its saliency-entropy attack detector; window, bins and
      threshold rule are ours).

    Examples:
      >>> stripes = jnp.zeros((8, 8)).at[:, ::2].set(1.0)
      >>> print(np.asarray(jaxkit.explain.entropy_scores(jnp.stack([stripes, jnp.zeros((8, 8))]), 3, 2)).round(3))
      [0.939 0.   ]
    """
    ent = local_spatial_entropy(maps, window, bins, value_range)
    return jnp.mean(ent, axis=(-2, -1))


def feature_response(apply_fn: Callable, params, x, target=None):
    """The detector's map: ``max_channel |guided backprop|`` per pixel, each map divided by its maximum.

    Args:
      apply_fn: ``(params, x) -> logits`` of a Flax Linen model.
      params: its variables.
      x: ``[B, H, W, C]`` images.
      target: the explained class (scalar or ``[B]``); ``None``: each image's top-1 class.

    Returns:
      ``[B, H, W]`` maps in ``[0, 1]``.

    Raises:
      ValueError: as :func:`guided_backprop`.

    References:
      the "Deep Learning in the Wild" quality-control case study (its saliency-entropy attack detector; window, bins and
      threshold rule are ours).

    Examples:
      >>> model = jaxkit.models.SmallCNN((4, 5), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> jaxkit.explain.feature_response(model.apply, variables, x).shape
      (2, 8, 8)
    """
    g = guided_backprop(apply_fn, params, x, target)
    r = jnp.abs(g)
    r = jnp.max(r, axis=-1) if r.ndim == 4 else r
    return normalize_maps(r)


def _score_vector(s, name):
    s = _c.array(s, name, ndim=1, kind="r", nonempty=True)
    s = np.asarray(s, np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError(f"`{name}` must hold finite scores (one per input).")
    return s


def fit_threshold(clean_scores, fpr: float = 0.05) -> float:
    """The detection threshold: the ``1 - fpr`` quantile of the scores of clean inputs ``[N]``.

    Args:
      clean_scores: ``[N]`` scores of clean inputs.
      fpr: the share of clean inputs flagged, in ``(0, 1)``.

    Returns:
      The threshold, a Python float.

    Raises:
      ValueError: empty or non-finite scores, ``fpr`` outside ``(0, 1)``.

    References:
      the "Deep Learning in the Wild" quality-control case study (its saliency-entropy attack detector; window, bins and
      threshold rule are ours).

    Examples:
      >>> round(jaxkit.explain.fit_threshold(jnp.array([0.1, 0.2, 0.3, 0.4, 0.5]), fpr=0.2), 3)
      0.42
    """
    s = _score_vector(clean_scores, "clean_scores")
    if not 0 < float(fpr) < 1:
        raise ValueError(f"`fpr` must be in (0, 1), got {fpr}.")
    return float(np.quantile(s, 1.0 - float(fpr)))


def detect(scores, threshold: float):
    """``True`` where the score exceeds the threshold (flagged as attacked).

    NaN scores or threshold are errors (a NaN score would read as "clean").

    Args:
      scores: ``[N]`` scores.
      threshold: from :func:`fit_threshold`.

    Returns:
      ``[N]`` booleans.

    Raises:
      ValueError: NaN scores or threshold.

    References:
      the "Deep Learning in the Wild" quality-control case study (its saliency-entropy attack detector; window, bins and
      threshold rule are ours).

    Examples:
      >>> jaxkit.explain.detect(jnp.array([0.3, 0.9]), 0.45)
      Array([False,  True], dtype=bool)
    """
    scores = _c.array(scores, "scores", kind="r")
    _c.finite(scores, "scores")
    t = _c.number(threshold, "threshold")
    return jnp.asarray(scores) > t


def detection_report(clean_scores, attacked_scores, threshold: float | None = None, fpr: float = 0.05) -> dict:
    """ROC / AUC of attacked (positive) against clean (negative) scores, and the detection rates at ``threshold``.

    Args:
      clean_scores: ``[N]`` scores of clean inputs.
      attacked_scores: ``[M]`` scores of attacked inputs.
      threshold: the detection threshold (default: :func:`fit_threshold` of the clean scores at ``fpr``).
      fpr: the target false-positive rate of the default threshold.

    Returns:
      ``{"auc", "tpr", "fpr", "threshold", "roc"}``.

    Raises:
      ValueError: empty or non-finite scores, ``fpr`` outside ``(0, 1)``.

    References:
      the "Deep Learning in the Wild" quality-control case study (its saliency-entropy attack detector; window, bins and
      threshold rule are ours).

    Examples:
      >>> clean, attacked = jnp.array([0.1, 0.2, 0.3, 0.4, 0.5]), jnp.array([0.6, 0.7, 0.35])
      >>> report = jaxkit.explain.detection_report(clean, attacked, fpr=0.2)
      >>> round(report["auc"], 3), round(report["tpr"], 3), round(report["threshold"], 3)
      (0.867, 0.667, 0.42)
    """
    c = _score_vector(clean_scores, "clean_scores")
    a = _score_vector(attacked_scores, "attacked_scores")
    thr = fit_threshold(c, fpr) if threshold is None else _c.number(threshold, "threshold")
    s = np.concatenate([c, a])
    lab = np.concatenate([np.zeros(c.size, bool), np.ones(a.size, bool)])
    return {
        "auc": metrics.auc(s, lab),
        "tpr": float(np.mean(a > thr)),
        "fpr": float(np.mean(c > thr)),
        "threshold": thr,
        "roc": metrics.roc_curve(s, lab),
    }
