"""Small reference Flax models and a resumable classification training loop.

Modules: :mod:`~jaxkit.models.nets` (:class:`MLP`, :class:`VGG`, :class:`SmallCNN`, :class:`ResNet` /
:func:`resnet56`, :class:`Tap`), :mod:`~jaxkit.models.training`
(:func:`init_variables`, :class:`TrainState`, :func:`train_step`, :func:`eval_step`, :func:`evaluate`,
:func:`train`: an optax loop with a tqdm progress bar and orbax checkpoint/resume: a killed run resumes after
its last finished epoch and ends with the same parameters as an uninterrupted one) and
:mod:`~jaxkit.models.im2col` (convolution as one matrix product) and :mod:`~jaxkit.models.papers` (the
experiments' networks: :class:`CCSANet`, :class:`LeNet`, :class:`NormCNN`). Every public name is importable from
``jaxkit.models``.
"""

from __future__ import annotations

from jaxkit.models.im2col import im2col_conv, with_im2col
from jaxkit.models.nets import DIGITS_CFG, MLP, VGG, BasicBlock, ResNet, SmallCNN, Tap, resnet56
from jaxkit.models.papers import CCSANet, LeNet, NormCNN
from jaxkit.models.training import (
    TrainState,
    create_train_state,
    cross_entropy,
    eval_step,
    evaluate,
    init_variables,
    train,
    train_step,
)

__all__ = [
    "DIGITS_CFG",
    "MLP",
    "VGG",
    "BasicBlock",
    "CCSANet",
    "LeNet",
    "NormCNN",
    "ResNet",
    "SmallCNN",
    "Tap",
    "TrainState",
    "create_train_state",
    "cross_entropy",
    "eval_step",
    "evaluate",
    "im2col_conv",
    "init_variables",
    "resnet56",
    "train",
    "train_step",
    "with_im2col",
]
