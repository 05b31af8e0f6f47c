"""Kernel calibration estimators on a fine grid over [0, 1] with reflection at 0 and 1: ``ECE_d`` (Gaussian,
Silverman), the triweight KDE-ECE, the local calibration error and its bootstrap reliability curve.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jaxkit.calibration.settings import check_scores, scores_and_events

__all__ = [
    "ece_kde",
    "ece_kde_triweight",
    "kde_density",
    "local_calibration_error",
    "reliability_curve",
    "silverman_bandwidth",
]


def silverman_bandwidth(s) -> jax.Array:
    """``1.06 * std(s) * n^(-1/5)`` (sample std) of scores ``[N]``, ``N >= 2``."""
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
    """``(grid, f)``: kernel density of scores in [0, 1] on a grid, ``f(g) = 1/(n h) sum_i w_i K((g - s_i)/h)``.

    Reflection at 0 and 1 adds the mirrored points ``-s_i`` and ``2 - s_i``.
    ``weights`` default to 1 (a density); with 0/1 weights the result is
    ``pi f(s | Y = 1)``. Bandwidth: Silverman's rule on ``s``.
    """
    s = check_scores(s)
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
