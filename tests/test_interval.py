import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxkit import interval as iv
from jaxkit import models


def _params(sizes, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return {
        f"Dense_{i}": {"kernel": rng.normal(size=(a, b)).astype(dtype), "bias": rng.normal(size=b).astype(dtype)}
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
    }


def _forward64(params, x):
    h = np.asarray(x, np.float64)
    layers = iv.mlp_layers(params)
    for i, (k, b) in enumerate(layers):
        h = h @ np.asarray(k, np.float64) + np.asarray(b, np.float64)
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return h


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), dtype=st.sampled_from([np.float32, np.float64]), width=st.floats(1e-3, 2.0))
def test_ibp_contains_every_sampled_output(seed, dtype, width):
    with jax.enable_x64(dtype == np.float64):
        params = _params((4, 6, 5, 3), seed, dtype)
        rng = np.random.default_rng(seed + 1)
        c = rng.normal(size=4)
        b = iv.box(c - width, c + width, dtype=dtype)
        out, pre = iv.ibp(params, b)
        assert out.dtype == dtype and len(pre) == 2
        pts = c + width * rng.uniform(-1, 1, size=(200, 4))
        pts = np.concatenate([pts, [c - width, c + width]]).astype(dtype)
        y = _forward64(params, pts)  # exact up to float64 rounding, far below float32's
        assert np.all(np.asarray(out.lo, np.float64)[None] <= y) and np.all(y <= np.asarray(out.hi, np.float64)[None])


def test_outward_rounding_contains_the_exact_sum_where_plain_float32_does_not():
    # 1 + 2^-30 is not representable in float32: plain rounding gives [1, 1], which excludes the true value.
    a = iv.Interval(jnp.float32(1.0), jnp.float32(1.0))
    b = iv.Interval(jnp.float32(2.0**-30), jnp.float32(2.0**-30))
    s = a + b
    assert float(s.lo) <= 1 + 2.0**-30 <= float(s.hi)
    assert float(s.hi) > 1.0  # widened
    plain = np.float32(1.0) + np.float32(2.0**-30)
    assert float(plain) < 1 + 2.0**-30


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_float32_matmul_contains_float64_products(seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(5, 40)).astype(np.float32) * 10 ** rng.uniform(-3, 3)
    lo = rng.normal(size=40).astype(np.float32)
    hi = lo + np.abs(rng.normal(size=40)).astype(np.float32) * rng.choice([0.0, 1e-6, 1.0])
    out = iv.matmul(w, iv.Interval(jnp.asarray(lo), jnp.asarray(hi)))
    for _ in range(20):
        x = lo + (hi.astype(np.float64) - lo) * rng.uniform(size=40)
        y = w.astype(np.float64) @ x
        assert np.all(np.asarray(out.lo, np.float64) <= y) and np.all(y <= np.asarray(out.hi, np.float64))
    y = w.astype(np.float64) @ lo.astype(np.float64)
    assert np.all(np.asarray(out.lo, np.float64) <= y) and np.all(y <= np.asarray(out.hi, np.float64))


def test_interval_ops_against_endpoint_enumeration():
    a = iv.Interval(jnp.array([-2.0, 1.0, -3.0]), jnp.array([1.0, 4.0, -1.0]))
    b = iv.Interval(jnp.array([3.0, -2.0, -2.0]), jnp.array([5.0, 2.0, 0.5]))
    prod = a * b
    ends = np.array([[x * y for x in (a.lo[i], a.hi[i]) for y in (b.lo[i], b.hi[i])] for i in range(3)])
    np.testing.assert_allclose(prod.lo, ends.min(1), rtol=1e-6)
    np.testing.assert_allclose(prod.hi, ends.max(1), rtol=1e-6)
    d = a - b
    np.testing.assert_allclose(d.lo, a.lo - b.hi, rtol=1e-6)
    np.testing.assert_allclose(iv.relu(a).lo, [0, 1, 0])
    t = iv.monotone(jnp.tanh, a)
    assert np.all(t.lo <= np.tanh(np.asarray(a.lo))) and np.all(np.tanh(np.asarray(a.hi)) <= t.hi)
    n = iv.monotone(lambda x: -x, a, increasing=False, ulps=0)  # negation is exact
    assert np.all(n.lo <= -a.hi) and np.all(-a.lo <= n.hi)


def test_ibp_is_jittable_and_accepts_flax_variables():
    model = models.MLP((6, 2))
    variables = model.init(jax.random.key(0), jnp.ones((1, 3)))
    f = jax.jit(lambda v, b: iv.ibp(v, b)[0])
    out = f(variables, iv.box(-jnp.ones(3), jnp.ones(3)))
    y = model.apply(variables, jnp.zeros((1, 3)))[0]
    assert iv.contains(out, y)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="inverted"):
        iv.box([0.0, 1.0], [1.0, 0.5])
    with pytest.raises(ValueError, match="finite"):
        iv.box([0.0], [np.inf])
    with pytest.raises(ValueError, match="not an MLP of nn.Dense layers"):
        iv.mlp_layers({"Conv_0": {"kernel": np.ones((3, 3, 1, 2))}})
    with pytest.raises(ValueError, match="layer 1: kernel expects 4 inputs but layer 0 has 3 outputs"):
        iv.mlp_layers([(np.ones((2, 3)), np.ones(3)), (np.ones((4, 1)), np.ones(1))])
    with pytest.raises(ValueError, match="kernel must be 2-D"):
        iv.mlp_layers([(np.ones((2, 3, 1)), np.ones(1))])
    with pytest.raises(ValueError, match="bias shape"):
        iv.mlp_layers([(np.ones((2, 3)), np.ones(2))])
    with pytest.raises(ValueError, match=r"`x` must be an interval of shape \(2,\)"):
        iv.ibp([(np.ones((2, 3)), np.ones(3))], iv.box(np.zeros(3), np.ones(3)))


# ------------------------------------------------------------------------------------------ soundness on every input


def _ref(name, x):
    """Exact function in higher precision: float64 for float32 inputs, longdouble (x87, 64-bit mantissa) for float64."""
    w = x.astype(np.float64 if x.dtype == np.float32 else np.longdouble)
    with np.errstate(all="ignore"):
        if name == "sigmoid":
            return np.where(w >= 0, 1 / (1 + np.exp(-w)), np.exp(w) / (1 + np.exp(w)))
        if name == "softplus":
            return np.where(w > 0, w + np.log1p(np.exp(-w)), np.log1p(np.exp(w)))
        return getattr(np, name)(w)


def _points(dtype, name, n=1_050_000, seed=123):
    """>= 10^6 points over the whole range: log-uniform magnitudes (subnormal to huge) with both signs, a dense
    uniform band, values near 0 and +-1, every function's hard spots; clipped to the function's domain."""
    rng = np.random.default_rng(seed)
    fi = np.finfo(dtype)
    mags = 10 ** rng.uniform(np.log10(fi.smallest_subnormal), np.log10(fi.max), n // 2)
    x = np.concatenate(
        [
            rng.choice([-1, 1], n // 2) * mags,
            rng.uniform(-30, 30, n // 4),
            rng.normal(0, 1e-6, n // 8),
            rng.choice([-1, 1], n // 16) + rng.normal(0, 1e-3, n // 16),
            np.sqrt(0.5) - 1 + rng.normal(0, 1e-3, n // 16),  # XLA's float64 log1p is worst here
            [0.0, -0.0, fi.tiny, -fi.tiny, fi.smallest_subnormal, -fi.smallest_subnormal, fi.max, -fi.max],
        ]
    )
    lo = {"log": 0.0, "sqrt": 0.0, "log1p": -1.0}.get(name, -np.inf)
    return np.maximum(x, lo).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(iv.MONOTONE_FUNCTIONS))
def test_monotone_contains_the_exact_value_at_a_million_points(name, dtype):
    with jax.enable_x64(dtype == np.float64):
        x = _points(dtype, name)
        v = jnp.asarray(x)
        out = iv.monotone(name, iv.Interval(v, v))  # eager: the widening loop compiles once for all functions
        ref = _ref(name, x)
        lo, hi = np.asarray(out.lo).astype(ref.dtype), np.asarray(out.hi).astype(ref.dtype)
        both_nan = np.isnan(ref) & np.isnan(lo) & np.isnan(hi)  # e.g. log1p(-1 - ...) is outside the domain
        miss = ~both_nan & ~((lo <= ref) & (ref <= hi))
        assert x.size >= 10**6 and not miss.any(), (int(miss.sum()), x[miss][:5])


def test_two_ulps_were_not_enough_for_float32_tanh():
    """The old fixed widening (2 ulps) misses exact values; the measured bound does not (test above)."""
    x = _points(np.float32, "tanh", n=200_000)
    out = iv.monotone(jnp.tanh, iv.Interval(jnp.asarray(x), jnp.asarray(x)), ulps=2)
    ref = _ref("tanh", x)
    assert np.sum(~((np.asarray(out.lo, np.float64) <= ref) & (ref <= np.asarray(out.hi, np.float64)))) > 0


def _frac(v):
    from fractions import Fraction

    return Fraction(float(v))


def _contains_exact(iv_out, exact):
    """Every exact rational lies in its interval (an infinite end point bounds everything on its side)."""
    lo, hi = np.asarray(iv_out.lo).ravel(), np.asarray(iv_out.hi).ravel()
    below = [a == -np.inf or (np.isfinite(a) and _frac(a) <= e) for a, e in zip(lo, exact)]
    above = [b == np.inf or (np.isfinite(b) and e <= _frac(b)) for b, e in zip(hi, exact)]
    return all(below) and all(above)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rounding_is_outward_near_zero_whether_or_not_subnormals_are_flushed(dtype):
    """Products, sums and quotients with results in or near the subnormal range (flushed to 0 by XLA on CPU)."""
    from fractions import Fraction

    fi = np.finfo(dtype)
    e = 19 if dtype == np.float32 else 160  # operands whose products underflow
    vals = [
        10.0**-e,
        10.0 ** -(e + 2),
        10.0 ** -(e + 4),
        -(10.0 ** -(e + 1)),
        3 * 10.0 ** -(e + 3),
        float(fi.tiny),
        -float(fi.tiny),
        1.5 * float(fi.tiny),
        float(fi.smallest_subnormal),
        1.0,
        -2.0,
        1e3,
    ]
    with jax.enable_x64(dtype == np.float64):
        a = np.array([v for v in vals for _ in vals], dtype)
        b = np.array([w for _ in vals for w in vals], dtype)
        A, B = iv.Interval(jnp.asarray(a), jnp.asarray(a)), iv.Interval(jnp.asarray(b), jnp.asarray(b))
        fa, fb = [Fraction(float(v)) for v in a], [Fraction(float(v)) for v in b]
        assert _contains_exact(A * B, [x * y for x, y in zip(fa, fb)])
        assert _contains_exact(A + B, [x + y for x, y in zip(fa, fb)])
        assert _contains_exact(A - B, [x - y for x, y in zip(fa, fb)])
        q = A / B
        assert _contains_exact(q, [x / y if y else Fraction(0) for x, y in zip(fa, fb)])
        assert np.all(np.isinf(np.asarray(q.lo)[b == 0])) and np.all(np.isinf(np.asarray(q.hi)[b == 0]))
        # the case: 1e-20 * 1e-20 in float32 used to give [1.4e-45, 1.4e-45] -> flushed to [0, 0]
        p = iv.Interval(jnp.asarray(a[:1]), jnp.asarray(a[:1])) * (10.0**-e)
        assert float(p.lo[0]) <= 0.0 < float(p.hi[0]) and float(p.hi[0]) >= fi.tiny
        # no bound is ever left subnormal
        for out in (A * B, A + B, A - B):
            for end in (out.lo, out.hi):
                v = np.abs(np.asarray(end))
                assert not np.any((v > 0) & (v < fi.tiny))


def test_conversions_round_outward():
    f32 = np.float32
    for v in (0.1, 1 / 3, -2.7, 1e-30):
        b = iv.box(v, v, dtype=f32)
        assert _frac(b.lo) <= _frac(v) <= _frac(b.hi) and float(b.lo) < float(b.hi), v
    exact = iv.box(0.5, 0.5, dtype=f32)
    assert float(exact.lo) == float(exact.hi) == 0.5  # representable: a point
    sub = iv.box(2.0**-149, 2.0**-149, dtype=f32)  # subnormal: flushed by XLA, so widened to [0, tiny]
    assert float(sub.lo) == 0.0 and float(sub.hi) == np.finfo(f32).tiny
    assert _contains_exact(sub * 2.0**100, [_frac(2.0**-49)])
    big = iv.box(1e39, 1e39, dtype=f32)
    assert float(big.lo) == np.finfo(f32).max and np.isposinf(float(big.hi))
    neg = iv.box(-1e39, -1e39, dtype=f32)
    assert np.isneginf(float(neg.lo)) and float(neg.hi) == -np.finfo(f32).max
    one = iv.Interval(jnp.float32(1.0), jnp.float32(1.0))
    for c in (0.1, 1 / 3):  # Python floats entering float32 operations
        assert _contains_exact(one + c, [1 + _frac(c)]) and _contains_exact(one * c, [_frac(c)])
        assert _contains_exact(one - c, [1 - _frac(c)])
    # float64 weights into a float32 interval: the conversion error is part of the bound
    w = np.full((1, 3), 0.1)
    out = iv.matmul(w, iv.Interval(jnp.ones(3, f32), jnp.ones(3, f32)))
    assert _contains_exact(out, [3 * _frac(0.1)])
    lo, hi = iv.convert(jnp.asarray([0.1, 2.0**-140], f32), f32)  # float32 in: exact, but never subnormal
    assert float(lo[0]) == float(hi[0]) == float(f32(0.1))
    assert float(lo[1]) == 0.0 and float(hi[1]) == np.finfo(f32).tiny


def test_nan_or_inverted_intervals_never_give_finite_bounds():
    bad = iv.Interval(jnp.array([2.0, 0.0]), jnp.array([1.0, 1.0]))
    nan = iv.Interval(jnp.array([jnp.nan, 0.0]), jnp.array([1.0, 1.0]))
    params = _params((2, 3, 1), 0)
    for fn in (
        iv.relu,
        lambda x: iv.ibp(params, x)[0],
        lambda x: iv.monotone("tanh", x),
        lambda x: iv.matmul(np.ones((2, 2)), x),
    ):
        with pytest.raises(ValueError, match="inverted"):
            fn(bad)
        with pytest.raises(ValueError, match=r"`x\.lo` is NaN at index \(0,\)"):
            fn(nan)
        for x in (bad, nan):  # inside a trace: NaN out
            out = jax.jit(fn)(x)
            assert np.isnan(np.asarray(out.lo)).any() and np.isnan(np.asarray(out.hi)).any()
    # the operators, on concrete input too
    assert np.isnan(np.asarray((bad + 1.0).lo[0])) and np.isnan(np.asarray((bad * 2.0).hi[0]))
    assert np.isnan(np.asarray((nan / 2.0).lo[0]))
    with pytest.raises(TypeError, match="`x` must be a jaxkit.interval.Interval"):
        iv.relu(np.zeros(3))
    with pytest.raises(ValueError, match=r"`w` has 3 columns but `x` has shape \(2,\)"):
        iv.matmul(np.ones((4, 3)), iv.box(np.zeros(2), np.ones(2)))
    with pytest.raises(ValueError, match="`w` must be a 2-D matrix"):
        iv.matmul(np.ones(3), iv.box(np.zeros(3), np.ones(3)))
    with pytest.raises(ValueError, match="`ulps`: no measured error bound for 'erf'"):
        iv.monotone(jax.scipy.special.erf, iv.box(np.zeros(2), np.ones(2)))
    with pytest.raises(ValueError, match="`fn`: unknown function 'cosh'"):
        iv.monotone("cosh", iv.box(np.zeros(2), np.ones(2)))
    with pytest.raises(ValueError, match="do not broadcast"):
        iv.box(np.zeros(2), np.ones(3))
