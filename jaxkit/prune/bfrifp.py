"""BFRIFP: filter pruning by gradual functional reorganisation.

"BFRIFP: Brain Functional Reorganization Inspired Filter Pruning" (Qiu et al.,
ICANN 2021). A prune set is fixed at the start (:func:`index_masks` -- the
last ``alpha`` fraction of each layer's filters -- or :func:`random_masks`);
training then continues with

* a **pruned-channel output multiplier**: kept channels pass unchanged,
  pruned channel ``c`` of layer ``l`` is multiplied by ``D(l, e)`` (e.g.
  :func:`jaxkit.schedules.bfrifp_decay`,
  ``D = exp(min(-lambda_e * e + lambda_l * (n - l) / n, 0))``), so the network
  loses the pruned filters gradually, deep layers first;
* optionally **Random Firing of Pruned Neurons** (RFPN): once ``D < 0.01``
  the pruned outputs are replaced by ``N(0, 1) * 0.01`` noise;
* **gradient masks** (the paper's Eq. 3) that freeze the pruned filters
  (:func:`freeze_masks` + :func:`jaxkit.prune.masked_updates`).

After training the prune set is removed physically
(:func:`jaxkit.prune.remove`); with ``D`` long below 1e-40 the removed model
computes what the reorganised one did.

The multiplier acts after the group's BatchNorm layers (every BN whose scale
is coupled to the group, so both branches of a residual sum are scaled); for a
group without BatchNorm it multiplies the **input** of each consuming layer,
as in the paper. It is applied with :func:`flax.linen.intercept_methods`, so
any Linen model works unchanged: :func:`reorganize` wraps ``model.apply``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit import schedules as _schedules
from jaxkit.prune.graph import Graph
from jaxkit.prune.hooks import channel_hooks, intercept
from jaxkit.prune.masks import expand

__all__ = ["freeze_masks", "index_masks", "layer_order", "random_masks", "reorganize"]

PyTree = Any


def _groups(graph: Graph, groups):
    if groups is None:
        return [g for g in graph.prunable if any(m.role == "out" for m in g.members)]
    return [graph.group(n) for n in groups]


def _n_prune(ratio: float, size: int) -> int:
    return min(int(np.floor(ratio * size)), size - 1)


def index_masks(graph: Graph, ratio: float | Mapping[str, float], *, groups=None) -> dict[str, jax.Array]:
    """Prune set by index: the **last** ``floor(ratio * C)`` channels of each group (True = keep).

    Args:
      graph: from :func:`jaxkit.prune.build_graph`.
      ratio: fraction to prune, in ``[0, 1)``; one number or ``{group: ratio}``
        (groups absent from the mapping are not pruned).
      groups: group names to prune (default: every prunable group).

    Returns:
      ``{group: bool [C]}`` (True = keep).

    Raises:
      ValueError: a ratio outside ``[0, 1)``, an unknown group.

    References:
      Qiu et al., "BFRIFP: Brain Functional Reorganization Inspired Filter Pruning", ICANN 2021 (the index prune set:
      the last ``alpha`` fraction of filters).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> {k: v.tolist() for k, v in jaxkit.prune.bfrifp.index_masks(graph, 0.5).items()}
      {'params/Conv_0': [True, True, False, False], 'params/Conv_1': [True, True, True, True, False, False, False,
      False]}
    """
    out = {}
    for g in _groups(graph, groups):
        r = ratio.get(g.name, 0.0) if isinstance(ratio, Mapping) else ratio
        _c.fraction(r, f"ratio[{g.name!r}]" if isinstance(ratio, Mapping) else "ratio")
        m = np.ones(g.size, bool)
        n = _n_prune(float(r), g.size)
        if n:
            m[-n:] = False
        out[g.name] = jnp.asarray(m)
    return out


def random_masks(
    key: jax.Array, graph: Graph, ratio: float | Mapping[str, float], *, groups=None
) -> dict[str, jax.Array]:
    """Prune set drawn uniformly at random: ``floor(ratio * C)`` channels per group (True = keep).

    Args:
      key: PRNG key (one subkey per group).
      graph: from :func:`jaxkit.prune.build_graph`.
      ratio: fraction to prune, in ``[0, 1)``; one number or ``{group: ratio}``.
      groups: group names to prune (default: every prunable group).

    Returns:
      ``{group: bool [C]}``.

    Raises:
      ValueError: as :func:`index_masks`.

    References:
      Qiu et al., "BFRIFP: Brain Functional Reorganization Inspired Filter Pruning", ICANN 2021 (the random prune set).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> {k: int(v.sum()) for k, v in jaxkit.prune.bfrifp.random_masks(jax.random.key(0), graph, 0.5).items()}
      {'params/Conv_0': 2, 'params/Conv_1': 4}
    """
    out = {}
    for i, g in enumerate(_groups(graph, groups)):
        r = ratio.get(g.name, 0.0) if isinstance(ratio, Mapping) else ratio
        _c.fraction(r, f"ratio[{g.name!r}]" if isinstance(ratio, Mapping) else "ratio")
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, i), g.size))
        m = np.ones(g.size, bool)
        m[perm[: _n_prune(float(r), g.size)]] = False
        out[g.name] = jnp.asarray(m)
    return out


def layer_order(graph: Graph, names) -> dict[str, int]:
    """``{group: l}`` with ``l = 1..n`` in forward (trace) order of the groups' first producer.

    Args:
      graph: the model's graph.
      names: the groups.

    Returns:
      ``{group: l}``.

    Raises:
      ValueError: an unknown group.

    References:
      Qiu et al., "BFRIFP: Brain Functional Reorganization Inspired Filter Pruning", ICANN 2021 (the layer index ``l``
      of the decay ``D(l, e)``).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> jaxkit.prune.bfrifp.layer_order(graph, ["params/Conv_1", "params/Conv_0"])
      {'params/Conv_0': 1, 'params/Conv_1': 2}
    """
    pos = {}
    for i, layer in enumerate(graph.layers):
        if layer.out_group is not None and layer.out_group not in pos:
            pos[layer.out_group] = i
    gs = [graph.group(n) for n in names]
    ranked = sorted(gs, key=lambda g: pos.get(g.id, len(graph.layers)))
    return {g.name: i + 1 for i, g in enumerate(ranked)}


def reorganize(
    apply_fn: Callable | nn.Module,
    graph: Graph,
    masks: Mapping[str, Any],
    *,
    schedule: Callable | None = None,
    layers: Mapping[str, int] | None = None,
    rfpn: bool = False,
    rfpn_threshold: float = 0.01,
    noise_std: float = 0.01,
) -> Callable:
    """Wrap ``apply_fn`` so pruned channels are scaled by ``D(l, epoch)`` (and fire noise with RFPN).

    Args:
      apply_fn: a Flax Linen module or its ``apply``.
      graph: the model's graph.
      masks: ``{group: bool[C]}`` prune sets (True = keep), e.g. :func:`index_masks`.
      schedule: ``D(epoch, layer) -> factor``; default
        ``bfrifp_decay(n_layers=len(masks))`` (lambda_e = 2, lambda_l = 5).
      layers: ``{group: l}`` layer indices for the schedule; default
        :func:`layer_order` (1..n in forward order).
      rfpn: Random Firing of Pruned Neurons: where ``D < rfpn_threshold`` the
        pruned outputs become ``noise_std * N(0, 1)`` (fresh per call, from the
        ``key`` passed to the wrapped function).
      rfpn_threshold: the ``D`` below which RFPN fires.
      noise_std: RFPN's noise scale.

    Returns:
      ``apply(variables, *args, epoch, key=None, **kwargs)`` -- ``model.apply``
      with the multipliers; ``epoch`` may be fractional and traced (jit it
      freely). ``key`` is required when ``rfpn`` is on.

    Raises:
      ValueError: an unknown group; a schedule or layer map that does not cover the masks.

    References:
      Qiu et al., "BFRIFP: Brain Functional Reorganization Inspired Filter Pruning", ICANN 2021 (the decaying multiplier
      and RFPN).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> masks = jaxkit.prune.bfrifp.index_masks(graph, 0.5)
      >>> apply = jaxkit.prune.bfrifp.reorganize(model, graph, masks)
      >>> x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
      >>> bool(jnp.allclose(apply(variables, x, epoch=0.0), model.apply(variables, x), atol=1e-5))  # D = 1
      True
      >>> removed = jaxkit.prune.apply_masks(variables, jaxkit.prune.expand(graph, masks, variables))
      >>> bool(jnp.allclose(apply(variables, x, epoch=30.0), model.apply(removed, x), atol=1e-5))  # D ~ 0
      True
    """
    apply = apply_fn.apply if isinstance(apply_fn, nn.Module) else apply_fn
    gm = graph.group_masks(masks)
    names = [graph.group(n).name for n in masks]
    if not names:
        raise ValueError("`masks` is empty: nothing to reorganise.")
    layers = dict(layers) if layers is not None else layer_order(graph, names)
    missing = [n for n in names if n not in layers]
    if missing:
        raise ValueError(f"`layers` lacks an index for {missing}.")
    schedule = schedule or _schedules.bfrifp_decay(len(names))
    if not rfpn_threshold > 0 or not noise_std >= 0:
        raise ValueError(f"`rfpn_threshold` must be > 0 and `noise_std` >= 0, got {rfpn_threshold}, {noise_std}.")

    hooks = channel_hooks(graph, names)
    pruned = [~gm[graph.group(n).id] for n in names]
    layer_idx = jnp.asarray([layers[n] for n in names], jnp.float32)
    module_ids = {p: i for i, p in enumerate(sorted(hooks))}

    def wrapped(variables, *args, epoch, key=None, **kwargs):
        if rfpn and key is None:
            raise ValueError("reorganize(rfpn=True): pass `key=` (a jax.random key) to the wrapped apply.")
        d = jax.vmap(lambda l: jnp.asarray(schedule(epoch, l), jnp.float32))(layer_idx)

        def modify(x, hook, mpath, call):
            p = jnp.asarray(np.tile(pruned[hook.slot], hook.repeat))
            y = x * jnp.where(p, d[hook.slot], 1.0).astype(x.dtype)
            if rfpn:
                assert key is not None  # checked by wrapped
                k = jax.random.fold_in(jax.random.fold_in(key, module_ids[mpath]), call)
                noise = (noise_std * jax.random.normal(k, x.shape)).astype(x.dtype)
                y = jnp.where(p & (d[hook.slot] < rfpn_threshold), noise, y)
            return y

        with intercept(hooks, modify):
            return apply(variables, *args, **kwargs)

    wrapped.factors = lambda epoch: {n: float(schedule(epoch, layers[n])) for n in names}
    wrapped.layers = layers
    return wrapped


def freeze_masks(graph: Graph, masks: Mapping[str, Any], params: PyTree) -> PyTree:
    """Element masks that freeze the pruned **filters** (BFRIFP's gradient mask, Eq. 3).

    The pruned filters' kernels, biases and BatchNorm entries get ``False``;
    the next layers' input rows stay trainable (they still see the decaying
    outputs). Use with :func:`jaxkit.prune.masked_updates`, last in the chain.

    Args:
      graph: the model's graph.
      masks: ``{group: bool [C]}`` prune sets (True = keep).
      params: the params the masks are shaped like.

    Returns:
      A bool tree of ``params``' structure.

    Raises:
      ValueError: an unknown group, masks of the wrong length.

    References:
      Qiu et al., "BFRIFP: Brain Functional Reorganization Inspired Filter Pruning", ICANN 2021, Eq. (3).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> frozen = jaxkit.prune.bfrifp.freeze_masks(graph, jaxkit.prune.bfrifp.index_masks(graph, 0.5),
      ...                                          variables["params"])
      >>> print(frozen["Conv_0"]["kernel"][0, 0, 0], frozen["Conv_1"]["kernel"][0, 0, :, 0])  # inputs stay trainable
      [ True  True False False] [ True  True  True  True]
    """
    return expand(graph, masks, params, roles=("out", "elem"))
