"""Binned ECE estimators (Posocco & Bonnefoy, ICANN 2021): ``ECE = (1/N) sum_j |sum_i W_ij (y_i - s_i)|`` with
``W`` a row-stochastic assignment of samples to ``B`` bins (uniform or adaptive edges, hard or convex mapping),
the maximum calibration error, and the reliability diagram.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxkit import _sort
from jaxkit.calibration.settings import bin_count, check_unit_scores, scores_and_events

__all__ = ["bin_weights", "ece", "mce", "reliability_diagram"]


def _check_bin_count(b, n):
    if b > n:
        raise ValueError(f"`n_bins` ({b}) must not exceed the number of samples ({n}).")


def _check_names(binning, mapping):
    if binning not in ("uniform", "adaptive"):
        raise ValueError(f"`binning` must be 'uniform' or 'adaptive', got {binning!r}.")
    if mapping not in ("hard", "convex"):
        raise ValueError(f"`mapping` must be 'hard' or 'convex', got {mapping!r}.")


def _edges(s, n_bins, binning):
    if binning == "uniform":
        return jnp.linspace(0.0, 1.0, n_bins + 1, dtype=s.dtype)
    if binning == "adaptive":
        n = s.shape[0]
        srt = _sort.sort(s)  # NumPy's sort on CPU (7x XLA's comparator sort at 10^6 scores)
        k = (jnp.arange(1, n_bins) * n) // n_bins  # bin j ends after k_j samples
        inner = 0.5 * (srt[k - 1] + srt[k])
        return jnp.concatenate([jnp.zeros((1,), s.dtype), inner, jnp.ones((1,), s.dtype)])
    raise ValueError(f"`binning` must be 'uniform' or 'adaptive', got {binning!r}.")


def _sparse_bins(s, n_bins, binning, mapping):
    """``(idx [N, 2], w [N, 2])``: each score's (at most two) bins and weights; rows of ``w`` sum to 1."""
    edges = _edges(s, n_bins, binning)
    if mapping == "hard":
        idx = jnp.clip(jnp.searchsorted(edges[1:-1], s, side="left"), 0, n_bins - 1)
        return jnp.stack([idx, idx], 1), jnp.stack([jnp.ones_like(s), jnp.zeros_like(s)], 1)
    if mapping == "convex":
        if n_bins == 1:
            z = jnp.zeros(s.shape, jnp.int32)
            return jnp.stack([z, z], 1), jnp.stack([jnp.ones_like(s), jnp.zeros_like(s)], 1)
        centres = 0.5 * (edges[:-1] + edges[1:])
        j = jnp.clip(jnp.searchsorted(centres, s, side="right") - 1, 0, n_bins - 2)  # bracket [c_j, c_{j+1}]
        gap = centres[j + 1] - centres[j]
        t = jnp.clip((s - centres[j]) / jnp.where(gap > 0, gap, 1.0), 0.0, 1.0)
        return jnp.stack([j, j + 1], 1), jnp.stack([1 - t, t], 1)
    raise ValueError(f"`mapping` must be 'hard' or 'convex', got {mapping!r}.")


def bin_weights(s, n_bins: int, binning: str = "uniform", mapping: str = "hard") -> jax.Array:
    """Row-stochastic ``[N, B]`` assignment ``W`` of scores ``s [N]`` to ``B`` bins (see the module docstring).

    ``W_ij`` is 1 for the bin holding ``s_i`` (``mapping="hard"``) or the linear-binning weights of the two
    nearest bin centres (``"convex"``); edges ``j / B`` (``"uniform"``) or equal-mass (``"adaptive"``). Dense,
    for inspection; the estimators use the equivalent two-entries-per-row form.

    Args:
      s: ``[N]`` scores in ``[0, 1]``.
      n_bins: ``B`` (>= 1; at most ``N`` for adaptive edges).
      binning: ``"uniform"`` or ``"adaptive"``.
      mapping: ``"hard"`` or ``"convex"``.

    Returns:
      ``[N, B]`` float array, rows summing to 1.

    Raises:
      ValueError: scores outside ``[0, 1]`` or not 1-D, ``n_bins`` out of range, an unknown ``binning`` /
        ``mapping``.

    References:
      Posocco & Bonnefoy, "Estimating Expected Calibration Errors", ICANN 2021, Sec. 3 (the binning schemes and
      mappings; the convex weights follow the standard linear-binning
      rule, see the module docstring).

    Examples:
      >>> w = jaxkit.calibration.bin_weights(jnp.array([0.1, 0.45, 0.9]), 2, mapping="convex")
      >>> print(np.asarray(w, float).round(2))
      [[1.  0. ]
       [0.6 0.4]
       [0.  1. ]]
    """
    s = check_unit_scores(s)
    _check_names(binning, mapping)
    if int(n_bins) < 1:
        raise ValueError(f"`n_bins` must be >= 1, got {n_bins}.")
    if binning == "adaptive":  # equal-mass edges need a sample per bin; uniform edges do not depend on N
        _check_bin_count(int(n_bins), s.shape[0])
    idx, w = _sparse_bins(s, int(n_bins), binning, mapping)
    return jnp.sum(jax.nn.one_hot(idx, int(n_bins), dtype=s.dtype) * w[..., None], 1)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _binned(s, y, n_bins, binning, mapping, reduce):
    def one(si, yi):
        idx, w = _sparse_bins(si, n_bins, binning, mapping)
        gap = jax.ops.segment_sum((w * (yi - si)[:, None]).ravel(), idx.ravel(), num_segments=n_bins)
        if reduce == "ece":
            return jnp.sum(jnp.abs(gap)) / si.shape[0]
        mass = jax.ops.segment_sum(w.ravel(), idx.ravel(), num_segments=n_bins)
        return jnp.max(jnp.where(mass > 0, jnp.abs(gap) / jnp.where(mass > 0, mass, 1.0), 0.0))

    return jnp.mean(jax.vmap(one)(s, y))


def _binned_estimate(probs, labels, setting, binning, mapping, n_bins, cls, reduce):
    s, y = scores_and_events(probs, labels, setting, cls)
    b = bin_count(n_bins, s.shape[1])
    _check_bin_count(b, s.shape[1])
    _check_names(binning, mapping)
    return _binned(s, y, b, binning, mapping, reduce)


def ece(
    probs,
    labels,
    setting: str = "confidence",
    *,
    binning: str = "uniform",
    mapping: str = "hard",
    n_bins: int | None = None,
    cls: int | None = None,
) -> jax.Array:
    """Binned expected calibration error, ``ECE = (1/N) sum_j |sum_i W_ij (y_i - s_i)|``.

    ``W`` from :func:`bin_weights`; ``B = round(sqrt(N))`` bins unless ``n_bins``. ECE_l = uniform + hard (Guo
    et al.), ECE_a = adaptive + hard, ECE_c = uniform + convex, ECE_ac = adaptive + convex; the mean over
    classes in the ``"classwise"`` setting. Jittable (with static options).

    Args:
      probs: ``[N, C]`` predicted probabilities (rows summing to 1), or ``[N]`` scores of the positive class.
      labels: ``[N]`` integer class labels in ``0..C-1``.
      setting: ``"confidence"``, ``"class"`` (with ``cls``), ``"classwise"`` or ``"output"`` (module docstring).
      binning: ``"uniform"`` or ``"adaptive"`` edges.
      mapping: ``"hard"`` or ``"convex"``.
      n_bins: the number of bins (default ``round(sqrt(N))``).
      cls: the class of the ``"class"`` setting.

    Returns:
      A scalar array.

    Raises:
      ValueError: ``probs`` not in [0, 1] or not ``[N]`` / ``[N, C]``, labels out of range or of another length,
        an unknown setting / option, ``cls`` missing for ``"class"`` (the message names the argument).

    References:
      Posocco & Bonnefoy, "Estimating Expected Calibration Errors", ICANN 2021, Sec. 3 (the four binned estimators); Guo
      et al., "On Calibration of Modern Neural Networks", ICML
      2017, Eq. (3); Nixon et al., "Measuring Calibration in Deep Learning", CVPR Workshops 2019 (adaptive bins).

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> s = rng.random(20_000)
      >>> y = (rng.random(20_000) < s**2).astype(int)  # P(Y = 1 | s) = s^2: the true ECE is 1/6
      >>> probs = np.stack([1 - s, s], axis=1)
      >>> round(float(jaxkit.calibration.ece(probs, y, "class", cls=1)), 2)
      0.17
    """
    return _binned_estimate(probs, labels, setting, binning, mapping, n_bins, cls, "ece")


def mce(
    probs,
    labels,
    setting: str = "confidence",
    *,
    binning: str = "uniform",
    mapping: str = "hard",
    n_bins: int | None = None,
    cls: int | None = None,
) -> jax.Array:
    """Maximum calibration error: the largest ``|mean(y - s)|`` over the non-empty bins.

    ``MCE = max_j |sum_i W_ij (y_i - s_i)| / sum_i W_ij`` (mean over classes for ``"classwise"``).

    Args:
      probs: ``[N, C]`` predicted probabilities (rows summing to 1), or ``[N]`` scores of the positive class.
      labels: ``[N]`` integer class labels in ``0..C-1``.
      setting: ``"confidence"``, ``"class"`` (with ``cls``), ``"classwise"`` or ``"output"`` (module docstring).
      binning: ``"uniform"`` or ``"adaptive"`` edges.
      mapping: ``"hard"`` or ``"convex"``.
      n_bins: the number of bins (default ``round(sqrt(N))``).
      cls: the class of the ``"class"`` setting.

    Returns:
      A scalar array.

    Raises:
      ValueError: ``probs`` not in [0, 1] or not ``[N]`` / ``[N, C]``, labels out of range or of another length,
        an unknown setting / option, ``cls`` missing for ``"class"`` (the message names the argument).

    References:
      Naeini, Cooper & Hauskrecht, "Obtaining Well Calibrated Probabilities Using Bayesian Binning", AAAI
      2015 (MCE); Guo et al., ICML 2017, Sec. 2.

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> s = rng.random(20_000)
      >>> y = (rng.random(20_000) < s**2).astype(int)  # P(Y = 1 | s) = s^2: the true ECE is 1/6
      >>> probs = np.stack([1 - s, s], axis=1)
      >>> bool(jaxkit.calibration.mce(probs, y, "class", cls=1) > jaxkit.calibration.ece(probs, y, "class", cls=1))
      True
    """
    return _binned_estimate(probs, labels, setting, binning, mapping, n_bins, cls, "mce")


def reliability_diagram(
    probs, labels, setting: str = "confidence", *, n_bins: int = 15, binning: str = "uniform", cls: int | None = None
) -> dict:
    """A reliability diagram's bars: per bin (hard mapping) the count, mean score and mean event.

    ``"output"`` pools all (sample, class) pairs; ``"classwise"`` is refused (one diagram per class).

    Args:
      probs: ``[N, C]`` predicted probabilities (rows summing to 1), or ``[N]`` scores of the positive class.
      labels: ``[N]`` integer class labels in ``0..C-1``.
      setting: ``"confidence"``, ``"class"`` (with ``cls``), ``"classwise"`` or ``"output"`` (module docstring).
      n_bins: the number of bins.
      binning: ``"uniform"`` or ``"adaptive"`` edges.
      cls: the class of the ``"class"`` setting.

    Returns:
      ``{"count", "confidence", "accuracy", "edges"}``: ``[B]`` arrays (NaN for an empty bin's means) and the
      ``[B + 1]`` edges.

    Raises:
      ValueError: ``probs`` not in [0, 1] or not ``[N]`` / ``[N, C]``, labels out of range or of another length,
        an unknown setting / option, ``cls`` missing for ``"class"`` (the message names the argument).
      ValueError: ``setting="classwise"``.

    References:
      Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, Sec. 2 and Fig. 1; DeGroot &
      Fienberg, "The Comparison and Evaluation of Forecasters", The Statistician 32, 1983.

    Examples:
      >>> probs = jnp.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
      >>> d = jaxkit.calibration.reliability_diagram(probs, jnp.array([0, 1, 1, 0]), n_bins=2)
      >>> print(d["count"], d["confidence"], d["accuracy"])
      [0. 4.] [ nan 0.75] [ nan 0.75]
    """
    if setting == "classwise":
        raise ValueError("`setting` 'classwise' has one diagram per class: call with setting='class', cls=c.")
    s, y = scores_and_events(probs, labels, setting, cls)
    _check_bin_count(int(n_bins), s.shape[1])
    s, y = s[0], y[0]
    b = int(n_bins)
    idx = _sparse_bins(s, b, binning, "hard")[0][:, 0]
    count = jax.ops.segment_sum(jnp.ones_like(s), idx, num_segments=b)
    safe = jnp.where(count > 0, count, 1.0)
    conf = jax.ops.segment_sum(s, idx, num_segments=b) / safe
    acc = jax.ops.segment_sum(y, idx, num_segments=b) / safe
    return {
        "count": count,
        "confidence": jnp.where(count > 0, conf, jnp.nan),
        "accuracy": jnp.where(count > 0, acc, jnp.nan),
        "edges": _edges(s, b, binning),
    }
