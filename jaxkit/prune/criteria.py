"""The 12 channel-pruning criteria of "Blending Pruning Criteria for CNNs" (He et al., ICANN 2021, Table 1).

Each criterion gives one score per output channel of a prunable group (larger
= more important). For group ``g`` with producer kernel ``W`` (filter ``F_j`` =
the kernel slice of output channel ``j``, flattened), BatchNorm ``gamma, beta``
and post-ReLU activations ``a_j`` (ReLU of the group's BatchNorm output, or of
the producer's output without BN):

=================  ===========================================================  =========================
name               score of channel j                                           source
=================  ===========================================================  =========================
``l1``             ``sum |F_j|``                                                Li et al. 2017
``l2``             ``||F_j||_2``                                                Han et al. 2015
``fpgm``           ``sum_k ||F_j - F_k||_2``                                    He et al. 2019 (FPGM)
``fermat``         ``||F_j - GM||_2``, GM the geometric median (Weiszfeld)      He et al. 2019 / blending
``bn_gamma``       ``|gamma_j|``                                                Liu et al. 2017
``bn_beta``        ``|beta_j|``                                                 blending paper
``apoz``           ``1 - APoZ_j`` = fraction of positive activations            Hu et al. 2016
``entropy``        entropy of the histogram of GAP(a_j) over the data           Luo & Wu 2017
``taylor_l1``      ``sum_b sum |g_b * F_j|`` (``g_b`` the loss gradient, batch b)  Molchanov et al. 2017/19
``taylor_l2``      ``sqrt(sum_b ||g_b * F_j||_2^2)``                             Molchanov et al. 2019
``taylor_bn_gamma`` ``sum_b |g_b(gamma_j) gamma_j|``                             Molchanov et al. 2019
``taylor_bn_beta``  ``sum_b |g_b(beta_j) beta_j|``                               blending paper
=================  ===========================================================  =========================

Groups tied by a residual add have several producers: their raw scores are
summed. Every score vector is then **min-max normalised per layer** to [0, 1]
(our choice, as the blending paper leaves the scaling open; it changes blended
sums, not ranks; a constant vector maps to 0). Activation and gradient
statistics come from :func:`collect_stats`: one jitted ``lax.scan`` over a few
batches. :func:`all_scores` evaluates any set of criteria for all groups in
one jitted call.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxkit import _checks as _c
from jaxkit import tree as _tree
from jaxkit.prune.graph import Graph, Group

__all__ = [
    "CRITERIA",
    "WEIGHT_CRITERIA",
    "Stats",
    "all_scores",
    "bn_layer",
    "collect_stats",
    "geometric_median",
    "minmax",
    "scores",
]

PyTree = Any
WEIGHT_CRITERIA = ("l1", "l2", "fpgm", "fermat", "bn_gamma", "bn_beta")
DATA_CRITERIA = ("apoz", "entropy", "taylor_l1", "taylor_l2", "taylor_bn_gamma", "taylor_bn_beta")
CRITERIA = WEIGHT_CRITERIA + DATA_CRITERIA
_BN = ("bn_gamma", "bn_beta", "taylor_bn_gamma", "taylor_bn_beta")


@struct.dataclass
class Stats:
    """Data statistics for the activation and Taylor criteria (from :func:`collect_stats`).

    ``taylor_abs`` / ``taylor_sq``: ``{params leaf path: array}`` sums over
    batches of ``|g_b * w|`` and ``(g_b * w)^2``; ``positive``: ``{group: fraction of
    positive post-ReLU activations per channel}``; ``gap``: ``{group: [N, C]}``
    global-average-pooled post-ReLU activations.
    """

    taylor_abs: PyTree
    taylor_sq: PyTree
    positive: dict
    gap: dict
    batches: int = struct.field(pytree_node=False, default=0)


def bn_layer(graph: Graph, group: Group) -> tuple[str | None, str | None]:
    """``(scale path, bias path)`` of the group's BatchNorm (``(None, None)`` without one).

    Args:
      graph: the model's graph.
      group: one of its groups.

    Returns:
      ``(scale path, bias path)``.

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> jaxkit.prune.bn_layer(graph, graph.group("params/Conv_0"))
      ('params/BatchNorm_0/scale', 'params/BatchNorm_0/bias')
    """
    elems = [m.path for m in group.members if m.role == "elem"]
    for p in elems:
        if p.endswith("/scale"):
            layer = p[: -len("/scale")]
            bias = layer + "/bias"
            return p, (bias if bias in elems else None)
    return None, None


def _producer_kernels(group: Group) -> list[tuple[str, int]]:
    return [(m.path, m.axis) for m in group.members if m.role == "out"]


def _filters(w, axis):
    return jnp.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)


def minmax(s: jax.Array) -> jax.Array:
    """Min-max normalisation ``(s - min) / (max - min)`` of a score vector ``[C]``.

    A constant vector maps to zeros; NaN gives NaN.

    Args:
      s: ``[C]`` scores.

    Returns:
      ``[C]`` scores in ``[0, 1]``.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021 (criteria normalised per layer before blending).

    Examples:
      >>> jaxkit.prune.minmax(jnp.array([1.0, 3.0, 2.0])), jaxkit.prune.minmax(jnp.ones(3))
      (Array([0. , 1. , 0.5], dtype=float32), Array([0., 0., 0.], dtype=float32))
    """
    s = _c.array(s, "s", ndim=1, kind="r", nonempty=True)
    lo, hi = jnp.min(s), jnp.max(s)
    span = hi - lo
    scaled = jnp.clip((s - lo) / jnp.where(span > 0, span, 1.0), 0.0, 1.0)
    out = jnp.where(span > 0, jnp.where(s == hi, 1.0, scaled), jnp.zeros_like(s, dtype=scaled.dtype))
    return jnp.where(jnp.isnan(span), jnp.nan, out)


def geometric_median(points: jax.Array, iters: int = 50, eps: float = 1e-8) -> jax.Array:
    """The geometric median ``argmin_y sum_i ||x_i - y||_2`` of the rows of ``points`` ``[N, D]``.

    Weiszfeld iterations from the mean.

    Args:
      points: ``[N, D]``.
      iters: iterations.
      eps: distance floor (a point at the median).

    Returns:
      ``[D]``.

    References:
      Weiszfeld, "Sur le point pour lequel la somme des distances de n points donnés est minimum", Tôhoku Math.
      J. 43, 1937; He et al., "Filter Pruning via Geometric Median", CVPR 2019 (FPGM).

    Examples:
      >>> jaxkit.prune.geometric_median(jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0]]))
      Array([0.5, 0.5], dtype=float32)
    """
    points = _c.array(points, "points", ndim=2, kind="f", nonempty=True)

    def step(y, _):
        d = jnp.sqrt(jnp.sum((points - y) ** 2, axis=1) + eps**2)
        w = 1.0 / d
        return (w @ points) / jnp.sum(w), None

    y, _ = jax.lax.scan(step, points.mean(0), None, length=iters)
    return y


def _pairwise(f):
    f = f - f.mean(0)  # distances are translation invariant; centring curbs cancellation in the Gram form
    sq = jnp.sum(f * f, 1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * jnp.matmul(f, f.T, precision=jax.lax.Precision.HIGHEST)
    d2 = jnp.where(jnp.eye(f.shape[0], dtype=bool), 0.0, jnp.maximum(d2, 0.0))  # sqrt would amplify rounding
    return jnp.sqrt(d2)


def _entropy(gap, bins):
    lo, hi = gap.min(0), gap.max(0)
    span = jnp.where(hi > lo, hi - lo, 1.0)
    idx = jnp.clip(jnp.floor((gap - lo) / span * bins), 0, bins - 1).astype(jnp.int32)
    counts = jax.nn.one_hot(idx, bins).sum(0)  # [C, bins]
    p = counts / gap.shape[0]
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=1)


@dataclasses.dataclass(frozen=True)
class _Scoring:
    """What a criterion sees for one group: the graph, the group, the flat variables, the data statistics."""

    name: str
    graph: Graph
    group: Group
    flat: Mapping[str, Any]
    stats: Stats | None
    fermat_iters: int
    bins: int


def _over_kernels(per_filter, source=None):
    """A criterion summed over the group's producer kernels: ``per_filter(filters [C, K], scoring) -> [C]`` on the
    weights, or on the Taylor sums named by ``source``."""

    def score(sc: _Scoring):
        total = 0.0
        for path, axis in _producer_kernels(sc.group):
            tree = sc.flat if source is None else getattr(sc.stats, source)
            total = total + per_filter(_filters(tree[_key(tree, path)], axis), sc)
        return total

    return score


def _batchnorm(which, source=None):
    """``|gamma|`` or ``|beta|`` of the group's BatchNorm, or their Taylor sums (``source="taylor_abs"``)."""

    def score(sc: _Scoring):
        scale, bias = bn_layer(sc.graph, sc.group)
        path = scale if which == "gamma" else bias
        if path is None:
            raise ValueError(f"Criterion {sc.name!r} needs a BatchNorm after group {sc.group.name!r}; it has none.")
        tree = sc.flat if source is None else getattr(sc.stats, source)
        return jnp.abs(tree[_key(tree, path)])

    return score


def _fermat(f, sc):
    gm = geometric_median(f, sc.fermat_iters)
    return jnp.sqrt(jnp.sum((f - gm) ** 2, 1))


#: Every criterion by name: ``scoring -> [C]`` raw scores (higher = more important). The data criteria
#: (:data:`DATA_CRITERIA`) read :class:`Stats`.
_SCORERS = {
    "l1": _over_kernels(lambda f, sc: jnp.abs(f).sum(1)),
    "l2": _over_kernels(lambda f, sc: jnp.sqrt(jnp.sum(f * f, 1))),
    "fpgm": _over_kernels(lambda f, sc: _pairwise(f).sum(1)),
    "fermat": _over_kernels(_fermat),
    "bn_gamma": _batchnorm("gamma"),
    "bn_beta": _batchnorm("beta"),
    "apoz": lambda sc: sc.stats.positive[sc.group.name],
    "entropy": lambda sc: _entropy(sc.stats.gap[sc.group.name], sc.bins),
    "taylor_l1": _over_kernels(lambda f, sc: f.sum(1), source="taylor_abs"),
    "taylor_l2": _over_kernels(lambda f, sc: jnp.sqrt(f.sum(1)), source="taylor_sq"),
    "taylor_bn_gamma": _batchnorm("gamma", source="taylor_abs"),
    "taylor_bn_beta": _batchnorm("beta", source="taylor_abs"),
}
assert tuple(_SCORERS) == CRITERIA


def _raw(
    name: str, graph: Graph, group: Group, flat: Mapping[str, Any], stats: Stats | None, *, fermat_iters: int, bins: int
):
    if name in DATA_CRITERIA and stats is None:
        raise ValueError(f"Criterion {name!r} needs data statistics: pass `stats=collect_stats(...)`.")
    if name not in _SCORERS:
        raise ValueError(f"Unknown criterion {name!r}; expected one of {CRITERIA}.")
    return _SCORERS[name](_Scoring(name, graph, group, flat, stats, int(fermat_iters), int(bins)))


def _key(flat, path):
    if path in flat:
        return path
    stripped = path.split("/", 1)[1] if "/" in path else path
    if stripped in flat:
        return stripped
    raise ValueError(f"Leaf {path!r} of the graph is missing from the variables.")


# Compiled scorers by (graph, plan, options), least recently used first: bounded, so a long session that builds many
# graphs does not keep every one alive, yet large enough for a per-layer x per-criterion loop over a real network
# (12 criteria x 6 layers = 72 plans in benchmarks/masks.py; at 16 entries that loop recompiled on every call,
# 0.052 -> 8.2 s). The identity check below guards against a reused id().
_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 256


def all_scores(
    graph: Graph,
    variables: PyTree,
    stats: Stats | None = None,
    *,
    criteria: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    normalize: bool = True,
    fermat_iters: int = 50,
    bins: int = 32,
) -> dict[str, dict[str, jax.Array]]:
    """``{criterion: {group name: scores[C]}}`` for all prunable groups, in one jitted call.

    Args:
      graph: the model's :class:`~jaxkit.prune.graph.Graph`.
      variables: variables dict (``params`` + ``batch_stats``) or bare params.
      stats: :class:`Stats` for the data criteria (``apoz``, ``entropy``,
        ``taylor_*``); without it only the weight criteria are available.
      criteria: names (default: all that apply -- weight criteria without
        ``stats``, and no BN criteria for groups without BatchNorm).
      groups: group names (default: all prunable groups).
      normalize: per-layer min-max to [0, 1].
      fermat_iters: Weiszfeld iterations.
      bins: histogram bins of ``entropy``.

    Returns:
      ``{criterion: {group: scores [C]}}``.

    Raises:
      ValueError: an unknown criterion or group, a data criterion without ``stats``.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Table 1 (the 12 criteria).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> sorted(jaxkit.prune.all_scores(graph, variables))  # the weight criteria (no data statistics given)
      ['bn_beta', 'bn_gamma', 'fermat', 'fpgm', 'l1', 'l2']
    """
    gs = [graph.group(n) for n in groups] if groups is not None else list(graph.prunable)
    if not gs:
        raise ValueError("The graph has no prunable groups.")
    _c.tree_finite(variables, "variables")  # a NaN weight would vanish into finite, normalised scores
    if stats is not None:
        _c.tree_finite(stats, "stats")
    explicit = criteria is not None
    crit = tuple(criteria) if explicit else (CRITERIA if stats is not None else WEIGHT_CRITERIA)
    unknown = [c for c in crit if c not in CRITERIA]
    if unknown:
        raise ValueError(f"Unknown criteria {unknown}; expected names from {CRITERIA}.")
    plan = []
    for c in crit:
        for g in gs:
            if c in _BN and bn_layer(graph, g)[0] is None:
                if explicit:
                    raise ValueError(f"Criterion {c!r} needs a BatchNorm after group {g.name!r}; it has none.")
                continue
            plan.append((c, g.name))
    key = (id(graph), tuple(plan), normalize, fermat_iters, bins, stats is None)
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not graph:
        by_name = {g.name: g for g in gs}

        def compute(flat, st):
            out = {}
            for c, gname in plan:
                s = _raw(c, graph, by_name[gname], flat, st, fermat_iters=fermat_iters, bins=bins)
                out.setdefault(c, {})[gname] = minmax(s) if normalize else s
            return out

        hit = (graph, jax.jit(compute))
        _CACHE[key] = hit
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return hit[1](_tree.flatten(variables, "variables"), stats)


def scores(criterion: str, graph: Graph, variables: PyTree, stats: Stats | None = None, **kw) -> dict[str, jax.Array]:
    """``{group name: scores[C]}`` for one criterion (see :func:`all_scores`).

    Args:
      criterion: a criterion name (``"l1"``, ``"apoz"``, ...).
      graph: the model's graph.
      variables: its variables.
      stats: :class:`Stats` for the data criteria.
      **kw: further :func:`all_scores` options.

    Returns:
      ``{group: scores [C]}``.

    Raises:
      ValueError: as :func:`all_scores`.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Table 1.

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> {k: v.shape for k, v in jaxkit.prune.scores("l1", graph, variables).items()}
      {'params/Conv_0': (4,), 'params/Conv_1': (8,)}
    """
    return all_scores(graph, variables, stats, criteria=[criterion], **kw)[criterion]


def _activation_layer(graph: Graph, group: Group) -> str:
    scale, _ = bn_layer(graph, group)
    layer = scale[: -len("/scale")] if scale else group.producers[0]
    return layer.split("/", 1)[1] if layer.startswith(("params/", "batch_stats/")) else layer


def collect_stats(
    model: nn.Module,
    variables: PyTree,
    xs: jax.Array,
    ys: jax.Array,
    graph: Graph,
    *,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> Stats:
    """Activation and gradient statistics over ``B`` batches in one jitted ``lax.scan``.

    Args:
      model: the Flax module (its ``apply`` is called with
        ``capture_intermediates=True`` to read each group's activations).
      variables: ``{"params": ..., ...}``.
      xs: stacked batches ``[B, N, ...]``.
      ys: their labels ``[B, N]``.
      graph: the model's graph.
      loss_fn: ``loss(logits, y) -> scalar`` (default: softmax cross-entropy
        with integer labels).
      apply_kwargs: extra ``apply`` arguments (default ``{"train": False}``:
        running BatchNorm statistics, nothing mutated).

    Returns:
      A ``Stats`` for the data criteria of :func:`all_scores`.

    Raises:
      ValueError: batches and labels of different leading shapes, inputs the model does not accept.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Table 1 (APoZ, entropy and the Taylor criteria need
      activations and gradients).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> xs, ys = jax.random.normal(jax.random.key(2), (2, 4, 8, 8, 1)), jnp.zeros((2, 4), jnp.int32)
      >>> stats = jaxkit.prune.collect_stats(model, variables, xs, ys, graph)
      >>> len(jaxkit.prune.all_scores(graph, variables, stats))
      12
    """
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise ValueError("`variables` must be the model's variables dict with a 'params' entry.")
    xs = _c.array(xs, "xs", min_ndim=2, kind="f", nonempty=True)
    ys = _c.array(ys, "ys", ndim=2, kind="i", nonempty=True)
    _c.finite(xs, "xs")
    xs, ys = jnp.asarray(xs), jnp.asarray(ys)
    if xs.ndim < 2 or ys.shape[:2] != xs.shape[:2]:
        raise ValueError(f"`xs` must be stacked batches [B, N, ...] and `ys` [B, N]; got {xs.shape} and {ys.shape}.")
    loss_fn = loss_fn or (lambda lo, y: optax.softmax_cross_entropy_with_integer_labels(lo, y).mean())
    kw: dict[str, Any] = dict(apply_kwargs) if apply_kwargs is not None else {"train": False}
    gs = list(graph.prunable)
    layers = {g.name: _activation_layer(graph, g) for g in gs}
    params = variables["params"]
    rest = {k: v for k, v in variables.items() if k != "params"}

    def one(carry, batch):
        x, y = batch

        def loss(p):
            out, inter = model.apply(
                {"params": p, **rest}, x, capture_intermediates=True, mutable=["intermediates"], **kw
            )
            return loss_fn(out, y), inter["intermediates"]

        (_, inter), g = jax.value_and_grad(loss, has_aux=True)(params)
        flat_i = _tree.flatten(inter, "intermediates")
        gw = jax.tree.map(lambda a, b: a * b, g, params)
        t_abs, t_sq, pos = carry
        t_abs = jax.tree.map(lambda a, b: a + jnp.abs(b), t_abs, gw)
        t_sq = jax.tree.map(lambda a, b: a + b * b, t_sq, gw)
        gaps, new_pos = {}, {}
        for name, layer in layers.items():
            act = jax.nn.relu(flat_i[f"{layer}/__call__/0"])
            axes = tuple(range(1, act.ndim - 1))
            new_pos[name] = pos[name] + jnp.mean(act > 0, axis=(0,) + axes)
            gaps[name] = act.mean(axis=axes) if axes else act
        return (t_abs, t_sq, new_pos), gaps

    zeros = jax.tree.map(jnp.zeros_like, params)
    pos0 = {g.name: jnp.zeros(g.size) for g in gs}
    run = jax.jit(lambda xs, ys: jax.lax.scan(one, (zeros, zeros, pos0), (xs, ys)))
    (t_abs, t_sq, pos), gaps = run(xs, ys)
    b = xs.shape[0]
    gap = {k: v.reshape(-1, v.shape[-1]) for k, v in gaps.items()}
    t_abs, t_sq = (_tree.flatten(t, "taylor") for t in (t_abs, t_sq))
    return Stats(taylor_abs=t_abs, taylor_sq=t_sq, positive={k: v / b for k, v in pos.items()}, gap=gap, batches=b)
