"""Reliability of RL training (Chan et al., "Measuring the Reliability of Reinforcement Learning
Algorithms", ICLR 2020): dispersion as the inter-quartile range, risk as the conditional value at risk.

``curves`` are ``(runs, T)`` arrays of performance at ``T`` evaluation points
(e.g. mean external reward per step in consecutive windows of training).

* across runs -- :func:`dispersion_across_runs` (IQR over runs at each point)
  and :func:`risk_across_runs` (CVaR over runs of the final performance);
* across time, within a run, on the *detrended* curve (first differences) --
  :func:`dispersion_across_time` (IQR in consecutive windows),
  :func:`short_term_risk_across_time` (CVaR of the differences: the worst drops
  from one point to the next) and :func:`long_term_risk_across_time` (CVaR of
  the drawdown from the running peak, upper tail: the deepest declines).

Quantiles interpolate linearly (``numpy.percentile``'s default);
``CVaR_alpha`` is, exactly as the authors' released ``compute_cvar``
(``rl_reliability_metrics/metrics/metric_utils.py``), the mean of every value
at or below ``VaR = scipy.stats.scoreatpercentile(x, 100 alpha)``
(``tail="lower"``), or at or above the ``100 (1 - alpha)`` percentile
(``tail="upper"``): with ties at the VaR, all of them count (see :func:`cvar`).
All functions are jittable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c

__all__ = [
    "cvar",
    "detrend",
    "dispersion_across_runs",
    "dispersion_across_time",
    "drawdown",
    "iqr",
    "long_term_risk_across_time",
    "moving_average",
    "risk_across_runs",
    "short_term_risk_across_time",
]


def _alpha(alpha):
    if not 0 < float(alpha) <= 1:
        raise ValueError(f"`alpha` must be in (0, 1], got {alpha}.")


def _curves(curves, min_len=2):
    c = jnp.asarray(_c.array(curves, "curves", kind="r"), jnp.float32)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < min_len:
        raise ValueError(f"`curves` must be (runs, T) with T >= {min_len}, got shape {c.shape}.")
    return c


def iqr(x, axis=None):
    """Inter-quartile range ``q75 - q25`` (linear interpolation); NaN in ``x`` gives NaN."""
    x = jnp.asarray(_c.array(x, "x", kind="r"), jnp.float32)
    if x.size == 0:
        raise ValueError(f"`x` is empty (shape {x.shape}).")
    return jnp.percentile(x, 75, axis=axis) - jnp.percentile(x, 25, axis=axis)


def cvar(x, alpha: float = 0.05, axis=None, tail: str = "lower"):
    """Conditional value at risk, Chan et al.'s released definition.

    ``VaR`` is the linearly interpolated ``100 alpha`` percentile (``tail="lower"``; ``100 (1 - alpha)`` for
    ``"upper"``), computed from the order statistics as ``scipy.stats.scoreatpercentile`` does (``a + (b - a) f``,
    so it is exactly an order statistic when ``alpha (n - 1)`` is whole); CVaR is the mean of every value at or
    below it (at or above it for ``"upper"``) -- with ties at the VaR, all of them count. NaN in ``x`` is an error
    when concrete and gives NaN inside a trace.
    """
    return _cvar(x, alpha, axis, tail, "x")


def _cvar(x, alpha, axis, tail, name):
    _alpha(alpha)
    if tail not in ("lower", "upper"):
        raise ValueError(f"`tail` must be 'lower' or 'upper', got {tail!r}.")
    x = _c.array(x, name, kind="r")
    _c.no_nan(x, name)
    x = jnp.asarray(x)
    x = x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)
    if axis is None:
        x, axis = x.ravel(), 0
    x = jnp.moveaxis(x, axis, -1)
    n = x.shape[-1]
    if n == 0:
        raise ValueError(f"`{name}` is empty along the CVaR axis.")
    q = float(alpha) if tail == "lower" else 1.0 - float(alpha)
    idx = q * (n - 1)
    lo = min(int(np.floor(idx)), n - 1)
    frac = idx - lo
    s = jnp.sort(x, axis=-1)
    a, b = s[..., lo], s[..., min(lo + 1, n - 1)]
    var = (a + (b - a) * frac if frac else a)[..., None]  # scoreatpercentile's interpolation
    sel = x <= var if tail == "lower" else x >= var
    out = jnp.sum(jnp.where(sel, x, 0.0), axis=-1) / jnp.sum(sel, axis=-1)
    return jnp.where(jnp.isnan(x).any(-1), jnp.nan, out)


def detrend(curves):
    """First differences along time: ``c[:, t+1] - c[:, t]`` (Chan et al.'s detrending)."""
    return jnp.diff(_curves(curves), axis=1)


def drawdown(curves):
    """Decline from the running peak, ``max_{s<=t} c[:, s] - c[:, t] >= 0``."""
    c = _curves(curves, 1)
    return jax.lax.cummax(c, axis=1) - c


def moving_average(curves, window: int):
    """Trailing moving average over ``window`` points (shorter at the start); a low-pass filter."""
    c = _curves(curves, 1)
    w = int(window)
    if w < 1:
        raise ValueError(f"`window` must be >= 1, got {window}.")
    cs = jnp.cumsum(jnp.pad(c, ((0, 0), (1, 0))), axis=1)
    t = jnp.arange(1, c.shape[1] + 1)
    lo = jnp.maximum(t - w, 0)
    return (cs[:, t] - cs[:, lo]) / (t - lo)


def dispersion_across_runs(curves):
    """IQR over runs at every evaluation point: shape ``(T,)``."""
    return iqr(_curves(curves, 1), axis=0)


def risk_across_runs(final, alpha: float = 0.05):
    """CVaR (lower tail) over runs of the final performance ``final`` (shape ``(runs,)``)."""
    f = _c.array(final, "final", ndim=1, kind="r")
    return _cvar(f, alpha, None, "lower", "final")


def dispersion_across_time(curves, window: int):
    """IQR of the detrended curve in consecutive windows of ``window`` differences: ``(runs, T'//window)``."""
    d = detrend(curves)
    w = int(window)
    if not 2 <= w <= d.shape[1]:
        raise ValueError(f"`window` must be in [2, {d.shape[1]}] (number of differences), got {window}.")
    n = d.shape[1] // w
    blocks = d[:, : n * w].reshape(d.shape[0], n, w)
    return iqr(blocks, axis=2)


def short_term_risk_across_time(curves, alpha: float = 0.05):
    """CVaR (lower tail) of each run's first differences: ``(runs,)``; more negative = riskier."""
    return _cvar(detrend(curves), alpha, 1, "lower", "curves")


def long_term_risk_across_time(curves, alpha: float = 0.05):
    """CVaR (upper tail) of each run's drawdown: ``(runs,)``; larger = deeper declines."""
    return _cvar(drawdown(curves), alpha, 1, "upper", "curves")
