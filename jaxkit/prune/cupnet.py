"""CupNet: dense layers pruned by the geometry of the data they predict.

"CupNet -- Pruning a Network for Geometric Data" (Heese et al., ICANN 2021).
The network maps ``k`` process parameters to the ``m`` points of a deformed
mesh. Its inner layers are **structurally masked** dense layers

    o = A([C(alpha) * W]^T i + b),   C_ij = 1 iff ||p_i - p_j|| <= alpha,

with ``p`` the points of the undeformed reference geometry: output point ``j``
only listens to points within distance ``alpha``.

Architecture (:class:`CupNet`): ``k`` inputs -> dense "frame" layer of width
``d = 3m`` -> split into x / y / z segments of ``m`` -> per segment ``h``
masked ``m x m`` layers (ReLU, dropout after each) -> a final dense ``m x m``
layer per segment (linear) -> concatenated ``[N, 3m]`` (x block, y block,
z block). Parameter count (:func:`cupnet_params`):

    n_cup = (k d + d) + 3 h (c(alpha) + m) + 3 (m^2 + m),   c(alpha) = sum_ij C_ij.

The dense baseline :class:`RefNet` with ``h + 1`` hidden layers of width ``s``
has ``h s^2 + u s + d`` parameters, ``u = k + h + d + 1``;
:func:`refnet_width` solves for the smallest ``s`` with at least ``n_cup``.
"""

from __future__ import annotations

import math
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import tree as _tree

__all__ = [
    "CupNet",
    "MaskedDense",
    "RefNet",
    "connectivity",
    "count_params",
    "cupnet_params",
    "refnet_params",
    "refnet_width",
]


def connectivity(points: np.ndarray, alpha: Any) -> np.ndarray:
    """``C(alpha)``: bool ``[m, m]``, True where reference points lie within ``alpha`` (diagonal included).

    Args:
      points: ``[m, dim]`` coordinates of the undeformed reference mesh.
      alpha: distance threshold, > 0, in the units of ``points``.

    Returns:
      ``[m, m]`` bool.

    Raises:
      ValueError: points not ``[m, dim]`` or not finite, ``alpha`` not > 0.

    References:
      Heese et al., "CupNet -- Pruning a Network for Geometric Data", ICANN 2021 (the structural mask ``C(alpha)``).

    Examples:
      >>> print(jaxkit.prune.cupnet.connectivity(np.array([[0.0], [1.0], [2.5]]), 1.0).astype(int))
      [[1 1 0]
       [1 1 0]
       [0 0 1]]
    """
    p = np.asarray(points, np.float64)
    if p.ndim != 2 or p.shape[0] < 1:
        raise ValueError(f"`points` must have shape [m, dim], got {p.shape}.")
    if not np.all(np.isfinite(p)):
        raise ValueError("`points` contains NaN or inf.")
    if not (np.isscalar(alpha) or np.ndim(alpha) == 0) or not float(cast(Any, alpha)) > 0:
        raise ValueError(f"`alpha` must be a distance > 0, got {alpha}.")
    sq = np.sum(p * p, 1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * p @ p.T, 0.0)
    return d2 <= float(cast(Any, alpha)) ** 2


class MaskedDense(nn.Module):
    """``y = x @ (C * W) + b`` with a fixed bool structure ``C`` of shape ``[in, out]``.

    ``W`` is stored full-size (entries outside ``C`` never influence the output
    and get zero gradients); count effective parameters with
    :func:`count_params`, which counts ``C.sum()`` for the kernel.
    """

    structure: np.ndarray  # bool [in, out], static
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = np.asarray(self.structure, bool)
        if x.shape[-1] != c.shape[0]:
            raise ValueError(f"MaskedDense: input has {x.shape[-1]} features, `structure` expects {c.shape[0]}.")
        # fan-in of each output is its number of connections: scale the init per column
        fan_in = np.maximum(c.sum(0), 1).astype(np.float32)
        init = self.kernel_init or (
            lambda key, shape, dtype=jnp.float32: jax.random.normal(key, shape, dtype) * jnp.sqrt(2.0 / fan_in)[None, :]
        )
        w = self.param("kernel", init, c.shape)
        y = x @ (w * jnp.asarray(c, w.dtype))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (c.shape[1],))
        return y


class CupNet(nn.Module):
    """CupNet: frame layer, per-coordinate masked layers, per-coordinate output layer.

    Attributes:
      structure: ``C(alpha)``, bool ``[m, m]`` (:func:`connectivity`).
      depth: ``h``, masked layers per segment (>= 0).
      dropout: rate after each inner (masked) layer; the paper uses 0.2.
    """

    structure: np.ndarray
    depth: int = 2
    dropout: float = 0.2

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c = np.asarray(self.structure, bool)
        m = c.shape[0]
        x = nn.Dense(3 * m, name="frame")(x)
        outs = []
        for axis, seg in enumerate("xyz"):
            y = x[..., axis * m : (axis + 1) * m]
            for i in range(int(self.depth)):
                y = nn.relu(MaskedDense(c, name=f"{seg}_masked_{i}")(y))
                y = nn.Dropout(self.dropout, deterministic=not train)(y)
            outs.append(nn.Dense(m, name=f"{seg}_out")(y))
        return jnp.concatenate(outs, axis=-1)


class RefNet(nn.Module):
    """Dense baseline: ``h + 1`` hidden ReLU layers of width ``s`` (dropout after each), linear ``d`` outputs."""

    width: int
    depth: int
    out: int
    dropout: float = 0.2

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for i in range(int(self.depth) + 1):
            x = nn.relu(nn.Dense(int(self.width), name=f"hidden_{i}")(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(int(self.out), name="out")(x)


def _check(k, m, h):
    for name, v, lo in (("k", k, 1), ("m", m, 1), ("h", h, 0)):
        if int(v) != v or v < lo:
            raise ValueError(f"`{name}` must be an integer >= {lo}, got {v}.")


def cupnet_params(k: int, m: int, h: int, c: int) -> int:
    """CupNet's parameter count ``n_cup = (k d + d) + 3 h (c + m) + 3 (m^2 + m)``, ``d = 3m``.

    Args:
      k: process parameters (inputs).
      m: mesh points.
      h: hidden masked layers.
      c: ``C(alpha).sum()``, the structure's connections.

    Returns:
      An ``int``.

    References:
      Heese et al., "CupNet -- Pruning a Network for Geometric Data", ICANN 2021.

    Examples:
      >>> jaxkit.prune.cupnet.cupnet_params(2, 10, 3, 40)
      870
    """
    _check(k, m, h)
    if not 0 < c <= m * m:
        raise ValueError(f"`c` (connections) must lie in [1, m^2 = {m * m}], got {c}.")
    d = 3 * m
    return (k * d + d) + 3 * h * (c + m) + 3 * (m * m + m)


def refnet_params(k: int, d: int, h: int, s: int) -> int:
    """Parameters of :class:`RefNet`: ``h s^2 + (k + h + d + 1) s + d``.

    Args:
      k: inputs.
      d: outputs.
      h: hidden layers of width ``s``.
      s: the width.

    Returns:
      An ``int``.

    References:
      Heese et al., "CupNet -- Pruning a Network for Geometric Data", ICANN 2021 (the dense reference network of equal
      size).

    Examples:
      >>> jaxkit.prune.cupnet.refnet_params(2, 30, 1, 20)
      1110
    """
    return h * s * s + (k + h + d + 1) * s + d


def refnet_width(k: int, d: int, h: int, n_params: int) -> int:
    """The smallest RefNet width ``s`` with at least ``n_params`` parameters.

    ``s = ceil((-u + sqrt(u^2 - 4 h (d - n))) / (2 h))``, ``u = k + h + d + 1``
    (for ``h = 0``: ``s = ceil((n - d) / u)``), checked in exact integers.

    Args:
      k: inputs.
      d: outputs.
      h: hidden layers.
      n_params: the parameter budget to reach.

    Returns:
      ``s``, an ``int``.

    Raises:
      ValueError: negative sizes.

    References:
      Heese et al., "CupNet -- Pruning a Network for Geometric Data", ICANN 2021 (RefNet sized like CupNet).

    Examples:
      >>> s = jaxkit.prune.cupnet.refnet_width(2, 30, 1, 1000)
      >>> s, jaxkit.prune.cupnet.refnet_params(2, 30, 1, s - 1) < 1000 <= jaxkit.prune.cupnet.refnet_params(2, 30, 1, s)
      (19, True)
    """
    _check(k, d, h)
    u = k + h + d + 1
    if h == 0:
        s = max(1, math.ceil((n_params - d) / u))
    else:
        s = max(1, math.ceil((-u + math.sqrt(u * u - 4 * h * (d - n_params))) / (2 * h)))
    while s > 1 and refnet_params(k, d, h, s - 1) >= n_params:  # guard float rounding
        s -= 1
    while refnet_params(k, d, h, s) < n_params:
        s += 1
    return s


def count_params(params, structure: np.ndarray | None = None, *, marker: str = "masked") -> int:
    """The effective parameter count: the kernels of modules named ``*{marker}*`` count ``structure.sum()``.

    With ``structure=None`` every entry counts (the stored size). For a
    :class:`CupNet` pass its ``C(alpha)``; the result equals :func:`cupnet_params`.

    Args:
      params: the params.
      structure: ``C(alpha)`` (``None``: every entry counts).
      marker: the name fragment of structurally masked modules.

    Returns:
      An ``int``.

    Raises:
      ValueError: a masked kernel of another shape than ``structure``.

    References:
      Heese et al., "CupNet -- Pruning a Network for Geometric Data", ICANN 2021 (parameter counts of CupNet).

    Examples:
      >>> params = {"masked_0": {"kernel": jnp.ones((3, 3)), "bias": jnp.ones(3)}}
      >>> c = jaxkit.prune.cupnet.connectivity(np.array([[0.0], [1.0], [2.5]]), 1.0)
      >>> jaxkit.prune.cupnet.count_params(params), jaxkit.prune.cupnet.count_params(params, c)  # 9 + 3, 5 + 3
      (12, 8)
    """
    total = 0
    for path, x in _tree.validate(params, "params"):
        parts = path.split("/")
        masked = structure is not None and parts[-1] == "kernel" and len(parts) > 1 and marker in parts[-2]
        if masked and np.shape(x) != np.shape(cast(np.ndarray, structure)):
            raise ValueError(
                f"`structure` has shape {np.shape(cast(np.ndarray, structure))}, kernel {path!r} has {np.shape(x)}."
            )
        total += int(np.asarray(cast(np.ndarray, structure), bool).sum()) if masked else int(np.size(x))
    return total
