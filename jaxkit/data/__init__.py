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

Modules: :mod:`~jaxkit.data.core` (containers, batching), :mod:`~jaxkit.data.sklearn`,
:mod:`~jaxkit.data.tfds`, :mod:`~jaxkit.data.cups`, :mod:`~jaxkit.data.hyperspectral`,
:mod:`~jaxkit.data.tabular`, :mod:`~jaxkit.data.shift`, :mod:`~jaxkit.data.augment` (the CIFAR crop + flip,
keyed and jittable); every public name is importable from
``jaxkit.data``.

Every loader returns a :class:`Dataset` of float32 inputs and int32 labels, split
into train and test with a stratified split fixed by ``seed``.
"""

from __future__ import annotations

from jaxkit.data.augment import AUGMENT_KEY_TAG, random_crop_flip
from jaxkit.data.core import Dataset, Split, batches, num_batches, prefetch
from jaxkit.data.cups import CUP_PARAMS, CupMeshes, cup_reference, make_cups
from jaxkit.data.hyperspectral import (
    TARGET_NAMES,
    HyperspectralScene,
    check_cube,
    load_scene,
    make_hyperspectral_scene,
    pixel_windows,
    scale_cube,
    window_split,
)
from jaxkit.data.shift import (
    RotatedDomains,
    balanced_sampler,
    domain_batch_indices,
    domain_batch_sampler,
    expected_wait,
    injection_sampler,
    make_imbalanced,
    make_rotated_digits,
    synthesize,
)
from jaxkit.data.sklearn import load_breast_cancer, load_digits, load_iris, make_classification, select_classes
from jaxkit.data.tabular import (
    SHIPPED_DATA_COMMAND,
    FairTabular,
    load_adult,
    load_compas,
    load_german,
    make_fair_tabular,
    shipped_data_file,
)
from jaxkit.data.tfds import load_tfds

__all__ = [
    "AUGMENT_KEY_TAG",
    "CUP_PARAMS",
    "SHIPPED_DATA_COMMAND",
    "TARGET_NAMES",
    "CupMeshes",
    "Dataset",
    "FairTabular",
    "HyperspectralScene",
    "RotatedDomains",
    "Split",
    "balanced_sampler",
    "batches",
    "check_cube",
    "cup_reference",
    "domain_batch_indices",
    "domain_batch_sampler",
    "expected_wait",
    "injection_sampler",
    "load_adult",
    "load_breast_cancer",
    "load_compas",
    "load_digits",
    "load_german",
    "load_iris",
    "load_scene",
    "load_tfds",
    "make_classification",
    "make_cups",
    "make_fair_tabular",
    "make_hyperspectral_scene",
    "make_imbalanced",
    "make_rotated_digits",
    "num_batches",
    "pixel_windows",
    "prefetch",
    "random_crop_flip",
    "scale_cube",
    "select_classes",
    "shipped_data_file",
    "synthesize",
    "window_split",
]
