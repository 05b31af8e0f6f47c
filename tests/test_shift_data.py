"""jaxkit.data for shift and imbalance: rotated domains, paired batches, long tails, balanced / injection sampling."""

import jax
import numpy as np
import pytest

from jaxkit import data


@pytest.fixture(scope="module")
def rotated():
    return data.make_rotated_digits(angles=(0, 45, 90), per_class=20, seed=0)


def test_rotated_domains(rotated):
    r = rotated
    assert r.x.shape == (3, 200, 8, 8, 1) and r.names == ("M0", "M45", "M90")
    assert np.bincount(r.y).tolist() == [20] * 10
    np.testing.assert_allclose(r.x[2, ..., 0], np.rot90(r.x[0, ..., 0], k=1, axes=(1, 2)), atol=1e-5)
    assert not np.allclose(r.x[1], r.x[0])
    assert r.leave_one_out(1) == ([0, 2], 1)
    with pytest.raises(ValueError, match="test"):
        r.leave_one_out(3)
    with pytest.raises(ValueError, match="per_class"):
        data.make_rotated_digits(per_class=500)


def test_paired_and_unpaired_batches(rotated):
    paired = np.asarray(data.domain_batch_indices(jax.random.key(0), rotated.y, 10, 3, 3, paired=True))
    unpaired = np.asarray(data.domain_batch_indices(jax.random.key(0), rotated.y, 10, 3, 3, paired=False))
    assert paired.shape == unpaired.shape == (3, 30)
    assert (paired == paired[0]).all() and not (unpaired == unpaired[0]).all()
    for row in unpaired:
        assert np.bincount(rotated.y[row], minlength=10).tolist() == [3] * 10 and len(set(row)) == 30


def test_make_imbalanced_follows_the_power_law():
    d = data.load_digits(seed=0)
    im = data.make_imbalanced(d.train, imbalance=10.0, seed=0)
    sizes = np.bincount(im.y)
    n_max = min(np.bincount(d.train.y))
    a = np.log(10) / np.log(10)
    np.testing.assert_array_equal(sizes, np.maximum(1, np.round(n_max * (np.arange(10) + 1.0) ** -a)))
    assert sizes[0] / sizes[-1] == pytest.approx(10, rel=0.05)
    with pytest.raises(ValueError, match="imbalance"):
        data.make_imbalanced(d.train, imbalance=0.5)


def test_balanced_sampler_is_uniform_over_classes():
    from scipy import stats

    y = np.repeat(np.arange(5), [500, 100, 20, 5, 1])
    sample = jax.jit(data.balanced_sampler(y), static_argnums=1)
    idx = np.asarray(sample(jax.random.key(1), 20000))
    counts = np.bincount(y[idx], minlength=5)
    assert stats.chisquare(counts).pvalue > 1e-3  # uniform within a statistical tolerance
    assert set(idx[y[idx] == 4]) == {int(np.flatnonzero(y == 4)[0])}
    with pytest.raises(ValueError, match="every class"):
        data.balanced_sampler(np.array([0, 0, 2]))


def test_injection_waiting_time_matches_its_formula():
    pool = np.repeat(np.arange(4), 300)  # 4 rare classes, 300 synthesised samples each
    sample = jax.jit(jax.vmap(data.injection_sampler(pool, per_batch=3)))
    idx = np.asarray(sample(jax.random.split(jax.random.key(2), 20000)))  # 20000 batches x 3 injected
    seen = (pool[idx] == 0).any(1)
    p_hat = seen.mean()
    assert 1 / p_hat == pytest.approx(data.expected_wait(4, 3), rel=0.03)
    assert data.expected_wait(4, 3) == pytest.approx(1 / (1 - 0.75**3))


def test_synthesize_is_deterministic_and_valid():
    d = data.load_digits(seed=0)
    few = d.train.x[d.train.y == 3][:4]
    a = data.synthesize(few, 10, seed=5)
    b = data.synthesize(few, 10, seed=5)
    assert a.shape == (10, 8, 8, 1) and np.array_equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert not np.array_equal(a, data.synthesize(few, 10, seed=6))
