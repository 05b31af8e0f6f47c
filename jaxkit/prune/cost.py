"""Parameter and MAC counts of a Flax CNN/MLP, before and after channel pruning.

Counts come from the :class:`~jaxkit.prune.graph.Graph` (leaf shapes and the
conv/dense calls of one traced forward pass), so a channel mask can be costed
without building the narrower model: every leaf axis coupled to a group
shrinks to the kept channels, and each layer's MACs are

    conv:  H_out * W_out * k_h * k_w * (C_in / groups) * C_out
    dense: C_in * C_out (times any leading spatial positions)

per example (depthwise convs: ``H_out * W_out * k_h * k_w * C``). BatchNorm,
biases, pooling and activations are not MACs (the usual convention of
thop/ptflops for these tables). Parameters are counted in the ``params``
collection only (BatchNorm's gamma and beta, not its running statistics).

Reference (tested): CIFAR ResNet-56 has 853,018 parameters (848,954 without
BN) and 125,485,696 MACs; with every width halved 214,546 and 31,482,176.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxkit.prune.graph import Graph

__all__ = ["Cost", "count"]


@dataclasses.dataclass(frozen=True)
class Cost:
    """``params`` (in the counted collections), ``macs`` (per example), and the per-layer split."""

    params: int
    macs: int
    layer_macs: Mapping[str, int]
    layer_params: Mapping[str, int]

    @property
    def flops(self) -> int:
        """``2 * macs`` (multiply + add)."""
        return 2 * self.macs

    def reduction(self, base: Cost) -> tuple[float, float]:
        """``(params, macs)`` removed as fractions of ``base``."""
        return 1 - self.params / base.params, 1 - self.macs / base.macs


def count(
    graph: Graph,
    masks: Mapping[str, Any] | None = None,
    *,
    collections: tuple[str, ...] = ("params",),
    exclude: tuple[str, ...] = (),
) -> Cost:
    """Parameters and MACs of the model the graph was traced from, under channel ``masks``.

    Args:
      graph: from :func:`jaxkit.prune.build_graph`.
      masks: ``{group name: bool[C]}`` (True = keep) or None for the dense model.
      collections: variable collections whose leaves count as parameters
        (bare params trees have no collection and always count).
      exclude: leaf-path substrings not to count (``exclude=("BatchNorm",)``
        gives the count without BN).

    Returns:
      A ``Cost`` (``params``, ``macs`` and per-layer ``layer_params`` / ``layer_macs``).

    Raises:
      ValueError: an unknown group, masks of the wrong length.

    References:
      Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017 (FLOPs of pruned models).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> masks = jaxkit.prune.channel_masks(jaxkit.prune.scores("l1", graph, variables), 0.5)
      >>> jaxkit.prune.count(graph).macs, jaxkit.prune.count(graph, masks).macs
      (6936, 2316)
    """
    gm = graph.group_masks(masks or {})
    kept = {g.id: (int(gm[g.id].sum()) if g.id in gm else g.size) for g in graph.groups}
    layer_params = {}
    has_collections = any(p.startswith("params/") for p in graph.shapes)
    for path, shape in graph.shapes.items():
        if has_collections and path.split("/", 1)[0] not in collections:
            continue
        if any(e in path for e in exclude):
            continue
        dims = list(shape)
        for g, mem in graph.groups_of(path):
            dims[mem.axis] = kept[g.id] * mem.repeat
        layer_params[path] = int(np.prod(dims)) if dims else 1
    layer_macs = {}
    for lay in graph.layers:
        c_out = kept[lay.out_group] if lay.out_group is not None else lay.out_size
        c_in = (kept[lay.in_group] if lay.in_group is not None else lay.in_size // lay.in_repeat) * lay.in_repeat
        if lay.groups > 1 and lay.in_group is not None and lay.in_group == lay.out_group:
            macs = lay.spatial * lay.window * c_out  # depthwise
        else:
            macs = lay.spatial * lay.window * (c_in // lay.groups) * c_out
        layer_macs[lay.kernel] = layer_macs.get(lay.kernel, 0) + int(macs)
    return Cost(sum(layer_params.values()), sum(layer_macs.values()), layer_macs, layer_params)
