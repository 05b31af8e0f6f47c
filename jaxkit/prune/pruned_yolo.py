"""Pruned-YOLO's channel pruning, for any Flax CNN with BatchNorm.

"Pruned-YOLO: Learning Efficient Object Detector Using Model Pruning" (Zhang
et al., ICANN 2021). The loop, iterated a few times (the paper: 50 % x 4 in its
ablation, 25 % x 3 in its comparison):

1. **sparsity training** -- weight decay on kernels plus an L1 penalty
   ``s * sum |gamma|`` on BatchNorm scales (:func:`bn_l1`, ``s`` from
   :func:`jaxkit.schedules.warmup_cosine_sparsity`), with a **soft mask**
   before each epoch (:func:`soft_mask`: every ``gamma`` below
   ``mean(gamma) / 5`` is multiplied by 0.1);
2. **channel importance** ``theta_i = |gamma_i| * sum |w_i|`` (:func:`importance`),
   ranked **globally** over all layers (:func:`global_masks`);
3. prune at a preset rate (:func:`jaxkit.prune.remove`) and fine-tune.

Groups tied by a shortcut (one channel group, several producing layers, each
with its own BatchNorm) follow a ``policy`` in :func:`global_masks`: ``"same"``
removes a channel only where every tied layer ranks it below the global
threshold; ``"split"`` (Pruned-YOLO) takes the number each tied layer would
remove, divides the total equally among the tied layers, and removes that many
channels with the lowest summed importance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkit import _checks as _c
from jaxkit import tree as _tree
from jaxkit.prune.graph import Graph

__all__ = ["BnL1State", "bn_l1", "bn_scale_mask", "global_masks", "importance", "soft_mask"]

PyTree = Any


def _pairs(group) -> list[tuple[str, int, str | None]]:
    """``(kernel path, out axis, BN scale path or None)`` for each producer of ``group``."""
    kernels = [(m.path, m.axis) for m in group.members if m.role == "out"]
    scales = [m.path for m in group.members if m.role == "elem" and m.path.endswith("/scale")]
    if len(scales) == len(kernels):
        return [(k, a, s) for (k, a), s in zip(kernels, scales)]
    if len(scales) == 1:
        return [(k, a, scales[0]) for k, a in kernels]
    return [(k, a, None) for k, a in kernels]


def importance(graph: Graph, variables: PyTree, *, groups=None) -> dict[str, jax.Array]:
    """Pruned-YOLO's channel importance ``theta_i = |gamma_i| * sum |w_i|``.

    ``w_i`` is output filter ``i`` of the producing kernel, ``gamma_i`` the
    scale of the BatchNorm that follows it (1 for a layer without BN). Returns
    ``{group: float[C]}``, or ``float[P, C]`` for a group with ``P`` tied
    producers (one row per producer, in trace order; see :func:`global_masks`).
    Scores are not min-max normalised: the global ranking needs them comparable.

    Args:
      graph: the model's graph.
      variables: its variables.
      groups: the groups (default: every prunable group).

    Returns:
      ``{group: float [C]}`` (``float [P, C]`` for ``P`` tied producers).

    Raises:
      ValueError: an unknown group.

    References:
      Zhang et al., "Pruned-YOLO: Learning Efficient Object Detector Using Model Pruning", ICANN 2021 (the importance of
      a channel).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> {k: v.shape for k, v in jaxkit.prune.pruned_yolo.importance(graph, variables).items()}
      {'params/Conv_0': (4,), 'params/Conv_1': (8,)}
    """
    flat, prefix = graph.resolve(variables, "variables")
    leaves = {prefix + p: x for p, x in flat}
    gs = graph.prunable if groups is None else [graph.group(n) for n in groups]
    out = {}
    for g in gs:
        rows = []
        for kpath, axis, spath in _pairs(g):
            w = jnp.moveaxis(jnp.asarray(leaves[kpath]), axis, 0).reshape(g.size, -1)
            theta = jnp.sum(jnp.abs(w), axis=1)
            if spath is not None:
                theta = theta * jnp.abs(jnp.asarray(leaves[spath]).reshape(-1))
            rows.append(theta)
        if rows:
            out[g.name] = rows[0] if len(rows) == 1 else jnp.stack(rows)
    return out


def global_masks(
    scores: Mapping[str, Any], ratio: float, *, policy: str = "split", min_keep: int = 1
) -> dict[str, jax.Array]:
    """Prune ``ratio`` of all channels by one global threshold on ``scores``.

    Args:
      scores: ``{group: float[C]}`` or ``float[P, C]`` for groups tied by a
        shortcut (:func:`importance` returns both).
      ratio: fraction in ``[0, 1)``; the threshold is the ``ratio``-quantile of
        all per-layer channel scores (every tied layer's channels counted).
      policy: for tied groups -- ``"same"``: remove a channel only if it is below
        the threshold in every tied layer; ``"split"``: each tied layer ``p``
        would remove ``n_p`` channels, the group removes ``round(mean n_p)``
        channels with the lowest summed score. Identical for untied groups.
      min_keep: channels every group keeps at least.

    Returns:
      ``{group: bool[C]}`` (True = keep).

    Raises:
      ValueError: ``ratio`` outside ``[0, 1)``, an unknown ``policy``.

    References:
      Zhang et al., "Pruned-YOLO: Learning Efficient Object Detector Using Model Pruning", ICANN 2021 (the
      global threshold and the shortcut policy ``"split"``).

    Examples:
      >>> masks = jaxkit.prune.global_masks({"a": jnp.array([1.0, 2, 3, 4]), "b": jnp.array([0.5, 5.0])}, 0.5)
      >>> {k: v.tolist() for k, v in masks.items()}
      {'a': [False, False, True, True], 'b': [False, True]}
    """
    if policy not in ("same", "split"):
        raise ValueError(f"`policy` must be 'same' or 'split', got {policy!r}.")
    _c.fraction(ratio)
    if not scores:
        raise ValueError("`scores` is empty.")
    s = {}
    for k, v in scores.items():
        v = np.asarray(_c.array(v, f"scores[{k!r}]", ndim=(1, 2), kind="r"), np.float64)
        if v.size == 0:
            raise ValueError(f"`scores[{k!r}]` is empty (shape {v.shape}).")
        if v.ndim not in (1, 2) or not np.all(np.isfinite(v)):
            raise ValueError(f"`scores[{k!r}]` must be a finite [C] or [P, C] array, got shape {v.shape}.")
        s[k] = v.reshape(-1, v.shape[-1])
    allv = np.sort(np.concatenate([v.ravel() for v in s.values()]))
    n_remove = int(np.floor(ratio * allv.size))
    if n_remove == 0:
        return {k: jnp.ones(v.shape[-1], bool) for k, v in s.items()}
    t = allv[n_remove - 1]  # channels with score <= t are below the threshold
    out = {}
    for k, v in s.items():
        c = v.shape[-1]
        below = v <= t
        total = v.sum(0)
        if policy == "same":
            n = int(np.all(below, axis=0).sum())
            cand = np.flatnonzero(np.all(below, axis=0))
        else:
            n = int(np.round(below.sum(1).mean()))
            cand = np.arange(c)
        n = min(n, c - int(min_keep))
        order = cand[np.lexsort((-cand, total[cand]))]  # lowest summed score first, later index on ties
        keep = np.ones(c, bool)
        keep[order[: max(n, 0)]] = False
        out[k] = jnp.asarray(keep)
    return out


def bn_scale_mask(graph: Graph, params: PyTree) -> PyTree:
    """A bool tree shaped like ``params``: True on the BatchNorm scale leaves of the graph's groups.

    Args:
      graph: the model's graph.
      params: its params.

    Returns:
      A bool tree (the ``mask`` of :func:`bn_l1` and :func:`soft_mask`).

    References:
      Liu et al., "Learning Efficient Convolutional Networks through Network Slimming", ICCV 2017 (L1 on the BN scales).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> mask = jaxkit.prune.pruned_yolo.bn_scale_mask(graph, variables["params"])
      >>> mask["BatchNorm_0"], mask["Conv_0"]
      ({'bias': False, 'scale': True}, {'kernel': False})
    """
    flat, prefix = graph.resolve(params, "params")
    scales = {m.path for g in graph.groups for m in g.members if m.role == "elem" and m.path.endswith("/scale")}
    return jax.tree_util.tree_map_with_path(lambda kp, _: prefix + _tree.path_str(kp) in scales, params)


class BnL1State(NamedTuple):
    count: jax.Array  # int32 steps seen; the schedule's argument


def bn_l1(
    strength: float | Callable[[jax.Array], jax.Array], mask: PyTree | Callable[[PyTree], PyTree]
) -> optax.GradientTransformation:
    """An optax transform adding the L1 sub-gradient ``s(step) * sign(gamma)`` on masked leaves.

    Network-slimming / Pruned-YOLO sparsity training: put it **first** in the
    chain (it acts on gradients, like ``optax.add_decayed_weights``), e.g.
    ``optax.chain(bn_l1(warmup_cosine_sparsity(1e-3, T, W), bn_scale_mask(graph, params)),
    optax.add_decayed_weights(5e-4, mask=kernels), optax.sgd(lr, 0.9))``.
    ``mask``: a bool tree of the params' structure, or a function of params
    returning one. Step 0 is the first update.

    Args:
      strength: ``s``, a number or a schedule ``step -> s``.
      mask: a bool tree of the params' structure, or a function of params returning one.

    Returns:
      An ``optax.GradientTransformation`` (needs ``params`` in ``update``).

    Raises:
      ValueError: a negative constant ``strength``; ``params`` not given to ``update``.

    References:
      Liu et al., "Learning Efficient Convolutional Networks through Network Slimming", ICCV 2017, Eq. (1); Zhang et
      al., "Pruned-YOLO: Learning Efficient Object Detector Using Model Pruning", ICANN 2021 (the scheduled
      coefficient).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> params = variables["params"]
      >>> tx = jaxkit.prune.pruned_yolo.bn_l1(1e-3, jaxkit.prune.pruned_yolo.bn_scale_mask(graph, params))
      >>> grads = jax.tree.map(jnp.zeros_like, params)
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> print(updates["BatchNorm_0"]["scale"])  # gamma starts at 1: sign 1
      [0.001 0.001 0.001 0.001]
    """
    if not callable(strength) and not (np.isfinite(strength) and strength >= 0):
        raise ValueError(f"`strength` must be a finite number >= 0 or a schedule, got {strength}.")
    sched = strength if callable(strength) else (lambda _: strength)

    def init(params):
        del params
        return BnL1State(count=jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("bn_l1 needs `params` in update().")
        m = mask(params) if callable(mask) else mask
        s = jnp.asarray(sched(state.count))
        updates = jax.tree.map(
            lambda u, p, on: jnp.where(on, u + s.astype(u.dtype) * jnp.sign(p), u), updates, params, m
        )
        return updates, BnL1State(count=cast(jax.Array, optax.safe_int32_increment(state.count)))

    return optax.GradientTransformation(init, update)


def soft_mask(
    params: PyTree, mask: PyTree, *, divisor: float = 5.0, factor: float = 0.1, absolute: bool = True
) -> tuple[PyTree, Any]:
    """Pruned-YOLO's soft mask: multiply every ``gamma`` below ``mean(gamma) / divisor`` by ``factor``.

    The mean is over all BatchNorm scales selected by ``mask`` (e.g.
    :func:`bn_scale_mask`), all layers pooled. ``absolute`` compares
    ``|gamma|`` (our choice: the paper's gammas are non-negative in practice;
    a negative gamma is as small as its magnitude). Returns the new params and
    the fraction of scales that were shrunk. Jittable.

    Args:
      params: the params.
      mask: a bool tree selecting the BatchNorm scales (:func:`bn_scale_mask`).
      divisor: the threshold is ``mean / divisor``.
      factor: the shrink factor.
      absolute: compare ``|gamma|``.

    Returns:
      ``(params, fraction shrunk)``.

    Raises:
      ValueError: a mask that selects nothing, non-positive ``divisor``, ``factor`` outside ``[0, 1]``.

    References:
      Zhang et al., "Pruned-YOLO: Learning Efficient Object Detector Using Model Pruning", ICANN 2021 (the soft mask
      before each epoch).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> params = variables["params"]
      >>> params = {**params, "BatchNorm_0": {**params["BatchNorm_0"], "scale": jnp.array([1.0, 0.01, 1.0, 1.0])}}
      >>> mask = jaxkit.prune.pruned_yolo.bn_scale_mask(graph, params)
      >>> new, shrunk = jaxkit.prune.pruned_yolo.soft_mask(params, mask)
      >>> print(new["BatchNorm_0"]["scale"])
      [1.    0.001 1.    1.   ]
      >>> round(float(shrunk), 4)  # 1 of the 12 scales
      0.0833
    """
    if not divisor > 0 or not 0 <= factor <= 1:
        raise ValueError(f"`divisor` must be > 0 and `factor` in [0, 1], got {divisor}, {factor}.")
    if jax.tree.structure(params) != jax.tree.structure(mask):
        raise ValueError("`mask` must have the structure of `params` (see bn_scale_mask).")
    pm = [
        (p, jnp.broadcast_to(jnp.asarray(m, bool), jnp.shape(p)))
        for p, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask))
    ]
    static = [m for m in jax.tree.leaves(mask) if isinstance(m, (bool, np.bool_, np.ndarray))]
    if len(static) == len(jax.tree.leaves(mask)) and not any(np.any(m) for m in static):
        raise ValueError("`mask` selects no BatchNorm scale.")
    mag = [(jnp.abs(p) if absolute else p, m) for p, m in pm]
    n = sum(jnp.sum(m) for _, m in mag)
    thresh = sum(jnp.sum(jnp.where(m, v, 0)) for v, m in mag) / n / divisor
    frac = sum(jnp.sum(m & (v < thresh)) for v, m in mag) / n

    def leaf(p, m):
        m = jnp.broadcast_to(jnp.asarray(m, bool), jnp.shape(p))
        v = jnp.abs(p) if absolute else p
        return jnp.where(m & (v < thresh), p * factor, p)

    return jax.tree.map(leaf, params, mask), frac
