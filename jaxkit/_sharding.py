"""The one mesh-and-padding helper: a batch of independent members (population, runs, nodes) over devices.

A one-axis ``jax.sharding.Mesh`` over the given devices (all of every process by default), the member axis
padded to a multiple of the device count by repeating the last member, members laid out along the mesh and
shared inputs replicated. With one device every helper is the identity (``mesh`` returns ``None``), so callers
keep a single-device path that gives the same numbers. Under ``jax.distributed`` each process passes the same
values in full; :func:`put` builds the global array from them and :func:`gather` returns the full result to
every process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "check_same",
    "fetch",
    "fingerprint",
    "gather",
    "leading_size",
    "members",
    "mesh",
    "pad_to_multiple",
    "place",
    "put",
    "replicated",
]

PyTree = Any


def leading_size(tree: PyTree, name: str = "population") -> int:
    """The leading axis shared by every leaf (``ValueError`` naming ``name`` if they disagree or it is < 1)."""
    sizes = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in jax.tree.leaves(tree)}
    if not sizes or len(sizes) != 1 or min(sizes) < 1:
        raise ValueError(f"`{name}` leaves must share a non-empty leading population axis, got sizes {sorted(sizes)}.")
    return sizes.pop()


def pad_to_multiple(tree: PyTree, multiple: int, name: str = "population") -> tuple[PyTree, int]:
    """Pad the leading axis to a multiple of ``multiple`` by repeating the last member; returns ``(padded, n)``."""
    n = leading_size(tree, name)
    pad = (-n) % int(multiple)
    if pad == 0:
        return tree, n
    return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), tree), n


def mesh(devices: Sequence[Any] | None = None, axis: str = "pop") -> Mesh | None:
    """A one-axis mesh named ``axis`` over ``devices`` (default: all devices of every process); ``None`` for one."""
    devices = tuple(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), (axis,)) if len(devices) > 1 else None


def members(m: Mesh) -> NamedSharding:
    """Leading (member) axis split over the mesh's one axis."""
    return NamedSharding(m, PartitionSpec(m.axis_names[0]))


def replicated(m: Mesh) -> NamedSharding:
    """Every device holds the whole value."""
    return NamedSharding(m, PartitionSpec())


def put(x: Any, sharding: NamedSharding) -> jax.Array:
    """A global array from a value every process holds in full (multi-process safe)."""
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    x = np.asarray(x)  # pragma: no cover -- needs several processes
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def gather(x: jax.Array) -> jax.Array:
    """The whole of a (possibly sharded) result on every process, on one device."""
    if jax.process_count() > 1:  # pragma: no cover -- needs several processes
        return jnp.asarray(multihost_utils.process_allgather(x, tiled=True))
    return jax.device_put(x, jax.devices()[0]) if len(x.sharding.device_set) > 1 else x


def fingerprint(tree: PyTree) -> np.ndarray:
    """Eight bytes (as ``int32 [2]``) hashing every leaf's shape, dtype and bytes, in tree order."""
    h = hashlib.blake2b(digest_size=8)
    h.update(str(jax.tree.structure(tree)).encode())
    for x in jax.tree.leaves(tree):
        a = np.ascontiguousarray(np.asarray(x))
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return np.frombuffer(h.digest(), np.int32).copy()


def check_same(tree: PyTree, name: str) -> None:
    """Under ``jax.distributed``, raise ``ValueError`` naming ``name`` unless every process holds the same ``tree``.

    Sharded inputs are built from each process's own copy (:func:`put`), so different values in different
    processes would silently mix members. One all-gather of an 8-byte fingerprint; nothing with one process.
    """
    if jax.process_count() == 1:
        return
    fps = np.asarray(multihost_utils.process_allgather(fingerprint(tree)))  # pragma: no cover -- several processes
    if not (fps == fps[0]).all():  # pragma: no cover
        differ = [i for i in range(len(fps)) if not (fps[i] == fps[0]).all()]
        raise ValueError(
            f"`{name}` differs between processes (process(es) {differ} disagree with process 0): under "
            "jax.distributed every process must pass the same values, e.g. drawn from the same key."
        )


def fetch(tree: PyTree) -> PyTree:
    """NumPy copies of (possibly sharded) results on every process: :func:`gather`, then ``jax.device_get``."""
    if jax.process_count() > 1:  # pragma: no cover -- needs several processes
        tree = jax.tree.map(lambda x: multihost_utils.process_allgather(x, tiled=True), tree)
    return jax.device_get(tree)


def place(
    tree: PyTree, devices: Sequence[Any] | None = None, axis: str = "pop", name: str = "tree"
) -> tuple[PyTree, int]:
    """Members of ``tree`` padded and laid out over ``devices``: ``(placed, n)``; slice results with ``[:n]``.
    One device: ``tree`` unchanged."""
    m = mesh(devices, axis)
    n = leading_size(tree, name)
    if m is None:
        return tree, n
    check_same(tree, name)
    padded, _ = pad_to_multiple(tree, m.size, name)
    return jax.tree.map(lambda x: put(x, members(m)), padded), n
