"""Kernel calibration estimators on a fine grid over [0, 1] with reflection at 0 and 1: ``ECE_d`` (Gaussian,
Silverman), the triweight KDE-ECE, the local calibration error and its bootstrap reliability curve.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit.calibration.settings import check_scores, check_unit_scores, scores_and_events

__all__ = [
    "ece_kde",
    "ece_kde_triweight",
    "kde_density",
    "local_calibration_error",
    "reliability_curve",
    "silverman_bandwidth",
]


def silverman_bandwidth(s) -> jax.Array:
    """Silverman's rule-of-thumb bandwidth, ``h = 1.06 * std(s) * n^(-1/5)`` (sample std).

    Args:
      s: ``[N]`` scores, ``N >= 2``.

    Returns:
      A scalar array.

    Raises:
      ValueError: fewer than two scores, or NaN (when concrete).

    References:
      Silverman, *Density Estimation for Statistics and Data Analysis*, Chapman & Hall 1986, Sec. 3.4.2.

    Examples:
      >>> round(float(jaxkit.calibration.silverman_bandwidth(jnp.array([0.1, 0.2, 0.3, 0.4]))), 4)
      0.1037
    """
    s = check_scores(s)
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
    """Kernel density of scores in ``[0, 1]`` on a grid, ``f(g) = 1/(n h) sum_i w_i K((g - s_i)/h)``.

    Reflection at 0 and 1 adds the mirrored points ``-s_i`` and ``2 - s_i``. With 0/1 weights the result is
    ``pi f(s | Y = 1)``. Scores are linearly binned onto the grid first (one pass, then a ``[G, G]`` product).

    Args:
      s: ``[N]`` scores in ``[0, 1]``.
      weights: ``[N]`` non-negative weights (default 1: a density).
      bandwidth: ``h`` (default: :func:`silverman_bandwidth` of ``s``).
      grid_size: grid points ``G`` over ``[0, 1]``.
      kernel: ``"gaussian"`` or ``"triweight"``.
      reflect: mirror at 0 and 1 (boundary correction).

    Returns:
      ``(grid [G], f [G])``.

    Raises:
      ValueError: scores outside ``[0, 1]``, weights of another length or negative, a bad ``bandwidth`` /
        ``grid_size`` / ``kernel``.

    References:
      Silverman 1986, Sec. 2.10 (reflection) and 3.4.2 (bandwidth); Posocco & Bonnefoy, ICANN 2021 (the
      densities of ECE_d).

    Examples:
      >>> grid, f = jaxkit.calibration.kde_density(jnp.array([0.2, 0.4, 0.6]), grid_size=5)
      >>> print(grid, np.asarray(f, float).round(1))
      [0.   0.25 0.5  0.75 1.  ] [1.1 1.1 1.  0.9 0.8]
    """
    s = check_unit_scores(s)
    if weights is None:
        w = jnp.ones_like(s)
    else:
        w = jnp.asarray(_c.array(weights, "weights", kind="r"), s.dtype)
        if w.shape != s.shape:
            raise ValueError(f"`weights` must have the shape of `s` {s.shape}, got {w.shape}.")
        if _c.is_concrete(w) and not np.all(np.asarray(w) >= 0):
            raise ValueError("`weights` must be >= 0 (0/1 events, or a density's weights).")
    if bandwidth is not None and _c.is_concrete(bandwidth) and not float(bandwidth) > 0:
        raise ValueError(f"`bandwidth` must be > 0, got {bandwidth}.")
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
    """Posocco & Bonnefoy's kernel estimator ``ECE_d = int |pi f(s|Y=1) - s f(s)| ds``.

    Gaussian kernel, Silverman's bandwidth (floored at two grid steps, our choice: scores that do not vary give
    a finite estimate close to the binned ECE), reflection at 0 and 1. Differentiable in ``probs`` (usable as a
    loss); the mean over classes for ``"classwise"``.

    Args:
      probs: ``[N, C]`` predicted probabilities (rows summing to 1), or ``[N]`` scores of the positive class.
      labels: ``[N]`` integer class labels in ``0..C-1``.
      setting: ``"confidence"``, ``"class"`` (with ``cls``), ``"classwise"`` or ``"output"`` (module docstring).
      grid_size: grid points of the integral over ``[0, 1]``.
      kernel: ``"gaussian"`` or ``"triweight"``.
      cls: the class of the ``"class"`` setting.

    Returns:
      A scalar array.

    Raises:
      ValueError: ``probs`` not in [0, 1] or not ``[N]`` / ``[N, C]``, labels out of range or of another length,
        an unknown setting / option, ``cls`` missing for ``"class"`` (the message names the argument).

    References:
      Posocco & Bonnefoy, "Estimating Expected Calibration Errors", ICANN 2021, Sec. 3, ECE_d (the paper says "classical
      kernels"; the Gaussian is our choice).

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> s = rng.random(20_000)
      >>> y = (rng.random(20_000) < s**2).astype(int)  # P(Y = 1 | s) = s^2: the true ECE is 1/6
      >>> probs = np.stack([1 - s, s], axis=1)
      >>> round(float(jaxkit.calibration.ece_kde(probs, y, "class", cls=1)), 2)
      0.17
    """
    _kernel(jnp.zeros(()), kernel)
    s, y = scores_and_events(probs, labels, setting, cls)
    return _ece_kde(s, y, int(grid_size), kernel)


def ece_kde_triweight(
    probs, labels, setting: str = "confidence", *, grid_size: int = 1025, cls: int | None = None
) -> jax.Array:
    """The triweight-kernel KDE-ECE of Zhang et al.'s Mix-n-Match: :func:`ece_kde` with the triweight kernel.

    ``K(u) = 35/32 (1 - u^2)^3`` on ``|u| <= 1``; the same integral and bandwidth rule as :func:`ece_kde`.

    Args:
      probs: ``[N, C]`` predicted probabilities (rows summing to 1), or ``[N]`` scores of the positive class.
      labels: ``[N]`` integer class labels in ``0..C-1``.
      setting: ``"confidence"``, ``"class"`` (with ``cls``), ``"classwise"`` or ``"output"`` (module docstring).
      grid_size: grid points of the integral over ``[0, 1]``.
      cls: the class of the ``"class"`` setting.

    Returns:
      A scalar array.

    Raises:
      ValueError: ``probs`` not in [0, 1] or not ``[N]`` / ``[N, C]``, labels out of range or of another length,
        an unknown setting / option, ``cls`` missing for ``"class"`` (the message names the argument).

    References:
      Zhang, Kailkhura & Han, "Mix-n-Match: Ensemble and Compositional Methods for Uncertainty Calibration in
      Deep Learning", ICML 2020 (KDE-ECE); Liu & JaJa, "Class-similarity based label smoothing for confidence
      calibration", ICANN 2021 (its "KDE" columns).

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> s = rng.random(20_000)
      >>> y = (rng.random(20_000) < s**2).astype(int)  # P(Y = 1 | s) = s^2: the true ECE is 1/6
      >>> probs = np.stack([1 - s, s], axis=1)
      >>> round(float(jaxkit.calibration.ece_kde_triweight(probs, y, "class", cls=1)), 2)
      0.17
    """
    return ece_kde(probs, labels, setting, grid_size=grid_size, kernel="triweight", cls=cls)


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
    """The local calibration error ``LCE(s) = P(Y=1 | s) - s`` on a grid, by Bayes with two KDEs.

    ``P(Y=1 | s) = pi f(s | Y=1) / f(s)`` (:func:`kde_density`); NaN where ``f(s) ~ 0``. Not defined for
    ``"classwise"`` (one curve per class: use ``"class"``).

    Args:
      probs: ``[N, C]`` predicted probabilities (rows summing to 1), or ``[N]`` scores of the positive class.
      labels: ``[N]`` integer class labels in ``0..C-1``.
      setting: ``"confidence"``, ``"class"`` (with ``cls``), ``"classwise"`` or ``"output"`` (module docstring).
      grid_size: grid points over ``[0, 1]``.
      kernel: ``"gaussian"`` or ``"triweight"``.
      bandwidth: ``h`` (default: Silverman's rule on the scores).
      cls: the class of the ``"class"`` setting.

    Returns:
      ``(grid [G], lce [G], density [G])``.

    Raises:
      ValueError: ``probs`` not in [0, 1] or not ``[N]`` / ``[N, C]``, labels out of range or of another length,
        an unknown setting / option, ``cls`` missing for ``"class"`` (the message names the argument).

    References:
      Posocco & Bonnefoy, "Estimating Expected Calibration Errors", ICANN 2021, Sec. 3 (the local calibration error
      behind ECE_d).

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> s = rng.random(20_000)
      >>> y = (rng.random(20_000) < s**2).astype(int)  # P(Y = 1 | s) = s^2: the true ECE is 1/6
      >>> probs = np.stack([1 - s, s], axis=1)
      >>> grid, lce, f = jaxkit.calibration.local_calibration_error(probs, y, "class", cls=1)
      >>> float(grid[512]), round(float(lce[512]), 2)  # s^2 - s = -0.25 at s = 0.5
      (0.5, -0.24)
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
    """A smooth reliability curve with a bootstrap band: ``rel(s) = LCE(s) + s`` over resamples.

    ``(grid, median, lo, hi)`` over ``num_bootstrap`` resamples in one vmapped program; ``lo`` / ``hi`` are the
    ``(1 - band)/2`` and ``(1 + band)/2`` percentiles.

    Args:
      key: the bootstrap's PRNG key.
      probs: ``[N, C]`` predicted probabilities (rows summing to 1), or ``[N]`` scores of the positive class.
      labels: ``[N]`` integer class labels in ``0..C-1``.
      setting: ``"confidence"``, ``"class"`` (with ``cls``), ``"classwise"`` or ``"output"`` (module docstring).
      num_bootstrap: resamples.
      grid_size: grid points over ``[0, 1]``.
      kernel: ``"gaussian"`` or ``"triweight"``.
      band: the band's coverage in ``(0, 1)``.
      bandwidth: ``"full"`` (Silverman's rule on the whole sample, kept for every resample: the band shows the
        estimator's variance at that smoothing, and all resamples share one kernel matrix), ``"resample"``
        (re-estimated on each resample), or a number.
      cls: the class of the ``"class"`` setting.

    Returns:
      ``(grid, median, lo, hi)``, ``[G]`` arrays.

    Raises:
      ValueError: ``probs`` not in [0, 1] or not ``[N]`` / ``[N, C]``, labels out of range or of another length,
        an unknown setting / option, ``cls`` missing for ``"class"`` (the message names the argument).

    References:
      Posocco & Bonnefoy, "Estimating Expected Calibration Errors", ICANN 2021, Sec. 3; Efron & Tibshirani, *An
      Introduction to the Bootstrap*, 1993, Ch. 13 (percentile
      intervals).

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> s = rng.random(20_000)
      >>> y = (rng.random(20_000) < s**2).astype(int)  # P(Y = 1 | s) = s^2: the true ECE is 1/6
      >>> probs = np.stack([1 - s, s], axis=1)
      >>> grid, med, lo, hi = jaxkit.calibration.reliability_curve(jax.random.key(0), probs, y, "class", cls=1)
      >>> float(grid[128]), round(float(med[128]), 1), bool(lo[128] <= med[128] <= hi[128])
      (0.5, 0.3, True)
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
