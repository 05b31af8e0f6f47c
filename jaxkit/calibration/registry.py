"""The ECE estimators by the papers' names (:data:`ESTIMATORS`)."""

from __future__ import annotations

import functools

from jaxkit.calibration.binned import ece
from jaxkit.calibration.kernel import ece_kde, ece_kde_triweight

__all__ = ["ESTIMATORS"]


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
