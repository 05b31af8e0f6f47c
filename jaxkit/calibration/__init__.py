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

Modules: :mod:`~jaxkit.calibration.settings`, :mod:`~jaxkit.calibration.binned`,
:mod:`~jaxkit.calibration.kernel`, :mod:`~jaxkit.calibration.registry` (:data:`ESTIMATORS`),
:mod:`~jaxkit.calibration.temperature`; every public name is importable from ``jaxkit.calibration``.
"""

from __future__ import annotations

from jaxkit.calibration.binned import bin_weights, ece, mce, reliability_diagram
from jaxkit.calibration.kernel import (
    ece_kde,
    ece_kde_triweight,
    kde_density,
    local_calibration_error,
    reliability_curve,
    silverman_bandwidth,
)
from jaxkit.calibration.registry import ESTIMATORS
from jaxkit.calibration.settings import SETTINGS, scores_and_events
from jaxkit.calibration.temperature import fit_temperature

__all__ = [
    "ESTIMATORS",
    "SETTINGS",
    "bin_weights",
    "ece",
    "ece_kde",
    "ece_kde_triweight",
    "fit_temperature",
    "kde_density",
    "local_calibration_error",
    "mce",
    "reliability_curve",
    "reliability_diagram",
    "scores_and_events",
    "silverman_bandwidth",
]
