"""The dataset containers every loader returns, and the batch iterator.

:class:`Dataset` holds a train and a test :class:`Split` of float32 inputs and int32 labels;
:func:`batches` yields aligned, optionally shuffled mini-batches (numpy views) from them.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Iterator

import jax
import numpy as np

from jaxkit import _checks as _c

__all__ = ["Dataset", "Split", "batches", "num_batches"]


@dataclasses.dataclass(frozen=True)
class Split:
    """Inputs ``x`` (float32, ``[N, ...]``) and integer labels ``y`` (int32, ``[N]``)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"Split: x has {len(self.x)} rows but y has {len(self.y)}.")

    def __len__(self) -> int:
        return len(self.y)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test pair with metadata."""

    name: str
    train: Split
    test: Split
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.train)}, test={len(self.test)}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes})"
        )


def num_batches(n: int, batch_size: int, drop_remainder: bool = False) -> int:
    """How many batches :func:`batches` yields for ``n`` rows.

    Args:
      n: rows.
      batch_size: rows per batch.
      drop_remainder: drop the last incomplete batch.

    Returns:
      An ``int``.

    Raises:
      ValueError: ``batch_size < 1``.

    Examples:
      >>> jaxkit.data.num_batches(5, 2), jaxkit.data.num_batches(5, 2, drop_remainder=True)
      (3, 2)
    """
    n = _c.positive_int(n, "n", minimum=0)
    batch_size = _c.positive_int(batch_size, "batch_size")
    return n // batch_size if drop_remainder else math.ceil(n / batch_size)


def prefetch(iterable, size: int = 2, device=None) -> Iterator:
    """Yield the items of ``iterable`` (pytrees of arrays) already on ``device``, ``size`` of them in flight.

    ``jax.device_put`` returns before the copy ends, so the next batches travel while the current step runs (on
    an accelerator the host-to-device copy overlaps compute; on CPU it is a cheap copy). Items come out in order,
    as ``jax.Array`` s; at most ``size`` items are taken from ``iterable`` ahead of the one being used.

    Args:
      iterable: pytrees of arrays.
      size: items in flight.
      device: the target device (default: the first).

    Returns:
      An iterator of pytrees of ``jax.Array``.

    Raises:
      ValueError: ``size < 1``.

    Examples:
      >>> [batch.shape for batch in jaxkit.data.prefetch(iter([np.ones(2), np.ones(3)]))]
      [(2,), (3,)]
    """
    if int(size) < 1:
        raise ValueError(f"`size` must be >= 1, got {size}.")
    device = jax.devices()[0] if device is None else device
    queue: collections.deque = collections.deque()
    it = iter(iterable)
    for item in it:
        queue.append(jax.device_put(item, device))
        if len(queue) >= int(size):
            yield queue.popleft()
    while queue:
        yield queue.popleft()


def batches(
    key: jax.Array | None, *arrays: np.ndarray, batch_size: int, drop_remainder: bool = False
) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield tuples of aligned mini-batches from ``arrays``.

    ``key`` is a ``jax.random`` key that fixes the shuffle (``None``: keep order).
    The permutation is drawn once per call, so ``batches(jax.random.fold_in(key,
    epoch), ...)`` gives a reproducible order per epoch. Batches are numpy views,
    cheap to hand to a jitted step.

    Args:
      key: a ``jax.random`` key that fixes the shuffle (``None``: keep order).
      *arrays: arrays of equal length.
      batch_size: rows per batch.
      drop_remainder: drop the last incomplete batch.

    Returns:
      An iterator of tuples of numpy views.

    Raises:
      ValueError: arrays of different lengths, none, ``batch_size < 1``.

    Examples:
      >>> list(jaxkit.data.batches(None, np.arange(5), np.arange(5) * 10, batch_size=2))
      [(array([0, 1]), array([ 0, 10])), (array([2, 3]), array([20, 30])), (array([4]), array([40]))]
    """
    if not arrays:
        raise ValueError("`batches` needs at least one array.")
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if np.ndim(a) == 0 or len(a) != n:
            raise ValueError(
                f"`arrays`: array {i} has {len(a) if np.ndim(a) else 'no'} rows, array 0 has {n}; "
                f"batches need aligned rows."
            )
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
    order = np.arange(n) if key is None else np.asarray(jax.random.permutation(key, n))
    stop = (n // batch_size) * batch_size if drop_remainder else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield tuple(np.asarray(a)[idx] for a in arrays)
