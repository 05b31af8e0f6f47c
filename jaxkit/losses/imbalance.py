"""Class imbalance: Cui et al. (2019) effective-number weights ``(1 - beta) / (1 - beta^n_y)``
(:func:`class_balanced_weights`) times the sigmoid focal loss (:func:`focal_loss`,
:func:`class_balanced_focal_loss`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkit import _checks as _c

__all__ = ["class_balanced_focal_loss", "class_balanced_weights", "focal_loss"]


def class_balanced_weights(counts, beta: float | None = None, normalize: bool = False):
    """Class-balanced weights by the effective number of samples: ``(1 - beta) / (1 - beta^n_c)`` per class.

    ``beta`` default ``(N - 1) / N`` with ``N = sum(counts)`` (the thesis's choice); ``beta = 0`` gives 1 for
    every class. ``normalize=True`` rescales the weights to sum to the number of classes (Cui et al.); the
    thesis does not.

    Args:
      counts: ``[C]`` positive class sizes.
      beta: in ``[0, 1)``; default ``(N - 1) / N``.
      normalize: rescale to sum to ``C``.

    Returns:
      ``[C]`` float32 weights.

    Raises:
      ValueError: counts not a non-empty vector of positive numbers, ``beta`` outside ``[0, 1)``.

    References:
      Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019, Sec. 3-4.

    Examples:
      >>> w = jaxkit.losses.class_balanced_weights(jnp.array([100, 10]), beta=0.99, normalize=True)
      >>> print(np.asarray(w, float).round(3))
      [0.262 1.738]
    """
    c = np.asarray(_c.array(counts, "counts", kind="r"), np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"`counts` must be a non-empty vector of class sizes, got shape {c.shape}.")
    if np.any(c <= 0) or not np.all(np.isfinite(c)):
        raise ValueError(f"`counts` must all be positive (a class with no sample has no weight), got {c.tolist()}.")
    n = c.sum()
    b = (n - 1) / n if beta is None else float(beta)
    if not 0 <= b < 1:
        raise ValueError(f"`beta` must lie in [0, 1), got {beta}.")
    w = (1 - b) / (1 - b**c) if b > 0 else np.ones_like(c)
    if normalize:
        w = w * c.size / w.sum()
    return jnp.asarray(w, jnp.float32)


def focal_loss(logits, labels, gamma: float = 2.0):
    """Per-sample sigmoid focal loss ``sum_c (1 - p^t_c)^gamma (-log p^t_c)``.

    ``p^t_c = sigma(z_c)`` for the true class and ``1 - sigma(z_c)`` otherwise; ``gamma = 0`` is the summed
    binary cross-entropy. The sum over classes of ``optax.sigmoid_focal_loss`` (computed in log space: finite
    gradients for saturated logits).

    Args:
      logits: ``[N, C]`` logits.
      labels: ``[N]`` integer labels.
      gamma: the focusing exponent (>= 0).

    Returns:
      ``[N]`` losses.

    Raises:
      ValueError: logits not ``[N, C]``, labels out of range or of another length, ``gamma < 0``.

    References:
      Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, Sec. 3 (the sigmoid form of Sec. 3.3).

    Examples:
      >>> logits = jnp.array([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
      >>> labels = jnp.array([0, 0, 1])
      >>> print(np.asarray(jaxkit.losses.focal_loss(logits, labels), float).round(3))
      [0.175 0.196 0.173]
    """
    z = _c.logit_matrix(logits)
    if not float(gamma) >= 0:
        raise ValueError(f"`gamma` must be >= 0, got {gamma}.")
    y, _ = _c.class_labels(labels, z.shape[0], z.shape[1], ref="logits")
    # optax's elementwise loss (computed in log space: finite gradients at saturated logits), summed over classes
    return jnp.sum(optax.sigmoid_focal_loss(z, jax.nn.one_hot(y, z.shape[1], dtype=z.dtype), gamma=gamma), axis=-1)


def class_balanced_focal_loss(
    logits, labels, counts, beta: float | None = None, gamma: float = 2.0, normalize: bool = False
):
    """Class-balanced focal loss: the batch mean of ``class_balanced_weights(counts, beta)[y] * focal_loss``.

    ``gamma`` is not given in the thesis: 2 (Lin et al.'s default) is our choice.

    Args:
      logits: ``[N, C]`` logits.
      labels: ``[N]`` integer labels.
      counts: ``[C]`` training-set class sizes.
      beta: as :func:`class_balanced_weights`.
      gamma: as :func:`focal_loss`.
      normalize: as :func:`class_balanced_weights`.

    Returns:
      A scalar array.

    Raises:
      ValueError: as :func:`focal_loss` and :func:`class_balanced_weights`; ``counts`` of another length than
        the classes.

    References:
      Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019, Sec. 4 (class-balanced
      focal loss); Lin et al., ICCV 2017.

    Examples:
      >>> logits = jnp.array([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
      >>> labels = jnp.array([0, 0, 1])
      >>> round(float(jaxkit.losses.class_balanced_focal_loss(logits, labels, jnp.array([100, 10]))), 4)
      0.0079
    """
    w = class_balanced_weights(counts, beta, normalize)
    z = _c.logit_matrix(logits)
    if w.shape[0] != z.shape[1]:
        raise ValueError(f"`counts` has {w.shape[0]} classes but `logits` has {z.shape[1]}.")
    y, _ = _c.class_labels(labels, z.shape[0], z.shape[1], ref="logits")
    return jnp.mean(w[y] * focal_loss(z, y, gamma))
