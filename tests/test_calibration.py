"""Calibration estimators against closed forms, NumPy loops, scipy and netcal's stored outputs."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkit import calibration as cal

RNG = np.random.default_rng(0)


def _binary(n, power, seed=0):
    """Scores s ~ U(0, 1) as a two-class problem whose class-1 events are Bernoulli(s^power)."""
    rng = np.random.default_rng(seed)
    s = rng.random(n).astype(np.float32)
    y = (rng.random(n) < s**power).astype(np.int32)
    return np.stack([1 - s, s], 1), y


def _ece_loop(s, y, b):
    """Guo et al.'s ECE, a plain loop: bins (j/B, (j+1)/B], the first also holding 0."""
    total = 0.0
    for j in range(b):
        lo, hi = j / b, (j + 1) / b
        m = (s > lo) & (s <= hi) if j else (s <= hi)
        if m.any():
            total += m.sum() / len(s) * abs(y[m].mean() - s[m].mean())
    return total


@pytest.mark.parametrize(
    "binning, mapping", [("uniform", "hard"), ("adaptive", "hard"), ("uniform", "convex"), ("adaptive", "convex")]
)
def test_known_ece_one_sixth_and_zero(binning, mapping):
    p, y = _binary(100_000, 2)
    assert float(cal.ece(p, y, "class", cls=1, binning=binning, mapping=mapping)) == pytest.approx(1 / 6, abs=0.01)
    p, y = _binary(100_000, 1)
    # perfectly calibrated: with sqrt(N) bins the estimate shrinks only like N^(-1/4) -> about 0.01 here
    assert float(cal.ece(p, y, "class", cls=1, binning=binning, mapping=mapping)) < 0.02


def test_kde_ece_one_sixth_and_zero():
    p, y = _binary(100_000, 2)
    assert float(cal.ece_kde(p, y, "class", cls=1)) == pytest.approx(1 / 6, abs=0.005)
    assert float(cal.ece_kde_triweight(p, y, "class", cls=1)) == pytest.approx(1 / 6, abs=0.005)
    p, y = _binary(100_000, 1)
    assert float(cal.ece_kde(p, y, "class", cls=1)) < 0.01


def test_hard_uniform_ece_equals_numpy_loop_and_settings():
    logits = RNG.standard_normal((700, 4)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = RNG.integers(0, 4, 700)
    conf, pred = p.max(1), p.argmax(1)
    for b in (5, 15, None):
        bb = b or int(round(np.sqrt(700)))
        assert float(cal.ece(p, y, n_bins=b)) == pytest.approx(_ece_loop(conf, (pred == y) * 1.0, bb), abs=1e-5)
    cw = np.mean([_ece_loop(p[:, c], (y == c) * 1.0, 15) for c in range(4)])
    assert float(cal.ece(p, y, "classwise", n_bins=15)) == pytest.approx(cw, abs=1e-5)
    onehot = np.eye(4)[y]
    assert float(cal.ece(p, y, "output", n_bins=15)) == pytest.approx(
        _ece_loop(p.ravel(), onehot.ravel(), 15), abs=1e-5
    )
    gaps = []
    for j in range(15):
        m = (conf > j / 15) & (conf <= (j + 1) / 15)
        if m.any():
            gaps.append(abs((pred == y)[m].mean() - conf[m].mean()))
    assert float(cal.mce(p, y, n_bins=15)) == pytest.approx(max(gaps), abs=1e-5)


NETCAL = os.path.join(os.path.dirname(__file__), "data", "netcal", "reference.npz")


@pytest.mark.parametrize("case", ["binary", "multiclass"])
@pytest.mark.parametrize("n_bins", [10, 15])
def test_equals_netcal_on_stored_outputs(case, n_bins):
    """netcal 1.4.0's ECE / MCE on fixed inputs (tests/data/netcal: the script, inputs and versions).

    netcal reads a two-column input as a binary problem and calibrates the class-1 score against y = 1
    (our ``"class"`` setting, ``cls=1``), and more columns as top-label confidence (``"confidence"``).
    Tolerance 1e-6: our sums run in float32 over <= 5,000 float32 scores, netcal's in float64 (measured <= 1e-7).
    """
    ref = np.load(NETCAL)
    assert str(ref["netcal_version"]) == "1.4.0"
    p, y = ref[f"{case}/probs"], ref[f"{case}/labels"]
    kw = {"setting": "class", "cls": 1} if case == "binary" else {"setting": "confidence"}
    for ours, theirs in [
        (cal.ece(p, y, n_bins=n_bins, **kw), "ece_uniform"),
        (cal.ece(p, y, n_bins=n_bins, binning="adaptive", **kw), "ece_adaptive"),
        (cal.mce(p, y, n_bins=n_bins, **kw), "mce_uniform"),
    ]:
        assert float(ours) == pytest.approx(float(ref[f"{case}/{theirs}_{n_bins}"]), abs=1e-6), (theirs, n_bins)


def test_bin_weights_adaptive_equal_counts_and_convex_rows():
    s = jnp.asarray(RNG.random(1000), jnp.float32)
    w = cal.bin_weights(s, 10, "adaptive", "hard")
    assert np.asarray(w.sum(0)).tolist() == [100.0] * 10
    for binning in ("uniform", "adaptive"):
        wc = np.asarray(cal.bin_weights(s, 10, binning, "convex"))
        np.testing.assert_allclose(wc.sum(1), 1.0, atol=1e-6)
        assert (wc >= 0).all() and ((wc > 0).sum(1) <= 2).all()
    # piecewise linear in s: weights of a bin along a fine grid have zero second differences except at centres
    g = jnp.linspace(0, 1, 2001)
    wg = np.asarray(cal.bin_weights(g, 4, "uniform", "convex"))
    centres = np.array([0.125, 0.375, 0.625, 0.875])
    second = np.abs(np.diff(wg, 2, axis=0)).max(1)
    near = np.min(np.abs(np.asarray(g)[1:-1, None] - centres[None]), 1) < 1e-3
    assert second[~near].max() < 1e-5
    # a score at a centre goes wholly to that bin; half-way between two centres is split evenly
    np.testing.assert_allclose(
        np.asarray(cal.bin_weights(jnp.array([0.375, 0.5]), 4, "uniform", "convex")),
        [[0, 1, 0, 0], [0, 0.5, 0.5, 0]],
        atol=1e-6,
    )


def test_kde_density_matches_scipy_away_from_borders():
    from scipy.stats import gaussian_kde

    s = np.clip(RNG.beta(4, 4, 3000), 0, 1).astype(np.float32)
    h = float(cal.silverman_bandwidth(s))
    grid, f = cal.kde_density(s, bandwidth=h, grid_size=2049)
    ref = gaussian_kde(s.astype(np.float64), bw_method=h / np.std(s, ddof=1))
    inner = (np.asarray(grid) > 0.2) & (np.asarray(grid) < 0.8)
    np.testing.assert_allclose(np.asarray(f)[inner], ref(np.asarray(grid)[inner]), rtol=2e-3)
    assert float(jnp.trapezoid(f, grid)) == pytest.approx(1.0, abs=2e-3)  # reflection keeps the mass in [0, 1]


def test_kde_ece_is_differentiable_and_jittable():
    logits = jnp.asarray(RNG.standard_normal((300, 3)), jnp.float32)
    y = jnp.asarray(RNG.integers(0, 3, 300))
    f = jax.jit(lambda z: cal.ece_kde(jax.nn.softmax(z), y))
    g = jax.grad(lambda z: cal.ece_kde(jax.nn.softmax(z * 3.0), y))(logits)
    assert np.isfinite(float(f(logits))) and np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0


def test_reliability_curve_bootstrap_and_diagram():
    p, y = _binary(4000, 2)
    grid, med, lo, hi = cal.reliability_curve(jax.random.key(0), p, y, "class", cls=1, num_bootstrap=50)
    inner = (np.asarray(grid) > 0.2) & (np.asarray(grid) < 0.8)
    np.testing.assert_allclose(np.asarray(med)[inner], np.asarray(grid)[inner] ** 2, atol=0.05)  # rel(s) = s^2
    assert (np.asarray(lo)[inner] <= np.asarray(med)[inner]).all() and (
        np.asarray(med)[inner] <= np.asarray(hi)[inner]
    ).all()
    d = cal.reliability_diagram(p, y, "class", cls=1, n_bins=10)
    assert float(d["count"].sum()) == 4000
    np.testing.assert_allclose(np.asarray(d["accuracy"]), np.asarray(d["confidence"]) ** 2, atol=0.05)


def test_temperature_scaling_lowers_nll():
    x = RNG.standard_normal((2000, 5))
    y = np.argmax(x + 0.8 * RNG.standard_normal((2000, 5)), 1)
    logits = 4.0 * x  # overconfident
    t = float(cal.fit_temperature(logits, y))

    def nll(z):
        z = z - z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y]))

    grid = np.exp(np.linspace(np.log(0.5), np.log(20), 400))
    best = grid[np.argmin([nll(logits / g) for g in grid])]
    assert t > 1 and t == pytest.approx(best, rel=0.02)
    assert nll(logits / t) < nll(logits)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cal.ece(np.full((4, 2), 0.6), np.zeros(4, int)), "sum to 1"),
        (lambda: cal.ece(np.array([[1.2, -0.2]] * 4), np.zeros(4, int)), r"\[0, 1\]"),
        (lambda: cal.ece(np.full((4, 2), 0.5), np.array([0, 1, 2, 0])), "labels"),
        (lambda: cal.ece(np.full((4, 2), 0.5), np.zeros(4, int), n_bins=10), "n_bins"),
        (lambda: cal.ece(np.full((4, 2), 0.5), np.zeros(4, int), "top"), "setting"),
        (lambda: cal.ece(np.full((4, 2), 0.5), np.zeros(4, int), binning="quantile"), "binning"),
        (lambda: cal.ece(np.full((4, 2), 0.5), np.zeros(4, int), mapping="soft"), "mapping"),
        (lambda: cal.ece(np.full((4, 2), 0.5), np.zeros(3, int)), "labels"),
        (lambda: cal.ece_kde(np.full((4, 2), 0.5), np.zeros(4, int), kernel="box"), "kernel"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bootstrap_quantiles_equal_numpy_nanquantile():
    rel = RNG.random((37, 11)).astype(np.float32)
    rel[[1, 5, 9], 2] = np.nan
    rel[:, 7] = np.nan  # a grid point with no valid replicate
    grid, med, lo, hi = cal.kernel._quantiles(jnp.zeros(11), jnp.asarray(rel), 0.9)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanquantile(rel, [0.5, 0.05, 0.95], axis=0)
    for got, w in zip((med, lo, hi), want):
        np.testing.assert_allclose(np.asarray(got), w, rtol=1e-6, equal_nan=True)
    x = jnp.asarray(RNG.standard_normal((3, 64)), jnp.float32)
    np.testing.assert_array_equal(np.asarray(cal.kernel._bitonic_sort(x)), np.sort(np.asarray(x), axis=1))


def test_estimators_jit_once_per_shape():
    import chex

    f = jax.jit(
        chex.assert_max_traces(
            lambda p, y: jnp.stack(
                [
                    cal.ece(p, y),
                    cal.ece(p, y, "classwise", binning="adaptive", mapping="convex"),
                    cal.mce(p, y, n_bins=5),
                    cal.ece_kde(p, y, grid_size=129),
                    cal.ece(p, y, "output", n_bins=10),
                ]
            ),
            n=1,
        )
    )
    for seed in range(3):
        p, y = _binary(400, 2, seed)
        out = np.asarray(f(jnp.asarray(p), jnp.asarray(y)))
        assert np.isfinite(out).all()
    assert out[0] == pytest.approx(float(cal.ece(p, y)), abs=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kde_estimators_stay_finite_on_scores_that_do_not_vary(dtype):
    """One-hot, constant and always-zero-class predictions used to give NaN (h = 0) or 7.5e11 (a float64 spread of
    rounding size); with the bandwidth floor they agree with the binned ECE to O(h)."""
    with jax.enable_x64(dtype == np.float64):
        cases = {
            "constant": (np.tile([0.3, 0.7], (10, 1)), np.array([1] * 6 + [0] * 4)),
            "one-hot": (np.eye(3)[[0, 1, 2, 0, 1, 2, 0, 0]], np.array([0, 1, 2, 0, 1, 1, 2, 0])),
            "class always 0": (np.c_[np.full(8, 0.4), np.full(8, 0.6), np.zeros(8)], np.array([0, 1] * 4)),
        }
        for name, (p, y) in cases.items():
            p = jnp.asarray(p, dtype)
            for setting in ("confidence", "classwise"):
                sc, _ = cal.scores_and_events(p, y, setting)
                constant = bool(np.all(np.ptp(np.asarray(sc), axis=1) == 0))  # every problem's scores are one value
                for est in (cal.ece_kde, cal.ece_kde_triweight):
                    v = float(est(p, y, setting))
                    binned = float(cal.ece(p, y, setting, n_bins=5))
                    assert np.isfinite(v), (name, setting, est.__name__, v)
                    if constant:  # (one-hot classwise scores are 0/1: Silverman's bandwidth is wide there)
                        assert abs(v - binned) < 0.01, (name, setting, est.__name__, v, binned)
            _, lce, _ = cal.local_calibration_error(p, y, "class", cls=1)
            assert np.isfinite(np.nanmax(np.abs(np.asarray(lce))))


@pytest.mark.parametrize("setting", ["confidence", "classwise"])
def test_first_call_compiles_two_programs(setting, caplog):
    """The (score, event) pairs are one compiled program, not five eager operations each compiled apart (a
    first call paid 9 XLA compilations, 0.7 s at 10^6 samples): a new shape costs the pairs + the estimator."""
    import logging

    rng = np.random.default_rng(0)
    n = 1237  # a shape no other test uses
    p = jnp.asarray(rng.dirichlet(np.ones(4), n).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 4, n).astype(np.int32))
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        v = cal.ece(p, y, setting, binning="adaptive", n_bins=7)
    compiled = [r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()]
    assert len(compiled) == 2, compiled
    assert np.isfinite(float(v))


def test_bin_weights_and_kde_density_refuse_bad_input():
    with pytest.raises(ValueError, match=r"`s` must lie in \[0, 1\]"):
        cal.bin_weights(jnp.array([1.5]), 1)
    with pytest.raises(ValueError, match="must not exceed the number of samples"):
        cal.bin_weights(jnp.array([0.5]), 3, "adaptive")
    with pytest.raises(ValueError, match="`binning` must be"):
        cal.bin_weights(jnp.array([0.5]), 1, "quantile")
    s = jnp.array([0.5, 0.2])
    with pytest.raises(ValueError, match="`weights` must be >= 0"):
        cal.kde_density(s, jnp.array([-1.0, 1.0]))
    with pytest.raises(ValueError, match="`weights` must have the shape of `s`"):
        cal.kde_density(s, jnp.array([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="`bandwidth` must be > 0"):
        cal.kde_density(s, bandwidth=0.0)
    with pytest.raises(ValueError, match=r"`s` must lie in \[0, 1\]"):
        cal.kde_density(jnp.array([0.5, 1.2]))
    # inside jit the checks that need values step aside (no error, as every jittable estimator)
    grid, f = jax.jit(lambda w: cal.kde_density(s, w, grid_size=5))(jnp.array([1.0, 1.0]))
    assert np.isfinite(np.asarray(f)).all()
