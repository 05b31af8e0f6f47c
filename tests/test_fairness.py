"""Fairness measures against float64 NumPy and fairlearn."""

import fairlearn.metrics as fl
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkit import fairness as fair

RNG = np.random.default_rng(0)


def _ge_np(b, a):
    b = np.asarray(b, np.float64)
    mu = b.mean()
    return np.mean((b / mu) ** a - 1) / (a * (a - 1))


def _decomp_np(b, g, a):
    """Speicher et al.'s definition with each group's own size and mean, the naive way (float64)."""
    b, n, mu = np.asarray(b, np.float64), len(b), np.mean(b)
    within = sum(
        (np.sum(g == k) / n) * (b[g == k].mean() / mu) ** a * _ge_np(b[g == k], a)
        for k in np.unique(g)
        if b[g == k].mean() > 0
    )
    between = sum(np.sum(g == k) * ((b[g == k].mean() / mu) ** a - 1) for k in np.unique(g)) / (n * a * (a - 1))
    return within, between


@pytest.mark.parametrize("alpha", [2.0, 0.5, 3.0])
def test_ge_and_decomposition_equal_float64_numpy(alpha):
    y = RNG.integers(0, 2, 500)
    yhat = RNG.integers(0, 2, 500)
    g = RNG.integers(0, 4, 500)
    b = fair.benefits(y, yhat)
    assert set(np.unique(np.asarray(b)).tolist()) <= {0.0, 1.0, 2.0}
    ge = float(fair.generalized_entropy_index(b, alpha))
    assert ge == pytest.approx(_ge_np(b, alpha), rel=1e-5)
    within, between = map(float, fair.ge_decomposition(b, g, 4, alpha))
    w_np, b_np = _decomp_np(np.asarray(b), g, alpha)
    assert within == pytest.approx(w_np, rel=1e-4) and between == pytest.approx(b_np, rel=1e-4, abs=1e-7)
    assert within + between == pytest.approx(ge, rel=1e-5)  # GE = f_I + f_G


def test_group_with_zero_benefits_stays_finite():
    # group 1 has only false negatives (b = 0): the naive within-group index is 0/0
    y = np.array([1, 1, 1, 0, 1, 0, 1, 0])
    yhat = np.array([0, 0, 0, 0, 1, 1, 1, 0])
    g = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    b = fair.benefits(y, yhat)
    w, bt = map(float, fair.ge_decomposition(b, g, 2))
    assert np.isfinite([w, bt]).all()
    assert w + bt == pytest.approx(float(fair.generalized_entropy_index(b)), rel=1e-6)
    # hand-worked: b = [0,0,0,1,1,2,1,1], mu = 6/8; group 0: mu_0 = 6/5, group 1: mu_1 = 0
    mu, den = 0.75, 8 * 2 * 1
    between = (5 * ((1.2 / mu) ** 2 - 1) + 3 * (0 - 1)) / den
    assert bt == pytest.approx(between, rel=1e-6)
    assert float(fair.generalized_entropy_index(jnp.zeros(5))) == 0.0


def test_crossed_groups_and_objectives_jit():
    a = RNG.integers(0, 2, 300)
    r = RNG.integers(0, 3, 300)
    codes, k = fair.cross_groups(a, r, sizes=[2, 3])
    assert k == 6 and np.array_equal(np.asarray(codes), a * 3 + r)
    y = RNG.integers(0, 2, 300).astype(np.float32)
    p = RNG.random(300).astype(np.float32)
    f = jax.jit(lambda y, p, g: fair.fairness_objectives(y, p, g, 6))(y, p, codes)
    assert float(f[0]) == pytest.approx(np.mean((p - y) ** 2), rel=1e-5)
    b = (p > 0.5) - y + 1.0
    w, bt = _decomp_np(b, np.asarray(codes), 2.0)
    np.testing.assert_allclose(np.asarray(f[1:]), [w, bt], rtol=1e-4, atol=1e-7)
    fs = fair.fairness_objectives(y, p, codes, 6, benefit="score")
    assert float(fs[1] + fs[2]) == pytest.approx(_ge_np(p - y + 1, 2.0), rel=1e-4)


def test_group_metrics_equal_fairlearn():
    for seed in range(3):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, 400)
        yhat = (rng.random(400) < 0.3 + 0.2 * (y == 1)).astype(int)
        g = rng.integers(0, 3 + seed, 400)
        k = 3 + seed
        for ours, theirs in [
            (fair.demographic_parity_difference, fl.demographic_parity_difference),
            (fair.demographic_parity_ratio, fl.demographic_parity_ratio),
            (fair.equalized_odds_difference, fl.equalized_odds_difference),
            (fair.equal_opportunity_difference, fl.equal_opportunity_difference),
        ]:
            assert float(ours(y, yhat, g, k)) == pytest.approx(theirs(y, yhat, sensitive_features=g), abs=1e-6)
        mf = fl.MetricFrame(
            metrics={
                "selection_rate": fl.selection_rate,
                "tpr": fl.true_positive_rate,
                "fpr": fl.false_positive_rate,
                "count": fl.count,
            },
            y_true=y,
            y_pred=yhat,
            sensitive_features=g,
        )
        rates = fair.group_rates(y, yhat, g, k)
        for name in ("selection_rate", "tpr", "fpr", "count"):
            np.testing.assert_allclose(np.asarray(rates[name]), mf.by_group[name].to_numpy(float), rtol=1e-6)
        acc = np.array([np.mean(y[g == i] == yhat[g == i]) for i in range(k)])
        np.testing.assert_allclose(np.asarray(rates["accuracy"]), acc, rtol=1e-6)


def test_empty_groups_are_ignored():
    y = np.array([0, 1, 1, 0])
    yhat = np.array([0, 1, 0, 0])
    g = np.array([0, 0, 2, 2])  # group 1 has no members
    assert float(fair.demographic_parity_difference(y, yhat, g, 3)) == pytest.approx(0.5)
    assert np.isnan(float(fair.group_rates(y, yhat, g, 3)["selection_rate"][1]))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fair.generalized_entropy_index(jnp.ones(3), alpha=1), "alpha"),
        (lambda: fair.generalized_entropy_index(jnp.ones(3), alpha=0), "alpha"),
        (lambda: fair.benefits(jnp.ones(3), jnp.ones(4)), "y_pred.*4.*3"),
        (lambda: fair.ge_decomposition(jnp.ones(3), jnp.zeros(4, int)), "groups"),
        (lambda: fair.ge_decomposition(jnp.ones(3), jnp.array([0, 1, 5]), 2), "codes"),
        (lambda: fair.demographic_parity_difference(jnp.ones(3), jnp.ones(3), jnp.ones((3, 1), int)), "groups"),
        (lambda: fair.fairness_objectives(jnp.ones(3), jnp.ones(3), jnp.zeros(3, int), 1, benefit="raw"), "benefit"),
        (lambda: jax.jit(lambda g: fair.group_rates(jnp.ones(3), jnp.ones(3), g))(jnp.zeros(3, int)), "num_groups"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_single_group_warns():
    with pytest.warns(RuntimeWarning, match="one group"):
        w, b = fair.ge_decomposition(jnp.array([0.0, 1.0, 2.0]), jnp.zeros(3, int))
    assert float(b) == 0.0


@pytest.mark.parametrize("shared", [True, False])
def test_moea_fitness_vmapped_equals_per_member(shared):
    x = jnp.asarray(RNG.standard_normal((120, 5)), jnp.float32)
    y = (x[:, 0] > 0).astype(jnp.int32)  # learnable
    g = jnp.asarray(RNG.integers(0, 3, 120))
    pop = jax.vmap(lambda k: fair.init_mlp(k, 5, 8))(jax.random.split(jax.random.key(0), 3))
    fit = fair.moea_fitness(("error", "group"), num_groups=3, steps=20, batch_size=16, shared_batches=shared)
    key = jax.random.key(1)
    objs, trained = jax.jit(jax.vmap(lambda p: fit(p, key, (x, y), (x, y, g))))(pop)
    assert objs.shape == (3, 2)
    for i in range(3):
        o, t = jax.jit(fit)(jax.tree.map(lambda a: a[i], pop), key, (x, y), (x, y, g))
        np.testing.assert_allclose(np.asarray(o), np.asarray(objs[i]), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            np.asarray(t["Dense_0"]["kernel"]), np.asarray(trained["Dense_0"]["kernel"][i]), rtol=1e-5, atol=1e-6
        )
    # training lowers the training loss: the local search does something
    before = jax.vmap(lambda p: fair.model_objectives(p, x, y, g, 3)[0])(pop)
    assert bool(jnp.all(objs[:, 0] < before)), (objs[:, 0], before)
    with pytest.raises(ValueError, match="objectives"):
        fair.moea_fitness(("error", "fairness"), num_groups=3)


DEGENERATE = {  # (y_true, y_pred, groups): the cases where conventions differ
    "no positives in a group": ([1, 0, 1, 0, 0, 0, 0], [1, 0, 0, 1, 1, 0, 1], [0, 0, 0, 0, 1, 1, 1]),
    "no negatives in a group": ([1, 0, 1, 0, 1, 1, 1], [1, 0, 0, 1, 1, 0, 1], [0, 0, 0, 0, 1, 1, 1]),
    "a single-member group": ([1, 0, 1, 0, 1, 0, 1], [1, 0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 1, 1, 2]),
    "nothing selected": ([1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]),
    "everything selected": ([1, 0, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]),
    "one class only": ([1, 1, 1, 1, 1, 1], [1, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1]),
}
PAIRS = [
    ("demographic_parity_difference",) * 2,
    ("demographic_parity_ratio",) * 2,
    ("equalized_odds_difference",) * 2,
    ("equalized_odds_ratio",) * 2,
    ("equal_opportunity_difference",) * 2,
    ("equal_opportunity_ratio",) * 2,
]


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_group_metrics_equal_fairlearn_on_degenerate_groups(case):
    import warnings

    y, p, g = (np.asarray(v) for v in DEGENERATE[case])
    for ours, theirs in PAIRS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fairlearn / sklearn warn about 0 / 0 and one-class confusion matrices
            ref = getattr(fl, theirs)(y, p, sensitive_features=g)
        got = float(getattr(fair, ours)(y, p, g))
        assert (np.isnan(ref) and np.isnan(got)) or got == pytest.approx(ref, abs=1e-6), (ours, got, ref)


def test_the_defined_only_convention_leaves_undefined_rates_out():
    y, p, g = (np.asarray(v) for v in DEGENERATE["no positives in a group"])
    # fairlearn: group 1 has TPR 0 (no positives) -> spread 0.5; defined_only: only group 0's TPR (0.5) -> 0
    assert float(fair.equal_opportunity_difference(y, p, g)) == pytest.approx(0.5)
    assert float(fair.equal_opportunity_difference(y, p, g, convention="defined_only")) == 0.0
    nothing = [np.asarray(v) for v in DEGENERATE["nothing selected"]]
    assert np.isnan(float(fair.demographic_parity_ratio(*nothing)))
    assert float(fair.demographic_parity_ratio(*nothing, convention="defined_only")) == 0.0
    with pytest.raises(ValueError, match="`convention` must be one of"):
        fair.demographic_parity_ratio(*nothing, convention="sklearn")


def test_learner_and_crossing_refuse_bad_settings():
    with pytest.raises(ValueError, match=r"`codes\[0\]` \(attribute 0\) must lie in \[0, 2\)"):
        fair.cross_groups(jnp.array([0, 2]), sizes=(2,))  # code 2 would collide with another combination
    with pytest.raises(ValueError, match=r"`codes\[0\]` \(attribute 0\) must lie in \[0, 2\), got range \[-1, 0\]"):
        fair.cross_groups(jnp.array([0, -1]), jnp.array([0, 1]), sizes=(2, 2))
    with pytest.raises(ValueError, match="`num_features` must be an integer >= 1"):
        fair.init_mlp(jax.random.key(0), 0)
    params = fair.init_mlp(jax.random.key(0), 3, hidden=4)
    x, y = jnp.ones((4, 3)), jnp.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="`learning_rate` must be a finite number > 0"):
        fair.partial_train(jax.random.key(0), params, x, y, learning_rate=0.0)
    same = fair.partial_train(jax.random.key(0), params, x, y, steps=0)  # no local search: params unchanged
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(params)))
    for kw, msg in ((dict(num_groups=0), "`num_groups`"), (dict(num_groups=2, batch_size=0), "`batch_size`")):
        with pytest.raises(ValueError, match=msg):
            fair.moea_fitness(**kw)
