"""Offline datasets as numpy arrays, and batch iterators.

Nothing here downloads. The bundled loaders read the small datasets that
scikit-learn ships (``digits``, ``iris``, ``breast_cancer``); the synthetic
generators are deterministic functions of an integer ``seed``; :func:`load_tfds`
reads a TensorFlow-Datasets dataset that has already been prepared on disk (no
TensorFlow needed: it uses TFDS's ``array_record`` data sources).

Tabular fairness data (:class:`FairTabular`, sensitive attributes as integer
codes): :func:`make_fair_tabular` (synthetic, with a known amount of group
bias) and readers for local copies of the German credit, ProPublica COMPAS
and UCI Adult files (:func:`load_german`, :func:`load_compas`,
:func:`load_adult`) with Friedler et al.'s (2019) preprocessing.

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

from jaxkit import _checks as _c

__all__ = [
    "Split",
    "Dataset",
    "load_digits",
    "select_classes",
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
    "HyperspectralScene",
    "TARGET_NAMES",
    "check_cube",
    "make_hyperspectral_scene",
    "scale_cube",
    "pixel_windows",
    "window_split",
    "load_scene",
    "FairTabular",
    "make_fair_tabular",
    "load_german",
    "load_compas",
    "load_adult",
    "RotatedDomains",
    "make_rotated_digits",
    "domain_batch_sampler",
    "domain_batch_indices",
    "make_imbalanced",
    "balanced_sampler",
    "injection_sampler",
    "expected_wait",
    "synthesize",
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
    if not 0.0 < _c.number(test_size, "test_size") < 1.0:
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


def select_classes(ds: Dataset, classes: Sequence[int], name: str | None = None) -> Dataset:
    """The examples of ``classes`` only, relabelled ``0..len(classes)-1`` in the given order (e.g. ``(3, 7)``
    for the 3-vs-7 task)."""
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
    n = _c.positive_int(n, "n", minimum=0)
    batch_size = _c.positive_int(batch_size, "batch_size")
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
        if np.ndim(a) == 0 or len(a) != n:
            raise ValueError(f"`arrays`: array {i} has {len(a) if np.ndim(a) else 'no'} rows, array 0 has {n}; "
                             f"batches need aligned rows.")
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
    radius = _c.number(radius, "radius", lo=0.0, lo_open=True)
    height = _c.number(height, "height", lo=0.0, lo_open=True)
    flange = _c.number(flange, "flange", lo=0.0)
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
    noise = _c.number(noise, "noise", lo=0.0)
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


# ----------------------------------------------------------------------------- hyperspectral scenes

TARGET_NAMES = ("bright panel", "camouflage panel", "low-contrast", "panel in shadow", "in-ellipsoid",
                "red panel", "blue panel", "grey metal", "small bright", "orange panel", "dark panel",
                "white tarp", "green tarp", "yellow panel")
ENDMEMBER_NAMES = ("vegetation", "soil", "dry grass", "asphalt", "water/shadow")


@dataclasses.dataclass(frozen=True)
class HyperspectralScene:
    """A cube ``[H, W, B]`` (float32, sqrt-radiance in ``[0, 256)``) with per-target masks ``[T, H, W]``.

    ``inner``: target pixels (fill >= 0.99); ``outer``: target plus its mixed
    border (fill > 0). ``endmembers`` ``[E, B]`` / ``abundances`` ``[H, W, E]``
    are set for synthetic scenes, ``None`` for loaded ones.
    """

    cube: np.ndarray
    inner: np.ndarray
    outer: np.ndarray
    wavelengths: np.ndarray | None = None
    target_names: tuple[str, ...] = ()
    endmembers: np.ndarray | None = None
    abundances: np.ndarray | None = None

    def __post_init__(self):
        check_cube(self.cube)
        h, w, _ = self.cube.shape
        for name in ("inner", "outer"):
            m = np.asarray(getattr(self, name))
            if m.ndim != 3 or m.shape[1:] != (h, w):
                raise ValueError(f"`{name}` masks must be [T, {h}, {w}], got {m.shape}.")
        if np.shape(self.inner) != np.shape(self.outer):
            raise ValueError(f"`inner` and `outer` differ in shape: {np.shape(self.inner)} vs {np.shape(self.outer)}.")

    @property
    def background(self) -> np.ndarray:
        """Bool ``[H, W]``: pixels outside every outer mask."""
        return ~np.asarray(self.outer, bool).any(0)

    def __repr__(self) -> str:
        return f"HyperspectralScene(cube={self.cube.shape}, targets={len(self.inner)})"


def check_cube(cube, bands: int | None = None) -> np.ndarray:
    """Validate a cube: ``[H, W, B]``, finite, non-negative (and ``bands`` bands)."""
    c = np.asarray(_c.array(np.asarray(cube), "cube", ndim=3, kind="r"))
    if 0 in c.shape:
        raise ValueError(f"`cube` is empty (shape {c.shape}).")
    if bands is not None and c.shape[-1] != bands:
        raise ValueError(f"`cube` has {c.shape[-1]} bands, expected {bands}.")
    if not np.all(np.isfinite(c)):
        raise ValueError("`cube` contains NaN or inf.")
    if np.any(c < 0):
        raise ValueError(f"`cube` has negative values (min {c.min()}); expected radiance >= 0.")
    return c


def _smooth_field(rng, shape, sigma):
    from scipy.ndimage import gaussian_filter  # noqa: PLC0415

    f = gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _endmembers(wl: np.ndarray) -> np.ndarray:
    sig = lambda x, c, s: 1 / (1 + np.exp(-(x - c) / s))  # noqa: E731
    bump = lambda x, c, s: np.exp(-0.5 * ((x - c) / s) ** 2)  # noqa: E731
    veg = 0.04 + 0.05 * bump(wl, 0.55, 0.03) + 0.46 * sig(wl, 0.72, 0.015)
    soil = 0.12 + 0.25 * (wl - 0.41) / 0.57 - 0.05 * ((wl - 0.7) / 0.3) ** 2
    grass = 0.08 + 0.3 * sig(wl, 0.6, 0.08) + 0.05 * sig(wl, 0.72, 0.02)
    asphalt = 0.07 + 0.03 * (wl - 0.41) / 0.57
    water = 0.07 * np.exp(-(wl - 0.41) / 0.15) + 0.01
    return np.stack([veg, soil, grass, asphalt, water])


def _render(h, w, cy, cx, size, shape, ss=4):
    """Fill fraction of a target (square or disc of ``size`` px centred at ``(cy, cx)``) with ss x ss supersampling."""
    y = (np.arange(h * ss) + 0.5) / ss
    x = (np.arange(w * ss) + 0.5) / ss
    yy, xx = np.meshgrid(y, x, indexing="ij")
    if shape == "disc":
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= (size / 2) ** 2
    else:
        inside = (np.abs(yy - cy) <= size / 2) & (np.abs(xx - cx) <= size / 2)
    return inside.reshape(h, ss, w, ss).mean((1, 3))


def make_hyperspectral_scene(height: int = 128, width: int = 128, *, bands: int = 20, seed: int = 0,
                             noise: float = 1.0) -> HyperspectralScene:
    """A deterministic synthetic airborne scene standing in for the thesis's private image.

    20 bands over 0.41-0.98 um; smooth endmember spectra (vegetation with a
    red edge, soil, dry grass, asphalt, water/shadow); patchy cover from
    smooth random fields (mixed pixels only at patch edges); a thin, scarce
    road with bright dashed markings; an illumination field with cast
    shadows; signal-dependent noise (``noise`` scales it); then the square-root
    transform and quantisation to ``[0, 256)``.

    14 targets (:data:`TARGET_NAMES`) rendered at 4x supersampling so sub-pixel
    placement gives fractional fill (outer = fill > 0, inner = fill >= 0.99):
    a bright panel, a green "camouflage" panel without a red edge, a
    low-contrast target (soil-like, on soil), a panel in shadow, an
    "in-ellipsoid" target whose spectrum is the scene's mean (inside the global
    background ellipsoid, so global RX misses it, but far from every cover
    class), and nine coloured panels/tarps of 2-5 px.
    """
    h, w = int(height), int(width)
    if h < 32 or w < 32:
        raise ValueError(f"the scene must be at least 32 x 32 pixels, got {h} x {w}.")
    if int(bands) < 4:
        raise ValueError(f"`bands` must be >= 4, got {bands}.")
    noise = _c.number(noise, "noise", lo=0.0)
    rng = np.random.default_rng(int(seed))
    wl = np.linspace(0.41, 0.98, int(bands))
    em = _endmembers(wl)
    # cover classes: vegetation / soil / dry grass patches, a small lake
    fields = np.stack([_smooth_field(rng, (h, w), 7) for _ in range(3)], -1)
    fields[..., 0] += 0.3
    label = np.argmax(fields, -1)
    lake = _smooth_field(rng, (h, w), 10) > 1.6
    onehot = np.zeros((h, w, len(em)))
    onehot[np.arange(h)[:, None], np.arange(w)[None, :], label] = 1
    onehot[lake] = 0
    onehot[lake, 4] = 1
    from scipy.ndimage import gaussian_filter  # noqa: PLC0415

    ab = np.stack([gaussian_filter(onehot[..., k], 0.6, mode="nearest") for k in range(len(em))], -1)
    # road: 2 px wide, gently curved, across the image, with dashed bright markings on its centre line
    cols = np.arange(w)
    centre = h * 0.78 + 4 * np.sin(cols / w * 2 * np.pi)
    road = np.zeros((h, w))
    for dy in np.linspace(-1.0, 1.0, 9):
        rows = np.clip(np.round(centre + dy).astype(int), 0, h - 1)
        road[rows, cols] += 1 / 9
    road = np.clip(road * 2, 0, 1)
    ab = ab * (1 - road[..., None])
    ab[..., 3] += road
    ab = ab / ab.sum(-1, keepdims=True)
    refl = ab @ em
    marks = np.zeros((h, w), bool)
    marks[np.round(centre).astype(int).clip(0, h - 1), cols] = (cols // 3) % 3 == 0
    refl[marks] = 0.55
    # targets
    names = TARGET_NAMES
    spectra = {
        "bright panel": np.full_like(wl, 0.85),
        # green paint: vegetation-like in the visible, but a slow rise through the NIR instead of a red edge
        "camouflage panel": 0.04 + 0.06 * np.exp(-0.5 * ((wl - 0.55) / 0.03) ** 2) + 0.2 * np.clip((wl - 0.6) / 0.38, 0, 1),
        "low-contrast": em[1] * 1.06,
        "panel in shadow": np.full_like(wl, 0.7),
        "red panel": 0.05 + 0.5 / (1 + np.exp(-(wl - 0.6) / 0.02)),
        "blue panel": 0.05 + 0.35 * np.exp(-0.5 * ((wl - 0.45) / 0.04) ** 2) + 0.2 * (wl > 0.8),
        "grey metal": np.full_like(wl, 0.3),
        "small bright": np.full_like(wl, 0.75),
        "orange panel": 0.05 + 0.45 / (1 + np.exp(-(wl - 0.57) / 0.02)),
        "dark panel": np.full_like(wl, 0.02),
        "white tarp": 0.6 + 0.1 * (wl - 0.41),
        "green tarp": 0.05 + 0.15 * np.exp(-0.5 * ((wl - 0.53) / 0.04) ** 2) + 0.3 / (1 + np.exp(-(wl - 0.8) / 0.03)),
        "yellow panel": 0.05 + 0.55 / (1 + np.exp(-(wl - 0.52) / 0.02)),
    }
    sizes = [4, 4, 5, 4, 4, 3, 3, 3, 2, 3, 3, 4, 3, 3]
    # targets on a jittered 4 x 4 grid in the upper 70 % of the image (the road runs below)
    cells = [(r, c) for r in range(4) for c in range(4)][: len(names)]
    inner = np.zeros((len(names), h, w), bool)
    outer = np.zeros((len(names), h, w), bool)
    illum = 1.0 + 0.12 * _smooth_field(rng, (h, w), 20)
    shadow = np.zeros((h, w))
    for k in range(6):  # cast shadows: soft blobs
        cy, cx = rng.uniform(0, 0.7 * h), rng.uniform(0, w)
        shadow = np.maximum(shadow, _render(h, w, cy, cx, rng.uniform(6, 12), "disc", 2))
    fills = []
    for t, ((r, c), size) in enumerate(zip(cells, sizes)):
        cy = (r + 0.5) * 0.7 * h / 4 + rng.uniform(-0.25, 0.25) * 0.7 * h / 4 * 0.5
        cx = (c + 0.5) * w / 4 + rng.uniform(-0.25, 0.25) * w / 4 * 0.5
        cy, cx = cy + rng.uniform(0, 1), cx + rng.uniform(0, 1)  # sub-pixel placement
        fill = _render(h, w, cy, cx, size, "disc" if (t % 3 == 2 and size >= 3) else "square")
        yy, xx = np.ogrid[:h, :w]
        near = (yy - cy) ** 2 + (xx - cx) ** 2 <= (size + 6) ** 2
        if names[t] == "low-contrast":  # on soil
            refl[near] = em[1]
        if names[t] == "panel in shadow":
            shadow[near] = 1.0
        fills.append(fill)
        inner[t], outer[t] = fill >= 0.99, fill > 0
    light = illum * (1 - 0.7 * shadow)
    solar = 0.6 + 0.4 * np.exp(-0.5 * ((wl - 0.55) / 0.25) ** 2)  # sun x sensor response
    scale = 60_000.0
    radiance = refl * light[..., None] * solar * scale
    mean_rad = radiance[~outer.any(0)].mean(0)
    for t, fill in enumerate(fills):
        if names[t] == "in-ellipsoid":
            target_rad = mean_rad
        else:
            target_rad = spectra[names[t]] * light[..., None] * solar * scale
        radiance = radiance * (1 - fill[..., None]) + fill[..., None] * target_rad
    radiance = radiance + noise * rng.normal(size=radiance.shape) * np.sqrt(40.0 * radiance + 400.0)
    cube = np.floor(np.sqrt(np.clip(radiance, 0, None))).clip(0, 255.99).astype(np.float32)
    return HyperspectralScene(cube=cube, inner=inner, outer=outer, wavelengths=wl.astype(np.float32),
                              target_names=names, endmembers=em.astype(np.float32),
                              abundances=ab.astype(np.float32))


def scale_cube(cube, mode: str = "sqrt_radiance") -> np.ndarray:
    """Scale to ``[-1, 1]`` for a tanh generator: ``x * 2 / 255.99 - 1`` (sqrt radiance) or ``"minmax"``."""
    c = check_cube(cube).astype(np.float32)
    if mode == "sqrt_radiance":
        if c.max() >= 256:
            raise ValueError(f"sqrt-radiance cubes lie in [0, 256), got max {c.max()}; use mode='minmax'.")
        return c * (2 / 255.99) - 1
    if mode == "minmax":
        lo, hi = c.min(), c.max()
        return (c - lo) / max(hi - lo, 1e-12) * 2 - 1
    raise ValueError(f"`mode` must be 'sqrt_radiance' or 'minmax', got {mode!r}.")


def pixel_windows(cube, window: int = 1, index: np.ndarray | None = None) -> np.ndarray:
    """``[N, B, W, W]`` windows around pixels (row-major, or the flat ``index`` given); edges reflect."""
    c = np.asarray(_c.array(np.asarray(cube), "cube", ndim=3, kind="r"))  # scaled cubes may be negative
    if 0 in c.shape:
        raise ValueError(f"`cube` is empty (shape {c.shape}).")
    w = int(window)
    if w < 1 or w % 2 == 0:
        raise ValueError(f"`window` must be an odd integer >= 1, got {window}.")
    if w > min(c.shape[:2]):
        raise ValueError(f"`window` {w} is larger than the image {c.shape[:2]}.")
    idx = np.arange(c.shape[0] * c.shape[1]) if index is None else np.asarray(index)
    r = w // 2
    pad = np.pad(c, ((r, r), (r, r), (0, 0)), mode="reflect") if r else c
    ys, xs = np.divmod(idx, c.shape[1])
    off = np.arange(w)
    patches = pad[ys[:, None, None] + off[None, :, None], xs[:, None, None] + off[None, None, :]]  # [N, W, W, B]
    return np.ascontiguousarray(np.moveaxis(patches, -1, 1))


def window_split(scene: HyperspectralScene, window: int = 1, *, seed: int = 0, val_fraction: float = 0.2):
    """The thesis's split of window centres (flat pixel indices).

    Windows with no inner- or outer-mask pixel are background: shuffled with
    ``seed`` and split ``1 - val_fraction`` / ``val_fraction`` into train /
    validation; windows touching only outer-mask pixels are dropped; windows
    containing an inner-mask pixel are anomalies. Returns
    ``{"train", "val", "anomaly"}`` index arrays.
    """
    from scipy.ndimage import maximum_filter  # noqa: PLC0415

    w = int(window)
    if w < 1 or w % 2 == 0:
        raise ValueError(f"`window` must be an odd integer >= 1, got {window}.")
    inner = np.asarray(scene.inner, bool).any(0)
    outer = np.asarray(scene.outer, bool).any(0)
    has_inner = maximum_filter(inner, size=w, mode="reflect").ravel()
    has_outer = maximum_filter(outer, size=w, mode="reflect").ravel()
    bg = np.flatnonzero(~has_inner & ~has_outer)
    bg = bg[np.random.default_rng(int(seed)).permutation(len(bg))]
    n_val = int(round(_c.number(val_fraction, "val_fraction", lo=0.0, hi=1.0, hi_open=True) * len(bg)))
    return {"train": bg[n_val:], "val": bg[:n_val], "anomaly": np.flatnonzero(has_inner)}


def load_scene(path: str, *, inner=None, outer=None, cube_key: str = "cube") -> HyperspectralScene:
    """Load a real scene so it runs through the same pipeline as the synthetic one.

    Formats: ``.npy`` (the cube), ``.npz`` / ``.mat`` (arrays ``cube_key``,
    ``inner``, ``outer``), ENVI (``.hdr`` plus its binary file; BSQ/BIL/BIP,
    any ENVI data type, either byte order), GeoTIFF (``.tif``/``.tiff``, needs
    the optional ``tifffile`` package; bands first or last). Masks given as
    arguments (arrays ``[T, H, W]`` or paths to ``.npy``) override those in the
    file; a scene without masks gets zero targets.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npy", ".npz", ".mat", ".hdr", ".tif", ".tiff"):
        raise ValueError(f"unsupported scene format {ext!r}: use .npy, .npz, .mat, ENVI .hdr or GeoTIFF.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scene file {path} does not exist.")
    try:
        cube, stored = _read_scene_file(path, ext, cube_key)
    except Exception as e:  # noqa: BLE001 -- numpy / scipy / tifffile each raise their own types
        if isinstance(e, (FileNotFoundError, ImportError)) or str(e).startswith(str(path)):
            raise
        why = (str(e).splitlines() or [""])[0][:150]
        if "pickle" in why:
            why = "not a plain numeric array file (it holds pickled objects, which jaxkit never loads)"
        expected = {".npy": "a NumPy .npy array [H, W, B]", ".npz": f"a NumPy .npz archive with {cube_key!r}",
                    ".mat": f"a MATLAB .mat file with {cube_key!r}", ".hdr": "an ENVI header beside its binary file",
                    ".tif": "a GeoTIFF", ".tiff": "a GeoTIFF"}[ext]
        raise ValueError(f"{path} cannot be read as {expected}: {why}") from None
    try:
        cube = check_cube(np.asarray(cube, np.float32))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e} (a scene is a cube [H, W, B] of radiances >= 0)") from None
    h, w, _ = cube.shape

    def mask(v, name):
        if isinstance(v, str):
            v = np.load(v)
        if v is None:
            v = stored.get(name)
        return np.zeros((0, h, w), bool) if v is None else np.asarray(v, bool)

    i_m, o_m = mask(inner, "inner"), mask(outer, "outer")
    if o_m.shape[0] == 0 and i_m.shape[0] > 0:
        o_m = i_m
    return HyperspectralScene(cube=cube, inner=i_m, outer=o_m,
                              target_names=tuple(f"T{i + 1}" for i in range(len(i_m))))


def _read_scene_file(path, ext, cube_key):
    stored: dict = {}
    if ext == ".npy":
        cube = np.load(path, allow_pickle=False)
    elif ext in (".npz", ".mat"):
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as f:
                stored = {k: f[k] for k in f.files}
        else:
            from scipy.io import loadmat  # noqa: PLC0415

            stored = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
        if cube_key not in stored:
            raise ValueError(f"{path} has no array {cube_key!r} (found {sorted(stored)}); pass `cube_key`.")
        cube = stored[cube_key]
    elif ext == ".hdr":
        cube = _read_envi(path)
    else:
        try:
            import tifffile  # noqa: PLC0415
        except ImportError as e:
            raise ImportError("reading GeoTIFF needs `pip install tifffile`.") from e
        cube = tifffile.imread(path)
        if cube.ndim == 3 and cube.shape[0] < min(cube.shape[1:]):
            cube = np.moveaxis(cube, 0, -1)  # bands first -> last
    return cube, stored


_ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}


def _read_envi(hdr_path: str) -> np.ndarray:
    text = open(hdr_path).read()
    if not text.lstrip().upper().startswith("ENVI"):
        raise ValueError(f"{hdr_path} is not an ENVI header (first line must be 'ENVI').")
    meta = {}
    for line in text.replace("{", "{\n").splitlines()[1:]:
        if "=" in line:
            k, v = line.split("=", 1)
            meta[k.strip().lower()] = v.strip()
    try:
        samples, lines, bands = (int(meta[k]) for k in ("samples", "lines", "bands"))
        dtype = np.dtype(_ENVI_DTYPES[int(meta["data type"])])
    except KeyError as e:
        raise ValueError(f"ENVI header {hdr_path} lacks or has an unsupported {e}.") from None
    dtype = dtype.newbyteorder(">" if meta.get("byte order", "0") == "1" else "<")
    interleave = meta.get("interleave", "bsq").lower()
    base = os.path.splitext(hdr_path)[0]
    data_path = next((p for p in (base, base + ".img", base + ".dat", base + ".raw", base + ".bin")
                      if os.path.isfile(p)), None)
    if data_path is None:
        raise ValueError(f"no data file next to {hdr_path} (tried no extension, .img, .dat, .raw, .bin).")
    raw = np.fromfile(data_path, dtype=dtype, offset=int(meta.get("header offset", 0)))
    if raw.size < samples * lines * bands:
        raise ValueError(f"{data_path} holds {raw.size} values, the header needs {samples * lines * bands}.")
    raw = raw[: samples * lines * bands]
    if interleave == "bsq":
        return raw.reshape(bands, lines, samples).transpose(1, 2, 0)
    if interleave == "bil":
        return raw.reshape(lines, bands, samples).transpose(0, 2, 1)
    if interleave == "bip":
        return raw.reshape(lines, samples, bands)
    raise ValueError(f"unknown ENVI interleave {interleave!r}.")


# ----------------------------------------------------------------------------- tabular fairness data


@dataclasses.dataclass(frozen=True)
class FairTabular:
    """Tabular binary classification with sensitive attributes.

    ``x``: float32 ``[N, D]`` (numeric columns as they are, categorical ones
    one-hot; standardised by :meth:`split`); ``y``: int32 ``[N]``, 1 = the
    favourable outcome; ``sensitive``: attribute name -> int32 codes ``[N]``
    with the category names in ``categories[name]`` (all categories kept).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    sensitive: dict
    categories: dict
    feature_names: tuple

    def __post_init__(self):
        n = len(self.y)
        if self.x.shape[0] != n or any(len(v) != n for v in self.sensitive.values()):
            raise ValueError(f"FairTabular: x, y and every sensitive attribute need {n} rows.")

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}:{len(v)}" for k, v in self.categories.items())
        return f"FairTabular({self.name!r}, n={len(self)}, features={self.x.shape[1]}, sensitive=({attrs}))"

    def groups(self, *names: str) -> tuple[np.ndarray, int]:
        """Integer group codes for one attribute or several crossed (mixed radix), and the number of groups."""
        names = names or tuple(self.sensitive)
        for nm in names:
            if nm not in self.sensitive:
                raise ValueError(f"unknown sensitive attribute {nm!r}; have {sorted(self.sensitive)}.")
        codes = np.zeros(len(self), np.int32)
        for nm in names:
            codes = codes * len(self.categories[nm]) + self.sensitive[nm]
        return codes, int(np.prod([len(self.categories[nm]) for nm in names]))

    def take(self, idx) -> FairTabular:
        idx = np.asarray(idx)
        return dataclasses.replace(self, x=self.x[idx], y=self.y[idx],
                                   sensitive={k: v[idx] for k, v in self.sensitive.items()})

    def split(self, fractions: Sequence[float] = (0.6, 0.2, 0.2), *, seed: int = 0,
              standardize: bool = True) -> tuple[FairTabular, ...]:
        """Random split (the paper's 6:2:2 train/validation/test by default), standardised with train statistics."""
        fr = np.asarray(fractions, np.float64)
        if fr.ndim != 1 or len(fr) < 2 or (fr <= 0).any() or not np.isclose(fr.sum(), 1.0):
            raise ValueError(f"`fractions` must be >= 2 positive numbers summing to 1, got {tuple(fractions)}.")
        perm = np.random.default_rng(int(seed)).permutation(len(self))
        cuts = np.round(np.cumsum(fr)[:-1] * len(self)).astype(int)
        parts = [self.take(p) for p in np.split(perm, cuts)]
        if standardize:
            mean, std = parts[0].x.mean(0), parts[0].x.std(0)
            std = np.where(std > 0, std, 1.0)
            parts = [dataclasses.replace(p, x=((p.x - mean) / std).astype(np.float32)) for p in parts]
        return tuple(parts)


def make_fair_tabular(n: int = 3000, *, num_features: int = 8, group_sizes: Sequence[int] = (2, 3),
                      group_weights: Sequence[Sequence[float]] | None = None, shift: float = 1.0,
                      label_bias: float = 1.0, noise: float = 0.5, include_sensitive: bool = True,
                      seed: int = 0) -> FairTabular:
    """Synthetic tabular data whose group unfairness is set by two parameters.

    Each sensitive attribute ``k`` has ``group_sizes[k]`` categories drawn with
    ``group_weights[k]`` (default: decreasing shares, so group 0 is the
    majority). Features are ``N(0, I)`` shifted by ``shift * (c / (C - 1))``
    along a fixed random direction for category ``c`` of ``C``; the label is
    ``1[w . x + label_bias * advantage + noise * eps > t]`` with ``advantage``
    the mean over attributes of ``1 - 2 c / (C - 1)`` (category 0 favoured,
    the last disfavoured) and ``t`` the median score, so about half the labels
    are 1. With ``shift = label_bias = 0`` the groups are exchangeable and a
    model's group unfairness is only sampling noise; both grow it. Sensitive
    codes are appended to ``x`` as one-hot columns when ``include_sensitive``.
    """
    if int(n) < 10:
        raise ValueError(f"`n` must be >= 10, got {n}.")
    shift = _c.number(shift, "shift")
    label_bias = _c.number(label_bias, "label_bias")
    noise = _c.number(noise, "noise", lo=0.0)
    if any(int(c) < 1 for c in group_sizes) or not group_sizes:
        raise ValueError(f"`group_sizes` must be one or more positive ints, got {tuple(group_sizes)}.")
    rng = np.random.default_rng(int(seed))
    n, d = int(n), int(num_features)
    names = [f"s{k}" for k in range(len(group_sizes))]
    sens, cats, adv = {}, {}, np.zeros(n)
    x = rng.standard_normal((n, d))
    for k, c in enumerate(group_sizes):
        c = int(c)
        w = np.asarray(group_weights[k], np.float64) if group_weights is not None else np.arange(c, 0, -1.0)
        if w.shape != (c,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"`group_weights[{k}]` must be {c} non-negative weights, got {w.tolist()}.")
        codes = rng.choice(c, size=n, p=w / w.sum()).astype(np.int32)
        level = codes / max(c - 1, 1)
        direction = rng.standard_normal(d)
        x += float(shift) * level[:, None] * direction / np.linalg.norm(direction)
        adv += (1.0 - 2.0 * level) / len(group_sizes)
        sens[names[k]] = codes
        cats[names[k]] = tuple(f"{names[k]}={i}" for i in range(c))
    wvec = rng.standard_normal(d)
    score = x @ wvec / np.linalg.norm(wvec) + float(label_bias) * adv + float(noise) * rng.standard_normal(n)
    y = (score > np.median(score)).astype(np.int32)
    cols, fnames = [x], [f"x{i}" for i in range(d)]
    if include_sensitive:
        for nm in names:
            cols.append(np.eye(len(cats[nm]))[sens[nm]])
            fnames += list(cats[nm])
    return FairTabular(f"synthetic(shift={shift}, label_bias={label_bias})", np.concatenate(cols, 1).astype(np.float32),
                       y, sens, cats, tuple(fnames))


def _encode(name, records, numeric, categorical, sensitive, label, include_sensitive) -> FairTabular:
    """Records (dicts of strings) -> FairTabular: numeric as float, categoricals one-hot (sorted categories)."""
    if not records:
        raise ValueError(f"{name}: no rows left after preprocessing.")
    cols, fnames = [], []
    for c in numeric:
        cols.append(np.asarray([float(r[c]) for r in records])[:, None])
        fnames.append(c)
    for c in categorical:
        values = sorted({r[c] for r in records})
        idx = {v: i for i, v in enumerate(values)}
        cols.append(np.eye(len(values))[[idx[r[c]] for r in records]])
        fnames += [f"{c}={v}" for v in values]
    sens, cats = {}, {}
    for c in sensitive:
        values = sorted({r[c] for r in records})
        idx = {v: i for i, v in enumerate(values)}
        sens[c] = np.asarray([idx[r[c]] for r in records], np.int32)
        cats[c] = tuple(values)
        if include_sensitive:
            cols.append(np.eye(len(values))[sens[c]])
            fnames += [f"{c}={v}" for v in values]
    y = np.asarray([label(r) for r in records], np.int32)
    return FairTabular(name, np.concatenate(cols, 1).astype(np.float32), y, sens, cats, tuple(fnames))


def _need_file(path, what):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: {path!r} not found (jaxkit does not download; put a local copy there).")


_GERMAN_COLUMNS = ("status", "month", "credit_history", "purpose", "credit_amount", "savings", "employment",
                   "investment_as_income_percentage", "personal_status", "other_debtors", "residence_since",
                   "property", "age", "installment_plans", "housing", "number_of_credits", "skill_level",
                   "people_liable_for", "telephone", "foreign_worker", "credit")


def load_german(path: str, *, include_sensitive: bool = True) -> FairTabular:
    """UCI Statlog German credit (``german.data``, space separated, 1000 rows), Friedler et al.'s preprocessing.

    Label: good credit (``credit == 1``) = 1. Sensitive: ``sex`` from
    ``personal_status`` (A91/A93/A94 male, A92/A95 female) and ``age``
    (``adult`` if >= 25 else ``youth``), both kept as codes and, when
    ``include_sensitive``, as one-hot features; the age in years is dropped
    as in Friedler et al.
    """
    _need_file(path, "load_german")
    sex = {"A91": "male", "A93": "male", "A94": "male", "A92": "female", "A95": "female"}
    records = []
    with open(path, encoding="ISO-8859-1") as fh:
        for ln, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != len(_GERMAN_COLUMNS):
                raise ValueError(f"{path}:{ln}: expected {len(_GERMAN_COLUMNS)} fields, got {len(parts)}.")
            r = dict(zip(_GERMAN_COLUMNS, parts))
            r["sex"] = sex.get(r.pop("personal_status"), "unknown")
            r["age"] = "adult" if float(r["age"]) >= 25 else "youth"
            records.append(r)
    numeric = ["month", "credit_amount", "investment_as_income_percentage", "residence_since", "number_of_credits",
               "people_liable_for"]
    categorical = ["status", "credit_history", "purpose", "savings", "employment", "other_debtors", "property",
                   "installment_plans", "housing", "skill_level", "telephone", "foreign_worker"]
    return _encode("german", records, numeric, categorical, ["sex", "age"], lambda r: int(r["credit"] == "1"),
                   include_sensitive)


def load_compas(path: str, *, include_sensitive: bool = True) -> FairTabular:
    """ProPublica ``compas-scores-two-years.csv``, Friedler et al.'s preprocessing.

    Rows kept as in ProPublica's analysis: ``-30 <= days_b_screening_arrest <=
    30``, ``is_recid != -1``, ``c_charge_degree != "O"``, ``score_text != "N/A"``
    (rows with an empty screening delay are dropped). Features: age,
    juvenile counts, priors, one-hot ``age_cat``, ``c_charge_degree``,
    ``c_charge_desc``; COMPAS's own scores are not features. Label:
    ``two_year_recid`` (1 = reoffended). Sensitive: ``race`` (6 categories)
    and ``sex``.
    """
    import csv  # noqa: PLC0415

    _need_file(path, "load_compas")
    records = []
    with open(path, newline="", encoding="ISO-8859-1") as fh:
        reader = csv.DictReader(fh)
        need = {"sex", "age", "age_cat", "race", "juv_fel_count", "juv_misd_count", "juv_other_count",
                "priors_count", "c_charge_degree", "c_charge_desc", "score_text", "two_year_recid",
                "days_b_screening_arrest", "is_recid"}
        missing = need - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}.")
        for r in reader:
            try:
                days = float(r["days_b_screening_arrest"])
            except ValueError:
                continue
            if not -30 <= days <= 30 or r["is_recid"] == "-1" or r["c_charge_degree"] == "O" \
                    or r["score_text"] in ("N/A", ""):
                continue
            records.append(r)
    numeric = ["age", "juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count"]
    categorical = ["age_cat", "c_charge_degree", "c_charge_desc"]
    return _encode("compas", records, numeric, categorical, ["race", "sex"],
                   lambda r: int(r["two_year_recid"] == "1"), include_sensitive)


_ADULT_COLUMNS = ("age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
                  "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
                  "income-per-year")


def load_adult(path: str, test_path: str | None = None, *, include_sensitive: bool = True) -> FairTabular:
    """UCI Adult (``adult.data``, optionally with ``adult.test`` appended), Friedler et al.'s preprocessing.

    Rows with a missing value (``?``) are dropped; ``fnlwgt`` is not a
    feature; label ``income > 50K`` = 1 (``adult.test``'s trailing dots and
    header line are handled). Sensitive: ``race`` (all 5 categories) and ``sex``.
    """
    import csv  # noqa: PLC0415

    records = []
    for p in [path] + ([test_path] if test_path else []):
        _need_file(p, "load_adult")
        with open(p, newline="", encoding="ISO-8859-1") as fh:
            for ln, row in enumerate(csv.reader(fh, skipinitialspace=True), 1):
                if not row or row[0].startswith("|"):
                    continue
                if len(row) != len(_ADULT_COLUMNS):
                    raise ValueError(f"{p}:{ln}: expected {len(_ADULT_COLUMNS)} fields, got {len(row)}.")
                row = [v.strip() for v in row]
                if "?" in row:
                    continue
                records.append(dict(zip(_ADULT_COLUMNS, row)))
    numeric = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
    categorical = ["workclass", "education", "marital-status", "occupation", "relationship", "native-country"]
    return _encode("adult", records, numeric, categorical, ["race", "sex"],
                   lambda r: int(r["income-per-year"].rstrip(".") == ">50K"), include_sensitive)


# ------------------------------------------------------------------------------------------ shift and imbalance
@dataclasses.dataclass(frozen=True)
class RotatedDomains:
    """The same images rotated by several angles: ``x (D, N, H, W, 1)``, labels ``y (N,)`` shared by all domains.

    The rotated-MNIST protocol of domain generalisation (Ghifary et al. 2015):
    domains ``M0, M15, ..., M75``, 100 images per class, leave one domain out.
    """

    x: np.ndarray
    y: np.ndarray
    angles: tuple
    num_classes: int

    @property
    def names(self) -> tuple:
        return tuple(f"M{int(a)}" for a in self.angles)

    def leave_one_out(self, test: int) -> tuple[list[int], int]:
        """``(training domain indices, test index)`` with domain ``test`` held out."""
        d = len(self.angles)
        if not 0 <= int(test) < d:
            raise ValueError(f"`test` must be a domain index in [0, {d}), got {test}.")
        return [i for i in range(d) if i != int(test)], int(test)


def make_rotated_digits(angles=(0, 15, 30, 45, 60, 75), per_class: int = 100, *, seed: int = 0, x=None,
                        y=None) -> RotatedDomains:
    """Rotated-digit domains: ``per_class`` images of every class (from ``x, y``, default scikit-learn's 8x8
    digits in [0, 1]), each rotated by every angle (``scipy.ndimage.rotate``, bilinear, same size, zero fill).

    Pass MNIST arrays (e.g. from :func:`load_tfds`) as ``x, y`` for the paper's version.
    """
    from scipy import ndimage  # noqa: PLC0415

    if x is None:
        d = load_digits(seed=0, test_size=0.2)
        x = np.concatenate([d.train.x, d.test.x])
        y = np.concatenate([d.train.y, d.test.y])
    x = np.asarray(_c.array(np.asarray(x), "x", ndim=(3, 4), kind="r", nonempty=True), np.float32)
    _c.finite(x, "x")
    y = _c.labels(np.asarray(y), "y")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"`y` must hold one label per image of `x` ({len(x)}), got shape {np.shape(y)}.")
    y = np.asarray(y).astype(np.int32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"`x` must be grey images (N, H, W[, 1]), got shape {x.shape}.")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    chosen = []
    for c in classes:
        pool = np.flatnonzero(y == c)
        if len(pool) < per_class:
            raise ValueError(f"class {c} has {len(pool)} images, fewer than `per_class` = {per_class}.")
        chosen.append(rng.choice(pool, per_class, replace=False))
    idx = np.concatenate(chosen)
    base = x[idx, ..., 0]
    rot = np.stack([np.stack([ndimage.rotate(im, float(a), reshape=False, order=1, mode="constant")
                              for im in base]) for a in angles])[..., None]
    return RotatedDomains(np.clip(rot, 0, 1).astype(np.float32), y[idx], tuple(angles), len(classes))


def domain_batch_sampler(labels, num_classes: int, per_class: int, num_domains: int, paired: bool = False):
    """A jittable ``sample(key) -> indices (num_domains, num_classes * per_class)``: ``per_class`` images of every
    class per domain, without replacement within a class.

    ``paired=True`` takes the same images in every domain (the same digit at
    every angle); ``paired=False`` draws each domain independently. ``labels``
    (concrete) must have equally many images per class, as
    :func:`make_rotated_digits` gives.
    """
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415

    y = np.asarray(_c.labels(_c.array(np.asarray(labels), "labels", ndim=1, nonempty=True), "labels", num_classes))
    counts = np.bincount(y, minlength=num_classes)
    if counts.min() != counts.max():
        raise ValueError(f"`labels` must have equally many images per class, got counts {counts.tolist()}.")
    if not 1 <= per_class <= counts[0]:
        raise ValueError(f"`per_class` must be in [1, {counts[0]}] (images per class), got {per_class}.")
    table = jnp.asarray(np.stack([np.flatnonzero(y == c) for c in range(num_classes)]))  # (C, n_per_class)

    def one(k):
        ks = jax.random.split(k, num_classes)
        pick = jax.vmap(lambda kk, row: jax.random.choice(kk, row, (per_class,), replace=False))(ks, table)
        return pick.reshape(-1)

    def sample(key):
        if paired:
            return jnp.broadcast_to(one(key), (num_domains, num_classes * per_class))
        return jax.vmap(one)(jax.random.split(key, num_domains))

    return sample


def domain_batch_indices(key, labels, num_classes: int, per_class: int, num_domains: int, paired: bool = False):
    """One draw of :func:`domain_batch_sampler` (build the sampler once to use it inside ``jit``)."""
    return domain_batch_sampler(labels, num_classes, per_class, num_domains, paired)(key)


def make_imbalanced(split: Split, imbalance: float = 100.0, *, seed: int = 0) -> Split:
    """A long-tailed subset: class ``c`` keeps ``n_max (c + 1)^(-a)`` samples, ``a = ln(imbalance) / ln(C)``.

    A power law from ``n_max`` (the smallest class size available) for class 0
    down to ``n_max / imbalance`` for the last class (at least 1). Samples are
    chosen with ``seed``.
    """
    if not float(imbalance) >= 1:
        raise ValueError(f"`imbalance` must be >= 1 (largest / smallest class), got {imbalance}.")
    y = np.asarray(_c.labels(_c.array(np.asarray(split.y), "y", ndim=1, nonempty=True), "y"))
    if len(split.x) != len(y):
        raise ValueError(f"`x` and `y` must have the same number of rows, got {len(split.x)} and {len(y)}.")
    classes = np.unique(y)
    c = len(classes)
    n_max = int(min(np.sum(y == k) for k in classes))
    a = np.log(float(imbalance)) / np.log(c) if c > 1 else 0.0
    sizes = np.maximum(1, np.round(n_max * (np.arange(c) + 1.0) ** (-a))).astype(int)
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == k), n, replace=False) for k, n in zip(classes, sizes)])
    idx = np.sort(idx)
    return Split(split.x[idx], split.y[idx])


def balanced_sampler(labels, num_classes: int | None = None):
    """A jittable ``sample(key, batch_size) -> indices``: a class uniformly at random, then a sample of it.

    Every class (each must have a sample) is drawn with probability ``1/C``, whatever its size.
    """
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415

    y = np.asarray(_c.labels(_c.array(np.asarray(labels), "labels", ndim=1, nonempty=True), "labels",
                             num_classes)).astype(np.int64)
    c = int(num_classes if num_classes is not None else y.max() + 1)
    counts = np.bincount(y, minlength=c)
    if np.any(counts == 0):
        raise ValueError(f"every class needs a sample for balanced sampling; empty: {np.flatnonzero(counts == 0)}.")
    order = jnp.asarray(np.argsort(y, kind="stable"))
    offsets = jnp.asarray(np.concatenate([[0], np.cumsum(counts)[:-1]]))
    counts_j = jnp.asarray(counts)

    def sample(key, batch_size: int):
        k1, k2 = jax.random.split(key)
        cls = jax.random.randint(k1, (batch_size,), 0, c)
        u = jax.random.uniform(k2, (batch_size,))
        within = jnp.minimum((u * counts_j[cls]).astype(jnp.int32), counts_j[cls] - 1)
        return order[offsets[cls] + within]

    return sample


def injection_sampler(pool_labels, per_batch: int):
    """A jittable ``sample(key) -> indices`` of ``per_batch`` items drawn uniformly (with replacement) from a pool
    of synthesised rare-class samples, to append to every regular batch ("Deep Learning in the Wild": 12 of 300
    synthetic crops per page). See :func:`expected_wait` for how soon each rare class shows up."""
    import jax  # noqa: PLC0415

    n = len(_c.labels(_c.array(np.asarray(pool_labels), "pool_labels", ndim=1, nonempty=True), "pool_labels"))
    if n == 0 or int(per_batch) < 1:
        raise ValueError(f"need a non-empty pool and `per_batch` >= 1, got {n} items and {per_batch}.")
    return lambda key: jax.random.randint(key, (int(per_batch),), 0, n)


def expected_wait(num_rare: int, per_batch: int) -> float:
    """Expected number of batches until a given rare class appears, when every batch gets ``per_batch`` injected
    samples drawn uniformly from ``num_rare`` equally large rare-class pools: ``1 / (1 - (1 - 1/R)^k)``."""
    r = _c.positive_int(num_rare, "num_rare")
    k = _c.positive_int(per_batch, "per_batch")
    return 1.0 / (1.0 - (1.0 - 1.0 / r) ** k)


def synthesize(x, n: int, *, seed: int = 0, max_angle: float = 15.0, max_shift: float = 1.0,
               noise: float = 0.05) -> np.ndarray:
    """``n`` new images from the few of ``x (k, H, W[, 1])``: random rotation (+-``max_angle``), sub-pixel shift
    (+-``max_shift``), additive Gaussian noise, clipped to [0, 1] -- rare-class synthesis by augmentation."""
    from scipy import ndimage  # noqa: PLC0415

    x = _c.array(np.asarray(x), "x", ndim=(3, 4), kind="r")
    x = np.asarray(x, np.float32)
    if len(x) == 0:
        raise ValueError("`x` must hold at least one image to synthesise from.")
    _c.finite(x, "x")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n)):
        im = x[rng.integers(len(x))]
        im2 = im[..., 0] if im.ndim == 3 else im
        im2 = ndimage.rotate(im2, rng.uniform(-max_angle, max_angle), reshape=False, order=1, mode="constant")
        im2 = ndimage.shift(im2, rng.uniform(-max_shift, max_shift, 2), order=1, mode="constant")
        im2 = np.clip(im2 + noise * rng.standard_normal(im2.shape), 0, 1)
        out.append(im2[..., None] if im.ndim == 3 else im2)
    return np.stack(out).astype(np.float32)
