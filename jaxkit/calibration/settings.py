"""What is calibrated: the checked probabilities and labels, and the (score, event) pairs of each setting.

For probabilities ``probs [N, C]`` and labels ``[N]``: ``"confidence"`` (the top score against "the prediction
is right"), ``"class"`` (one class's score against ``1{Y = c}``), ``"classwise"`` (the class-specific errors,
averaged), ``"output"`` (all ``N C`` pairs pooled).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit._checks import is_concrete

__all__ = ["SETTINGS", "scores_and_events"]


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


def bin_count(n_bins, n):
    """``n_bins``, or ``round(sqrt(n))`` when it is ``None``; ``ValueError`` below 1."""
    b = int(round(math.sqrt(n))) if n_bins is None else int(n_bins)
    if b < 1:
        raise ValueError(f"`n_bins` must be >= 1, got {n_bins}.")
    return b


def scores_and_events(probs, labels, setting: str = "confidence", cls: int | None = None):
    """The scores and 0/1 events ``(s, y)``, each ``[K, N']``, of every calibration problem of a setting.

    ``"confidence"``: ``s = max_c p_c``, ``y = 1{argmax = label}`` (``K = 1``); ``"class"``: ``p_cls`` against
    ``1{label = cls}``; ``"classwise"``: one row per class (``K = C``); ``"output"``: all ``N C`` pairs pooled.

    Args:
      probs: ``[N, C]`` predicted probabilities (rows summing to 1), or ``[N]`` scores of the positive class.
      labels: ``[N]`` integer class labels in ``0..C-1``.
      setting: ``"confidence"``, ``"class"`` (with ``cls``), ``"classwise"`` or ``"output"`` (module docstring).
      cls: the class of the ``"class"`` setting.

    Returns:
      ``(s, y)``, float arrays of shape ``[K, N']``.

    Raises:
      ValueError: ``probs`` not in [0, 1] or not ``[N]`` / ``[N, C]``, labels out of range or of another length,
        an unknown setting / option, ``cls`` missing for ``"class"`` (the message names the argument).

    References:
      Posocco & Bonnefoy, "Estimating Expected Calibration Errors", ICANN 2021, Sec. 2 (the settings); Kull et al.,
      "Beyond temperature scaling", NeurIPS 2019 (classwise).

    Examples:
      >>> probs = jnp.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
      >>> s, y = jaxkit.calibration.scores_and_events(probs, jnp.array([0, 1, 1, 0]))
      >>> print(s, y)
      [[0.9 0.8 0.7 0.6]] [[1. 0. 1. 1.]]
    """
    p, lab = _check(probs, labels)
    c = p.shape[1]
    if setting not in SETTINGS:
        raise ValueError(f"`setting` must be one of {SETTINGS}, got {setting!r}.")
    if setting == "class":
        if cls is None or not 0 <= int(cls) < c:
            raise ValueError(f"setting 'class' needs `cls` in [0, {c}), got {cls}.")
        cls = int(cls)
    else:
        cls = None
    return _pairs(p, lab, setting, cls)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _pairs(p, lab, setting, cls):
    """One compiled program per setting (eagerly, its five array operations each compiled apart: 0.3 s)."""
    onehot = jax.nn.one_hot(lab, p.shape[1], dtype=p.dtype)
    if setting == "confidence":
        return jnp.max(p, 1)[None], (jnp.argmax(p, 1) == lab).astype(p.dtype)[None]
    if setting == "class":
        return p[:, cls][None], onehot[:, cls][None]
    if setting == "classwise":
        return p.T, onehot.T
    return p.reshape(1, -1), onehot.reshape(1, -1)


def check_unit_scores(s, name="s"):
    """:func:`check_scores`, and in ``[0, 1]`` when concrete (NumPy on the value: no tracer inside ``jit``)."""
    s = check_scores(s, name)
    if _c.is_concrete(s) and not np.all((np.asarray(s) >= 0) & (np.asarray(s) <= 1)):
        raise ValueError(f"`{name}` must lie in [0, 1], got range [{np.min(s)}, {np.max(s)}].")
    return s


def check_scores(s, name="s"):
    """Scores ``[N]``: real, at least ``1`` of them, finite when concrete."""
    s = _c.array(s, name, ndim=1, kind="r", nonempty=True)
    _c.finite(s, name)
    s = jnp.asarray(s)
    return s if jnp.issubdtype(s.dtype, jnp.floating) else s.astype(jnp.float32)
