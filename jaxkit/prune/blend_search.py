"""The blending-pruning-criteria EA ("Blending Pruning Criteria for CNNs", He et al., ICANN 2021).

Per layer ``l`` the criteria are clustered into ``K`` groups by k-means on
their Spearman correlation vectors (:func:`problem`). A gene is
``{"P": float[L, K], "S": int[L, K]}``: calibration factors ``P`` in [0, 1]
and, for each cluster ``k``, the criterion ``S[l, k]`` picked from it. The
blended score is ``S_l = sum_k P[l, k] * score_{S[l, k]}`` (criteria min-max
normalised per layer) and every gene prunes the same fixed number of filters
per layer (:func:`gene_masks`), so all genes give the same pruned shapes.
Fitness is the validation accuracy after a short fine-tune of the pruned
network (:func:`finetune_fitness`, vmapped over the population).

The paper names the operators and rates (crossover 0.8, mutation 0.1, drop
0.05, drop ratio 0.08, population 20, 50 iterations) but does not define the
operators, and its Algorithm 1 has no selection step. **Our choices**, all in
:class:`BlendConfig`:

* crossover swaps whole layers between two parents -- row ``l`` of ``P``
  together with row ``l`` of ``S``, so each factor stays with its criterion
  (``crossover_unit="entry"`` swaps single ``(l, k)`` entries instead);
* mutation redraws an entry of ``P`` from U[0, 1] or an entry of ``S`` from
  its cluster, each with probability ``mutation_rate``;
* drop sets an entry of ``P`` to 0 with probability ``drop_rate``;
* the ``drop_ratio`` of each generation's offspring is replaced by fresh random genes;
* parents are paired uniformly at random (``selection="random"``, as
  Algorithm 1 has none; ``"tournament"`` is available) and survival is
  elitist: the best ``popsize`` of parents and offspring.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxkit import _checks as _c
from jaxkit import evolution
from jaxkit.data import AUGMENT_KEY_TAG
from jaxkit.models import with_im2col
from jaxkit.prune.blend import correlation_matrix, kmeans, score_groups
from jaxkit.prune.graph import Graph
from jaxkit.prune.masks import apply_masks, expand

__all__ = [
    "BlendConfig",
    "BlendProblem",
    "blended_scores",
    "finetune_fitness",
    "finetune_genes",
    "gene_masks",
    "masked_finetune",
    "problem",
    "sample_gene",
    "single_criterion_gene",
    "strategy",
]

PyTree = Any


@dataclasses.dataclass(frozen=True)
class BlendConfig:
    """Hyper-parameters of the blending EA (paper's CIFAR-100 values by default).

    ``k``: clusters per layer (paper's ablation: 3 best); ``popsize`` /
    ``generations``: 20 / 50 (ImageNet 10 / 30); ``crossover_rate`` 0.8,
    ``mutation_rate`` 0.1, ``drop_rate`` 0.05, ``drop_ratio`` 0.08 (0.1 on
    ImageNet) -- the paper's rates for operators it does not define (see the
    module docstring for our definitions, ``crossover_unit`` and
    ``selection``); ``kmeans_iters``: Lloyd iterations.
    """

    k: int = 3
    popsize: int = 20
    generations: int = 50
    crossover_rate: float = 0.8
    mutation_rate: float = 0.1
    drop_rate: float = 0.05
    drop_ratio: float = 0.08
    crossover_unit: str = "layer"
    selection: str = "random"
    kmeans_iters: int = 50

    def __post_init__(self):
        for name in ("crossover_rate", "mutation_rate", "drop_rate", "drop_ratio"):
            evolution.operators.check_rate(name, getattr(self, name))
        if int(self.k) < 1:
            raise ValueError(f"`k` must be >= 1, got {self.k}.")
        if int(self.popsize) < 2:
            raise ValueError(f"`popsize` must be >= 2, got {self.popsize}.")
        if int(self.generations) < 1:
            raise ValueError(f"`generations` must be >= 1, got {self.generations}.")
        if self.crossover_unit not in ("layer", "entry"):
            raise ValueError(f"`crossover_unit` must be 'layer' or 'entry', got {self.crossover_unit!r}.")


@struct.dataclass
class BlendProblem:
    """Stacked criterion scores per layer, the cluster membership and the per-layer prune counts.

    ``scores[group]``: ``[n_criteria, C]``; ``allowed``: ``[L, K, n_criteria]``
    bools (criterion ``c`` is in cluster ``k`` of layer ``l``); ``labels``:
    ``[L, n_criteria]`` cluster of each criterion.
    """

    scores: dict
    allowed: jax.Array
    labels: jax.Array
    groups: tuple = struct.field(pytree_node=False)
    criteria: tuple = struct.field(pytree_node=False)
    prune_counts: tuple = struct.field(pytree_node=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.allowed.shape[0], self.allowed.shape[1]


def problem(
    key: jax.Array,
    scores: Mapping[str, Mapping[str, jax.Array]],
    *,
    ratio: float | None = None,
    prune_counts: Mapping[str, int] | None = None,
    k: int = 3,
    criteria: Sequence[str] | None = None,
    kmeans_iters: int = 50,
) -> BlendProblem:
    """Cluster the criteria per layer and fix how many filters each layer loses.

    Args:
      key: k-means++ seeding (one subkey per layer).
      scores: ``{criterion: {group: scores[C]}}`` from :func:`jaxkit.prune.all_scores`
        (normalised). Every criterion must cover the same groups.
      ratio: a uniform fraction of filters removed per layer.
      prune_counts: instead of ``ratio``, an explicit ``{group: count}`` (e.g. Li et al.'s configuration).
      k: clusters per layer (<= number of criteria).
      criteria: which criteria (default: all in ``scores``).
      kmeans_iters: Lloyd iterations of the clustering.

    A cluster left empty by k-means (identical correlation rows) allows every
    criterion, so each gene entry always has a choice.

    Returns:
      A :class:`BlendProblem` (criteria, clusters, scores and prune counts as arrays).

    Raises:
      ValueError: both or neither of ``ratio`` / ``prune_counts``, ``k`` outside ``[1, criteria]``, criteria
        covering different groups, an unknown criterion.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Sec. 3.1 (clustering the criteria per layer).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> scores = jaxkit.prune.all_scores(graph, variables)
      >>> bs = jaxkit.prune.blend_search
      >>> prob = bs.problem(jax.random.key(0), scores, ratio=0.5, k=2)
      >>> prob.criteria, prob.prune_counts
      (('bn_beta', 'bn_gamma', 'fermat', 'fpgm', 'l1', 'l2'), (2, 4))
    """
    crit = tuple(criteria) if criteria is not None else tuple(scores)
    groups = score_groups(scores, crit)
    if not 1 <= int(k) <= len(crit):
        raise ValueError(f"`k` must be in [1, {len(crit)}] (number of criteria), got {k}.")
    if (ratio is None) == (prune_counts is None):
        raise ValueError("Give exactly one of `ratio` and `prune_counts`.")
    stacked = {g: jnp.stack([jnp.asarray(scores[c][g], jnp.float32) for c in crit]) for g in groups}
    if ratio is not None:
        if not 0.0 <= float(ratio) < 1.0:
            raise ValueError(f"`ratio` must be in [0, 1), got {ratio}.")
        counts = tuple(int(float(ratio) * stacked[g].shape[1]) for g in groups)
    else:
        assert prune_counts is not None
        unknown = set(prune_counts) - set(groups)
        if unknown:
            raise ValueError(f"`prune_counts` names unknown groups {sorted(unknown)}.")
        counts = tuple(int(prune_counts.get(g, 0)) for g in groups)
        for g, n in zip(groups, counts):
            if not 0 <= n < stacked[g].shape[1]:
                raise ValueError(f"`prune_counts[{g!r}]` must be in [0, {stacked[g].shape[1]}), got {n}.")
    labels, allowed = [], []
    for i, g in enumerate(groups):
        lab, _ = kmeans(jax.random.fold_in(key, i), correlation_matrix(stacked[g]), int(k), iters=kmeans_iters)
        lab = np.asarray(lab)
        al = lab[None, :] == np.arange(int(k))[:, None]
        al[~al.any(axis=1)] = True
        labels.append(lab)
        allowed.append(al)
    return BlendProblem(
        scores=stacked,
        allowed=jnp.asarray(np.stack(allowed)),
        labels=jnp.asarray(np.stack(labels)),
        groups=groups,
        criteria=crit,
        prune_counts=counts,
    )


def sample_gene(prob: BlendProblem, key: jax.Array) -> dict[str, jax.Array]:
    """A random gene: ``P ~ U[0, 1]``, each ``S[l, k]`` uniform over cluster ``k`` of layer ``l``.

    Args:
      prob: the :class:`BlendProblem` (:func:`problem`).
      key: PRNG key.

    Returns:
      ``{"P": float [L, K], "S": int [L, K]}``.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Sec. 3.2 (the gene).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> scores = jaxkit.prune.all_scores(graph, variables)
      >>> bs = jaxkit.prune.blend_search
      >>> prob = bs.problem(jax.random.key(0), scores, ratio=0.5, k=2)
      >>> jax.tree.map(jnp.shape, bs.sample_gene(prob, jax.random.key(1)))
      {'P': (2, 2), 'S': (2, 2)}
    """
    k_p, k_s = jax.random.split(key)
    p = jax.random.uniform(k_p, prob.shape)
    s = jax.random.categorical(k_s, jnp.where(prob.allowed, 0.0, -jnp.inf)).astype(jnp.int32)
    return {"P": p, "S": s}


def single_criterion_gene(prob: BlendProblem, criterion: str) -> dict[str, jax.Array]:
    """The gene that reproduces one criterion alone (factor 1 on its cluster's slot, 0 elsewhere).

    Args:
      prob: the :class:`BlendProblem` (:func:`problem`).
      criterion: a criterion name.

    Returns:
      A gene.

    Raises:
      ValueError: a criterion not in the problem.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021 (single criteria as the baselines of the blend).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> scores = jaxkit.prune.all_scores(graph, variables)
      >>> bs = jaxkit.prune.blend_search
      >>> prob = bs.problem(jax.random.key(0), scores, ratio=0.5, k=2)
      >>> blended = bs.blended_scores(prob, bs.single_criterion_gene(prob, "l1"))
      >>> all(bool(jnp.allclose(blended[g], scores["l1"][g])) for g in blended)
      True
    """
    if criterion not in prob.criteria:
        raise ValueError(f"`criterion` must be one of the problem's criteria {prob.criteria}, got {criterion!r}.")
    c = prob.criteria.index(criterion)
    lab = np.asarray(prob.labels)[:, c]
    n_l, n_k = prob.shape
    p = np.zeros((n_l, n_k), np.float32)
    p[np.arange(n_l), lab] = 1.0
    s = np.argmax(np.asarray(prob.allowed), axis=-1).astype(np.int32)
    s[np.arange(n_l), lab] = c
    return {"P": jnp.asarray(p), "S": jnp.asarray(s)}


def blended_scores(prob: BlendProblem, gene: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """The blended scores ``{group: sum_k P[l, k] * scores[S[l, k]]}`` of a gene (traceable).

    Args:
      prob: the :class:`BlendProblem` (:func:`problem`).
      gene: ``{"P": float [L, K], "S": int [L, K]}``.

    Returns:
      ``{group: scores [C]}``.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Eq. (2).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> scores = jaxkit.prune.all_scores(graph, variables)
      >>> bs = jaxkit.prune.blend_search
      >>> prob = bs.problem(jax.random.key(0), scores, ratio=0.5, k=2)
      >>> {g: v.shape for g, v in bs.blended_scores(prob, bs.sample_gene(prob, jax.random.key(1))).items()}
      {'params/Conv_0': (4,), 'params/Conv_1': (8,)}
    """
    return {g: jnp.einsum("k,kc->c", gene["P"][i], prob.scores[g][gene["S"][i]]) for i, g in enumerate(prob.groups)}


def gene_masks(prob: BlendProblem, gene: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Keep masks: each layer drops its ``prune_counts`` lowest blended scores (ties: lower index first).

    Args:
      prob: the :class:`BlendProblem` (:func:`problem`).
      gene: ``{"P": float [L, K], "S": int [L, K]}``.

    Returns:
      ``{group: bool [C]}``: every gene gives the same pruned shapes.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Sec. 3.2.

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> scores = jaxkit.prune.all_scores(graph, variables)
      >>> bs = jaxkit.prune.blend_search
      >>> prob = bs.problem(jax.random.key(0), scores, ratio=0.5, k=2)
      >>> {g: int(m.sum()) for g, m in bs.gene_masks(prob, bs.single_criterion_gene(prob, "l1")).items()}
      {'params/Conv_0': 2, 'params/Conv_1': 4}
    """
    out = {}
    for g, s, n in zip(prob.groups, blended_scores(prob, gene).values(), prob.prune_counts):
        rank = jnp.argsort(jnp.argsort(s, stable=True), stable=True)
        out[g] = rank >= n
    return out


def _mutate(prob: BlendProblem, drop_rate: float):
    def mutate(key, pop, rate):
        k_p, k_s, k_d = jax.random.split(key, 3)
        p = evolution.uniform_mutation(k_p, pop["P"], rate, 0.0, 1.0)
        p = evolution.drop(k_d, p, drop_rate, 0.0)
        s = evolution.categorical_mutation(k_s, pop["S"], rate, prob.allowed)
        return {"P": p, "S": s}

    return mutate


def strategy(prob: BlendProblem, config: BlendConfig = BlendConfig()) -> tuple[evolution.GA, evolution.GAParams]:
    """The GA of the blending EA (maximises fitness) and its params.

    Args:
      prob: the :class:`BlendProblem` (:func:`problem`).
      config: a ``BlendConfig`` (population, generations, rates, crossover unit, selection).

    Returns:
      ``(GA, GAParams)`` for :func:`jaxkit.evolution.run` / :func:`jaxkit.evolution.optimize`.

    Raises:
      ValueError: rates outside ``[0, 1]``, an unknown crossover unit or selection.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Sec. 3.2-3.3 (the genetic operators).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> scores = jaxkit.prune.all_scores(graph, variables)
      >>> bs = jaxkit.prune.blend_search
      >>> prob = bs.problem(jax.random.key(0), scores, ratio=0.5, k=2)
      >>> ga, params = bs.strategy(prob, bs.BlendConfig(popsize=4, generations=2))
      >>> type(ga).__name__, type(params).__name__
      ('GA', 'GAParams')
    """
    block = 1 if config.crossover_unit == "layer" else None

    def crossover(key, a, b, rate):
        return evolution.uniform_crossover(key, a, b, rate, block_ndim=block)

    ga = evolution.GA(
        popsize=int(config.popsize),
        sample=lambda k: sample_gene(prob, k),
        crossover=crossover,
        mutate=_mutate(prob, float(config.drop_rate)),
        selection=config.selection,
        maximize=True,
    )
    return ga, evolution.GAParams(
        crossover_rate=config.crossover_rate, mutation_rate=config.mutation_rate, fresh_fraction=config.drop_ratio
    )


class _ByValue:
    """A graph keyed by its contents (graphs built per seed from equal models are equal), so that cached
    programs are shared across seeds."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.key = (graph.groups, graph.layers, tuple(sorted((k, tuple(v)) for k, v in graph.shapes.items())))

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return isinstance(other, _ByValue) and other.key == self.key


def masked_finetune(
    model,
    graph: Graph,
    prob: BlendProblem,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    optimizer: str = "sgd",
    im2col: bool = True,
    augment=None,
):
    """``tune(gene, variables, (x_train, y_train), key) -> variables``: prune by the gene, fine-tune, keep pruned at 0.

    The gene's masks zero the pruned filters, their BatchNorm entries and the
    consumers' input rows (:func:`jaxkit.prune.expand`, so the masked net
    computes what the removed one would); ``epochs`` passes of SGD with
    momentum and weight decay (the paper's optimizer; ``optimizer="adam"`` for
    tiny runs) in one ``lax.scan``, masked updates keep them zero. ``key``
    fixes the batch order (drop-last batches of ``batch_size``). Traceable and
    vmappable over genes. ``im2col``: convolutions as shifted slices @ kernel
    (:func:`jaxkit.models.with_im2col`, same numbers), faster than the grouped
    convolution ``vmap`` otherwise produces on CPU. ``augment(key, x_batch) -> x_batch`` (e.g.
    :func:`jaxkit.data.random_crop_flip` on CIFAR) transforms every minibatch inside the scan, with a key derived
    from ``key`` and the step index.

    The result is a ``jax.tree_util.Partial`` holding ``prob``'s arrays as data: pass it to ``jit`` as an
    argument (:func:`finetune_genes`, :func:`jaxkit.evolution.evaluate` do) and a new problem of the same shapes
    -- the next seed -- reuses the compiled program instead of embedding its scores as constants.

    Args:
      model: the Flax module.
      graph: its graph.
      prob: the :class:`BlendProblem` (:func:`problem`).
      epochs: fine-tuning passes.
      batch_size: minibatch size.
      learning_rate: the optimiser's learning rate.
      momentum: SGD momentum.
      weight_decay: SGD weight decay.
      optimizer: ``"sgd"`` or ``"adam"``.
      im2col: convolutions as shifted slices @ kernel.
      augment: ``augment(key, x_batch) -> x_batch``, or ``None``.

    Returns:
      ``tune``, a ``jax.tree_util.Partial``.

    Raises:
      ValueError: an unknown ``optimizer``, ``epochs < 0``, ``batch_size < 1``.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Sec. 4 (short fine-tuning before the fitness).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> scores = jaxkit.prune.all_scores(graph, variables)
      >>> bs = jaxkit.prune.blend_search
      >>> prob = bs.problem(jax.random.key(0), scores, ratio=0.5, k=2)
      >>> tune = bs.masked_finetune(model, graph, prob, epochs=1, batch_size=16, optimizer="adam")
      >>> x_train, y_train = jax.random.normal(jax.random.key(2), (32, 8, 8, 1)), jnp.arange(32) % 3
      >>> gene = bs.single_criterion_gene(prob, "l1")
      >>> tuned = tune(gene, variables, (x_train, y_train), jax.random.key(3))
      >>> pruned = ~bs.gene_masks(prob, gene)["params/Conv_0"]
      >>> float(jnp.abs(tuned["params"]["Conv_0"]["kernel"][..., pruned]).max())  # stays pruned
      0.0
    """
    if int(epochs) < 0:
        raise ValueError(f"`epochs` must be >= 0, got {epochs}.")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"`optimizer` must be 'sgd' or 'adam', got {optimizer!r}.")
    if augment is not None and not callable(augment):
        raise TypeError(f"`augment` must be a function (key, x) -> x or None, got {type(augment).__name__}.")
    core = _tune_core(
        model,
        _ByValue(graph),
        int(epochs),
        int(batch_size),
        float(learning_rate),
        float(momentum),
        float(weight_decay),
        optimizer,
        bool(im2col),
        augment,
    )
    return jax.tree_util.Partial(core, prob)


@functools.lru_cache(maxsize=16)
def _tune_core(
    model, graph_key: _ByValue, epochs, bs, learning_rate, momentum, weight_decay, optimizer, im2col, augment
):
    graph = graph_key.graph
    base = optax.sgd(learning_rate, momentum) if optimizer == "sgd" else optax.adam(learning_rate)
    tx = optax.chain(optax.add_decayed_weights(weight_decay), base) if weight_decay else base
    apply = with_im2col(model.apply) if im2col else model.apply

    def tune(prob, gene, variables, data, key):
        x_tr, y_tr = data
        elem = expand(graph, gene_masks(prob, gene), variables)
        v = apply_masks(variables, elem)
        if not epochs:
            return v
        params, stats = v["params"], v.get("batch_stats", {})
        n = (x_tr.shape[0] // bs) * bs
        if n == 0:
            raise ValueError(f"`batch_size` ({bs}) exceeds the {x_tr.shape[0]} training examples.")
        perms = jnp.stack(
            [jax.random.permutation(jax.random.fold_in(key, e), x_tr.shape[0])[:n] for e in range(epochs)]
        ).reshape(-1, bs)

        k_aug = jax.random.fold_in(key, AUGMENT_KEY_TAG)

        def step(carry, inp):
            params, stats, opt = carry
            i, idx = inp
            xb = x_tr[idx] if augment is None else augment(jax.random.fold_in(k_aug, i), x_tr[idx])

            def loss(p):
                if stats:
                    logits, upd = apply({"params": p, "batch_stats": stats}, xb, train=True, mutable=["batch_stats"])
                    new = upd["batch_stats"]
                else:
                    logits, new = apply({"params": p}, xb, train=True), stats
                return optax.softmax_cross_entropy_with_integer_labels(logits, y_tr[idx]).mean(), new

            grads, new_stats = jax.grad(loss, has_aux=True)(params)
            upd, opt = tx.update(grads, opt, params)
            upd = jax.tree.map(lambda u, m: jnp.where(m, u, 0.0), upd, elem["params"])
            return (optax.apply_updates(params, upd), new_stats, opt), None

        (params, stats, _), _ = jax.lax.scan(
            step, (params, stats, tx.init(params)), (jnp.arange(perms.shape[0]), perms)
        )
        return {"params": params, **({"batch_stats": stats} if stats else {})}

    return tune


@_c.key_first(1, 4)
@jax.jit
def finetune_genes(tune, key, genes, variables, data):
    """``tune`` (from :func:`masked_finetune`) applied to every gene of ``genes`` (a leading gene axis) in one
    jitted ``vmap``; compiled once per shapes, shared by every problem of those shapes."""
    return jax.vmap(tune, in_axes=(0, None, None, None))(genes, variables, data, key)


def finetune_fitness(model, graph: Graph, prob: BlendProblem, *, im2col: bool = True, **tune_kw):
    """``fitness(gene, variables, data, key) -> validation accuracy`` after :func:`masked_finetune`.

    ``data = (x_train, y_train, x_val, y_val)``; ``tune_kw`` go to
    :func:`masked_finetune` (``epochs = 0``: accuracy right after pruning).
    The paper fine-tunes 3 epochs on a held-out 10 % (CIFAR-100), 1 epoch on
    50 images per class (ImageNet). Pass it to :func:`jaxkit.evolution.evaluate`
    with ``variables, data, key`` as the shared args. Like :func:`masked_finetune`, a
    ``jax.tree_util.Partial`` over ``prob``: ``evaluate`` compiles it once for all problems of the same shapes.

    Args:
      model: the Flax module.
      graph: its graph.
      prob: the :class:`BlendProblem` (:func:`problem`).
      im2col: as :func:`masked_finetune`.
      **tune_kw: :func:`masked_finetune` options.

    Returns:
      ``fitness``, a ``jax.tree_util.Partial``.

    Raises:
      ValueError: as :func:`masked_finetune`.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Sec. 4 (fitness: accuracy after fine-tuning).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> scores = jaxkit.prune.all_scores(graph, variables)
      >>> bs = jaxkit.prune.blend_search
      >>> prob = bs.problem(jax.random.key(0), scores, ratio=0.5, k=2)
      >>> fitness = bs.finetune_fitness(model, graph, prob, epochs=0)  # accuracy right after pruning
      >>> x, y = jax.random.normal(jax.random.key(2), (32, 8, 8, 1)), jnp.arange(32) % 3
      >>> 0.0 <= float(fitness(bs.single_criterion_gene(prob, "l1"), variables, (x, y, x, y), jax.random.key(4))) <= 1
      True
    """
    tune = masked_finetune(model, graph, prob, im2col=im2col, **tune_kw)
    return jax.tree_util.Partial(_fitness_core(tune.func, model, bool(im2col)), prob)


@functools.lru_cache(maxsize=16)
def _fitness_core(tune_core, model, im2col):
    apply = with_im2col(model.apply) if im2col else model.apply

    def fitness(prob, gene, variables, data, key):
        x_tr, y_tr, x_val, y_val = data
        v = tune_core(prob, gene, variables, (x_tr, y_tr), key)
        return jnp.mean(jnp.argmax(apply(v, x_val, train=False), -1) == y_val)

    return fitness
