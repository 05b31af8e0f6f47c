"""The fairness measures: benefit-based inequality indices (Speicher et al., KDD 2018) and group metrics with
fairlearn's definitions and conventions. Their definitions are in the package docstring (:mod:`jaxkit.fairness`).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c

__all__ = [
    "CONVENTIONS",
    "benefits",
    "cross_groups",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "fairness_objectives",
    "ge_decomposition",
    "generalized_entropy_index",
    "group_rates",
    "group_unfairness",
    "individual_unfairness",
]


def _groups(groups, n, num_groups, ref="y_true"):
    g = _c.per_example(groups, "groups", n, ref=ref)
    if not jnp.issubdtype(g.dtype, jnp.integer):
        if _c.is_concrete(g) and not np.all(np.mod(np.asarray(g), 1) == 0):
            raise ValueError("`groups` must be integer codes 0 .. num_groups - 1.")
        g = g.astype(jnp.int32)
    if num_groups is None:
        if not _c.is_concrete(g):
            raise ValueError("`num_groups` must be given (a static int) when `groups` is traced.")
        num_groups = int(np.max(np.asarray(g))) + 1 if g.size else 1
    num_groups = int(num_groups)
    if _c.is_concrete(g):
        ga = np.asarray(g)
        if ga.size and (ga.min() < 0 or ga.max() >= num_groups):
            raise ValueError(f"`groups` codes must lie in [0, {num_groups}), got range [{ga.min()}, {ga.max()}].")
        if np.unique(ga).size < 2:
            warnings.warn(
                "`groups` holds one group only: between-group measures are 0 and group differences are 0.",
                RuntimeWarning,
                stacklevel=3,
            )
    return g, num_groups


def ge_alpha(alpha) -> float:
    """``alpha`` of the generalised entropy index as a float; 0 and 1 (limits) are refused."""
    a = float(alpha)
    if a in (0.0, 1.0):
        raise ValueError(
            f"`alpha` must not be 0 or 1 (the generalised entropy index is a limit there: "
            f"use the mean log deviation / Theil index), got {alpha}."
        )
    return a


def cross_groups(*codes, sizes=None) -> tuple[jax.Array, int]:
    """One code per combination of several sensitive attributes: ``(codes, num_groups)``.

    The combined code is mixed-radix, first attribute most significant: ``c = c_1 * n_2 + c_2`` for two.

    Args:
      *codes: ``[N]`` integer codes, one array per attribute.
      sizes: each attribute's number of categories (inferred from concrete codes when omitted).

    Returns:
      ``(codes [N], num_groups)`` with ``num_groups = prod(sizes)``.

    Raises:
      ValueError: no attribute, codes of different lengths, codes outside ``[0, size)`` (when concrete), ``sizes``
        of another length.

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021 (crossed
      sensitive attributes); Kearns et al., "Preventing Fairness Gerrymandering", ICML 2018
      (subgroups of several attributes).

    Examples:
      >>> jaxkit.fairness.cross_groups(jnp.array([0, 1, 1]), jnp.array([2, 0, 1]))
      (Array([2, 3, 4], dtype=int32), 6)
    """
    if not codes:
        raise ValueError("`cross_groups` needs at least one attribute.")
    arrs = []
    for i, c in enumerate(codes):
        a = _c.array(c, f"codes[{i}]", ndim=1, kind="r", nonempty=True)
        if (
            not jnp.issubdtype(jnp.result_type(a), jnp.integer)
            and _c.is_concrete(a)
            and not np.all(np.mod(np.asarray(a), 1) == 0)
        ):
            raise ValueError(f"`codes[{i}]` (attribute {i}) must hold integer codes.")
        arrs.append(jnp.asarray(a, jnp.int32))
    n = arrs[0].shape
    for i, a in enumerate(arrs):
        if a.shape != n:
            raise ValueError(f"`codes[{i}]` (attribute {i}) has shape {a.shape}, expected {n} (one code per example).")
    if sizes is None:
        sizes = [int(np.max(np.asarray(a))) + 1 for a in arrs]
    if len(sizes) != len(arrs):
        raise ValueError(f"`sizes` must give one size per attribute ({len(arrs)}), got {sizes}.")
    for i, (a, s) in enumerate(zip(arrs, sizes)):
        if int(s) < 1:
            raise ValueError(f"`sizes[{i}]` must be >= 1, got {s}.")
        if _c.is_concrete(a) and (np.min(np.asarray(a)) < 0 or np.max(np.asarray(a)) >= int(s)):
            # a code outside its attribute's range would collide with another combination's code
            raise ValueError(
                f"`codes[{i}]` (attribute {i}) must lie in [0, {int(s)}), got range "
                f"[{np.min(np.asarray(a))}, {np.max(np.asarray(a))}]."
            )
    out = jnp.zeros(n, jnp.int32)
    for a, s in zip(arrs, sizes):
        out = out * int(s) + a
    return out, int(np.prod(sizes))


def benefits(y_true, y_pred) -> jax.Array:
    """Per-person benefits ``b = y_pred - y_true + 1``.

    With 0/1 predictions: 0 = false negative, 1 = correct, 2 = false positive.

    Pass predicted labels (the paper's reading) or scores in [0, 1] (the paper's printed formula ``theta x_i``)
    as ``y_pred``.

    Args:
      y_true: ``[N]`` 0/1 labels.
      y_pred: ``[N]`` predicted labels or scores in ``[0, 1]``.

    Returns:
      ``[N]`` float benefits in ``[0, 2]``.

    Raises:
      ValueError: different lengths, labels not 0/1, predictions outside ``[0, 1]`` (when concrete).

    References:
      Speicher et al., "A Unified Approach to Quantifying Algorithmic Unfairness: Measuring Individual & Group
      Unfairness via Inequality Indices", KDD 2018, Sec. 2 (the benefit function).

    Examples:
      >>> jaxkit.fairness.benefits(jnp.array([1, 0, 1]), jnp.array([1, 1, 0]))
      Array([1., 2., 0.], dtype=float32)
    """
    y = _c.per_example(y_true, "y_true", dtype=jnp.float32, values="binary")
    p = _c.per_example(y_pred, "y_pred", y.shape[0], jnp.float32, values="unit")
    return p - y + 1.0


def generalized_entropy_index(b, alpha: float = 2.0) -> jax.Array:
    """The generalised entropy index of benefits, ``GE_a(b) = 1/(n a (a - 1)) sum_i ((b_i / mu)^a - 1)``.

    0 when every benefit is 0 (no inequality among equals).

    Args:
      b: ``[N]`` non-negative benefits (:func:`benefits`).
      alpha: ``a``, not 0 or 1.

    Returns:
      A scalar array (0: perfectly equal benefits).

    Raises:
      ValueError: negative or non-finite benefits (when concrete), empty ``b``, ``alpha`` in ``{0, 1}``.

    References:
      Speicher et al., "A Unified Approach to Quantifying Algorithmic Unfairness: Measuring Individual & Group
      Unfairness via Inequality Indices", KDD 2018, Eq. (4) (``alpha = 2``: half the squared coefficient of variation).

    Examples:
      >>> b = jnp.array([1.0, 2.0, 0.0, 1.0, 1.0, 1.0])
      >>> round(float(jaxkit.fairness.generalized_entropy_index(b)), 4)
      0.1667
    """
    a = ge_alpha(alpha)
    b = _benefit_vec(b)
    mu = jnp.mean(b)
    safe = jnp.where(mu > 0, mu, 1.0)
    ge = jnp.mean((b / safe) ** a - 1.0) / (a * (a - 1.0))
    return jnp.where(jnp.isnan(mu), jnp.nan, jnp.where(mu > 0, ge, 0.0))


def _benefit_vec(b):
    b = _c.per_example(b, "b", dtype=jnp.float32)
    if _c.is_concrete(b) and np.any(np.asarray(b) < 0):
        raise ValueError(f"`b` (benefits) must be >= 0, got a minimum of {float(np.min(np.asarray(b)))}.")
    return jnp.where(b < 0, jnp.nan, b)  # traced: a negative benefit makes the index NaN, not a number


def ge_decomposition(b, groups, num_groups: int | None = None, alpha: float = 2.0) -> tuple[jax.Array, jax.Array]:
    """The exact within- and between-group parts of ``GE_a(b)``: ``within + between == GE_a(b)``.

    ``between = 1/(n a (a-1)) sum_g n_g ((mu_g/mu)^a - 1)`` and ``within = sum_g (n_g/n) (mu_g/mu)^a GE_a(b^g)``,
    computed as ``sum_g sum_{i in g} (b_i^a - mu_g^a) / (n a (a-1) mu^a)`` (finite for a group whose benefits
    are all 0). Groups with no members are ignored.

    Args:
      b: ``[N]`` non-negative benefits.
      groups: ``[N]`` integer group codes.
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).
      alpha: ``a``, not 0 or 1.

    Returns:
      ``(within, between)``, scalar arrays.

    Raises:
      ValueError: as :func:`generalized_entropy_index`; group codes out of range or of another length.

    References:
      Speicher et al., "A Unified Approach to Quantifying Algorithmic Unfairness: Measuring Individual & Group
      Unfairness via Inequality Indices", KDD 2018, Sec. 3 (the subgroup decomposition); Zhang et al., "Fairer Machine
      Learning Through Multi-objective Evolutionary Learning", ICANN 2021 (f_I and f_G).

    Examples:
      >>> b = jnp.array([1.0, 2.0, 0.0, 1.0, 1.0, 1.0])
      >>> within, between = jaxkit.fairness.ge_decomposition(b, jnp.array([0, 0, 0, 1, 1, 1]))
      >>> round(float(within), 4), round(float(between), 4)  # equal group means: no between-group part
      (0.1667, 0.0)
    """
    a = ge_alpha(alpha)
    b = _benefit_vec(b)
    g, k = _groups(groups, b.shape[0], num_groups, ref="b")
    n = b.shape[0]
    n_g = jax.ops.segment_sum(jnp.ones_like(b), g, num_segments=k)
    mu_g = jax.ops.segment_sum(b, g, num_segments=k) / jnp.maximum(n_g, 1.0)
    mu = jnp.mean(b)
    ok = mu > 0
    mu_s = jnp.where(ok, mu, 1.0)
    den = n * a * (a - 1.0)
    between = jnp.sum(jnp.where(n_g > 0, n_g * ((mu_g / mu_s) ** a - 1.0), 0.0)) / den
    within = (jnp.sum((b / mu_s) ** a) - jnp.sum(n_g * (mu_g / mu_s) ** a)) / den
    nan = jnp.isnan(mu)
    return jnp.where(nan, jnp.nan, jnp.where(ok, within, 0.0)), jnp.where(nan, jnp.nan, jnp.where(ok, between, 0.0))


def individual_unfairness(y_true, y_pred, groups, num_groups: int | None = None, alpha: float = 2.0) -> jax.Array:
    """f_I: the within-group part of the generalised entropy of the benefits (:func:`ge_decomposition`).

    Args:
      y_true: ``[N]`` 0/1 labels.
      y_pred: ``[N]`` 0/1 predictions.
      groups: ``[N]`` integer group codes ``0 .. num_groups - 1`` (:func:`cross_groups` for several attributes).
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).
      alpha: the index's ``a``.

    Returns:
      A scalar array.

    Raises:
      ValueError: inputs of different lengths, labels or predictions not 0/1, group codes out of range, an unknown
        ``convention`` (checks that need values run when the inputs are concrete).

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021 (the
      individual-unfairness objective); Speicher et al., "A Unified Approach to Quantifying Algorithmic Unfairness:
      Measuring Individual & Group Unfairness via Inequality Indices", KDD 2018.

    Examples:
      >>> y = jnp.array([1, 0, 1, 0, 1, 0])
      >>> y_hat = jnp.array([1, 1, 0, 0, 1, 0])
      >>> groups = jnp.array([0, 0, 0, 1, 1, 1])
      >>> round(float(jaxkit.fairness.individual_unfairness(y, y_hat, groups)), 4)
      0.1667
    """
    return ge_decomposition(benefits(y_true, y_pred), groups, num_groups, alpha)[0]


def group_unfairness(y_true, y_pred, groups, num_groups: int | None = None, alpha: float = 2.0) -> jax.Array:
    """f_G: the between-group part of the generalised entropy of the benefits (:func:`ge_decomposition`).

    Args:
      y_true: ``[N]`` 0/1 labels.
      y_pred: ``[N]`` 0/1 predictions.
      groups: ``[N]`` integer group codes ``0 .. num_groups - 1`` (:func:`cross_groups` for several attributes).
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).
      alpha: the index's ``a``.

    Returns:
      A scalar array.

    Raises:
      ValueError: inputs of different lengths, labels or predictions not 0/1, group codes out of range, an unknown
        ``convention`` (checks that need values run when the inputs are concrete).

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021 (the
      group-unfairness objective); Speicher et al., "A Unified Approach to Quantifying Algorithmic Unfairness: Measuring
      Individual & Group Unfairness via Inequality Indices", KDD 2018.

    Examples:
      >>> y = jnp.array([1, 0, 1, 0, 1, 0])
      >>> y_hat = jnp.array([1, 1, 0, 0, 1, 0])
      >>> groups = jnp.array([0, 0, 0, 1, 1, 1])
      >>> round(float(jaxkit.fairness.group_unfairness(y, y_hat, groups)), 4)
      0.0
    """
    return ge_decomposition(benefits(y_true, y_pred), groups, num_groups, alpha)[1]


def fairness_objectives(
    y_true,
    prob,
    groups,
    num_groups: int | None = None,
    *,
    alpha: float = 2.0,
    threshold: float = 0.5,
    benefit: str = "label",
) -> jax.Array:
    """The paper's three minimised objectives ``[error, f_I, f_G]`` for one model.

    ``error`` is the mean squared error of the predicted probability of the positive class against the 0/1
    label (our reading of the paper's "MSE"); benefits use the predicted label ``prob > threshold``
    (``benefit="label"``, default) or the probability itself (``benefit="score"``).

    Args:
      y_true: ``[N]`` 0/1 labels.
      prob: ``[N]`` predicted probabilities of the positive class.
      groups: ``[N]`` integer group codes.
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).
      alpha: the entropy index's ``a``.
      threshold: the decision threshold of ``benefit="label"``.
      benefit: ``"label"`` or ``"score"``.

    Returns:
      ``[3]`` array ``[error, f_I, f_G]``.

    Raises:
      ValueError: probabilities outside ``[0, 1]`` (when concrete), an unknown ``benefit``; as
        :func:`ge_decomposition`.

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021 (its three
      objectives).

    Examples:
      >>> y = jnp.array([1, 0, 1, 0, 1, 0])
      >>> y_hat = jnp.array([1, 1, 0, 0, 1, 0])
      >>> groups = jnp.array([0, 0, 0, 1, 1, 1])
      >>> prob = jnp.array([0.9, 0.6, 0.4, 0.2, 0.8, 0.1])
      >>> print(np.asarray(jaxkit.fairness.fairness_objectives(y, prob, groups), float).round(4))
      [0.1367 0.1667 0.    ]
    """
    if benefit not in ("label", "score"):
        raise ValueError(f"`benefit` must be 'label' or 'score', got {benefit!r}.")
    y = _c.per_example(y_true, "y_true", dtype=jnp.float32, values="binary")
    p = _c.per_example(prob, "prob", y.shape[0], jnp.float32, values="unit")
    yhat = (p > threshold).astype(jnp.float32) if benefit == "label" else p
    within, between = ge_decomposition(yhat - y + 1.0, groups, num_groups, alpha)
    return jnp.stack([jnp.mean((p - y) ** 2), within, between])


def group_rates(y_true, y_pred, groups, num_groups: int | None = None) -> dict[str, jax.Array]:
    """Per-group rates: ``count``, ``selection_rate``, ``accuracy``, ``tpr``, ``fpr`` (NaN where undefined).

    Args:
      y_true: ``[N]`` 0/1 labels.
      y_pred: ``[N]`` 0/1 predictions.
      groups: ``[N]`` integer group codes ``0 .. num_groups - 1`` (:func:`cross_groups` for several attributes).
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).

    Returns:
      A dict of ``[G]`` arrays.

    Raises:
      ValueError: inputs of different lengths, labels or predictions not 0/1, group codes out of range, an unknown
        ``convention`` (checks that need values run when the inputs are concrete).

    References:
      Weerts et al., "Fairlearn: Assessing and Improving Fairness of AI Systems", JMLR 24, 2023 (fairlearn.metrics)
      (``MetricFrame`` by group).

    Examples:
      >>> y = jnp.array([1, 0, 1, 0, 1, 0])
      >>> y_hat = jnp.array([1, 1, 0, 0, 1, 0])
      >>> groups = jnp.array([0, 0, 0, 1, 1, 1])
      >>> r = jaxkit.fairness.group_rates(y, y_hat, groups)
      >>> print(np.asarray(r["tpr"]), np.asarray(r["fpr"]))
      [0.5 1. ] [1. 0.]
    """
    y = _c.per_example(y_true, "y_true", dtype=jnp.float32, values="binary")
    p = _c.per_example(y_pred, "y_pred", y.shape[0], jnp.float32, values="binary")
    g, k = _groups(groups, y.shape[0], num_groups)

    def seg(x):
        return jax.ops.segment_sum(x, g, num_segments=k)

    def ratio(a, b):
        return jnp.where(b > 0, a / jnp.where(b > 0, b, 1.0), jnp.nan)

    count = seg(jnp.ones_like(y))
    pos, neg = seg(y), seg(1.0 - y)
    bad = jnp.isnan(y).any() | jnp.isnan(p).any()  # a NaN input (inside a trace) makes every rate NaN
    rates = {
        "selection_rate": ratio(seg(p), count),
        "accuracy": ratio(seg((p == y) * 1.0), count),
        "tpr": ratio(seg(p * y), pos),
        "fpr": ratio(seg(p * (1.0 - y)), neg),
    }
    return {"count": count} | {k_: jnp.where(bad, jnp.nan, v) for k_, v in rates.items()}


CONVENTIONS = ("fairlearn", "defined_only")


def _summary_rates(y_true, y_pred, groups, num_groups, convention):
    """Per-group rates for the summary metrics, NaN for groups that take no part.

    Groups without members (possible when ``num_groups`` exceeds the codes present) never take part: fairlearn
    has no such group. ``"fairlearn"`` (default): a rate that is undefined for a present group (TPR without
    positives, FPR without negatives) counts as 0, as fairlearn's confusion-matrix rates do. ``"defined_only"``:
    such groups are left out of that rate's summary.
    """
    _c.one_of(convention, "convention", CONVENTIONS)
    r = group_rates(y_true, y_pred, groups, num_groups)
    present = r["count"] > 0
    out = {}
    for name in ("selection_rate", "tpr", "fpr"):
        v = r[name]
        if convention == "fairlearn":
            nan_input = jnp.isnan(r["accuracy"]) & present  # group_rates' NaN for NaN input (inside a trace)
            v = jnp.where(jnp.isnan(v) & ~nan_input, 0.0, v)
        out[name] = jnp.where(present, v, jnp.nan)
    return out


def _spread(x):  # largest minus smallest over the groups that take part (NaN if none does)
    ok = ~jnp.isnan(x)
    return jnp.where(ok.any(), jnp.max(jnp.where(ok, x, -jnp.inf)) - jnp.min(jnp.where(ok, x, jnp.inf)), jnp.nan)


def _ratio(x, convention):  # smallest over largest; fairlearn: 0 / 0 is NaN, "defined_only": 0
    ok = ~jnp.isnan(x)
    lo, hi = jnp.min(jnp.where(ok, x, jnp.inf)), jnp.max(jnp.where(ok, x, -jnp.inf))
    zero = jnp.nan if convention == "fairlearn" else 0.0
    return jnp.where(ok.any(), jnp.where(hi > 0, lo / jnp.where(hi > 0, hi, 1.0), zero), jnp.nan)


def _py_max(a, b):  # Python's max([a, b]) (fairlearn's worst case): b only if b > a, so a NaN in front wins
    return jnp.where(b > a, b, a)


def _py_min(a, b):
    return jnp.where(b < a, b, a)


def demographic_parity_difference(
    y_true, y_pred, groups, num_groups: int | None = None, *, convention: str = "fairlearn"
) -> jax.Array:
    """Largest minus smallest selection rate over groups (fairlearn's ``between_groups`` difference).

    ``max_g P(yhat = 1 | g) - min_g P(yhat = 1 | g)``; groups with no members are ignored.

    Args:
      y_true: ``[N]`` 0/1 labels.
      y_pred: ``[N]`` 0/1 predictions.
      groups: ``[N]`` integer group codes ``0 .. num_groups - 1`` (:func:`cross_groups` for several attributes).
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).
      convention: ``"fairlearn"`` (fairlearn's handling of undefined rates) or ``"defined_only"``.

    Returns:
      A scalar array.

    Raises:
      ValueError: inputs of different lengths, labels or predictions not 0/1, group codes out of range, an unknown
        ``convention`` (checks that need values run when the inputs are concrete).

    References:
      Weerts et al., "Fairlearn: Assessing and Improving Fairness of AI Systems", JMLR 24, 2023 (fairlearn.metrics);
      Dwork et al., "Fairness Through Awareness", ITCS 2012 (statistical parity).

    Examples:
      >>> y = jnp.array([1, 0, 1, 0, 1, 0])
      >>> y_hat = jnp.array([1, 1, 0, 0, 1, 0])
      >>> groups = jnp.array([0, 0, 0, 1, 1, 1])
      >>> round(float(jaxkit.fairness.demographic_parity_difference(y, y_hat, groups)), 4)
      0.3333
    """
    return _spread(_summary_rates(y_true, y_pred, groups, num_groups, convention)["selection_rate"])


def demographic_parity_ratio(
    y_true, y_pred, groups, num_groups: int | None = None, *, convention: str = "fairlearn"
) -> jax.Array:
    """Smallest over largest selection rate over groups.

    When no group is ever selected (0 / 0): NaN, as fairlearn (``convention="defined_only"``: 0).

    Args:
      y_true: ``[N]`` 0/1 labels.
      y_pred: ``[N]`` 0/1 predictions.
      groups: ``[N]`` integer group codes ``0 .. num_groups - 1`` (:func:`cross_groups` for several attributes).
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).
      convention: ``"fairlearn"`` (fairlearn's handling of undefined rates) or ``"defined_only"``.

    Returns:
      A scalar array.

    Raises:
      ValueError: inputs of different lengths, labels or predictions not 0/1, group codes out of range, an unknown
        ``convention`` (checks that need values run when the inputs are concrete).

    References:
      Weerts et al., "Fairlearn: Assessing and Improving Fairness of AI Systems", JMLR 24, 2023 (fairlearn.metrics).

    Examples:
      >>> y = jnp.array([1, 0, 1, 0, 1, 0])
      >>> y_hat = jnp.array([1, 1, 0, 0, 1, 0])
      >>> groups = jnp.array([0, 0, 0, 1, 1, 1])
      >>> round(float(jaxkit.fairness.demographic_parity_ratio(y, y_hat, groups)), 4)
      0.5
    """
    return _ratio(_summary_rates(y_true, y_pred, groups, num_groups, convention)["selection_rate"], convention)


def equalized_odds_difference(
    y_true, y_pred, groups, num_groups: int | None = None, *, convention: str = "fairlearn"
) -> jax.Array:
    """The larger of the TPR spread and the FPR spread over groups (fairlearn's ``worst_case``).

    With ``convention="fairlearn"`` a group without positives has TPR 0 (without negatives FPR 0), as in fairlearn;
    ``"defined_only"`` leaves such groups out of that rate.

    Args:
      y_true: ``[N]`` 0/1 labels.
      y_pred: ``[N]`` 0/1 predictions.
      groups: ``[N]`` integer group codes ``0 .. num_groups - 1`` (:func:`cross_groups` for several attributes).
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).
      convention: ``"fairlearn"`` (fairlearn's handling of undefined rates) or ``"defined_only"``.

    Returns:
      A scalar array.

    Raises:
      ValueError: inputs of different lengths, labels or predictions not 0/1, group codes out of range, an unknown
        ``convention`` (checks that need values run when the inputs are concrete).

    References:
      Hardt, Price & Srebro, "Equality of Opportunity in Supervised Learning", NeurIPS 2016 (equalized odds); Weerts et
      al., "Fairlearn: Assessing and Improving Fairness of AI Systems", JMLR 24, 2023 (fairlearn.metrics).

    Examples:
      >>> y = jnp.array([1, 0, 1, 0, 1, 0])
      >>> y_hat = jnp.array([1, 1, 0, 0, 1, 0])
      >>> groups = jnp.array([0, 0, 0, 1, 1, 1])
      >>> round(float(jaxkit.fairness.equalized_odds_difference(y, y_hat, groups)), 4)
      1.0
    """
    r = _summary_rates(y_true, y_pred, groups, num_groups, convention)
    return _py_max(_spread(r["tpr"]), _spread(r["fpr"]))


def equalized_odds_ratio(
    y_true, y_pred, groups, num_groups: int | None = None, *, convention: str = "fairlearn"
) -> jax.Array:
    """The smaller of the TPR ratio and the FPR ratio over groups (fairlearn's ``worst_case``).

    A 0 / 0 ratio is NaN and, as fairlearn's Python ``min``, wins only in first place (the TPR one).

    Args:
      y_true: ``[N]`` 0/1 labels.
      y_pred: ``[N]`` 0/1 predictions.
      groups: ``[N]`` integer group codes ``0 .. num_groups - 1`` (:func:`cross_groups` for several attributes).
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).
      convention: ``"fairlearn"`` (fairlearn's handling of undefined rates) or ``"defined_only"``.

    Returns:
      A scalar array.

    Raises:
      ValueError: inputs of different lengths, labels or predictions not 0/1, group codes out of range, an unknown
        ``convention`` (checks that need values run when the inputs are concrete).

    References:
      Hardt, Price & Srebro, "Equality of Opportunity in Supervised Learning", NeurIPS 2016; Weerts et al., "Fairlearn:
      Assessing and Improving Fairness of AI Systems", JMLR 24, 2023 (fairlearn.metrics).

    Examples:
      >>> y = jnp.array([1, 0, 1, 0, 1, 0])
      >>> y_hat = jnp.array([1, 1, 0, 0, 1, 0])
      >>> groups = jnp.array([0, 0, 0, 1, 1, 1])
      >>> round(float(jaxkit.fairness.equalized_odds_ratio(y, y_hat, groups)), 4)
      0.0
    """
    r = _summary_rates(y_true, y_pred, groups, num_groups, convention)
    return _py_min(_ratio(r["tpr"], convention), _ratio(r["fpr"], convention))


def equal_opportunity_difference(
    y_true, y_pred, groups, num_groups: int | None = None, *, convention: str = "fairlearn"
) -> jax.Array:
    """Spread of the true-positive rate over groups.

    ``max_g TPR_g - min_g TPR_g``; a group without positives: TPR 0 under ``"fairlearn"``, left out under
    ``"defined_only"``.

    Args:
      y_true: ``[N]`` 0/1 labels.
      y_pred: ``[N]`` 0/1 predictions.
      groups: ``[N]`` integer group codes ``0 .. num_groups - 1`` (:func:`cross_groups` for several attributes).
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).
      convention: ``"fairlearn"`` (fairlearn's handling of undefined rates) or ``"defined_only"``.

    Returns:
      A scalar array.

    Raises:
      ValueError: inputs of different lengths, labels or predictions not 0/1, group codes out of range, an unknown
        ``convention`` (checks that need values run when the inputs are concrete).

    References:
      Hardt, Price & Srebro, "Equality of Opportunity in Supervised Learning", NeurIPS 2016 (equal opportunity); Weerts
      et al., "Fairlearn: Assessing and Improving Fairness of AI Systems", JMLR 24, 2023 (fairlearn.metrics).

    Examples:
      >>> y = jnp.array([1, 0, 1, 0, 1, 0])
      >>> y_hat = jnp.array([1, 1, 0, 0, 1, 0])
      >>> groups = jnp.array([0, 0, 0, 1, 1, 1])
      >>> round(float(jaxkit.fairness.equal_opportunity_difference(y, y_hat, groups)), 4)
      0.5
    """
    return _spread(_summary_rates(y_true, y_pred, groups, num_groups, convention)["tpr"])


def equal_opportunity_ratio(
    y_true, y_pred, groups, num_groups: int | None = None, *, convention: str = "fairlearn"
) -> jax.Array:
    """Smallest over largest true-positive rate over groups (fairlearn's ``equal_opportunity_ratio``).

    ``min_g TPR_g / max_g TPR_g``; 0 / 0 is NaN under ``"fairlearn"``.

    Args:
      y_true: ``[N]`` 0/1 labels.
      y_pred: ``[N]`` 0/1 predictions.
      groups: ``[N]`` integer group codes ``0 .. num_groups - 1`` (:func:`cross_groups` for several attributes).
      num_groups: the number of groups (static; inferred from concrete codes when ``None``).
      convention: ``"fairlearn"`` (fairlearn's handling of undefined rates) or ``"defined_only"``.

    Returns:
      A scalar array.

    Raises:
      ValueError: inputs of different lengths, labels or predictions not 0/1, group codes out of range, an unknown
        ``convention`` (checks that need values run when the inputs are concrete).

    References:
      Hardt, Price & Srebro, "Equality of Opportunity in Supervised Learning", NeurIPS 2016; Weerts et al., "Fairlearn:
      Assessing and Improving Fairness of AI Systems", JMLR 24, 2023 (fairlearn.metrics).

    Examples:
      >>> y = jnp.array([1, 0, 1, 0, 1, 0])
      >>> y_hat = jnp.array([1, 1, 0, 0, 1, 0])
      >>> groups = jnp.array([0, 0, 0, 1, 1, 1])
      >>> round(float(jaxkit.fairness.equal_opportunity_ratio(y, y_hat, groups)), 4)
      0.5
    """
    return _ratio(_summary_rates(y_true, y_pred, groups, num_groups, convention)["tpr"], convention)
