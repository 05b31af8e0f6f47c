"""Offline datasets as numpy arrays, and batch iterators.

Nothing here downloads. The bundled loaders read the small datasets that
scikit-learn ships (``digits``, ``iris``, ``breast_cancer``); the synthetic
generators are deterministic functions of an integer ``seed``; :func:`load_tfds`
reads a TensorFlow-Datasets dataset that has already been prepared on disk (no
TensorFlow needed: it uses TFDS's ``array_record`` data sources).

Every loader returns a :class:`Dataset` of float32 inputs and int32 labels, split
into train and test with a stratified split fixed by ``seed``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Sequence

import jax
import numpy as np

__all__ = [
    "Split",
    "Dataset",
    "load_digits",
    "load_iris",
    "load_breast_cancer",
    "make_classification",
    "batches",
    "num_batches",
    "load_tfds",
    "CupMeshes",
    "CUP_PARAMS",
    "cup_reference",
    "make_cups",
]


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


def _check_test_size(test_size: float) -> None:
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"`test_size` must lie in (0, 1), got {test_size}.")


def _split(name, x, y, test_size, seed, standardize) -> Dataset:
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    _check_test_size(test_size)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_size, random_state=int(seed), stratify=y
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


def load_digits(*, test_size: float = 0.2, seed: int = 0, images: bool = True) -> Dataset:
    """scikit-learn's bundled handwritten digits: 1,797 8x8 images, 10 classes.

    Pixel values 0..16 are scaled to [0, 1]. ``images=True`` gives ``[N, 8, 8, 1]``
    (NHWC, for CNNs), otherwise flat ``[N, 64]`` vectors.
    """
    from sklearn import datasets  # noqa: PLC0415

    d = datasets.load_digits()
    x = d.images.astype(np.float32) / 16.0
    x = x[..., None] if images else x.reshape(len(x), -1)
    return _split("digits", x, d.target, test_size, seed, standardize=False)


def load_iris(*, test_size: float = 0.2, seed: int = 0, standardize: bool = False) -> Dataset:
    """scikit-learn's bundled Iris: 150 samples, 4 features (cm), 3 classes.

    ``standardize`` rescales features to zero mean and unit variance using the
    training split's statistics.
    """
    from sklearn import datasets  # noqa: PLC0415

    d = datasets.load_iris()
    return _split("iris", d.data, d.target, test_size, seed, standardize)


def load_breast_cancer(*, test_size: float = 0.2, seed: int = 0, standardize: bool = True) -> Dataset:
    """scikit-learn's bundled Wisconsin breast cancer: 569 samples, 30 features, 2 classes."""
    from sklearn import datasets  # noqa: PLC0415

    d = datasets.load_breast_cancer()
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


def num_batches(n: int, batch_size: int, drop_remainder: bool = False) -> int:
    """How many batches :func:`batches` yields for ``n`` rows."""
    return n // batch_size if drop_remainder else math.ceil(n / batch_size)


def batches(
    key: jax.Array | None,
    *arrays: np.ndarray,
    batch_size: int,
    drop_remainder: bool = False,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield tuples of aligned mini-batches from ``arrays``.

    ``key`` is a ``jax.random`` key that fixes the shuffle (``None``: keep order).
    The permutation is drawn once per call, so ``batches(jax.random.fold_in(key,
    epoch), ...)`` gives a reproducible order per epoch. Batches are numpy views,
    cheap to hand to a jitted step.
    """
    if not arrays:
        raise ValueError("`batches` needs at least one array.")
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if len(a) != n:
            raise ValueError(f"`batches`: array {i} has {len(a)} rows, array 0 has {n}.")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
    order = np.arange(n) if key is None else np.asarray(jax.random.permutation(key, n))
    stop = (n // batch_size) * batch_size if drop_remainder else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield tuple(np.asarray(a)[idx] for a in arrays)


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

    and copy ``data_dir`` over. Raises ``ImportError`` if tensorflow-datasets is
    missing and ``FileNotFoundError`` (saying how to prepare it) if the data is
    not on disk.
    """
    try:
        import tensorflow_datasets as tfds  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "load_tfds needs tensorflow-datasets: `pip install 'jaxkit[tfds]'`."
        ) from e
    if len(splits) != 2:
        raise ValueError(f"`splits` must name a train and a test split, got {splits!r}.")
    if max_examples is not None and int(max_examples) < 1:
        raise ValueError(f"`max_examples` must be >= 1 or None, got {max_examples}.")
    data_dir = os.fspath(os.path.expanduser(data_dir)) if data_dir is not None else None

    def read(split):
        try:
            source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
        except Exception as e:  # noqa: BLE001 - TFDS raises several types for missing data
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


@dataclasses.dataclass(frozen=True)
class CupMeshes:
    """Synthetic deep-drawn cups (:func:`make_cups`).

    ``reference``: ``[m, 3]`` undeformed mesh points (use it for
    :func:`jaxkit.prune.cupnet.connectivity`); ``train`` / ``test``: ``x`` the
    ``k`` process parameters in ``[0, 1]`` (float32 ``[N, k]``), ``y`` the
    deformation as ``[N, 3m]`` = (x-displacements of the m points, then y, then z),
    in mm. ``param_names`` names the columns of ``x``.
    """

    reference: np.ndarray
    train: Split
    test: Split
    param_names: tuple[str, ...]

    @property
    def m(self) -> int:
        return len(self.reference)

    def __repr__(self) -> str:
        return (f"CupMeshes(m={self.m}, k={len(self.param_names)}, train={len(self.train)}, "
                f"test={len(self.test)})")


CUP_PARAMS = ("depth", "blank_holder", "friction", "anisotropy", "dent_angle", "dent_depth", "springback",
              "thickness", "die_radius")


def cup_reference(n_theta: int = 24, n_profile: int = 10, *, radius: float = 30.0, height: float = 25.0,
                  flange: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference cup mesh: a surface of revolution (bottom, wall, flange) in mm.

    Returns ``(points [m, 3], theta [m], t [m])`` with ``m = n_theta * n_profile``;
    ``t`` in ``[0, 1]`` runs along the profile from the bottom centre (0) over the
    bottom edge (1/3) and the rim (2/3) to the flange's outer edge (1).
    """
    if int(n_theta) < 3 or int(n_profile) < 3:
        raise ValueError(f"`n_theta` and `n_profile` must be >= 3, got {n_theta}, {n_profile}.")
    theta = np.repeat(np.linspace(0, 2 * np.pi, int(n_theta), endpoint=False), int(n_profile))
    t = np.tile((np.arange(int(n_profile)) + 0.5) / int(n_profile), int(n_theta))
    seg = np.clip(t * 3, 0, 3)
    r = np.where(seg < 1, radius * seg, np.where(seg < 2, radius, radius + flange * (seg - 2)))
    z = np.where(seg < 1, 0.0, np.where(seg < 2, height * (seg - 1), height))
    pts = np.stack([r * np.cos(theta), r * np.sin(theta), z], axis=1)
    return pts, theta, t


def make_cups(n_samples: int = 1000, *, k: int = 5, n_theta: int = 24, n_profile: int = 10,
              test_size: float = 0.1, noise: float = 0.0, seed: int = 0) -> CupMeshes:
    """A deterministic stand-in for the CupNet paper's (private) deep-drawing simulations.

    ``k`` (1..9) process parameters ``p ~ U[0, 1]`` (:data:`CUP_PARAMS`, in that
    order; absent ones fixed at 0.5) deform the reference cup
    (:func:`cup_reference`) by smooth global modes and **local** features:

    * drawing depth scales the wall height, springback opens the wall outward
      (growing with height), thickness shifts the surface normal;
    * earing from anisotropy: the rim and flange rise as ``cos(4 theta)``;
    * flange wrinkling, 8 waves around, where the blank-holder force is low
      (amplitude ``relu(0.6 - blank_holder) * friction``);
    * a dent: a Gaussian bump in the wall at angle ``2 pi dent_angle`` with
      depth ``dent_depth`` -- local, so nearby points move together, the
      structure CupNet's masks exploit;
    * die radius rounds the bottom edge.

    ``noise`` (mm, Gaussian, per coordinate) mimics simulation scatter. The
    ``y`` blocks are x, y, z displacements of all points (``[N, 3m]``).
    """
    if not 1 <= int(k) <= len(CUP_PARAMS):
        raise ValueError(f"`k` must lie in [1, {len(CUP_PARAMS)}], got {k}.")
    if int(n_samples) < 2:
        raise ValueError(f"`n_samples` must be >= 2, got {n_samples}.")
    _check_test_size(test_size)
    if noise < 0:
        raise ValueError(f"`noise` must be >= 0, got {noise}.")
    rng = np.random.default_rng(int(seed))
    ref, theta, t = cup_reference(n_theta, n_profile)
    p = np.full((int(n_samples), len(CUP_PARAMS)), 0.5)
    p[:, : int(k)] = rng.uniform(size=(int(n_samples), int(k)))
    P = {name: p[:, i : i + 1] for i, name in enumerate(CUP_PARAMS)}
    seg = np.clip(t * 3, 0, 3)[None, :]
    wall = np.clip(seg - 1, 0, 1)  # 0 below the wall, rises to 1 at the rim
    flange = np.clip(seg - 2, 0, 1)
    r0 = np.hypot(ref[:, 0], ref[:, 1])[None, :]
    z0 = ref[None, :, 2]
    th = theta[None, :]
    # radial and axial displacement fields
    dz = (P["depth"] - 0.5) * 10.0 * wall
    dz = dz + 3.0 * P["anisotropy"] * np.cos(4 * th) * (seg >= 2) * (0.3 + flange)
    dz = dz + 2.5 * np.maximum(0.6 - P["blank_holder"], 0) * (0.5 + P["friction"]) * np.sin(8 * th) * flange
    dr = 2.0 * P["springback"] * wall ** 2 * (seg < 2) + 2.0 * P["springback"] * (seg >= 2)
    dr = dr + (P["thickness"] - 0.5) * 0.8 * (seg >= 1)
    corner = np.exp(-((seg - 1) / 0.25) ** 2)
    dr = dr - 3.0 * P["die_radius"] * corner
    dz = dz + 3.0 * P["die_radius"] * corner
    ang = np.angle(np.exp(1j * (th - 2 * np.pi * P["dent_angle"])))
    dent = np.exp(-(ang / 0.35) ** 2 - ((seg - 1.5) / 0.25) ** 2)
    dr = dr - 4.0 * P["dent_depth"] * dent
    r1 = r0 + dr
    x1, y1, z1 = r1 * np.cos(th), r1 * np.sin(th), z0 + dz
    disp = np.concatenate([x1 - ref[None, :, 0], y1 - ref[None, :, 1], z1 - z0], axis=1)
    if noise > 0:
        disp = disp + rng.normal(scale=noise, size=disp.shape)
    n_test = max(1, int(round(test_size * int(n_samples))))
    perm = rng.permutation(int(n_samples))
    te, tr = perm[:n_test], perm[n_test:]
    x = p[:, : int(k)].astype(np.float32)
    disp = disp.astype(np.float32)
    return CupMeshes(reference=ref.astype(np.float32), train=Split(x[tr], disp[tr]), test=Split(x[te], disp[te]),
                     param_names=CUP_PARAMS[: int(k)])
