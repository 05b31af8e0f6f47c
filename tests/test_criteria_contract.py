"""What every pruning criterion of ``prune.CRITERIA`` must satisfy: one finite score per channel of every prunable
group, min-max normalised to [0, 1], and equivariance -- reordering a layer's channels (with everything coupled to
them: BatchNorm, the next layer's inputs), which leaves the network's function unchanged, reorders its scores the
same way. The values themselves are checked against float64 NumPy in test_prune.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkit import models, prune
from jaxkit import tree as jtree

GROUP = "params/Conv_1"

# one worker runs the whole module, so the VGG and its statistics (the module fixture) are built once
pytestmark = pytest.mark.xdist_group("criteria_contract")


@pytest.fixture(scope="module")
def setup(digits):
    m = models.VGG(models.DIGITS_CFG)
    x0 = jnp.zeros((1, 8, 8, 1))
    v = m.init(jax.random.key(0), x0)
    v = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.key(1), a.shape), v)  # no ties
    v["batch_stats"] = jax.tree.map(jnp.abs, v["batch_stats"])
    g = prune.build_graph(m, v, x0)
    xs = jnp.asarray(digits.train.x[:64].reshape(2, 32, 8, 8, 1))
    ys = jnp.asarray(digits.train.y[:64].reshape(2, 32))
    perm = np.random.default_rng(0).permutation(g.group(GROUP).size)
    flat = jtree.flatten(v)
    for mem in g.group(GROUP).members:
        flat[mem.path] = jnp.take(flat[mem.path], perm, axis=mem.axis)
    vp = jtree.unflatten(flat)
    return m, g, xs, ys, perm, (v, prune.collect_stats(m, v, xs, ys, g)), (vp, prune.collect_stats(m, vp, xs, ys, g))


def test_the_permuted_network_computes_the_same_function(setup):
    m, g, xs, ys, perm, (v, _), (vp, _) = setup
    np.testing.assert_allclose(m.apply(vp, xs[0]), m.apply(v, xs[0]), atol=1e-5)


@pytest.mark.parametrize("name", prune.CRITERIA)
def test_one_normalised_finite_score_per_channel(setup, name):
    m, g, xs, ys, perm, (v, st), _ = setup
    sc = prune.scores(name, g, v, st, bins=8)
    assert set(sc) == {grp.name for grp in g.prunable}
    for gname, s in sc.items():
        s = np.asarray(s)
        assert s.shape == (g.group(gname).size,) and np.all(np.isfinite(s))
        assert s.min() == 0.0 and s.max() == 1.0


@pytest.mark.parametrize("name", prune.CRITERIA)
def test_scores_follow_a_reordering_of_the_channels(setup, name):
    """Same network in two channel orders; float32 sums in another order: tolerance 1e-4 on [0, 1] scores."""
    m, g, xs, ys, perm, (v, st), (vp, stp) = setup
    s = np.asarray(prune.scores(name, g, v, st, bins=8, groups=[GROUP])[GROUP])
    sp = np.asarray(prune.scores(name, g, vp, stp, bins=8, groups=[GROUP])[GROUP])
    np.testing.assert_allclose(sp, s[perm], atol=1e-4)


def test_weight_and_data_criteria_partition_the_registry():
    from jaxkit.prune.criteria import DATA_CRITERIA, WEIGHT_CRITERIA

    assert set(WEIGHT_CRITERIA) | set(DATA_CRITERIA) == set(prune.CRITERIA)
    assert not set(WEIGHT_CRITERIA) & set(DATA_CRITERIA)


def test_fpgm_and_fermat_are_different_scores_that_rank_filters_alike(setup):
    """Why prune_digits gives FPGM and Fermat the same accuracy in every seed: the sum of distances to all other
    filters (FPGM) and the distance to their geometric median (Fermat) are different numbers but, for filters
    spread roughly evenly around their centre in 9-288 dimensions, nearly the same order (the sum is close to
    N sqrt(d_i^2 + s^2), a monotone function of the distance d_i to the centre) -- so equal-ratio masks coincide."""
    from scipy.stats import spearmanr

    m, g, xs, ys, perm, (v, _), _ = setup
    raw = prune.all_scores(g, v, criteria=["fpgm", "fermat"], normalize=False)
    for gname in raw["fpgm"]:
        a, b = np.asarray(raw["fpgm"][gname]), np.asarray(raw["fermat"][gname])
        assert not np.allclose(a / a.max(), b / b.max(), atol=1e-3)  # two criteria, not one computed twice
        assert spearmanr(a, b)[0] > 0.98


def test_the_compiled_scorer_cache_is_bounded_and_least_recently_used(setup, monkeypatch):
    from jaxkit.prune import criteria

    m, g, xs, ys, perm, (v, _), _ = setup
    monkeypatch.setattr(criteria, "_CACHE", type(criteria._CACHE)())
    monkeypatch.setattr(criteria, "_CACHE_SIZE", 2)
    for name in ("l1", "l2", "fpgm"):
        prune.scores(name, g, v, groups=[GROUP])
    assert len(criteria._CACHE) == 2  # "l1" evicted
    plans = [key[1] for key in criteria._CACHE]
    assert plans == [(("l2", GROUP),), (("fpgm", GROUP),)]
    prune.scores("l2", g, v, groups=[GROUP])  # a hit moves it to the end
    assert [key[1] for key in criteria._CACHE] == [(("fpgm", GROUP),), (("l2", GROUP),)]
