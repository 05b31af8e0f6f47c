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
    """An empty ring buffer for items shaped like ``example`` (a pytree of arrays or scalars).

    Args:
      capacity: items held (the oldest are overwritten).
      example: one item.

    Returns:
      A ``ReplayState`` (``data``, ``position``, ``size``).

    Raises:
      ValueError: ``capacity < 1``.

    References:
      Lin, "Self-improving reactive agents based on reinforcement learning, planning and teaching", Machine Learning 8,
      1992 (experience replay).

    Examples:
      >>> buffer = jaxkit.rl.replay.init(3, {"obs": jnp.zeros(2), "reward": 0.0})
      >>> buffer = jaxkit.rl.replay.add(buffer, {"obs": jnp.ones(2), "reward": 1.0})
      >>> int(buffer.size), int(buffer.position)
      (1, 1)
    """
    if int(capacity) < 1:
        raise ValueError(f"`capacity` must be >= 1, got {capacity}.")
    leaves = jax.tree.leaves(example)
    if not leaves:
        raise ValueError("`example` must contain at least one array leaf.")
    data = jax.tree.map(lambda x: jnp.zeros((int(capacity),) + jnp.shape(x), jnp.asarray(x).dtype), example)
    return ReplayState(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(state: ReplayState, item) -> ReplayState:
    """Write ``item`` (same structure, shapes and dtypes as the buffer's ``example``) at the ring position.

    Args:
      state: the buffer.
      item: one item.

    Returns:
      The new buffer.

    Raises:
      ValueError: an item of another structure or shape.

    References:
      Lin, "Self-improving reactive agents based on reinforcement learning, planning and teaching", Machine Learning 8,
      1992 (experience replay).

    Examples:
      >>> buffer = jaxkit.rl.replay.init(3, {"obs": jnp.zeros(2), "reward": 0.0})
      >>> buffer = jaxkit.rl.replay.add(buffer, {"obs": jnp.ones(2), "reward": 1.0})
      >>> print(buffer.data["reward"])
      [1. 0. 0.]
    """
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
    """``batch_size`` items drawn uniformly with replacement from the ``size`` stored (slot 0 while empty).

    Args:
      key: PRNG key.
      state: the buffer.
      batch_size: items drawn.

    Returns:
      A batch: the item's structure with a leading ``batch_size`` axis.

    Raises:
      ValueError: ``batch_size < 1``.

    References:
      Lin, "Self-improving reactive agents based on reinforcement learning, planning and teaching", Machine Learning 8,
      1992 (experience replay).

    Examples:
      >>> buffer = jaxkit.rl.replay.init(3, {"obs": jnp.zeros(2), "reward": 0.0})
      >>> buffer = jaxkit.rl.replay.add(buffer, {"obs": jnp.ones(2), "reward": 1.0})
      >>> print(jaxkit.rl.replay.sample(jax.random.key(0), buffer, 4)["reward"])
      [1. 1. 1. 1.]
    """
    idx = jax.random.randint(key, (int(batch_size),), 0, jnp.maximum(state.size, 1))
    return jax.tree.map(lambda buf: buf[idx], state.data)
