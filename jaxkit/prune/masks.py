"""Channel masks, element masks, masked optimizer updates and physical removal.

Two mask levels:

* **channel masks** -- ``{group name: bool[C]}`` (True = keep), one per prunable
  group of a :class:`~jaxkit.prune.graph.Graph`; made from criterion scores by
  :func:`channel_masks` (layer-wise or global ranking);
* **element masks** -- a pytree with the structure of params (or of the whole
  variables dict) holding bool arrays of the leaves' shapes; made from channel
  masks by :func:`expand` or directly by :func:`magnitude_masks` (unstructured).

:func:`apply_masks` zeroes params, :func:`masked_updates` is an optax
transform that zeroes the masked entries of every update so pruned weights stay
exactly zero through training, and :func:`remove` slices pruned channels out of
every coupled leaf so a narrower model gives the outputs of the masked one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkit import _checks as _c
from jaxkit import tree as _tree
from jaxkit.prune.graph import Graph

__all__ = [
    "MaskedUpdatesState",
    "apply_masks",
    "channel_masks",
    "expand",
    "kept_counts",
    "magnitude_masks",
    "masked_updates",
    "remove",
    "sparsity",
]

PyTree = Any
ROLES = ("out", "in", "elem")


def score_vectors(scores: Mapping[str, Any], name: str = "scores") -> dict[str, np.ndarray]:
    """``{group: float64 [C]}`` from per-channel scores, checked: real, 1-D, non-empty, finite (concrete)."""
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError(f"`{name}` must be a non-empty {{group name: per-channel scores}} mapping.")
    out = {}
    for k, v in scores.items():
        a = np.asarray(_c.array(v, f"{name}[{k!r}]", ndim=1, kind="r", nonempty=True), np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"`{name}[{k!r}]` has non-finite values.")
        out[k] = a
    return out


def channel_masks(
    scores: Mapping[str, Any],
    ratio: float | Mapping[str, float] | None = None,
    *,
    n_keep: int | Mapping[str, int] | None = None,
    scope: str = "layer",
    min_keep: int = 1,
) -> dict[str, jax.Array]:
    """Keep the highest-scoring channels of each group.

    Args:
      scores: ``{group name: float[C]}`` (larger = more important).
      ratio: fraction of channels to **remove**, in ``[0, 1)``: one number or one
        per group (layer-wise only).
      n_keep: alternatively, channels to keep per group (int or mapping).
      scope: ``"layer"`` ranks within each group; ``"global"`` ranks all channels
        of all groups together (scores must be comparable, e.g. Pruned-YOLO's
        ``|gamma| * sum|w|``) and removes ``ratio`` of the total.
      min_keep: never leave a group with fewer channels (global scope).

    Ties are broken by channel index (earlier channels kept), so masks are
    deterministic.

    Returns:
      ``{group: bool [C]}`` (True = keep).

    Raises:
      ValueError: ``ratio`` outside ``[0, 1)`` or given with ``n_keep``, an unknown ``scope``, NaN scores.

    References:
      Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017 (layer-wise ranking); Liu et al.,
      "Learning Efficient Convolutional Networks through Network Slimming", ICCV 2017 (global ranking).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> masks = jaxkit.prune.channel_masks(jaxkit.prune.scores("l1", graph, variables), 0.5)
      >>> {k: int(v.sum()) for k, v in masks.items()}
      {'params/Conv_0': 2, 'params/Conv_1': 4}
    """
    if not scores:
        raise ValueError("`scores` is empty; expected {group name: per-channel scores}.")
    if (ratio is None) == (n_keep is None):
        raise ValueError("Pass exactly one of `ratio` (fraction to remove) or `n_keep`.")
    if scope not in ("layer", "global"):
        raise ValueError(f"`scope` must be 'layer' or 'global', got {scope!r}.")
    s = score_vectors(scores)
    if scope == "global":
        if ratio is None or isinstance(ratio, Mapping):
            raise ValueError("scope='global' takes a single `ratio`.")
        _c.fraction(ratio)
        names = list(s)
        allv = np.concatenate([s[k] for k in names])
        n_remove = int(np.floor(ratio * allv.size))
        order = np.lexsort((-np.arange(allv.size), allv))  # ascending score, later index first on ties
        removed = np.zeros(allv.size, bool)
        left = {k: len(s[k]) for k in names}
        owner = np.repeat(np.arange(len(names)), [len(s[k]) for k in names])
        count = 0
        for i in order:
            if count >= n_remove:
                break
            k = names[owner[i]]
            if left[k] > min_keep:
                removed[i], left[k], count = True, left[k] - 1, count + 1
        out, start = {}, 0
        for k in names:
            out[k] = jnp.asarray(~removed[start : start + len(s[k])])
            start += len(s[k])
        return out
    out = {}
    for k, v in s.items():
        if n_keep is not None:
            keep = n_keep[k] if isinstance(n_keep, Mapping) else n_keep
            if not 1 <= int(keep) <= len(v):
                raise ValueError(f"`n_keep` for {k!r} must be in [1, {len(v)}], got {keep}.")
        else:
            r = ratio[k] if isinstance(ratio, Mapping) else ratio
            assert r is not None  # exactly one of ratio / n_keep (checked above)
            _c.fraction(r, f"ratio[{k!r}]" if isinstance(ratio, Mapping) else "ratio")
            keep = max(1, len(v) - int(np.floor(r * len(v))))
        order = np.lexsort((np.arange(len(v)), -v))  # descending score, earlier index first
        m = np.zeros(len(v), bool)
        m[order[: int(keep)]] = True
        out[k] = jnp.asarray(m)
    return out


def expand(graph: Graph, masks: Mapping[str, Any], tree: PyTree, *, roles: Sequence[str] = ROLES) -> PyTree:
    """Element masks (bool, shaped like ``tree``'s leaves) from channel masks.

    ``roles`` picks which coupled leaves are masked: ``"out"`` (producer
    kernels), ``"in"`` (consumer kernels' input rows), ``"elem"`` (biases and
    BatchNorm scale/bias/statistics). All three (default) make the masked model
    compute exactly what the removed one does.

    Traceable: channel masks may be traced arrays (e.g. computed from a gene
    inside ``jit``/``vmap``); the result then holds traced element masks.

    Args:
      graph: the model's graph.
      masks: channel masks ``{group: bool [C]}``.
      tree: the variables (or params) the graph was built from.
      roles: the coupled leaves to mask.

    Returns:
      A tree of bool arrays with ``tree``'s structure.

    Raises:
      ValueError: an unknown group or role, masks of the wrong length.

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> masks = jaxkit.prune.channel_masks(jaxkit.prune.scores("l1", graph, variables), 0.5)
      >>> element = jaxkit.prune.expand(graph, masks, variables)
      >>> element["params"]["Conv_0"]["kernel"].shape, int(element["params"]["Conv_0"]["kernel"].sum())
      ((3, 3, 1, 4), 18)
    """
    bad = set(roles) - set(ROLES)
    if bad:
        raise ValueError(f"`roles` must be a subset of {ROLES}, got {sorted(bad)}.")
    traced = any(isinstance(m, jax.Array) for m in masks.values())  # tracers are jax.Arrays: use jnp
    xp = jnp if traced else np
    gm = graph.group_masks(masks, traced)
    flat, prefix = graph.resolve(tree, "tree")

    def leaf_mask(path, x):
        m = xp.ones(np.shape(x), bool)
        for g, mem in graph.groups_of(prefix + path):
            if g.id not in gm or mem.role not in roles:
                continue
            ch = xp.tile(gm[g.id], mem.repeat)
            shape = [1] * m.ndim
            shape[mem.axis] = -1
            m = m & ch.reshape(shape)
        return jnp.asarray(m)

    return jax.tree_util.tree_map_with_path(lambda kp, x: leaf_mask(_tree.path_str(kp), x), tree)


def apply_masks(tree: PyTree, masks: PyTree) -> PyTree:
    """``tree * masks`` leaf-wise (masked entries become exactly 0). Jittable.

    ``masks`` must have ``tree``'s structure, leaves bool or 0/1 and
    broadcastable to the leaf shapes (:func:`expand` and
    :func:`magnitude_masks` build such trees).

    Args:
      tree: params or variables.
      masks: element masks of ``tree``'s structure.

    Returns:
      The masked tree.

    Raises:
      ValueError: masks of another structure or shape.

    Examples:
      >>> jaxkit.prune.apply_masks({"w": jnp.arange(3.0)}, {"w": jnp.array([True, False, True])})
      {'w': Array([0., 0., 2.], dtype=float32)}
    """
    ts, ms = jax.tree.structure(tree), jax.tree.structure(masks)
    if ts != ms:
        raise ValueError(f"`masks` structure does not match the params: {ms} vs {ts}.")
    for (kp, x), m in zip(jax.tree_util.tree_leaves_with_path(tree), jax.tree.leaves(masks)):
        if np.shape(m) != np.shape(x):
            try:
                np.broadcast_shapes(np.shape(m), np.shape(x))
            except ValueError:
                raise ValueError(
                    f"Mask for {_tree.path_str(kp)!r} has shape {np.shape(m)}, leaf has {np.shape(x)}."
                ) from None
    return jax.tree.map(lambda x, m: jnp.where(m, x, jnp.zeros((), x.dtype)), tree, masks)


def magnitude_masks(
    tree: PyTree, sparsity: float, *, pattern: _tree.Pattern = "**/kernel", scope: str = "layer"
) -> PyTree:
    """Unstructured magnitude masks: drop the ``sparsity`` fraction of smallest ``|w|``.

    Leaves not selected by ``pattern`` get all-True masks. ``scope="global"``
    uses one threshold over all selected leaves.

    Args:
      tree: params.
      sparsity: the fraction removed, in ``[0, 1)``.
      pattern: the leaves pruned (a :mod:`jaxkit.tree` pattern).
      scope: ``"layer"`` (a threshold per leaf) or ``"global"``.

    Returns:
      Element masks of ``tree``'s structure.

    Raises:
      ValueError: ``sparsity`` outside ``[0, 1)``, an unknown ``scope``, a pattern that selects nothing.

    References:
      Han et al., "Learning both Weights and Connections for Efficient Neural Networks", NeurIPS 2015.

    Examples:
      >>> masks = jaxkit.prune.magnitude_masks({"Dense_0": {"kernel": jnp.arange(8.0).reshape(2, 4)}}, 0.5)
      >>> print(masks["Dense_0"]["kernel"])
      [[False False False False]
       [ True  True  True  True]]
    """
    _c.fraction(sparsity, "sparsity")
    if scope not in ("layer", "global"):
        raise ValueError(f"`scope` must be 'layer' or 'global', got {scope!r}.")
    sel = _tree.select(tree, pattern, name="tree")
    _c.tree_finite(sel, "tree")  # |NaN| has no rank

    def thresh(values):
        v = np.sort(np.abs(np.asarray(values, np.float64)).ravel())
        k = int(np.floor(sparsity * v.size))
        return -np.inf if k == 0 else v[k - 1]

    if scope == "global":
        t = thresh(np.concatenate([np.ravel(x) for x in sel.values()]))
        ts = dict.fromkeys(sel, t)
    else:
        ts = {p: thresh(x) for p, x in sel.items()}

    def leaf(kp, x):
        p = _tree.path_str(kp)
        if p not in ts:
            return jnp.ones(np.shape(x), bool)
        return jnp.asarray(np.abs(np.asarray(x)) > ts[p])

    return jax.tree_util.tree_map_with_path(leaf, tree)


class MaskedUpdatesState(NamedTuple):
    count: jax.Array  # int32 steps seen (so runs resume with the state)
    masks: PyTree  # element masks; swap with optax.tree_utils.tree_set(state, masks=...) without recompiling


def masked_updates(masks: PyTree) -> optax.GradientTransformation:
    """An optax transform that zeroes every update entry whose mask is False.

    Put it **last** in an ``optax.chain`` (after weight decay and momentum) so
    pruned weights that start at zero stay exactly zero. Pass masks from
    :func:`expand` with all roles to freeze BatchNorm entries too, or with
    ``roles=("out", "in")`` to leave BN trainable. (Not ``optax.masked``, which
    selects whole leaves.) The masks live in the state, so one jitted train
    step serves any number of masks: ``optax.tree_utils.tree_set(opt_state,
    masks=new)`` swaps them.

    Args:
      masks: element masks of the params' structure.

    Returns:
      An ``optax.GradientTransformation``.

    Raises:
      ValueError: masks of another structure than the updates (at ``init``).

    Examples:
      >>> params = {"w": jnp.ones(3)}
      >>> tx = optax.chain(optax.sgd(0.1), jaxkit.prune.masked_updates({"w": jnp.array([True, False, True])}))
      >>> updates, _ = tx.update(params, tx.init(params))
      >>> print(updates["w"])
      [-0.1  0.  -0.1]
    """
    masks = jax.tree.map(jnp.asarray, masks)

    def init(params):
        if jax.tree.structure(params) != jax.tree.structure(masks):
            raise ValueError("masked_updates: `masks` must have the structure of the params.")
        return MaskedUpdatesState(count=jnp.zeros((), jnp.int32), masks=masks)

    def update(updates, state, params=None):
        del params
        updates = jax.tree.map(lambda u, m: jnp.where(m, u, jnp.zeros((), u.dtype)), updates, state.masks)
        count = cast(jax.Array, optax.safe_int32_increment(state.count))
        return updates, MaskedUpdatesState(count=count, masks=state.masks)

    return optax.GradientTransformation(init, update)


def remove(graph: Graph, masks: Mapping[str, Any], tree: PyTree) -> PyTree:
    """Physically remove masked channels: slice every coupled leaf (all roles).

    ``tree`` is the variables dict or params the graph was built from; the
    result has the same structure with narrower leaves. Build the narrower model
    from :func:`kept_counts` (e.g. ``VGG(cfg=...)`` or ``ResNet(inner_widths=...)``);
    its outputs equal the fully masked model's.

    Args:
      graph: the model's graph.
      masks: channel masks.
      tree: the variables (or params) the graph was built from.

    Returns:
      The narrower tree.

    Raises:
      ValueError: an unknown group, masks of the wrong length, a group that keeps no channel.

    References:
      Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017, Sec. 3 (removing filters and the next
      layer's kernels).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> masks = jaxkit.prune.channel_masks(jaxkit.prune.scores("l1", graph, variables), 0.5)
      >>> small = jaxkit.prune.remove(graph, masks, variables)
      >>> narrow = jaxkit.models.VGG(cfg=(2, "M", 4), num_classes=3)  # the kept counts
      >>> x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
      >>> masked = jaxkit.prune.apply_masks(variables, jaxkit.prune.expand(graph, masks, variables))
      >>> bool(jnp.allclose(narrow.apply(small, x), model.apply(masked, x), atol=1e-5))
      True
    """
    gm = graph.group_masks(masks)
    empty = [g.name for g in graph.groups if g.id in gm and not np.any(gm[g.id])]
    if empty:  # a zero-width layer: the narrower model cannot be built (and would output nothing)
        raise ValueError(f"`masks` keeps no channel of group(s) {empty}; keep at least one per group.")
    _, prefix = graph.resolve(tree, "tree")

    def leaf(kp, x):
        x = np.asarray(x)
        for g, mem in graph.groups_of(prefix + _tree.path_str(kp)):
            if g.id in gm:
                keep = np.flatnonzero(np.tile(gm[g.id], mem.repeat))
                x = np.take(x, keep, axis=mem.axis)
        return jnp.asarray(x)

    return jax.tree_util.tree_map_with_path(leaf, tree)


def kept_counts(graph: Graph, masks: Mapping[str, Any]) -> dict[str, int]:
    """``{group name: channels kept}`` (unmasked prunable groups keep all).

    Args:
      graph: the model's graph.
      masks: channel masks.

    Returns:
      ``{group: int}``.

    Raises:
      ValueError: an unknown group.

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> masks = jaxkit.prune.channel_masks(jaxkit.prune.scores("l1", graph, variables), 0.5)
      >>> jaxkit.prune.kept_counts(graph, masks)
      {'params/Conv_0': 2, 'params/Conv_1': 4}
    """
    gm = graph.group_masks(masks)
    return {g.name: int(gm[g.id].sum()) if g.id in gm else g.size for g in graph.groups if g.prunable}


def sparsity(masks: PyTree) -> float:
    """The fraction of masked-out entries over all leaves of a mask tree.

    Args:
      masks: a tree of bool (or 0/1) arrays.

    Returns:
      A Python float in ``[0, 1]``.

    Examples:
      >>> jaxkit.prune.sparsity({"a": jnp.array([True, False]), "b": jnp.array([False, False])})
      0.75
    """
    leaves = [np.asarray(m) for m in jax.tree.leaves(masks)]
    total = sum(m.size for m in leaves)
    return float(sum((~m.astype(bool)).sum() for m in leaves) / max(total, 1))
