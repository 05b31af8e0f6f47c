"""Sound interval arithmetic as a pytree, and interval bound propagation (IBP).

An :class:`Interval` holds elementwise bounds ``lo <= x <= hi``. Every operation
returns bounds that contain the exact real-number result of applying the
operation to any point inside the operands, **including floating-point rounding**:

* Results of one rounded operation (``+``, ``-``, scalar ``*``) are moved one ulp
  outward with ``nextafter`` (round-to-nearest is within half an ulp, so one ulp
  outward always contains the exact value).
* Dot products / matrix products of length ``n`` are widened by the a-priori
  bound ``gamma_n * (|A| @ |x|) + n * tiny`` (Higham, *Accuracy and Stability of
  Numerical Algorithms*, Thm 3.5, with ``gamma_n = n u / (1 - n u)``, ``u`` the
  unit roundoff of the dtype, plus an underflow term), then one ulp outward.
* ``relu`` and other monotone functions are applied to the end points; ``relu``
  is exact, for other functions ``monotone`` widens by ``ulps`` ulps (default 2,
  enough for XLA's ``tanh``/``sigmoid`` on CPU; pass more for other back-ends).

This makes the bounds sound in float32 and float64 alike; float64 gives tighter
bounds. None of the peer libraries (auto_LiRPA, jax_verify) rounds outward.

IBP (Gowal et al., 2018): ``[z] = W [x] + b``, ``[x'] = relu([z])`` through the
``Dense_i`` layers of a Flax MLP's params (:func:`ibp`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = ["Interval", "box", "matmul", "dense", "relu", "monotone", "ibp", "mlp_layers", "contains"]


def _u(dtype) -> float:
    return float(jnp.finfo(dtype).eps) / 2.0


def _tiny(dtype) -> float:
    return float(jnp.finfo(dtype).smallest_subnormal)


def _down(x):
    return jnp.nextafter(x, jnp.full_like(x, -jnp.inf))


def _up(x):
    return jnp.nextafter(x, jnp.full_like(x, jnp.inf))


@struct.dataclass
class Interval:
    """Elementwise bounds ``lo <= x <= hi`` (a pytree; works under ``jit``/``vmap``)."""

    lo: jax.Array
    hi: jax.Array

    @property
    def shape(self):
        return jnp.shape(self.lo)

    @property
    def dtype(self):
        return jnp.result_type(self.lo)

    @property
    def center(self) -> jax.Array:
        return (self.lo + self.hi) / 2

    @property
    def width(self) -> jax.Array:
        return self.hi - self.lo

    def __add__(self, other: "Interval | jax.Array | float") -> "Interval":
        o = _as_interval(other, self.dtype)
        return Interval(_down(self.lo + o.lo), _up(self.hi + o.hi))

    __radd__ = __add__

    def __neg__(self) -> "Interval":
        return Interval(-self.hi, -self.lo)

    def __sub__(self, other) -> "Interval":
        return self + (-_as_interval(other, self.dtype))

    def __rsub__(self, other) -> "Interval":
        return _as_interval(other, self.dtype) + (-self)

    def __mul__(self, other) -> "Interval":
        """Elementwise product with a point array/scalar or another interval."""
        o = _as_interval(other, self.dtype)
        cands = jnp.stack([self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi])
        return Interval(_down(cands.min(0)), _up(cands.max(0)))

    __rmul__ = __mul__

    def __getitem__(self, idx) -> "Interval":
        return Interval(self.lo[idx], self.hi[idx])


def _as_interval(x, dtype) -> Interval:
    if isinstance(x, Interval):
        return x
    x = jnp.asarray(x, dtype)
    return Interval(x, x)


def box(lo, hi, dtype=None) -> Interval:
    """An input box ``[lo, hi]``; raises ``ValueError`` if it is empty, inverted or not finite."""
    lo_np, hi_np = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    lo_np, hi_np = np.broadcast_arrays(lo_np, hi_np)
    if lo_np.size == 0:
        raise ValueError("box: `lo`/`hi` are empty; expected one bound per input.")
    if not (np.all(np.isfinite(lo_np)) and np.all(np.isfinite(hi_np))):
        raise ValueError("box: `lo` and `hi` must be finite.")
    if np.any(lo_np > hi_np):
        i = int(np.argmax(lo_np > hi_np))
        raise ValueError(f"box is inverted: lo[{i}] = {lo_np.flat[i]} > hi[{i}] = {hi_np.flat[i]}.")
    dtype = dtype or jnp.result_type(float)
    return Interval(jnp.asarray(lo_np, dtype), jnp.asarray(hi_np, dtype))


def matmul(w: jax.Array, x: Interval) -> Interval:
    """Sound bounds on ``w @ v`` for every ``v`` in ``x`` (``w`` a point matrix ``[m, n]``,
    ``x`` of shape ``[n]`` or ``[n, k]``)."""
    w = jnp.asarray(w, x.dtype)
    wp, wn = jnp.maximum(w, 0), jnp.minimum(w, 0)
    lo = wp @ x.lo + wn @ x.hi
    hi = wp @ x.hi + wn @ x.lo
    n = w.shape[-1]
    u = _u(x.dtype)
    gamma = n * u / (1 - n * u)
    mag = jnp.abs(w) @ jnp.maximum(jnp.abs(x.lo), jnp.abs(x.hi))
    err = gamma * mag + n * _tiny(x.dtype)
    return Interval(_down(lo - err), _up(hi + err))


def dense(x: Interval, kernel: jax.Array, bias: jax.Array | None = None) -> Interval:
    """Bounds on a Flax ``nn.Dense`` layer, ``x @ kernel + bias`` (``kernel`` is ``[in, out]``)."""
    z = matmul(jnp.asarray(kernel).T, x)
    return z + bias if bias is not None else z


def relu(x: Interval) -> Interval:
    """``[max(0, lo), max(0, hi)]`` (exact)."""
    return Interval(jnp.maximum(x.lo, 0), jnp.maximum(x.hi, 0))


def monotone(fn: Callable[[jax.Array], jax.Array], x: Interval, increasing: bool = True, ulps: int = 2) -> Interval:
    """Bounds for an elementwise monotone ``fn`` (sigmoid, tanh, exp, ...), widened by ``ulps`` ulps."""
    a, b = fn(x.lo), fn(x.hi)
    lo, hi = (a, b) if increasing else (b, a)
    for _ in range(int(ulps)):
        lo, hi = _down(lo), _up(hi)
    return Interval(lo, hi)


def contains(outer: Interval, x: jax.Array) -> jax.Array:
    """Whether every element of the point array ``x`` lies in ``outer``."""
    return jnp.all((outer.lo <= x) & (x <= outer.hi))


def mlp_layers(params: Any) -> list[tuple[jax.Array, jax.Array]]:
    """``[(kernel, bias), ...]`` of a Flax MLP's ``Dense_0 ... Dense_{L-1}`` layers, validated.

    Accepts Linen params or variables (``{"params": ...}``), NNX state, or a list of
    ``(kernel, bias)`` pairs. Raises ``ValueError`` for anything that is not a chain
    of dense layers with matching shapes.
    """
    from jaxkit import tree as jt  # noqa: PLC0415

    if isinstance(params, (list, tuple)):
        layers = [tuple(p) for p in params]
    else:
        p = jt.params_of(params)
        if not isinstance(p, dict) and not hasattr(p, "keys"):
            raise ValueError(f"`params` must be Flax MLP params (Dense_i with kernel and bias), got {type(p).__name__}.")
        dense_keys = [k for k in p.keys() if str(k).startswith("Dense_")]
        other = [k for k in p.keys() if k not in dense_keys]
        if other or not dense_keys:
            raise ValueError(
                f"`params` is not an MLP of nn.Dense layers: expected only keys Dense_0..Dense_{{L-1}}, got {list(p.keys())}."
            )
        dense_keys.sort(key=lambda k: int(str(k).split("_")[1]))
        if [int(str(k).split("_")[1]) for k in dense_keys] != list(range(len(dense_keys))):
            raise ValueError(f"`params` Dense layers must be numbered 0..L-1, got {dense_keys}.")
        layers = []
        for k in dense_keys:
            if "kernel" not in p[k]:
                raise ValueError(f"`params[{k!r}]` has no 'kernel'.")
            layers.append((p[k]["kernel"], p[k].get("bias")))
    out = []
    for i, (kern, bias) in enumerate(layers):
        # Shapes only: arrays stay as given (float64 numpy must not pass through a float32 jnp.asarray).
        kshape = np.shape(kern)
        if len(kshape) != 2:
            raise ValueError(f"layer {i}: kernel must be 2-D [in, out] (a Dense layer), got shape {kshape}.")
        if bias is None:
            bias = np.zeros(kshape[1], np.result_type(kern))
        if np.shape(bias) != (kshape[1],):
            raise ValueError(f"layer {i}: bias shape {np.shape(bias)} does not match kernel output size {kshape[1]}.")
        if i > 0 and np.shape(out[-1][0])[1] != kshape[0]:
            raise ValueError(
                f"layer {i}: kernel expects {kshape[0]} inputs but layer {i - 1} has {np.shape(out[-1][0])[1]} outputs."
            )
        out.append((kern, bias))
    return out


def ibp(params: Any, x: Interval, activation: str = "relu") -> tuple[Interval, list[Interval]]:
    """Interval bound propagation through an MLP; returns ``(output, pre_activations)``.

    ``pre_activations[i]`` bounds the input of the i-th hidden ReLU. No activation
    after the last layer (as :class:`jaxkit.models.MLP`).
    """
    if activation != "relu":
        raise ValueError(f"`activation` must be 'relu', got {activation!r}.")
    layers = mlp_layers(params)
    if x.shape[-1] != layers[0][0].shape[0]:
        raise ValueError(f"input interval has {x.shape[-1]} features, the network expects {layers[0][0].shape[0]}.")
    pre = []
    h = x
    for i, (k, b) in enumerate(layers):
        z = dense(h, jnp.asarray(k, x.dtype), jnp.asarray(b, x.dtype))
        if i < len(layers) - 1:
            pre.append(z)
            h = relu(z)
        else:
            h = z
    return h, pre
