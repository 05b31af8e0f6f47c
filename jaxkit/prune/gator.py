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
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkit import _checks as _c
from jaxkit.prune.graph import Graph
from jaxkit.prune.hooks import channel_hooks, intercept

__all__ = [
    "THETA0",
    "CostModel",
    "alpha_path",
    "cost_loss",
    "cost_model",
    "deterministic_gates",
    "edges",
    "fold",
    "gated",
    "init_gates",
    "kill",
    "latency_factors",
    "make_train_step",
    "open_fraction",
    "sample_gates",
    "split_optimizer",
]

PyTree = Any
THETA0 = math.log(199.0)  # sigmoid(THETA0) = 0.995
DEAD = -1e9  # theta of a channel pruned for good: never opens again, zero gradient
KINDS = ("memory", "flops", "latency")


def edges(graph: Graph) -> list[str]:
    """Names of the gateable edges: prunable groups with at least one producing layer.

    Args:
      graph: a :func:`jaxkit.prune.build_graph` graph.

    Returns:
      A list of edge (group) names.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021 (gates
      on the channels of each "edge" between layers).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> jaxkit.gates.edges(graph)
      ['params/Conv_0', 'params/Conv_1']
    """
    return [g.name for g in graph.prunable if any(m.role == "out" for m in g.members)]


def init_gates(graph: Graph, *, init: float = THETA0, groups: Sequence[str] | None = None) -> dict[str, jax.Array]:
    """Gate parameters ``{edge: theta [C]}`` filled with ``init`` (default ``ln 199``: open with probability 0.995).

    Args:
      graph: a :func:`jaxkit.prune.build_graph` graph.
      init: the initial ``theta``.
      groups: the edges to gate (default: :func:`edges`).

    Returns:
      ``{edge: theta [C]}``.

    Raises:
      ValueError: an unknown or ungateable group, a non-finite ``init``.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021 (the
      initialisation ``theta_0 = ln 199``).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> jax.tree.map(jnp.shape, theta), round(float(theta["params/Conv_0"][0]), 4)
      ({'params/Conv_0': (4,), 'params/Conv_1': (8,)}, 5.2933)
    """
    names = edges(graph) if groups is None else [graph.group(n).name for n in groups]
    for n in names:
        if not graph.group(n).prunable:
            raise ValueError(f"Edge {n!r} cannot be gated: {graph.group(n).reason}.")
    if not np.isfinite(init):
        raise ValueError(f"`init` must be a finite number, got {init}.")
    return {n: jnp.full((graph.group(n).size,), init, jnp.float32) for n in names}


def _check_gates(gate_params, name="gate_params"):
    if not isinstance(gate_params, Mapping) or not gate_params:
        raise ValueError(f"`{name}` must be a non-empty {{edge: theta}} mapping (see init_gates).")
    for edge, theta in gate_params.items():
        _c.array(theta, f"{name}[{edge!r}]", ndim=1, kind="f", nonempty=True)
        _c.no_nan(theta, f"{name}[{edge!r}]")  # NaN would read as a closed gate; +-inf are valid (dead / open)


@_c.key_first(0, 1)
def sample_gates(
    key: jax.Array, gate_params: Mapping[str, jax.Array], batch: int, *, temperature: float | jax.Array = 1.0
) -> dict[str, jax.Array]:
    """Per-sample binary gates ``[batch, C]`` with the straight-through gradient of ``sigmoid((theta + x) / tau)``.

    Forward: ``1[theta + x >= 0]``, ``x ~ Logistic(0, 1)``; backward:
    ``d sigmoid((theta + x) / tau)``. ``temperature`` (``tau``) is our
    extension, 1 in the paper (a schedule from :mod:`jaxkit.schedules` can drive it).

    Args:
      key: PRNG key of the logistic noise.
      gate_params: ``{edge: theta [C]}`` (:func:`init_gates`).
      batch: samples per batch.
      temperature: ``tau`` (> 0).

    Returns:
      ``{edge: gates [batch, C]}`` of 0.0 / 1.0.

    Raises:
      ValueError: ``batch < 1``, a non-positive concrete ``temperature``.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021
      (binary Gumbel gates with a straight-through estimator); Maddison, Mnih & Teh, "The Concrete
      Distribution", ICLR 2017 (the binary relaxation).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> g = jaxkit.gates.sample_gates(jax.random.key(1), theta, 2)
      >>> g["params/Conv_1"].shape, float(g["params/Conv_1"].mean())  # ln 199: open almost surely
      ((2, 8), 1.0)
    """
    _check_gates(gate_params)
    if int(batch) < 1:
        raise ValueError(f"`batch` must be >= 1, got {batch}.")
    if _c.is_concrete(temperature) and not float(temperature) > 0:
        raise ValueError(f"`temperature` must be > 0, got {temperature}.")
    out = {}
    for i, (name, theta) in enumerate(sorted(gate_params.items())):
        x = jax.random.logistic(jax.random.fold_in(key, i), (int(batch),) + jnp.shape(theta))
        z = theta + x
        soft = jax.nn.sigmoid(z / temperature)
        hard = _c.nan_if(jnp.isnan(z), (z >= 0).astype(soft.dtype))  # NaN theta (inside a trace) stays NaN
        out[name] = hard + (soft - jax.lax.stop_gradient(soft))  # exactly 0/1 forward, sigmoid' backward
    return out


def deterministic_gates(gate_params: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Inference gates ``1[theta > 0]`` (shape ``[C]``, broadcast over the batch).

    Args:
      gate_params: ``{edge: theta [C]}`` (:func:`init_gates`).

    Returns:
      ``{edge: gates [C]}`` of 0.0 / 1.0.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021
      (deterministic gates at inference).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> theta = {k: v.at[:2].set(-1.0) for k, v in theta.items()}  # close two gates per edge
      >>> print(jaxkit.gates.deterministic_gates(theta)["params/Conv_0"])
      [0. 0. 1. 1.]
    """
    _check_gates(gate_params)
    return {n: _c.nan_if(jnp.isnan(t), (t > 0).astype(jnp.float32)) for n, t in gate_params.items()}


def kill(gate_params: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Prune for good: every ``theta <= 0`` becomes a large negative constant (zero gradient, never reopens).

    Apply after each optimiser step. Jittable; NaN stays NaN.

    Args:
      gate_params: ``{edge: theta [C]}`` (:func:`init_gates`).

    Returns:
      The new gate parameters.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021
      (closed gates stay closed).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> theta = {k: v.at[:2].set(-1.0) for k, v in theta.items()}  # close two gates per edge
      >>> killed = jaxkit.gates.kill(theta)["params/Conv_0"]
      >>> print(killed < -1e8)
      [ True  True False False]
    """
    _check_gates(gate_params)
    return {n: jnp.where(t <= 0, DEAD, t) for n, t in gate_params.items()}


def open_fraction(gate_params: Mapping[str, jax.Array]) -> float:
    """The fraction of channels with ``theta > 0``.

    Args:
      gate_params: ``{edge: theta [C]}`` (:func:`init_gates`).

    Returns:
      A Python float in ``[0, 1]``.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021.

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> theta = {k: v.at[:2].set(-1.0) for k, v in theta.items()}  # close two gates per edge
      >>> round(jaxkit.gates.open_fraction(theta), 4)  # 8 of 12 channels
      0.6667
    """
    _check_gates(gate_params)
    leaves = [np.asarray(t) for t in gate_params.values()]
    return float(sum((t > 0).sum() for t in leaves) / sum(t.size for t in leaves))


def gated(apply_fn: Callable | nn.Module, graph: Graph, names: Sequence[str] | None = None) -> Callable:
    """Wrap ``apply_fn``: ``apply(variables, x, *, gates, **kwargs)`` multiplies every edge's channels by its gates.

    ``gates``: ``{edge: [B, C]}`` per-sample (:func:`sample_gates`) or ``[C]``
    shared (:func:`deterministic_gates`). Every producer of a highway edge sees
    the same gate vector.

    Args:
      apply_fn: a Flax ``apply`` (or the module).
      graph: the model's :func:`jaxkit.prune.build_graph` graph.
      names: the gated edges (default: :func:`edges`).

    Returns:
      The gated ``apply``.

    Raises:
      ValueError: an unknown edge name.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021.

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> apply = jaxkit.gates.gated(model, graph)
      >>> g = jaxkit.gates.sample_gates(jax.random.key(1), theta, 2)
      >>> apply(variables, jnp.ones((2, 8, 8, 1)), gates=g).shape
      (2, 3)
    """
    apply = apply_fn.apply if isinstance(apply_fn, nn.Module) else apply_fn
    names = list(names) if names is not None else edges(graph)
    hooks = channel_hooks(graph, names)

    sizes = {n: graph.group(n).size for n in names}

    def wrapped(variables, *args, gates, **kwargs):
        missing = set(names) - set(gates)
        if missing:
            raise ValueError(f"`gates` lacks the edges {sorted(missing)}.")
        for n in names:
            if jnp.shape(gates[n])[-1:] != (sizes[n],) or jnp.ndim(gates[n]) > 2:
                raise ValueError(
                    f"`gates[{n!r}]` must be [C] or [B, C] with C = {sizes[n]}, got {jnp.shape(gates[n])}."
                )

        def modify(x, hook, mpath, call):
            g = gates[names[hook.slot]]
            if hook.repeat > 1:
                g = jnp.tile(g, (1,) * (g.ndim - 1) + (hook.repeat,))
            if g.ndim == 2:  # [B, C] -> [B, 1, ..., 1, C]
                g = g.reshape(g.shape[:1] + (1,) * (x.ndim - 2) + g.shape[1:])
            return x * g.astype(x.dtype)

        with intercept(hooks, modify):
            return apply(variables, *args, **kwargs)

    wrapped.names = names
    return wrapped


@dataclasses.dataclass(frozen=True)
class CostModel:
    """The normalised Gator cost ``sum_j c_j(t) lambda_j(t) / sum_j c_j lambda_j``.

    ``terms[j]``: ``(weight, other edge or None, other full size)`` -- each
    contributes ``weight * c_other(t)`` (or ``weight * size`` for an ungated
    other side) to ``lambda_j(t)``. ``constant[j]``: a time-independent
    ``lambda_j`` (latency). ``denominator`` = ``sum_j c_j lambda_j(0)``.
    """

    kind: str
    names: tuple[str, ...]
    sizes: tuple[int, ...]
    terms: tuple[tuple[tuple[float, int | None, int], ...], ...]
    constant: tuple[float, ...]
    denominator: float

    def factors(self, counts: Sequence[jax.Array] | None = None) -> list[jax.Array]:
        """``lambda_j(t)`` given open counts ``c_j(t)`` (default: all open)."""
        counts = counts if counts is not None else [jnp.asarray(float(s)) for s in self.sizes]
        out = []
        for j, ts in enumerate(self.terms):
            lam = jnp.asarray(self.constant[j])
            for w, other, size in ts:
                lam = lam + w * (counts[other] if other is not None else size)
            out.append(lam)
        return out

    def raw(self, gates: Mapping[str, jax.Array]) -> jax.Array:
        """``sum_j c_j(t) lambda_j(t)`` per sample (``[B]``) or scalar for ``[C]`` gates."""
        counts = [jnp.sum(gates[n], axis=-1) for n in self.names]
        lam = self.factors(counts)
        return cast(jax.Array, sum(c * l for c, l in zip(counts, lam)))

    def __call__(self, gates: Mapping[str, jax.Array]) -> jax.Array:
        """The normalised cost, averaged over the batch (1 when every gate is open)."""
        return jnp.mean(self.raw(gates)) / self.denominator


def cost_loss(model: CostModel, gates: Mapping[str, jax.Array], alpha: float | jax.Array) -> jax.Array:
    """The term added to the task loss: ``alpha * cost(gates)`` (``alpha >= 0``).

    Args:
      model: a ``CostModel`` (:func:`cost_model`).
      gates: ``{edge: gates}``, sampled or deterministic.
      alpha: the cost's weight (may be traced: a schedule never retraces).

    Returns:
      A scalar array.

    Raises:
      ValueError: a negative concrete ``alpha``.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021 (the
      loss ``L_task + alpha * L_cost``).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> cost = jaxkit.gates.cost_model(graph, "flops")
      >>> float(jaxkit.gates.cost_loss(cost, jaxkit.gates.deterministic_gates(theta), 0.5))
      0.5
    """
    if isinstance(alpha, (int, float)) and not alpha >= 0:
        raise ValueError(f"`alpha` must be >= 0, got {alpha}.")
    missing = set(model.names) - set(gates)
    if missing:
        raise ValueError(f"`gates` lacks the edges {sorted(missing)} of the cost model.")
    for n, size in zip(model.names, model.sizes):
        g = _c.array(gates[n], f"gates[{n!r}]", ndim=(1, 2), kind="f")
        if jnp.shape(g)[-1] != size:
            raise ValueError(f"`gates[{n!r}]` must have {size} channels (shape [C] or [B, C]), got {jnp.shape(g)}.")
    return alpha * model(gates)


def split_optimizer(model_tx, gate_tx):
    """``optax.multi_transform`` for params ``{"model": ..., "gates": ...}``.

    The paper trains gates with SGD + momentum like the weights; with Adam
    every gate would move at about its learning rate per step whatever the
    gradient's size. ``optax.set_to_zero()`` as ``gate_tx`` freezes the gates.

    Args:
      model_tx: the weights' optax optimiser.
      gate_tx: the gates' optax optimiser.

    Returns:
      An ``optax.GradientTransformation``.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021 (SGD
      with momentum for weights and gates).

    Examples:
      >>> tx = jaxkit.gates.split_optimizer(optax.sgd(0.1, momentum=0.9), optax.set_to_zero())
      >>> params = {"model": {"w": jnp.ones(2)}, "gates": {"e": jnp.ones(2)}}
      >>> updates, _ = tx.update(params, tx.init(params), params)
      >>> print(updates["model"]["w"], updates["gates"]["e"])
      [-0.1 -0.1] [0. 0.]
    """
    return optax.multi_transform({"model": model_tx, "gates": gate_tx}, {"model": "model", "gates": "gates"})


def make_train_step(apply: Callable, cost: CostModel, tx, *, task_loss: Callable | None = None) -> Callable:
    """A jitted gated training step for params ``{"model": variables["params"], "gates": theta}``.

    ``step(params, opt_state, batch_stats, x, y, key, alpha, temperature=1.0)
    -> (params, opt_state, batch_stats, metrics)``:
    samples per-sample gates (at ``temperature``, 1 in the paper), minimises
    ``task_loss(logits, y) + alpha * cost`` (``alpha`` and ``temperature`` are
    traced, so values from a schedule never retrace), applies ``tx`` (e.g.
    :func:`split_optimizer`), then :func:`kill`. ``apply`` comes from
    :func:`gated`; ``batch_stats`` is ``{}`` for models without BatchNorm.
    ``task_loss`` defaults to mean softmax cross-entropy with integer labels.
    Metrics: ``loss``, ``task_loss``, ``cost``.

    Args:
      apply: the gated ``apply`` (:func:`gated`).
      cost: a ``CostModel``.
      tx: an optax optimiser for ``{"model", "gates"}`` (:func:`split_optimizer`).
      task_loss: ``task_loss(logits, y) -> scalar``.

    Returns:
      ``step(params, opt_state, batch_stats, x, y, key, alpha, temperature=1.0)``.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021 (the
      gated training phase).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> apply, cost = jaxkit.gates.gated(model, graph), jaxkit.gates.cost_model(graph, "flops")
      >>> tx = jaxkit.gates.split_optimizer(optax.sgd(0.1), optax.sgd(0.1))
      >>> params = {"model": variables["params"], "gates": theta}
      >>> step = jaxkit.gates.make_train_step(apply, cost, tx)
      >>> x, y = jax.random.normal(jax.random.key(2), (4, 8, 8, 1)), jnp.array([0, 1, 2, 0])
      >>> params, opt_state, stats, metrics = step(params, tx.init(params), variables["batch_stats"], x, y,
      ...                                          jax.random.key(3), 0.1)
      >>> sorted(metrics)
      ['cost', 'loss', 'task_loss']
    """
    task_loss = task_loss or (lambda logits, y: optax.softmax_cross_entropy_with_integer_labels(logits, y).mean())

    @jax.jit
    def step(params, opt_state, batch_stats, x, y, key, alpha, temperature=1.0):
        def loss_fn(p):
            g = sample_gates(key, p["gates"], x.shape[0], temperature=temperature)
            variables = {"params": p["model"]}
            if batch_stats:
                variables["batch_stats"] = batch_stats
                logits, upd = apply(variables, x, gates=g, train=True, mutable=["batch_stats"])
                new_stats = upd["batch_stats"]
            else:
                logits, new_stats = apply(variables, x, gates=g, train=True), batch_stats
            t, c = task_loss(logits, y), cost(g)
            return t + alpha * c, (new_stats, {"task_loss": t, "cost": c})

        (loss, (new_stats, m)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = cast(dict, optax.apply_updates(params, updates))
        return {**params, "gates": kill(params["gates"])}, opt_state, new_stats, {"loss": loss, **m}

    return step


def cost_model(
    graph: Graph, kind: str = "flops", *, names: Sequence[str] | None = None, latency: Mapping[str, float] | None = None
) -> CostModel:
    """Build the cost of ``kind`` in ``("memory", "flops", "latency")`` for the graph's edges.

    Memory (Eq. 5) and FLOPs (Eq. 6) come from the graph's conv/dense layers
    (a dense layer after a flatten reads each channel ``repeat`` times, which
    multiplies its terms). Latency needs ``latency = {edge: lambda_j}`` from
    :func:`latency_factors` (every edge present).

    The cost is normalised to 1 with every gate open.

    Args:
      graph: a :func:`jaxkit.prune.build_graph` graph.
      kind: ``"memory"``, ``"flops"`` or ``"latency"``.
      names: the gated edges (default: :func:`edges`).
      latency: ``{edge: lambda_j}`` for ``"latency"``.

    Returns:
      A ``CostModel``: ``cost(gates) -> scalar``, differentiable in the gates.

    Raises:
      ValueError: an unknown ``kind``, ``latency`` missing an edge.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021, Eq.
      (5) (memory), Eq. (6) (FLOPs) and the latency model.

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> cost = jaxkit.gates.cost_model(graph, "flops")
      >>> float(cost(jaxkit.gates.deterministic_gates(theta)))
      1.0
      >>> theta = {k: v.at[:2].set(-1.0) for k, v in theta.items()}  # close two gates per edge
      >>> round(float(cost(jaxkit.gates.deterministic_gates(theta))), 4)
      0.4007
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}.")
    names = list(names) if names is not None else edges(graph)
    idx: dict[Any, int] = {graph.group(n).id: j for j, n in enumerate(names)}
    sizes = tuple(graph.group(n).size for n in names)
    terms: list[list] = [[] for _ in names]
    constant = [0.0] * len(names)
    if kind == "latency":
        if latency is None:
            raise ValueError("kind='latency' needs `latency` = {edge: factor} (see latency_factors).")
        missing = [n for n in names if n not in latency]
        if missing:
            raise ValueError(f"`latency` lacks the edges {missing}.")
        constant = [float(latency[n]) for n in names]
    else:
        max_spatial = max(lay.spatial for lay in graph.layers)
        for lay in graph.layers:
            # weights of the layer = window * (in / groups) * out; per channel of one side it is
            # window / groups * (the other side's size), the input side counted repeat times after a flatten
            w = lay.window / max(lay.groups, 1) * (lay.spatial / max_spatial if kind == "flops" else 1.0)
            rep = lay.in_repeat
            j_in, j_out = idx.get(lay.in_group), idx.get(lay.out_group)
            if j_in is not None and j_in == j_out:
                continue  # depthwise: a channel maps to itself; no coupling term
            if j_in is not None:  # conv reading edge j: k_w k_h c_out(t)
                terms[j_in].append((w * rep, j_out, lay.out_size))
            if j_out is not None:  # conv writing edge j: k_w k_h c_in(t)
                terms[j_out].append((w * rep, j_in, 0) if j_in is not None else (w, None, lay.in_size))
    model = CostModel(kind, tuple(names), sizes, tuple(tuple(t) for t in terms), tuple(constant), 1.0)
    lam0 = model.factors()
    denom = float(sum(s * float(l) for s, l in zip(sizes, lam0)))
    if not denom > 0:
        raise ValueError(f"the {kind} cost of the gated edges is zero: nothing to prune.")
    return dataclasses.replace(model, denominator=denom)


def latency_factors(
    build: Callable[[Mapping[str, jax.Array]], Callable[[], Any]],
    graph: Graph,
    names: Sequence[str] | None = None,
    *,
    repeat: int = 10,
) -> dict[str, float]:
    """``{edge: latency drop (s)}`` of the whole network when 50 % of the edge's channels are removed.

    ``build(masks)`` returns a zero-argument function running the **physically
    pruned** network once (e.g. ``lambda m: partial(jitted_apply, remove(graph, m, variables), x)``
    with the narrower module); it is warmed up, then timed (best of
    ``repeat``, ``jax.block_until_ready``). ``build({})`` is the full network.
    Negative drops (timing noise) are clipped to a small positive floor.

    Args:
      build: ``build(masks) -> run``, ``run()`` runs the physically pruned network once.
      graph: a :func:`jaxkit.prune.build_graph` graph.
      names: the edges (default: :func:`edges`).
      repeat: timed runs per network (best of).

    Returns:
      ``{edge: lambda_j}``, positive floats (seconds).

    Raises:
      ValueError: ``repeat < 1``.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021 (the
      latency factors ``lambda_j``, measured on the target device).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> build = lambda masks: (lambda: jnp.ones(10_000 if not masks else 100).sum())
      >>> factors = jaxkit.gates.latency_factors(build, graph, repeat=2)
      >>> sorted(factors) == jaxkit.gates.edges(graph), all(v > 0 for v in factors.values())
      (True, True)
    """
    names = list(names) if names is not None else edges(graph)
    if int(repeat) < 1:
        raise ValueError(f"`repeat` must be >= 1, got {repeat}.")

    def timed(masks):
        fn = build(masks)
        jax.block_until_ready(fn())
        best = float("inf")
        for _ in range(int(repeat)):
            t = time.perf_counter()
            jax.block_until_ready(fn())
            best = min(best, time.perf_counter() - t)
        return best

    full = timed({})
    out = {}
    for n in names:
        size = graph.group(n).size
        m = np.ones(size, bool)
        m[size - size // 2 :] = False
        out[n] = max(full - timed({n: jnp.asarray(m)}), 1e-3 * full)
    return out


def fold(gate_params: Mapping[str, jax.Array], *, min_keep: int = 1) -> dict[str, jax.Array]:
    """Channel masks ``theta > 0`` for :func:`jaxkit.prune.remove` (True = keep).

    An edge whose gates are all closed keeps its ``min_keep`` highest-``theta``
    channels (0 allows empty edges, which :func:`jaxkit.prune.remove` refuses) --
    then the removed model equals the gated one run with these masks as gates,
    not with :func:`deterministic_gates`.

    Args:
      gate_params: ``{edge: theta [C]}`` (:func:`init_gates`).
      min_keep: channels an all-closed edge keeps.

    Returns:
      ``{edge: bool [C]}``.

    Raises:
      ValueError: ``min_keep < 0``.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021
      (folding the gates into a physically smaller network).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> theta = {k: v.at[:2].set(-1.0) for k, v in theta.items()}  # close two gates per edge
      >>> print(jaxkit.gates.fold(theta)["params/Conv_0"])
      [False False  True  True]
    """
    _check_gates(gate_params)
    if int(min_keep) < 0:
        raise ValueError(f"`min_keep` must be >= 0, got {min_keep}.")
    out = {}
    for n, t in gate_params.items():
        t = np.asarray(t)
        m = t > 0
        if m.sum() < min_keep:
            m = np.zeros_like(m)
            m[np.argsort(-t, kind="stable")[:min_keep]] = True
        out[n] = jnp.asarray(m)
    return out


def alpha_path(
    alphas: Sequence[float],
    gated_phase: Callable[[Any, float], tuple[Any, Mapping[str, jax.Array]]],
    state: Any,
    finish: Callable[[Any, dict[str, jax.Array], float], Any] | None = None,
    *,
    min_keep: int = 1,
):
    """The paper's iterative pruning: a generator over increasing ``alphas``.

    For each ``alpha``: ``state, theta = gated_phase(state, alpha)`` (the gated
    phase, started from the previous phase's *gated* state, never from a
    fine-tuned one), ``masks = fold(theta, min_keep=min_keep)``, then
    ``result = finish(state, masks, alpha)`` (typically
    :func:`jaxkit.prune.remove` + fine-tune; ``None`` skips it). Yields
    ``(alpha, masks, state, result)``; ``state`` is whatever the caller needs
    (weights, gates, optimizer state), passed through untouched.

    The paper's sequence is ``(0.25, 0.5, 1, 2, 4, 16, 20)``.

    Args:
      alphas: increasing cost weights.
      gated_phase: ``(state, alpha) -> (state, theta)``, one gated training phase.
      state: the initial state (passed through untouched).
      finish: ``(state, masks, alpha) -> result`` (e.g. remove + fine-tune); ``None`` skips it.
      min_keep: as :func:`fold`.

    Yields:
      ``(alpha, masks, state, result)`` per alpha.

    Raises:
      ValueError: ``alphas`` empty, negative or not increasing.

    References:
      Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with Gating", ICANN 2021 (the
      alpha sequence and restarting from the gated state).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> theta = jaxkit.gates.init_gates(graph)
      >>> phase = lambda state, alpha: (state, {k: v - 2.0 * alpha * jnp.arange(v.size) for k, v in state.items()})
      >>> [(a, int(m["params/Conv_1"].sum())) for a, m, _, _ in jaxkit.gates.alpha_path((0.25, 1.0), phase, theta)]
      [(0.25, 8), (1.0, 3)]
    """
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise ValueError("`alphas` must be a non-empty sequence.")
    if any(not (np.isfinite(a) and a >= 0) for a in alphas):
        raise ValueError(f"`alphas` must be finite and >= 0, got {alphas}.")
    if any(b < a for a, b in zip(alphas, alphas[1:])):
        raise ValueError(f"`alphas` must be non-decreasing (the iterative loop prunes more each time), got {alphas}.")
    for alpha in alphas:
        state, theta = gated_phase(state, alpha)
        masks = fold(theta, min_keep=min_keep)
        yield alpha, masks, state, (finish(state, masks, alpha) if finish is not None else None)
