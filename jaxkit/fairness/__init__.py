"""Fairness measures: benefit-based inequality indices (Speicher et al. 2018) and group metrics.

Everything is jittable; groups are integer codes ``0 .. num_groups - 1``
(``num_groups`` is static: pass it under ``jit``, it is inferred from concrete
codes otherwise). Several sensitive attributes are crossed into one code with
:func:`cross_groups`. Groups with no members are ignored by every measure.

Inequality of benefits (Speicher et al., KDD 2018), as used by the
multi-objective fairness paper (Zhang et al., ICANN 2021):

* :func:`benefits` ``b_i = yhat_i - y_i + 1`` (predicted label by default, so
  ``b in {0, 1, 2}``: 0 for a false negative, 2 for a false positive);
* :func:`generalized_entropy_index` ``GE_a(b) = 1/(n a (a-1)) sum_i ((b_i/mu)^a - 1)``;
* :func:`ge_decomposition` -- ``GE_a(b) = within + between`` exactly:
  ``between = 1/(n a (a-1)) sum_g n_g ((mu_g/mu)^a - 1)`` (the paper's group
  unfairness f_G) and ``within = sum_g (n_g/n) (mu_g/mu)^a GE_a(b^g)`` (its
  individual unfairness f_I), computed as
  ``sum_g sum_{i in g} (b_i^a - mu_g^a) / (n a (a-1) mu^a)``, which stays
  finite for a group whose benefits are all 0;
* :func:`fairness_objectives` -- the paper's three minimised objectives
  ``[MSE of the predicted probability, f_I, f_G]`` for one model.

Modules: :mod:`~jaxkit.fairness.metrics` (the measures) and :mod:`~jaxkit.fairness.learner`; every public
name is importable from ``jaxkit.fairness``.

The paper's learner (one-hidden-layer networks, Glorot initialisation, Adam
partial training kept Lamarckian-style): :func:`init_mlp`,
:func:`partial_train`, :func:`predict_proba`, :func:`model_objectives` and
:func:`moea_fitness`, the fitness for :func:`jaxkit.evolution.step` with
:class:`jaxkit.evolution.NSGA2` (``experiments/fair_moea.py``).

Group metrics with fairlearn's definitions (its ``worst_case`` aggregation:
largest minus smallest over groups): :func:`demographic_parity_difference`,
:func:`demographic_parity_ratio`, :func:`equalized_odds_difference`,
:func:`equal_opportunity_difference`, and :func:`group_rates` (per-group
count, selection rate, accuracy, TPR, FPR).
"""

from __future__ import annotations

from jaxkit.fairness import learner, metrics
from jaxkit.fairness.learner import *  # noqa: F403  (the face re-exports every public name)
from jaxkit.fairness.metrics import *  # noqa: F403  (the face re-exports every public name)

__all__ = []
__all__ += metrics.__all__
__all__ += learner.__all__
