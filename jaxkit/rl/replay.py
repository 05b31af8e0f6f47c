"""A functional replay buffer: a ring of fixed capacity held in a pytree.

``init(capacity, example)`` allocates one leading ``capacity`` axis per leaf of
``example`` (any pytree of arrays: a transition dict, say); ``add`` writes one
item at the ring position; ``sample`` draws uniformly, with replacement, from
the items stored so far. Pure and jittable; ``vmap`` it for many runs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["ReplayState", "add", "init", "sample"]


@struct.dataclass
class ReplayState:
    """``data``: pytree with leading axis ``capacity``; ``position``: next write slot; ``size``: items stored."""

    data: object
    position: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return int(jax.tree.leaves(self.data)[0].shape[0])


def init(capacity: int, example) -> ReplayState:
    """An empty buffer for items shaped like ``example`` (a pytree of arrays or scalars)."""
    if int(capacity) < 1:
        raise ValueError(f"`capacity` must be >= 1, got {capacity}.")
    leaves = jax.tree.leaves(example)
    if not leaves:
        raise ValueError("`example` must contain at least one array leaf.")
    data = jax.tree.map(lambda x: jnp.zeros((int(capacity),) + jnp.shape(x), jnp.asarray(x).dtype), example)
    return ReplayState(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(state: ReplayState, item) -> ReplayState:
    """Write ``item`` (same structure, shapes and dtypes as the buffer's ``example``) at the ring position."""
    want = jax.tree.structure(state.data)
    got = jax.tree.structure(item)
    if want != got:
        raise ValueError(f"`item` must have the buffer's structure {want}, got {got}.")

    def put(buf, x):
        x = jnp.asarray(x)
        if x.shape != buf.shape[1:]:
            raise ValueError(f"`item` leaf has shape {x.shape}; the buffer stores shape {buf.shape[1:]}.")
        return buf.at[state.position].set(x.astype(buf.dtype))

    data = jax.tree.map(put, state.data, item)
    cap = state.capacity
    return ReplayState(data, (state.position + 1) % cap, jnp.minimum(state.size + 1, cap))


def sample(key, state: ReplayState, batch_size: int):
    """``batch_size`` items drawn uniformly with replacement from the ``size`` stored (slot 0 while empty)."""
    idx = jax.random.randint(key, (int(batch_size),), 0, jnp.maximum(state.size, 1))
    return jax.tree.map(lambda buf: buf[idx], state.data)
