"""Small reference Flax networks.

* :class:`MLP` -- ``Dense -> ReLU -> ... -> Dense`` (the networks of LipBaB, fairness and calibration
  experiments).
* :class:`VGG` -- VGG-style CNN from a config list (ints are 3x3 conv widths, ``"M"`` a 2x2 max-pool),
  optional BatchNorm, global average pooling and a dense head. ``VGG(cfg=DIGITS_CFG)`` is the digits CNN.
* :class:`SmallCNN` -- conv layers, a :class:`Tap` named ``"features"`` for Grad-CAM, a dense head.
* :class:`ResNet` / :func:`resnet56` -- CIFAR-style ResNets with option-A (parameter-free) or option-B
  (projection) shortcuts.
* :class:`Tap` -- an identity module that names a feature map for explanations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["DIGITS_CFG", "MLP", "VGG", "BasicBlock", "ResNet", "SmallCNN", "Tap", "resnet56"]


PyTree = Any


class Tap(nn.Module):
    """Identity module that names a feature map for explanations (no parameters)."""

    @nn.compact
    def __call__(self, x):
        return x


#: The digits CNN: 8x8 -> 4x4 -> 2x2, 16/32 channels (~15k parameters).
DIGITS_CFG: tuple = (16, 16, "M", 32, 32, "M")


class MLP(nn.Module):
    """Fully connected ReLU network: ``features[-1]`` outputs, no activation on the last layer.

    Inputs of any shape ``[N, ...]`` are flattened. Layers are named
    ``Dense_0 ... Dense_{L-1}``.
    """

    features: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = nn.relu

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        del train  # uniform signature with the models that use it
        if not self.features:
            raise ValueError("MLP: `features` is empty; expected at least one layer width.")
        x = x.reshape((x.shape[0], -1))
        for i, width in enumerate(self.features):
            x = nn.Dense(int(width), name=f"Dense_{i}")(x)
            if i < len(self.features) - 1:
                x = self.activation(x)
        return x


class VGG(nn.Module):
    """VGG-style CNN on NHWC inputs.

    ``cfg``: ints are 3x3 ``SAME`` conv widths (each followed by BatchNorm if
    ``batch_norm`` -- then the conv has no bias -- and ReLU), ``"M"`` a 2x2
    max-pool. Then global average pooling, ``hidden`` dense ReLU layers and a
    dense classifier. Layer names are Flax's defaults (``Conv_0``,
    ``BatchNorm_0``, ``Dense_0`` ...).
    """

    cfg: Sequence[int | str] = DIGITS_CFG
    num_classes: int = 10
    batch_norm: bool = True
    hidden: Sequence[int] = ()
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"VGG expects `x` as NHWC images (rank 4), got shape {x.shape}.")
        for v in self.cfg:
            if v == "M":
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
                continue
            x = nn.Conv(int(v), (3, 3), padding="SAME", use_bias=not self.batch_norm)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)(x)
            x = nn.relu(x)
        x = x.mean(axis=(1, 2))
        for width in self.hidden:
            x = nn.relu(nn.Dense(int(width))(x))
        return nn.Dense(self.num_classes)(x)


class SmallCNN(nn.Module):
    """A small CNN for explanation and robustness work: ``widths`` 3x3 SAME conv + ReLU layers with a 2x2
    max-pool between them (not after the last), the last ReLU output named ``"features"`` (an
    :class:`jaxkit.explain.Tap`, no parameters) for Grad-CAM, then ``head="flatten"`` (as VGG) or ``"gap"``
    (global average pooling, as ResNet: Grad-CAM equals CAM), ``hidden`` dense ReLU layers and a dense
    classifier. With ``hidden=()`` the head is one dense layer (``Dense_0``), the setting in which Grad-CAM
    manipulation by ``jaxkit.explain.manipulate`` is exact. Layer names: ``Conv_i``, ``Dense_j``."""

    widths: Sequence[int] = (16, 32)
    num_classes: int = 10
    hidden: Sequence[int] = ()
    head: str = "flatten"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"SmallCNN expects `x` as NHWC images (rank 4), got shape {x.shape}.")
        for i, w in enumerate(self.widths):
            x = nn.relu(nn.Conv(int(w), (3, 3), padding="SAME")(x))
            if i < len(self.widths) - 1:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = Tap(name="features")(x)
        if self.head not in ("flatten", "gap"):
            raise ValueError(f"SmallCNN: `head` must be 'flatten' or 'gap', got {self.head!r}.")
        x = x.reshape(x.shape[0], -1) if self.head == "flatten" else jnp.mean(x, axis=(1, 2))
        for width in self.hidden:
            x = nn.relu(nn.Dense(int(width))(x))
        return nn.Dense(self.num_classes)(x)


class BasicBlock(nn.Module):
    """``conv3x3(stride) - BN - ReLU - conv3x3 - BN``, plus shortcut, then ReLU (He et al. 2016).

    ``shortcut="A"``: identity, or -- when the shape changes -- stride-2
    subsampling and zero channels padded equally on both sides (CIFAR ResNets;
    no parameters). ``"B"``: a 1x1 conv + BN projection when the shape changes.
    """

    features: int
    strides: int = 1
    shortcut: str = "A"
    bn_momentum: float = 0.9
    inner_features: int | None = None  # width of the first conv (pruned models); default ``features``

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        bn = partial(nn.BatchNorm, use_running_average=not train, momentum=self.bn_momentum)
        s = (self.strides, self.strides)
        inner = self.features if self.inner_features is None else int(self.inner_features)
        y = nn.Conv(inner, (3, 3), s, padding=((1, 1), (1, 1)), use_bias=False)(x)
        y = nn.relu(bn()(y))
        y = nn.Conv(self.features, (3, 3), padding=((1, 1), (1, 1)), use_bias=False)(y)
        y = bn()(y)
        if self.strides != 1 or x.shape[-1] != self.features:
            if self.shortcut == "A":
                x = x[:, :: self.strides, :: self.strides, :]
                extra = self.features - x.shape[-1]
                x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
            elif self.shortcut == "B":
                x = bn()(nn.Conv(self.features, (1, 1), s, use_bias=False)(x))
            else:
                raise ValueError(f"BasicBlock: `shortcut` must be 'A' or 'B', got {self.shortcut!r}.")
        return nn.relu(y + x)


class ResNet(nn.Module):
    """CIFAR-style ResNet on NHWC inputs (He et al. 2016, Sec. 4.2).

    ``conv3x3(widths[0]) - BN - ReLU``, then ``len(stage_sizes)`` stages of
    :class:`BasicBlock` (the first block of every stage after the first has
    stride 2), global average pooling and a dense classifier. ResNet-``6n+2``
    is ``stage_sizes=(n, n, n)``: :func:`resnet56` is ``n = 9``. ``inner_widths``
    (one per block, optional) sets each block's first-conv width, as left by
    pruning the blocks' inner channels.
    """

    stage_sizes: Sequence[int] = (9, 9, 9)
    widths: Sequence[int] = (16, 32, 64)
    num_classes: int = 10
    shortcut: str = "A"
    bn_momentum: float = 0.9
    inner_widths: Sequence[int] | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"ResNet expects `x` as NHWC images (rank 4), got shape {x.shape}.")
        if len(self.stage_sizes) != len(self.widths):
            raise ValueError(
                f"ResNet: `stage_sizes` {tuple(self.stage_sizes)} and `widths` {tuple(self.widths)} "
                "must have the same length."
            )
        x = nn.Conv(int(self.widths[0]), (3, 3), padding=((1, 1), (1, 1)), use_bias=False)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)(x))
        inner = list(self.inner_widths) if self.inner_widths is not None else None
        if inner is not None and len(inner) != sum(self.stage_sizes):
            raise ValueError(
                f"ResNet: `inner_widths` needs one width per block ({sum(self.stage_sizes)}), got {len(inner)}."
            )
        k = 0
        for i, (n, w) in enumerate(zip(self.stage_sizes, self.widths)):
            for j in range(int(n)):
                x = BasicBlock(
                    int(w),
                    2 if (i > 0 and j == 0) else 1,
                    self.shortcut,
                    self.bn_momentum,
                    inner[k] if inner is not None else None,
                )(x, train)
                k += 1
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


def resnet56(num_classes: int = 10, widths: Sequence[int] = (16, 32, 64), shortcut: str = "A") -> ResNet:
    """ResNet-56 for 32x32 inputs: 853,018 parameters and 125.49M MACs with the default widths.

    Three stages of nine basic blocks (``6n + 2`` layers, ``n = 9``) of widths ``widths``.

    Args:
      num_classes: outputs.
      widths: the three stages' widths (pruned models pass narrower ones).
      shortcut: ``"A"`` (identity with zero padding, the paper's CIFAR option) or ``"B"`` (1x1 projections).

    Returns:
      A :class:`ResNet` module.

    Raises:
      ValueError: an unknown ``shortcut``, widths that are not three positive integers, ``num_classes < 1``.

    References:
      He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Sec. 4.2 (the CIFAR-10 ResNets).

    Examples:
      >>> net = jaxkit.models.resnet56()
      >>> shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
      >>> sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes["params"]))
      853018
    """
    if shortcut not in ("A", "B"):
        raise ValueError(f"`shortcut` must be 'A' or 'B', got {shortcut!r}.")
    if len(tuple(widths)) != 3 or not all(isinstance(w, (int, np.integer)) and w >= 1 for w in widths):
        raise ValueError(f"`widths` must be three positive integers (one per stage), got {tuple(widths)}.")
    if int(num_classes) < 1:
        raise ValueError(f"`num_classes` must be >= 1, got {num_classes}.")
    return ResNet((9, 9, 9), tuple(int(w) for w in widths), int(num_classes), shortcut)
