"""Structured pruning over Flax params: dependency graph, costs, criteria, masks, removal.

Typical use::

    graph = prune.build_graph(model, variables, x[:1])
    stats = prune.collect_stats(model.apply, variables, batches, graph)
    scores = prune.scores("l1", graph, variables, stats)
    masks = prune.channel_masks(scores, ratio=0.5)
    elem = prune.expand(graph, masks, variables["params"])
    params = prune.apply_masks(variables["params"], elem)
    tx = optax.chain(optax.sgd(0.01, 0.9), prune.masked_updates(elem))
    small = prune.remove(graph, masks, variables)        # narrower, same outputs
    prune.count(graph, masks).macs                       # cost without building it
"""

from jaxkit.prune import bfrifp, blend_search, cupnet, gator, pruned_yolo  # method transforms, by paper
from jaxkit.prune.blend import blend, correlation_matrix, kmeans, rankdata, spearman
from jaxkit.prune.cost import Cost, count
from jaxkit.prune.criteria import CRITERIA, Stats, all_scores, bn_layer, collect_stats, geometric_median, minmax, scores
from jaxkit.prune.graph import Graph, Group, Layer, Member, build_graph
from jaxkit.prune.masks import (
    MaskedUpdatesState,
    apply_masks,
    channel_masks,
    expand,
    kept_counts,
    magnitude_masks,
    masked_updates,
    remove,
    sparsity,
)
from jaxkit.prune.pruned_yolo import global_masks

__all__ = [
    "CRITERIA",
    "Cost",
    "Graph",
    "Group",
    "Layer",
    "MaskedUpdatesState",
    "Member",
    "Stats",
    "all_scores",
    "apply_masks",
    "bfrifp",
    "blend",
    "blend_search",
    "bn_layer",
    "build_graph",
    "channel_masks",
    "collect_stats",
    "correlation_matrix",
    "count",
    "cupnet",
    "expand",
    "gator",
    "geometric_median",
    "global_masks",
    "kept_counts",
    "kmeans",
    "magnitude_masks",
    "masked_updates",
    "minmax",
    "pruned_yolo",
    "rankdata",
    "remove",
    "scores",
    "sparsity",
    "spearman",
]
