"""Robustness: input Jacobians and their penalty, universal adversarial perturbations, input noise models.

Shared by the regularisation and the robustness/explanation work: attacks and
their projections live here once. Modules: :mod:`~jaxkit.robust.projection`,
:mod:`~jaxkit.robust.jacobian`, :mod:`~jaxkit.robust.uap`, :mod:`~jaxkit.robust.noise`,
:mod:`~jaxkit.robust.softrmax`, :mod:`~jaxkit.robust.attacks`, :mod:`~jaxkit.robust.margins`;
every public name is importable from ``jaxkit.robust``.

**Jacobian regularisation** (Co, Martinez Rego & Lupu, ICANN 2021; Hoffman et
al. 2019): ``L = CE + (lambda/2) (1/B) sum_i ||J(x_i)||_F^2`` with ``J`` the
Jacobian of the logits w.r.t. the input. :func:`jacobian_frobenius_penalty`
returns ``(1/B) sum_i ||J(x_i)||_F^2``, exactly (one reverse pass per class) or
by random projections, ``||J||_F^2 = C * E_v ||v^T J||^2`` with ``v`` uniform on
the unit sphere of the ``C`` logits. :func:`jacobian_cosine_similarity` gives
``<J_i, J_j> / (||J_i||_F ||J_j||_F)`` (the paper's alignment statistic).
The per-sample Jacobians assume the model treats samples independently (no
batch statistics: evaluate BatchNorm with running averages).

**Universal adversarial perturbation** (UAP): one ``delta`` for a whole data
set, ``||delta||_p <= eps``, found by stochastic projected ascent on the mean
loss of ``x + delta`` over random batches (:func:`universal_perturbation`,
one jitted ``fori_loop``); metrics :func:`universal_evasion_rate` (UER) and
:func:`targeted_success_rate` (TSR).

**Noise models** for robustness tests (LocalNorm paper):
:func:`multiplicative_gaussian_noise` ``x (1 + xi)``, ``xi ~ N(0, sigma^2)``,
and :func:`multiplicative_bernoulli_noise` ``x * b``, ``b ~ Bernoulli(1 - rate)``.
"""

from __future__ import annotations

from jaxkit.robust.attacks import (
    ATTACKS,
    LOSSES,
    average_sample_attack,
    bim,
    class_means,
    fgsm,
    margin_loss,
    pgd,
    robust_accuracy,
)
from jaxkit.robust.jacobian import input_jacobians, jacobian_cosine_similarity, jacobian_frobenius_penalty
from jaxkit.robust.margins import magnitude_margin_ratio, prediction_margin
from jaxkit.robust.noise import multiplicative_bernoulli_noise, multiplicative_gaussian_noise
from jaxkit.robust.projection import NORMS, project, project_batch
from jaxkit.robust.softrmax import softrmax, softrmax_cross_entropy, softrmax_distances, softrmax_log_probs
from jaxkit.robust.uap import targeted_success_rate, universal_evasion_rate, universal_perturbation

__all__ = [
    "ATTACKS",
    "LOSSES",
    "NORMS",
    "average_sample_attack",
    "bim",
    "class_means",
    "fgsm",
    "input_jacobians",
    "jacobian_cosine_similarity",
    "jacobian_frobenius_penalty",
    "magnitude_margin_ratio",
    "margin_loss",
    "multiplicative_bernoulli_noise",
    "multiplicative_gaussian_noise",
    "pgd",
    "prediction_margin",
    "project",
    "project_batch",
    "robust_accuracy",
    "softrmax",
    "softrmax_cross_entropy",
    "softrmax_distances",
    "softrmax_log_probs",
    "targeted_success_rate",
    "universal_evasion_rate",
    "universal_perturbation",
]
