"""Sound interval arithmetic as a pytree, and interval bound propagation (IBP).

An :class:`Interval` holds elementwise bounds ``lo <= x <= hi``. Every operation
returns bounds that contain the exact real-number result of applying the
operation to any point inside the operands, **including floating-point rounding**:

* Results of one rounded operation (``+``, ``-``, scalar ``*``) are moved one ulp
  outward with ``nextafter`` (round-to-nearest is within half an ulp, so one ulp
  outward always contains the exact value).
* Dot products / matrix products of length ``n`` are widened by the a-priori
  bound ``gamma_{n+2} * (|A| @ |x|) + n * tiny`` (Higham, *Accuracy and Stability of
  Numerical Algorithms*, Thm 3.5, with ``gamma_n = n u / (1 - n u)``, ``u`` the
  unit roundoff of the dtype; two more terms cover the rounding of the bound itself;
  ``tiny`` is the smallest *normal* number, the underflow error of one product when
  subnormals are flushed), then one ulp outward.
* **Subnormals.** XLA on CPU flushes subnormal results to zero and reads subnormal
  operands as zero. So no bound is ever left subnormal: an outward step that would
  land in ``(-tiny, tiny)`` goes to ``-tiny`` / ``0`` (lower) or ``0`` / ``tiny``
  (upper), and subnormal end points or weights entering an operation are moved
  outward to ``0`` / ``±tiny`` first (detected on the bits, which flushing cannot hide).
  The rules hold whether or not the back-end flushes.
* **Conversions round outward.** Python floats, float64 arrays or int64 entering a
  float32 interval (``box(0.1, 0.1, float32)``, ``x + 0.1``) give ``lo`` rounded down
  and ``hi`` rounded up when the value is not representable; a value beyond the
  dtype's range gives an infinite bound on that side (never a finite one).
* ``relu`` is exact. Other monotone functions (``monotone``) are applied to the end
  points and widened by the error bound measured for that function, dtype and
  back-end (``MONOTONE_ULPS``; ``benchmarks/interval_ulps.py`` measures it), or by
  ``ulps`` the caller gives for any other function.
* **Bad input.** Intervals passed to the public functions are checked when they are
  concrete (``lo <= hi``, no NaN: a ``ValueError`` naming the argument); inside
  ``jit`` a NaN end point or ``lo > hi`` makes the result NaN, never a finite bound.

This makes the bounds sound in float32 and float64 alike; float64 gives tighter
bounds. None of the peer libraries (auto_LiRPA, jax_verify) rounds outward.

IBP (Gowal et al., 2018): ``[z] = W [x] + b``, ``[x'] = relu([z])`` through the
``Dense_i`` layers of a Flax MLP's params (:func:`ibp`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxkit import tree as jt
from jaxkit._checks import is_concrete

__all__ = [
    "MONOTONE_FUNCTIONS",
    "MONOTONE_ULPS",
    "Interval",
    "box",
    "check",
    "contains",
    "convert",
    "dense",
    "ibp",
    "matmul",
    "mlp_layers",
    "monotone",
    "relu",
]


def _u(dtype) -> float:
    return float(jnp.finfo(dtype).eps) / 2.0


def _tiny(dtype) -> float:
    """Smallest normal number: the underflow bound that holds when subnormals are flushed."""
    return float(jnp.finfo(dtype).tiny)


def _subnormal(x):
    """True where ``x`` is a non-zero subnormal, read on the bits (a flushed comparison cannot see it)."""
    ut = {2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[jnp.dtype(x.dtype).itemsize]
    b = jax.lax.bitcast_convert_type(x, ut) & np.array(np.iinfo(ut).max >> 1, ut)  # |x|
    tiny_bits = jax.lax.bitcast_convert_type(jnp.asarray(jnp.finfo(x.dtype).tiny, x.dtype), ut)
    return (b != 0) & (b < tiny_bits)


def _down(x):
    """A value <= every real number that rounds (nearest, with or without flushing) to ``x``; never subnormal."""
    t = jnp.asarray(_tiny(x.dtype), x.dtype)
    step = jnp.nextafter(x, jnp.full_like(x, -jnp.inf))
    # x > tiny: one ulp down stays normal. 0 < x <= tiny: the true value is positive. -tiny < x <= 0 (incl. a
    # flushed result): the true value may be any number in (-tiny, tiny), so -tiny. x <= -tiny: one ulp down.
    return jnp.where(x > t, step, jnp.where(x > 0, jnp.zeros_like(x), jnp.where(x > -t, -t, step)))


def _up(x):
    return -_down(-x)


def _off_subnormal(lo, hi):
    """End points moved off the subnormal range, outward: a subnormal lower end to 0 (positive) or -tiny
    (negative), an upper end to tiny or 0; the sign is read on the bits (``jnp.signbit``)."""
    t = jnp.asarray(_tiny(lo.dtype), lo.dtype)
    lo = jnp.where(_subnormal(lo), jnp.where(jnp.signbit(lo), -t, jnp.zeros_like(lo)), lo)
    hi = jnp.where(_subnormal(hi), jnp.where(jnp.signbit(hi), jnp.zeros_like(hi), t), hi)
    return lo, hi


@struct.dataclass
class Interval:
    """Elementwise bounds ``lo <= x <= hi`` (a pytree; works under ``jit``/``vmap``).

    The operators (``+``, ``-``, ``*`` with intervals, arrays or Python numbers) are sound as described in the
    module docstring; an operand with a NaN end point or ``lo > hi`` gives a NaN result.
    """

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
        """``(lo + hi) / 2`` in plain floating point (a point inside, not a bound)."""
        return (self.lo + self.hi) / 2

    @property
    def width(self) -> jax.Array:
        """``hi - lo`` in plain floating point."""
        return self.hi - self.lo

    def __add__(self, other: "Interval | jax.Array | float") -> "Interval":
        a, o = _prep(self), _prep(_as_interval(other, self.dtype))
        return Interval(_down(a.lo + o.lo), _up(a.hi + o.hi))

    __radd__ = __add__

    def __neg__(self) -> "Interval":
        return Interval(-self.hi, -self.lo)

    def __sub__(self, other) -> "Interval":
        return self + (-_as_interval(other, self.dtype))

    def __rsub__(self, other) -> "Interval":
        return _as_interval(other, self.dtype) + (-self)

    def __mul__(self, other) -> "Interval":
        """Elementwise product with a point array/scalar or another interval."""
        a, o = _prep(self), _prep(_as_interval(other, self.dtype))
        cands = jnp.stack([a.lo * o.lo, a.lo * o.hi, a.hi * o.lo, a.hi * o.hi])
        return Interval(_down(cands.min(0)), _up(cands.max(0)))

    __rmul__ = __mul__

    def __truediv__(self, other) -> "Interval":
        """Elementwise quotient; a divisor interval holding 0 gives ``[-inf, inf]``."""
        a, o = _prep(self), _prep(_as_interval(other, self.dtype))
        cands = jnp.stack([a.lo / o.lo, a.lo / o.hi, a.hi / o.lo, a.hi / o.hi])
        zero = (o.lo <= 0) & (o.hi >= 0)
        lo = jnp.where(zero, -jnp.inf, _down(cands.min(0)))
        hi = jnp.where(zero, jnp.inf, _up(cands.max(0)))
        nan = jnp.isnan(o.lo) | jnp.isnan(o.hi) | jnp.isnan(a.lo) | jnp.isnan(a.hi)
        return Interval(jnp.where(nan, jnp.nan, lo), jnp.where(nan, jnp.nan, hi))

    def __rtruediv__(self, other) -> "Interval":
        return _as_interval(other, self.dtype) / self

    def __getitem__(self, idx) -> "Interval":
        return Interval(self.lo[idx], self.hi[idx])


def _prep(x: Interval) -> Interval:
    """An operand as the operations need it: both ends NaN where either is NaN or ``lo > hi``; no subnormal end."""
    bad = ~(x.lo <= x.hi)  # also true where either end is NaN
    lo, hi = _off_subnormal(jnp.where(bad, jnp.nan, x.lo), jnp.where(bad, jnp.nan, x.hi))
    return Interval(lo, hi)


def check(x: Any, name: str = "x") -> Interval:
    """``x`` as a valid :class:`Interval`, or a clear error.

    Concrete intervals are checked now. Inside a trace the values cannot be inspected: NaN end points stay NaN
    and inverted entries become NaN, so no finite bound comes out of them.

    Args:
      x: the value to check.
      name: the argument's name in error messages.

    Returns:
      ``x`` (inverted entries of a traced interval replaced by NaN).

    Raises:
      TypeError: ``x`` is not an ``Interval`` of floats.
      ValueError: ``lo`` / ``hi`` of different shapes, a NaN end point or ``lo > hi`` (naming ``name``).

    Examples:
      >>> iv = jaxkit.interval
      >>> iv.check(iv.Interval(jnp.array([2.0]), jnp.array([1.0])), "x0")
      Traceback (most recent call last):
      ...
      ValueError: `x0` ...
    """
    if not isinstance(x, Interval):
        raise TypeError(f"`{name}` must be a jaxkit.interval.Interval, got {type(x).__name__}.")
    if jnp.shape(x.lo) != jnp.shape(x.hi):
        raise ValueError(f"`{name}`: lo has shape {jnp.shape(x.lo)} but hi has shape {jnp.shape(x.hi)}.")
    for end in ("lo", "hi"):
        dt = jnp.result_type(getattr(x, end))
        if not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(f"`{name}.{end}` must be floating point, got {dt}.")
    if is_concrete(x.lo) and is_concrete(x.hi):
        lo, hi = np.asarray(x.lo), np.asarray(x.hi)
        for end, v in (("lo", lo), ("hi", hi)):
            if np.isnan(v).any():
                i = np.unravel_index(int(np.argmax(np.isnan(v))), v.shape) if v.ndim else ()
                raise ValueError(f"`{name}.{end}` is NaN at index {tuple(int(j) for j in i)}.")
        if np.any(lo > hi):
            i = np.unravel_index(int(np.argmax(lo > hi)), lo.shape) if lo.ndim else ()
            i = tuple(int(j) for j in i)
            raise ValueError(f"`{name}` is inverted: lo{list(i)} = {lo[i]} > hi{list(i)} = {hi[i]}.")
        return x
    return _prep(x)


def _canonical_float(dtype) -> np.dtype:
    dt = jnp.dtype(jax.dtypes.canonicalize_dtype(dtype))
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"`dtype` must be a floating-point type, got {dt}.")
    return dt


def convert(x: Any, dtype, name: str = "x") -> tuple[jax.Array, jax.Array]:
    """Outward conversion of point values to ``dtype``: ``(lo, hi)`` with ``lo <= x <= hi`` exactly.

    ``lo == hi == x`` where ``x`` is representable; otherwise ``lo`` is rounded down and ``hi`` up (Python floats,
    float64 or wide integers into float32). Beyond the range: an infinite bound on that side. Subnormal results
    are moved outward to ``0`` / ``±tiny`` (see the module docstring). NaN stays NaN.

    Args:
      x: real numbers (Python, NumPy or JAX; any shape).
      dtype: the floating dtype of the result.
      name: the argument's name in error messages.

    Returns:
      ``(lo, hi)``, arrays of ``dtype`` and ``x``'s shape.

    Raises:
      TypeError: ``x`` is not real numbers (naming ``name``).

    References:
      IEEE 754-2019, Sec. 4.3 (directed rounding, here emulated by ``nextafter`` from round-to-nearest).

    Examples:
      >>> lo, hi = jaxkit.interval.convert(0.1, jnp.float32)
      >>> bool(lo < hi), float(lo) <= 0.1 <= float(hi)
      (True, True)
    """
    dtype = _canonical_float(dtype)
    kind = np.dtype(jnp.result_type(x)).kind if hasattr(x, "dtype") else None
    if kind is not None and kind not in "iuf":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {jnp.result_type(x)}.")
    if is_concrete(x):
        src = np.asarray(x)
        if src.dtype.kind not in "iuf":
            raise TypeError(f"`{name}` must hold real numbers, got dtype {src.dtype}.")
        if src.dtype == dtype:
            lo = hi = src
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                c = src.astype(dtype)
                back, exact = c.astype(np.longdouble), src.astype(np.longdouble)
                lo = np.where(back > exact, np.nextafter(c, np.array(-np.inf, dtype)), c).astype(dtype)
                hi = np.where(back < exact, np.nextafter(c, np.array(np.inf, dtype)), c).astype(dtype)
        tiny = np.finfo(dtype).tiny
        sub_lo, sub_hi = (lo != 0) & (np.abs(lo) < tiny), (hi != 0) & (np.abs(hi) < tiny)
        lo = np.where(sub_lo, np.where(lo > 0, 0.0, -tiny), lo).astype(dtype)
        hi = np.where(sub_hi, np.where(hi > 0, tiny, -0.0), hi).astype(dtype)
        return jnp.asarray(lo, dtype), jnp.asarray(hi, dtype)
    src = jnp.asarray(x)
    sd = jnp.dtype(src.dtype)
    c = src.astype(dtype)
    if sd == dtype:
        lo = hi = c
    elif jnp.issubdtype(sd, jnp.floating) and jnp.finfo(sd).bits <= jnp.finfo(dtype).bits:
        lo = hi = c  # widening a float is exact
    elif jnp.issubdtype(sd, jnp.floating):
        back = c.astype(sd)
        lo = jnp.where(back > src, jnp.nextafter(c, jnp.full_like(c, -jnp.inf)), c)
        hi = jnp.where(back < src, jnp.nextafter(c, jnp.full_like(c, jnp.inf)), c)
    elif jnp.dtype(sd).itemsize * 8 <= jnp.finfo(dtype).nmant + 1:
        lo = hi = c  # small integers are exact
    else:  # wide integers inside a trace: one ulp either way (rounding is within half an ulp)
        lo, hi = jnp.nextafter(c, jnp.full_like(c, -jnp.inf)), jnp.nextafter(c, jnp.full_like(c, jnp.inf))
    return _off_subnormal(lo, hi)


def _as_interval(x, dtype, name: str = "other") -> Interval:
    if isinstance(x, Interval):
        return x
    return Interval(*convert(x, dtype, name))


def box(lo, hi, dtype=None) -> Interval:
    """An input box ``[lo, hi]``, converted outward to ``dtype`` (default: JAX's default float).

    Args:
      lo: lower end points (broadcast with ``hi``).
      hi: upper end points.
      dtype: the interval's float dtype; ``None``: JAX's default float.

    Returns:
      An :class:`Interval` containing every point of the real box (rounded outward, see :func:`convert`).

    Raises:
      ValueError: ``lo`` / ``hi`` empty, not finite, of shapes that do not broadcast, or ``lo > hi``.

    References:
      Moore, Kearfott & Cloud, *Introduction to Interval Analysis*, SIAM 2009, Ch. 2 (intervals and boxes).

    Examples:
      >>> x = jaxkit.interval.box(jnp.array([-1.0, 0.0]), jnp.array([1.0, 2.0]))
      >>> print(x.lo, x.hi)
      [-1.  0.] [1. 2.]
    """
    for name, v in (("lo", lo), ("hi", hi)):
        k = np.asarray(v).dtype.kind if not isinstance(v, jax.Array) else np.dtype(v.dtype).kind
        if k not in "iuf":
            raise TypeError(f"box: `{name}` must hold real numbers, got dtype {np.asarray(v).dtype}.")
    try:
        lo_np, hi_np = np.broadcast_arrays(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
    except ValueError as e:
        raise ValueError(f"box: `lo` (shape {np.shape(lo)}) and `hi` (shape {np.shape(hi)}) do not broadcast.") from e
    except TypeError as e:
        raise TypeError(f"box: `lo` and `hi` must be real numbers or arrays: {e}") from e
    if lo_np.size == 0:
        raise ValueError("box: `lo`/`hi` are empty; expected one bound per input.")
    if not (np.all(np.isfinite(lo_np)) and np.all(np.isfinite(hi_np))):
        raise ValueError("box: `lo` and `hi` must be finite.")
    if np.any(lo_np > hi_np):
        i = int(np.argmax(lo_np > hi_np))
        raise ValueError(f"box is inverted: lo[{i}] = {lo_np.flat[i]} > hi[{i}] = {hi_np.flat[i]}.")
    dtype = _canonical_float(dtype or jnp.result_type(float))
    # the caller's own values (e.g. float32 arrays) are converted exactly; float64 ones outward
    src_lo = lo if isinstance(lo, (np.ndarray, jax.Array)) and np.asarray(lo).dtype.kind == "f" else lo_np
    src_hi = hi if isinstance(hi, (np.ndarray, jax.Array)) and np.asarray(hi).dtype.kind == "f" else hi_np
    src_lo, src_hi = np.broadcast_arrays(np.asarray(src_lo), np.asarray(src_hi))
    return Interval(convert(src_lo, dtype, "lo")[0], convert(src_hi, dtype, "hi")[1])


def matmul(w: jax.Array, x: Interval) -> Interval:
    """Sound bounds on ``w @ v`` for every ``v`` in the interval ``x``.

    ``lo = W+ @ x.lo + W- @ x.hi - e``, ``hi = W+ @ x.hi + W- @ x.lo + e`` (``W+``, ``W-`` the positive and
    negative parts of ``w``) with the a-priori rounding bound ``e = gamma_{n+2} |w| @ max(|x.lo|, |x.hi|) + n tiny``,
    ``gamma_n = n u / (1 - n u)``; then one ulp outward.
    ``w`` of a wider type than ``x`` (float64 weights, float32 interval) is converted outward, and the
    conversion's error is part of the bound.

    Args:
      w: a point matrix ``[m, n]``.
      x: an interval of shape ``[n]`` or ``[n, k]``.

    Returns:
      An :class:`Interval` of shape ``[m]`` or ``[m, k]`` containing ``w @ v`` for every ``v`` in ``x``.

    Raises:
      TypeError: ``w`` not real, ``x`` not an interval.
      ValueError: ``w`` not a 2-D matrix, inner sizes that differ, or an invalid ``x`` (see :func:`check`).

    References:
      Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM 2002, Thm 3.5 (the dot product's
      error bound); Moore, Kearfott & Cloud, *Introduction to Interval Analysis*, SIAM 2009, Ch. 2.

    Examples:
      >>> x = jaxkit.interval.box(jnp.array([-1.0, 0.0]), jnp.array([1.0, 2.0]))
      >>> y = jaxkit.interval.matmul(jnp.array([[1.0, -1.0]]), x)  # [-3, 1], widened for rounding
      >>> bool(y.lo[0] <= -3.0), bool(y.hi[0] >= 1.0), round(float(y.lo[0]), 3), round(float(y.hi[0]), 3)
      (True, True, -3.0, 1.0)
    """
    x = check(x, "x")
    _check_matrix(w, "w")
    if len(x.shape) not in (1, 2) or x.shape[:1] != jnp.shape(w)[1:]:
        raise ValueError(
            f"`w` has {jnp.shape(w)[1]} columns but `x` has shape {x.shape}; expected x of shape [n] "
            f"or [n, k] with n = {jnp.shape(w)[1]}."
        )
    return _matmul(w, x, "w")


def _check_matrix(w, name):
    if jnp.ndim(w) != 2:
        raise ValueError(f"`{name}` must be a 2-D matrix, got shape {jnp.shape(w)}.")
    if 0 in jnp.shape(w):
        raise ValueError(f"`{name}` is empty (shape {jnp.shape(w)}).")


def _matmul(w, x: Interval, name: str) -> Interval:
    x = _prep(x)
    dtype = x.dtype
    w_lo, w_hi = convert(w, dtype, name)
    rad = w_hi - w_lo  # <= one ulp (exact: Sterbenz); 0 where the conversion was exact
    wp, wn = jnp.maximum(w_lo, 0), jnp.minimum(w_lo, 0)  # w_lo is never subnormal (convert moves it)
    lo = wp @ x.lo + wn @ x.hi
    hi = wp @ x.hi + wn @ x.lo
    n = jnp.shape(w)[-1]
    u = _u(dtype)
    gamma = (n + 2) * u / (1 - (n + 2) * u)
    m = jnp.maximum(jnp.abs(x.lo), jnp.abs(x.hi))
    err = gamma * (jnp.abs(w_lo) @ m) + (1 + gamma) * (rad @ m) + n * _tiny(dtype)
    return Interval(_down(lo - err), _up(hi + err))


def dense(x: Interval, kernel: jax.Array, bias: jax.Array | None = None) -> Interval:
    """Bounds on a Flax ``nn.Dense`` layer, ``x @ kernel + bias``, for every point of ``x``.

    ``[z] = kernel^T [x] + bias`` by :func:`matmul`, the bias added with outward rounding.

    Args:
      x: the input interval ``[in]`` (or ``[in, k]``).
      kernel: the layer's ``[in, out]`` kernel (Flax layout).
      bias: its ``[out]`` bias, or ``None``.

    Returns:
      An :class:`Interval` of shape ``[out]`` (or ``[out, k]``).

    Raises:
      TypeError: non-real weights or ``x`` not an interval.
      ValueError: an invalid ``x`` (see :func:`check`), ``kernel`` not ``[len(x), out]``, ``bias`` not ``[out]``.

    References:
      Gowal et al., "On the Effectiveness of Interval Bound Propagation for Training Verifiably Robust Models",
      arXiv:1810.12715, 2018, Eq. (6) (an affine layer's interval bounds).

    Examples:
      >>> x = jaxkit.interval.box(jnp.array([-1.0, 0.0]), jnp.array([1.0, 2.0]))
      >>> z = jaxkit.interval.dense(x, jnp.array([[1.0], [-1.0]]), jnp.array([0.5]))
      >>> round(float(z.lo[0]), 3), round(float(z.hi[0]), 3)  # [-2.5, 1.5], widened by a few ulps
      (-2.5, 1.5)
    """
    x = check(x, "x")
    _check_matrix(kernel, "kernel")
    if len(x.shape) not in (1, 2) or x.shape[0] != jnp.shape(kernel)[0]:
        raise ValueError(f"`kernel` has {jnp.shape(kernel)[0]} rows (inputs) but `x` has shape {x.shape}.")
    if bias is not None and jnp.shape(bias) != (jnp.shape(kernel)[1],):
        raise ValueError(f"`bias` must have shape ({jnp.shape(kernel)[1]},), got {jnp.shape(bias)}.")
    return _dense(x, kernel, bias)


def _dense(x: Interval, kernel, bias) -> Interval:
    z = _matmul(kernel.T if hasattr(kernel, "T") else np.asarray(kernel).T, x, "kernel")  # keeps float64 weights
    if bias is None:
        return z
    b = convert(bias, z.dtype, "bias")
    if len(z.shape) > 1:  # x of shape [n, k]: the bias applies along the output axis (rows)
        b = tuple(v.reshape(v.shape + (1,) * (len(z.shape) - 1)) for v in b)
    return z + Interval(*b)


def relu(x: Interval) -> Interval:
    """The ReLU of an interval, ``[max(0, lo), max(0, hi)]`` (exact: no rounding).

    Args:
      x: the input interval.

    Returns:
      An :class:`Interval` of ``x``'s shape.

    Raises:
      TypeError: ``x`` not an interval.
      ValueError: an invalid ``x`` (see :func:`check`).

    References:
      Gowal et al., arXiv:1810.12715, 2018, Sec. 3 (monotone activations map end points to end points).

    Examples:
      >>> x = jaxkit.interval.box(jnp.array([-1.0, -2.0]), jnp.array([1.0, -1.0]))
      >>> y = jaxkit.interval.relu(x)
      >>> print(y.lo, y.hi)
      [0. 0.] [1. 0.]
    """
    return _relu(check(x, "x"))


def _relu(x: Interval) -> Interval:
    return Interval(jnp.maximum(x.lo, 0), jnp.maximum(x.hi, 0))


# name: (function, increasing). ``monotone`` knows the error bound of these (MONOTONE_ULPS); any other monotone
# function needs the caller's own ``ulps``.
MONOTONE_FUNCTIONS: dict[str, tuple[Callable[[jax.Array], jax.Array], bool]] = {
    "exp": (jnp.exp, True),
    "expm1": (jnp.expm1, True),
    "log": (jnp.log, True),
    "log1p": (jnp.log1p, True),
    "tanh": (jnp.tanh, True),
    "sigmoid": (jax.nn.sigmoid, True),
    "softplus": (jax.nn.softplus, True),
    "arctan": (jnp.arctan, True),
    "sqrt": (jnp.sqrt, True),
}
_ALIASES = {
    jax.lax.logistic: "sigmoid",
    jax.lax.tanh: "tanh",
    jax.lax.exp: "exp",
    jax.lax.log: "log",
    jax.lax.sqrt: "sqrt",
    jax.lax.log1p: "log1p",
    jax.lax.expm1: "expm1",
}

# Outward steps (``nextafter``, the module's subnormal-safe rounding) that contain the exact value of XLA's
# functions: measured by benchmarks/interval_ulps.py (2**21 points per function and dtype over the whole range,
# against float64 / longdouble references; jax 0.10.2, XLA:CPU, x86-64), at XLA's default and at
# --xla_backend_optimization_level=0 (code generation differs: arctan is less accurate at -O0), stored as
# 2 x the larger measurement + 2 for what a finite sweep cannot see. Measured steps, float32 / float64: exp 4 / 2,
# expm1 6 / 5, log 2 / 1, log1p 3 / 127 (XLA's float64 log1p is off by up to ~129 ulps near x = sqrt(2)/2 - 1),
# tanh 5 / 7, sigmoid 3 / 3, softplus 3 / 3, arctan 6 / 4 (1 / 1 at the default level), sqrt 1 / 1 (correctly
# rounded). Other back-ends or flags: run the script there and pass ``ulps=``.
MONOTONE_ULPS: dict[str, dict[str, dict[str, int]]] = {
    "cpu": {
        "float32": {
            "exp": 10,
            "expm1": 14,
            "log": 6,
            "log1p": 8,
            "tanh": 12,
            "sigmoid": 8,
            "softplus": 8,
            "arctan": 14,
            "sqrt": 4,
        },
        "float64": {
            "exp": 6,
            "expm1": 12,
            "log": 4,
            "log1p": 256,
            "tanh": 16,
            "sigmoid": 8,
            "softplus": 8,
            "arctan": 10,
            "sqrt": 4,
        },
    }
}


def _monotone_name(fn) -> str | None:
    if isinstance(fn, str):
        return fn if fn in MONOTONE_FUNCTIONS else None
    for name, (f, _) in MONOTONE_FUNCTIONS.items():
        if f is fn:
            return name
    return _ALIASES.get(fn)


def monotone(
    fn: Callable[[jax.Array], jax.Array] | str, x: Interval, increasing: bool | None = None, ulps: int | None = None
) -> Interval:
    """Bounds for an elementwise monotone function, applied to the end points and widened outward.

    Args:
      fn: one of ``MONOTONE_FUNCTIONS`` (by name, e.g. ``"tanh"``, or the function itself, e.g. ``jnp.tanh``),
        or any monotone callable together with ``ulps``.
      x: the input interval (checked as :func:`check` does).
      increasing: whether ``fn`` increases; default: the known function's direction (``True`` for a callable
        given with ``ulps``).
      ulps: outward ``nextafter`` steps; default: the measured bound for ``fn``, ``x.dtype`` and the default
        back-end (``MONOTONE_ULPS``).

    Returns:
      An :class:`Interval` containing ``fn(v)`` for every ``v`` in ``x``.

    Raises:
      ValueError: no measured bound for ``fn`` on this dtype / back-end and no ``ulps``; ``ulps < 0``.

    References:
      Moore, Kearfott & Cloud, *Introduction to Interval Analysis*, SIAM 2009, Sec. 5.1 (monotone functions at
      the end points); the widening is measured by ``benchmarks/interval_ulps.py``.

    Examples:
      >>> y = jaxkit.interval.monotone("tanh", jaxkit.interval.box(0.0, 1.0))
      >>> bool(y.lo <= 0.0), bool(y.hi >= np.tanh(1.0)), round(float(y.hi), 4)
      (True, True, 0.7616)
    """
    name = _monotone_name(fn)
    if isinstance(fn, str) and name is None:
        raise ValueError(
            f"`fn`: unknown function {fn!r}; known: {sorted(MONOTONE_FUNCTIONS)} (or pass a callable and `ulps`)."
        )
    x = check(x, "x")
    if ulps is None:
        backend, dt = jax.default_backend(), jnp.dtype(x.dtype).name
        ulps = MONOTONE_ULPS.get(backend, {}).get(dt, {}).get(name) if name else None
        if ulps is None:
            raise ValueError(
                f"`ulps`: no measured error bound for {name or getattr(fn, '__name__', fn)!r} in {dt} on "
                f"{backend!r} (measured: {sorted(MONOTONE_ULPS.get(backend, {}).get(dt, {}))}); pass ulps= "
                "(benchmarks/interval_ulps.py measures it)."
            )
    if int(ulps) < 0:
        raise ValueError(f"`ulps` must be >= 0, got {ulps}.")
    f: Callable = MONOTONE_FUNCTIONS[name][0] if name else cast(Callable, fn)  # a str fn has a name (checked)
    if increasing is None:
        increasing = MONOTONE_FUNCTIONS[name][1] if name else True
    x = _prep(x)
    a, b = f(x.lo), f(x.hi)
    lo, hi = (a, b) if increasing else (b, a)
    lo, hi = jax.lax.fori_loop(0, int(ulps), _widen, (lo, hi))
    return Interval(lo, hi)


def _widen(_, ends):  # module level: one compiled loop per shape and dtype, shared by every function
    return _down(ends[0]), _up(ends[1])


def contains(outer: Interval, x: jax.Array) -> jax.Array:
    """Whether every element of the point array ``x`` lies in ``outer`` (False if anything is NaN).

    Args:
      outer: the interval.
      x: a point array of ``outer``'s shape (or broadcasting to it).

    Returns:
      A boolean scalar array (jittable).

    Raises:
      TypeError: ``outer`` not an interval.
      ValueError: an invalid concrete ``outer`` (see :func:`check`).

    Examples:
      >>> x = jaxkit.interval.box(jnp.array([-1.0, 0.0]), jnp.array([1.0, 2.0]))
      >>> inside = jaxkit.interval.contains
      >>> bool(inside(x, jnp.array([0.0, 1.0]))), bool(inside(x, jnp.array([0.0, 3.0])))
      (True, False)
    """
    outer = check(outer, "outer")
    return jnp.all((outer.lo <= x) & (x <= outer.hi))


def mlp_layers(params: Any) -> list[tuple[jax.Array, jax.Array]]:
    """``[(kernel, bias), ...]`` of a Flax MLP's ``Dense_0 ... Dense_{L-1}`` layers, validated.

    Args:
      params: Linen params or variables (``{"params": ...}``), NNX state, or a list of ``(kernel, bias)`` pairs.

    Returns:
      The layers in order, kernels ``[in, out]`` and biases ``[out]``.

    Raises:
      ValueError: anything that is not a chain of dense layers with matching shapes.

    Examples:
      >>> mlp = jaxkit.models.MLP((4, 2))
      >>> params = mlp.init(jax.random.key(0), jnp.zeros((1, 3)))
      >>> [k.shape for k, b in jaxkit.interval.mlp_layers(params)]
      [(3, 4), (4, 2)]
    """
    if isinstance(params, (list, tuple)):
        layers = [tuple(p) for p in params]
    else:
        p = jt.params_of(params)
        if not isinstance(p, dict) and not hasattr(p, "keys"):
            raise ValueError(
                f"`params` must be Flax MLP params (Dense_i with kernel and bias), got {type(p).__name__}."
            )
        dense_keys = [k for k in p.keys() if str(k).startswith("Dense_")]
        other = [k for k in p.keys() if k not in dense_keys]
        if other or not dense_keys:
            raise ValueError(
                f"`params` is not an MLP of nn.Dense layers: expected only keys Dense_0..Dense_{{L-1}}, got "
                f"{list(p.keys())}."
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
        # Shapes and dtypes only: arrays stay as given (float64 numpy must not pass through a float32 jnp.asarray).
        kshape = np.shape(kern)
        if len(kshape) != 2:
            raise ValueError(f"`params` layer {i}: kernel must be 2-D [in, out] (a Dense layer), got shape {kshape}.")
        if 0 in kshape:
            raise ValueError(f"`params` layer {i}: kernel is empty (shape {kshape}).")
        if bias is None:
            bias = np.zeros(kshape[1], np.result_type(kern))
        if np.shape(bias) != (kshape[1],):
            raise ValueError(
                f"`params` layer {i}: bias shape {np.shape(bias)} does not match kernel output size {kshape[1]}."
            )
        for what, v in (("kernel", kern), ("bias", bias)):
            if np.dtype(jnp.result_type(v)).kind not in "iuf":
                raise TypeError(f"`params` layer {i}: {what} must hold real numbers, got {jnp.result_type(v)}.")
        if i > 0 and np.shape(out[-1][0])[1] != kshape[0]:
            raise ValueError(
                f"`params` layer {i}: kernel expects {kshape[0]} inputs but layer {i - 1} has "
                f"{np.shape(out[-1][0])[1]} outputs."
            )
        out.append((kern, bias))
    return out


def ibp(params: Any, x: Interval, activation: str = "relu") -> tuple[Interval, list[Interval]]:
    """Interval bound propagation (IBP) through an MLP: bounds on its output over an input box.

    ``[z_i] = W_i [x_{i-1}] + b_i`` (:func:`dense`), ``[x_i] = relu([z_i])``; no activation after the last layer
    (as :class:`jaxkit.models.MLP`).

    Args:
      params: the MLP's params (anything :func:`mlp_layers` accepts).
      x: the input interval ``[in]``.
      activation: ``"relu"`` (the only one supported).

    Returns:
      ``(output, pre_activations)``: the output's :class:`Interval`, and ``pre_activations[i]`` bounding the
      input of the i-th hidden ReLU.

    Raises:
      ValueError: params that are not an MLP, an input of the wrong size, an unknown ``activation``.
      TypeError: ``x`` not an interval.

    References:
      Gowal et al., "On the Effectiveness of Interval Bound Propagation for Training Verifiably Robust Models",
      arXiv:1810.12715, 2018, Sec. 3, Eq. (6).

    Examples:
      >>> mlp = jaxkit.models.MLP((8, 2))
      >>> params = mlp.init(jax.random.key(0), jnp.zeros((1, 3)))
      >>> x = jaxkit.interval.box(-0.1 * jnp.ones(3), 0.1 * jnp.ones(3))
      >>> out, pre = jaxkit.interval.ibp(params, x)
      >>> y = mlp.apply(params, jnp.zeros((1, 3)))[0]  # the box's centre stays inside the bounds
      >>> bool(jaxkit.interval.contains(out, y)), len(pre)
      (True, 1)
    """
    if activation != "relu":
        raise ValueError(f"`activation` must be 'relu', got {activation!r}.")
    x = check(x, "x")
    layers = mlp_layers(params)
    if len(x.shape) != 1 or x.shape[0] != np.shape(layers[0][0])[0]:
        raise ValueError(
            f"`x` must be an interval of shape ({np.shape(layers[0][0])[0]},) (the network's inputs; "
            f"vmap for a batch), got shape {x.shape}."
        )
    pre = []
    h = x
    for i, (k, b) in enumerate(layers):
        z = _dense(h, k, b)  # weights of another dtype are converted outward inside
        if i < len(layers) - 1:
            pre.append(z)
            h = _relu(z)
        else:
            h = z
    return h, pre
