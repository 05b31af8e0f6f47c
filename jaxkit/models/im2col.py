"""Convolution as one matrix product (im2col), for XLA:CPU where that beats the native convolution in
batched (vmapped) programs: :func:`im2col_conv` and :func:`with_im2col`.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["im2col_conv", "with_im2col"]


def im2col_conv(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    precision=None,
    preferred_element_type=None,
):
    """``lax.conv_general_dilated`` as shifted slices @ kernel (NHWC inputs, HWIO kernels).

    Same numbers as the XLA convolution; other layouts, feature groups and
    input dilation fall back to it. Why: under ``vmap`` with a kernel per
    member (a population of networks) JAX lowers a convolution to a grouped
    one, which XLA:CPU runs far slower than the batched matrix product this
    becomes.

    Args:
      lhs: the input ``[N, H, W, C]``.
      rhs: the kernel ``[kh, kw, C, O]``.
      window_strides: as ``lax.conv_general_dilated``.
      padding: as ``lax.conv_general_dilated``.
      lhs_dilation: as ``lax.conv_general_dilated`` (not ``None``: falls back to it).
      rhs_dilation: kernel dilation.
      dimension_numbers: ``("NHWC", "HWIO", "NHWC")`` (others fall back).
      feature_group_count: 1 (others fall back).
      precision: as ``lax.conv_general_dilated``.
      preferred_element_type: as ``lax.conv_general_dilated``.

    Returns:
      The convolution's output.

    References:
      Chellapilla, Puri & Simard, "High Performance Convolutional Neural Networks for Document Processing",
      IWFHR 2006 (convolution unrolled into a matrix product).

    Examples:
      >>> x = jax.random.normal(jax.random.key(0), (1, 8, 8, 2))
      >>> k = jax.random.normal(jax.random.key(1), (3, 3, 2, 4))
      >>> dims = ("NHWC", "HWIO", "NHWC")
      >>> out = jaxkit.models.im2col_conv(x, k, (1, 1), "SAME", dimension_numbers=dims)
      >>> bool(jnp.allclose(out, jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=dims), atol=1e-4))
      True
    """
    nd = lhs.ndim - 2
    spatial = "HWD"[:nd]
    layout = ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
    strides = tuple(window_strides)
    rdil = tuple(rhs_dilation or (1,) * nd)
    ok = (
        feature_group_count == 1
        and all(d == 1 for d in (lhs_dilation or (1,) * nd))
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        == lax.conv_dimension_numbers(lhs.shape, rhs.shape, layout)
    )
    window = tuple((k - 1) * d + 1 for k, d in zip(rhs.shape[:nd], rdil))
    pads = (
        (
            lax.padtype_to_pads(lhs.shape[1:-1], window, strides, padding)
            if isinstance(padding, str)
            else [tuple(p) for p in padding]
        )
        if ok
        else []
    )
    if not ok or any(lo < 0 or hi < 0 for lo, hi in pads):
        return lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation,
            dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count,
            precision=precision,
            preferred_element_type=preferred_element_type,
        )
    x = jnp.pad(lhs, [(0, 0), *pads, (0, 0)])
    out = [(x.shape[1 + i] - window[i]) // strides[i] + 1 for i in range(nd)]
    cols = []
    for offset in np.ndindex(*rhs.shape[:nd]):  # kernel offsets in HW(D) order, as the kernel's reshape
        start = [o * d for o, d in zip(offset, rdil)]
        cols.append(
            lax.slice(
                x,
                (0, *start, 0),
                (x.shape[0], *[s + (n - 1) * st + 1 for s, n, st in zip(start, out, strides)], x.shape[-1]),
                (1, *strides, 1),
            )
        )
    patches = jnp.stack(cols, axis=-2)  # [N, *out, taps, C_in]
    k = rhs.reshape(len(cols), rhs.shape[-2], rhs.shape[-1])
    return jnp.einsum("...tc,tco->...o", patches, k, precision=precision, preferred_element_type=preferred_element_type)


def with_im2col(apply_fn: Callable) -> Callable:
    """Wrap ``model.apply`` so every ``nn.Conv`` computes with :func:`im2col_conv` (same outputs).

    For populations of conv nets under ``vmap`` on CPU (see
    :func:`im2col_conv`); modules that set their own convolution function are
    left alone.

    Args:
      apply_fn: a Flax ``apply``.

    Returns:
      The wrapped ``apply``.

    References:
      Chellapilla, Puri & Simard, IWFHR 2006 (im2col).

    Examples:
      >>> conv = nn.Conv(4, (3, 3))
      >>> x = jax.random.normal(jax.random.key(2), (1, 8, 8, 2))
      >>> variables = conv.init(jax.random.key(0), x)
      >>> bool(jnp.allclose(jaxkit.models.with_im2col(conv.apply)(variables, x), conv.apply(variables, x), atol=1e-4))
      True
    """

    def interceptor(next_fun, args, kwargs, context):
        m = context.module
        if (
            context.method_name == "__call__"
            and type(m) is nn.Conv
            and m.conv_general_dilated is None
            and m.conv_general_dilated_cls is None
        ):
            object.__setattr__(m, "conv_general_dilated", im2col_conv)  # frozen module: restored below
            try:
                return next_fun(*args, **kwargs)
            finally:
                object.__setattr__(m, "conv_general_dilated", None)
        return next_fun(*args, **kwargs)

    def apply(*args, **kwargs):
        with nn.intercept_methods(interceptor):
            return apply_fn(*args, **kwargs)

    return apply
