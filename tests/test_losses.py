"""Label smoothing targets: pairwise class distances against brute force, similarity rows, soft labels."""

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
            dist = np.abs(xa[:, None] - xb[None]).sum(-1) if p == 1 else np.sqrt(((xa[:, None] - xb[None]) ** 2).sum(-1))
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
