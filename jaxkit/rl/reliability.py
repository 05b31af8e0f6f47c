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
    """The inter-quartile range ``q75 - q25`` (linear interpolation); NaN in ``x`` gives NaN.

    Args:
      x: values.
      axis: the axis (``None``: all values).

    Returns:
      The IQR.

    References:
      Chan et al., "Measuring the Reliability of Reinforcement Learning Algorithms", ICLR 2020, Sec. 3 (dispersion as
      the IQR).

    Examples:
      >>> float(jaxkit.rl.reliability.iqr(jnp.arange(5.0)))
      2.0
    """
    x = jnp.asarray(_c.array(x, "x", kind="r"), jnp.float32)
    if x.size == 0:
        raise ValueError(f"`x` is empty (shape {x.shape}).")
    return jnp.percentile(x, 75, axis=axis) - jnp.percentile(x, 25, axis=axis)


def cvar(x, alpha: float = 0.05, axis=None, tail: str = "lower"):
    """The conditional value at risk, Chan et al.'s released definition.

    ``VaR`` is the linearly interpolated ``100 alpha`` percentile (``tail="lower"``; ``100 (1 - alpha)`` for
    ``"upper"``), computed from the order statistics as ``scipy.stats.scoreatpercentile`` does (``a + (b - a) f``,
    so it is exactly an order statistic when ``alpha (n - 1)`` is whole); CVaR is the mean of every value at or
    below it (at or above it for ``"upper"``) -- with ties at the VaR, all of them count. NaN in ``x`` is an error
    when concrete and gives NaN inside a trace.

    Args:
      x: values.
      alpha: the tail's share in ``(0, 1)``.
      axis: the axis (``None``: all values).
      tail: ``"lower"`` or ``"upper"``.

    Returns:
      The CVaR.

    Raises:
      ValueError: ``alpha`` outside ``(0, 1)``, an unknown ``tail``, NaN (when concrete).

    References:
      Chan et al., "Measuring the Reliability of Reinforcement Learning Algorithms", ICLR 2020, Sec. 3 (risk as CVaR)
      and its released code.

    Examples:
      >>> cvar = jaxkit.rl.reliability.cvar
      >>> float(cvar(jnp.arange(10.0), 0.2)), float(cvar(jnp.arange(10.0), 0.2, tail="upper"))
      (0.5, 8.5)
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
    """First differences along time, ``c[:, t+1] - c[:, t]`` (the detrending before the across-time metrics).

    Args:
      curves: ``[runs, T]`` performance curves.

    Returns:
      ``[runs, T - 1]`` differences.

    Raises:
      ValueError: curves not ``[runs, T]`` with ``T >= 2``, NaN (when concrete).

    References:
      Chan et al., "Measuring the Reliability of Reinforcement Learning Algorithms", ICLR 2020, Sec. 3.

    Examples:
      >>> curves = jnp.array([[0.0, 1.0, 3.0, 2.0, 4.0], [0.0, 2.0, 2.0, 2.0, 5.0]])  # 2 runs x 5 points
      >>> print(jaxkit.rl.reliability.detrend(curves))
      [[ 1.  2. -1.  2.]
       [ 2.  0.  0.  3.]]
    """
    return jnp.diff(_curves(curves), axis=1)


def drawdown(curves):
    """The decline from the running peak, ``max_{s<=t} c[:, s] - c[:, t] >= 0``.

    Args:
      curves: ``[runs, T]`` performance curves.

    Returns:
      ``[runs, T]`` drawdowns.

    Raises:
      ValueError: curves not ``[runs, T]``, NaN (when concrete).

    References:
      Chan et al., "Measuring the Reliability of Reinforcement Learning Algorithms", ICLR 2020, Sec. 3 (long-term risk
      across time).

    Examples:
      >>> curves = jnp.array([[0.0, 1.0, 3.0, 2.0, 4.0], [0.0, 2.0, 2.0, 2.0, 5.0]])  # 2 runs x 5 points
      >>> print(jaxkit.rl.reliability.drawdown(curves))
      [[0. 0. 0. 1. 0.]
       [0. 0. 0. 0. 0.]]
    """
    c = _curves(curves, 1)
    return jax.lax.cummax(c, axis=1) - c


def moving_average(curves, window: int):
    """The trailing moving average over ``window`` points (shorter at the start); a low-pass filter.

    Args:
      curves: ``[runs, T]`` performance curves.
      window: points averaged (>= 1).

    Returns:
      ``[runs, T]`` smoothed curves.

    Raises:
      ValueError: ``window < 1``; curves not ``[runs, T]``.

    References:
      Chan et al., "Measuring the Reliability of Reinforcement Learning Algorithms", ICLR 2020, Sec. 3 (low-pass
      filtering before the dispersion across time).

    Examples:
      >>> curves = jnp.array([[0.0, 1.0, 3.0, 2.0, 4.0], [0.0, 2.0, 2.0, 2.0, 5.0]])  # 2 runs x 5 points
      >>> print(jaxkit.rl.reliability.moving_average(curves, 2))
      [[0.  0.5 2.  2.5 3. ]
       [0.  1.  2.  2.  3.5]]
    """
    c = _curves(curves, 1)
    w = int(window)
    if w < 1:
        raise ValueError(f"`window` must be >= 1, got {window}.")
    cs = jnp.cumsum(jnp.pad(c, ((0, 0), (1, 0))), axis=1)
    t = jnp.arange(1, c.shape[1] + 1)
    lo = jnp.maximum(t - w, 0)
    return (cs[:, t] - cs[:, lo]) / (t - lo)


def dispersion_across_runs(curves):
    """Dispersion across runs: the IQR over runs at every evaluation point, shape ``(T,)``.

    Args:
      curves: ``[runs, T]`` performance curves.

    Returns:
      ``[T]`` IQRs.

    Raises:
      ValueError: curves not ``[runs, T]``, NaN (when concrete).

    References:
      Chan et al., "Measuring the Reliability of Reinforcement Learning Algorithms", ICLR 2020, Sec. 3 (DR).

    Examples:
      >>> curves = jnp.array([[0.0, 1.0, 3.0, 2.0, 4.0], [0.0, 2.0, 2.0, 2.0, 5.0]])  # 2 runs x 5 points
      >>> print(jaxkit.rl.reliability.dispersion_across_runs(curves))
      [0.  0.5 0.5 0.  0.5]
    """
    return iqr(_curves(curves, 1), axis=0)


def risk_across_runs(final, alpha: float = 0.05):
    """Risk across runs: the CVaR (lower tail) over runs of the final performance.

    Args:
      final: ``[runs]`` final performances.
      alpha: the tail's share.

    Returns:
      A scalar.

    Raises:
      ValueError: as :func:`cvar`.

    References:
      Chan et al., "Measuring the Reliability of Reinforcement Learning Algorithms", ICLR 2020, Sec. 3 (RR).

    Examples:
      >>> float(jaxkit.rl.reliability.risk_across_runs(jnp.arange(10.0), 0.2))
      0.5
    """
    f = _c.array(final, "final", ndim=1, kind="r")
    return _cvar(f, alpha, None, "lower", "final")


def dispersion_across_time(curves, window: int):
    """Dispersion across time: the IQR of the detrended curve in consecutive windows of ``window`` differences.

    Args:
      curves: ``[runs, T]`` performance curves.
      window: differences per window (>= 1).

    Returns:
      ``[runs, (T - 1) // window]`` IQRs.

    Raises:
      ValueError: ``window < 1`` or longer than the curve; curves not ``[runs, T]``.

    References:
      Chan et al., "Measuring the Reliability of Reinforcement Learning Algorithms", ICLR 2020, Sec. 3 (DT).

    Examples:
      >>> curves = jnp.array([[0.0, 1.0, 3.0, 2.0, 4.0], [0.0, 2.0, 2.0, 2.0, 5.0]])  # 2 runs x 5 points
      >>> print(jaxkit.rl.reliability.dispersion_across_time(curves, 2))
      [[0.5 1.5]
       [1.  1.5]]
    """
    d = detrend(curves)
    w = int(window)
    if not 2 <= w <= d.shape[1]:
        raise ValueError(f"`window` must be in [2, {d.shape[1]}] (number of differences), got {window}.")
    n = d.shape[1] // w
    blocks = d[:, : n * w].reshape(d.shape[0], n, w)
    return iqr(blocks, axis=2)


def short_term_risk_across_time(curves, alpha: float = 0.05):
    """Short-term risk across time: the CVaR (lower tail) of each run's first differences (more negative = riskier).

    Args:
      curves: ``[runs, T]`` performance curves.
      alpha: the tail's share.

    Returns:
      ``[runs]`` CVaRs.

    Raises:
      ValueError: as :func:`detrend` and :func:`cvar`.

    References:
      Chan et al., "Measuring the Reliability of Reinforcement Learning Algorithms", ICLR 2020, Sec. 3 (SRT).

    Examples:
      >>> curves = jnp.array([[0.0, 1.0, 3.0, 2.0, 4.0], [0.0, 2.0, 2.0, 2.0, 5.0]])  # 2 runs x 5 points
      >>> print(jaxkit.rl.reliability.short_term_risk_across_time(curves, 0.25))
      [-1.  0.]
    """
    return _cvar(detrend(curves), alpha, 1, "lower", "curves")


def long_term_risk_across_time(curves, alpha: float = 0.05):
    """Long-term risk across time: the CVaR (upper tail) of each run's drawdown (larger = deeper declines).

    Args:
      curves: ``[runs, T]`` performance curves.
      alpha: the tail's share.

    Returns:
      ``[runs]`` CVaRs.

    Raises:
      ValueError: as :func:`drawdown` and :func:`cvar`.

    References:
      Chan et al., "Measuring the Reliability of Reinforcement Learning Algorithms", ICLR 2020, Sec. 3 (LRT).

    Examples:
      >>> curves = jnp.array([[0.0, 1.0, 3.0, 2.0, 4.0], [0.0, 2.0, 2.0, 2.0, 5.0]])  # 2 runs x 5 points
      >>> print(np.asarray(jaxkit.rl.reliability.long_term_risk_across_time(curves, 0.25), float).round(3))
      [0.2 0. ]
    """
    return _cvar(drawdown(curves), alpha, 1, "upper", "curves")
