"""jaxkit.robust: Jacobian penalty and similarity, universal perturbations, UER/TSR, noise models."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkit import robust


def linear(p, x):
    return x.reshape(x.shape[0], -1) @ p["w"] + p["b"]


class Small(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Dense(7)(x.reshape(x.shape[0], -1)))
        return nn.Dense(3)(x)


@pytest.fixture(scope="module")
def small():
    m = Small()
    x = jax.random.normal(jax.random.key(0), (6, 2, 3))
    return m.apply, m.init(jax.random.key(1), x), x


def test_exact_jacobians_equal_per_sample_jacrev(small):
    apply, v, x = small
    jac = robust.input_jacobians(apply, v, x)
    assert jac.shape == (6, 3, 2, 3)
    for i in range(6):
        ref = jax.jacrev(lambda xi: apply(v, xi[None])[0])(x[i])
        np.testing.assert_allclose(jac[i], ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        robust.jacobian_frobenius_penalty(apply, v, x, exact=True),
        np.sum(np.asarray(jac, np.float64) ** 2) / 6,
        rtol=1e-5,
    )


def test_projection_estimate_converges_to_the_exact_norm(small):
    apply, v, x = small
    exact = float(robust.jacobian_frobenius_penalty(apply, v, x, exact=True))
    est = jax.jit(lambda k: robust.jacobian_frobenius_penalty(apply, v, x, k, n_proj=4000))(jax.random.key(2))
    assert abs(float(est) - exact) < 0.03 * exact
    few = [float(robust.jacobian_frobenius_penalty(apply, v, x, jax.random.key(s), n_proj=1)) for s in range(3)]
    assert len(set(few)) == 3  # one projection is noisy; its mean is the exact value


def test_linear_model_penalty_and_similarity():
    w = jax.random.normal(jax.random.key(3), (5, 4))
    p = {"w": w, "b": jnp.zeros(4)}
    x = jax.random.normal(jax.random.key(4), (7, 5))
    np.testing.assert_allclose(robust.jacobian_frobenius_penalty(linear, p, x, exact=True), jnp.sum(w**2), rtol=1e-5)
    est = jax.jit(jax.vmap(lambda k: robust.jacobian_frobenius_penalty(linear, p, x, k, n_proj=2000)))(
        jax.random.split(jax.random.key(0), 3)
    )  # unbiased: the mean over many projections is ||W||_F^2
    np.testing.assert_allclose(est, jnp.full(3, jnp.sum(w**2)), rtol=0.05)
    np.testing.assert_allclose(robust.jacobian_cosine_similarity(linear, p, x), np.ones((7, 7)), atol=1e-5)


def test_penalised_loss_is_differentiable_and_compiles_once(small):
    import chex
    import optax

    apply, v, x = small
    y = jnp.array([0, 1, 2, 0, 1, 2])

    @jax.jit
    @chex.assert_max_traces(n=1)
    def loss_grad(params, key):
        def loss(p):
            ce = optax.softmax_cross_entropy_with_integer_labels(apply(p, x), y).mean()
            return ce + 0.05 / 2 * robust.jacobian_frobenius_penalty(apply, p, x, key, n_proj=1)

        return jax.value_and_grad(loss)(params)

    l1, g1 = loss_grad(v, jax.random.key(0))
    l2, _ = loss_grad(jax.tree.map(lambda a: a * 1.01, v), jax.random.key(1))
    assert np.isfinite(float(l1)) and all(np.isfinite(np.asarray(t)).all() for t in jax.tree.leaves(g1))


def test_stacked_and_summed_jacobian_bounds(small):
    apply, v, x = small
    jac = np.asarray(robust.input_jacobians(apply, v, x), np.float64).reshape(6, 3, -1)  # J_i: (C, D)
    delta = np.asarray(jax.random.normal(jax.random.key(5), (6,)), np.float64)
    stacked = jac.reshape(-1, 6)  # J-bar: (B*C, D)
    # ||J-bar delta|| <= ||J-bar||_F ||delta||, with ||J-bar||_F^2 = sum_i ||J_i||_F^2
    assert np.linalg.norm(stacked @ delta) <= np.linalg.norm(stacked) * np.linalg.norm(delta) + 1e-12
    np.testing.assert_allclose(np.linalg.norm(stacked) ** 2, sum(np.linalg.norm(j) ** 2 for j in jac), rtol=1e-12)
    # the paper's summed Jacobian: ||sum_i J_i||_F^2 = sum_ij <J_i, J_j>, i.e. norms times the cosine similarities
    summed = jac.sum(0)
    sim = np.asarray(robust.jacobian_cosine_similarity(apply, v, x), np.float64)
    norms = np.linalg.norm(jac.reshape(6, -1), axis=1)
    np.testing.assert_allclose(np.linalg.norm(summed) ** 2, np.sum(sim * np.outer(norms, norms)), rtol=1e-4)
    assert np.linalg.norm(summed @ delta) <= np.linalg.norm(summed) * np.linalg.norm(delta) + 1e-12


def test_uap_on_a_linear_two_class_model_reaches_the_closed_form():
    w = jnp.array([[1.0, -2.0], [0.5, 0.3], [-1.0, 1.0], [2.0, 2.5]])
    p = {"w": w, "b": jnp.zeros(2)}
    x = jax.random.normal(jax.random.key(6), (300, 4))
    y = jnp.zeros(300, jnp.int32)  # all of class 0
    for norm in ("inf", "2"):
        d = robust.universal_perturbation(jax.random.key(7), linear, p, (x, y), 0.2, norm, steps=200, batch_size=50)
        direction = w[:, 1] - w[:, 0]
        want = 0.2 * jnp.sign(direction) if norm == "inf" else 0.2 * direction / jnp.linalg.norm(direction)
        np.testing.assert_allclose(d, want, atol=1e-3)
    # targeted at class 1 is the same direction here; targeted at 0 (the true class) pushes the other way
    d0 = robust.universal_perturbation(jax.random.key(7), linear, p, (x, y), 0.2, target=0, steps=100, batch_size=50)
    np.testing.assert_allclose(d0, -0.2 * jnp.sign(w[:, 1] - w[:, 0]), atol=1e-3)


def test_uer_and_tsr_hand_computed():
    p = {"w": jnp.eye(3), "b": jnp.zeros(3)}
    x = jnp.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    y = jnp.array([0, 1, 2, 0])
    delta = jnp.array([0.0, 0.0, 1.5])  # everything becomes class 2
    assert float(robust.universal_evasion_rate(linear, p, x, y, delta)) == 0.75
    assert float(robust.targeted_success_rate(linear, p, x, y, delta, target=2)) == 1.0
    assert float(robust.targeted_success_rate(linear, p, x, y, jnp.zeros(3), target=2)) == 0.0
    assert float(robust.universal_evasion_rate(linear, p, x, y, delta, clip=(0.0, 1.0))) == 0.0  # ties -> argmax 0/1


def test_noise_models():
    x = jnp.full((20000,), 2.0)
    g = robust.multiplicative_gaussian_noise(jax.random.key(8), x, 0.5)
    assert abs(float(g.mean()) - 2.0) < 0.03 and abs(float(g.std()) - 1.0) < 0.03
    b = robust.multiplicative_bernoulli_noise(jax.random.key(9), x, 0.25)
    assert set(np.unique(np.asarray(b)).tolist()) == {0.0, 2.0} and abs(float((b == 0).mean()) - 0.25) < 0.02
    with pytest.raises(ValueError, match="sigma"):
        robust.multiplicative_gaussian_noise(jax.random.key(0), x, -1)
    with pytest.raises(ValueError, match="rate"):
        robust.multiplicative_bernoulli_noise(jax.random.key(0), x, 1.5)


def test_robust_bad_input(small):
    apply, v, x = small
    data = (x, jnp.zeros(6, jnp.int32))
    with pytest.raises(ValueError, match="eps"):
        robust.universal_perturbation(jax.random.key(0), apply, v, data, 0.0)
    with pytest.raises(ValueError, match="norm"):
        robust.universal_perturbation(jax.random.key(0), apply, v, data, 0.1, norm="l1")
    with pytest.raises(ValueError, match="labels"):
        robust.universal_perturbation(jax.random.key(0), apply, v, (x, jnp.zeros(5, jnp.int32)), 0.1)
    with pytest.raises(ValueError, match="key"):
        robust.jacobian_frobenius_penalty(apply, v, x)
    with pytest.raises(ValueError, match="norm"):
        robust.project(jnp.ones(3), 0.1, "max")


def test_targets_labels_and_radii_out_of_range_are_refused():
    weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])
    apply_fn = lambda w, x: x @ w
    x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
    means = robust.class_means(x, y)
    with pytest.raises(ValueError, match=r"`target` must lie in \[0, 2\)"):
        robust.average_sample_attack(x, y, means, 5, 0.1)
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 3\)"):  # was a silently clipped label
        robust.softrmax_cross_entropy(jnp.ones((1, 3)), jnp.array([5]))
    with pytest.raises(ValueError, match=r"`y` must lie in \[0, 2\)"):
        robust.prediction_margin(x @ weights, jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="`eps` must be finite and >= 0"):
        robust.project(jnp.ones(2), -1.0)
    with pytest.raises(ValueError, match="one radius per example"):
        robust.project_batch(jnp.ones((2, 2)), jnp.ones(3))
    with pytest.raises(ValueError, match=r"`target` must lie in \[0, 2\)"):
        robust.universal_perturbation(jax.random.key(0), apply_fn, weights, (x, y), 0.1, target=5)
    with pytest.raises(ValueError, match=r"`target` must lie in \[0, 2\)"):
        robust.targeted_success_rate(apply_fn, weights, x, y, jnp.ones(2), 5)
