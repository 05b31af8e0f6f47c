"""The thesis's WGAN-GP critic and generator for hyperspectral pixels (3-D convolutions).

Layout N·D·H·W·C with the spectral axis as depth D; kernel ``(2, 3, 3)`` for
windows larger than 1 (spatial 'same' padding). For WINDOW = 1 (the default,
purely spectral) the thesis's ``(2, 1, 1)`` kernels are run as 1-D ``(2,)``
convolutions over the spectral axis -- the same arithmetic, 3-4x faster on CPU
(the params store ``(2, C_in, C_out)`` kernels). No normalisation layer
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

__all__ = ["Critic", "Generator", "BANDS", "STRIDES"]

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


class _Block(nn.Module):
    features: int
    stride: int
    s: int
    transpose: bool = False

    @nn.compact
    def __call__(self, x):
        k = _kernel(self.s)
        st = (self.stride,) + (1,) * (len(k) - 1)
        one = (1,) * len(k)
        if self.transpose:
            conv = lambda f, stride, depth, name: nn.ConvTranspose(  # noqa: E731
                f, k, stride, padding=_tpad(depth, self.s), name=name)
        else:
            conv = lambda f, stride, depth, name: nn.Conv(f, k, stride, padding=_pad(depth, self.s),  # noqa: E731
                                                          name=name)
        shortcut = conv(self.features, st, "valid", "shortcut")(x)
        y = conv(x.shape[-1], one, "same", "conv_0")(nn.relu(x))
        y = conv(self.features, st, "valid", "conv_1")(nn.relu(y))
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
        x = nn.Conv(self.dim, _kernel(s), padding=_pad("same", s), name="input")(x)
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
        x = nn.ConvTranspose(1, _kernel(s), padding=_tpad("same", s), name="output")(nn.relu(x))
        x = jnp.tanh(x[..., 0])
        return x[:, :, None, None] if w == 1 else x
