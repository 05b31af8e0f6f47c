"""Calibration: binned and kernel ECE estimators, reliability curves, temperature scaling.

Settings (what is calibrated), for probabilities ``probs [N, C]`` and labels ``[N]``:

* ``"confidence"`` -- the top score ``max_c s_c`` against "the prediction is right";
* ``"class"`` -- one class's score ``s_c`` against ``1{Y = c}`` (pass ``cls``);
* ``"classwise"`` -- the mean over classes of the class-specific errors;
* ``"output"`` -- all ``N C`` (sample, class) pairs pooled (Liu & JaJa's ECE).

Binned estimators (Posocco & Bonnefoy, ICANN 2021) share one formula,
``ECE = (1/N) sum_j |sum_i W_ij (y_i - s_i)|`` with ``W`` a row-stochastic
assignment of samples to ``B`` bins (``B = round(sqrt(N))`` by default):

* ``binning="uniform"`` (edges ``j/B``) or ``"adaptive"`` (equal-mass edges:
  midpoints between the order statistics, so each bin holds ``N/B`` samples);
* ``mapping="hard"`` (bin ``j`` holds ``t_j < s <= t_{j+1}``, the first bin also
  ``s = 0``, as Guo et al.) or ``"convex"`` (standard linear binning between
  neighbouring bin centres ``c_j = (t_j + t_{j+1})/2``: a score between ``c_j``
  and ``c_{j+1}`` gives weight ``1 - t`` to bin ``j`` and ``t`` to bin ``j+1``,
  ``t = (s - c_j)/(c_{j+1} - c_j)``; below the first / above the last centre all
  weight goes to the end bin. The paper's printed centre and weights are
  typos, and its code gives the farther centre more weight; we use the
  standard rule).

``ECE_l`` = uniform + hard (Guo et al.), ``ECE_a`` = adaptive + hard (ACE of
Nixon et al. in the class-wise setting), ``ECE_c`` = uniform + convex,
``ECE_ac`` = adaptive + convex. :func:`mce` takes the largest bin gap instead.

Kernel estimators work on a fine grid over [0, 1] with reflection at 0 and 1
(scores are linearly binned onto the grid first, so 10^6 scores cost one
pass plus a ``[G, G]`` matrix product; differentiable, usable as a loss):
:func:`ece_kde` is Posocco's ``ECE_d = int |pi f(s|Y=1) - s f(s)| ds`` with a
Gaussian kernel and Silverman's bandwidth ``h = 1.06 sigma n^(-1/5)`` (the
paper says "classical kernels": the Gaussian is our choice);
:func:`ece_kde_triweight` is the triweight-kernel estimator of Zhang et al.'s
Mix-n-Match that Liu & JaJa's "KDE" columns report. Same integral, other
kernel. :func:`local_calibration_error` gives ``LCE(s) = P(Y=1|s) - s`` and
:func:`reliability_curve` its bootstrap (vmapped) median and band.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit._checks import is_concrete

__all__ = [
    "SETTINGS",
    "ESTIMATORS",
    "scores_and_events",
    "bin_weights",
    "ece",
    "mce",
    "kde_density",
    "ece_kde",
    "ece_kde_triweight",
    "local_calibration_error",
    "reliability_curve",
    "reliability_diagram",
    "fit_temperature",
    "silverman_bandwidth",
]

SETTINGS = ("confidence", "class", "classwise", "output")
_TOL = 1e-3


def _check(probs, labels):
    p = jnp.asarray(_c.array(probs, "probs", kind="r"))
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"`probs` must be [N, C] class probabilities with C >= 2, got shape {p.shape}.")
    if p.shape[0] == 0:
        raise ValueError(f"`probs` is empty (shape {p.shape}); expected at least one row.")
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(jnp.float32)
    y = jnp.asarray(_c.array(labels, "labels", kind="r"))
    if y.shape != (p.shape[0],):
        raise ValueError(f"`labels` must have shape ({p.shape[0]},) (one class index per row of probs), got {y.shape}.")
    if is_concrete(p):
        pa = np.asarray(p, np.float64)
        if pa.min() < -_TOL or pa.max() > 1 + _TOL or np.isnan(pa).any():
            raise ValueError(f"`probs` must lie in [0, 1], got range [{pa.min():.4g}, {pa.max():.4g}].")
        dev = np.abs(pa.sum(1) - 1).max()
        if dev > _TOL:
            raise ValueError(f"`probs` rows must sum to 1 (tolerance {_TOL}); the worst row is off by {dev:.3g}.")
    if is_concrete(y):
        ya = np.asarray(y)
        if ya.size and (ya.min() < 0 or ya.max() >= p.shape[1] or not np.all(np.mod(ya, 1) == 0)):
            raise ValueError(
                f"`labels` must be class indices in [0, {p.shape[1]}), got range [{ya.min()}, {ya.max()}]."
            )
    return p, y.astype(jnp.int32)


def _bins(n_bins, n):
    b = int(round(math.sqrt(n))) if n_bins is None else int(n_bins)
    if b < 1:
        raise ValueError(f"`n_bins` must be >= 1, got {n_bins}.")
    return b


def scores_and_events(probs, labels, setting: str = "confidence", cls: int | None = None):
    """``(s, y)``: ``[K, N]`` scores and 0/1 events of each calibration problem in a setting.

    ``K = 1`` for confidence, class and output (``N C`` pairs) settings, ``C`` for classwise.
    """
    p, lab = _check(probs, labels)
    c = p.shape[1]
    onehot = jax.nn.one_hot(lab, c, dtype=p.dtype)
    if setting == "confidence":
        return jnp.max(p, 1)[None], (jnp.argmax(p, 1) == lab).astype(p.dtype)[None]
    if setting == "class":
        if cls is None or not 0 <= int(cls) < c:
            raise ValueError(f"setting 'class' needs `cls` in [0, {c}), got {cls}.")
        return p[:, int(cls)][None], onehot[:, int(cls)][None]
    if setting == "classwise":
        return p.T, onehot.T
    if setting == "output":
        return p.reshape(1, -1), onehot.reshape(1, -1)
    raise ValueError(f"`setting` must be one of {SETTINGS}, got {setting!r}.")


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
        srt = jnp.sort(s)
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
    """Row-stochastic ``[N, B]`` assignment of scores ``s [N]`` to bins (see the module docstring).

    Dense, for inspection; the estimators use the equivalent two-entries-per-row form.
    """
    s = _check_scores(s)
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
    b = _bins(n_bins, s.shape[1])
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
    """Binned expected calibration error (``B = round(sqrt(N))`` bins unless ``n_bins``); see the module docstring."""
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
    """Maximum calibration error: the largest ``|mean(y - s)|`` over non-empty bins (mean over classes for
    classwise)."""
    return _binned_estimate(probs, labels, setting, binning, mapping, n_bins, cls, "mce")


# ----------------------------------------------------------------------------- kernel estimators


def _check_scores(s, name="s"):
    """Scores ``[N]``: real, at least ``1`` of them, finite when concrete."""
    s = _c.array(s, name, ndim=1, kind="r", nonempty=True)
    _c.finite(s, name)
    s = jnp.asarray(s)
    return s if jnp.issubdtype(s.dtype, jnp.floating) else s.astype(jnp.float32)


def silverman_bandwidth(s) -> jax.Array:
    """``1.06 * std(s) * n^(-1/5)`` (sample std) of scores ``[N]``, ``N >= 2``."""
    s = _check_scores(s)
    if s.shape[0] < 2:
        raise ValueError(f"`s` needs at least 2 scores for a sample standard deviation, got {s.shape[0]}.")
    return 1.06 * jnp.std(s, ddof=1) * s.shape[0] ** (-0.2)


def _bandwidth(s, grid_size):
    """The estimators' default bandwidth: Silverman's rule, floored at two grid steps. Below that the grid cannot
    resolve the kernel, and scores that do not vary (one-hot or constant predictions, a class always at 0) would
    give ``h = 0``: NaN, or absurd values from a rounding-level spread. At the floor such scores give the binned
    ECE's value up to O(h) (tested)."""
    return jnp.maximum(silverman_bandwidth(s), 2.0 / (grid_size - 1))


def _kernel(u, kind):
    if kind == "gaussian":
        return jnp.exp(-0.5 * u**2) / math.sqrt(2 * math.pi)
    if kind == "triweight":
        return jnp.where(jnp.abs(u) < 1, (35.0 / 32.0) * (1 - u**2) ** 3, 0.0)
    raise ValueError(f"`kernel` must be 'gaussian' or 'triweight', got {kind!r}.")


def _linear_bin(s, w, grid_size):
    """Linear binning of weighted points in [0, 1] onto ``grid_size`` equally spaced nodes."""
    pos = jnp.clip(s, 0.0, 1.0) * (grid_size - 1)
    lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, grid_size - 2)
    t = pos - lo
    out = jnp.zeros((grid_size,), w.dtype)
    return out.at[lo].add(w * (1 - t)).at[lo + 1].add(w * t)


def kde_density(
    s, weights=None, *, bandwidth=None, grid_size: int = 1025, kernel: str = "gaussian", reflect: bool = True
) -> tuple[jax.Array, jax.Array]:
    """``(grid, f)``: kernel density of scores in [0, 1] on a grid, ``f(g) = 1/(n h) sum_i w_i K((g - s_i)/h)``.

    Reflection at 0 and 1 adds the mirrored points ``-s_i`` and ``2 - s_i``.
    ``weights`` default to 1 (a density); with 0/1 weights the result is
    ``pi f(s | Y = 1)``. Bandwidth: Silverman's rule on ``s``.
    """
    s = _check_scores(s)
    w = jnp.ones_like(s) if weights is None else jnp.asarray(weights, s.dtype)
    h = _bandwidth(s, int(grid_size)) if bandwidth is None else jnp.asarray(bandwidth, s.dtype)
    return _kde_grid(s, w, h, int(grid_size), kernel, bool(reflect))


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _kde_grid(s, w, h, grid_size, kernel, reflect):
    grid = jnp.linspace(0.0, 1.0, grid_size, dtype=s.dtype)
    c = _linear_bin(s, w, grid_size)
    d = grid[:, None] - grid[None, :]
    k = _kernel(d / h, kernel)
    if reflect:
        k = (
            k
            + _kernel((grid[:, None] + grid[None, :]) / h, kernel)
            + _kernel((grid[:, None] + grid[None, :] - 2.0) / h, kernel)
        )
    return grid, (k @ c) / (s.shape[0] * h)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _ece_kde(s, y, grid_size, kernel):
    def one(si, yi):
        h = _bandwidth(si, grid_size)
        grid, f = _kde_grid(si, jnp.ones_like(si), h, grid_size, kernel, True)
        _, f1 = _kde_grid(si, yi, h, grid_size, kernel, True)  # pi f(s | Y=1)
        return jnp.trapezoid(jnp.abs(f1 - grid * f), grid)

    return jnp.mean(jax.vmap(one)(s, y))


def ece_kde(
    probs,
    labels,
    setting: str = "confidence",
    *,
    grid_size: int = 1025,
    kernel: str = "gaussian",
    cls: int | None = None,
) -> jax.Array:
    """Posocco & Bonnefoy's ``ECE_d = int |pi f(s|Y=1) - s f(s)| ds`` (Gaussian kernel, Silverman, reflection).

    Differentiable in ``probs``; mean over classes for ``"classwise"``. The bandwidth is Silverman's, floored at
    two grid steps (our choice), so scores that do not vary give a finite estimate close to the binned ECE.
    """
    _kernel(jnp.zeros(()), kernel)
    s, y = scores_and_events(probs, labels, setting, cls)
    return _ece_kde(s, y, int(grid_size), kernel)


def ece_kde_triweight(
    probs, labels, setting: str = "confidence", *, grid_size: int = 1025, cls: int | None = None
) -> jax.Array:
    """The triweight-kernel KDE-ECE (Zhang et al.'s Mix-n-Match; Liu & JaJa's "KDE" columns)."""
    return ece_kde(probs, labels, setting, grid_size=grid_size, kernel="triweight", cls=cls)


#: Every ECE estimator by its name in the papers: ``ESTIMATORS[name](probs, labels, setting, **options)``
#: (``n_bins`` for the binned ones, ``grid_size`` for the kernel ones). Binned (Posocco & Bonnefoy): ``ECE_l``
#: uniform + hard (Guo et al.), ``ECE_a`` adaptive + hard (ACE), ``ECE_c`` uniform + convex, ``ECE_ac`` adaptive +
#: convex; kernel: ``ECE_d`` (Gaussian, Silverman) and ``KDE-ECE`` (triweight, Mix-n-Match).
ESTIMATORS = {
    "ECE_l": functools.partial(ece, binning="uniform", mapping="hard"),
    "ECE_a": functools.partial(ece, binning="adaptive", mapping="hard"),
    "ECE_c": functools.partial(ece, binning="uniform", mapping="convex"),
    "ECE_ac": functools.partial(ece, binning="adaptive", mapping="convex"),
    "ECE_d": functools.partial(ece_kde, kernel="gaussian"),
    "KDE-ECE": ece_kde_triweight,
}


def local_calibration_error(
    probs,
    labels,
    setting: str = "confidence",
    *,
    grid_size: int = 1025,
    kernel: str = "gaussian",
    bandwidth=None,
    cls: int | None = None,
):
    """``(grid, LCE, density)``: ``LCE(s) = P(Y=1 | s) - s`` by Bayes with two KDEs (NaN where ``f(s) ~ 0``).

    ``bandwidth`` defaults to Silverman's rule on the scores. Not defined for
    ``"classwise"`` (one curve per class: use ``"class"``).
    """
    if setting == "classwise":
        raise ValueError("`setting` 'classwise' has one curve per class: call with setting='class', cls=c.")
    s, y = scores_and_events(probs, labels, setting, cls)
    h = _bandwidth(s[0], int(grid_size)) if bandwidth is None else jnp.asarray(bandwidth, s.dtype)
    return _lce(s[0], y[0], h, int(grid_size), kernel)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _lce(s, y, h, grid_size, kernel):
    grid, f = _kde_grid(s, jnp.ones_like(s), h, grid_size, kernel, True)
    _, f1 = _kde_grid(s, y, h, grid_size, kernel, True)
    ok = f > 1e-6 * jnp.max(f)
    return grid, jnp.where(ok, f1 / jnp.where(ok, f, 1.0) - grid, jnp.nan), f


def reliability_curve(
    key: jax.Array,
    probs,
    labels,
    setting: str = "confidence",
    *,
    num_bootstrap: int = 200,
    grid_size: int = 257,
    kernel: str = "gaussian",
    band: float = 0.9,
    bandwidth: str | float = "full",
    cls: int | None = None,
):
    """``(grid, median, lo, hi)`` of ``rel(s) = LCE(s) + s`` over ``num_bootstrap`` resamples (one vmapped program).

    ``lo`` / ``hi`` are the ``(1 - band)/2`` and ``(1 + band)/2`` percentiles.
    ``bandwidth``: ``"full"`` (Silverman's rule on the whole sample, kept
    for every resample: the band then shows the estimator's variance at that
    smoothing, and all resamples share one kernel matrix), ``"resample"``
    (re-estimated on each resample), or a number.
    """
    if setting == "classwise":
        raise ValueError("`setting` 'classwise' has one curve per class: call with setting='class', cls=c.")
    if not 0 < float(band) < 1:
        raise ValueError(f"`band` must lie in (0, 1), got {band}.")
    s, y = scores_and_events(probs, labels, setting, cls)
    s, y = s[0], y[0]
    if bandwidth == "full":
        h = _bandwidth(s, int(grid_size))
    elif bandwidth == "resample":
        h = None
    elif isinstance(bandwidth, str):
        raise ValueError(f"`bandwidth` must be 'full', 'resample' or a number, got {bandwidth!r}.")
    else:
        h = jnp.asarray(bandwidth, s.dtype)
    if h is None:
        return _bootstrap_resample_h(key, s, y, int(num_bootstrap), int(grid_size), kernel, float(band))
    return _bootstrap(key, s, y, h, int(num_bootstrap), int(grid_size), kernel, float(band))


def _bitonic_sort(x):
    """Ascending sort along the last axis (length a power of two) by a bitonic network of min/max stages.

    Pure elementwise work that XLA fuses: for the few hundred bootstrap
    replicates per grid point it is several times faster on CPU than
    ``jnp.sort``'s comparator sort.
    """
    n = x.shape[-1]
    lead = x.shape[:-1]
    k = 2
    while k <= n:
        j = k // 2
        while j >= 1:
            y = x.reshape(lead + (n // (2 * j), 2, j))
            lo, hi = y[..., 0, :], y[..., 1, :]
            block = jnp.arange(n // (2 * j)) * 2 * j
            asc = ((block & k) == 0)[:, None]
            mn, mx = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
            x = jnp.stack([jnp.where(asc, mn, mx), jnp.where(asc, mx, mn)], axis=-2).reshape(lead + (n,))
            j //= 2
        k *= 2
    return x


def _quantiles(grid, rel, band):
    """NaN-ignoring linear-interpolation quantiles (NumPy's default) of ``rel [B, G]`` over the replicates."""
    b = rel.shape[0]
    n = 1 << max(1, (b - 1).bit_length())
    x = jnp.where(jnp.isnan(rel), jnp.inf, rel).T  # [G, B], NaN last
    x = _bitonic_sort(jnp.concatenate([x, jnp.full((x.shape[0], n - b), jnp.inf, x.dtype)], axis=1))
    v = jnp.sum(~jnp.isnan(rel), axis=0)  # valid replicates per grid point
    out = []
    for q in (0.5, (1 - band) / 2, (1 + band) / 2):
        pos = q * jnp.maximum(v - 1, 0).astype(x.dtype)
        lo = jnp.floor(pos).astype(jnp.int32)
        hi = jnp.minimum(lo + 1, jnp.maximum(v - 1, 0))
        t = pos - lo
        a = jnp.take_along_axis(x, lo[:, None], 1)[:, 0]
        c = jnp.take_along_axis(x, hi[:, None], 1)[:, 0]
        out.append(jnp.where(v > 0, a + t * (c - a), jnp.nan))
    return grid, out[0], out[1], out[2]


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7))
def _bootstrap(key, s, y, h, num, grid_size, kernel, band):
    n = s.shape[0]
    grid = jnp.linspace(0.0, 1.0, grid_size, dtype=s.dtype)
    kmat = (
        _kernel((grid[:, None] - grid[None, :]) / h, kernel)
        + _kernel((grid[:, None] + grid[None, :]) / h, kernel)
        + _kernel((grid[:, None] + grid[None, :] - 2.0) / h, kernel)
    )

    def counts(k):  # linear-binned counts of one resample: all samples, and those with Y = 1
        idx = jax.random.randint(k, (n,), 0, n)
        return jnp.stack(
            [_linear_bin(s[idx], jnp.ones((n,), s.dtype), grid_size), _linear_bin(s[idx], y[idx], grid_size)]
        )

    c = jax.vmap(counts)(jax.random.split(key, num))  # [B, 2, G]
    dens = jnp.einsum("gh,bkh->bkg", kmat, c) / (n * h)
    f, f1 = dens[:, 0], dens[:, 1]
    ok = f > 1e-6 * jnp.max(f, axis=1, keepdims=True)
    return _quantiles(grid, jnp.where(ok, f1 / jnp.where(ok, f, 1.0), jnp.nan), band)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _bootstrap_resample_h(key, s, y, num, grid_size, kernel, band):
    n = s.shape[0]

    def one(k):
        idx = jax.random.randint(k, (n,), 0, n)
        grid, lce, _ = _lce(s[idx], y[idx], _bandwidth(s[idx], grid_size), grid_size, kernel)
        return lce + grid

    grid = jnp.linspace(0.0, 1.0, grid_size, dtype=s.dtype)
    return _quantiles(grid, jax.vmap(one)(jax.random.split(key, num)), band)


def reliability_diagram(
    probs, labels, setting: str = "confidence", *, n_bins: int = 15, binning: str = "uniform", cls: int | None = None
) -> dict:
    """Per bin (hard mapping): ``count``, ``confidence`` (mean score), ``accuracy`` (mean event), ``edges``.

    ``"output"`` pools all (sample, class) pairs; ``"classwise"`` is refused (one diagram per class).
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


# ----------------------------------------------------------------------------- temperature scaling


@jax.jit
def _fit_temperature(logits, labels):
    def dnll(log_beta):  # derivative of the NLL in beta = 1/T; NLL is convex in beta, so its sign brackets
        return jax.grad(lambda b: -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits * b), labels[:, None], 1)))(
            jnp.exp(log_beta)
        )

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        up = dnll(mid) < 0  # NLL still falling: the optimum lies at a larger beta
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 60, body, (jnp.float32(math.log(1e-3)), jnp.float32(math.log(1e3))))
    # inside a trace a NaN logit would leave the bisection at its upper end (T ~ 1000): NaN instead
    return jnp.where(jnp.isnan(logits).any(), jnp.nan, 1.0 / jnp.exp(0.5 * (lo + hi)))


def fit_temperature(logits, labels) -> jax.Array:
    """Temperature ``T`` minimising the NLL of ``softmax(logits / T)`` (Guo et al.), ``T in [1e-3, 1e3]``, jitted.

    The NLL is convex in ``1/T``: 60 bisection steps on the sign of its
    derivative (in log space) give ``T`` to float precision.
    """
    z = _c.array(logits, "logits", ndim=2, kind="r", nonempty=True)
    if z.shape[1] < 2:
        raise ValueError(f"`logits` must be [N, C] with C >= 2 classes, got shape {z.shape}.")
    _c.finite(z, "logits")
    z = jnp.asarray(z, jnp.float32)
    y = jnp.asarray(_c.array(labels, "labels", kind="i"))
    if y.shape != (z.shape[0],):
        raise ValueError(f"`labels` must have shape ({z.shape[0]},), got {y.shape}.")
    if is_concrete(y) and y.size and (np.asarray(y).min() < 0 or np.asarray(y).max() >= z.shape[1]):
        raise ValueError(f"`labels` must be class indices in [0, {z.shape[1]}).")
    return _fit_temperature(z, y.astype(jnp.int32))
