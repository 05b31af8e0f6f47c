"""Input checks shared by the public boundaries (chex-style: small, one rule each, public JAX API only).

Every check names the argument and says what was expected, so a user never meets a deep numpy/XLA trace or a
plausible finite number computed from bad input. Value checks (NaN, ranges) run only on concrete inputs (outside
``jit``); inside a trace the functions themselves make NaN come out as NaN (see :func:`nan_if`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax.errors import FlaxError


def is_concrete(x) -> bool:
    """True when ``x`` has a value now (not a tracer inside ``jit`` / ``vmap`` / ``grad``): value checks can run."""
    try:
        np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False
    return True


def _where(mask: np.ndarray) -> str:
    idx = np.unravel_index(int(np.argmax(mask)), mask.shape) if mask.ndim else ()
    return f"index {tuple(int(i) for i in idx)}" if idx else "the value"


def array(
    x: Any,
    name: str,
    *,
    ndim: int | Iterable[int] | None = None,
    min_ndim: int | None = None,
    kind: str | None = None,
    nonempty: bool = False,
) -> Any:
    """``x`` as an array, checked: rank ``ndim`` (an int or allowed ints) / at least ``min_ndim``, dtype
    ``kind`` (``"f"`` floating, ``"i"`` integer, ``"b"`` bool, ``"r"`` real: int / float / bool, ``"n"`` any
    number incl. complex), no empty leading axis.

    Concrete numpy input stays numpy (no device transfer); everything else goes through ``jnp.asarray``.
    Raises ``TypeError`` / ``ValueError`` naming ``name``.
    """
    if isinstance(x, (np.ndarray, np.generic, jax.Array)):  # tracers are jax.Arrays
        a = x
    else:
        try:
            a = np.asarray(x)
        except (TypeError, ValueError) as e:
            raise TypeError(f"`{name}` must be an array, got {type(x).__name__}.") from e
        if a.dtype == object:
            raise TypeError(f"`{name}` must be a numeric array, got {type(x).__name__} of mixed/ragged items.")
    shape, dt = jnp.shape(a), jnp.result_type(a)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(shape) not in allowed:
            want = allowed[0] if len(allowed) == 1 else " or ".join(map(str, allowed))
            raise ValueError(f"`{name}` must have {want} dimension(s), got shape {tuple(shape)}.")
    if min_ndim is not None and len(shape) < min_ndim:
        raise ValueError(f"`{name}` must have at least {min_ndim} dimension(s), got shape {tuple(shape)}.")
    if kind is not None:
        real = jnp.issubdtype(dt, jnp.integer) or jnp.issubdtype(dt, jnp.floating) or dt == jnp.bool_
        ok = {
            "f": jnp.issubdtype(dt, jnp.floating),
            "i": jnp.issubdtype(dt, jnp.integer),
            "b": dt == jnp.bool_,
            "r": real,
            "n": jnp.issubdtype(dt, jnp.number) or dt == jnp.bool_,
        }[kind]
        if not ok:
            want = {
                "f": "floating-point",
                "i": "integer",
                "b": "boolean",
                "r": "real (int, float or bool)",
                "n": "numeric",
            }[kind]
            raise TypeError(f"`{name}` must be {want}, got dtype {dt}.")
    if nonempty and (len(shape) == 0 or shape[0] == 0 or int(np.prod(shape)) == 0):
        raise ValueError(f"`{name}` is empty (shape {tuple(shape)}); expected at least one sample.")
    return a


def finite(x: Any, name: str, *, allow_inf: bool = False) -> Any:
    """Raises ``ValueError`` naming ``name`` if concrete ``x`` holds NaN (or ±inf unless ``allow_inf``)."""
    if is_concrete(x):
        v = np.asarray(x)
        if v.dtype.kind in "fc":
            bad = np.isnan(v) if allow_inf else ~np.isfinite(v)
            if bad.any():
                what = "NaN" if np.isnan(v[bad]).any() else "infinite"
                raise ValueError(f"`{name}` is {what} at {_where(bad)}; expected finite values.")
    return x


def no_nan(x: Any, name: str) -> Any:
    """``finite`` that lets ±inf through (scores, logits that may saturate)."""
    return finite(x, name, allow_inf=True)


def tree_finite(tree: Any, name: str) -> Any:
    """``finite`` over every floating leaf of a pytree (e.g. parameters), naming the leaf's path."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if hasattr(leaf, "dtype") or isinstance(leaf, float):
            finite(leaf, f"{name}{jax.tree_util.keystr(path)}")
    return tree


def positive_int(v: Any, name: str, *, minimum: int = 1) -> int:
    """``int(v)`` if it is an integer >= ``minimum``; else ``ValueError`` / ``TypeError`` naming ``name``."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        else:
            raise TypeError(f"`{name}` must be an integer, got {v!r}.")
    if int(v) < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {v}.")
    return int(v)


def number(
    v: Any, name: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False
) -> float:
    """``float(v)`` if finite and in the range (closed unless ``*_open``); else ``ValueError`` naming ``name``."""
    try:
        f = float(v)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`{name}` must be a number, got {v!r}.") from e
    if not np.isfinite(f):
        raise ValueError(f"`{name}` must be finite, got {v}.")
    if (lo is not None and (f < lo or (lo_open and f == lo))) or (hi is not None and (f > hi or (hi_open and f == hi))):
        lb = "(" if lo_open else "["
        ub = ")" if hi_open else "]"
        raise ValueError(
            f"`{name}` must lie in {lb}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{ub}, got {v}."
        )
    return f


def probability(v: Any, name: str) -> float:
    """A number in [0, 1]."""
    return number(v, name, lo=0.0, hi=1.0)


def one_of(v: Any, name: str, options: Iterable[Any]) -> Any:
    """``v`` if it is one of ``options``; else ``ValueError`` listing them."""
    options = tuple(options)
    if v not in options:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, options))}; got {v!r}.")
    return v


def labels(y: Any, name: str, num_classes: int | None = None) -> Any:
    """Integer class labels in ``[0, num_classes)`` (range checked when concrete and ``num_classes`` given)."""
    y = array(y, name, kind="i")
    if num_classes is not None and is_concrete(y):
        v = np.asarray(y)
        bad = (v < 0) | (v >= num_classes)
        if bad.any():
            raise ValueError(
                f"`{name}` must hold class indices in [0, {num_classes}), got {v[bad].flat[0]} at {_where(bad)}."
            )
    return y


def same_leading(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Same number of rows (samples) in ``a`` and ``b``."""
    na, nb = jnp.shape(a)[:1], jnp.shape(b)[:1]
    if na != nb:
        raise ValueError(
            f"`{name_a}` has {na[0] if na else 'no'} rows but `{name_b}` has {nb[0] if nb else 'no'}; "
            "expected one per sample in both."
        )


@functools.lru_cache(maxsize=128)
def _out_shape(fn, params_def, params_specs, x_spec, name) -> tuple:
    params = jax.tree.unflatten(params_def, [jax.ShapeDtypeStruct(s, d) for s, d in params_specs])
    try:
        out = jax.eval_shape(fn, params, jax.ShapeDtypeStruct(*x_spec))
    except (FlaxError, TypeError, ValueError) as e:  # the model cannot take inputs of this shape
        raise ValueError(
            f"`{name}` of shape {x_spec[0]} does not fit the model: {type(e).__name__}: {str(e)[:200]}"
        ) from e
    return tuple(getattr(out, "shape", ()))


def fits(fn, params: Any, x: Any, name: str = "x") -> tuple:
    """The output shape of ``fn(params, x)`` (abstract evaluation, cached per shapes and dtypes), or a ValueError
    naming ``name`` when the model cannot take inputs of ``x``'s shape. Works on tracers too."""
    leaves, tdef = jax.tree.flatten(params)
    key = (
        tdef,
        tuple((tuple(jnp.shape(v)), jnp.result_type(v)) for v in leaves),
        (tuple(jnp.shape(x)), jnp.result_type(x)),
        name,
    )
    try:
        hash(fn)
        hash(key)
    except TypeError:  # unhashable model wrapper or static leaves: evaluate without the cache
        return _out_shape.__wrapped__(fn, *key)
    return _out_shape(fn, *key)


def nan_if(bad: Any, x: Any) -> Any:
    """``x`` with NaN wherever ``bad`` holds (broadcast): how a traced function reports invalid input."""
    return jnp.where(bad, jnp.nan, x)


def float_batch(x, name="x"):
    """A non-empty floating batch ``[N, ...]``, finite when concrete."""
    x = array(x, name, min_ndim=1, kind="f", nonempty=True)
    finite(x, name)
    return jnp.asarray(x)


def nan_rows(x, out):
    """``out`` ``[N, ...]`` with NaN rows where the input row ``x[i]`` holds NaN (inside a trace: a ReLU's
    derivative at NaN is 0, so a gradient can come out finite from a NaN input)."""
    bad = jnp.isnan(x.reshape(x.shape[0], -1)).any(-1)
    return jnp.where(bad.reshape((-1,) + (1,) * (out.ndim - 1)), jnp.nan, out)


def batch_and_labels(x, y):
    x = float_batch(x)
    y = jnp.asarray(array(y, "y", ndim=1, kind="i"))
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"`x` has {x.shape[0]} inputs (shape {x.shape}) but `y` has {y.shape[0]} labels; expected "
            "one label per input."
        )
    return x, y


def logits(z, name="logits"):
    z = jnp.asarray(array(z, name, min_ndim=1, kind="f"))
    if z.size == 0 and z.shape[-1:] != (0,):
        raise ValueError(f"`{name}` is empty (shape {z.shape}).")
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"`{name}` must have a last axis of >= 2 classes, got shape {z.shape}.")
    if not jnp.issubdtype(z.dtype, jnp.floating):
        raise ValueError(f"`{name}` must be floating point, got {z.dtype}.")
    finite(z, name)
    return z


def labels_for(logits, labels, name="labels"):
    """Integer labels, one per row of ``logits`` (``logits.shape[:-1]``)."""
    if logits.size == 0:
        raise ValueError(f"`logits` is empty (shape {logits.shape}); expected at least one row.")
    lab = array(labels, name, kind="i")
    if jnp.shape(lab) != logits.shape[:-1]:
        raise ValueError(
            f"`{name}` must have shape {logits.shape[:-1]} (one per row of `logits`), got {jnp.shape(lab)}."
        )
    if is_concrete(lab) and np.size(lab) and (np.min(lab) < 0 or np.max(lab) >= logits.shape[-1]):
        # take_along_axis would clip them silently (or read NaN): a plausible number from a wrong label
        raise ValueError(
            f"`{name}` must lie in [0, {logits.shape[-1]}) (one of the logits' classes), got range "
            f"[{np.min(lab)}, {np.max(lab)}]."
        )
    return jnp.asarray(lab)


def class_labels(labels, n, num_classes=None, ref="x"):
    """Integer class labels ``[n]`` in ``[0, num_classes)`` -> ``(labels int32, num_classes)``; ``num_classes``
    is inferred from concrete labels when ``None``; ``ref`` names the array the labels go with."""
    y = jnp.asarray(array(labels, "labels", kind="i"))
    if n < 0:
        raise ValueError(f"`labels` must be a vector of class indices, got shape {y.shape}.")
    if y.shape[0:1] == (0,) or n == 0:
        raise ValueError(f"`labels` is empty (shape {y.shape}); expected one class per example.")
    if y.shape != (n,):
        raise ValueError(f"`labels` must have shape ({n},) (one class per row of `{ref}`), got {y.shape}.")
    if num_classes is None:
        if not is_concrete(y):
            raise ValueError("`num_classes` must be given when `labels` is traced.")
        num_classes = int(np.max(np.asarray(y))) + 1
    if is_concrete(y) and y.size:
        ya = np.asarray(y)
        if ya.min() < 0 or ya.max() >= int(num_classes):
            raise ValueError(f"`labels` must lie in [0, {num_classes}), got range [{ya.min()}, {ya.max()}].")
    return y.astype(jnp.int32), int(num_classes)


def logit_matrix(logits, min_rows=1):
    """``(batch, classes)`` floating logits with at least ``min_rows`` rows and no NaN."""
    z = array(logits, "logits", ndim=2, kind="f")
    if z.shape[0] < min_rows or z.shape[1] == 0:
        raise ValueError(f"`logits` must be (batch, classes) with at least {min_rows} row(s), got shape {z.shape}.")
    no_nan(z, "logits")
    return jnp.asarray(z)


def real_batch(x, name, ndim=None):
    """A non-empty real batch ``[N, ...]`` as float32, finite when concrete."""
    a = array(x, name, min_ndim=1 if ndim is None else None, ndim=ndim, kind="r", nonempty=True)
    finite(a, name)
    return jnp.asarray(a, jnp.float32)


def real_dtype(x, name: str) -> None:
    """``TypeError`` unless ``x`` holds real numbers (bool, int, unsigned or float dtype)."""
    kind = np.dtype(getattr(x, "dtype", None) or np.asarray(x).dtype).kind
    if kind not in "iufb":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {getattr(x, 'dtype', np.asarray(x).dtype)}.")


def binary(m, name: str) -> np.ndarray:
    """A boolean mask / label array: bool, or numbers that are all 0 or 1."""
    a = np.asarray(m)
    if a.dtype != bool:
        real_dtype(a, name)
        if not np.all((a == 0) | (a == 1)):
            raise ValueError(f"`{name}` must be boolean (or 0/1), got values such as {a[(a != 0) & (a != 1)].flat[0]}.")
    return a.astype(bool)


def per_example(x, name, n=None, dtype=None, ref="y_true", values=None):
    """A vector with one value per example: real, non-empty, NaN-free when concrete; ``values="binary"`` (0/1)
    or ``"unit"`` (in [0, 1]) are checked when concrete too."""
    a = array(x, name, ndim=1, kind="r")
    a = jnp.asarray(a) if dtype is None else jnp.asarray(a, dtype)
    if a.shape[0] == 0:
        raise ValueError(f"`{name}` is empty; expected one value per example.")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"`{name}` has {a.shape[0]} entries but `{ref}` has {n}; they must match.")
    if is_concrete(a):
        v = np.asarray(a)
        if np.isnan(v).any():
            raise ValueError(f"`{name}` holds NaN (first at index {int(np.argmax(np.isnan(v)))}).")
        if values == "binary" and not np.all((v == 0) | (v == 1)):
            raise ValueError(f"`{name}` must hold 0/1 labels, got values such as {v[(v != 0) & (v != 1)][0]}.")
        if values == "unit" and not np.all((v >= 0) & (v <= 1)):
            raise ValueError(f"`{name}` must lie in [0, 1] (labels or scores), got range [{v.min()}, {v.max()}].")
    return a


def fraction(ratio, what="ratio"):
    """A fraction of channels to remove (scalar or array): every value in [0, 1)."""
    r = np.asarray(ratio, np.float64)
    if not np.all((r >= 0) & (r < 1)):
        raise ValueError(f"`{what}` must lie in [0, 1) (fraction of channels to remove), got {ratio}.")


def is_key(x: Any) -> bool:
    """A PRNG key: a typed key array (``jax.random.key``) or a raw ``uint32`` key (``jax.random.PRNGKey``: last
    axis 2). Works on tracers (dtype and shape only)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return False
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    return dtype == jnp.uint32 and tuple(getattr(x, "shape", ()))[-1:] == (2,)


def key_first(new: int, old: int, name: str = "key"):
    """The decorated function takes its key at positional index ``new``; until the next release a call in the
    old order (the key at index ``old > new``, or passed as ``name=`` after positional data) still works, with a
    ``DeprecationWarning`` that shows the new call. Which order a call uses is read from the arguments' types."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kw):
            if len(args) > new and not is_key(args[new]):
                if name in kw:  # old order with the key by name: f(data, key=k)
                    args = args[:new] + (kw.pop(name),) + args[new:]
                elif len(args) > old and is_key(args[old]):  # old order, positional: f(data, ..., k)
                    args = args[:new] + (args[old],) + args[new:old] + args[old + 1 :]
                else:
                    return fn(*args, **kw)  # not a key anywhere: the function's own checks say what is wrong
                warnings.warn(
                    f"{fn.__name__}: the key now comes at argument {new + 1} (key first); the old order works "
                    "until the next release.",
                    DeprecationWarning,
                    stacklevel=2,
                )
            return fn(*args, **kw)

        return wrapper

    return deco
