"""Make Grad-CAM lie: edit a CNN so its outputs stay the same while its explanation becomes what an attacker wants.

"How to Manipulate CNNs to Make Them Lie: the GradCAM Case" (BMVC-W 2019, TU Delft thesis).
Every construction adds a (K+1)-th channel to the last conv layer ``conv`` (kernel ``(kh, kw, C, K)``) and
matching input rows to the first dense layer ``dense`` (kernel ``(N_Z K, D)``). A Flax NHWC flatten puts the
channel index fastest, so the new rows are *interleaved* (one per spatial position), not appended:
:func:`widen` does that; rebuild the module with ``K + 1`` features to apply the widened params.

- **T1** :func:`inject_constant_explanation` -- a pure params transform. New kernel 0, bias ``c_A``, so
  ``A^{K+1} = c_A`` everywhere; its dense rows ``c_W`` and every dense bias shifted by ``-c_A c_W N_Z``: the
  logits are unchanged, the map is constant. Assumes the layers between ``conv`` and ``dense`` keep a constant
  ``c_A`` (ReLU, max/average pooling, flatten or global average pooling -- then ``N_Z = 1``).
- **T2** :func:`inject_target_explanation` -- a per-channel bias cannot hold an image, so the new channel
  (kernel and bias 0) gets ``c_I I_T`` added by the :class:`Manipulated` wrapper; dense rows ``c_W`` and the
  bias shifted by ``-c_W S_Z`` with ``S_Z`` the sum of the new channel's entries in the dense input (measured).
- **T3** :func:`inject_semi_random_explanation` -- new channel and dense rows all 0; a side branch
  ``A^{K+1} = c_F F(x)`` (:class:`SideBranch`: conv 6@6x6 pad 3 + ReLU -> conv 1@6x6 pad 3 + ReLU -> average
  pool 2x2, resized to the map) and an output term ``eps mod(c_G sum A^{K+1}, 1)`` on every logit: it moves
  the logits by at most ``eps`` (in float32 by exactly 0, the argument being far beyond 2^24) while its
  gradient ``eps c_G`` makes the new channel dominate Grad-CAM.
- **T4** :func:`inject_backdoor_explanation` -- as T3 with ``F`` one conv whose kernel is the zero-mean
  sticker pattern and whose bias lets it fire only on the exact (binary) sticker, ``c_F = 1e9``: maps are
  unchanged until a sticker appears, then they point at it.

Trap: with ReLU layers after the first dense layer ``alpha`` of the new channel can be <= 0 for some classes
and the map is all zero; single-dense heads (or the top-1 class with positive ``alpha``) avoid it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxkit import tree as jtree

from .maps import layer_names, module_path, resolve_layer

__all__ = [
    "Manipulated",
    "SideBranch",
    "StickerDetector",
    "inject_backdoor_explanation",
    "inject_constant_explanation",
    "inject_semi_random_explanation",
    "inject_target_explanation",
    "place_stickers",
    "random_sticker",
    "widen",
]


def _split(variables):
    if isinstance(variables, dict) and "params" in variables:
        return variables["params"], (lambda p: {**variables, "params": p})
    return variables, (lambda p: p)


def widen(
    variables,
    conv: str,
    dense: str,
    *,
    kernel_fill: float = 0.0,
    bias_fill: float = 0.0,
    dense_fill: float = 0.0,
    bias_shift=0.0,
):
    """Add channel ``K`` to conv ``conv`` and its interleaved input rows to dense ``dense``.

    The new conv channel has kernel ``kernel_fill`` and bias ``bias_fill``; its rows in the dense kernel (one per
    spatial position, interleaved: a Flax NHWC flatten puts the channel fastest) are ``dense_fill``;
    ``bias_shift`` is added to the dense bias. Rebuild the module with ``K + 1`` features to apply the result.

    Args:
      variables: the model's variables (or bare params).
      conv: the last conv layer's module path inside ``params`` (e.g. ``"Conv_1"``).
      dense: the first dense layer's module path (e.g. ``"Dense_0"``).
      kernel_fill: the new channel's kernel value.
      bias_fill: its bias.
      dense_fill: its dense rows' value.
      bias_shift: added to the dense bias.

    Returns:
      The widened tree (same nesting).

    Raises:
      ValueError: a layer without a kernel, a ``conv`` that is not a 2-D convolution, a dense kernel whose rows
        are not a multiple of ``K``, a missing bias that the construction needs.

    References:
      "How to Manipulate CNNs to Make Them Lie: the GradCAM Case", BMVC Workshops 2019 (TU Delft thesis)
      (the added channel).

    Examples:
      >>> model, wide = jaxkit.models.SmallCNN((4, 5), 3, head="gap"), jaxkit.models.SmallCNN((4, 6), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> w = jaxkit.explain.manipulate.widen(variables, "Conv_1", "Dense_0")
      >>> w["params"]["Conv_1"]["kernel"].shape, w["params"]["Dense_0"]["kernel"].shape
      ((3, 3, 4, 6), (6, 3))
    """
    params, rebuild = _split(variables)
    flat = jtree.flatten(params, "variables")
    for name, want in ((conv, "conv"), (dense, "dense")):
        if f"{name}/kernel" not in flat:
            mods = sorted({p.rsplit("/", 1)[0] for p in flat if p.endswith("/kernel")})
            raise ValueError(f"`{want}` {name!r} has no kernel in params; layers with kernels: {mods}.")
    kc = jnp.asarray(flat[f"{conv}/kernel"])
    if kc.ndim != 4:
        raise ValueError(f"`conv` {conv!r} must be a 2-D convolution with a (kh, kw, C, K) kernel, got {kc.shape}.")
    k = kc.shape[-1]
    kd = jnp.asarray(flat[f"{dense}/kernel"])
    if kd.ndim != 2 or kd.shape[0] % k:
        raise ValueError(
            f"`dense` {dense!r} kernel {kd.shape} does not take the flattened K={k}-channel map of "
            f"`conv` {conv!r} (rows must be a multiple of K)."
        )
    nz = kd.shape[0] // k
    flat[f"{conv}/kernel"] = jnp.concatenate([kc, jnp.full(kc.shape[:-1] + (1,), kernel_fill, kc.dtype)], -1)
    if f"{conv}/bias" in flat:
        bc = jnp.asarray(flat[f"{conv}/bias"])
        flat[f"{conv}/bias"] = jnp.concatenate([bc, jnp.full((1,), bias_fill, bc.dtype)])
    elif bias_fill != 0:
        raise ValueError(f"`conv` {conv!r} has no bias, so the constant channel (bias_fill) cannot be built.")
    rows = kd.reshape(nz, k, kd.shape[1])
    rows = jnp.concatenate([rows, jnp.full((nz, 1, kd.shape[1]), dense_fill, kd.dtype)], 1)
    flat[f"{dense}/kernel"] = rows.reshape(nz * (k + 1), kd.shape[1])
    if f"{dense}/bias" not in flat:
        raise ValueError(f"`dense` {dense!r} has no bias to compensate the new channel.")
    flat[f"{dense}/bias"] = jnp.asarray(flat[f"{dense}/bias"]) + jnp.asarray(bias_shift, kd.dtype)
    return rebuild(jtree.unflatten(flat))


def _nz(variables, conv, dense):
    params, _ = _split(variables)
    flat = jtree.flatten(params, "variables")
    return flat[f"{dense}/kernel"].shape[0] // flat[f"{conv}/kernel"].shape[-1]


def inject_constant_explanation(variables, conv: str, dense: str, *, c_A: float = 100.0, c_W: float = 100.0):
    """T1: widened params whose Grad-CAM map is constant and whose logits equal the original's.

    Exact in exact arithmetic; the ``c_A c_W N_Z`` bias shift rounds in floating point.

    Args:
      variables: the model's variables.
      conv: the last conv layer's module path inside ``params`` (e.g. ``"Conv_1"``).
      dense: the first dense layer's module path (e.g. ``"Dense_0"``).
      c_A: the constant channel's value (> 0).
      c_W: its dense rows' weight (> 0).

    Returns:
      The widened variables (apply them with the ``K + 1``-channel model).

    Raises:
      ValueError: non-positive ``c_A`` / ``c_W``; as :func:`widen`.

    References:
      "How to Manipulate CNNs to Make Them Lie: the GradCAM Case", BMVC Workshops 2019 (TU Delft thesis), T1.

    Examples:
      >>> model, wide = jaxkit.models.SmallCNN((4, 5), 3, head="gap"), jaxkit.models.SmallCNN((4, 6), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> lying = jaxkit.explain.manipulate.inject_constant_explanation(variables, "Conv_1", "Dense_0")
      >>> bool(jnp.allclose(wide.apply(lying, x), model.apply(variables, x), atol=1e-2))
      True
      >>> bool(jnp.allclose(jaxkit.explain.gradcam(wide.apply, lying, x), 1.0, atol=1e-3))  # a constant map
      True
    """
    if not (float(c_A) > 0 and float(c_W) > 0):
        raise ValueError(f"`c_A` and `c_W` must be > 0, got {c_A} and {c_W}.")
    nz = _nz(variables, conv, dense)
    return widen(variables, conv, dense, bias_fill=c_A, dense_fill=c_W, bias_shift=-float(c_A) * float(c_W) * nz)


@dataclasses.dataclass(frozen=True)
class Manipulated:
    """A widened model plus an architectural term: ``apply(bundle, x)`` with ``bundle = {"model": widened
    variables, "term": term params}``.

    ``term(term_params, x) -> (B, h, w)`` (or ``(h, w)``) is added to channel ``channel`` of the output of
    module ``layer``; with ``output_eps > 0`` every logit also gets ``output_eps * mod(output_gain *
    sum_ij A^{channel}, 1)``, ``A`` read at ``layer`` (after the term). Grad-CAM and friends reach feature maps
    through :meth:`tapped`, so explanations of the wrapper see the term and the output term's gradient.
    """

    apply_fn: Callable
    layer: str
    channel: int
    term: Callable | None = None
    output_eps: float = 0.0
    output_gain: float = 0.0

    def __call__(self, bundle, x):
        return self.tapped(bundle, x, None, None)[0]

    def layer_names(self, bundle, x):
        return layer_names(self.apply_fn, bundle["model"], x)

    def tapped(self, bundle, x, layer, delta):
        store = {}

        def icpt(next_fun, args, kwargs, ctx):
            out = next_fun(*args, **kwargs)
            if ctx.method_name != "__call__":
                return out
            p = module_path(ctx.module)
            if p == self.layer:
                if self.term is not None:
                    out = out.at[..., self.channel].add(self.term(bundle["term"], x).astype(out.dtype))
            if p == layer:
                out = out if delta is None else out + delta
                store["tap"] = out
            if p == self.layer:
                store["explained"] = out
            return out

        with nn.intercept_methods(icpt):
            logits = self.apply_fn(bundle["model"], x)
        if layer is not None and "tap" not in store:
            raise ValueError(f"`layer` {layer!r} was not called by the model.")
        if self.output_eps:
            s = jnp.sum(store["explained"][..., self.channel], axis=(1, 2))
            logits = logits + self.output_eps * jnp.mod(self.output_gain * s, 1.0)[:, None]
        return logits, store.get("tap")


def _feature_shape(apply_fn, variables, x, layer):
    layer = resolve_layer(apply_fn, variables, x, layer)
    shape = dict((n, s) for n, _, s in layer_names(apply_fn, variables, x))[layer]
    if len(shape) != 4:
        raise ValueError(f"`layer` {layer!r} must output (B, h, w, K) feature maps, got {shape}.")
    return layer, shape


def _dense_input_new_sum(model: Manipulated, bundle, x, dense: str):
    """``S_Z``: the sum of the new channel's entries in the input of module ``dense`` (first example)."""
    got = {}

    def icpt(next_fun, args, kwargs, ctx):
        if ctx.method_name == "__call__" and module_path(ctx.module) == dense:
            got["z"] = args[0]
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(icpt):
        model(bundle, x[:1])
    if "z" not in got:
        raise ValueError(f"`dense` {dense!r} was not called by the model.")
    z = got["z"].reshape(1, -1, model.channel + 1)
    return float(jnp.sum(z[0, :, model.channel]))


def _build(
    apply_fn,
    variables,
    x,
    conv,
    dense,
    layer,
    term,
    term_params,
    dense_fill,
    output_eps=0.0,
    output_gain=0.0,
    compensate=True,
):
    params, _ = _split(variables)
    flat = jtree.flatten(params, "variables")
    if f"{conv}/kernel" not in flat:
        mods = sorted({p.rsplit("/", 1)[0] for p in flat if p.endswith("/kernel")})
        raise ValueError(f"`conv` {conv!r} has no kernel in params; layers with kernels: {mods}.")
    k = flat[f"{conv}/kernel"].shape[-1]
    wide = widen(variables, conv, dense, dense_fill=dense_fill)
    x = jnp.asarray(x)
    try:
        layer, shape = _feature_shape(apply_fn, wide, x[:1], layer)
    except Exception as err:
        if isinstance(err, ValueError) and "layer" in str(err):
            raise
        raise ValueError(
            f"`apply_fn` must be the model rebuilt with K + 1 = {k + 1} channels in `conv` {conv!r} "
            f"({type(err).__name__}: {err})."
        ) from err
    if shape[-1] != k + 1:
        raise ValueError(
            f"`layer` {layer!r} outputs {shape[-1]} channels; expected K + 1 = {k + 1} (the "
            f"widened `conv` {conv!r}); rebuild the model with one more feature."
        )
    model = Manipulated(apply_fn, layer, k, term, float(output_eps), float(output_gain))
    bundle = {"model": wide, "term": term_params}
    if compensate and dense_fill:
        s_z = _dense_input_new_sum(model, bundle, x, dense)
        bundle = {
            "model": widen(variables, conv, dense, dense_fill=dense_fill, bias_shift=-float(dense_fill) * s_z),
            "term": term_params,
        }
    return model, bundle, shape


def _image_term(p, x):
    return p["scale"] * p["image"]


def inject_target_explanation(
    apply_fn: Callable,
    variables,
    x,
    target_map,
    *,
    conv: str,
    dense: str,
    layer: str | None = None,
    c_W: float = 10.0,
    c_I: float = 100.0,
):
    """T2: ``(Manipulated, bundle)`` whose Grad-CAM map is ``target_map`` for every input, with unchanged logits.

    ``c_I`` (not given in the paper; ours) scales the image so the new channel dominates the map.

    Args:
      apply_fn: the model rebuilt with ``K + 1`` channels in ``conv`` (its ``apply``).
      variables: the original (``K``-channel) variables.
      x: a sample batch (shapes only).
      target_map: ``(h, w)`` (the feature map's size), values >= 0.
      conv: the last conv layer's module path inside ``params`` (e.g. ``"Conv_1"``).
      dense: the first dense layer's module path (e.g. ``"Dense_0"``).
      layer: the feature map Grad-CAM reads (``None``: as :func:`jaxkit.explain.gradcam`).
      c_W: the new channel's dense rows' weight.
      c_I: the image's scale.

    Returns:
      ``(model, bundle)``: ``model(bundle, x)`` is the manipulated network's ``apply``.

    Raises:
      ValueError: a ``target_map`` of another size than the feature map or negative, an ``apply_fn`` that is
        not the ``K + 1``-channel model; as :func:`widen`.

    References:
      "How to Manipulate CNNs to Make Them Lie: the GradCAM Case", BMVC Workshops 2019 (TU Delft thesis), T2.

    Examples:
      >>> model, wide = jaxkit.models.SmallCNN((4, 5), 3, head="gap"), jaxkit.models.SmallCNN((4, 6), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> target = jnp.zeros((4, 4)).at[1, 2].set(1.0)
      >>> f, bundle = jaxkit.explain.manipulate.inject_target_explanation(wide.apply, variables, x, target,
      ...                                                              conv="Conv_1", dense="Dense_0")
      >>> bool(jnp.allclose(f(bundle, x), model.apply(variables, x), atol=1e-4))
      True
      >>> bool(jnp.allclose(jaxkit.explain.gradcam(f, bundle, x), target, atol=1e-2))
      True
    """
    t = jnp.asarray(target_map)
    if t.ndim != 2 or not bool(jnp.all(t >= 0)):
        raise ValueError(f"`target_map` must be a non-negative (h, w) map, got shape {t.shape}.")
    model, bundle, shape = _build(
        apply_fn,
        variables,
        x,
        conv,
        dense,
        layer,
        _image_term,
        {"image": t, "scale": jnp.asarray(float(c_I), t.dtype)},
        0.0,
        compensate=False,
    )
    if tuple(t.shape) != tuple(shape[1:3]):
        raise ValueError(f"`target_map` must have the feature map's size {tuple(shape[1:3])}, got {tuple(t.shape)}.")
    model, bundle, _ = _build(apply_fn, variables, x, conv, dense, model.layer, _image_term, bundle["term"], float(c_W))
    return model, bundle


class SideBranch(nn.Module):
    """T3's ``F``: conv 6@6x6 pad 3 + ReLU -> conv 1@6x6 pad 3 + ReLU -> ``pools`` x average-pool 2x2, then
    resized (bilinear) to ``size`` -- the resize is our adaptation for maps that the pools do not hit exactly."""

    size: tuple[int, int]
    pools: int = 4

    @nn.compact
    def __call__(self, x):
        y = nn.relu(nn.Conv(6, (6, 6), padding=3)(x))
        y = nn.relu(nn.Conv(1, (6, 6), padding=3)(y))
        for _ in range(self.pools):
            if y.shape[1] >= 2 * self.size[0] and y.shape[2] >= 2 * self.size[1]:
                y = nn.avg_pool(y, (2, 2), (2, 2))
        y = jax.image.resize(y, (y.shape[0],) + tuple(self.size) + (1,), "linear")
        return y[..., 0]


def _branch_term(branch):
    def term(p, x):
        return p["scale"] * branch.apply(p["branch"], x)

    return term


def _branch_input_check(x):
    x = jnp.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"`x` must be an image batch (B, H, W, C), got shape {x.shape}.")
    return x


def inject_semi_random_explanation(
    key,
    apply_fn: Callable,
    variables,
    x,
    *,
    conv: str,
    dense: str,
    layer: str | None = None,
    c_F: float = 1e7,
    eps: float = 0.01,
    c_G: float = 1e4,
    pools: int = 4,
):
    """T3: ``(Manipulated, bundle)`` whose Grad-CAM map follows a random side branch ``c_F F(x)``.

    The map is input dependent but unrelated to the decision; the logits move by at most ``eps`` (0 in float32).

    Args:
      key: PRNG key of the side branch's weights.
      apply_fn: the model rebuilt with ``K + 1`` channels in ``conv`` (its ``apply``).
      variables: the original (``K``-channel) variables.
      x: a sample batch (shapes only).
      conv: the last conv layer's module path inside ``params`` (e.g. ``"Conv_1"``).
      dense: the first dense layer's module path (e.g. ``"Dense_0"``).
      layer: the feature map Grad-CAM reads (``None``: as :func:`jaxkit.explain.gradcam`).
      c_F: the side branch's scale.
      eps: the output term's amplitude.
      c_G: its gradient's scale.
      pools: the side branch's pooling factor.

    Returns:
      ``(model, bundle)``.

    Raises:
      ValueError: as :func:`inject_target_explanation`.

    References:
      "How to Manipulate CNNs to Make Them Lie: the GradCAM Case", BMVC Workshops 2019 (TU Delft thesis), T3.

    Examples:
      >>> model, wide = jaxkit.models.SmallCNN((4, 5), 3, head="gap"), jaxkit.models.SmallCNN((4, 6), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> f, bundle = jaxkit.explain.manipulate.inject_semi_random_explanation(
      ...     jax.random.key(3), wide.apply, variables, x, conv="Conv_1", dense="Dense_0")
      >>> bool(jnp.allclose(f(bundle, x), model.apply(variables, x), atol=1e-5))
      True
    """
    x = _branch_input_check(x)
    model, _, shape = _build(apply_fn, variables, x, conv, dense, layer, None, None, 0.0)
    branch = SideBranch(tuple(shape[1:3]), int(pools))
    bp = branch.init(key, x[:1])
    return (
        Manipulated(apply_fn, model.layer, model.channel, _branch_term(branch), float(eps), float(c_G)),
        {"model": widen(variables, conv, dense), "term": {"branch": bp, "scale": jnp.asarray(float(c_F))}},
    )


class StickerDetector(nn.Module):
    """T4's ``F``: one conv with the zero-mean sticker kernel and a bias ``-(r_max - margin)``, ReLU, average
    pooled to ``size`` (``r_max = sum (s - mean s)^2`` is reached only by the exact binary sticker)."""

    size: tuple[int, int]
    kernel_size: tuple[int, int] = (3, 3)

    @nn.compact
    def __call__(self, x):
        y = nn.relu(nn.Conv(1, self.kernel_size, padding="SAME")(x))
        f = (y.shape[1] // self.size[0], y.shape[2] // self.size[1])
        if f[0] >= 1 and f[1] >= 1 and y.shape[1] % self.size[0] == 0 and y.shape[2] % self.size[1] == 0:
            y = nn.avg_pool(y, f, f) * (f[0] * f[1])  # sum pooling keeps a single firing pixel's mass
        else:
            y = jax.image.resize(y, (y.shape[0],) + tuple(self.size) + (1,), "linear")
        return y[..., 0]


def random_sticker(key, size: int = 3, channels: int = 1):
    """A random binary ``(size, size, channels)`` sticker (never constant).

    Args:
      key: PRNG key.
      size: the side length.
      channels: the input's channels.

    Returns:
      A float32 0/1 array.

    References:
      "How to Manipulate CNNs to Make Them Lie: the GradCAM Case", BMVC Workshops 2019 (TU Delft thesis), T4
      (the trigger pattern).

    Examples:
      >>> s = jaxkit.explain.manipulate.random_sticker(jax.random.key(4))
      >>> s.shape, sorted(set(np.asarray(s).ravel().tolist()))
      ((3, 3, 1), [0.0, 1.0])
    """
    s = jax.random.bernoulli(key, 0.5, (size, size, channels)).astype(jnp.float32)
    return s.at[0, 0].set(1.0).at[-1, -1].set(0.0)


def place_stickers(key, x, sticker, n: int = 3):
    """``x`` with ``n`` copies of ``sticker`` pasted at random positions of every image.

    Args:
      key: PRNG key of the positions.
      x: ``[B, H, W, C]`` images.
      sticker: ``(s, s, C)``.
      n: copies per image (the T4 evaluation uses three).

    Returns:
      ``[B, H, W, C]`` images.

    References:
      "How to Manipulate CNNs to Make Them Lie: the GradCAM Case", BMVC Workshops 2019 (TU Delft thesis), T4.

    Examples:
      >>> x = jnp.zeros((2, 8, 8, 1))
      >>> stuck = jaxkit.explain.manipulate.place_stickers(jax.random.key(5), x, jnp.ones((3, 3, 1)), n=2)
      >>> stuck.shape, bool(jnp.all(stuck.sum((1, 2, 3)) >= 9))
      ((2, 8, 8, 1), True)
    """
    x = jnp.asarray(x)
    s = jnp.asarray(sticker, x.dtype)
    hs, ws = s.shape[:2]

    def one(k, img):
        ks = jax.random.split(k, n)
        for i in range(n):
            r = jax.random.randint(ks[i], (2,), 0, jnp.array([img.shape[0] - hs + 1, img.shape[1] - ws + 1]))
            img = jax.lax.dynamic_update_slice(img, s, (r[0], r[1], 0))
        return img

    return jax.vmap(one)(jax.random.split(key, x.shape[0]), x)


def inject_backdoor_explanation(
    apply_fn: Callable,
    variables,
    x,
    sticker,
    *,
    conv: str,
    dense: str,
    layer: str | None = None,
    c_F: float = 1e9,
    eps: float = 0.01,
    c_G: float = 1e4,
    margin: float | None = None,
):
    """T4: ``(Manipulated, bundle)``: explanations unchanged until the binary ``sticker`` appears in the input.

    Then Grad-CAM points at the sticker. ``margin`` (ours) is how far below ``r_max`` the detector starts to fire
    (a patch in [0, 1] differing from the sticker by one full pixel falls short by at least ``min |s - mean s|``;
    default half of that).

    Args:
      apply_fn: the model rebuilt with ``K + 1`` channels in ``conv`` (its ``apply``).
      variables: the original (``K``-channel) variables.
      x: a sample batch (shapes only).
      sticker: a binary, non-constant ``(s, s, C)`` pattern (:func:`random_sticker`).
      conv: the last conv layer's module path inside ``params`` (e.g. ``"Conv_1"``).
      dense: the first dense layer's module path (e.g. ``"Dense_0"``).
      layer: the feature map Grad-CAM reads (``None``: as :func:`jaxkit.explain.gradcam`).
      c_F: the detector's scale.
      eps: the output term's amplitude.
      c_G: its gradient's scale.
      margin: the detector's firing margin.

    Returns:
      ``(model, bundle)``.

    Raises:
      ValueError: a sticker that is not binary, constant, or of other channels than ``x``; as
        :func:`inject_target_explanation`.

    References:
      "How to Manipulate CNNs to Make Them Lie: the GradCAM Case", BMVC Workshops 2019 (TU Delft thesis), T4.

    Examples:
      >>> model, wide = jaxkit.models.SmallCNN((4, 5), 3, head="gap"), jaxkit.models.SmallCNN((4, 6), 3, head="gap")
      >>> x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
      >>> variables = model.init(jax.random.key(1), x)
      >>> sticker = jaxkit.explain.manipulate.random_sticker(jax.random.key(4))
      >>> f, bundle = jaxkit.explain.manipulate.inject_backdoor_explanation(wide.apply, variables, x, sticker,
      ...                                                                conv="Conv_1", dense="Dense_0")
      >>> maps = jaxkit.explain.gradcam(f, bundle, x.at[:, 4:7, 1:4, :].set(sticker))  # centred at map cell (2, 1)
      >>> print(np.asarray(maps[:, 2, 1]))
      [1. 1.]
    """
    x = _branch_input_check(x)
    s = jnp.asarray(sticker, jnp.float32)
    if s.ndim != 3 or s.shape[-1] != x.shape[-1]:
        raise ValueError(f"`sticker` must be (s, s, {x.shape[-1]}) like the input's channels, got {s.shape}.")
    if not bool(jnp.all((s == 0) | (s == 1))) or float(jnp.std(s)) == 0:
        raise ValueError("`sticker` must be a binary (0/1), non-constant pattern.")
    zm = s - jnp.mean(s)
    r_max = float(jnp.sum(zm * zm))
    margin = 0.5 * float(jnp.min(jnp.abs(zm))) if margin is None else float(margin)
    model, _, shape = _build(apply_fn, variables, x, conv, dense, layer, None, None, 0.0)
    det = StickerDetector((int(shape[1]), int(shape[2])), (int(s.shape[0]), int(s.shape[1])))
    dp = {"params": {"Conv_0": {"kernel": zm[..., None], "bias": jnp.asarray([-(r_max - float(margin))])}}}
    return (
        Manipulated(apply_fn, model.layer, model.channel, _branch_term(det), float(eps), float(c_G)),
        {"model": widen(variables, conv, dense), "term": {"branch": dp, "scale": jnp.asarray(float(c_F))}},
    )
