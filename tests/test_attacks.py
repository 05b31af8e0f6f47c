"""jaxkit.robust: softRmax head, FGSM / BIM / PGD, average-sample and transfer attacks, margins, robust accuracy."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_accuracy_close

from jaxkit import robust


def naive_softrmax(z):
    z = np.asarray(z, np.float64)
    d = np.stack([np.sum((z - np.eye(z.shape[-1])[k]) ** 2, -1) for k in range(z.shape[-1])], -1)
    inv = 1.0 / d
    return inv / inv.sum(-1, keepdims=True)


def test_softrmax_equals_naive_formula_in_float64():
    z = np.random.default_rng(0).normal(size=(50, 7)) * 3
    with jax.enable_x64(True):
        p = np.asarray(robust.softrmax(jnp.asarray(z, jnp.float64)))
    np.testing.assert_allclose(p, naive_softrmax(z), rtol=1e-12)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-12)


def test_softrmax_float32_is_accurate_near_a_centre():
    rng = np.random.default_rng(1)
    k = 10
    z = np.eye(k)[rng.integers(0, k, 64)] + rng.normal(size=(64, k)) * 1e-3  # where training drives z
    ref = naive_softrmax(z)
    lp = np.asarray(robust.softrmax_log_probs(jnp.asarray(z, jnp.float32)), np.float64)
    np.testing.assert_allclose(lp, np.log(ref), rtol=1e-4, atol=1e-4)
    # the O(k) identity alone, in float32, is what the recomputation fixes: it is far off here
    z32 = z.astype(np.float32)
    d_id = (z32**2).sum(-1, keepdims=True) - 2 * z32 + np.float32(1)
    d_ref = np.stack([np.sum((z - np.eye(k)[j]) ** 2, -1) for j in range(k)], -1)
    top = d_ref.argmin(-1)
    rel = np.abs(d_id[np.arange(64), top] - d_ref[np.arange(64), top]) / d_ref[np.arange(64), top]
    assert rel.max() > 1e-2
    d = np.asarray(robust.softrmax_distances(jnp.asarray(z32)), np.float64)
    np.testing.assert_allclose(d[np.arange(64), top], d_ref[np.arange(64), top], rtol=1e-3)


def test_softrmax_is_conservative_along_rays_where_softmax_is_not():
    k = 5
    v = np.array([2.0, -1.0, 0.5, 0.3, -2.0])
    for t in (10.0, 100.0, 1000.0):
        p = np.asarray(robust.softrmax(jnp.asarray(t * v, jnp.float32)))
        # d_k = t^2 |v|^2 - 2 t v_k + 1, so p_k - 1/k = O(1/t): bound 4 max|v| / (t |v|^2)
        assert np.max(np.abs(p - 1 / k)) <= 4 * np.abs(v).max() / (t * (v @ v))
        q = np.asarray(jax.nn.softmax(jnp.asarray(t * v)))
        assert q[0] >= 1 - k * np.exp(-1.5 * t) - 1e-6  # one-hot: v_0 leads the rest by 1.5
    with pytest.raises(AssertionError):  # the bound is tight enough to fail for softmax
        assert np.max(np.abs(np.asarray(jax.nn.softmax(jnp.asarray(10 * v))) - 1 / k)) <= 0.4 / (v @ v)


def test_softrmax_is_permutation_equivariant_and_cross_entropy_is_a_drop_in():
    rng = np.random.default_rng(2)
    z = jnp.asarray(rng.normal(size=(8, 6)), jnp.float32)
    perm = rng.permutation(6)
    np.testing.assert_allclose(robust.softrmax(z[:, perm]), robust.softrmax(z)[:, perm], rtol=1e-5, atol=1e-7)
    y = jnp.asarray(rng.integers(0, 6, 8))
    ce = robust.softrmax_cross_entropy(z, y)
    np.testing.assert_allclose(ce, -np.log(naive_softrmax(np.asarray(z))[np.arange(8), y]), rtol=1e-4)
    assert ce.shape == optax.softmax_cross_entropy_with_integer_labels(z, y).shape
    g = jax.grad(lambda zz: robust.softrmax_cross_entropy(zz, y).sum())(jnp.eye(6)[y])  # exactly at the centres
    assert np.all(np.isfinite(g))
    with pytest.raises(TypeError, match="labels"):
        robust.softrmax_cross_entropy(z, y.astype(jnp.float32))


def logistic(p, x):  # two-class softmax with logits (0, w.x + b) == logistic regression
    s = x.reshape(x.shape[0], -1) @ p["w"] + p["b"]
    return jnp.stack([jnp.zeros_like(s), s], -1)


@pytest.fixture(scope="module")
def logreg():
    rng = np.random.default_rng(3)
    p = {"w": jnp.asarray(rng.normal(size=6), jnp.float32), "b": jnp.float32(0.3)}
    x = jnp.asarray(rng.uniform(size=(20, 6)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, 20))
    return p, x, y


def test_fgsm_on_logistic_regression_equals_the_closed_form(logreg):
    p, x, y = logreg
    sig = 1 / (1 + np.exp(-(np.asarray(x) @ np.asarray(p["w"]) + float(p["b"]))))
    ref = np.asarray(x) + 0.1 * np.sign((sig - np.asarray(y))[:, None] * np.asarray(p["w"])[None])
    np.testing.assert_allclose(robust.fgsm(logistic, p, x, y, 0.1), ref, atol=1e-6)
    tgt = 1 - y  # targeted: step down the target's loss
    ref_t = np.asarray(x) - 0.1 * np.sign((sig - np.asarray(tgt))[:, None] * np.asarray(p["w"])[None])
    np.testing.assert_allclose(robust.fgsm(logistic, p, x, tgt, 0.1, targeted=True), ref_t, atol=1e-6)
    clipped = robust.fgsm(logistic, p, x, y, 0.5, clip=(0.0, 1.0))
    assert float(clipped.min()) >= 0 and float(clipped.max()) <= 1
    l2 = robust.fgsm(logistic, p, x, y, 0.1, norm="l2")
    np.testing.assert_allclose(np.linalg.norm(np.asarray(l2 - x), axis=1), 0.1, rtol=1e-5)


class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        return nn.Dense(5)(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def net():
    m = Net()
    x = jax.random.uniform(jax.random.key(0), (16, 6, 6, 1))
    y = jnp.arange(16) % 5
    return m.apply, m.init(jax.random.key(1), x), x, y


def ce(apply, v, x, y):
    return np.asarray(optax.softmax_cross_entropy_with_integer_labels(apply(v, x), y))


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_pgd_stays_in_the_ball_and_never_lowers_the_loss(net, norm):
    apply, v, x, y = net
    for rs in (True, False):
        xa = robust.pgd(jax.random.key(2), apply, v, x, y, 0.1, norm=norm, steps=7, random_start=rs, clip=(0, 1))
        d = np.asarray(xa - x).reshape(16, -1)
        size = np.abs(d).max(1) if norm == "inf" else np.linalg.norm(d, axis=1)
        assert size.max() <= 0.1 + 1e-5
        assert float(xa.min()) >= 0 and float(xa.max()) <= 1
        start = x if not rs else xa  # keep_best: never worse than the start (the clean x without random start)
        if not rs:
            assert np.all(ce(apply, v, xa, y) >= ce(apply, v, start, y) - 1e-6)
    last = robust.pgd(None, apply, v, x, y, 0.1, norm=norm, steps=7, random_start=False, keep_best=False)
    best = robust.pgd(None, apply, v, x, y, 0.1, norm=norm, steps=7, random_start=False)
    assert np.all(ce(apply, v, best, y) >= ce(apply, v, last, y) - 1e-6)


def test_bim_equals_a_python_loop_of_signed_steps(net):
    apply, v, x, y = net
    ref = x
    g = jax.grad(lambda xx: jnp.sum(optax.softmax_cross_entropy_with_integer_labels(apply(v, xx), y)))
    for _ in range(5):
        ref = x + jnp.clip(ref + 0.02 * jnp.sign(g(ref)) - x, -0.1, 0.1)
    np.testing.assert_allclose(robust.bim(apply, v, x, y, 0.1, steps=5), ref, atol=1e-6)


def test_average_sample_attack_and_class_means():
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(30, 3, 3, 1)).astype(np.float32)
    y = np.arange(30) % 3
    means = robust.class_means(x, y, 3)
    np.testing.assert_allclose(means, np.stack([x[y == c].mean(0) for c in range(3)]), rtol=1e-6)
    xa = robust.average_sample_attack(x, y, means, 2, 0.1)
    ref = x + 0.1 * np.sign(np.asarray(means)[2][None] - np.asarray(means)[y])
    np.testing.assert_allclose(xa, ref, rtol=1e-6)
    np.testing.assert_allclose(xa[y == 2], x[y == 2])  # already the target: sign(0) = 0
    with pytest.raises(ValueError, match="every class"):
        robust.class_means(x, y, 4)


def test_margin_loss_is_the_negative_prediction_margin():
    z = jnp.asarray([[1.0, 3.0, 2.0], [0.5, -1.0, 0.0]])
    np.testing.assert_allclose(robust.margin_loss(z, jnp.asarray([1, 0])), [-1.0, -0.5])
    assert robust.LOSSES["margin"] is robust.margin_loss


def test_prediction_margin_and_magnitude_margin_ratio_on_a_linear_model():
    rng = np.random.default_rng(5)
    w, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    x, y = rng.normal(size=(10, 4)).astype(np.float32), rng.integers(0, 3, 10)
    p = {"w": jnp.asarray(w, jnp.float32), "b": jnp.asarray(b, jnp.float32)}
    z = x @ w + b
    other = np.where(np.eye(3)[y] > 0, -np.inf, z)
    j = other.argmax(1)
    margin = z[np.arange(10), y] - other.max(1)
    np.testing.assert_allclose(robust.prediction_margin(jnp.asarray(z, jnp.float32), y), margin, rtol=1e-5)
    gdiff = w[:, y].T - w[:, j].T
    r1 = robust.magnitude_margin_ratio(lambda q, xx: xx @ q["w"] + q["b"], p, x, y)
    np.testing.assert_allclose(r1, np.abs(gdiff).sum(1) / 4 / margin, rtol=1e-4)
    r2 = robust.magnitude_margin_ratio(lambda q, xx: xx @ q["w"] + q["b"], p, x, y, ord="l2")
    np.testing.assert_allclose(r2, np.linalg.norm(gdiff, axis=1) / margin, rtol=1e-4)


def test_robust_accuracy_is_one_compiled_call_that_matches_a_loop(net):
    apply, v, x, y = net
    traces = []

    def counted(p, xx):
        traces.append(1)
        return apply(p, xx)

    eps = [0.0, 0.05, 0.1, 0.2]
    acc = robust.robust_accuracy(counted, v, x, y, eps, "fgsm")
    n = len(traces)
    robust.robust_accuracy(counted, v, x, y, [0.3, 0.01, 0.02, 0.5], "fgsm")
    assert len(traces) == n  # same shapes: no retrace
    # the loop is another program (per-eps attack, separate forward pass): decisions agree up to near ties
    loop = [apply(v, robust.fgsm(apply, v, x, y, e) if e else x) for e in eps]
    for accs in (
        acc,
        robust.robust_accuracy(apply, v, x, y, eps, "fgsm", batch_size=5),
        robust.robust_accuracy(apply, v, x, y, eps, "fgsm", vectorize=False),
    ):
        for a, logits in zip(accs, loop):
            assert_accuracy_close(a, logits, y)
    bim = robust.robust_accuracy(apply, v, x, y, [0.1], "bim", steps=4)
    assert_accuracy_close(bim[0], apply(v, robust.bim(apply, v, x, y, 0.1, steps=4)), y)
    # batch counts are summed on the device and fetched once (4 batches), not synced per batch
    fetched, real = [], jax.device_get
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jax, "device_get", lambda t: fetched.append(1) or real(t))
        chunked = robust.robust_accuracy(apply, v, x, y, eps, "fgsm", batch_size=5)
    assert len(fetched) == 1
    for a, logits in zip(chunked, loop):
        assert_accuracy_close(a, logits, y)
    # 16 examples in batches of 5: the last batch (1 example) is padded, so the batches share one program
    before = robust.attacks._robust_hits._cache_size()
    robust.robust_accuracy(apply, v, x, y, [0.0, 0.1], "fgsm", batch_size=5)
    assert robust.attacks._robust_hits._cache_size() - before <= 1


def test_transfer_and_average_attacks_in_robust_accuracy(net):
    apply, v, x, y = net
    v2 = Net().init(jax.random.key(7), x)
    acc = robust.robust_accuracy(apply, v, x, y, [0.2], "fgsm", source=(apply, v2))
    xa = robust.fgsm(apply, v2, x, y, 0.2)  # crafted on the substitute, evaluated on the target model
    assert_accuracy_close(acc[0], apply(v, xa), y)
    means = robust.class_means(x, y, 5)
    acc, succ = robust.robust_accuracy(apply, v, x, y, [0.3], "average", means=means, target=1, return_success=True)
    xa = robust.average_sample_attack(x, y, means, 1, 0.3)
    logits = apply(v, xa)
    assert_accuracy_close(acc[0], logits, y)
    assert_accuracy_close(succ[0], logits, np.ones_like(y))


def test_attack_bad_input(net):
    apply, v, x, y = net
    with pytest.raises(ValueError, match="eps"):
        robust.fgsm(apply, v, x, y, -0.1)
    with pytest.raises(ValueError, match="norm"):
        robust.pgd(None, apply, v, x, y, 0.1, norm="l3", random_start=False)
    with pytest.raises(ValueError, match="key"):
        robust.pgd(None, apply, v, x, y, 0.1)
    with pytest.raises(ValueError, match="attack"):
        robust.robust_accuracy(apply, v, x, y, [0.1], "cw")
    with pytest.raises(ValueError, match="means"):
        robust.robust_accuracy(apply, v, x, y, [0.1], "average", target=1)
    with pytest.raises(ValueError, match="eps"):
        robust.robust_accuracy(apply, v, x, y, [0.1, -1.0])
    with pytest.raises(ValueError, match="labels"):
        robust.fgsm(apply, v, x, y[:3], 0.1)
    with pytest.raises(ValueError, match="loss"):
        robust.fgsm(apply, v, x, y, 0.1, loss="hinge")
