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
    return {f"Dense_{i}": {"kernel": rng.normal(size=(a, b)).astype(dtype), "bias": rng.normal(size=b).astype(dtype)}
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}


def _forward64(params, x):
    h = np.asarray(x, np.float64)
    layers = iv.mlp_layers(params)
    for i, (k, b) in enumerate(layers):
        h = h @ np.asarray(k, np.float64) + np.asarray(b, np.float64)
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return h


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), dtype=st.sampled_from([np.float32, np.float64]),
       width=st.floats(1e-3, 2.0))
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
    b = iv.Interval(jnp.float32(2.0 ** -30), jnp.float32(2.0 ** -30))
    s = a + b
    assert float(s.lo) <= 1 + 2.0 ** -30 <= float(s.hi)
    assert float(s.hi) > 1.0  # widened
    plain = np.float32(1.0) + np.float32(2.0 ** -30)
    assert float(plain) < 1 + 2.0 ** -30


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
    n = iv.monotone(lambda x: -x, a, increasing=False)
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
    with pytest.raises(ValueError, match="3 features, the network expects 2"):
        iv.ibp([(np.ones((2, 3)), np.ones(3))], iv.box(np.zeros(3), np.ones(3)))
