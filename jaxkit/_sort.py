"""Sorting along the last axis with NumPy's sort on CPU and XLA's everywhere else.

XLA:CPU sorts with a comparator called per comparison: 248 ms for 10^6 float32 on this project's 2-core machine,
where NumPy's vectorised sort takes 32 ms (33 ms through the callback, transfer included; 10^5: 19.9 vs 2.4 ms).
GPU and TPU sorts are fast, so the choice is made per platform when the program is lowered
(``jax.lax.platform_dependent``): on CPU a ``jax.pure_callback`` to ``np.sort``, elsewhere ``jnp.sort``. A callback
costs ~80 us however short the array (XLA sorts 128 floats in 15 us, 1,024 in 123 us vs the callback's 89 us), so
axes shorter than :data:`HOST_MIN` always use XLA's sort: NSGA-II's survival of 200 members inside a ``lax.scan``
ran 2x slower through callbacks. The
result is the same ascending order (NaN last) either way; the derivative is the sort's (tangents permuted like
the values) on every platform, through a ``custom_jvp``, since a callback has none of its own.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["HOST_MIN", "argsort", "lexsort", "sort"]

HOST_MIN = 1024  # shortest axis sorted by NumPy on CPU (break-even measured at 512-1,024 elements)


def _host(fn, dtype=None):
    def call(x):
        out = jax.ShapeDtypeStruct(x.shape, x.dtype if dtype is None else dtype)
        return jax.pure_callback(lambda a: np.asarray(fn(np.asarray(a)), out.dtype), out, x, vmap_method="expand_dims")

    return call


_np_sort = _host(lambda a: np.sort(a, axis=-1))
_np_argsort = _host(lambda a: np.argsort(a, axis=-1, kind="stable"), jnp.int32)


def _xla_sort(a):
    return jnp.sort(a, axis=-1)


def _xla_argsort(a):
    return jnp.argsort(a, axis=-1, stable=True).astype(jnp.int32)


def _xla_lexsort(k):
    return jnp.lexsort(list(k)).astype(jnp.int32)


def argsort(x: jax.Array) -> jax.Array:
    """Stable ascending ``argsort`` along the last axis (``int32``; NaN last), NumPy's on CPU."""
    x = jnp.asarray(x)
    if x.ndim == 0 or x.shape[-1] < HOST_MIN:
        return _xla_argsort(x)
    return jax.lax.platform_dependent(x, cpu=_np_argsort, default=_xla_argsort)


def _np_lexsort(keys):
    out = jax.ShapeDtypeStruct(keys.shape[1:], jnp.int32)
    return jax.pure_callback(lambda k: np.lexsort(np.asarray(k)).astype(np.int32), out, keys, vmap_method="sequential")


def lexsort(keys) -> jax.Array:
    """``jnp.lexsort(keys)`` (the last key is the primary one; stable), NumPy's on CPU. Keys are ``[N]`` arrays
    promoted to one dtype (booleans, and integer ranks below 2^24 with float32 values, keep their order)."""
    keys = [jnp.asarray(k) for k in keys]
    dtype = jnp.result_type(*keys)
    stacked = jnp.stack([k.astype(dtype) for k in keys])
    if stacked.shape[-1] < HOST_MIN:
        return _xla_lexsort(stacked)
    return jax.lax.platform_dependent(stacked, cpu=_np_lexsort, default=_xla_lexsort)


@jax.custom_jvp
def sort(x: jax.Array) -> jax.Array:
    """Ascending sort along the last axis (NaN last), NumPy's on CPU; differentiable like ``jnp.sort``."""
    x = jnp.asarray(x)
    if x.ndim == 0 or x.shape[-1] < HOST_MIN:
        return _xla_sort(x)
    return jax.lax.platform_dependent(x, cpu=_np_sort, default=_xla_sort)


@sort.defjvp
def _sort_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    perm = argsort(x)
    return jnp.take_along_axis(x, perm, axis=-1), jnp.take_along_axis(t, perm, axis=-1)
