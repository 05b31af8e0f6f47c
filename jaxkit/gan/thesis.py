"""The thesis's WGAN-GP critic and generator for hyperspectral pixels (3-D convolutions).

Layout N·D·H·W·C with the spectral axis as depth D; kernel ``(2, 3, 3)`` for
windows larger than 1 (spatial 'same' padding). For WINDOW = 1 (the default,
purely spectral) the thesis's ``(2, 1, 1)`` kernels are run as 1-D width-2
convolutions over the spectral axis, written as two shifted matmuls -- the same
arithmetic, 3-4x faster on CPU than 3-D convolutions and faster to compile twice
differentiated than ``lax.conv`` (the params store ``(2, C_in, C_out)`` kernels,
exactly as ``nn.Conv((2,))`` would). No normalisation layer
anywhere (the thesis removed it).

Critic: ``[N, bands, W, W]`` -> ``[N, bands, W, W, 1]`` -> conv(DIM, 'same') ->
five residual blocks to (2, 4, 8, 16, 32)·DIM, depth stride 2 except the third
block (stride 1, 'valid'), so depth 20 -> 10 -> 5 -> 4 -> 2 -> 1 -> flatten ->
Dense(1). A block is ``shortcut conv(out, k, stride, 'valid') + [ReLU ->
conv(in, k, 'same') -> ReLU -> conv(out, k, stride, 'valid')]``.

Generator: ``z [N, NOISE_DIM]`` -> Dense(16·DIM·W·W) -> ``[N, 1, W, W, 16·DIM]``
-> five transposed blocks to (16, 8, 4, 2, 1)·DIM (the third with stride 1),
depth 1 -> 2 -> 4 -> 5 -> 10 -> 20 -> ReLU -> convT(1, 'same') -> tanh ->
``[N, bands, W, W]``. The depth schedule is fixed by these strides, so
``bands`` must be 20 (the thesis's preprocessed band count).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["BANDS", "STRIDES", "Critic", "Generator"]

BANDS = 20
STRIDES = (2, 2, 1, 2, 2)  # depth strides of the five blocks (critic order)


def _pad(depth: str, s: int):
    d = (0, 1) if depth == "same" else (0, 0)  # k = 2: 'same' pads one step at the end (XLA's convention)
    return (d,) if s == 0 else (d, (s // 2, s // 2), (s // 2, s // 2))


def _tpad(depth: str, s: int):
    # lax.conv_transpose pads the stride-dilated input: out = (in - 1) * stride + 1 + lo + hi - (k - 1)
    d = (0, 1) if depth == "same" else (1, 1)  # 'valid' (k = 2): out = (in - 1) * stride + 2
    return (d,) if s == 0 else (d, (s // 2, s // 2), (s // 2, s // 2))


def _kernel(s: int):
    """WINDOW = 1 (``s = 0``): the (2, 1, 1) kernel as a 1-D (2,) kernel -- same maths, 3-4x faster on CPU."""
    return (2,) if s == 0 else (2, s, s)


def _check(bands, window):
    if int(bands) != BANDS:
        raise ValueError(f"`bands` must be {BANDS} (the depth schedule 20->10->5->4->2->1 is fixed), got {bands}.")
    if int(window) < 1 or int(window) % 2 == 0:
        raise ValueError(f"`window` must be an odd integer >= 1, got {window}.")


class _Taps2(nn.Module):
    """``nn.Conv((2,), stride, padding)`` / ``nn.ConvTranspose`` on ``[N, T, C]`` as two shifted matmuls.

    Same params (``kernel [2, C_in, C_out]``, ``bias``), same initialisers and the same outputs as Flax's
    layers (tested against them). Why: the gradient penalty differentiates the critic twice, and XLA:CPU
    compiles the second derivative of a width-2 convolution slowly; slices and matmuls compile ~4x faster.
    """

    features: int
    stride: int = 1
    padding: tuple[int, int] = (0, 0)  # (lo, hi) on the (for ``transpose``: stride-dilated) input
    transpose: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (2, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        s = int(self.stride)
        if self.transpose and s > 1:  # dilate: s - 1 zeros between inputs, then a stride-1 correlation
            n, t, c = x.shape
            x = jnp.concatenate([x[:, :, None], jnp.zeros((n, t, s - 1, c), x.dtype)], axis=2).reshape(n, t * s, c)
            x, s = x[:, : (t - 1) * s + 1], 1
        x = jnp.pad(x, ((0, 0), tuple(self.padding), (0, 0)))
        m = (x.shape[1] - 2) // s + 1
        return x[:, 0 : (m - 1) * s + 1 : s] @ kernel[0] + x[:, 1 : (m - 1) * s + 2 : s] @ kernel[1] + bias


def _conv(features, stride, depth, s, transpose, name):
    """The thesis's convolution: a width-2 1-D one for WINDOW = 1 (``s = 0``), else 3-D ``(2, s, s)``."""
    if s == 0:
        return _Taps2(features, stride, (_tpad if transpose else _pad)(depth, s)[0], transpose, name=name)
    k, st = _kernel(s), (stride, 1, 1)
    if transpose:
        return nn.ConvTranspose(features, k, st, padding=_tpad(depth, s), name=name)
    return nn.Conv(features, k, st, padding=_pad(depth, s), name=name)


class _Block(nn.Module):
    features: int
    stride: int
    s: int
    transpose: bool = False

    @nn.compact
    def __call__(self, x):
        def conv(f, stride, depth, name):
            return _conv(f, stride, depth, self.s, self.transpose, name)

        shortcut = conv(self.features, self.stride, "valid", "shortcut")(x)
        y = conv(x.shape[-1], 1, "same", "conv_0")(nn.relu(x))
        y = conv(self.features, self.stride, "valid", "conv_1")(nn.relu(y))
        return shortcut + y


class Critic(nn.Module):
    """WGAN-GP critic on ``[N, bands, W, W]`` (or ``[N, bands]`` for W = 1); returns ``[N]`` scores."""

    bands: int = BANDS
    window: int = 1
    dim: int = 8

    def features(self, x: jax.Array) -> jax.Array:
        return self._features(x)

    @nn.compact
    def _features(self, x):
        _check(self.bands, self.window)
        w = int(self.window)
        if x.ndim == 2:
            x = x[:, :, None, None]
        if x.shape[1:] != (BANDS, w, w):
            raise ValueError(f"Critic expects [N, {BANDS}, {w}, {w}], got {x.shape}.")
        s = 0 if w == 1 else 3
        x = x[:, :, 0, 0, None] if w == 1 else x[..., None]
        x = _conv(self.dim, 1, "same", s, False, "input")(x)
        for i, (mult, stride) in enumerate(zip((2, 4, 8, 16, 32), STRIDES)):
            x = _Block(mult * self.dim, stride, s, name=f"block_{i}")(x)
        return x.reshape(x.shape[0], -1)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(1, name="output")(self._features(x))[:, 0]


class Generator(nn.Module):
    """WGAN-GP generator: ``z [N, noise_dim]`` -> pixels ``[N, bands, W, W]`` in (-1, 1)."""

    bands: int = BANDS
    window: int = 1
    dim: int = 8
    noise_dim: int = 4

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        _check(self.bands, self.window)
        w = int(self.window)
        if z.ndim != 2 or z.shape[1] != self.noise_dim:
            raise ValueError(f"Generator expects z of shape [N, {self.noise_dim}], got {z.shape}.")
        s = 0 if w == 1 else 3
        x = nn.Dense(16 * self.dim * w * w, name="input")(z)
        x = x.reshape(z.shape[0], 1, 16 * self.dim) if w == 1 else x.reshape(z.shape[0], 1, w, w, 16 * self.dim)
        for i, (mult, stride) in enumerate(zip((16, 8, 4, 2, 1), STRIDES[::-1])):
            x = _Block(mult * self.dim, stride, s, transpose=True, name=f"block_{i}")(x)
        x = _conv(1, 1, "same", s, True, "output")(nn.relu(x))
        x = jnp.tanh(x[..., 0])
        return x[:, :, None, None] if w == 1 else x
