"""What every ECE estimator of ``calibration.ESTIMATORS`` must satisfy, whatever its binning or kernel: a value
in [0, 1], invariance to the order of the samples, near 0 for calibrated scores and clearly above for
overconfident ones, the same value under ``jit``, and a clear error for bad probabilities."""

import functools

import jax
import numpy as np
import pytest

from jaxkit import calibration as cal

NAMES = sorted(cal.ESTIMATORS)
SETTINGS = ("confidence", "classwise", "output")


@functools.lru_cache(maxsize=None)
def _calibrated(n=4000, c=3, seed=0):
    """Labels drawn from the scores themselves: calibrated in every setting."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(c, 0.7), size=n).astype(np.float32)
    y = np.array([rng.choice(c, p=row / row.sum()) for row in p.astype(np.float64)], np.int32)
    return p, y


def _overconfident(p, power=4.0):
    q = p.astype(np.float64) ** power
    return (q / q.sum(1, keepdims=True)).astype(np.float32)


def test_the_registry_names_the_papers_estimators():
    assert set(NAMES) == {"ECE_l", "ECE_a", "ECE_c", "ECE_ac", "ECE_d", "KDE-ECE"}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("setting", SETTINGS)
def test_range_calibration_and_overconfidence(name, setting):
    est = cal.ESTIMATORS[name]
    p, y = _calibrated()
    good = float(est(p, y, setting))
    bad = float(est(_overconfident(p), y, setting))
    assert 0.0 <= good <= 1.0 and 0.0 <= bad <= 1.0
    assert good < 0.05, good  # sampling noise at N = 4000 with ~63 bins or a Silverman kernel
    assert bad > good + 0.05, (good, bad)


@pytest.mark.parametrize("name", NAMES)
def test_sample_order_does_not_matter(name):
    """Same multiset of (score, label) pairs, other order: equal to float32 rounding (sums in another order)."""
    est = cal.ESTIMATORS[name]
    p, y = _calibrated(n=500)
    perm = np.random.default_rng(1).permutation(len(y))
    np.testing.assert_allclose(float(est(p[perm], y[perm])), float(est(p, y)), atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_jit_gives_the_eager_value(name):
    est = cal.ESTIMATORS[name]
    p, y = _calibrated(n=500)
    np.testing.assert_allclose(float(jax.jit(est)(p, y)), float(est(p, y)), atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_bad_probabilities_are_named(name):
    est = cal.ESTIMATORS[name]
    p, y = _calibrated(n=50)
    bad = p.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="`probs`"):
        est(bad, y)
    with pytest.raises(ValueError, match="`labels`"):
        est(p, np.full(50, 7, np.int32))
