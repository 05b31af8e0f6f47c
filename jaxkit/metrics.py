"""Detection metrics on scores where higher means more likely positive (anomalous, target, manipulated).

:func:`roc_curve`, :func:`auc` (rank-based, ties count 1/2), :func:`log_auc` (area under TPR vs log10 FPR
over ``[l, 1]``, normalised), :func:`lg_far`, :func:`log_auc_chance`, :func:`partial_auc`. Shared by
:mod:`jaxkit.anomaly` and :mod:`jaxkit.explain`; NumPy float64, not jitted (they sort once per curve).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from jaxkit import _checks as _c

__all__ = ["auc", "far_floor", "lg_far", "log_auc", "log_auc_chance", "partial_auc", "roc_curve"]


def _scores_labels(scores, labels):
    """Scores and binary labels of any (equal) size, flattened together."""
    _c.real_dtype(scores, "scores")
    s = np.asarray(scores, np.float64).ravel()
    y = _c.binary(labels, "labels").ravel()
    if s.shape != y.shape:
        raise ValueError(f"`scores` and `labels` must have the same size, got {s.size} and {y.size}.")
    if not np.all(np.isfinite(s)):
        raise ValueError("`scores` contains NaN or inf.")
    if y.all() or not y.any():
        raise ValueError("`labels` must contain both positives (True) and negatives (False).")
    return s, y


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` at every distinct score (descending), starting at ``(0, 0, +inf)``."""
    s, y = _scores_labels(scores, labels)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each run of equal scores
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    return (np.r_[0, fp / (~y).sum()], np.r_[0, tp / y.sum()], np.r_[np.inf, s[last]])


def auc(scores, labels) -> float:
    """Area under the ROC curve: P(score of a positive > a negative), ties counting 1/2 (Mann-Whitney)."""
    s, y = _scores_labels(scores, labels)
    r = rankdata(s)  # average ranks for ties
    n1, n0 = int(y.sum()), int((~y).sum())
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def far_floor(n_neg: int, l: float | None = None) -> float:
    """The lowest false-alarm rate a curve is drawn from: ``l``, or half of one negative (``0.5 / n_neg``)."""
    return 0.5 / n_neg if l is None else float(l)


def log_auc(scores, labels, *, l: float | None = None) -> float:
    """Normalised area under TPR vs log10(FPR) over ``[l, 1]``: ``int TPR d(log10 FPR) / |log10 l|``.

    ``l = 0.5 / N_neg`` by default. While ``l`` lies below the smallest non-zero FPR (always so for the
    default), thresholds with zero false positives are placed at FPR = ``l`` (so a perfect detector scores 1).
    A larger ``l`` truncates the curve at ``l``: TPR(l) is interpolated on the ROC segment that crosses it
    (as :func:`partial_auc`) and the points below ``l`` are dropped. Trapezoids in log10(FPR) between
    consecutive points.
    """
    s, y = _scores_labels(scores, labels)
    fpr, tpr, _ = roc_curve(s, y)
    lo = far_floor(int((~y).sum()), l)
    if not 0 < lo < 1:
        raise ValueError(f"`l` must lie in (0, 1), got {lo}.")
    if lo < fpr[fpr > 0].min():
        x, t = np.maximum(fpr, lo), tpr  # zero false positives count as FPR = l
    else:
        i = int(np.searchsorted(fpr, lo, side="right"))  # first point beyond l; fpr[i - 1] <= l < fpr[i]
        t_lo = tpr[i - 1] + (tpr[i] - tpr[i - 1]) * (lo - fpr[i - 1]) / (fpr[i] - fpr[i - 1])
        x, t = np.r_[lo, fpr[i:]], np.r_[t_lo, tpr[i:]]
    lx = np.log10(x)
    # consecutive points at the same FPR form a vertical segment: zero width, no area
    return float(np.sum(np.diff(lx) * (t[1:] + t[:-1]) / 2) / abs(np.log10(lo)))


def log_auc_chance(n_neg: int, *, l: float | None = None) -> float:
    """``log_auc`` of a random detector (TPR = FPR): ``(1 - l) / (ln 10 * |log10 l|)`` (~0.07 for 10^6 negatives)."""
    lo = far_floor(_c.positive_int(n_neg, "n_neg"), l)
    if not 0 < lo < 1:
        raise ValueError(f"`l` must lie in (0, 1), got {lo}.")
    return float((1 - lo) / (np.log(10) * abs(np.log10(lo))))


def lg_far(scores, labels, *, l: float | None = None) -> float:
    """log10 of the false-alarm rate at the threshold that first detects a positive (FPR 0 -> ``l``)."""
    s, y = _scores_labels(scores, labels)
    fpr, tpr, _ = roc_curve(s, y)
    first = int(np.argmax(tpr > 0))
    return float(np.log10(max(fpr[first], far_floor(int((~y).sum()), l))))


def partial_auc(scores, labels, max_fpr: float) -> float:
    """Area under the ROC curve for FPR in ``[0, max_fpr]``, divided by ``max_fpr`` (so 1 is perfect).

    (Not McClish-standardised as scikit-learn's ``roc_auc_score(max_fpr=...)``.)
    """
    if not 0 < max_fpr <= 1:
        raise ValueError(f"`max_fpr` must lie in (0, 1], got {max_fpr}.")
    fpr, tpr, _ = roc_curve(scores, labels)
    stop = np.searchsorted(fpr, max_fpr, side="right")
    x, t = fpr[:stop], tpr[:stop]
    if x[-1] < max_fpr:
        t_end = np.interp(max_fpr, fpr, tpr)
        x, t = np.r_[x, max_fpr], np.r_[t, t_end]
    return float(np.sum(np.diff(x) * (t[1:] + t[:-1]) / 2) / max_fpr)
