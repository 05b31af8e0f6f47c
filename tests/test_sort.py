"""jaxkit._sort: NumPy's sort behind a CPU-only callback must be jnp.sort in every observable way."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkit import _sort

EDGE = np.array([3.0, np.nan, 1.0, -np.inf, 2.0, 1.0, np.inf, -0.0, 0.0, np.nan, -2.5], np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_sort_and_argsort_equal_jax_on_ties_infinities_and_nan(dtype):
    rng = np.random.default_rng(0)
    n = _sort.HOST_MIN + 300  # long enough for NumPy's path on CPU; the short rows take XLA's
    rows = [rng.integers(0, 5, n).astype(dtype), rng.integers(0, 5, 300).astype(dtype)]  # ties: stability matters
    if dtype != np.int32:
        rows += [rng.permutation(np.tile(EDGE, n // len(EDGE) + 1)).astype(dtype), EDGE.astype(dtype)]
    for x in map(jnp.asarray, rows):
        np.testing.assert_array_equal(np.asarray(_sort.sort(x)), np.asarray(jnp.sort(x)))
        np.testing.assert_array_equal(np.asarray(_sort.argsort(x)), np.asarray(jnp.argsort(x, stable=True)))
        assert _sort.sort(x).dtype == x.dtype and _sort.argsort(x).dtype == jnp.int32


def test_jit_vmap_and_batched_rows_sort_the_last_axis():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3, _sort.HOST_MIN + 1)).astype(np.float32))
    want = np.sort(np.asarray(x), axis=-1)
    np.testing.assert_array_equal(np.asarray(jax.jit(_sort.sort)(x)), want)
    np.testing.assert_array_equal(np.asarray(jax.vmap(jax.vmap(_sort.sort))(x)), want)
    np.testing.assert_array_equal(
        np.asarray(jax.jit(jax.vmap(_sort.argsort))(x)), np.argsort(np.asarray(x), -1, kind="stable")
    )


def test_derivatives_are_the_sorts():
    """A callback has no derivative of its own; the custom JVP permutes the tangents like the values."""
    x = jnp.asarray(np.random.default_rng(2).normal(size=(3, _sort.HOST_MIN)))
    w = jnp.arange(float(_sort.HOST_MIN))
    t = jnp.asarray(np.random.default_rng(3).normal(size=x.shape[-1]))
    ours = jax.jvp(lambda v: _sort.sort(v) * w, (x[0],), (t,))
    ref = jax.jvp(lambda v: jnp.sort(v) * w, (x[0],), (t,))
    np.testing.assert_array_equal(np.asarray(ours[1]), np.asarray(ref[1]))
    g = jax.jit(jax.vmap(jax.grad(lambda v: jnp.sum(_sort.sort(v) ** 2 * w))))(x)
    g_ref = jax.vmap(jax.grad(lambda v: jnp.sum(jnp.sort(v) ** 2 * w)))(x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), rtol=1e-12)


def test_cpu_programs_call_numpy_and_other_platforms_keep_xla_sort():
    """The platform choice is real: the CPU program holds the host callback and no XLA sort; lowered for CUDA the
    same function is XLA's sort with no callback; below HOST_MIN elements every platform keeps XLA's sort."""
    long, short = (jax.ShapeDtypeStruct((n,), jnp.float32) for n in (_sort.HOST_MIN, _sort.HOST_MIN - 1))
    for fn in (_sort.sort, _sort.argsort, lambda v: _sort.lexsort([v, -v])):
        cpu = jax.jit(fn).trace(long).lower(lowering_platforms=("cpu",)).as_text()
        assert "callback" in cpu and "stablehlo.sort" not in cpu
        gpu = jax.jit(fn).trace(long).lower(lowering_platforms=("cuda",)).as_text()
        assert "stablehlo.sort" in gpu and "callback" not in gpu
        cpu_short = jax.jit(fn).trace(short).lower(lowering_platforms=("cpu",)).as_text()
        assert "stablehlo.sort" in cpu_short and "callback" not in cpu_short


def test_lexsort_equals_jax_with_a_boolean_and_an_integer_key():
    rng = np.random.default_rng(4)
    n = _sort.HOST_MIN * 2
    f = jnp.asarray(rng.integers(0, 3, (n, 2)).astype(np.float32))
    ranks, bad = jnp.asarray(rng.integers(0, 7, n).astype(np.int32)), jnp.asarray(rng.random(n) < 0.1)
    for keys in ([f[:, 1], f[:, 0], bad], [f[:, 0], ranks], [f[:, 1], f[:, 0]]):
        np.testing.assert_array_equal(np.asarray(jax.jit(_sort.lexsort)(keys)), np.asarray(jnp.lexsort(keys)))
    batched = jax.vmap(lambda a, b: _sort.lexsort([a, b]))(f.T, f.T[::-1])
    np.testing.assert_array_equal(np.asarray(batched), np.stack([np.lexsort([a, b]) for a, b in zip(f.T, f.T[::-1])]))
