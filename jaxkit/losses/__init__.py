"""Losses and soft targets shared by several methods.

Modules: :mod:`~jaxkit.losses.smoothing`, :mod:`~jaxkit.losses.shift`, :mod:`~jaxkit.losses.imbalance`,
:mod:`~jaxkit.losses.balancing`; every public name is importable from ``jaxkit.losses``.

Label smoothing (Liu & JaJa, ICANN 2021, "Class-similarity based label smoothing"):

* :func:`class_mean_pairwise_distance` -- ``d_k(k')``, the mean distance over
  all pairs of examples of classes ``k`` and ``k'`` (L2 via the Gram trick,
  L1 in row chunks so memory stays bounded; the diagonal averages distinct
  pairs of one class);
* :func:`class_similarity_matrix` -- each row standardised (with or without
  the diagonal: the paper does not say; a parameter), ``softmax(-beta d)``,
  the diagonal zeroed and the row renormalised;
* :func:`similarity_smooth_labels` -- ``(1 - alpha) e_k + alpha s_k``: alpha is
  exactly the mass put on the other classes; :func:`uniform_smooth_labels`
  (Szegedy et al.: ``(1 - alpha) e_k + alpha / C``) for comparison.

Both targets plug into ``optax.softmax_cross_entropy(logits, targets)``.

Distribution shift and class imbalance (a TU Delft dissertation on
sensitivities of visual learning; "Deep Learning in the Wild"):

* :func:`hir_loss` -- hypothesis-invariant representations: the sum over
  same-class pairs ``i < j`` of ``KL(p_i || p_j)`` (or the symmetric sum), from
  one ``O(B^2)`` pairwise-KL matrix; add ``alpha * hir`` to the cross-entropy;
* :func:`mk_mmd` -- multi-kernel MMD (biased / unbiased MMD^2, or its root)
  with equally weighted Gaussian kernels, bandwidths by the median heuristic;
* :func:`class_balanced_weights`, :func:`focal_loss`,
  :func:`class_balanced_focal_loss` -- Cui et al. (2019) effective-number
  weights ``(1 - beta) / (1 - beta^n_y)`` times the sigmoid focal loss;
* :class:`RunningMeanBalancer` -- multi-task ``sum_t L_t / m_t`` with ``m_t``
  an exponential running mean of ``L_t`` (optax-style state, resumable).
"""

from __future__ import annotations

from jaxkit.losses.balancing import BalancerState, RunningMeanBalancer, balanced_sum
from jaxkit.losses.imbalance import class_balanced_focal_loss, class_balanced_weights, focal_loss
from jaxkit.losses.shift import hir_loss, median_bandwidths, mk_mmd, pairwise_kl
from jaxkit.losses.smoothing import (
    class_mean_pairwise_distance,
    class_similarity_matrix,
    similarity_smooth_labels,
    uniform_smooth_labels,
)

__all__ = [
    "BalancerState",
    "RunningMeanBalancer",
    "balanced_sum",
    "class_balanced_focal_loss",
    "class_balanced_weights",
    "class_mean_pairwise_distance",
    "class_similarity_matrix",
    "focal_loss",
    "hir_loss",
    "median_bandwidths",
    "mk_mmd",
    "pairwise_kl",
    "similarity_smooth_labels",
    "uniform_smooth_labels",
]
