"""Gator: per-channel stochastic gates with memory / FLOPs / latency cost losses.

"Gator: Customizable Channel Pruning of Neural Networks with Gating" (Passov,
David, Netanyahu, ICANN 2021).

* **Edges** are the prunable channel groups of the dependency graph
  (:func:`jaxkit.prune.build_graph`): a conv's outputs with their BatchNorm,
  or channels tied by residual additions (one gate vector for all producers).
* **Gates**: one parameter ``theta`` per channel of each edge
  (:func:`init_gates`, ``theta_0 = ln 199``: closed with probability 0.005).
  Per sample ``g = 1[theta + x >= 0]``, ``x ~ Logistic(0, 1)`` (binary Gumbel,
  temperature 1); the backward pass uses the gradient of ``sigmoid(theta + x)``
  (straight-through, :func:`sample_gates`). ``P(open) = sigmoid(theta)``.
  At inference ``g = 1[theta > 0]`` (:func:`deterministic_gates`); a channel
  whose ``theta`` reaches ``<= 0`` is pruned for good (:func:`kill`).
* **Gated model**: :func:`gated` wraps ``model.apply`` so every edge's channels
  are multiplied by their gates (after the BatchNorms of the edge, or on the
  consumers' inputs without BN; :mod:`jaxkit.prune.hooks`).
* **Cost loss** (:class:`CostModel`): ``alpha * sum_j c_j(t) lambda_j(t) / sum_j c_j lambda_j``
  with ``c_j(t)`` the open channels of edge ``j`` and ``lambda_j`` its
  per-channel cost factor -- memory (Eq. 5: ``sum k_w k_h c_out(t)`` over convs
  reading ``j`` + ``sum k_w k_h c_in(t)`` over convs writing ``j``), FLOPs
  (Eq. 6: each term weighted by ``d_i = 4^-s_i``, here ``spatial_i / spatial_max``,
  equal when every down-sampling halves both sides), or latency (the measured
  drop of the whole network's latency when half of ``j`` is removed,
  :func:`latency_factors`). A conv between two gated edges is counted through
  both of them (2x its weights); one between a gated and an ungated space once.
* :func:`fold` turns gates into channel masks for :func:`jaxkit.prune.remove`.
* :func:`alpha_path` runs the paper's iterative loop: gated phases with
  increasing ``alpha``, each starting from the previous *gated* weights, each
  folded and handed to a finishing step (removal + fine-tune).

Our extensions, off by default: a gate temperature (``temperature`` of
:func:`sample_gates` and of the training step; the paper fixes 1) and
``alpha``/temperature schedules (:func:`jaxkit.schedules.ramp`,
:func:`jaxkit.schedules.temperature`), both traced so a schedule never retraces.

The implementation lives in :mod:`jaxkit.prune.gator` (Gator is a pruning method); ``jaxkit.gates`` is its
public face and re-exports every public name.
"""

from __future__ import annotations

from jaxkit.prune.gator import (
    THETA0,
    CostModel,
    alpha_path,
    cost_loss,
    cost_model,
    deterministic_gates,
    edges,
    fold,
    gated,
    init_gates,
    kill,
    latency_factors,
    make_train_step,
    open_fraction,
    sample_gates,
    split_optimizer,
)

__all__ = [
    "THETA0",
    "edges",
    "init_gates",
    "sample_gates",
    "deterministic_gates",
    "kill",
    "gated",
    "CostModel",
    "cost_model",
    "cost_loss",
    "split_optimizer",
    "make_train_step",
    "latency_factors",
    "fold",
    "open_fraction",
    "alpha_path",
]
