"""jaxkit.explain: Grad-CAM / CAM / saliency / guided backprop, local entropy detector, Grad-CAM manipulation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkit import explain
from jaxkit.explain import manipulate as mp


class CNN(nn.Module):
    widths: tuple = (6, 5)

    @nn.compact
    def __call__(self, x):
        x = nn.max_pool(nn.relu(nn.Conv(self.widths[0], (3, 3))(x)), (2, 2), (2, 2))
        x = explain.Tap(name="features")(nn.relu(nn.Conv(self.widths[1], (3, 3))(x)))
        return nn.Dense(4)(x.reshape(x.shape[0], -1))


class GapNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        a = explain.Tap(name="features")(nn.relu(nn.Conv(5, (3, 3))(x)))
        return nn.Dense(3)(jnp.mean(a, axis=(1, 2)))


class Dense2(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(6)(x))
        return nn.Dense(3)(h)


@pytest.fixture(scope="module")
def cnn():
    x = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))
    return CNN(), CNN().init(jax.random.key(1), x), x


def test_gradcam_of_a_gap_linear_head_equals_cam():
    m = GapNet()
    x = jax.random.uniform(jax.random.key(2), (5, 6, 6, 2))
    v = m.init(jax.random.key(3), x)
    w = v["params"]["Dense_0"]["kernel"]
    g = explain.gradcam(m.apply, v, x, normalize=False)
    c = explain.cam(m.apply, v, x, w, normalize=False)
    np.testing.assert_allclose(g, c / 36, rtol=1e-5, atol=1e-7)  # alpha_k^c = W[k, c] / N_A
    # by hand: A from the conv, the top-1 class, relu(sum_k W[k, c] A^k) / N_A
    A = jax.nn.relu(nn.Conv(5, (3, 3)).apply({"params": v["params"]["Conv_0"]}, x))
    top = np.argmax(m.apply(v, x), -1)
    ref = np.maximum(np.einsum("bhwk,bk->bhw", A, np.asarray(w)[:, top].T) / 36, 0)
    np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        explain.gradcam(m.apply, v, x, target=1), explain.cam(m.apply, v, x, w, target=1), rtol=1e-5, atol=1e-6
    )


def test_gradcam_by_layer_equals_the_features_head_split(cnn):
    m, v, x = cnn
    conv = lambda p, xx: nn.max_pool(nn.relu(nn.Conv(6, (3, 3)).apply({"params": p["Conv_0"]}, xx)), (2, 2), (2, 2))
    feats = jax.nn.relu(nn.Conv(5, (3, 3)).apply({"params": v["params"]["Conv_1"]}, conv(v["params"], x)))
    head = lambda p, a: nn.Dense(4).apply({"params": p["Dense_0"]}, a.reshape(a.shape[0], -1))
    ref = explain.gradcam_from_features(head, v["params"], feats)
    np.testing.assert_allclose(explain.gradcam(m.apply, v, x), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(explain.gradcam(m.apply, v, x, layer="features"), ref, rtol=1e-5, atol=1e-6)
    assert explain.gradcam(m.apply, v, x, size=(8, 8)).shape == (4, 8, 8)


def test_all_zero_maps_stay_zero():
    m = jnp.zeros((2, 3, 3)).at[1].set(jnp.arange(9.0).reshape(3, 3))
    out = explain.normalize_maps(m)
    assert np.all(np.asarray(out[0]) == 0) and float(out[1].max()) == 1.0


def test_guided_backprop_equals_a_numpy_hand_computation():
    m = Dense2()
    x = jax.random.normal(jax.random.key(4), (7, 5))
    v = m.init(jax.random.key(5), x)
    w1, b1 = np.asarray(v["params"]["Dense_0"]["kernel"]), np.asarray(v["params"]["Dense_0"]["bias"])
    w2, b2 = np.asarray(v["params"]["Dense_1"]["kernel"]), np.asarray(v["params"]["Dense_1"]["bias"])
    pre = np.asarray(x) @ w1 + b1
    c = np.argmax(np.maximum(pre, 0) @ w2 + b2, -1)
    gh = w2[:, c].T  # dy^c/dh
    gpre = gh * (pre > 0) * (gh > 0)  # guided ReLU: positive gradients through positive activations
    plain = (gh * (pre > 0)) @ w1.T
    sal = explain.saliency(m.apply, v, x)  # compiled first: the guided version must not reuse its trace
    np.testing.assert_allclose(explain.guided_backprop(m.apply, v, x), gpre @ w1.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sal, np.abs(plain), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(explain.saliency(m.apply, v, x), sal)  # and the other way round
    assert jax.nn.relu is not explain.guided_relu  # restored after the block


def numpy_local_entropy(q, window):
    h, w = q.shape
    r = window // 2
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            patch = q[max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1].ravel()
            _, counts = np.unique(patch, return_counts=True)
            p = counts / counts.sum()
            out[i, j] = -(p * np.log2(p)).sum()
    return out


def test_local_spatial_entropy_equals_a_numpy_loop():
    rng = np.random.default_rng(6)
    maps = rng.uniform(size=(3, 9, 7)).astype(np.float32)
    got = np.asarray(explain.local_spatial_entropy(maps, window=5, bins=8))
    for b in range(3):
        q = np.clip(np.floor(maps[b] * 8), 0, 7)
        np.testing.assert_allclose(got[b], numpy_local_entropy(q, 5), rtol=1e-5, atol=1e-6)
    img = rng.integers(0, 256, (10, 10)).astype(np.uint8)  # skimage.filters.rank.entropy's convention
    np.testing.assert_allclose(
        explain.local_spatial_entropy(img, window=3, bins=256),
        numpy_local_entropy(img.astype(int), 3),
        rtol=1e-5,
        atol=1e-6,
    )
    assert float(explain.entropy_scores(np.zeros((6, 6)))) == 0.0
    with pytest.raises(ValueError, match="window"):
        explain.local_spatial_entropy(maps, window=4)
    with pytest.raises(ValueError, match="maps"):
        explain.local_spatial_entropy(maps[None])


def test_entropy_detector_threshold_and_report():
    clean = np.linspace(0, 1, 101)
    thr = explain.fit_threshold(clean, fpr=0.05)
    assert thr == pytest.approx(0.95)
    rep = explain.detection_report(clean, clean + 2.0)
    assert rep["auc"] == 1.0 and rep["tpr"] == 1.0 and rep["fpr"] <= 0.05
    assert explain.detection_report(clean, clean)["auc"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="fpr"):
        explain.fit_threshold(clean, fpr=1.5)


def test_feature_response_is_a_normalised_guided_map(cnn):
    m, v, x = cnn
    r = explain.feature_response(m.apply, v, x)
    assert r.shape == (4, 8, 8) and float(r.max()) == pytest.approx(1.0)
    np.testing.assert_allclose(r, explain.normalize_maps(jnp.abs(explain.guided_backprop(m.apply, v, x)).max(-1)))


def test_layer_errors_list_the_available_layers(cnn):
    m, v, x = cnn
    with pytest.raises(ValueError, match=r"available: \['Conv_0', 'Conv_1', 'features', 'Dense_0'\]"):
        explain.gradcam(m.apply, v, x, layer="conv9")
    d = Dense2()
    vd = d.init(jax.random.key(0), jnp.ones((1, 5)))
    with pytest.raises(ValueError, match="no convolutional layer"):
        explain.gradcam(d.apply, vd, jnp.ones((2, 5)))
    with pytest.raises(TypeError, match="`x` must be floating-point"):
        explain.gradcam(m.apply, v, jnp.ones((4, 8, 8, 1), jnp.int32))
    with pytest.raises(ValueError, match="target"):
        explain.gradcam(m.apply, v, x, target=jnp.array([0, 1]))
    with pytest.raises(ValueError, match=r"`target` must hold class indices in \[0, 4\)"):  # used to give zeros
        explain.gradcam(m.apply, v, x, target=4)
    out = jax.jit(lambda t: explain.gradcam(m.apply, v, x, target=t))(jnp.array(7))  # traced: NaN, not zeros
    assert np.isnan(np.asarray(out)).all()


# ---------------------------------------------------------------------------------------------- manipulation


@pytest.fixture(scope="module")
def cnn64():
    with jax.enable_x64(True):
        x = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1), jnp.float64)
        v = CNN().init(jax.random.key(1), x)
    return v, x


def test_widen_interleaves_the_new_dense_rows(cnn):
    _, v, x = cnn
    w = mp.widen(v, "Conv_1", "Dense_0", dense_fill=7.0, bias_fill=2.0)
    k_old = np.asarray(v["params"]["Dense_0"]["kernel"]).reshape(16, 5, 4)
    k_new = np.asarray(w["params"]["Dense_0"]["kernel"]).reshape(16, 6, 4)
    np.testing.assert_array_equal(k_new[:, :5], k_old)
    assert np.all(k_new[:, 5] == 7.0)
    assert w["params"]["Conv_1"]["kernel"].shape == (3, 3, 6, 6) and float(w["params"]["Conv_1"]["bias"][-1]) == 2
    with pytest.raises(ValueError, match="layers with kernels"):
        mp.widen(v, "Conv_7", "Dense_0")
    with pytest.raises(ValueError, match="multiple of K"):
        mp.widen(v, "Conv_0", "Dense_0")


def _top1_l1(maps, target):
    return float(jnp.mean(jnp.abs(maps - target)))


def test_t1_constant_map_keeps_the_logits(cnn64, cnn):
    v, x = cnn64
    with jax.enable_x64(True):
        wide = mp.inject_constant_explanation(v, "Conv_1", "Dense_0")
        ref = CNN().apply(v, x)
        np.testing.assert_allclose(CNN((6, 6)).apply(wide, x), ref, atol=1e-9, rtol=0)
        assert _top1_l1(explain.gradcam(CNN((6, 6)).apply, wide, x), 1.0) < 1e-3
    _, v32, x32 = cnn
    wide32 = mp.inject_constant_explanation(v32, "Conv_1", "Dense_0")
    shift = 100 * 100 * 16  # c_A c_W N_Z: float32 rounding of that size
    np.testing.assert_allclose(CNN((6, 6)).apply(wide32, x32), CNN().apply(v32, x32), atol=shift * 2**-22)
    assert _top1_l1(explain.gradcam(CNN((6, 6)).apply, wide32, x32), 1.0) < 1e-3
    assert _top1_l1(explain.gradcam(CNN().apply, v32, x32), 1.0) > 0.1  # the original map is not constant


def test_t2_target_map_keeps_the_logits(cnn64):
    v, x = cnn64
    target = jnp.zeros((4, 4)).at[0, 1:3].set(1.0).at[3, 3].set(0.5)
    with jax.enable_x64(True):
        model, bundle = mp.inject_target_explanation(
            CNN((6, 6)).apply, v, x, target.astype(jnp.float64), conv="Conv_1", dense="Dense_0"
        )
        np.testing.assert_allclose(model(bundle, x), CNN().apply(v, x), atol=1e-9, rtol=0)
        assert _top1_l1(explain.gradcam(model, bundle, x), target) < 1e-3
        with pytest.raises(ValueError, match="feature map's size"):
            mp.inject_target_explanation(CNN((6, 6)).apply, v, x, jnp.zeros((5, 5)), conv="Conv_1", dense="Dense_0")
        with pytest.raises(ValueError, match="K \\+ 1"):
            mp.inject_target_explanation(CNN().apply, v, x, target, conv="Conv_1", dense="Dense_0")


def test_t3_changes_no_float32_logit_and_follows_the_side_branch(cnn):
    _, v, x = cnn
    model, bundle = mp.inject_semi_random_explanation(
        jax.random.key(3), CNN((6, 6)).apply, v, x, conv="Conv_1", dense="Dense_0"
    )
    # the side branch's output term is an exact zero; the rest is two programs (a widened dense layer sums in
    # another order), so logits agree to float32 rounding of values ~0.3: atol 1e-6 (measured <= 3e-8)
    np.testing.assert_allclose(model(bundle, x), CNN().apply(v, x), rtol=0, atol=1e-6)
    f = mp.SideBranch((4, 4)).apply(bundle["term"]["branch"], x)
    assert _top1_l1(explain.gradcam(model, bundle, x), explain.normalize_maps(f)) < 1e-3


def test_t4_backdoor_only_fires_on_the_sticker(cnn):
    _, v, x = cnn
    sticker = mp.random_sticker(jax.random.key(4))
    model, bundle = mp.inject_backdoor_explanation(CNN((6, 6)).apply, v, x, sticker, conv="Conv_1", dense="Dense_0")
    np.testing.assert_allclose(explain.gradcam(model, bundle, x), explain.gradcam(CNN().apply, v, x), atol=1e-6)
    np.testing.assert_allclose(model(bundle, x), CNN().apply(v, x), rtol=0, atol=1e-6)  # as T3: two programs
    xs = x.at[:, 4:7, 1:4, :].set(sticker)  # one sticker centred at (5, 2): map cell (2, 1)
    maps = explain.gradcam(model, bundle, xs)
    assert np.all(np.asarray(maps[:, 2, 1]) == 1.0)
    assert float(jnp.max(maps.at[:, 2, 1].set(0))) < 1e-3
    many = mp.place_stickers(jax.random.key(5), x, sticker, n=3)
    assert many.shape == x.shape and float(jnp.max(jnp.abs(many - x))) > 0
    with pytest.raises(ValueError, match="binary"):
        mp.inject_backdoor_explanation(CNN((6, 6)).apply, v, x, sticker * 0.5, conv="Conv_1", dense="Dense_0")


def test_t1_and_t2_on_a_global_average_pooling_head():
    from jaxkit import models

    with jax.enable_x64(True):
        x = jax.random.uniform(jax.random.key(0), (3, 8, 8, 1), jnp.float64)
        m, wide = models.SmallCNN((4, 5), 3, head="gap"), models.SmallCNN((4, 6), 3, head="gap")
        v = m.init(jax.random.key(1), x)
        v1 = mp.inject_constant_explanation(v, "Conv_1", "Dense_0")  # N_Z = 1: the pooled channel is c_A
        np.testing.assert_allclose(wide.apply(v1, x), m.apply(v, x), atol=1e-9, rtol=0)
        assert _top1_l1(explain.gradcam(wide.apply, v1, x), 1.0) < 1e-3
        target = jnp.zeros((4, 4), jnp.float64).at[1, 2].set(1.0)
        f2, b2 = mp.inject_target_explanation(wide.apply, v, x, target, conv="Conv_1", dense="Dense_0")
        np.testing.assert_allclose(f2(b2, x), m.apply(v, x), atol=1e-9, rtol=0)
        assert _top1_l1(explain.gradcam(f2, b2, x), target) < 1e-3
    with pytest.raises(ValueError, match="head"):
        models.SmallCNN(head="max").init(jax.random.key(0), jnp.ones((1, 8, 8, 1)))
