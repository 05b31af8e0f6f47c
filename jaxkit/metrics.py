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
    """The ROC curve: ``(fpr, tpr, thresholds)`` at every distinct score, descending, from ``(0, 0, +inf)``.

    A point per distinct score ``t``: ``fpr = #(negatives with score >= t) / N_neg``, ``tpr`` likewise over
    positives; tied scores make one point (as scikit-learn's ``roc_curve(drop_intermediate=False)``).

    Args:
      scores: real scores of any shape, higher = more likely positive; finite.
      labels: booleans (or 0/1) of the same size; both classes present.

    Returns:
      ``(fpr, tpr, thresholds)``, float64 arrays of equal length (number of distinct scores + 1).

    Raises:
      ValueError: ``scores`` / ``labels`` of different sizes, non-finite scores, non-binary labels, or labels
        of one class only (the message names the argument).

    References:
      Fawcett, "An introduction to ROC analysis", Pattern Recognition Letters 27, 2006, Algorithm 1.

    Examples:
      >>> scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
      >>> labels = np.array([1, 0, 1, 0, 0, 0], bool)
      >>> fpr, tpr, thr = jaxkit.metrics.roc_curve(scores, labels)
      >>> print(fpr, tpr)
      [0.   0.   0.25 0.25 0.5  0.75 1.  ] [0.  0.5 0.5 1.  1.  1.  1. ]
    """
    s, y = _scores_labels(scores, labels)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each run of equal scores
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    return (np.r_[0, fp / (~y).sum()], np.r_[0, tp / y.sum()], np.r_[np.inf, s[last]])


def auc(scores, labels) -> float:
    """Area under the ROC curve, rank-based: ``P(positive's score > negative's)``, ties counting 1/2.

    ``AUC = (R_pos - n_1 (n_1 + 1) / 2) / (n_1 n_0)`` with ``R_pos`` the sum of the positives' average ranks
    (the Mann-Whitney U statistic over ``n_1 n_0``); equal to scikit-learn's ``roc_auc_score``.

    Args:
      scores: real scores of any shape, higher = more likely positive; finite.
      labels: booleans (or 0/1) of the same size; both classes present.

    Returns:
      The AUC in ``[0, 1]`` (0.5: chance), a Python float.

    Raises:
      ValueError: ``scores`` / ``labels`` of different sizes, non-finite scores, non-binary labels, or labels
        of one class only (the message names the argument).

    References:
      Hanley & McNeil, "The meaning and use of the area under a receiver operating characteristic (ROC)
      curve", Radiology 143, 1982 (the AUC as the Wilcoxon-Mann-Whitney statistic).

    Examples:
      >>> scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
      >>> labels = np.array([1, 0, 1, 0, 0, 0], bool)
      >>> jaxkit.metrics.auc(scores, labels)
      0.875
      >>> jaxkit.metrics.auc([1.0, 1.0, 0.0], [1, 0, 0])  # a tie counts 1/2
      0.75
    """
    s, y = _scores_labels(scores, labels)
    r = rankdata(s)  # average ranks for ties
    n1, n0 = int(y.sum()), int((~y).sum())
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def far_floor(n_neg: int, l: float | None = None) -> float:
    """The lowest false-alarm rate a semi-log curve is drawn from: ``l``, or half of one negative.

    ``l`` when given, else ``0.5 / n_neg``: below one negative's share, so a detector with no false alarm at
    some threshold still has a finite ``log10`` FPR there.

    Args:
      n_neg: the number of negatives.
      l: an explicit floor (returned as given).

    Returns:
      The floor, a Python float.

    References:
      The convention of :func:`log_auc` and :func:`lg_far` (the hyperspectral thesis reproduced in
      ``experiments/hyperspectral_wgan_gp.py``, MSc thesis, NTNU/FFI, 2018).

    Examples:
      >>> jaxkit.metrics.far_floor(4)
      0.125
      >>> jaxkit.metrics.far_floor(4, 1e-3)
      0.001
    """
    return 0.5 / n_neg if l is None else float(l)


def log_auc(scores, labels, *, l: float | None = None) -> float:
    """Normalised area under the semi-log ROC curve (TPR against log10 FPR) over FPR in ``[l, 1]``.

    ``logAUC = int_l^1 TPR d(log10 FPR) / |log10 l|`` (1: perfect; :func:`log_auc_chance`: random).

    ``l = 0.5 / N_neg`` by default (:func:`far_floor`). While ``l`` lies below the smallest non-zero FPR (always so
    for the default), thresholds with zero false positives are placed at FPR = ``l`` (so a perfect detector scores 1).
    A larger ``l`` truncates the curve at ``l``: TPR(l) is interpolated on the ROC segment that crosses it
    (as :func:`partial_auc`) and the points below ``l`` are dropped. Trapezoids in log10(FPR) between
    consecutive points.

    Args:
      scores: real scores of any shape, higher = more likely positive; finite.
      labels: booleans (or 0/1) of the same size; both classes present.
      l: the lowest FPR of the integral, in ``(0, 1)``; default ``0.5 / N_neg``.

    Returns:
      The normalised area, a Python float in ``[0, 1]``.

    Raises:
      ValueError: ``scores`` / ``labels`` of different sizes, non-finite scores, non-binary labels, or labels
        of one class only (the message names the argument).
      ValueError: ``l`` outside ``(0, 1)``.

    References:
      Mysinger & Shoichet, "Rapid context-dependent ligand desolvation in molecular docking", J. Chem. Inf.
      Model. 50, 2010 (logAUC); its use for hyperspectral anomaly detection as in the thesis reproduced by
      ``experiments/hyperspectral_wgan_gp.py`` (MSc thesis, NTNU/FFI, 2018).

    Examples:
      >>> scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
      >>> labels = np.array([1, 0, 1, 0, 0, 0], bool)
      >>> round(jaxkit.metrics.log_auc(scores, labels), 4)
      0.8333
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
    """The :func:`log_auc` of a random detector (TPR = FPR).

    ``int_l^1 FPR d(log10 FPR) / |log10 l| = (1 - l) / (ln 10 * |log10 l|)`` (about 0.07 for 10^6 negatives).

    Args:
      n_neg: the number of negatives (a positive integer).
      l: the lowest FPR, in ``(0, 1)``; default ``0.5 / n_neg``.

    Returns:
      The chance level, a Python float.

    Raises:
      ValueError: ``n_neg`` not a positive integer, ``l`` outside ``(0, 1)``.

    References:
      Mysinger & Shoichet, J. Chem. Inf. Model. 50, 2010 (logAUC of random selection).

    Examples:
      >>> round(jaxkit.metrics.log_auc_chance(10**6), 4)
      0.0689
    """
    lo = far_floor(_c.positive_int(n_neg, "n_neg"), l)
    if not 0 < lo < 1:
        raise ValueError(f"`l` must lie in (0, 1), got {lo}.")
    return float((1 - lo) / (np.log(10) * abs(np.log10(lo))))


def lg_far(scores, labels, *, l: float | None = None) -> float:
    """``log10`` of the false-alarm rate at the highest threshold that detects a positive.

    ``lgFAR = log10 max(FPR(t*), l)`` with ``t*`` the highest positive's score: how many false alarms the
    first detection costs (lower is better; an FPR of 0 counts as ``l``).

    Args:
      scores: real scores of any shape, higher = more likely positive; finite.
      labels: booleans (or 0/1) of the same size; both classes present.
      l: the floor for an FPR of 0; default ``0.5 / N_neg`` (:func:`far_floor`).

    Returns:
      A Python float <= 0.

    Raises:
      ValueError: ``scores`` / ``labels`` of different sizes, non-finite scores, non-binary labels, or labels
        of one class only (the message names the argument).

    References:
      The hyperspectral thesis reproduced by ``experiments/hyperspectral_wgan_gp.py`` (MSc thesis, NTNU/FFI,
      2018; its per-target tables).

    Examples:
      >>> scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
      >>> labels = np.array([1, 0, 1, 0, 0, 0], bool)
      >>> round(jaxkit.metrics.lg_far(scores, labels), 4)  # no false alarm above 0.9: log10(0.5 / 4)
      -0.9031
    """
    s, y = _scores_labels(scores, labels)
    fpr, tpr, _ = roc_curve(s, y)
    first = int(np.argmax(tpr > 0))
    return float(np.log10(max(fpr[first], far_floor(int((~y).sum()), l))))


def partial_auc(scores, labels, max_fpr: float) -> float:
    """Area under the ROC curve for FPR in ``[0, max_fpr]``, divided by ``max_fpr`` (so 1 is perfect).

    ``pAUC = int_0^max_fpr TPR dFPR / max_fpr``, TPR interpolated linearly at ``max_fpr``. Not
    McClish-standardised as scikit-learn's ``roc_auc_score(max_fpr=...)`` (which maps chance to 0.5).

    Args:
      scores: real scores of any shape, higher = more likely positive; finite.
      labels: booleans (or 0/1) of the same size; both classes present.
      max_fpr: the upper end of the FPR range, in ``(0, 1]``.

    Returns:
      The normalised partial area, a Python float in ``[0, 1]``.

    Raises:
      ValueError: ``scores`` / ``labels`` of different sizes, non-finite scores, non-binary labels, or labels
        of one class only (the message names the argument).
      ValueError: ``max_fpr`` outside ``(0, 1]``.

    References:
      McClish, "Analyzing a portion of the ROC curve", Medical Decision Making 9, 1989 (the partial area).

    Examples:
      >>> scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
      >>> labels = np.array([1, 0, 1, 0, 0, 0], bool)
      >>> jaxkit.metrics.partial_auc(scores, labels, 0.5)
      0.75
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
