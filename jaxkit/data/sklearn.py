"""The small datasets scikit-learn ships (``digits``, ``iris``, ``breast_cancer``) and its synthetic
``make_classification``, split into train and test with a stratified split fixed by ``seed``.

Nothing here downloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxkit import _checks as _c
from jaxkit.data.core import Dataset, Split

__all__ = ["load_breast_cancer", "load_digits", "load_iris", "make_classification", "select_classes"]


def _split(name, x, y, test_size, seed, standardize) -> Dataset:
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    _c.number(test_size, "test_size", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    x_tr, x_te, y_tr, y_te = (
        np.asarray(a) for a in train_test_split(x, y, test_size=test_size, random_state=int(seed), stratify=y)
    )
    if standardize:
        # Statistics of the training split only, so no test information leaks.
        mean = x_tr.mean(axis=0)
        std = x_tr.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    return Dataset(
        name=name,
        train=Split(x_tr.astype(np.float32), y_tr.astype(np.int32)),
        test=Split(x_te.astype(np.float32), y_te.astype(np.int32)),
        num_classes=int(np.max(y)) + 1,
    )


def select_classes(ds: Dataset, classes: Sequence[int], name: str | None = None) -> Dataset:
    """The examples of ``classes`` only, relabelled ``0..len(classes)-1`` in the given order.

    Args:
      ds: a :class:`Dataset`.
      classes: the kept classes, e.g. ``(3, 7)`` for the 3-vs-7 task.
      name: the new dataset's name.

    Returns:
      A :class:`Dataset` with ``len(classes)`` classes.

    Raises:
      ValueError: an unknown or repeated class.

    Examples:
      >>> three_vs_seven = jaxkit.data.select_classes(jaxkit.data.load_digits(), (3, 7))
      >>> three_vs_seven.num_classes, sorted(set(three_vs_seven.train.y.tolist()))
      (2, [0, 1])
    """
    classes = _c.array(np.asarray(classes), "classes", ndim=1, kind="i")
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"`classes` must be >= 2 distinct labels, got {classes}.")
    bad = [c for c in classes if not 0 <= c < ds.num_classes]
    if bad:
        raise ValueError(f"`classes` {bad} are not labels of {ds.name!r} (0..{ds.num_classes - 1}).")
    lut = np.full(ds.num_classes, -1, np.int32)
    lut[classes] = np.arange(len(classes), dtype=np.int32)

    def sub(split: Split) -> Split:
        keep = lut[split.y] >= 0
        return Split(split.x[keep], lut[split.y[keep]])

    return Dataset(name or f"{ds.name}[{','.join(map(str, classes))}]", sub(ds.train), sub(ds.test), len(classes))


def load_digits(*, test_size: float = 0.2, seed: int = 0, images: bool = True) -> Dataset:
    """scikit-learn's bundled handwritten digits: 1,797 8x8 images, 10 classes.

    Pixel values 0..16 are scaled to [0, 1]. ``images=True`` gives ``[N, 8, 8, 1]``
    (NHWC, for CNNs), otherwise flat ``[N, 64]`` vectors.

    Args:
      test_size: the test split's share.
      seed: the split's seed.
      images: ``[N, 8, 8, 1]`` images (else flat ``[N, 64]``).

    Returns:
      A :class:`Dataset` (``train``, ``test`` splits, ``num_classes``).

    Raises:
      ValueError: ``test_size`` outside ``(0, 1)``.

    References:
      Alpaydin & Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning Repository, 1998.

    Examples:
      >>> ds = jaxkit.data.load_digits()
      >>> ds.train.x.shape, ds.test.x.shape, ds.num_classes
      ((1437, 8, 8, 1), (360, 8, 8, 1), 10)
    """
    from sklearn import datasets  # noqa: PLC0415

    d: Any = datasets.load_digits()
    x = d.images.astype(np.float32) / 16.0
    x = x[..., None] if images else x.reshape(len(x), -1)
    return _split("digits", x, d.target, test_size, seed, standardize=False)


def load_iris(*, test_size: float = 0.2, seed: int = 0, standardize: bool = False) -> Dataset:
    """scikit-learn's bundled Iris: 150 samples, 4 features (cm), 3 classes.

    ``standardize`` rescales features to zero mean and unit variance using the
    training split's statistics.

    Args:
      test_size: the test split's share.
      seed: the split's seed.
      standardize: zero mean, unit variance from the training split's statistics.

    Returns:
      A :class:`Dataset`.

    Raises:
      ValueError: ``test_size`` outside ``(0, 1)``.

    References:
      Fisher, "The use of multiple measurements in taxonomic problems", Annals of Eugenics 7, 1936.

    Examples:
      >>> jaxkit.data.load_iris().train.x.shape
      (120, 4)
    """
    from sklearn import datasets  # noqa: PLC0415

    d: Any = datasets.load_iris()
    return _split("iris", d.data, d.target, test_size, seed, standardize)


def load_breast_cancer(*, test_size: float = 0.2, seed: int = 0, standardize: bool = True) -> Dataset:
    """scikit-learn's bundled Wisconsin breast cancer: 569 samples, 30 features, 2 classes.

    Args:
      test_size: the test split's share.
      seed: the split's seed.
      standardize: zero mean, unit variance from the training split's statistics.

    Returns:
      A :class:`Dataset`.

    Raises:
      ValueError: ``test_size`` outside ``(0, 1)``.

    References:
      Street, Wolberg & Mangasarian, "Nuclear feature extraction for breast tumor diagnosis", IS&T/SPIE 1993.

    Examples:
      >>> jaxkit.data.load_breast_cancer().train.x.shape
      (455, 30)
    """
    from sklearn import datasets  # noqa: PLC0415

    d: Any = datasets.load_breast_cancer()
    return _split("breast_cancer", d.data, d.target, test_size, seed, standardize)


def make_classification(
    n_samples: int = 1000,
    n_features: int = 10,
    n_classes: int = 3,
    *,
    n_informative: int | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    standardize: bool = False,
    **kwargs,
) -> Dataset:
    """Deterministic synthetic classification data (``sklearn.datasets.make_classification``).

    ``n_informative`` defaults to ``min(n_features, max(2, n_classes))`` so that any
    ``n_classes`` is valid; other keyword arguments go to scikit-learn.

    Args:
      n_samples: samples in all.
      n_features: features.
      n_classes: classes.
      n_informative: informative features (default ``min(n_features, max(2, n_classes))``).
      test_size: the test split's share.
      seed: the split's seed.
      standardize: zero mean, unit variance from the training split's statistics.
      **kwargs: further scikit-learn arguments.

    Returns:
      A :class:`Dataset`.

    Raises:
      ValueError: sizes scikit-learn refuses, ``test_size`` outside ``(0, 1)``.

    References:
      Guyon, "Design of experiments of the NIPS 2003 variable selection benchmark", 2003 (the generator).

    Examples:
      >>> jaxkit.data.make_classification(100, 5, 3).train.x.shape
      (80, 5)
    """
    from sklearn import datasets  # noqa: PLC0415

    for arg, val, lo in (("n_samples", n_samples, 2), ("n_features", n_features, 1), ("n_classes", n_classes, 2)):
        if int(val) < lo:
            raise ValueError(f"`{arg}` must be >= {lo}, got {val}.")
    if n_informative is None:
        n_informative = min(n_features, max(2, n_classes))
    kwargs.setdefault("n_redundant", max(0, min(2, n_features - n_informative)))
    x, y = datasets.make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_classes=n_classes,
        n_informative=n_informative,
        random_state=int(seed),
        **kwargs,
    )
    return _split(f"synthetic_{n_features}f_{n_classes}c", x, y, test_size, seed, standardize)
