"""TensorFlow-Datasets datasets already prepared on disk, read offline.

:func:`load_tfds` uses TFDS's ``array_record`` data sources (no TensorFlow needed) with
``download=False``; tensorflow-datasets is an optional dependency (``jaxkit-papers[tfds]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxkit.data.core import Dataset, Split

__all__ = ["load_tfds"]


def load_tfds(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    splits: Sequence[str] = ("train", "test"),
    image_key: str = "image",
    label_key: str = "label",
    max_examples: int | None = None,
    scale: float | None = 255.0,
) -> Dataset:
    """Load a prepared TensorFlow-Datasets dataset into numpy arrays, offline.

    Uses ``tfds.data_source`` (``array_record`` files, no TensorFlow needed) with
    ``download=False``. ``splits`` names the train and the test split (e.g.
    ``("train[:90%]", "test")``); ``scale`` divides the inputs (``None``: keep).
    Prepare data on a machine with network access first, e.g.::

        pip install tensorflow-datasets
        tfds build cifar10 --file_format=array_record --data_dir ~/tensorflow_datasets

    Args:
      name: the TFDS dataset name.
      data_dir: where the prepared data is (default: TFDS's).
      splits: the train and the test split.
      image_key: the inputs' feature name.
      label_key: the labels' feature name.
      max_examples: at most this many examples per split.
      scale: the inputs are divided by it (``None``: kept).

    Returns:
      A :class:`Dataset`.

    Raises:
      ImportError: tensorflow-datasets is missing.
      FileNotFoundError: the data is not on disk (the message says how to prepare it).

    Examples:
      >>> import tempfile
      >>> jaxkit.data.load_tfds("cifar10", data_dir=tempfile.mkdtemp())  # never downloads
      Traceback (most recent call last):
      ...
      FileNotFoundError: TFDS dataset 'cifar10' (split 'train') is not prepared in ...
    """
    try:
        import tensorflow_datasets as tfds  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("load_tfds needs tensorflow-datasets: `pip install 'jaxkit-papers[tfds]'`.") from e
    if len(splits) != 2:
        raise ValueError(f"`splits` must name a train and a test split, got {splits!r}.")
    if max_examples is not None and int(max_examples) < 1:
        raise ValueError(f"`max_examples` must be >= 1 or None, got {max_examples}.")
    data_dir = os.fspath(os.path.expanduser(data_dir)) if data_dir is not None else None

    def read(split):
        try:
            source: Any = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
        except Exception as e:
            where = data_dir or "~/tensorflow_datasets (TFDS default)"
            raise FileNotFoundError(
                f"TFDS dataset {name!r} (split {split!r}) is not prepared in {where}: {e}\n"
                f"jaxkit never downloads. On a machine with network access run\n"
                f"  tfds build {name.split(':')[0]} --file_format=array_record --data_dir DIR\n"
                f"then pass data_dir=DIR (or copy DIR here)."
            ) from e
        n = len(source) if max_examples is None else min(len(source), int(max_examples))
        if n == 0:
            raise FileNotFoundError(f"TFDS dataset {name!r} split {split!r} is empty.")
        rows = [source[i] for i in range(n)]
        for k in (image_key, label_key):
            if k not in rows[0]:
                raise ValueError(f"TFDS {name!r} has no feature {k!r}; its features are {sorted(rows[0])}.")
        x = np.stack([np.asarray(r[image_key]) for r in rows]).astype(np.float32)
        if scale is not None:
            x = x / np.float32(scale)
        y = np.asarray([r[label_key] for r in rows], dtype=np.int32)
        return Split(x, y), source

    train, source = read(splits[0])
    test, _ = read(splits[1])
    try:
        num_classes = int(source.dataset_info.features[label_key].num_classes)
    except Exception:  # noqa: BLE001 - mock or custom datasets may lack the metadata
        num_classes = int(max(train.y.max(), test.y.max())) + 1
    return Dataset(name=name, train=train, test=test, num_classes=num_classes)
