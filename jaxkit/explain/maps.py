"""Explanation maps of Flax classifiers: Grad-CAM, CAM, gradient saliency, guided backpropagation.

**Reaching a feature map.** Grad-CAM needs ``A``, the last convolutional
feature maps (after the nonlinearity, before pooling), and ``dy/dA``. For any
Flax Linen model ``apply_fn(params, x)`` a layer is named by its module path
(``"Conv_1"``, ``"features/Conv_3"``): :func:`features_and_logits` intercepts
that module's output (``flax.linen.intercept_methods``) and adds a zero
perturbation whose gradient is ``dy/dA``. A Conv's output is *before* a
functional ``nn.relu``; to explain the post-ReLU map as the paper does, put the
parameter-free :class:`Tap` after the activation (``x = Tap(name="features")(
nn.relu(conv(x)))``) -- it adds no parameters, so trained params still fit.
``layer=None`` takes the last :class:`Tap`, else the last ``nn.Conv``.
:func:`layer_names` lists what can be named. Models split into a feature
extractor and a head can use :func:`gradcam_from_features` instead.

**Grad-CAM** (Selvaraju et al. 2017): ``alpha_k^c = mean_ij dy^c/dA^k_ij``
(``y^c`` the pre-softmax score, top-1 class by default) and
``map = ReLU(sum_k alpha_k^c A^k)``, divided by its maximum (an all-zero map
stays zero). **CAM** (Zhou et al. 2016) for GAP -> linear heads:
``ReLU(sum_k W[k, c] A^k)``. **Saliency** (Simonyan et al. 2014):
``max_channel |dy^c/dx|``. **Guided backpropagation** (Springenberg et al.
2015): ReLUs pass back only positive gradients through positive activations
(:func:`guided_relu`, a custom VJP).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import flax.linen as nn
import flax.linen.activation as act
import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit._checks import is_concrete
from jaxkit.models import Tap

__all__ = [
    "Tap",
    "cam",
    "features_and_logits",
    "gradcam",
    "gradcam_from_features",
    "guided_backprop",
    "guided_relu",
    "guided_relus",
    "layer_names",
    "normalize_maps",
    "resolve_layer",
    "saliency",
]


def module_path(module) -> str:
    """The ``/``-joined path of a bound Flax module (``"Conv_1"``, ``"block/Dense_0"``)."""
    return "/".join(module.path)


def layer_names(apply_fn: Callable, params, x) -> list[tuple[str, str, tuple]]:
    """``(path, module type, output shape)`` of every module called by ``apply_fn(params, x)``, in call order.

    The top-level module is excluded; traced abstractly, nothing is computed.

    Args:
      apply_fn: ``(params, x) -> logits`` of a Flax Linen model.
      params: its variables.
      x: ``[B, H, W, C]`` images.

    Returns:
      A list of ``(path, type name, shape)``.

    Raises:
      ValueError: an ``x`` the model does not accept.

    Examples:
      >>> model = jaxkit.models.SmallCNN((4, 5), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> [path for path, _, _ in jaxkit.explain.layer_names(model.apply, variables, x)]
      ['Conv_0', 'Conv_1', 'features', 'Dense_0']
    """
    x = _c.array(x, "x", min_ndim=2)
    _c.fits(apply_fn, params, x)
    if hasattr(apply_fn, "layer_names"):
        return apply_fn.layer_names(params, x)
    seen = []

    def icpt(next_fun, args, kwargs, ctx):
        out = next_fun(*args, **kwargs)
        if ctx.method_name == "__call__" and ctx.module.path:
            shape = tuple(out.shape) if hasattr(out, "shape") else ()
            seen.append((module_path(ctx.module), type(ctx.module).__name__, shape))
        return out

    def run(p, xx):
        with nn.intercept_methods(icpt):
            return apply_fn(p, xx)

    jax.eval_shape(run, params, x)
    return seen


def _default_layer(names):
    taps = [n for n, t, s in names if t == "Tap" and len(s) == 4]
    convs = [n for n, t, s in names if t in ("Conv", "ConvLocal") and len(s) == 4]
    if taps:
        return taps[-1]
    if convs:
        return convs[-1]
    raise ValueError(
        "the model has no convolutional layer (nn.Conv or explain.Tap with a 4-D output) for "
        f"Grad-CAM/CAM; modules called: {[n for n, _, _ in names]}. Name one with `layer`."
    )


def resolve_layer(apply_fn: Callable, params, x, layer: str | None) -> str:
    """``layer`` checked against the modules ``apply_fn`` calls (``None``: the last Tap, else the last Conv).

    Args:
      apply_fn: ``(params, x) -> logits`` of a Flax Linen model.
      params: its variables.
      x: ``[B, H, W, C]`` images.
      layer: a module path, or ``None``.

    Returns:
      The module path.

    Raises:
      ValueError: an unknown ``layer`` (the message lists the available ones), or no Tap / Conv for ``None``.

    Examples:
      >>> model = jaxkit.models.SmallCNN((4, 5), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> jaxkit.explain.resolve_layer(model.apply, variables, x, None)
      'features'
    """
    names = layer_names(apply_fn, params, x)
    if layer is None:
        return _default_layer(names)
    if layer not in [n for n, _, _ in names]:
        raise ValueError(f"`layer` {layer!r} is not a module of this model; available: {[n for n, _, _ in names]}.")
    return layer


def features_and_logits(apply_fn: Callable, params, x, layer: str, delta=None):
    """``(logits, A)``: the model's output and the output ``A`` of module ``layer`` (plus ``delta`` when given).

    With ``delta``, ``grad`` w.r.t. ``delta`` at zero is ``dlogits/dA``. Wrappers that modify the model (see
    :mod:`jaxkit.explain.manipulate`) provide their own ``tapped`` method, used here.

    Args:
      apply_fn: ``(params, x) -> logits`` of a Flax Linen model.
      params: its variables.
      x: ``[B, H, W, C]`` images.
      layer: the module path whose output is ``A``.
      delta: added to ``A`` (``None``: nothing).

    Returns:
      ``(logits, A)``.

    Raises:
      ValueError: an unknown ``layer``.

    Examples:
      >>> model = jaxkit.models.SmallCNN((4, 5), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> logits, A = jaxkit.explain.features_and_logits(model.apply, variables, x, "features")
      >>> logits.shape, A.shape
      ((2, 3), (2, 4, 4, 5))
    """
    x = _check_x(x)
    _c.fits(apply_fn, params, x)
    if hasattr(apply_fn, "tapped"):
        return apply_fn.tapped(params, x, layer, delta)
    found = []

    def icpt(next_fun, args, kwargs, ctx):
        out = next_fun(*args, **kwargs)
        if ctx.method_name == "__call__" and module_path(ctx.module) == layer:
            if found:
                raise ValueError(
                    f"`layer` {layer!r} is called more than once per forward pass; name a module "
                    "called once (e.g. add an explain.Tap)."
                )
            if delta is not None:
                out = out + delta
            found.append(out)
        return out

    with nn.intercept_methods(icpt):
        logits = apply_fn(params, x)
    if not found:
        raise ValueError(f"`layer` {layer!r} was not called by the model.")
    return logits, found[0]


def normalize_maps(maps):
    """Each map divided by its maximum; an all-zero (or non-positive) map stays zero (no 0/0), NaN stays NaN.

    Args:
      maps: ``[B, ...]`` maps.

    Returns:
      Maps of the same shape, each with maximum 1 (or all 0).

    Examples:
      >>> print(jaxkit.explain.normalize_maps(jnp.array([[[0.0, 2.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])))
      [[[0.  1. ]
        [0.5 0. ]]
      <BLANKLINE>
       [[0.  0. ]
        [0.  0. ]]]
    """
    maps = jnp.asarray(_c.array(maps, "maps", min_ndim=2, kind="f", nonempty=True))
    mx = jnp.max(maps, axis=tuple(range(1, maps.ndim)), keepdims=True)
    return jnp.where(jnp.isnan(mx), jnp.nan, jnp.where(mx > 0, maps / jnp.where(mx > 0, mx, 1.0), 0.0))


def _selector(logits, target):
    """One-hot rows picking the explained class: the top-1 class, or ``target`` (one class or one per example).

    A target outside ``[0, num_classes)`` (possible only inside a trace: concrete ones are rejected up front)
    gives a NaN row, so its map comes out NaN rather than a plausible all-zero map.
    """
    if target is None:
        c = jnp.argmax(jax.lax.stop_gradient(logits), axis=-1)
    else:
        c = jnp.broadcast_to(jnp.asarray(target, jnp.int32), logits.shape[:1])
    sel = jax.nn.one_hot(c, logits.shape[-1], dtype=logits.dtype)
    return jnp.where(((c >= 0) & (c < logits.shape[-1]))[:, None], sel, jnp.nan)


def _check_x(x, name="x"):
    """A non-empty floating batch ``(B, ...)``, finite when concrete."""
    x = _c.array(x, name, min_ndim=2, kind="f", nonempty=True)
    _c.finite(x, name)
    return jnp.asarray(x)


def _check_target(target, batch: int, fn=None, params=None, x=None):
    """``target`` as an int array, checked; with ``fn(params, x) -> logits`` its classes must exist."""
    if target is None:
        return None
    t = jnp.asarray(target)
    if not jnp.issubdtype(t.dtype, jnp.integer) or t.shape not in ((), (batch,)):
        raise ValueError(f"`target` must be one class index or one per example ({batch},), got {t.dtype} {t.shape}.")
    if fn is not None and is_concrete(t):
        n = _c.fits(fn, params, x)[-1]
        v = np.asarray(t)
        if np.any((v < 0) | (v >= n)):
            raise ValueError(
                f"`target` must hold class indices in [0, {n}) (the model has {n} outputs), got "
                f"{v.ravel()[(v.ravel() < 0) | (v.ravel() >= n)][0]}."
            )
    return t


def _resize(maps, size):
    if size is None:
        return maps
    return jax.image.resize(maps, maps.shape[:1] + tuple(size), "linear")


def _grad_cam_core(A, g):
    alpha = jnp.mean(g, axis=tuple(range(1, g.ndim - 1)))  # (B, K)
    return jax.nn.relu(jnp.einsum("b...k,bk->b...", A, alpha))


@functools.partial(jax.jit, static_argnames=("apply_fn", "layer", "normalize", "size"))
def _gradcam(apply_fn, params, x, target, layer, normalize, size):
    layer = resolve_layer(apply_fn, params, x, layer)
    a_shape = jax.eval_shape(lambda: features_and_logits(apply_fn, params, x, layer)[1])

    def score(delta):
        logits, A = features_and_logits(apply_fn, params, x, layer, delta)
        return jnp.sum(logits * _selector(logits, target)), A

    g, A = jax.grad(score, has_aux=True)(jnp.zeros(a_shape.shape, a_shape.dtype))
    maps = _grad_cam_core(A, g)
    return _resize(normalize_maps(maps) if normalize else maps, size)


def gradcam(
    apply_fn: Callable,
    params,
    x,
    target=None,
    *,
    layer: str | None = None,
    normalize: bool = True,
    size: tuple[int, int] | None = None,
):
    """Grad-CAM maps ``(B, h, w)`` of the feature map at ``layer`` for the top-1 class (or ``target``).

    ``L^c = ReLU(sum_k alpha_k^c A^k)`` with ``alpha_k^c = mean_ij dy^c / dA^k_ij``.

    ``normalize`` divides each map by its maximum; ``size=(H, W)`` resizes
    (bilinear) after normalising, e.g. to overlay on the input. Jitted; the
    layer is resolved at trace time (an unknown name lists the available ones).

    Args:
      apply_fn: ``(params, x) -> logits`` of a Flax Linen model.
      params: its variables.
      x: ``[B, H, W, C]`` images.
      target: the explained class (scalar or ``[B]``); ``None``: each image's top-1 class.
      layer: the feature map's module path (``None``: the last Tap, else the last Conv).
      normalize: divide each map by its maximum.
      size: ``(H, W)`` to resize to, or ``None``.

    Returns:
      ``[B, h, w]`` maps (``[B, H, W]`` with ``size``).

    Raises:
      ValueError: ``x`` not ``[B, H, W, C]`` or not finite, an unknown ``layer``, a target out of range.

    References:
      Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization", ICCV 2017,
      Eq. (1)-(2).

    Examples:
      >>> model = jaxkit.models.SmallCNN((4, 5), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> maps = jaxkit.explain.gradcam(model.apply, variables, x)
      >>> maps.shape, jaxkit.explain.gradcam(model.apply, variables, x, size=(8, 8)).shape
      ((2, 4, 4), (2, 8, 8))
    """
    x = _check_x(x)
    _c.fits(apply_fn, params, x)
    target = _check_target(target, x.shape[0], apply_fn, params, x)
    return _gradcam(
        apply_fn, params, x, target, layer, bool(normalize), None if size is None else tuple(int(s) for s in size)
    )


def gradcam_from_features(head_fn: Callable, params, features, target=None, *, normalize: bool = True):
    """Grad-CAM for a model split into features ``A`` ``(B, h, w, K)`` and a head ``head_fn(params, A)``.

    Args:
      head_fn: ``(params, A) -> logits``.
      params: the head's params.
      features: ``[B, h, w, K]`` feature maps.
      target: the explained class (scalar or ``[B]``); ``None``: each image's top-1 class.
      normalize: divide each map by its maximum.

    Returns:
      ``[B, h, w]`` maps.

    Raises:
      ValueError: features not ``[B, h, w, K]`` or not finite, a target out of range.

    References:
      Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization", ICCV 2017.

    Examples:
      >>> head = lambda w, A: A.mean((1, 2)) @ w
      >>> A = jax.random.uniform(jax.random.key(2), (2, 4, 4, 3))
      >>> jaxkit.explain.gradcam_from_features(head, jnp.eye(3), A).shape
      (2, 4, 4)
    """
    A = jnp.asarray(_c.array(features, "features", ndim=4, kind="f", nonempty=True))
    _c.finite(A, "features")
    target = _check_target(target, A.shape[0], head_fn, params, A)

    def score(a):
        logits = head_fn(params, a)
        return jnp.sum(logits * _selector(logits, target))

    maps = _grad_cam_core(A, jax.grad(score)(A))
    return normalize_maps(maps) if normalize else maps


@functools.partial(jax.jit, static_argnames=("apply_fn", "layer", "normalize"))
def _cam(apply_fn, params, x, kernel, target, layer, normalize):
    layer = resolve_layer(apply_fn, params, x, layer)
    logits, A = features_and_logits(apply_fn, params, x, layer)
    w = _selector(logits, target) @ kernel.T  # (B, K): W[:, c] per example
    maps = jax.nn.relu(jnp.einsum("b...k,bk->b...", A, w))
    return normalize_maps(maps) if normalize else maps


def cam(apply_fn: Callable, params, x, kernel, target=None, *, layer: str | None = None, normalize: bool = True):
    """Class activation maps ``ReLU(sum_k W[k, c] A^k)`` for a global-average-pool -> linear head.

    ``kernel`` ``W`` is the ``(K, num_classes)`` Dense kernel after the pooling; for such a head Grad-CAM equals
    CAM.

    Args:
      apply_fn: ``(params, x) -> logits`` of a Flax Linen model.
      params: its variables.
      x: ``[B, H, W, C]`` images.
      kernel: ``W``, ``[K, num_classes]``.
      target: the explained class (scalar or ``[B]``); ``None``: each image's top-1 class.
      layer: the feature map's module path (``None``: as :func:`gradcam`).
      normalize: divide each map by its maximum.

    Returns:
      ``[B, h, w]`` maps.

    Raises:
      ValueError: as :func:`gradcam`; a kernel whose rows do not match the feature map's channels.

    References:
      Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016, Sec. 2.

    Examples:
      >>> model = jaxkit.models.SmallCNN((4, 5), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> maps = jaxkit.explain.cam(model.apply, variables, x, variables["params"]["Dense_0"]["kernel"])
      >>> bool(jnp.allclose(maps, jaxkit.explain.gradcam(model.apply, variables, x), atol=1e-5))
      True
    """
    x = _check_x(x)
    _c.fits(apply_fn, params, x)
    kernel = jnp.asarray(_c.array(kernel, "kernel", ndim=2, kind="f"))
    _c.finite(kernel, "kernel")
    k = jax.eval_shape(lambda: features_and_logits(apply_fn, params, x, resolve_layer(apply_fn, params, x, layer))[1])
    if kernel.shape[0] != k.shape[-1] or kernel.shape[1] == 0:
        raise ValueError(
            f"`kernel` must be the ({k.shape[-1]}, num_classes) Dense kernel after the pooled "
            f"feature map, got shape {kernel.shape}."
        )
    return _cam(
        apply_fn, params, x, kernel, _check_target(target, x.shape[0], apply_fn, params, x), layer, bool(normalize)
    )


def _score_grad(apply_fn, params, x, target):
    """``d y^c / dx`` with ``y^c`` the selected class's score, summed over the batch (examples do not mix)."""

    def score(xx):
        logits = apply_fn(params, xx)
        return jnp.sum(logits * _selector(logits, target))

    return jax.grad(score)(x)


_input_grad = jax.jit(_score_grad, static_argnames=("apply_fn",))


def saliency(apply_fn: Callable, params, x, target=None):
    """Gradient saliency ``max_channel |dy^c/dx|``: ``(B, H, W)`` for image batches ``(B, H, W, C)``.

    Other inputs give ``|dy^c/dx|`` in the input's shape.

    Args:
      apply_fn: ``(params, x) -> logits`` of a Flax Linen model.
      params: its variables.
      x: ``[B, H, W, C]`` images.
      target: the explained class (scalar or ``[B]``); ``None``: each image's top-1 class.

    Returns:
      ``[B, H, W]`` maps.

    Raises:
      ValueError: an empty or non-finite ``x``, a target out of range.

    References:
      Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising Image Classification Models and
      Saliency Maps", ICLR Workshop 2014, Sec. 3.

    Examples:
      >>> model = jaxkit.models.SmallCNN((4, 5), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> jaxkit.explain.saliency(model.apply, variables, x).shape
      (2, 8, 8)
    """
    x = _check_x(x)
    _c.fits(apply_fn, params, x)
    g = jnp.abs(_input_grad(apply_fn, params, x, _check_target(target, x.shape[0], apply_fn, params, x)))
    return jnp.max(g, axis=-1) if x.ndim == 4 else g


@jax.custom_vjp
def guided_relu(x):
    """``max(x, 0)`` whose backward pass keeps only positive gradients at positive inputs (guided backprop).

    Args:
      x: an array.

    Returns:
      ``max(x, 0)``.

    References:
      Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR Workshop 2015, Sec. 3.4.

    Examples:
      >>> jax.grad(lambda z: jaxkit.explain.guided_relu(z).sum())(jnp.array([-1.0, 2.0]))
      Array([0., 1.], dtype=float32)
    """
    return jnp.maximum(x, 0)


def _guided_fwd(x):
    return jnp.maximum(x, 0), x


def _guided_bwd(x, g):
    return (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),)


guided_relu.defvjp(_guided_fwd, _guided_bwd)


@contextlib.contextmanager
def guided_relus():
    """A context in which ``jax.nn.relu`` / ``flax.linen.relu`` are :func:`guided_relu`.

    Models that call ``nn.relu(x)`` at trace time pick it up; an already-compiled ``jax.jit`` of the model would
    not.

    Returns:
      A context manager.

    References:
      Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR Workshop 2015, Sec. 3.4.

    Examples:
      >>> with jaxkit.explain.guided_relus():
      ...     g = jax.grad(lambda z: nn.relu(z).sum())(jnp.array([-1.0, 2.0]))
      >>> g
      Array([0., 1.], dtype=float32)
    """
    saved = (jax.nn.relu, nn.relu, getattr(act, "relu"))
    jax.nn.relu = nn.relu = guided_relu
    setattr(act, "relu", guided_relu)
    try:
        yield
    finally:
        jax.nn.relu, nn.relu = saved[:2]
        setattr(act, "relu", saved[2])


def guided_backprop(apply_fn: Callable, params, x, target=None):
    """The guided-backpropagation gradient ``dy^c/dx`` (input shape) with every ReLU guided.

    Reduce with e.g. ``jnp.max(jnp.abs(g), -1)`` for a feature-response map.

    Args:
      apply_fn: ``(params, x) -> logits`` of a Flax Linen model.
      params: its variables.
      x: ``[B, H, W, C]`` images.
      target: the explained class (scalar or ``[B]``); ``None``: each image's top-1 class.

    Returns:
      The gradient, shaped like ``x``.

    Raises:
      ValueError: an empty or non-finite ``x``, a target out of range.

    References:
      Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR Workshop 2015, Sec. 3.4.

    Examples:
      >>> model = jaxkit.models.SmallCNN((4, 5), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> jaxkit.explain.guided_backprop(model.apply, variables, x).shape
      (2, 8, 8, 1)
    """
    x = _check_x(x)
    _c.fits(apply_fn, params, x)
    target = _check_target(target, x.shape[0], apply_fn, params, x)
    with guided_relus():
        return _guided_grad(apply_fn, params, x, target)


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _guided_grad(apply_fn, params, x, target):
    # a function of its own, so its trace cache (filled under guided_relus) is never shared with _input_grad's
    return _score_grad(apply_fn, params, x, target)
