"""Distribution shift and class imbalance: rotated-digit domains, domain-balanced batch samplers,
long-tailed subsampling, balanced and injection samplers, and keyed synthetic augmentation.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from jaxkit import _checks as _c
from jaxkit.data.core import Split
from jaxkit.data.sklearn import load_digits

__all__ = [
    "RotatedDomains",
    "balanced_sampler",
    "domain_batch_indices",
    "domain_batch_sampler",
    "expected_wait",
    "injection_sampler",
    "make_imbalanced",
    "make_rotated_digits",
    "synthesize",
]


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


def make_rotated_digits(
    angles=(0, 15, 30, 45, 60, 75), per_class: int = 100, *, seed: int = 0, x=None, y=None
) -> RotatedDomains:
    """Rotated-digit domains: ``per_class`` images of every class, each rotated by every angle.

    From ``x, y`` (default scikit-learn's 8x8 digits in [0, 1]); each image rotated by every angle
    (``scipy.ndimage.rotate``, bilinear, same size, zero fill). Pass MNIST arrays (e.g. from :func:`load_tfds`) as
    ``x, y`` for the paper's version.

    Args:
      angles: the domains' angles (degrees).
      per_class: images per class.
      seed: the seed of the chosen images.
      x: images (default: scikit-learn's 8x8 digits in [0, 1]).
      y: their labels.

    Returns:
      ``RotatedDomains`` (``x [D, N, H, W, C]``, ``y [N]``, domain ``names``).

    Raises:
      ValueError: a class with fewer than ``per_class`` images, ``x`` / ``y`` of different lengths.

    References:
      the TU Delft dissertation on sensitivities of visual learning (its distribution-shift chapter) (rotated-MNIST
      domains).

    Examples:
      >>> domains = jaxkit.data.make_rotated_digits((0, 30), per_class=2)
      >>> domains.x.shape, domains.names
      ((2, 20, 8, 8, 1), ('M0', 'M30'))
    """
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
    rot = np.stack(
        [
            np.stack([ndimage.rotate(im, float(a), reshape=False, order=1, mode="constant") for im in base])
            for a in angles
        ]
    )[..., None]
    return RotatedDomains(np.clip(rot, 0, 1).astype(np.float32), y[idx], tuple(angles), len(classes))


def domain_batch_sampler(labels, num_classes: int, per_class: int, num_domains: int, paired: bool = False):
    """A jittable ``sample(key) -> indices (num_domains, num_classes * per_class)``.

    ``per_class`` images of every class per domain, without replacement within a class. ``paired=True`` takes
    the same images in every domain (the same digit at every angle); ``paired=False`` draws each domain
    independently. ``labels`` (concrete) must have equally many images per class, as :func:`make_rotated_digits`
    gives.

    Args:
      labels: concrete labels with equally many images per class.
      num_classes: classes.
      per_class: images per class per domain.
      num_domains: domains.
      paired: the same images in every domain.

    Returns:
      ``sample(key) -> indices``.

    Raises:
      ValueError: classes of different sizes, ``per_class`` larger than a class.

    References:
      the TU Delft dissertation on sensitivities of visual learning (its distribution-shift chapter).

    Examples:
      >>> domains = jaxkit.data.make_rotated_digits((0, 30), per_class=2)
      >>> sample = jaxkit.data.domain_batch_sampler(domains.y, 10, 1, 2)
      >>> sample(jax.random.key(0)).shape
      (2, 10)
    """
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
    """One draw of :func:`domain_batch_sampler` (build the sampler once to use it inside ``jit``).

    Args:
      key: PRNG key.
      labels: as :func:`domain_batch_sampler`.
      num_classes: classes.
      per_class: images per class per domain.
      num_domains: domains.
      paired: the same images in every domain.

    Returns:
      ``[num_domains, num_classes * per_class]`` indices.

    Raises:
      ValueError: as :func:`domain_batch_sampler`.

    References:
      the TU Delft dissertation on sensitivities of visual learning (its distribution-shift chapter).

    Examples:
      >>> domains = jaxkit.data.make_rotated_digits((0, 30), per_class=2)
      >>> jaxkit.data.domain_batch_indices(jax.random.key(0), domains.y, 10, 1, 2, paired=True).shape
      (2, 10)
    """
    return domain_batch_sampler(labels, num_classes, per_class, num_domains, paired)(key)


def make_imbalanced(split: Split, imbalance: float = 100.0, *, seed: int = 0) -> Split:
    """A long-tailed subset: class ``c`` keeps ``n_max (c + 1)^(-a)`` samples, ``a = ln(imbalance) / ln(C)``.

    A power law from ``n_max`` (the smallest class size available) for class 0
    down to ``n_max / imbalance`` for the last class (at least 1). Samples are
    chosen with ``seed``.

    Args:
      split: a ``Split`` (``x``, ``y``).
      imbalance: the ratio of the largest to the smallest class (>= 1).
      seed: the seed of the kept samples.

    Returns:
      The long-tailed ``Split``.

    Raises:
      ValueError: ``imbalance < 1``.

    References:
      Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019, Sec. 5.1 (long-tailed
      CIFAR by an exponential profile).

    Examples:
      >>> tail = jaxkit.data.make_imbalanced(jaxkit.data.load_digits().train, 10.0)
      >>> np.bincount(tail.y).tolist()
      [139, 70, 46, 35, 28, 23, 20, 17, 15, 14]
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

    Args:
      labels: ``[N]`` labels.
      num_classes: classes (default: from the labels).

    Returns:
      ``sample(key, batch_size) -> indices``.

    Raises:
      ValueError: a class with no sample.

    References:
      Buda, Maki & Mazurowski, "A systematic study of the class imbalance problem in convolutional neural
      networks", Neural Networks 106, 2018 (oversampling).

    Examples:
      >>> sample = jaxkit.data.balanced_sampler(jnp.repeat(jnp.arange(3), 4))
      >>> sample(jax.random.key(0), 6).shape
      (6,)
    """
    y = np.asarray(
        _c.labels(_c.array(np.asarray(labels), "labels", ndim=1, nonempty=True), "labels", num_classes)
    ).astype(np.int64)
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
    """A jittable ``sample(key) -> indices``: ``per_batch`` items drawn uniformly from a rare-class pool.

    With replacement, from a pool of synthesised rare-class samples, to append to every regular batch ("Deep
    Learning in the Wild": 12 of 300 synthetic crops per page). See :func:`expected_wait` for how soon each rare
    class shows up.

    Args:
      pool_labels: the pool's labels.
      per_batch: items injected into every batch.

    Returns:
      ``sample(key) -> indices``.

    Raises:
      ValueError: an empty pool, ``per_batch < 1``.

    References:
      the "Deep Learning in the Wild" quality-control case study (rare-class injection).

    Examples:
      >>> jaxkit.data.injection_sampler(jnp.array([0, 0, 1, 1]), 3)(jax.random.key(0)).shape
      (3,)
    """
    n = len(_c.labels(_c.array(np.asarray(pool_labels), "pool_labels", ndim=1, nonempty=True), "pool_labels"))
    if n == 0 or int(per_batch) < 1:
        raise ValueError(f"need a non-empty pool and `per_batch` >= 1, got {n} items and {per_batch}.")
    return lambda key: jax.random.randint(key, (int(per_batch),), 0, n)


def expected_wait(num_rare: int, per_batch: int) -> float:
    """The expected number of batches until a given rare class appears: ``1 / (1 - (1 - 1/R)^k)``.

    Args:
      num_rare: ``R``, equally large rare-class pools.
      per_batch: ``k``, samples injected per batch.

    Returns:
      A Python float.

    Raises:
      ValueError: non-positive sizes.

    References:
      the "Deep Learning in the Wild" quality-control case study (rare-class injection).

    Examples:
      >>> round(jaxkit.data.expected_wait(10, 12), 4)
      1.3936
    """
    r = _c.positive_int(num_rare, "num_rare")
    k = _c.positive_int(per_batch, "per_batch")
    return 1.0 / (1.0 - (1.0 - 1.0 / r) ** k)


def synthesize(
    x, n: int, *, seed: int = 0, max_angle: float = 15.0, max_shift: float = 1.0, noise: float = 0.05
) -> np.ndarray:
    """``n`` new images from the few of ``x``: random rotation, sub-pixel shift and noise, clipped to [0, 1].

    Args:
      x: ``[k, H, W(, 1)]`` images in [0, 1].
      n: images to make.
      seed: the seed.
      max_angle: rotation range (degrees).
      max_shift: shift range (pixels).
      noise: Gaussian noise's scale.

    Returns:
      ``[n, H, W(, 1)]`` images.

    Raises:
      ValueError: empty ``x``, ``n < 1``, negative ranges.

    References:
      the "Deep Learning in the Wild" quality-control case study (rare-class injection) (rare-class synthesis by
      augmentation).

    Examples:
      >>> fake = jaxkit.data.synthesize(jaxkit.data.load_digits().train.x[:3], 5)
      >>> fake.shape, bool(fake.min() >= 0 and fake.max() <= 1)
      ((5, 8, 8, 1), True)
    """
    x = _c.array(np.asarray(x), "x", ndim=(3, 4), kind="r")
    x = np.asarray(x, np.float32)
    if len(x) == 0:
        raise ValueError("`x` must hold at least one image to synthesise from.")
    _c.finite(x, "x")
    if int(n) < 1:
        raise ValueError(f"`n` must be >= 1, got {n}.")
    for name, v in (("max_angle", max_angle), ("max_shift", max_shift), ("noise", noise)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"`{name}` must be a finite number >= 0, got {v}.")
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
