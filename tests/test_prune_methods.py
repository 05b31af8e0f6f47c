"""BFRIFP, Pruned-YOLO and CupNet transforms (jaxkit.prune.{bfrifp,pruned_yolo,cupnet})."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.spatial.distance import cdist

from jaxkit import data, models, prune, schedules
from jaxkit.prune import bfrifp, cupnet, pruned_yolo

CFG = (8, 8, "M", 16, "M")
SMALL = (4, 4, "M", 8, "M")


@pytest.fixture(scope="module")
def vgg():
    model = models.VGG(cfg=CFG, num_classes=10)
    x = jax.random.normal(jax.random.key(0), (6, 8, 8, 1))
    v = model.init(jax.random.key(1), x)
    # non-trivial BN statistics and scales so the checks are not vacuous
    v = jax.tree_util.tree_map_with_path(
        lambda kp, a: (
            a + 0.3 * jax.random.normal(jax.random.fold_in(jax.random.key(2), hash(str(kp)) % 1000), a.shape)
            if "BatchNorm" in str(kp)
            else a
        ),
        v,
    )
    v["batch_stats"] = jax.tree.map(jnp.abs, v["batch_stats"])
    return model, v, x, prune.build_graph(model, v, x[:1])


@pytest.fixture(scope="module")
def vgg_nobn():
    model = models.VGG(cfg=CFG, num_classes=10, batch_norm=False)
    x = jax.random.normal(jax.random.key(0), (6, 8, 8, 1))
    v = model.init(jax.random.key(3), x)
    v = jax.tree.map(lambda a: a + 0.1, v)  # non-zero biases
    return model, v, x, prune.build_graph(model, v, x[:1])


# ----------------------------------------------------------------------------- BFRIFP


def test_index_masks_prune_the_last_fraction(vgg):
    *_, g = vgg
    m = bfrifp.index_masks(g, 0.45)
    assert list(np.asarray(m["params/Conv_0"])) == [True] * 5 + [False] * 3  # floor(0.45 * 8) = 3
    assert np.asarray(m["params/Conv_2"]).sum() == 16 - 7
    only = bfrifp.index_masks(g, {"params/Conv_2": 0.5}, groups=["params/Conv_2"])
    assert list(only) == ["params/Conv_2"]
    with pytest.raises(ValueError, match="ratio"):
        bfrifp.index_masks(g, 1.0)


def test_random_masks_deterministic_and_sized(vgg):
    *_, g = vgg
    a = bfrifp.random_masks(jax.random.key(0), g, 0.5)
    b = bfrifp.random_masks(jax.random.key(0), g, 0.5)
    c = bfrifp.random_masks(jax.random.key(1), g, 0.5)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert {k: int(np.sum(~np.asarray(v))) for k, v in a.items()} == {
        "params/Conv_0": 4,
        "params/Conv_1": 4,
        "params/Conv_2": 8,
    }


def _scale_bn(g, v, masks, factors):
    """Reference: scaling a BN output channel by D == scaling its gamma and beta by D."""
    p = jax.tree.map(np.array, v["params"])
    for name, m in masks.items():
        grp = g.group(name)
        scale, bias = prune.bn_layer(g, grp)
        for path in (scale, bias):
            mod = path.split("/")[1]
            leaf = path.split("/")[2]
            p[mod][leaf][~np.asarray(m)] *= factors[name]
    return {"params": p, "batch_stats": v["batch_stats"]}


def _scale_producer(g, v, masks, factors):
    """Reference without BN: D * relu(z) = relu(D * z), and max-pool commutes with D > 0."""
    p = jax.tree.map(np.array, v["params"])
    for name, m in masks.items():
        mod = name.split("/")[1]
        p[mod]["kernel"][..., ~np.asarray(m)] *= factors[name]
        p[mod]["bias"][~np.asarray(m)] *= factors[name]
    return {"params": p}


@pytest.mark.parametrize("epoch", [0.0, 0.7, 1.5, 2.6])
def test_reorganize_matches_scaled_params(vgg, vgg_nobn, epoch):
    for (model, v, x, g), ref in ((vgg, _scale_bn), (vgg_nobn, _scale_producer)):
        masks = bfrifp.index_masks(g, 0.5)
        apply = bfrifp.reorganize(model, g, masks)
        d = apply.factors(epoch)
        assert d == {n: pytest.approx(float(schedules.bfrifp_decay(3)(epoch, l))) for n, l in apply.layers.items()}
        np.testing.assert_allclose(apply(v, x, epoch=epoch), model.apply(ref(g, v, masks, d), x), rtol=1e-5, atol=1e-5)
    assert apply.layers == {"params/Conv_0": 1, "params/Conv_1": 2, "params/Conv_2": 3}


def test_reorganize_epoch0_is_identity_and_end_is_removed_model(vgg, vgg_nobn):
    for (model, v, x, g), bn in ((vgg, True), (vgg_nobn, False)):
        masks = bfrifp.index_masks(g, 0.5)
        apply = jax.jit(lambda v, x, e, a=bfrifp.reorganize(model, g, masks): a(v, x, epoch=e))
        np.testing.assert_allclose(apply(v, x, 0.0), jax.jit(model.apply)(v, x), rtol=1e-6, atol=1e-6)
        small = models.VGG(cfg=SMALL, num_classes=10, batch_norm=bn).apply(prune.remove(g, masks, v), x)
        np.testing.assert_allclose(apply(v, x, 60.0), small, rtol=1e-5, atol=1e-5)


def test_reorganize_compiles_once_over_epochs(vgg):
    model, v, x, g = vgg
    apply = bfrifp.reorganize(model, g, bfrifp.index_masks(g, 0.5), rfpn=True)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(v, x, e, k):
        return apply(v, x, epoch=e, key=k)

    for e in (0.0, 1.0, 7.5):
        f(v, x, e, jax.random.key(0))


def test_rfpn_replaces_pruned_outputs_with_small_noise(vgg):
    model, v, x, g = vgg
    masks = bfrifp.index_masks(g, 0.5)
    apply = bfrifp.reorganize(model, g, masks, rfpn=True, noise_std=0.01)
    with pytest.raises(ValueError, match="key"):
        apply(v, x, epoch=1.0)

    def bn0(e, key):
        _, st = apply(v, x, epoch=e, key=key, capture_intermediates=True, mutable=["intermediates"])
        return np.asarray(st["intermediates"]["BatchNorm_0"]["__call__"][0])

    late = bn0(10.0, jax.random.key(0))  # D(1, 10) < 0.01: noise
    assert abs(late[..., 4:].std() - 0.01) < 0.002 and abs(late[..., 4:].mean()) < 0.002
    assert not np.array_equal(late[..., 4:], bn0(10.0, jax.random.key(1))[..., 4:])  # fresh per key
    early = bn0(0.0, jax.random.key(0))  # D = 1: untouched
    plain = jax.tree.map(np.asarray, model.apply(v, x, capture_intermediates=True, mutable=["intermediates"])[1])
    # D = 1 through the reorganised model vs the plain model: two programs, equal to float32 rounding
    np.testing.assert_allclose(early, plain["intermediates"]["BatchNorm_0"]["__call__"][0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(late[..., :4], early[..., :4])  # kept channels pass through untouched (a select)


def test_freeze_masks_keep_pruned_filters_but_train_next_inputs(vgg):
    model, v, x, g = vgg
    masks = bfrifp.index_masks(g, 0.5)
    frozen = bfrifp.freeze_masks(g, masks, v["params"])
    tx = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.1, 0.9), prune.masked_updates(frozen))
    apply = bfrifp.reorganize(model, g, masks)
    params, opt = v["params"], tx.init(v["params"])
    y = jnp.arange(6) % 10

    @jax.jit
    def step(params, opt, e):
        def loss(p):
            logits, _ = apply(
                {"params": p, "batch_stats": v["batch_stats"]}, x, epoch=e, train=True, mutable=["batch_stats"]
            )
            return models.cross_entropy(logits, y).mean()

        upd, opt = tx.update(jax.grad(loss)(params), opt, params)
        return optax.apply_updates(params, upd), opt

    for e in (0.0, 0.5, 1.0):
        params, opt = step(params, opt, e)
    k0, k1 = np.asarray(v["params"]["Conv_1"]["kernel"]), np.asarray(params["Conv_1"]["kernel"])
    np.testing.assert_array_equal(k1[..., 4:], k0[..., 4:])  # pruned filters of Conv_1 frozen
    assert not np.array_equal(k1[..., :4, :4], k0[..., :4, :4])  # kept filters train
    assert not np.array_equal(k1[..., 4:, :4], k0[..., 4:, :4])  # inputs from pruned Conv_0 channels train
    np.testing.assert_array_equal(params["BatchNorm_1"]["scale"][4:], v["params"]["BatchNorm_1"]["scale"][4:])


def test_reorganize_bad_input(vgg):
    model, v, x, g = vgg
    with pytest.raises(ValueError, match="empty"):
        bfrifp.reorganize(model, g, {})
    with pytest.raises(ValueError, match="layers"):
        bfrifp.reorganize(model, g, bfrifp.index_masks(g, 0.5), layers={"params/Conv_0": 1})
    with pytest.raises(ValueError, match="shape"):
        bfrifp.reorganize(model, g, {"params/Conv_0": np.ones(3, bool)})


# ----------------------------------------------------------------------------- Pruned-YOLO


def test_importance_against_numpy(vgg):
    _, v, _, g = vgg
    th = pruned_yolo.importance(g, v)
    for i in range(3):
        w = np.asarray(v["params"][f"Conv_{i}"]["kernel"], np.float64)
        gamma = np.asarray(v["params"][f"BatchNorm_{i}"]["scale"], np.float64)
        ref = np.abs(gamma) * np.abs(w).reshape(-1, w.shape[-1]).sum(0)
        np.testing.assert_allclose(th[f"params/Conv_{i}"], ref, rtol=1e-5)


def test_importance_of_tied_groups_has_one_row_per_producer():
    model = models.ResNet((1, 1), (8, 16), 10, "B")
    x = jnp.ones((1, 8, 8, 3))
    v = model.init(jax.random.key(0), x)
    g = prune.build_graph(model, v, x)
    th = pruned_yolo.importance(g, v)
    stream = th["params/Conv_0"]  # stem + block 0's second conv share the residual stream
    assert stream.shape == (2, 8)
    w = np.abs(np.asarray(v["params"]["BasicBlock_0"]["Conv_1"]["kernel"])).reshape(-1, 8).sum(0)
    gamma = np.abs(np.asarray(v["params"]["BasicBlock_0"]["BatchNorm_1"]["scale"]))
    np.testing.assert_allclose(stream[1], w * gamma, rtol=1e-5)


def test_global_masks_hand_worked():
    scores = {"a": np.array([0.1, 0.9, 0.2, 0.8]), "b": np.array([0.5, 0.05, 0.6, 0.7])}
    m = prune.global_masks(scores, 0.5)  # 4 of 8 below the threshold 0.5: 0.05, 0.1, 0.2, 0.5
    assert list(np.asarray(m["a"])) == [False, True, False, True]
    assert list(np.asarray(m["b"])) == [False, False, True, True]
    assert list(np.asarray(prune.global_masks(scores, 0.0)["a"])) == [True] * 4
    # min_keep
    m = prune.global_masks({"a": np.array([0.1, 0.2]), "b": np.array([5.0, 6.0])}, 0.5, min_keep=1)
    assert np.asarray(m["a"]).sum() == 1


def test_global_masks_tied_policies():
    tied = np.array(
        [
            [0.1, 0.2, 0.9, 0.3],  # tied layer 0
            [0.2, 0.8, 0.05, 0.9],
        ]
    )  # tied layer 1
    scores = {"tied": tied, "other": np.array([0.15, 0.7, 0.5, 0.65])}
    # 12 channel scores, ratio 0.5 -> 6 lowest (.05 .1 .15 .2 .2 .3): threshold 0.3.
    # layer 0 has 3 below (ch 0, 1, 3), layer 1 has 2 (ch 0, 2); ch 0 is below in both.
    same = prune.global_masks(scores, 0.5, policy="same")
    assert list(np.asarray(same["tied"])) == [False, True, True, True]
    # split: round(mean(3, 2)) = 2 (half to even) channels with the lowest summed score: ch 0 (.3), ch 2 (.95)
    split = prune.global_masks(scores, 0.5, policy="split")
    assert list(np.asarray(split["tied"])) == [False, True, False, True]
    for m in (same, split):
        assert list(np.asarray(m["other"])) == [False, True, True, True]
    with pytest.raises(ValueError, match="policy"):
        prune.global_masks(scores, 0.5, policy="union")
    with pytest.raises(ValueError, match="ratio"):
        prune.global_masks(scores, 1.5)
    with pytest.raises(ValueError, match="finite"):
        prune.global_masks({"a": np.array([np.nan, 1.0])}, 0.5)


def test_bn_l1_adds_signed_schedule_on_bn_scales(vgg):
    _, v, _, g = vgg
    params = v["params"]
    mask = pruned_yolo.bn_scale_mask(g, params)
    assert mask["BatchNorm_0"]["scale"] is True and mask["BatchNorm_0"]["bias"] is False
    assert mask["Conv_0"]["kernel"] is False
    sched = schedules.warmup_cosine_sparsity(1e-2, 10, 2)
    tx = pruned_yolo.bn_l1(sched, mask)
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    step = jax.jit(tx.update)
    for i in range(4):
        upd, state = step(zeros, state, params)
        s = float(sched(i))
        np.testing.assert_allclose(upd["BatchNorm_2"]["scale"], s * np.sign(params["BatchNorm_2"]["scale"]), rtol=1e-6)
        np.testing.assert_array_equal(upd["Conv_2"]["kernel"], 0)
    assert int(state.count) == 4
    with pytest.raises(ValueError, match="params"):
        tx.update(zeros, state)


def test_soft_mask_against_numpy(vgg):
    _, v, _, g = vgg
    params = jax.tree.map(np.asarray, v["params"])
    params["BatchNorm_1"]["scale"] = params["BatchNorm_1"]["scale"] * np.array([1, 0.01, 1, 1, -0.001, 1, 1, 1])
    mask = pruned_yolo.bn_scale_mask(g, params)
    new, frac = jax.jit(pruned_yolo.soft_mask)(params, mask)  # mask may be traced too
    allg = np.concatenate([np.abs(params[f"BatchNorm_{i}"]["scale"]) for i in range(3)]).astype(np.float64)
    t = allg.mean() / 5
    for i in range(3):
        gam = params[f"BatchNorm_{i}"]["scale"]
        np.testing.assert_allclose(new[f"BatchNorm_{i}"]["scale"], np.where(np.abs(gam) < t, gam * 0.1, gam), rtol=1e-6)
        np.testing.assert_array_equal(new[f"BatchNorm_{i}"]["bias"], params[f"BatchNorm_{i}"]["bias"])
    assert float(frac) == pytest.approx(np.mean(allg < t)) and float(frac) > 0
    with pytest.raises(ValueError, match="divisor"):
        pruned_yolo.soft_mask(params, mask, divisor=0)


# ----------------------------------------------------------------------------- CupNet


def test_connectivity_against_cdist():
    pts = np.random.default_rng(0).normal(size=(40, 3))
    for alpha in (0.5, 1.0, 2.5):
        np.testing.assert_array_equal(cupnet.connectivity(pts, alpha), cdist(pts, pts) <= alpha)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="alpha"):
            cupnet.connectivity(pts, bad)
    with pytest.raises(ValueError, match="points"):
        cupnet.connectivity(pts[:, 0], 1.0)


def test_masked_dense_reference_and_zero_gradients_outside_structure():
    rng = np.random.default_rng(1)
    c = rng.uniform(size=(6, 5)) < 0.4
    layer = cupnet.MaskedDense(c)
    x = jnp.asarray(rng.normal(size=(3, 6)), jnp.float32)
    p = layer.init(jax.random.key(0), x)
    w, b = np.asarray(p["params"]["kernel"], np.float64), np.asarray(p["params"]["bias"], np.float64)
    np.testing.assert_allclose(layer.apply(p, x), np.asarray(x, np.float64) @ (w * c) + b, rtol=1e-5, atol=1e-6)
    gw = jax.grad(lambda p: jnp.sum(layer.apply(p, x) ** 2))(p)["params"]["kernel"]
    assert np.all(np.asarray(gw)[~c] == 0) and np.any(np.asarray(gw)[c] != 0)
    with pytest.raises(ValueError, match="structure"):
        layer.apply(p, x[:, :4])


@pytest.mark.parametrize("h", [0, 1, 2])
def test_cupnet_count_matches_formula(h):
    ref, _, _ = data.cup_reference(6, 4)
    c = cupnet.connectivity(ref, 12.0)
    net = cupnet.CupNet(c, depth=h)
    x = jnp.ones((2, 5))
    params = net.init(jax.random.key(0), x)["params"]
    assert net.apply({"params": params}, x).shape == (2, 3 * 24)
    assert cupnet.count_params(params, c) == cupnet.cupnet_params(5, 24, h, int(c.sum()))
    assert 0 < c.sum() < c.size


def test_refnet_width_solver_and_count():
    assert cupnet.refnet_params(9, 5937, 3, 2560) == 34_898_737
    assert cupnet.refnet_width(9, 5937, 3, 34_898_737) == 2560
    assert cupnet.refnet_width(9, 5937, 3, 34_898_738) == 2561
    assert cupnet.refnet_width(9, 5937, 0, 100_000) == int(np.ceil((100_000 - 5937) / (9 + 5937 + 1)))
    # the paper's CupNet: k = 9, m = 1979 (d = 5937), h = 2 has 12,277,950 parameters when c(5) = 75,241
    assert cupnet.cupnet_params(9, 1979, 2, 75_241) == 12_277_950
    net = cupnet.RefNet(width=7, depth=2, out=12)
    params = net.init(jax.random.key(0), jnp.ones((1, 4)))["params"]
    assert cupnet.count_params(params) == cupnet.refnet_params(4, 12, 2, 7)
    with pytest.raises(ValueError, match="c"):
        cupnet.cupnet_params(9, 10, 2, 0)


def test_make_cups_deterministic_and_local():
    a, b = data.make_cups(50, seed=3), data.make_cups(50, seed=3)
    np.testing.assert_array_equal(a.train.y, b.train.y)
    assert a.train.x.shape == (45, 5) and a.train.y.shape == (45, 3 * a.m) and a.reference.shape == (a.m, 3)
    assert not np.array_equal(a.train.y, data.make_cups(50, seed=4).train.y)
    assert np.all((a.train.x >= 0) & (a.train.x <= 1))
    with pytest.raises(ValueError, match="k"):
        data.make_cups(10, k=0)


def test_bn_l1_refuses_a_negative_strength():
    with pytest.raises(ValueError, match="`strength` must be a finite number >= 0"):
        pruned_yolo.bn_l1(-1.0, {"w": True})
