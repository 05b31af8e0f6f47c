"""Losses: label smoothing targets, HIR, MK-MMD, class-balanced focal loss, running-mean loss balancing."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxkit import losses

RNG = np.random.default_rng(0)


def _brute(x, y, c, p):
    d = np.zeros((c, c))
    for a in range(c):
        for b in range(c):
            xa, xb = x[y == a], x[y == b]
            dist = (
                np.abs(xa[:, None] - xb[None]).sum(-1) if p == 1 else np.sqrt(((xa[:, None] - xb[None]) ** 2).sum(-1))
            )
            if a == b:
                n = len(xa)
                d[a, b] = dist.sum() / (n * (n - 1)) if n > 1 else 0.0
            else:
                d[a, b] = dist.mean()
    return d


@pytest.mark.parametrize("p", [1, 2])
def test_class_mean_pairwise_distance_equals_brute_force(p):
    x = RNG.standard_normal((83, 2, 3)).astype(np.float32)  # flattened inside; 83 rows: chunks do not divide
    y = RNG.integers(0, 4, 83)
    got = np.asarray(losses.class_mean_pairwise_distance(x, y, 4, p=p, chunk=16))
    np.testing.assert_allclose(got, _brute(x.reshape(83, -1).astype(np.float64), y, 4, p), rtol=2e-4)


def test_similarity_rows_and_beta_zero_is_uniform_over_wrong_classes():
    d = jnp.asarray(RNG.random((5, 5)) + 1.0)
    s = losses.class_similarity_matrix(d, beta=3.0)
    np.testing.assert_allclose(np.asarray(s.sum(1)), 1.0, atol=1e-6)
    assert np.allclose(np.diag(np.asarray(s)), 0.0)
    # closer classes get more mass
    row = np.asarray(d[0, 1:])
    assert np.argmax(np.asarray(s[0, 1:])) == np.argmin(row)
    y = jnp.array([0, 3, 4])
    soft = losses.similarity_smooth_labels(y, losses.class_similarity_matrix(d, beta=0.0), alpha=0.2)
    want = 0.8 * np.eye(5)[np.asarray(y)] + 0.2 * (1 - np.eye(5)[np.asarray(y)]) / 4
    np.testing.assert_allclose(np.asarray(soft), want, atol=1e-6)
    assert float(soft[0].sum()) == pytest.approx(1.0) and float(1 - soft[0, 0]) == pytest.approx(0.2)  # alpha off-class
    u = losses.uniform_smooth_labels(y, 5, 0.1)
    np.testing.assert_allclose(np.asarray(u[0]), [0.92, 0.02, 0.02, 0.02, 0.02], atol=1e-6)
    logits = jnp.asarray(RNG.standard_normal((3, 5)), jnp.float32)
    assert np.isfinite(float(optax.softmax_cross_entropy(logits, soft).mean()))
    s_all = losses.class_similarity_matrix(d, beta=3.0, include_diagonal=True)
    assert not np.allclose(np.asarray(s_all), np.asarray(s))  # the option changes the standardisation


def test_jit_and_bad_input():
    f = jax.jit(lambda x, y: losses.class_mean_pairwise_distance(x, y, 3))
    assert f(jnp.ones((6, 2)), jnp.array([0, 1, 2, 0, 1, 2])).shape == (3, 3)
    with pytest.raises(ValueError, match="labels"):
        losses.class_mean_pairwise_distance(np.ones((4, 2)), np.array([0, 1, 5, 0]), 3)
    with pytest.raises(ValueError, match="square"):
        losses.class_similarity_matrix(np.ones((3, 2)))
    with pytest.raises(ValueError, match="alpha"):
        losses.uniform_smooth_labels(np.array([0, 1]), 2, 1.5)
    with pytest.raises(ValueError, match="`p`"):
        losses.class_mean_pairwise_distance(np.ones((4, 2)), np.array([0, 1, 1, 0]), p=3)


# ---------------------------------------------------------------- shift and imbalance
from jaxkit.losses import (
    BalancerState,
    RunningMeanBalancer,
    balanced_sum,
    class_balanced_focal_loss,
    class_balanced_weights,
    focal_loss,
    hir_loss,
    mk_mmd,
    pairwise_kl,
)


def _kl(p, q):
    return float(np.sum(p * (np.log(p) - np.log(q))))


def test_hir_equals_a_double_loop():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(9, 4))
    y = np.array([0, 1, 0, 2, 1, 0, 3, 1, 0])
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    one, both, pairs = 0.0, 0.0, 0
    for i in range(9):
        for j in range(i + 1, 9):
            if y[i] == y[j]:
                one += _kl(p[i], p[j])
                both += _kl(p[i], p[j]) + _kl(p[j], p[i])
                pairs += 1
    np.testing.assert_allclose(hir_loss(z, y), one, rtol=1e-5)
    np.testing.assert_allclose(hir_loss(z, y, symmetric=True), both, rtol=1e-5)
    np.testing.assert_allclose(hir_loss(z, y, reduction="mean"), one / pairs, rtol=1e-5)
    np.testing.assert_allclose(pairwise_kl(z)[1, 4], _kl(p[1], p[4]), rtol=1e-5)


def test_hir_invariances_and_gradients():
    z = jnp.array([[1.0, 2.0, 0.5], [1.0, 2.0, 0.5], [0.0, 0.0, 3.0], [4.0, 0.0, 0.0]])
    y = jnp.array([0, 0, 1, 2])
    assert abs(float(hir_loss(z, y))) < 1e-6  # equal same-class logits
    z2 = jax.random.normal(jax.random.key(0), (6, 3))
    y2 = jnp.array([0, 0, 1, 1, 2, 2])
    shifted = z2.at[3].add(5.0)  # a constant added to one row leaves its softmax unchanged
    np.testing.assert_allclose(hir_loss(z2, y2), hir_loss(shifted, y2), rtol=1e-5)
    g = jax.grad(lambda zz: hir_loss(zz, y2))(z2)
    assert all(float(jnp.abs(g[i]).sum()) > 0 for i in range(6))  # both members of every pair get a gradient
    g1 = jax.jit(jax.grad(lambda zz: hir_loss(zz, y2, symmetric=True)))(z2)
    assert np.isfinite(np.asarray(g1)).all()


def test_mk_mmd_brute_force_and_closed_form():
    rng = np.random.default_rng(1)
    xs, xt = rng.normal(size=(20, 3)), rng.normal(size=(25, 3)) + 0.5
    bw = np.array([0.5, 1.0, 2.0])

    def k(a, b):
        d = ((a[:, None] - b[None]) ** 2).sum(-1)
        return np.mean([np.exp(-d / (2 * s**2)) for s in bw], axis=0)

    kss, ktt, kst = k(xs, xs), k(xt, xt), k(xs, xt)
    biased = kss.mean() + ktt.mean() - 2 * kst.mean()
    unb = (kss.sum() - np.trace(kss)) / (20 * 19) + (ktt.sum() - np.trace(ktt)) / (25 * 24) - 2 * kst.mean()
    np.testing.assert_allclose(mk_mmd(xs, xt, bw, unbiased=False), biased, rtol=1e-4)
    np.testing.assert_allclose(mk_mmd(xs, xt, bw), unb, rtol=1e-4)
    np.testing.assert_allclose(mk_mmd(xs, xt, bw, squared=False), np.sqrt(unb), rtol=1e-4)
    # two Gaussians N(0, I) and N(mu, I) in d = 2, one kernel sigma: closed-form MMD^2
    d, s, mu = 2, 1.5, np.array([1.0, 0.0])
    a = jax.random.normal(jax.random.key(2), (4000, d))
    b = jax.random.normal(jax.random.key(3), (4000, d)) + mu
    same = (s**2 / (s**2 + 2)) ** (d / 2)
    cross = (s**2 / (s**2 + 2)) ** (d / 2) * np.exp(-mu @ mu / (2 * (s**2 + 2)))
    np.testing.assert_allclose(mk_mmd(a, b, [s]), 2 * same - 2 * cross, atol=3e-3)


def test_unbiased_mmd_averages_to_zero_on_one_distribution():
    f = jax.jit(
        jax.vmap(
            lambda k: jnp.stack(
                [
                    mk_mmd(*jnp.split(jax.random.normal(k, (40, 3)), 2), [1.0]),
                    mk_mmd(*jnp.split(jax.random.normal(k, (40, 3)), 2), [1.0], unbiased=False),
                ]
            )
        )
    )
    vals = np.asarray(f(jax.random.split(jax.random.key(4), 400)))
    se = vals[:, 0].std() / np.sqrt(400)
    assert abs(vals[:, 0].mean()) < 3 * se  # unbiased: mean 0
    assert vals[:, 1].mean() > 10 * se  # biased: positive


def test_default_bandwidths_and_bad_input():
    xs = jax.random.normal(jax.random.key(5), (30, 4))
    assert np.isfinite(float(mk_mmd(xs, xs + 1)))
    with pytest.raises(ValueError, match="bandwidths"):
        mk_mmd(xs, xs, [1.0, 0.0])
    with pytest.raises(ValueError, match="feature size"):
        mk_mmd(xs, xs[:, :3])
    with pytest.raises(ValueError, match="at least 2"):
        hir_loss(jnp.zeros((1, 3)), jnp.zeros(1, jnp.int32))
    with pytest.raises(ValueError, match="labels"):
        hir_loss(jnp.zeros((3, 3)), jnp.array([0, 1, 3]))


def test_class_balanced_focal_loss_references():
    z = jax.random.normal(jax.random.key(6), (7, 4))
    y = jnp.array([0, 1, 2, 3, 0, 1, 2])
    # gamma = 0, beta = 0: sigmoid binary cross-entropy summed over classes, averaged over the batch
    bce = optax.sigmoid_binary_cross_entropy(z, jax.nn.one_hot(y, 4)).sum(-1).mean()
    np.testing.assert_allclose(class_balanced_focal_loss(z, y, [5, 4, 3, 2], beta=0.0, gamma=0.0), bce, rtol=1e-5)
    # focal term by hand
    zn, yn = np.asarray(z, np.float64), np.asarray(y)
    p = 1 / (1 + np.exp(-zn))
    pt = np.where(np.eye(4)[yn] > 0, p, 1 - p)
    np.testing.assert_allclose(focal_loss(z, y, 2.0), ((1 - pt) ** 2 * -np.log(pt)).sum(-1), rtol=1e-5)
    counts = np.array([100, 10, 5, 1])
    n = counts.sum()
    beta = (n - 1) / n
    w = (1 - beta) / (1 - beta**counts)
    np.testing.assert_allclose(class_balanced_weights(counts), w, rtol=1e-5)
    np.testing.assert_allclose(class_balanced_weights(counts, normalize=True), w * 4 / w.sum(), rtol=1e-5)
    np.testing.assert_allclose(
        class_balanced_focal_loss(z, y, counts, gamma=2.0),
        np.mean(w[yn] * ((1 - pt) ** 2 * -np.log(pt)).sum(-1)),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="beta"):
        class_balanced_weights(counts, beta=1.0)
    with pytest.raises(ValueError, match="counts"):
        class_balanced_weights([3, 0, 2])


def test_running_mean_balancer_hand_computed_and_resumes(tmp_path):
    from jaxkit.checkpoint import Checkpointer

    bal = RunningMeanBalancer(decay=0.5)
    st = bal.init(2)
    w, st = bal.update(jnp.array([2.0, 8.0]), st)
    np.testing.assert_allclose(w, [0.5, 0.125])  # first step: each task weighs 1
    w, st = bal.update(jnp.array([4.0, 0.0]), st)
    np.testing.assert_allclose(st.mean, [3.0, 4.0])  # 0.5 * old + 0.5 * new
    np.testing.assert_allclose(w, [1 / 3, 1 / 4])
    assert int(st.count) == 2
    np.testing.assert_allclose(balanced_sum(jnp.array([3.0, 4.0]), w), 2.0, rtol=1e-6)
    g = jax.grad(lambda l: balanced_sum(l, bal.update(l, st)[0]))(jnp.array([3.0, 4.0]))
    np.testing.assert_allclose(g, w, rtol=1e-6)  # no gradient through the running mean
    with Checkpointer(tmp_path / "ck") as ck:
        ck.save(2, st)
        back, _ = ck.restore(st)
    back = BalancerState(*[jnp.asarray(v) for v in back])
    np.testing.assert_allclose(bal.update(jnp.array([1.0, 1.0]), back)[0], bal.update(jnp.array([1.0, 1.0]), st)[0])
    with pytest.raises(ValueError, match="losses"):
        bal.update(jnp.ones(3), st)


def test_mk_mmd_gradient_with_default_bandwidths_is_finite():
    xs = jax.random.normal(jax.random.key(7), (16, 5))
    g = jax.jit(jax.grad(lambda a: mk_mmd(a, a[::-1] * 0.5 + 1.0)))(xs)
    assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0


def _focal64(z, y, gamma):
    """Float64 reference of the summed sigmoid focal loss, computed stably (log1p / exp of negatives only)."""
    z = np.asarray(z, np.float64)
    t = np.where(np.eye(z.shape[1], dtype=bool)[y], z, -z)
    log_sig = lambda v: -np.logaddexp(0.0, -v)
    return (np.exp(gamma * log_sig(-t)) * -log_sig(t)).sum(-1)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_loss_gradient_is_finite_and_right_at_saturated_logits(gamma):
    """Was NaN (gamma = 0) or inf (gamma = 0.5) at [[20, -20]] with label 0; checked against central differences
    of a float64 reference over logits up to +-100, float32, and the class-balanced version too."""
    z = jnp.array([[20.0, -20.0], [100.0, -100.0], [-100.0, 100.0], [0.3, -1.2], [60.0, 3.0]], jnp.float32)
    y = jnp.array([0, 0, 0, 1, 0])
    g = np.asarray(jax.grad(lambda zz: focal_loss(zz, y, gamma).sum())(z))
    gc = np.asarray(jax.grad(lambda zz: class_balanced_focal_loss(zz, y, [3, 2], gamma=gamma))(z))
    assert np.isfinite(g).all() and np.isfinite(gc).all()
    eps = 1e-4
    num = np.zeros(z.shape)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            d = np.zeros(z.shape)
            d[i, j] = eps
            num[i, j] = (
                _focal64(np.asarray(z) + d, np.asarray(y), gamma).sum()
                - _focal64(np.asarray(z) - d, np.asarray(y), gamma).sum()
            ) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(focal_loss(z, y, gamma), _focal64(z, np.asarray(y), gamma), rtol=1e-5, atol=1e-30)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0])
def test_focal_loss_reuses_optax_and_equals_the_float64_definition(gamma):
    """focal_loss is optax.sigmoid_focal_loss (alpha=None) on one-hot labels, summed over classes: equal to the
    float64 definition on random logits, multi-class and binary (one logit, the true class = optax's label 1)."""
    z = jax.random.normal(jax.random.key(2), (16, 4)) * 3
    y = jax.random.randint(jax.random.key(3), (16,), 0, 4)
    np.testing.assert_allclose(focal_loss(z, y, gamma), _focal64(z, np.asarray(y), gamma), rtol=1e-5, atol=1e-7)
    zb = z[:, :1]
    yb = np.zeros(16, np.int32)
    np.testing.assert_allclose(focal_loss(zb, yb, gamma), _focal64(zb, yb, gamma), rtol=1e-5, atol=1e-7)
    refb = optax.sigmoid_focal_loss(zb[:, 0], jnp.ones(16), gamma=gamma)
    np.testing.assert_allclose(focal_loss(zb, yb, gamma), refb, rtol=1e-6)


def test_smoothing_and_mmd_refuse_inputs_their_formulas_do_not_cover():
    with pytest.raises(ValueError, match=r"no example of class\(es\) \[1\]"):  # its distances would read 0
        losses.class_mean_pairwise_distance(jnp.zeros((3, 1)), jnp.array([0, 0, 2]))
    with pytest.raises(ValueError, match="`beta` must be >= 0"):
        losses.class_similarity_matrix(jnp.ones((3, 3)), beta=-1.0)
    with pytest.raises(ValueError, match="`similarity` must be row-stochastic"):
        losses.similarity_smooth_labels(jnp.array([0]), jnp.array([[0.0, 2.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="`factors` must be a non-empty sequence of positive numbers"):
        losses.median_bandwidths(jnp.zeros((3, 1)), jnp.ones((3, 1)), factors=(0.0, 1.0))
    # the matrix class_similarity_matrix gives passes the new check
    s = losses.class_similarity_matrix(jnp.array([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]]))
    np.testing.assert_allclose(np.asarray(losses.similarity_smooth_labels(jnp.array([1]), s, 0.2)).sum(), 1.0, 1e-6)
