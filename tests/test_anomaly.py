"""Anomaly scores, detection metrics and hyperspectral scenes (jaxkit.anomaly, jaxkit.data)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from jaxkit import anomaly, data, gan


@pytest.fixture(scope="module")
def scene():
    return data.make_hyperspectral_scene(64, 64, seed=1)


@pytest.fixture(scope="module")
def big_scene():
    return data.make_hyperspectral_scene()


# ----------------------------------------------------------------------------- metrics


def test_auc_equals_sklearn_including_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = rng.uniform(size=300) < 0.2
        s = np.round(rng.normal(size=300) + y, 1)  # many ties
        assert anomaly.auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert anomaly.auc([1, 1, 1, 1], [1, 0, 1, 0]) == 0.5


def test_roc_curve_matches_sklearn_points():
    rng = np.random.default_rng(1)
    y = rng.uniform(size=200) < 0.3
    s = np.round(rng.normal(size=200) + y, 1)
    fpr, tpr, thr = anomaly.roc_curve(s, y)
    f2, t2, _ = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    assert thr[0] == np.inf and np.all(np.diff(thr[1:]) < 0)


def test_log_auc_and_lg_far_hand_integrated():
    # 4 negatives -> l = 0.5 / 4 = 0.125; scores: P(5) N(4) P(3) N(2) N(1) N(0)
    s = [5, 4, 3, 2, 1, 0]
    y = [1, 0, 1, 0, 0, 0]
    # ROC: (0,0) (0,.5) (.25,.5) (.25,1) (.5,1) (.75,1) (1,1); FPR 0 -> l
    l = 0.125
    lx = np.log10
    area = 0.5 * (lx(0.25) - lx(l)) + 1.0 * (lx(1) - lx(0.25))  # the vertical segments add nothing
    assert anomaly.log_auc(s, y) == pytest.approx(area / abs(lx(l)))
    assert anomaly.lg_far(s, y) == pytest.approx(lx(l))  # first positive detected with zero false alarms
    # first detection only after a false alarm
    assert anomaly.lg_far([5, 4, 3], [0, 1, 0]) == pytest.approx(lx(0.5))
    # perfect detector -> 1, inverted -> 0
    assert anomaly.log_auc([2, 1, 0], [1, 0, 0]) == pytest.approx(1.0)
    assert anomaly.log_auc([0, 1, 2], [1, 0, 0]) == pytest.approx(0.0)
    # explicit l, trapezoid in log FPR: P N N (l = 0.1): (0.1,1) -> (0.5,1) -> (1,1)
    assert anomaly.log_auc([3, 2, 1], [1, 0, 0], l=0.1) == pytest.approx(1.0)


def test_log_auc_truncates_at_a_user_l_by_interpolating_the_crossing_segment():
    # a tie gives a sloped ROC segment: 4 negatives, ROC (0,0) (0,.5) (.25,.5) (.5,1) (.75,1) (1,1)
    s, y = [4, 3, 2, 2, 1, 0], [1, 0, 1, 0, 0, 0]
    lx = np.log10
    l = 0.375  # on the segment (.25,.5) -> (.5,1): TPR(l) = .75
    area = (0.75 + 1) / 2 * (lx(0.5) - lx(l)) + 1.0 * (0 - lx(0.5))
    assert anomaly.log_auc(s, y, l=l) == pytest.approx(area / abs(lx(l)), rel=1e-12)
    # the old rule moved (.25, .5) onto FPR = l and understated TPR(l) as .5
    assert anomaly.log_auc(s, y, l=l) > ((0.5 + 1) / 2 * (lx(0.5) - lx(l)) - lx(0.5)) / abs(lx(l)) + 0.01
    # l exactly on a ROC point: that point's (top) TPR
    assert anomaly.log_auc(s, y, l=0.5) == pytest.approx(1.0)
    # l below every non-zero FPR (as the default 0.5 / N_neg always is): FPR-0 points sit at l, unchanged
    ref = (0.5 * (lx(0.25) - lx(0.1)) + 0.75 * (lx(0.5) - lx(0.25)) - lx(0.5)) / abs(lx(0.1))
    assert anomaly.log_auc(s, y, l=0.1) == pytest.approx(ref, rel=1e-12)
    # random tied scores: equal to the old formula applied to the ROC with the point (l, TPR(l)) inserted
    rng = np.random.default_rng(3)
    for _ in range(20):
        yy = rng.random(300) < 0.2
        ss = rng.integers(0, 25, 300) + 3 * yy
        fpr, tpr, _ = anomaly.roc_curve(ss, yy)
        for l in rng.uniform(fpr[fpr > 0].min(), 0.9, size=3):
            j = np.searchsorted(fpr, l, side="right")
            t_l = np.interp(l, fpr[j - 1 : j + 1], tpr[j - 1 : j + 1])
            x, t = np.r_[fpr[:j], l, fpr[j:]], np.r_[tpr[:j], t_l, tpr[j:]]
            xl = np.log10(np.maximum(x, l))
            ref = np.sum(np.diff(xl) * (t[1:] + t[:-1]) / 2) / abs(np.log10(l))
            assert anomaly.log_auc(ss, yy, l=l) == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_log_auc_chance_level():
    assert anomaly.log_auc_chance(10**6) == pytest.approx(0.069, abs=0.001)  # the thesis's ~0.07
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(2000, bool), np.zeros(20000, bool)]
    vals = [anomaly.log_auc(rng.uniform(size=y.size), y) for _ in range(5)]
    assert np.mean(vals) == pytest.approx(anomaly.log_auc_chance(20000), abs=0.01)


def test_partial_auc_against_direct_integration():
    rng = np.random.default_rng(2)
    y = rng.uniform(size=500) < 0.3
    s = rng.normal(size=500) + 1.5 * y
    fpr, tpr, _ = sk_roc_curve(y, s)
    grid = np.linspace(0, 0.1, 20001)
    ref = np.trapezoid(np.interp(grid, fpr, tpr), grid) / 0.1
    assert anomaly.partial_auc(s, y, 0.1) == pytest.approx(ref, abs=1e-4)
    assert anomaly.partial_auc(s, y, 1.0) == pytest.approx(anomaly.auc(s, y), abs=1e-9)


def test_metric_bad_input():
    with pytest.raises(ValueError, match="both"):
        anomaly.auc([1, 2], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        anomaly.auc([np.nan, 2], [1, 0])
    with pytest.raises(ValueError, match="same size"):
        anomaly.log_auc([1, 2, 3], [1, 0])
    with pytest.raises(ValueError, match="max_fpr"):
        anomaly.partial_auc([1, 2], [1, 0], 0)


# ----------------------------------------------------------------------------- RX / GMM


def test_rx_equals_float64_mahalanobis(scene):
    c = scene.cube.astype(np.float64)
    bg = c[scene.background]
    mu = bg.mean(0)
    cov = np.cov(bg, rowvar=False)
    d = c.reshape(-1, c.shape[-1]) - mu
    ref = np.sum(d * np.linalg.solve(cov, d.T).T, 1).reshape(c.shape[:2])
    got = anomaly.global_rx(scene.cube, scene.background, reg=0.0)
    np.testing.assert_allclose(got, ref, rtol=1e-8)
    with pytest.raises(ValueError, match="background_mask"):
        anomaly.global_rx(scene.cube, scene.background[:3])
    with pytest.raises(ValueError, match="bands"):
        anomaly.rx_scores(c[..., :5], mu, np.linalg.inv(cov))


def test_global_rx_equals_spy():
    """SPy's ``spectral.rx`` (the peer in benchmarks/anomaly.py): all pixels as background, and a masked background
    through ``calc_stats``; float64 both, relative 1e-12. Also across the chunk boundary of the scoring loop."""
    import spectral

    rng = np.random.default_rng(0)
    cube = rng.normal(size=(200, 180, 7)) * rng.uniform(0.5, 3, 7) + 3  # 36,000 pixels: two scoring chunks
    np.testing.assert_allclose(anomaly.global_rx(cube, reg=0.0), spectral.rx(cube), rtol=1e-12)
    mask = rng.uniform(size=cube.shape[:2]) < 0.3
    stats = spectral.calc_stats(cube[mask][:, None, :])
    np.testing.assert_allclose(anomaly.global_rx(cube, mask, reg=0.0), spectral.rx(cube, background=stats), rtol=1e-12)


def test_local_rx_against_brute_force():
    rng = np.random.default_rng(3)
    cube = rng.gamma(3.0, size=(12, 11, 3))
    got = anomaly.local_rx(cube, 3, 7, reg=0.01)
    for i, j in [(0, 0), (5, 5), (11, 3), (6, 10)]:
        ys, xs = np.mgrid[max(i - 3, 0) : min(i + 4, 12), max(j - 3, 0) : min(j + 4, 11)]
        ring = (np.abs(ys - i) > 1) | (np.abs(xs - j) > 1)
        px = cube[ys[ring], xs[ring]]
        mu = px.mean(0)
        cov = np.cov(px, rowvar=False, bias=True)
        cov += 0.01 * np.trace(cov) / 3 * np.eye(3)
        d = cube[i, j] - mu
        assert got[i, j] == pytest.approx(d @ np.linalg.solve(cov, d), rel=1e-6)
    np.testing.assert_allclose(anomaly.local_rx(cube, 3, 7, reg=0.01, rows=2), got, rtol=1e-10)  # row blocks
    np.testing.assert_allclose(anomaly.local_rx(cube, 3, 7, reg=0.01, rows=1), got, rtol=1e-10)
    # radiance-like offsets: the running sums work on the centred cube, so no cancellation (RX is shift-invariant)
    np.testing.assert_allclose(anomaly.local_rx(cube + 1e4, 3, 7, reg=0.01), got, rtol=1e-9)  # uncentred: 1.7e-7
    with pytest.raises(ValueError, match="larger than the image"):
        anomaly.local_rx(cube, 3, 13)
    with pytest.raises(ValueError, match="odd"):
        anomaly.local_rx(cube, 2, 7)


def test_synthetic_scene_target_difficulty(big_scene):
    s = big_scene
    names = list(s.target_names)
    rx = {
        r["target"]: r["auc"]
        for r in anomaly.evaluate_targets(anomaly.global_rx(s.cube, s.background), s.inner, s.outer, names=names)
    }
    gmm = {
        r["target"]: r["auc"]
        for r in anomaly.evaluate_targets(
            anomaly.gmm_scores(s.cube, s.cube[s.background], n_components=6), s.inner, s.outer, names=names
        )
    }
    assert rx["bright panel"] >= 0.9 and rx["camouflage panel"] >= 0.9
    assert gmm["in-ellipsoid"] > rx["in-ellipsoid"] + 0.3  # multimodal model sees what global RX cannot
    assert rx["in-ellipsoid"] < 0.7
    assert rx["low-contrast"] < 0.75 and gmm["low-contrast"] < 0.75  # hard for every method


# ----------------------------------------------------------------------------- GAN scores


def _tiny_generator():
    g = gan.Generator(dim=2, noise_dim=3)
    p = g.init(jax.random.key(0), jnp.zeros((1, 3)))["params"]
    return (lambda params, z: g.apply({"params": params}, z)), p


def test_recreation_cost_finds_the_generating_z_and_streams_in_chunks():
    ga, p = _tiny_generator()
    z_true = jax.random.normal(jax.random.key(1), (10, 3)) * 0.5
    x = np.asarray(ga(p, z_true))
    noise = np.asarray(jax.random.uniform(jax.random.key(2), x.shape, minval=-0.5, maxval=0.5))
    far = np.clip(x + noise, -1, 1)
    c = anomaly.recreation_cost(
        jax.random.key(0), ga, p, np.r_[x, far], noise_dim=3, runs=4, iterations=300, lr=0.5, chunk=7
    )
    assert c[:10].max() < 0.1 * c[10:].min()  # samples of G are recreated, off-manifold pixels are not
    # the cost equals the objective at the returned z
    c2, z = anomaly.recreation_cost(
        jax.random.key(0), ga, p, x, noise_dim=3, runs=2, iterations=5, chunk=4, return_z=True, noise_weight=1
    )
    direct = np.mean((x - np.asarray(ga(p, z))) ** 2, axis=(1, 2, 3)) + 0.1 * np.mean(np.asarray(z) ** 2, -1)
    np.testing.assert_allclose(c2, direct, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="runs"):
        anomaly.recreation_cost(jax.random.key(0), ga, p, x, noise_dim=3, runs=0)


def test_more_restarts_never_worse():
    ga, p = _tiny_generator()
    x = np.asarray(jax.random.uniform(jax.random.key(3), (16, 20, 1, 1), minval=-1, maxval=1))
    one = anomaly.recreation_cost(jax.random.key(0), ga, p, x, noise_dim=3, runs=1, iterations=20)
    # same key: the first start of the 4-run problem is not the 1-run start, so compare against a superset
    many = np.minimum(one, anomaly.recreation_cost(jax.random.key(0), ga, p, x, noise_dim=3, runs=4, iterations=20))
    assert np.all(many <= one)


def test_discriminator_and_anogan_scores():
    critic = gan.Critic(dim=2)
    x = np.asarray(jax.random.uniform(jax.random.key(3), (9, 20, 1, 1), minval=-1, maxval=1))
    pc = critic.init(jax.random.key(0), jnp.asarray(x[:1]))["params"]
    ca = lambda p, a: critic.apply({"params": p}, a)
    d = anomaly.discriminator_scores(ca, pc, x, chunk=4)
    np.testing.assert_allclose(d, -np.asarray(ca(pc, x)), rtol=1e-5, atol=1e-6)
    ga, pg = _tiny_generator()
    feats = lambda p, a: critic.apply({"params": p}, a, method=critic.features)
    a0 = anomaly.anogan_scores(jax.random.key(0), ga, pg, feats, pc, x, noise_dim=3, lam=0.0, iterations=5)
    r = anomaly.recreation_cost(jax.random.key(0), ga, pg, x, noise_dim=3, iterations=5)
    np.testing.assert_allclose(a0, r, rtol=1e-6)
    with pytest.raises(ValueError, match="lam"):
        anomaly.anogan_scores(jax.random.key(0), ga, pg, feats, pc, x, noise_dim=3, lam=2.0)


# ----------------------------------------------------------------------------- scenes


def test_scene_is_deterministic_and_masks_consistent(scene):
    again = data.make_hyperspectral_scene(64, 64, seed=1)
    np.testing.assert_array_equal(scene.cube, again.cube)
    assert scene.cube.shape == (64, 64, 20) and scene.inner.shape == (14, 64, 64)
    assert scene.cube.min() >= 0 and scene.cube.max() < 256 and np.all(scene.cube == np.floor(scene.cube))
    assert np.all(scene.outer[scene.inner])  # inner is inside outer
    assert np.all(scene.inner.sum((1, 2)) >= 1)
    assert np.any(scene.outer & ~scene.inner)  # sub-pixel placement leaves mixed border pixels
    assert np.allclose(scene.abundances.sum(-1), 1, atol=1e-5)


def test_scale_windows_and_split(scene):
    x = data.scale_cube(scene.cube)
    assert x.min() >= -1 and x.max() < 1
    np.testing.assert_allclose(x, scene.cube.astype(np.float64) * 2 / 255.99 - 1, atol=1e-6)
    w = data.pixel_windows(x, 3, np.array([0, 64 * 5 + 7]))
    assert w.shape == (2, 20, 3, 3)
    np.testing.assert_array_equal(w[1, :, 1, 1], x[5, 7])
    np.testing.assert_array_equal(w[1, :, 0, 2], x[4, 8])
    np.testing.assert_array_equal(w[0, :, 0, 0], x[1, 1])  # reflect padding at the corner
    sp = data.window_split(scene, 1)
    bg = np.flatnonzero(scene.background.ravel())
    assert sorted(np.r_[sp["train"], sp["val"]]) == sorted(bg)
    assert len(sp["val"]) == round(0.2 * len(bg))
    np.testing.assert_array_equal(np.sort(sp["anomaly"]), np.flatnonzero(scene.inner.any(0).ravel()))
    sp3 = data.window_split(scene, 3)
    assert len(sp3["train"]) + len(sp3["val"]) < len(bg)  # windows touching a target are no longer background


def test_scene_bad_input(scene):
    bad = scene.cube.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        data.check_cube(bad)
    with pytest.raises(ValueError, match="negative"):
        data.check_cube(scene.cube - 300)
    with pytest.raises(ValueError, match="bands"):
        data.check_cube(scene.cube, bands=19)
    with pytest.raises(ValueError, match="larger than the image"):
        data.pixel_windows(scene.cube, 65)
    with pytest.raises(ValueError, match="masks"):
        data.HyperspectralScene(cube=scene.cube, inner=scene.inner[:, :3], outer=scene.outer)
    with pytest.raises(ValueError, match="scores"):
        anomaly.evaluate_targets(np.zeros(5), scene.inner, scene.outer)


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_load_envi(tmp_path, interleave):
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 1000, size=(5, 7, 4)).astype(np.uint16)
    order = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    cube.transpose(order).astype(">u2").tofile(tmp_path / "scene.img")
    (tmp_path / "scene.hdr").write_text(
        "ENVI\nsamples = 7\nlines = 5\nbands = 4\nheader offset = 0\ndata type = 12\n"
        f"interleave = {interleave}\nbyte order = 1\nwavelength = {{0.4, 0.5, 0.6, 0.7}}\n"
    )
    s = data.load_scene(str(tmp_path / "scene.hdr"))
    np.testing.assert_array_equal(s.cube, cube)
    assert s.inner.shape == (0, 5, 7)


def test_load_npz_and_mat(tmp_path, scene):
    from scipy.io import savemat

    np.savez(tmp_path / "s.npz", cube=scene.cube, inner=scene.inner, outer=scene.outer)
    s = data.load_scene(str(tmp_path / "s.npz"))
    np.testing.assert_array_equal(s.cube, scene.cube)
    np.testing.assert_array_equal(s.outer, scene.outer)
    savemat(tmp_path / "s.mat", {"img": scene.cube, "inner": scene.inner.astype(np.uint8)})
    s = data.load_scene(str(tmp_path / "s.mat"), cube_key="img")
    np.testing.assert_array_equal(s.inner, scene.inner)
    np.testing.assert_array_equal(s.outer, scene.inner)  # outer defaults to inner
    np.save(tmp_path / "c.npy", scene.cube)
    assert data.load_scene(str(tmp_path / "c.npy"), inner=scene.inner).inner.shape == scene.inner.shape
    with pytest.raises(ValueError, match="cube_key"):
        data.load_scene(str(tmp_path / "s.mat"))
    with pytest.raises(ValueError, match="unsupported"):
        data.load_scene(str(tmp_path / "s.xyz"))


def test_recreation_cost_compiles_once_across_chunks_and_calls():
    ga, p = _tiny_generator()
    traces = []

    def counted(params, z):
        traces.append(1)  # runs only while tracing
        return ga(params, z)

    x = np.asarray(jax.random.uniform(jax.random.key(5), (10, 20, 1, 1), minval=-1, maxval=1))
    anomaly.recreation_cost(jax.random.key(0), counted, p, x, noise_dim=3, iterations=3, chunk=4)  # 3 chunks
    n = len(traces)
    anomaly.recreation_cost(jax.random.key(1), counted, p, x[::-1], noise_dim=3, iterations=3, chunk=4)
    assert n > 0 and len(traces) == n


def test_rx_on_a_constant_band_names_it_and_suggests_reg():
    cube = np.random.default_rng(0).normal(size=(10, 10, 4))
    cube[..., 2] = 7.0  # a dead band
    with pytest.raises(ValueError, match=r"band\(s\) \[2\] are constant .* pass reg > 0"):
        anomaly.global_rx(cube, reg=0)
    s = anomaly.global_rx(cube)  # the default reg handles it: finite scores
    assert np.isfinite(s).all()
    with pytest.raises(ValueError, match="every band of `background` is constant"):
        anomaly.global_rx(np.ones((6, 6, 3)))
    dup = np.concatenate([cube[..., :2], cube[..., :1]], -1)  # band 2 repeats band 0: singular, not constant
    with pytest.raises(ValueError, match="singular .* pass reg > 0"):
        anomaly.global_rx(dup, reg=0)


def test_recreation_cost_default_chunk_fits_the_memory_budget():
    """chunk=None halves 4,096 (capped at the pixel count) until the compiled loop's temporaries fit the budget:
    the result is the explicit-chunk result for that chunk (same program), and the chunk's program fits."""
    import importlib

    an = importlib.import_module("jaxkit.anomaly")
    ga, p = _tiny_generator()
    x = np.asarray(ga(p, jax.random.normal(jax.random.key(3), (64, 3))))
    opts = dict(runs=4, iterations=3, noise_dim=3, lr=0.1, momentum=0.9, w=0.0)

    def temp(c):
        probe = jax.ShapeDtypeStruct((c,) + x.shape[1:], jnp.float32)
        return (
            an._recreate.lower(jax.random.key(0), ga, p, probe, **opts).compile().memory_analysis().temp_size_in_bytes
        )

    budget = int(temp(64) * 0.6)  # the whole image does not fit; a power-of-two chunk does (few compilations)
    k = next(c for c in (32, 16, 8, 4, 2, 1) if temp(c) <= budget)
    assert k < 64
    auto = anomaly.recreation_cost(jax.random.key(0), ga, p, x, noise_dim=3, runs=4, iterations=3, memory_budget=budget)
    fixed = anomaly.recreation_cost(jax.random.key(0), ga, p, x, noise_dim=3, runs=4, iterations=3, chunk=k)
    np.testing.assert_allclose(auto, fixed, rtol=1e-6)
    whole = anomaly.recreation_cost(jax.random.key(0), ga, p, x, noise_dim=3, runs=4, iterations=3)
    np.testing.assert_allclose(
        whole,
        anomaly.recreation_cost(jax.random.key(0), ga, p, x, noise_dim=3, runs=4, iterations=3, chunk=64),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="memory_budget"):
        anomaly.recreation_cost(jax.random.key(0), ga, p, x, noise_dim=3, memory_budget=-1)


def test_scorers_and_the_target_table_refuse_what_they_cannot_use():
    cube = np.random.default_rng(0).normal(size=(12, 12, 2))
    with pytest.raises(ValueError, match="`reg` must be a finite number >= 0"):
        anomaly.local_rx(cube, reg=-1.0)
    with pytest.raises(ValueError, match="`n_components` must be >= 1"):
        anomaly.gmm_scores(cube, cube, n_components=0)
    with pytest.raises(ValueError, match="`max_fit` must be >= 1 or None"):
        anomaly.gmm_scores(cube, cube, max_fit=0)
    critic = lambda w, x: x @ w
    with pytest.raises(ValueError, match="`chunk` must be >= 1"):
        anomaly.discriminator_scores(critic, jnp.ones(2), np.ones((3, 2)), chunk=0)
    with pytest.raises(ValueError, match="one score per sample"):
        anomaly.discriminator_scores(lambda w, x: jnp.stack([x @ w] * 2, 1), jnp.ones(2), np.ones((3, 2)))
    gen = lambda p, z: z @ p
    for kw, msg in ((dict(lr=0.0), "`lr` must be a finite number > 0"), (dict(momentum=1.0), "`momentum` must lie")):
        with pytest.raises(ValueError, match=msg):
            anomaly.recreation_cost(jax.random.key(0), gen, jnp.eye(3, 5), np.ones((2, 5)), noise_dim=3, **kw)
    scores = cube[..., 0]
    inner = np.zeros((1, 12, 12), bool)
    inner[0, 3, 3] = True
    with pytest.raises(ValueError, match="`names` has 2 entries for 1 targets"):
        anomaly.evaluate_targets(scores, inner, inner, names=["a", "b"])
    with pytest.raises(ValueError, match="no negative"):
        anomaly.evaluate_targets(scores, inner, np.ones_like(inner))
    with pytest.raises(ValueError, match="finite, non-empty"):
        anomaly.plot_heatmap(None, np.full((2, 2), np.nan))
