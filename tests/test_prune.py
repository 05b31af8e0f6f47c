"""jaxkit.prune: graph, costs, masks, removal, criteria, blending blocks -- against independent references."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize
import scipy.stats
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from jaxkit import models, prune


class FlatNet(nn.Module):
    """conv -> relu -> flatten -> dense -> relu -> dense (a flatten couples channels with repeats)."""

    @nn.compact
    def __call__(self, x, train=False):
        x = nn.relu(nn.Conv(6, (3, 3))(x))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(7)(x))
        return nn.Dense(3)(x)


class ConcatNet(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        a = nn.Conv(4, (3, 3))(x)
        b = nn.Conv(4, (3, 3))(x)
        x = jnp.concatenate([a, b], axis=-1)
        c = nn.Conv(5, (3, 3))(nn.relu(x))
        return nn.Dense(2)(c.mean((1, 2)))


def _init(model, shape, seed=0):
    x = jnp.zeros((1,) + shape)
    return model.init(jax.random.key(seed), x), x


def _randomize(v, seed=1):
    """Random params *and* BN statistics so that no entry is special."""
    leaves, treedef = jax.tree.flatten(v)
    keys = jax.random.split(jax.random.key(seed), len(leaves))

    def draw(k, x):
        scale = 1.0 / np.sqrt(np.prod(x.shape[:-1])) if x.ndim > 1 else 1.0  # kernels: fan-in scaling
        return scale * jax.random.uniform(k, x.shape, minval=0.5, maxval=1.5) * jnp.sign(jax.random.normal(k, x.shape))

    new = [draw(k, x) for k, x in zip(keys, leaves)]
    out = jax.tree.unflatten(treedef, new)
    if "batch_stats" in v:
        out["batch_stats"] = jax.tree.map(jnp.abs, out["batch_stats"])
    return out


@pytest.fixture(scope="module")
def vgg():
    m = models.VGG(models.DIGITS_CFG)
    v, x = _init(m, (8, 8, 1))
    v = _randomize(v)
    return m, v, prune.build_graph(m, v, x)


# --------------------------------------------------------------------------- graph


def test_vgg_groups_couple_conv_bn_and_next_layer(vgg):
    _, _, g = vgg
    assert [gr.name for gr in g.prunable] == [f"params/Conv_{i}" for i in range(4)]
    g0 = g.group("Conv_0")
    paths = {(m.path, m.axis, m.role) for m in g0.members}
    assert paths == {
        ("params/Conv_0/kernel", 3, "out"),
        ("params/BatchNorm_0/scale", 0, "elem"),
        ("params/BatchNorm_0/bias", 0, "elem"),
        ("batch_stats/BatchNorm_0/mean", 0, "elem"),
        ("batch_stats/BatchNorm_0/var", 0, "elem"),
        ("params/Conv_1/kernel", 2, "in"),
    }
    out = g.group("Dense_0")
    assert not out.prunable and out.reason == "model output"


def test_residual_add_merges_producers_option_b():
    m = models.ResNet((2, 1), (4, 8), num_classes=3, shortcut="B")
    v, x = _init(m, (8, 8, 3))
    g = prune.build_graph(m, v, x)
    stage1 = g.group("params/Conv_0")  # stem + both blocks' second convs share the residual stream
    assert set(stage1.producers) == {"params/Conv_0", "params/BasicBlock_0/Conv_1", "params/BasicBlock_1/Conv_1"}
    assert stage1.prunable
    stage2 = g.group("params/BasicBlock_2/Conv_1")
    assert set(stage2.producers) == {"params/BasicBlock_2/Conv_1", "params/BasicBlock_2/Conv_2"}  # projection
    inner = [gr for gr in g.prunable if gr.name.endswith("Conv_0") and "Block" in gr.name]
    assert len(inner) == 3 and all(len(gr.producers) == 1 for gr in inner)


def test_option_a_pad_freezes_residual_streams_only():
    m = models.ResNet((1, 1), (4, 8), num_classes=3, shortcut="A")
    v, x = _init(m, (8, 8, 3))
    g = prune.build_graph(m, v, x)
    assert not g.group("params/Conv_0").prunable and "pad" in g.group("params/Conv_0").reason
    assert {gr.name for gr in g.prunable} == {"params/BasicBlock_0/Conv_0", "params/BasicBlock_1/Conv_0"}


def test_flatten_consumer_has_repeat_and_concat_freezes():
    m = FlatNet()
    v, x = _init(m, (5, 5, 2))
    g = prune.build_graph(m, v, x)
    conv = g.group("Conv_0")
    (inm,) = [mm for mm in conv.members if mm.role == "in"]
    assert inm == prune.Member("params/Dense_0/kernel", 0, "in", 25)
    m2 = ConcatNet()
    v2, x2 = _init(m2, (5, 5, 2))
    g2 = prune.build_graph(m2, v2, x2)
    assert not g2.group("Conv_0").prunable and "concatenate" in g2.group("Conv_0").reason
    assert g2.group("Conv_2").prunable


def test_build_graph_bad_input():
    m = models.VGG(models.DIGITS_CFG)
    v, x = _init(m, (8, 8, 1))
    with pytest.raises(ValueError, match="could not trace"):
        prune.build_graph(m, v, jnp.zeros((1, 8, 8)))
    g = prune.build_graph(m, v, x)
    with pytest.raises(ValueError, match="No channel group named 'Conv_9'"):
        g.group("Conv_9")


# --------------------------------------------------------------------------- cost


def test_resnet56_reference_counts():
    x = jnp.zeros((1, 32, 32, 3))
    for widths, params, macs in (((16, 32, 64), 853_018, 125_485_696), ((8, 16, 32), 214_546, 31_482_176)):
        m = models.resnet56(widths=widths)
        v = jax.eval_shape(m.init, jax.random.key(0), x)
        c = prune.count(prune.build_graph(m, v, x))
        assert (c.params, c.macs) == (params, macs)
        if widths[0] == 16:
            assert prune.count(prune.build_graph(m, v, x), exclude=("BatchNorm",)).params == 848_954


def test_masked_count_equals_count_of_removed_model(vgg):
    m, v, g = vgg
    masks = prune.channel_masks(prune.scores("l1", g, v), ratio=0.5)
    small = prune.remove(g, masks, v)
    counts = prune.kept_counts(g, masks)
    cfg = (counts["params/Conv_0"], counts["params/Conv_1"], "M", counts["params/Conv_2"], counts["params/Conv_3"], "M")
    m2 = models.VGG(cfg)
    c2 = prune.count(prune.build_graph(m2, small, jnp.zeros((1, 8, 8, 1))))
    c1 = prune.count(g, masks)
    assert (c1.params, c1.macs) == (c2.params, c2.macs)
    manual = 9 * 1 * 8 + 9 * 8 * 8 + 9 * 8 * 16 + 9 * 16 * 16 + 16 * 10 + 10 + 2 * (8 + 8 + 16 + 16)
    assert c1.params == manual


# --------------------------------------------------------------------------- masks and removal


def test_channel_masks_layer_global_and_errors():
    s = {"a": jnp.array([0.1, 0.9, 0.5, 0.5]), "b": jnp.array([0.2, 0.3])}
    m = prune.channel_masks(s, ratio=0.5)
    np.testing.assert_array_equal(m["a"], [False, True, True, False])  # tie: earlier index kept
    np.testing.assert_array_equal(m["b"], [False, True])
    mg = prune.channel_masks(s, ratio=0.5, scope="global")
    # removes 0.1, 0.2, then 0.3 would empty "b" below min_keep=1, so the later 0.5 tie goes
    np.testing.assert_array_equal(mg["a"], [False, True, True, False])
    np.testing.assert_array_equal(mg["b"], [False, True])
    assert prune.channel_masks(s, n_keep={"a": 1, "b": 2})["a"].tolist() == [False, True, False, False]
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            prune.channel_masks(s, ratio=bad)
    with pytest.raises(ValueError, match="n_keep"):
        prune.channel_masks(s, n_keep=5)


def test_masked_and_removed_models_agree(vgg):
    m, v, g = vgg
    masks = prune.channel_masks(prune.scores("fpgm", g, v), ratio=0.5)
    vm = dict(v, params=prune.apply_masks(v["params"], prune.expand(g, masks, v["params"])))
    small = prune.remove(g, masks, v)
    counts = prune.kept_counts(g, masks)
    cfg = (counts["params/Conv_0"], counts["params/Conv_1"], "M", counts["params/Conv_2"], counts["params/Conv_3"], "M")
    x = jax.random.uniform(jax.random.key(3), (16, 8, 8, 1))
    np.testing.assert_allclose(models.VGG(cfg).apply(small, x), m.apply(vm, x), atol=1e-5, rtol=1e-5)


def test_removal_through_flatten_and_resnet_inner_channels():
    m = FlatNet()
    v, x = _init(m, (5, 5, 2))
    v = _randomize(v)
    g = prune.build_graph(m, v, x)
    masks = {"params/Conv_0": jnp.array([1, 0, 1, 1, 0, 1], bool), "params/Dense_0": jnp.arange(7) % 2 == 0}
    small = prune.remove(g, masks, v)
    assert small["params"]["Dense_0"]["kernel"].shape == (25 * 4, 4)

    class Small(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(4, (3, 3))(x)).reshape((x.shape[0], -1))
            h = nn.relu(nn.Dense(4)(x))  # created first, so it is Dense_0 as in FlatNet
            return nn.Dense(3)(h)

    xb = jax.random.normal(jax.random.key(0), (3, 5, 5, 2))
    vm = dict(v, params=prune.apply_masks(v["params"], prune.expand(g, masks, v["params"])))
    np.testing.assert_allclose(Small().apply(small, xb), m.apply(vm, xb), atol=1e-5)

    r = models.ResNet((1, 1), (4, 8), num_classes=3)
    vr, xr = _init(r, (8, 8, 3))
    vr = _randomize(vr)
    gr = prune.build_graph(r, vr, xr)
    mk = prune.channel_masks(prune.scores("l2", gr, vr), ratio=0.5)
    small = prune.remove(gr, mk, vr)
    widths = [prune.kept_counts(gr, mk)[f"params/BasicBlock_{i}/Conv_0"] for i in range(2)]
    xb = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))
    vm = dict(vr, params=prune.apply_masks(vr["params"], prune.expand(gr, mk, vr["params"])))
    np.testing.assert_allclose(
        models.ResNet((1, 1), (4, 8), 3, inner_widths=widths).apply(small, xb), r.apply(vm, xb), atol=1e-4, rtol=1e-4
    )


def test_masked_updates_keep_pruned_weights_exactly_zero(vgg):
    m, v, g = vgg
    masks = prune.channel_masks(prune.scores("l1", g, v), ratio=0.5)
    elem = prune.expand(g, masks, v["params"])
    params = prune.apply_masks(v["params"], elem)
    tx = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.1, momentum=0.9), prune.masked_updates(elem))
    state = tx.init(params)
    x = jax.random.uniform(jax.random.key(0), (8, 8, 8, 1))

    @jax.jit
    def step(p, s):
        grads = jax.grad(lambda p: jnp.sum(m.apply(dict(v, params=p), x) ** 2))(p)
        u, s = tx.update(grads, s, p)
        return optax.apply_updates(p, u), s

    for _ in range(5):
        params, state = step(params, state)
    for p, mk in zip(jax.tree.leaves(params), jax.tree.leaves(elem)):
        assert np.all(np.asarray(p)[~np.asarray(mk)] == 0.0)
    moved = np.asarray(params["Conv_0"]["kernel"])[np.asarray(elem["Conv_0"]["kernel"])]
    assert np.any(moved != np.asarray(v["params"]["Conv_0"]["kernel"])[np.asarray(elem["Conv_0"]["kernel"])])
    assert int(state[-1].count) == 5


def test_magnitude_masks_and_sparsity():
    p = {"a": {"kernel": jnp.arange(1.0, 11.0).reshape(2, 5), "bias": jnp.ones(5)}}
    m = prune.magnitude_masks(p, 0.3)
    np.testing.assert_array_equal(np.asarray(m["a"]["kernel"]).ravel(), [False] * 3 + [True] * 7)
    assert bool(jnp.all(m["a"]["bias"]))
    assert prune.sparsity(m) == pytest.approx(3 / 15)


def test_mask_bad_input(vgg):
    _, v, g = vgg
    with pytest.raises(ValueError, match=r"shape \(16,\)"):
        prune.expand(g, {"Conv_0": jnp.ones(5, bool)}, v["params"])
    with pytest.raises(ValueError, match="cannot be pruned: model output"):
        prune.expand(g, {"Dense_0": jnp.ones(10, bool)}, v["params"])
    with pytest.raises(ValueError, match="does not match the graph"):
        prune.expand(g, {"Conv_0": jnp.ones(16, bool)}, {"foo": jnp.ones(3)})
    with pytest.raises(ValueError, match="Conv_0/kernel"):
        prune.apply_masks({"Conv_0": {"kernel": jnp.ones((3, 3))}}, {"Conv_0": {"kernel": jnp.ones((2, 2))}})


def test_apply_masks_is_jittable_and_traced_once(vgg):
    _, v, g = vgg
    elem = prune.expand(g, prune.channel_masks(prune.scores("l1", g, v), ratio=0.25), v["params"])
    f = jax.jit(chex.assert_max_traces(prune.apply_masks, n=1))
    for _ in range(3):
        f(v["params"], elem)


# --------------------------------------------------------------------------- criteria


def _np_filters(w, axis):
    return np.moveaxis(np.asarray(w, np.float64), axis, 0).reshape(w.shape[axis], -1)


def _np_minmax(s):
    s = np.asarray(s, np.float64)
    return (s - s.min()) / (s.max() - s.min())


def test_weight_criteria_against_float64_numpy(vgg):
    _, v, g = vgg
    sc = prune.all_scores(g, v, criteria=["l1", "l2", "fpgm", "fermat", "bn_gamma", "bn_beta"], fermat_iters=200)
    for gr in g.prunable:
        i = gr.name.split("_")[-1]
        f = _np_filters(v["params"][f"Conv_{i}"]["kernel"], 3)
        d = np.linalg.norm(f[:, None] - f[None], axis=-1)
        gm = scipy.optimize.minimize(
            lambda y: np.linalg.norm(f - y, axis=1).sum(), f.mean(0), method="BFGS", options={"gtol": 1e-10}
        ).x
        ref = {
            "l1": np.abs(f).sum(1),
            "l2": np.linalg.norm(f, axis=1),
            "fpgm": d.sum(1),
            "fermat": np.linalg.norm(f - gm, axis=1),
            "bn_gamma": np.abs(v["params"][f"BatchNorm_{i}"]["scale"]),
            "bn_beta": np.abs(v["params"][f"BatchNorm_{i}"]["bias"]),
        }
        for c, r in ref.items():
            np.testing.assert_allclose(sc[c][gr.name], _np_minmax(r), atol=2e-4, err_msg=f"{c} {gr.name}")
            assert float(jnp.min(sc[c][gr.name])) == 0.0 and float(jnp.max(sc[c][gr.name])) == 1.0


def test_data_criteria_against_numpy(vgg, digits):
    m, v, g = vgg
    xs = jnp.asarray(digits.train.x[:96].reshape(3, 32, 8, 8, 1))
    ys = jnp.asarray(digits.train.y[:96].reshape(3, 32))
    st = prune.collect_stats(m, v, xs, ys, g)
    sc = prune.all_scores(
        g, v, st, criteria=["apoz", "entropy", "taylor_l1", "taylor_l2", "taylor_bn_gamma", "taylor_bn_beta"], bins=8
    )
    # Reference: per-batch gradients and activations from a plain loop (no scan), numpy reductions in float64.
    acts, gws = {}, []
    for b in range(3):

        def loss(p):
            out, inter = m.apply(dict(v, params=p), xs[b], capture_intermediates=True, mutable=["intermediates"])
            return optax.softmax_cross_entropy_with_integer_labels(out, ys[b]).mean(), inter

        (_, inter), grad = jax.value_and_grad(loss, has_aux=True)(v["params"])
        gws.append(jax.tree.map(lambda a, w: np.asarray(a, np.float64) * np.asarray(w, np.float64), grad, v["params"]))
        for i in range(4):
            acts.setdefault(i, []).append(
                np.maximum(np.asarray(inter["intermediates"][f"BatchNorm_{i}"]["__call__"][0]), 0)
            )
    for i in range(4):
        name = f"params/Conv_{i}"
        a = np.concatenate(acts[i])
        np.testing.assert_allclose(sc["apoz"][name], _np_minmax((a > 0).mean((0, 1, 2))), atol=1e-5)
        gap = a.mean((1, 2))
        ent = []
        for c in range(gap.shape[1]):
            h, _ = np.histogram(gap[:, c], bins=8, range=(gap[:, c].min(), gap[:, c].max()))
            p = h[h > 0] / h.sum()
            ent.append(-(p * np.log(p)).sum())
        np.testing.assert_allclose(sc["entropy"][name], _np_minmax(ent), atol=1e-4)
        k = [_np_filters(gw[f"Conv_{i}"]["kernel"], 3) for gw in gws]
        np.testing.assert_allclose(sc["taylor_l1"][name], _np_minmax(sum(np.abs(x).sum(1) for x in k)), atol=1e-4)
        np.testing.assert_allclose(sc["taylor_l2"][name], _np_minmax(np.sqrt(sum((x**2).sum(1) for x in k))), atol=1e-4)
        tg = sum(np.abs(gw[f"BatchNorm_{i}"]["scale"]) for gw in gws)
        tb = sum(np.abs(gw[f"BatchNorm_{i}"]["bias"]) for gw in gws)
        np.testing.assert_allclose(sc["taylor_bn_gamma"][name], _np_minmax(tg), atol=1e-4)
        np.testing.assert_allclose(sc["taylor_bn_beta"][name], _np_minmax(tb), atol=1e-4)


def test_criteria_bad_input_and_no_bn():
    m = models.VGG(models.DIGITS_CFG, batch_norm=False)
    v, x = _init(m, (8, 8, 1))
    g = prune.build_graph(m, v, x)
    assert set(prune.all_scores(g, v)) == {"l1", "l2", "fpgm", "fermat"}
    with pytest.raises(ValueError, match="needs a BatchNorm after group 'params/Conv_0'"):
        prune.scores("bn_gamma", g, v)
    with pytest.raises(ValueError, match="needs data statistics"):
        prune.scores("apoz", g, v)
    with pytest.raises(ValueError, match="Unknown criteria"):
        prune.scores("l3", g, v)


def test_all_scores_compiles_once(vgg):
    _, v, g = vgg
    prune.all_scores(g, v)
    before = prune.criteria._CACHE.copy()
    v2 = jax.tree.map(lambda a: a * 2.0, v)
    prune.all_scores(g, v2)
    assert prune.criteria._CACHE.keys() == before.keys()


# --------------------------------------------------------------------------- blending blocks


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.integers(0, 4, 20).astype(float)
        b = rng.integers(0, 6, 20).astype(float)
        assert float(prune.spearman(a, b)) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-6)
        np.testing.assert_allclose(prune.rankdata(a), scipy.stats.rankdata(a))
    s = rng.normal(size=(5, 30))
    s[1] = np.round(s[1])
    np.testing.assert_allclose(prune.correlation_matrix(s), scipy.stats.spearmanr(s.T).statistic, atol=1e-5)


def test_kmeans_recovers_separated_clusters_like_sklearn():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(c, 0.1, (6, 4)) for c in (0.0, 3.0, -3.0)])
    labels, centers = prune.kmeans(jax.random.key(0), x, 3)
    ref = KMeans(3, n_init=10, random_state=0).fit(x).labels_
    assert adjusted_rand_score(ref, np.asarray(labels)) == 1.0
    with pytest.raises(ValueError, match="`k`"):
        prune.kmeans(jax.random.key(0), x, 0)


def test_blend_is_weighted_sum():
    s = {"l1": {"g": jnp.array([0.0, 1.0])}, "fpgm": {"g": jnp.array([1.0, 0.5])}}
    np.testing.assert_allclose(prune.blend(s, ["l1", "fpgm"], [0.25, 0.75])["g"], [0.75, 0.625])
    with pytest.raises(ValueError, match="one entry per selected"):
        prune.blend(s, ["l1"], [0.5, 0.5])


def test_remove_refuses_a_group_left_without_channels():
    model = models.VGG(cfg=(4, "M", 8), num_classes=3)
    x = jnp.zeros((1, 8, 8, 1))
    v = model.init(jax.random.key(0), x)
    g = prune.build_graph(model, v, x)
    with pytest.raises(ValueError, match=r"keeps no channel of group\(s\) \['params/Conv_0'\]"):
        prune.remove(g, {"params/Conv_0": jnp.zeros(4, bool)}, v)
