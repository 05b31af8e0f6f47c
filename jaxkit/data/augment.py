"""Keyed, jittable data augmentation on image batches (the standard CIFAR recipe).

:func:`random_crop_flip` is the augmentation of the CIFAR ResNet/VGG papers (He et al. 2016, Sec. 4.2; used by
Gator, BFRIFP, the blending paper and Pruned-YOLO's CIFAR ablations): zero-pad 4 pixels on each side, take a
random 32x32 crop, flip horizontally with probability 1/2 -- independently per image, from one explicit key.
It is a pure function ``(key, x) -> x'`` so it runs inside a jitted training step (no host round trip, no
state); the same key gives the same batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks

__all__ = ["AUGMENT_KEY_TAG", "random_crop_flip"]

# ``fold_in`` tag of the augmentation keys ("aug!") that the training loops derive from a run's key, kept apart from
# the epoch / batch indices folded into the same key
AUGMENT_KEY_TAG = 0x61756721


def _key(key, name: str = "key"):
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"`{name}` must be one PRNG key, got a key array of shape {key.shape}.")
        return key
    k = np.asarray(key) if not isinstance(key, jax.Array) else key
    if k.shape != (2,) or not jnp.issubdtype(k.dtype, jnp.unsignedinteger):
        raise TypeError(
            f"`{name}` must be a PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), "
            f"got {type(key).__name__} of shape {np.shape(key)}."
        )
    return key


def random_crop_flip(key: jax.Array, x: jax.Array, *, padding: int = 4, flip: bool = True) -> jax.Array:
    """Random crop after zero padding, and a random horizontal flip, per image.

    Each image ``x[i]`` (``[H, W, C]``) is padded with ``padding`` zeros on every side, cropped back to ``H x W``
    at an offset ``(dy, dx)`` drawn uniformly from ``{0, ..., 2 padding}^2``, and (with ``flip``) mirrored left to
    right with probability 1/2. Offsets and flips are independent across images and come from ``key`` alone.

    Args:
      key: a PRNG key.
      x: images ``[N, H, W, C]`` (NHWC, as Flax convolutions take them), any real dtype; kept.
      padding: pixels of zero padding per side (CIFAR: 4); 0 with ``flip=False`` returns ``x``.
      flip: also flip horizontally with probability 1/2.

    Returns:
      The augmented batch, same shape and dtype as ``x``.

    Raises:
      TypeError: ``key`` or ``x`` of the wrong kind (``x`` not a real ``[N, H, W, C]`` array).
      ValueError: ``x`` empty or NaN (when concrete), or a bad ``padding``; the message names the argument.

    References:
      He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, Sec. 4.2 (CIFAR-10).

    Examples:
      >>> jaxkit.data.random_crop_flip(jax.random.key(0), jnp.ones((2, 8, 8, 1))).shape
      (2, 8, 8, 1)
    """
    key = _key(key)
    x = _checks.no_nan(_checks.array(x, "x", ndim=4, kind="r", nonempty=True), "x")
    padding = _checks.positive_int(padding, "padding", minimum=0)
    x = jnp.asarray(x)
    n, h, w, c = x.shape
    k_off, k_flip = jax.random.split(key)
    offsets = jax.random.randint(k_off, (n, 2), 0, 2 * padding + 1)
    flips = jax.random.bernoulli(k_flip, 0.5, (n,)) if flip else jnp.zeros((n,), bool)
    padded = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))

    def one(img, off, f):
        crop = jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, c))
        return jnp.where(f, crop[:, ::-1], crop)

    return jax.vmap(one)(padded, offsets, flips)
