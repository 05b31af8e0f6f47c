"""Every public function, called with bad input: NaN, empty, wrong rank and wrong dtype.

The rule (the brief's): a ``ValueError`` / ``TypeError`` whose message names the argument, or -- for NaN only --
NaN in the output. Never another exception type (a deep numpy / XLA error, ``ZeroDivisionError``, ``IndexError``)
and never a finite result computed from NaN.

One ``Case`` per public function: its good arguments, how to call it, and which kinds of bad input apply to which
argument (``n`` NaN, ``e`` empty, ``r`` one dimension too many, ``d`` wrong dtype: complex for real data, fractional
for labels / class indices). Each case first runs with its good arguments, so a broken set-up cannot pass as a
"clear error". Public names without array input (classes, factories of optimisers or steps, plotting, context
managers) are listed in ``NO_ARRAY_INPUT`` with the reason; ``test_every_public_function_is_covered`` keeps the
table complete as modules grow.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxkit import (
    anomaly,
    calibration,
    data,
    evolution,
    explain,
    fairness,
    gan,
    gates,
    interval,
    lipschitz,
    losses,
    models,
    normalize,
    prune,
    rl,
    robust,
    schedules,
)
from jaxkit.rl import reliability as _reliability  # noqa: F401 -- rl.reliability below

MODULES = (
    "interval",
    "lipschitz",
    "gan",
    "anomaly",
    "metrics",
    "gates",
    "prune",
    "robust",
    "explain",
    "calibration",
    "fairness",
    "losses",
    "evolution",
    "evolution.moo",
    "rl",
    "rl.reliability",
    "normalize",
    "schedules",
    "data",
    "models",
)

# ---------------------------------------------------------------------------------------------------- fixtures

RNG = np.random.default_rng(0)
KEY = jax.random.key(0)


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        x = explain.Tap(name="features")(nn.relu(nn.Conv(5, (3, 3))(x)))
        return nn.Dense(3)(x.reshape(x.shape[0], -1))


class Critic(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.tanh(nn.Dense(4)(x.reshape(x.shape[0], -1))))[:, 0]


class Gen(nn.Module):
    @nn.compact
    def __call__(self, z):
        return nn.Dense(3)(z)


X_IMG = jnp.asarray(RNG.uniform(size=(4, 6, 6, 1)), jnp.float32)
Y3 = jnp.array([0, 1, 2, 1])
CNN_V = CNN().init(jax.random.key(1), X_IMG)
APPLY = CNN().apply
CRITIC_V = Critic().init(jax.random.key(2), jnp.zeros((1, 3)))
GEN_V = Gen().init(jax.random.key(3), jnp.zeros((1, 2)))
REAL = jnp.asarray(RNG.normal(size=(5, 3)), jnp.float32)
FAKE = jnp.asarray(RNG.normal(size=(5, 3)), jnp.float32)
MLP = {
    "Dense_0": {"kernel": RNG.normal(size=(3, 4)), "bias": RNG.normal(size=4)},
    "Dense_1": {"kernel": RNG.normal(size=(4, 2)), "bias": RNG.normal(size=2)},
}
PROBS = jax.nn.softmax(jnp.asarray(RNG.normal(size=(40, 3)), jnp.float32))
LABELS = jnp.asarray(RNG.integers(0, 3, 40))
LOGITS = jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32)
Y6 = jnp.array([0, 1, 2, 0, 1, 2])
SCORES = RNG.normal(size=30)
BIN_LABELS = np.r_[np.ones(10, bool), np.zeros(20, bool)]
CUBE = RNG.normal(size=(12, 12, 3))
YT = jnp.asarray(RNG.integers(0, 2, 24))
YP = jnp.asarray(RNG.integers(0, 2, 24))
PROB = jnp.asarray(RNG.uniform(size=24), jnp.float32)
GROUPS = jnp.asarray(np.repeat([0, 1, 2], 8))
FEATS = jnp.asarray(RNG.normal(size=(24, 3)), jnp.float32)
VGG = models.VGG((4, "M", 6), num_classes=3)
VGG_X = jnp.asarray(RNG.uniform(size=(2, 8, 8, 1)), jnp.float32)
VGG_V = VGG.init(jax.random.key(4), VGG_X)
GRAPH = prune.build_graph(VGG, VGG_V, VGG_X[:1])
GROUP_NAMES = [g.name for g in GRAPH.groups if g.prunable]
CH_SCORES = {n: jnp.asarray(RNG.uniform(size=GRAPH.group(n).size), jnp.float32) for n in GROUP_NAMES}
MASKS = prune.channel_masks(CH_SCORES, 0.5)
THETA = gates.init_gates(GRAPH)
STATS = prune.collect_stats(VGG, VGG_V, VGG_X[None], jnp.array([[0, 1]]), GRAPH)
MAPS = jnp.asarray(RNG.uniform(size=(3, 8, 8)), jnp.float32)
IV = interval.box(np.zeros(3), np.ones(3))
FLAT = {"scores": "any shape: scores and labels are flattened together", "labels": "as scores"}


# ----------------------------------------------------------------------------------------------------- the table


@dataclasses.dataclass
class Case:
    fn: str  # "module.name"
    call: Callable[[dict], Any]
    args: dict
    bad: dict  # argument -> kinds ("nerd")
    names: dict = dataclasses.field(default_factory=dict)  # argument -> other words its errors may use
    why: dict = dataclasses.field(default_factory=dict)  # argument -> why some kinds do not apply (documentation)


def C(fn, call, bad, names=None, why=None, **args):
    return Case(fn, call, args, bad, names or {}, why or {})


CASES = [
    # ---------------------------------------------------------------------------------------------- interval
    C(
        "interval.box",
        lambda a: interval.box(a["lo"], a["hi"]),
        {"lo": "ned", "hi": "ned"},
        lo=np.zeros(3),
        hi=np.ones(3),
        why={"lo": "a box may have any shape", "hi": "a box may have any shape"},
    ),
    C(
        "interval.check",
        lambda a: interval.check(a["x"]),
        {"x": "nd"},
        x=IV,
        why={"x": "any shape is a valid interval"},
    ),
    C(
        "interval.convert",
        lambda a: interval.convert(a["x"], jnp.float32),
        {"x": "nd"},
        x=np.array([0.1, 2.0]),
        why={"x": "elementwise: any shape"},
    ),
    C(
        "interval.matmul",
        lambda a: interval.matmul(a["w"], a["x"]),
        {"w": "nerd", "x": "nerd"},
        w=np.ones((2, 3)),
        x=IV,
    ),
    C(
        "interval.dense",
        lambda a: interval.dense(a["x"], a["kernel"], a["bias"]),
        {"x": "nerd", "kernel": "nerd", "bias": "nerd"},
        x=IV,
        kernel=np.ones((3, 2)),
        bias=np.zeros(2),
    ),
    C("interval.relu", lambda a: interval.relu(a["x"]), {"x": "nd"}, x=IV, why={"x": "elementwise: any shape"}),
    C(
        "interval.monotone",
        lambda a: interval.monotone("tanh", a["x"]),
        {"x": "nd"},
        x=IV,
        why={"x": "elementwise: any shape"},
    ),
    C("interval.ibp", lambda a: interval.ibp(a["params"], a["x"]), {"params": "nerd", "x": "nerd"}, params=MLP, x=IV),
    C("interval.mlp_layers", lambda a: interval.mlp_layers(a["params"]), {"params": "nerd"}, params=MLP),
    C(
        "interval.contains",
        lambda a: interval.contains(a["outer"], a["x"]),
        {"outer": "nd"},
        outer=IV,
        x=np.full(3, 0.5),
        why={"x": "a NaN point is reported as not contained (False), by design"},
    ),
    # --------------------------------------------------------------------------------------------- lipschitz
    C(
        "lipschitz.lipschitz_constant",
        lambda a: lipschitz.lipschitz_constant(a["params"], a["box"], batch=4),
        {"params": "nerd", "box": "nerd"},
        params=MLP,
        box=(np.zeros(3), np.ones(3)),
    ),
    C(
        "lipschitz.naive_upper_bound",
        lambda a: lipschitz.naive_upper_bound(a["params"]),
        {"params": "nerd"},
        params=MLP,
    ),
    C(
        "lipschitz.jacobian_norm",
        lambda a: lipschitz.jacobian_norm(a["params"], a["x"]),
        {"params": "nerd", "x": "nerd"},
        params=MLP,
        x=np.full(3, 0.3),
    ),
    C("lipschitz.to_net", lambda a: lipschitz.to_net(a["params"]), {"params": "nerd"}, params=MLP),
    # --------------------------------------------------------------------------------------------------- gan
    C(
        "gan.gradient_penalty",
        lambda a: gan.gradient_penalty(Critic().apply, KEY, a["params"], a["real"], a["fake"]),
        {"params": "n", "real": "nerd", "fake": "nerd"},
        params=CRITIC_V,
        real=REAL,
        fake=FAKE,
    ),
    C(
        "gan.critic_loss",
        lambda a: gan.critic_loss(Critic().apply, KEY, a["params"], a["real"], a["fake"]),
        {"params": "n", "real": "nerd", "fake": "nerd"},
        params=CRITIC_V,
        real=REAL,
        fake=FAKE,
    ),
    C(
        "gan.generator_loss",
        lambda a: gan.generator_loss(Critic().apply, a["params"], a["fake"]),
        {"params": "n", "fake": "nerd"},
        params=CRITIC_V,
        fake=FAKE,
    ),
    C(
        "gan.interpolate",
        lambda a: gan.interpolate(KEY, a["real"], a["fake"]),
        {"real": "nerd", "fake": "nerd"},
        real=REAL,
        fake=FAKE,
    ),
    C(
        "gan.init_state",
        lambda a: gan.init_state(KEY, Gen(), Critic(), 2, a["sample_x"], _adam(), _adam()),
        {"sample_x": "ed"},
        sample_x=REAL[:1],
        why={
            "sample_x": "only its shape is used (NaN values are irrelevant to the initial parameters); its rank is "
            "the critic's business"
        },
    ),
    # ----------------------------------------------------------------------------------------------- anomaly
    C("anomaly.as_pixels", lambda a: anomaly.as_pixels(a["x"]), {"x": "nerd"}, names={"x": ["cube"]}, x=CUBE),
    C(
        "anomaly.rx_fit",
        lambda a: anomaly.rx_fit(a["background"]),
        {"background": "ned"},
        background=CUBE.reshape(-1, 3),
        why={"background": "[N, B] pixels or an [H, W, B] cube"},
    ),
    C(
        "anomaly.rx_scores",
        lambda a: anomaly.rx_scores(a["x"], a["mu"], a["cov_inv"]),
        {"x": "nerd", "mu": "nerd", "cov_inv": "nerd"},
        x=CUBE,
        mu=np.zeros(3),
        cov_inv=np.eye(3),
    ),
    C(
        "anomaly.global_rx",
        lambda a: anomaly.global_rx(a["cube"], a["background_mask"]),
        {"cube": "nerd", "background_mask": "erd"},
        cube=CUBE,
        background_mask=np.ones((12, 12), bool),
        why={"background_mask": "boolean: no NaN"},
    ),
    C("anomaly.local_rx", lambda a: anomaly.local_rx(a["cube"], 1, 3), {"cube": "nerd"}, cube=CUBE),
    C(
        "anomaly.gmm_scores",
        lambda a: anomaly.gmm_scores(a["x"], a["background"], n_components=2),
        {"x": "nerd", "background": "ned"},
        x=CUBE,
        background=CUBE.reshape(-1, 3),
        why={"background": "[N, B] pixels or an [H, W, B] cube"},
    ),
    C(
        "anomaly.discriminator_scores",
        lambda a: anomaly.discriminator_scores(Critic().apply, a["params"], a["x"]),
        {"params": "n", "x": "nerd"},
        params=CRITIC_V,
        x=REAL,
    ),
    C(
        "anomaly.recreation_cost",
        lambda a: anomaly.recreation_cost(KEY, Gen().apply, a["g_params"], a["x"], noise_dim=2, runs=2, iterations=3),
        {"g_params": "n", "x": "nerd"},
        g_params=GEN_V,
        x=REAL,
    ),
    C(
        "anomaly.anogan_scores",
        lambda a: anomaly.anogan_scores(
            KEY, Gen().apply, a["g_params"], lambda p, x: x, None, a["x"], noise_dim=2, runs=2, iterations=3
        ),
        {"g_params": "n", "x": "nerd"},
        g_params=GEN_V,
        x=REAL,
    ),
    C(
        "anomaly.roc_curve",
        lambda a: anomaly.roc_curve(a["scores"], a["labels"]),
        {"scores": "ned", "labels": "ed"},
        scores=SCORES,
        labels=BIN_LABELS,
        why=FLAT,
    ),
    C(
        "anomaly.auc",
        lambda a: anomaly.auc(a["scores"], a["labels"]),
        {"scores": "ned", "labels": "ed"},
        scores=SCORES,
        labels=BIN_LABELS,
        why=FLAT,
    ),
    C(
        "anomaly.log_auc",
        lambda a: anomaly.log_auc(a["scores"], a["labels"]),
        {"scores": "ned", "labels": "ed"},
        scores=SCORES,
        labels=BIN_LABELS,
        why=FLAT,
    ),
    C(
        "anomaly.lg_far",
        lambda a: anomaly.lg_far(a["scores"], a["labels"]),
        {"scores": "ned", "labels": "ed"},
        scores=SCORES,
        labels=BIN_LABELS,
        why=FLAT,
    ),
    C(
        "anomaly.log_auc_chance",
        lambda a: anomaly.log_auc_chance(a["n_neg"]),
        {"n_neg": "nd"},
        n_neg=100,
        why={"n_neg": "a count: no empty or higher-rank form"},
    ),
    C(
        "anomaly.partial_auc",
        lambda a: anomaly.partial_auc(a["scores"], a["labels"], a["max_fpr"]),
        {"scores": "ned", "labels": "ed", "max_fpr": "n"},
        scores=SCORES,
        labels=BIN_LABELS,
        max_fpr=0.3,
        why=FLAT,
    ),
    C(
        "anomaly.evaluate_targets",
        lambda a: anomaly.evaluate_targets(a["scores"], a["inner"], a["outer"]),
        {"scores": "nerd", "inner": "erd", "outer": "erd"},
        scores=CUBE[..., 0],
        inner=np.zeros((1, 12, 12), bool) | (np.arange(144).reshape(1, 12, 12) == 30),
        outer=np.zeros((1, 12, 12), bool) | (np.arange(144).reshape(1, 12, 12) == 30),
    ),
    # ------------------------------------------------------------------------------------------------- gates
    C(
        "gates.sample_gates",
        lambda a: gates.sample_gates(KEY, a["gate_params"], 3),
        {"gate_params": "nerd"},
        gate_params=THETA,
    ),
    C(
        "gates.deterministic_gates",
        lambda a: gates.deterministic_gates(a["gate_params"]),
        {"gate_params": "nerd"},
        gate_params=THETA,
    ),
    C("gates.kill", lambda a: gates.kill(a["gate_params"]), {"gate_params": "nerd"}, gate_params=THETA),
    C(
        "gates.cost_loss",
        lambda a: gates.cost_loss(gates.cost_model(GRAPH), a["gates"], a["alpha"]),
        {"gates": "ned", "alpha": "n"},
        gates=gates.deterministic_gates(THETA),
        alpha=0.5,
        why={"gates": "[C] or [B, C] per edge"},
    ),
    C("gates.fold", lambda a: gates.fold(a["gate_params"]), {"gate_params": "nerd"}, gate_params=THETA),
    C(
        "gates.open_fraction",
        lambda a: gates.open_fraction(a["gate_params"]),
        {"gate_params": "nerd"},
        gate_params=THETA,
    ),
    # ------------------------------------------------------------------------------------------------- prune
    C(
        "prune.build_graph",
        lambda a: prune.build_graph(VGG, VGG_V, a["x"]),
        {"x": "r"},
        x=VGG_X[:1],
        names={"x": ["args"]},
        why={"x": "an example input: only the trace matters (batch size and values unused)"},
    ),
    C("prune.count", lambda a: prune.count(GRAPH, a["masks"]), {"masks": "erd"}, masks=MASKS, why={"masks": "boolean"}),
    C("prune.channel_masks", lambda a: prune.channel_masks(a["scores"], 0.5), {"scores": "nerd"}, scores=CH_SCORES),
    C(
        "prune.global_masks",
        lambda a: prune.global_masks(a["scores"], 0.5),
        {"scores": "ned"},
        scores=CH_SCORES,
        why={"scores": "[C] or [P, C] (groups tied by a shortcut)"},
    ),
    C(
        "prune.expand",
        lambda a: prune.expand(GRAPH, a["masks"], VGG_V),
        {"masks": "erd"},
        masks=MASKS,
        why={"masks": "boolean"},
    ),
    C(
        "prune.apply_masks",
        lambda a: prune.apply_masks(a["tree"], prune.expand(GRAPH, MASKS, VGG_V)),
        {},
        tree=VGG_V,
        why={
            "tree": "masking removes entries: a NaN in a pruned entry goes with it (as in "
            "prune.remove); NaN in kept entries stays NaN"
        },
    ),
    C(
        "prune.magnitude_masks",
        lambda a: prune.magnitude_masks(a["tree"], 0.5),
        {"tree": "n"},
        tree={"Conv_0": {"kernel": VGG_V["params"]["Conv_0"]["kernel"]}},
        why={"tree": "a parameter tree (only leaves selected by `pattern` are ranked)"},
    ),
    C(
        "prune.masked_updates",
        lambda a: _masked_update(a["updates"]),
        {},
        updates=jax.tree.map(jnp.ones_like, VGG_V["params"]),
        why={"updates": "an optax transform's update tree"},
    ),
    # (masked_updates zeroes frozen entries, NaN included, as apply_masks; kept entries keep their NaN)
    C(
        "prune.remove",
        lambda a: prune.remove(GRAPH, a["masks"], VGG_V),
        {"masks": "erd"},
        masks=MASKS,
        why={"masks": "boolean"},
    ),
    C(
        "prune.kept_counts",
        lambda a: prune.kept_counts(GRAPH, a["masks"]),
        {"masks": "erd"},
        masks=MASKS,
        why={"masks": "boolean"},
    ),
    C(
        "prune.sparsity",
        lambda a: prune.sparsity(a["masks"]),
        {},
        masks=MASKS,
        why={"masks": "any boolean tree; an empty leaf holds no channels"},
    ),
    C(
        "prune.collect_stats",
        lambda a: prune.collect_stats(VGG, VGG_V, a["xs"], a["ys"], GRAPH),
        {"xs": "nerd", "ys": "erd"},
        xs=VGG_X[None],
        ys=jnp.array([[0, 1]]),
    ),
    C(
        "prune.all_scores",
        lambda a: prune.all_scores(GRAPH, a["variables"], STATS),
        {"variables": "n"},
        variables=VGG_V,
        why={"variables": "a parameter tree"},
    ),
    C(
        "prune.scores",
        lambda a: prune.scores("l1", GRAPH, a["variables"]),
        {"variables": "n"},
        variables=VGG_V,
        why={"variables": "a parameter tree"},
    ),
    C("prune.minmax", lambda a: prune.minmax(a["s"]), {"s": "nerd"}, s=jnp.arange(4.0)),
    C(
        "prune.geometric_median",
        lambda a: prune.geometric_median(a["points"]),
        {"points": "nerd"},
        points=jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32),
    ),
    C(
        "prune.rankdata",
        lambda a: prune.rankdata(a["x"]),
        {"x": "ned"},
        x=jnp.array([3.0, 1.0, 2.0]),
        why={"x": "ranks along the last axis of any batch shape"},
    ),
    C(
        "prune.correlation_matrix",
        lambda a: prune.correlation_matrix(a["scores"]),
        {"scores": "nerd"},
        scores=jnp.asarray(RNG.normal(size=(3, 8)), jnp.float32),
    ),
    C(
        "prune.kmeans",
        lambda a: prune.kmeans(KEY, a["x"], 2),
        {"x": "erd"},
        x=jnp.asarray(RNG.normal(size=(8, 2)), jnp.float32),
        why={"x": "NaN rows are correlations of constant criteria (scipy's convention), read as 0 by design"},
    ),
    C(
        "prune.blend",
        lambda a: prune.blend(a["scores"], ["l1", "l2"], a["weights"]),
        {"scores": "nerd", "weights": "nerd"},
        scores={"l1": CH_SCORES, "l2": CH_SCORES},
        weights=jnp.array([0.5, 0.5]),
    ),
    # ------------------------------------------------------------------------------------------------ robust
    C(
        "robust.project",
        lambda a: robust.project(a["delta"], 0.1),
        {"delta": "nd"},
        delta=X_IMG,
        why={"delta": "any shape"},
    ),
    C("robust.input_jacobians", lambda a: robust.input_jacobians(APPLY, CNN_V, a["x"]), {"x": "nerd"}, x=X_IMG),
    C(
        "robust.jacobian_frobenius_penalty",
        lambda a: robust.jacobian_frobenius_penalty(APPLY, CNN_V, a["x"], KEY),
        {"x": "nerd"},
        x=X_IMG,
    ),
    C(
        "robust.jacobian_cosine_similarity",
        lambda a: robust.jacobian_cosine_similarity(APPLY, CNN_V, a["x"]),
        {"x": "nerd"},
        x=X_IMG,
    ),
    C(
        "robust.universal_perturbation",
        lambda a: robust.universal_perturbation(KEY, APPLY, CNN_V, (a["x"], a["y"]), 0.1, steps=2, batch_size=2),
        {"x": "nerd", "y": "erd"},
        names={"x": ["data"], "y": ["data", "labels"]},
        x=X_IMG,
        y=Y3,
    ),
    C(
        "robust.universal_evasion_rate",
        lambda a: robust.universal_evasion_rate(APPLY, CNN_V, a["x"], a["y"], a["delta"]),
        {"x": "nerd", "y": "erd", "delta": "nd"},
        names={"y": ["labels"]},
        x=X_IMG,
        y=Y3,
        delta=X_IMG[0] * 0,
    ),
    C(
        "robust.targeted_success_rate",
        lambda a: robust.targeted_success_rate(APPLY, CNN_V, a["x"], a["y"], a["delta"], 1),
        {"x": "nerd", "y": "erd", "delta": "nd"},
        names={"y": ["labels"]},
        x=X_IMG,
        y=Y3,
        delta=X_IMG[0] * 0,
    ),
    C(
        "robust.multiplicative_gaussian_noise",
        lambda a: robust.multiplicative_gaussian_noise(KEY, a["x"], 0.1),
        {"x": "nd"},
        x=X_IMG,
        why={"x": "elementwise: any shape"},
    ),
    C(
        "robust.multiplicative_bernoulli_noise",
        lambda a: robust.multiplicative_bernoulli_noise(KEY, a["x"], 0.1),
        {"x": "nd"},
        x=X_IMG,
        why={"x": "elementwise: any shape"},
    ),
    C(
        "robust.softrmax_distances",
        lambda a: robust.softrmax_distances(a["z"]),
        {"z": "nd"},
        names={"z": ["logits"]},
        z=LOGITS,
        why={"z": "rows of any batch shape"},
    ),
    C(
        "robust.softrmax_log_probs",
        lambda a: robust.softrmax_log_probs(a["z"]),
        {"z": "nd"},
        names={"z": ["logits"]},
        z=LOGITS,
        why={"z": "rows of any batch shape"},
    ),
    C(
        "robust.softrmax",
        lambda a: robust.softrmax(a["z"]),
        {"z": "nd"},
        names={"z": ["logits"]},
        z=LOGITS,
        why={"z": "rows of any batch shape"},
    ),
    C(
        "robust.softrmax_cross_entropy",
        lambda a: robust.softrmax_cross_entropy(a["logits"], a["labels"]),
        {"logits": "nerd", "labels": "erd"},
        logits=LOGITS,
        labels=Y6,
    ),
    C(
        "robust.margin_loss",
        lambda a: robust.margin_loss(a["logits"], a["labels"]),
        {"logits": "nerd", "labels": "erd"},
        logits=LOGITS,
        labels=Y6,
    ),
    C(
        "robust.project_batch",
        lambda a: robust.project_batch(a["delta"], 0.1),
        {"delta": "ned"},
        delta=X_IMG,
        why={"delta": "a batch [B, ...] of any input rank"},
    ),
    C(
        "robust.fgsm",
        lambda a: robust.fgsm(APPLY, CNN_V, a["x"], a["y"], 0.1),
        {"x": "nerd", "y": "erd"},
        names={"y": ["labels"]},
        x=X_IMG,
        y=Y3,
    ),
    C(
        "robust.pgd",
        lambda a: robust.pgd(KEY, APPLY, CNN_V, a["x"], a["y"], 0.1, steps=2),
        {"x": "nerd", "y": "erd"},
        names={"y": ["labels"]},
        x=X_IMG,
        y=Y3,
    ),
    C(
        "robust.bim",
        lambda a: robust.bim(APPLY, CNN_V, a["x"], a["y"], 0.1, steps=2),
        {"x": "nerd", "y": "erd"},
        names={"y": ["labels"]},
        x=X_IMG,
        y=Y3,
    ),
    C(
        "robust.class_means",
        lambda a: robust.class_means(a["x"], a["y"], 3),
        {"x": "nerd", "y": "erd"},
        names={"y": ["labels"]},
        x=X_IMG,
        y=Y3,
    ),
    C(
        "robust.average_sample_attack",
        lambda a: robust.average_sample_attack(a["x"], a["y"], a["means"], 1, 0.1),
        {"x": "nerd", "y": "erd", "means": "nerd"},
        names={"y": ["labels"]},
        x=X_IMG,
        y=Y3,
        means=robust.class_means(X_IMG, Y3, 3),
    ),
    C(
        "robust.prediction_margin",
        lambda a: robust.prediction_margin(a["logits"], a["y"]),
        {"logits": "nerd", "y": "erd"},
        names={"y": ["labels"]},
        logits=LOGITS,
        y=Y6,
    ),
    C(
        "robust.magnitude_margin_ratio",
        lambda a: robust.magnitude_margin_ratio(APPLY, CNN_V, a["x"], a["y"]),
        {"x": "nerd", "y": "erd"},
        names={"y": ["labels"]},
        x=X_IMG,
        y=Y3,
    ),
    C(
        "robust.robust_accuracy",
        lambda a: robust.robust_accuracy(APPLY, CNN_V, a["x"], a["y"], [0.0, 0.1]),
        {"x": "nerd", "y": "erd"},
        names={"y": ["labels"]},
        x=X_IMG,
        y=Y3,
    ),
    # ----------------------------------------------------------------------------------------------- explain
    C(
        "explain.cam",
        lambda a: explain.cam(APPLY, CNN_V, a["x"], a["kernel"]),
        {"x": "nerd", "kernel": "nerd"},
        x=X_IMG,
        kernel=jnp.ones((5, 3)),
    ),
    C(
        "explain.features_and_logits",
        lambda a: explain.features_and_logits(APPLY, CNN_V, a["x"], "features"),
        {"x": "nerd"},
        x=X_IMG,
    ),
    C(
        "explain.gradcam",
        lambda a: explain.gradcam(APPLY, CNN_V, a["x"], a["target"]),
        {"x": "nerd", "target": "erd"},
        x=X_IMG,
        target=Y3,
    ),
    C(
        "explain.gradcam_from_features",
        lambda a: explain.gradcam_from_features(lambda p, f: f.reshape(f.shape[0], -1)[:, :3], None, a["features"]),
        {"features": "nerd"},
        features=jnp.asarray(RNG.uniform(size=(2, 3, 3, 4)), jnp.float32),
    ),
    C("explain.guided_backprop", lambda a: explain.guided_backprop(APPLY, CNN_V, a["x"]), {"x": "nerd"}, x=X_IMG),
    C(
        "explain.layer_names",
        lambda a: explain.layer_names(APPLY, CNN_V, a["x"]),
        {"x": "r"},
        x=X_IMG,
        why={"x": "a shape example: its values and batch size are never used"},
    ),
    C(
        "explain.normalize_maps",
        lambda a: explain.normalize_maps(a["maps"]),
        {"maps": "ned"},
        maps=MAPS,
        why={"maps": "a batch of maps of any rank"},
    ),
    C(
        "explain.resolve_layer",
        lambda a: explain.resolve_layer(APPLY, CNN_V, a["x"], None),
        {"x": "r"},
        x=X_IMG,
        why={"x": "a shape example: its values and batch size are never used"},
    ),
    C("explain.saliency", lambda a: explain.saliency(APPLY, CNN_V, a["x"]), {"x": "nerd"}, x=X_IMG),
    C(
        "explain.local_spatial_entropy",
        lambda a: explain.local_spatial_entropy(a["maps"], 3, 4),
        {"maps": "nerd"},
        maps=MAPS,
    ),
    C("explain.entropy_scores", lambda a: explain.entropy_scores(a["maps"], 3, 4), {"maps": "nerd"}, maps=MAPS),
    C("explain.feature_response", lambda a: explain.feature_response(APPLY, CNN_V, a["x"]), {"x": "nerd"}, x=X_IMG),
    C(
        "explain.fit_threshold",
        lambda a: explain.fit_threshold(a["clean_scores"]),
        {"clean_scores": "nerd"},
        clean_scores=SCORES,
    ),
    C(
        "explain.detect",
        lambda a: explain.detect(a["scores"], a["threshold"]),
        {"scores": "nd", "threshold": "n"},
        scores=SCORES,
        threshold=0.5,
        why={"scores": "elementwise: any shape"},
    ),
    C(
        "explain.detection_report",
        lambda a: explain.detection_report(a["clean_scores"], a["attacked_scores"]),
        {"clean_scores": "nerd", "attacked_scores": "nerd"},
        clean_scores=SCORES,
        attacked_scores=SCORES + 1,
    ),
    # ------------------------------------------------------------------------------------------- calibration
    C(
        "calibration.scores_and_events",
        lambda a: calibration.scores_and_events(a["probs"], a["labels"]),
        {"probs": "nerd", "labels": "erd"},
        probs=PROBS,
        labels=LABELS,
    ),
    C("calibration.bin_weights", lambda a: calibration.bin_weights(a["s"], 5), {"s": "nerd"}, s=PROBS[:, 0]),
    C(
        "calibration.ece",
        lambda a: calibration.ece(a["probs"], a["labels"]),
        {"probs": "nerd", "labels": "erd"},
        probs=PROBS,
        labels=LABELS,
    ),
    C(
        "calibration.mce",
        lambda a: calibration.mce(a["probs"], a["labels"]),
        {"probs": "nerd", "labels": "erd"},
        probs=PROBS,
        labels=LABELS,
    ),
    C("calibration.kde_density", lambda a: calibration.kde_density(a["s"], grid_size=65), {"s": "nerd"}, s=PROBS[:, 0]),
    C(
        "calibration.ece_kde",
        lambda a: calibration.ece_kde(a["probs"], a["labels"], grid_size=65),
        {"probs": "nerd", "labels": "erd"},
        probs=PROBS,
        labels=LABELS,
    ),
    C(
        "calibration.ece_kde_triweight",
        lambda a: calibration.ece_kde_triweight(a["probs"], a["labels"], grid_size=65),
        {"probs": "nerd", "labels": "erd"},
        probs=PROBS,
        labels=LABELS,
    ),
    C(
        "calibration.local_calibration_error",
        lambda a: calibration.local_calibration_error(a["probs"], a["labels"], grid_size=65),
        {"probs": "nerd", "labels": "erd"},
        probs=PROBS,
        labels=LABELS,
    ),
    C(
        "calibration.reliability_curve",
        lambda a: calibration.reliability_curve(KEY, a["probs"], a["labels"], num_bootstrap=4, grid_size=33),
        {"probs": "nerd", "labels": "erd"},
        probs=PROBS,
        labels=LABELS,
    ),
    C(
        "calibration.reliability_diagram",
        lambda a: calibration.reliability_diagram(a["probs"], a["labels"], n_bins=4),
        {"probs": "nerd", "labels": "erd"},
        probs=PROBS,
        labels=LABELS,
    ),
    C(
        "calibration.fit_temperature",
        lambda a: calibration.fit_temperature(a["logits"], a["labels"]),
        {"logits": "nerd", "labels": "erd"},
        logits=LOGITS,
        labels=Y6,
    ),
    C(
        "calibration.silverman_bandwidth",
        lambda a: calibration.silverman_bandwidth(a["s"]),
        {"s": "nerd"},
        s=PROBS[:, 0],
    ),
    # ---------------------------------------------------------------------------------------------- fairness
    C(
        "fairness.cross_groups",
        lambda a: fairness.cross_groups(a["a"], a["b"]),
        {"a": "erd", "b": "erd"},
        names={"a": ["codes"], "b": ["codes"]},
        a=GROUPS,
        b=YT,
    ),
    C(
        "fairness.benefits",
        lambda a: fairness.benefits(a["y_true"], a["y_pred"]),
        {"y_true": "nerd", "y_pred": "nerd"},
        y_true=YT * 1.0,
        y_pred=YP * 1.0,
    ),
    C(
        "fairness.generalized_entropy_index",
        lambda a: fairness.generalized_entropy_index(a["b"]),
        {"b": "nerd"},
        b=fairness.benefits(YT, YP),
    ),
    C(
        "fairness.ge_decomposition",
        lambda a: fairness.ge_decomposition(a["b"], a["groups"], 3),
        {"b": "nerd", "groups": "erd"},
        b=fairness.benefits(YT, YP),
        groups=GROUPS,
    ),
    C(
        "fairness.individual_unfairness",
        lambda a: fairness.individual_unfairness(a["y_true"], a["y_pred"], a["groups"], 3),
        {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"},
        y_true=YT,
        y_pred=YP,
        groups=GROUPS,
    ),
    C(
        "fairness.group_unfairness",
        lambda a: fairness.group_unfairness(a["y_true"], a["y_pred"], a["groups"], 3),
        {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"},
        y_true=YT,
        y_pred=YP,
        groups=GROUPS,
    ),
    C(
        "fairness.fairness_objectives",
        lambda a: fairness.fairness_objectives(a["y_true"], a["prob"], a["groups"], 3),
        {"y_true": "nerd", "prob": "nerd", "groups": "erd"},
        y_true=YT,
        prob=PROB,
        groups=GROUPS,
    ),
    *[
        C(
            f"fairness.{name}",
            lambda a, f=getattr(fairness, name): f(a["y_true"], a["y_pred"], a["groups"], 3),
            {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"},
            y_true=YT,
            y_pred=YP,
            groups=GROUPS,
        )
        for name in (
            "group_rates",
            "demographic_parity_difference",
            "demographic_parity_ratio",
            "equalized_odds_difference",
            "equalized_odds_ratio",
            "equal_opportunity_ratio",
            "equal_opportunity_difference",
        )
    ],  # the group metrics share one signature
    C(
        "fairness.predict_proba",
        lambda a: fairness.predict_proba(a["params"], a["x"]),
        {"params": "n", "x": "nerd"},
        params=fairness.init_mlp(KEY, 3, 4),
        x=FEATS,
    ),
    C(
        "fairness.model_objectives",
        lambda a: fairness.model_objectives(a["params"], a["x"], a["y"], a["groups"], 3),
        {"params": "n", "x": "nerd", "y": "nerd", "groups": "erd"},
        params=fairness.init_mlp(KEY, 3, 4),
        x=FEATS,
        y=YT,
        groups=GROUPS,
    ),
    C(
        "fairness.partial_train",
        lambda a: fairness.partial_train(KEY, a["params"], a["x"], a["y"], steps=2, batch_size=4),
        {"params": "n", "x": "nerd", "y": "nerd"},
        params=fairness.init_mlp(KEY, 3, 4),
        x=FEATS,
        y=YT,
    ),
    C(
        "fairness.member_key",
        lambda a: fairness.member_key(KEY, a["params"]),
        {},
        params=fairness.init_mlp(KEY, 3, 4),
        why={"params": "only the bits of two weights seed a key: NaN bits too"},
    ),
    # ------------------------------------------------------------------------------------------------ losses
    C(
        "losses.class_mean_pairwise_distance",
        lambda a: losses.class_mean_pairwise_distance(a["x"], a["labels"], 3),
        {"x": "nerd", "labels": "erd"},
        x=FEATS,
        labels=GROUPS,
    ),
    C(
        "losses.class_similarity_matrix",
        lambda a: losses.class_similarity_matrix(a["distances"]),
        {"distances": "nerd"},
        distances=jnp.asarray(RNG.uniform(size=(3, 3)), jnp.float32),
    ),
    C(
        "losses.similarity_smooth_labels",
        lambda a: losses.similarity_smooth_labels(a["labels"], a["similarity"]),
        {"labels": "erd", "similarity": "nerd"},
        labels=Y6,
        similarity=jnp.eye(3),
    ),
    C(
        "losses.uniform_smooth_labels",
        lambda a: losses.uniform_smooth_labels(a["labels"], 3),
        {"labels": "erd"},
        labels=Y6,
    ),
    C(
        "losses.hir_loss",
        lambda a: losses.hir_loss(a["logits"], a["labels"]),
        {"logits": "nerd", "labels": "erd"},
        logits=LOGITS,
        labels=Y6,
    ),
    C("losses.pairwise_kl", lambda a: losses.pairwise_kl(a["logits"]), {"logits": "nerd"}, logits=LOGITS),
    C(
        "losses.median_bandwidths",
        lambda a: losses.median_bandwidths(a["xs"], a["xt"]),
        {"xs": "nerd", "xt": "nerd"},
        xs=FEATS,
        xt=FEATS + 1,
    ),
    C("losses.mk_mmd", lambda a: losses.mk_mmd(a["xs"], a["xt"]), {"xs": "nerd", "xt": "nerd"}, xs=FEATS, xt=FEATS + 1),
    C(
        "losses.class_balanced_weights",
        lambda a: losses.class_balanced_weights(a["counts"]),
        {"counts": "nerd"},
        counts=jnp.array([10.0, 3.0, 1.0]),
    ),
    C(
        "losses.focal_loss",
        lambda a: losses.focal_loss(a["logits"], a["labels"]),
        {"logits": "nerd", "labels": "erd"},
        logits=LOGITS,
        labels=Y6,
    ),
    C(
        "losses.class_balanced_focal_loss",
        lambda a: losses.class_balanced_focal_loss(a["logits"], a["labels"], a["counts"]),
        {"logits": "nerd", "labels": "erd", "counts": "nerd"},
        logits=LOGITS,
        labels=Y6,
        counts=jnp.array([10.0, 3, 1]),
    ),
    C(
        "losses.balanced_sum",
        lambda a: losses.balanced_sum(a["losses"], a["weights"]),
        {"losses": "nerd", "weights": "nerd"},
        losses=jnp.array([1.0, 2.0]),
        weights=jnp.array([0.5, 0.5]),
    ),
]

# ------------------------------------------------------------------ evolution, evolution.moo (issue 35)
POP = jnp.asarray(RNG.uniform(size=(8, 3)), jnp.float32)
POP_B = jnp.asarray(RNG.uniform(size=(8, 3)), jnp.float32)
FIT = jnp.asarray(RNG.normal(size=8), jnp.float32)
OBJ = jnp.asarray(RNG.uniform(size=(8, 2)), jnp.float32)
RANKS = jnp.asarray(RNG.integers(0, 3, 8), jnp.int32)
CURVES = jnp.asarray(np.cumsum(RNG.normal(size=(5, 12)), axis=1), jnp.float32)
FINAL = jnp.asarray(RNG.normal(size=20), jnp.float32)
NAN_FITNESS = "NaN fitness is a failed evaluation, ranked last by design (test_evolution: ranks_nan_last)"
ANY_GENES = "genes may be any shape and dtype: the operator only moves whole values"


class LNNet(nn.Module):
    @nn.compact
    def __call__(self, x, group=None):
        x = normalize.LocalNorm(2, name="norm")(nn.Conv(3, (3, 3))(x), group=group)
        return nn.Dense(3)(x.mean((1, 2)))


KERNELS = {"Dense_0": {"kernel": MLP["Dense_0"]["kernel"]}}
LN_X = jnp.asarray(RNG.normal(size=(4, 6, 6, 3)), jnp.float32)
LN_V = normalize.LocalNorm(2).init(jax.random.key(5), LN_X)
LN_NET = LNNet()
LN_NET_V = LN_NET.init(jax.random.key(6), LN_X)
DIGITS = data.load_digits()
TRAIN_STATE = models.create_train_state(jax.random.key(7), VGG, VGG_X, optax.adam(1e-3))
SCENE = data.make_hyperspectral_scene(32, 32, bands=4)


def _sphere(x):
    return jnp.sum(x**2)


CASES += [
    C(
        "evolution.evaluate",
        lambda a: evolution.evaluate(_sphere, a["population"]),
        {"population": "ne"},
        population=POP,
        why={"population": "a member may have any shape; its dtype is the fitness function's concern"},
    ),
    C(
        "evolution.pad_population",
        lambda a: evolution.pad_population(a["population"], 3),
        {"population": "e"},
        population=POP,
        why={"population": ANY_GENES},
    ),
    C(
        "evolution.uniform_crossover",
        lambda a: evolution.uniform_crossover(KEY, a["a"], a["b"]),
        {"a": "ner", "b": "ner"},
        a=POP,
        b=POP_B,
        why={"a": ANY_GENES, "b": ANY_GENES},
    ),
    C(
        "evolution.binomial_crossover",
        lambda a: evolution.binomial_crossover(KEY, a["target"], a["donor"]),
        {"target": "ner", "donor": "ner"},
        target=POP,
        donor=POP_B,
        why={"target": ANY_GENES, "donor": ANY_GENES},
    ),
    C(
        "evolution.de_mutation",
        lambda a: evolution.de_mutation(KEY, a["population"]),
        {"population": "nerd"},
        population=POP,
    ),
    C(
        "evolution.gaussian_mutation",
        lambda a: evolution.gaussian_mutation(KEY, a["population"], 0.5),
        {"population": "ned"},
        population=POP,
        why={"population": "a member may have any shape"},
    ),
    C(
        "evolution.uniform_mutation",
        lambda a: evolution.uniform_mutation(KEY, a["population"], 0.5),
        {"population": "ned"},
        population=POP,
        why={"population": "a member may have any shape"},
    ),
    C(
        "evolution.categorical_mutation",
        lambda a: evolution.categorical_mutation(KEY, a["population"], 0.5, a["allowed"]),
        {"population": "ed", "allowed": "e"},
        population=jnp.asarray(RNG.integers(0, 4, (8, 3))),
        allowed=np.ones((3, 4), bool),
        why={"allowed": "a boolean table"},
    ),
    C(
        "evolution.drop",
        lambda a: evolution.drop(KEY, a["population"], 0.5),
        {"population": "ne"},
        population=POP,
        why={"population": ANY_GENES},
    ),
    C(
        "evolution.replace_fraction",
        lambda a: evolution.replace_fraction(KEY, a["population"], a["fresh"], 0.5),
        {"population": "ner", "fresh": "ner"},
        population=POP,
        fresh=POP_B,
        why={"population": ANY_GENES, "fresh": ANY_GENES},
    ),
    C(
        "evolution.ranking_key",
        lambda a: evolution.ranking_key(a["fitness"]),
        {"fitness": "ed"},
        fitness=FIT,
        why={"fitness": NAN_FITNESS + "; elementwise, any shape"},
    ),
    C(
        "evolution.tournament_selection",
        lambda a: evolution.tournament_selection(KEY, a["fitness"], 4),
        {"fitness": "erd"},
        fitness=FIT,
        why={"fitness": NAN_FITNESS},
    ),
    C(
        "evolution.truncation_selection",
        lambda a: evolution.truncation_selection(a["fitness"], 4),
        {"fitness": "erd"},
        fitness=FIT,
        why={"fitness": NAN_FITNESS},
    ),
    C(
        "evolution.elitist_merge",
        lambda a: evolution.elitist_merge(a["population"], a["fitness"], POP_B, FIT + 1),
        {"population": "ner", "fitness": "erd"},
        population=POP,
        fitness=FIT,
        why={"fitness": NAN_FITNESS, "population": ANY_GENES},
    ),
    C(
        "evolution.dominates",
        lambda a: evolution.dominates(a["a"], a["b"]),
        {"a": "ned", "b": "ned"},
        a=OBJ[0],
        b=OBJ[1],
        why={"a": "broadcasts over leading axes", "b": "as a"},
    ),
    C(
        "evolution.non_dominated_sort",
        lambda a: evolution.non_dominated_sort(a["objectives"]),
        {"objectives": "erd"},
        objectives=OBJ,
        why={"objectives": "a NaN row is a failed evaluation: ranked in the last front by design (test_moo)"},
    ),
    C(
        "evolution.crowding_distance",
        lambda a: evolution.crowding_distance(a["objectives"], a["ranks"]),
        {"objectives": "erd", "ranks": "erd"},
        objectives=OBJ,
        ranks=RANKS,
        why={"objectives": "NaN rows get crowding 0 (pymoo's convention, test_moo)"},
    ),
    C(
        "evolution.rank_and_crowding",
        lambda a: evolution.rank_and_crowding(a["objectives"]),
        {"objectives": "erd"},
        objectives=OBJ,
        why={"objectives": "NaN rows: last front, crowding 0 (test_moo)"},
    ),
    C(
        "evolution.survival_order",
        lambda a: evolution.survival_order(a["ranks"], a["crowding"]),
        {"ranks": "erd", "crowding": "erd"},
        ranks=RANKS,
        crowding=FIT,
        why={"crowding": "NaN crowding sorts last within its front"},
    ),
    C(
        "evolution.hypervolume",
        lambda a: evolution.hypervolume(a["objectives"], a["ref_point"]),
        {"objectives": "erd", "ref_point": "nerd"},
        objectives=OBJ,
        ref_point=np.array([1.5, 1.5]),
        why={"objectives": "rows with NaN contribute nothing (pymoo's HV convention)"},
    ),
    C(
        "evolution.pure_diversity",
        lambda a: evolution.pure_diversity(a["objectives"]),
        {"objectives": "erd"},
        objectives=OBJ,
        why={"objectives": "rows with NaN are left out, as hypervolume does (a failed evaluation)"},
    ),
    C("evolution.spacing", lambda a: evolution.spacing(a["objectives"]), {"objectives": "nerd"}, objectives=OBJ),
    C(
        "evolution.sbx_crossover",
        lambda a: evolution.sbx_crossover(KEY, a["a"], a["b"], lo=0.0, hi=1.0),
        {"a": "ner", "b": "ner"},
        a=POP,
        b=POP_B,
        why={"a": "a member may have any shape", "b": "as a"},
    ),
    C(
        "evolution.polynomial_mutation",
        lambda a: evolution.polynomial_mutation(KEY, a["population"], 0.5, lo=a["lo"], hi=a["hi"]),
        {"population": "ne", "lo": "nd", "hi": "nd"},
        population=POP,
        lo=np.zeros(3),
        hi=np.ones(3),
        why={"population": "a member may have any shape"},
    ),
    C(
        "evolution.moo.weight_noise",
        lambda a: evolution.moo.weight_noise(KEY, a["population"]),
        {"population": "ne"},
        population=POP,
        why={"population": "a member may have any shape"},
    ),
    C(
        "evolution.moo.dominance_tournament",
        lambda a: evolution.moo.dominance_tournament(KEY, a["objectives"], a["crowding"], 4),
        {"objectives": "erd", "crowding": "erd"},
        objectives=OBJ,
        crowding=FIT,
        why={"objectives": "NaN rows lose every tournament (a failed evaluation)", "crowding": "NaN sorts last"},
    ),
    # -------------------------------------------------------------------------------------------------- rl
    C(
        "rl.prediction_error",
        lambda a: rl.prediction_error(a["next_obs"], a["predicted"]),
        {"next_obs": "nerd", "predicted": "nerd"},
        next_obs=POP,
        predicted=POP_B,
    ),
    C(
        "rl.prediction_error_reward",
        lambda a: rl.prediction_error_reward(a["error"]),
        {"error": "nd"},
        error=FIT**2,
        why={"error": "elementwise: any shape, empty included"},
    ),
    C(
        "rl.surprise_reward",
        lambda a: rl.surprise_reward(a["error"], a["error_estimate"], 0.01),
        {"error": "nd", "error_estimate": "nd"},
        error=FIT**2,
        error_estimate=FIT**2 + 0.1,
        why={"error": "elementwise: any shape, empty included", "error_estimate": "as error"},
    ),
    C(
        "rl.gate",
        lambda a: rl.gate(a["r_fm"], a["r_mc"]),
        {"r_fm": "nd", "r_mc": "nd"},
        r_fm=FIT,
        r_mc=FIT + 0.5,
        why={"r_fm": "elementwise: any shape, empty included", "r_mc": "as r_fm"},
    ),
    C(
        "rl.agent_reward",
        lambda a: rl.agent_reward(a["kind"], a["r_fm"], a["r_mc"]),
        {"kind": "d", "r_fm": "nd", "r_mc": "nd"},
        kind=3,
        r_fm=FIT,
        r_mc=FIT + 0.5,
        why={"r_fm": "elementwise: any shape, empty included", "r_mc": "as r_fm"},
    ),
    C(
        "rl.step_autoreset",
        lambda a: rl.step_autoreset(
            rl.MountainCarContinuous(), KEY, rl.MountainCarContinuous().reset(KEY)[1], a["action"]
        ),
        {"action": "nerd"},
        action=jnp.array([0.3]),
    ),
    C(
        "rl.kinds_index",
        lambda a: rl.kinds_index(a["agents"]),
        {"agents": "e"},
        {"agents": ["names"]},
        agents=np.array(["fm", "gated"]),
        why={"agents": "strings: unknown names are an error (test_rl)"},
    ),
    C(
        "rl.ou_step",
        lambda a: rl.ou_step(KEY, a["x"], a["theta"]),
        {"x": "nd", "theta": "nd"},
        x=jnp.zeros(2),
        theta=0.15,
        why={"x": "any shape: one value per action dimension (an empty process stays empty)"},
    ),
    C(
        "rl.place_runs",
        lambda a: rl.place_runs(a["tree"]),
        {"tree": "e"},
        tree={"w": POP},
        why={"tree": "any stacked pytree: values are moved, not read"},
    ),
    C(
        "rl.reliability.iqr",
        lambda a: rl.reliability.iqr(a["x"]),
        {"x": "ned"},
        x=FINAL,
        why={"x": "any shape (axis=None: all values)"},
    ),
    C(
        "rl.reliability.cvar",
        lambda a: rl.reliability.cvar(a["x"], 0.25),
        {"x": "ned"},
        x=FINAL,
        why={"x": "any shape (axis=None: all values)"},
    ),
    C("rl.reliability.detrend", lambda a: rl.reliability.detrend(a["curves"]), {"curves": "nerd"}, curves=CURVES),
    C("rl.reliability.drawdown", lambda a: rl.reliability.drawdown(a["curves"]), {"curves": "nerd"}, curves=CURVES),
    C(
        "rl.reliability.moving_average",
        lambda a: rl.reliability.moving_average(a["curves"], 3),
        {"curves": "nerd"},
        curves=CURVES,
    ),
    C(
        "rl.reliability.dispersion_across_runs",
        lambda a: rl.reliability.dispersion_across_runs(a["curves"]),
        {"curves": "nerd"},
        curves=CURVES,
    ),
    C(
        "rl.reliability.risk_across_runs",
        lambda a: rl.reliability.risk_across_runs(a["final"], 0.25),
        {"final": "nerd"},
        final=FINAL,
    ),
    C(
        "rl.reliability.dispersion_across_time",
        lambda a: rl.reliability.dispersion_across_time(a["curves"], 3),
        {"curves": "nerd"},
        curves=CURVES,
    ),
    C(
        "rl.reliability.short_term_risk_across_time",
        lambda a: rl.reliability.short_term_risk_across_time(a["curves"], 0.25),
        {"curves": "nerd"},
        curves=CURVES,
    ),
    C(
        "rl.reliability.long_term_risk_across_time",
        lambda a: rl.reliability.long_term_risk_across_time(a["curves"], 0.25),
        {"curves": "nerd"},
        curves=CURVES,
    ),
    # ------------------------------------------------------------------------------------------- normalize
    C(
        "normalize.center",
        lambda a: normalize.center(a["w"]),
        {"w": "ned"},
        w=jnp.asarray(CUBE, jnp.float32),
        why={"w": "a kernel of any rank (the last axis holds the filters)"},
    ),
    C(
        "normalize.standardize",
        lambda a: normalize.standardize(a["w"]),
        {"w": "ned"},
        w=jnp.asarray(CUBE, jnp.float32),
        why={"w": "a kernel of any rank (the last axis holds the filters)"},
    ),
    C(
        "normalize.unit_norm",
        lambda a: normalize.unit_norm(a["w"]),
        {"w": "ned"},
        w=jnp.asarray(CUBE, jnp.float32),
        why={"w": "a kernel of any rank (the last axis holds the filters)"},
    ),
    C(
        "normalize.transform_weights",
        lambda a: normalize.transform_weights(a["params"]),
        {"params": "n"},
        params=MLP,
        why={"params": "any parameter pytree"},
    ),
    C(
        "normalize.centralize_gradients",
        lambda a: normalize.centralize_gradients().update(a["updates"], normalize.centralize_gradients().init(MLP))[0],
        {"updates": "n"},
        updates=MLP,
        why={"updates": "any gradient pytree"},
    ),
    C(
        "normalize.project_weights",
        lambda a: normalize.project_weights().update(
            KERNELS, normalize.project_weights().init(a["params"]), a["params"]
        )[0],
        {"params": "n"},
        params=KERNELS,
        why={"params": "any parameter pytree (only its kernels are read)"},
    ),
    C(
        "normalize.reparameterize",
        lambda a: normalize.reparameterize(APPLY)(a["variables"], a["x"]),
        {"variables": "n", "x": "nerd"},
        variables=CNN_V,
        x=X_IMG,
    ),
    C(
        "normalize.Reparameterized",
        lambda a: normalize.Reparameterized(CNN()).apply(a["variables"], a["x"]),
        {"variables": "n", "x": "n"},
        variables=CNN_V,
        x=X_IMG,
        why={"x": "goes to the user's own module: shape and dtype errors are that module's"},
    ),
    C(
        "normalize.LocalNorm",
        lambda a: normalize.LocalNorm(2).apply(LN_V, a["x"]),
        {"x": "nerd"},
        x=jnp.asarray(RNG.normal(size=(4, 6, 6, 3)), jnp.float32),
    ),
    C(
        "normalize.localnorm_predict",
        lambda a: normalize.localnorm_predict(LN_NET.apply, LN_NET_V, a["x"], 2, mode="batch_vote"),
        {"x": "nerd"},
        x=jnp.asarray(RNG.normal(size=(4, 6, 6, 3)), jnp.float32),
    ),
    C(
        "normalize.majority_vote",
        lambda a: normalize.majority_vote(a["logits"]),
        {"logits": "nerd"},
        logits=jnp.asarray(RNG.normal(size=(3, 6, 4)), jnp.float32),
    ),
    C(
        "normalize.bn_to_localnorm",
        lambda a: normalize.bn_to_localnorm(a["variables"], 2),
        {"variables": "n"},
        variables=VGG_V,
    ),
    C(
        "normalize.dynamic_bn_apply",
        lambda a: normalize.dynamic_bn_apply(VGG.apply, VGG_V, a["x"]),
        {"x": "nerd"},
        x=VGG_X,
    ),
    # ------------------------------------------------------------------------------------------- schedules
    C(
        "schedules.bfrifp_decay",
        lambda a: schedules.bfrifp_decay(3)(a["epoch"], a["layer"]),
        {"epoch": "nd", "layer": "nd"},
        epoch=np.array([0.0, 2.0]),
        layer=np.array([1.0, 2.0]),
        why={"epoch": "elementwise: any shape", "layer": "elementwise: any shape"},
    ),
    C(
        "schedules.warmup_cosine_sparsity",
        lambda a: schedules.warmup_cosine_sparsity(0.5, 100, 10)(a["step"]),
        {"step": "nd"},
        step=np.array([0.0, 5.0, 50.0]),
        why={"step": "elementwise: any shape"},
    ),
    C(
        "schedules.gmp_sparsity",
        lambda a: schedules.gmp_sparsity(0.9, 10, 100)(a["step"]),
        {"step": "nd"},
        step=np.array([0.0, 50.0]),
        why={"step": "elementwise: any shape"},
    ),
    C(
        "schedules.temperature",
        lambda a: schedules.temperature(5.0, 0.1, 100)(a["step"]),
        {"step": "nd"},
        step=np.array([0.0, 50.0]),
        why={"step": "elementwise: any shape"},
    ),
    C(
        "schedules.ramp",
        lambda a: schedules.ramp(1.0, 10)(a["step"]),
        {"step": "nd"},
        step=np.array([0.0, 5.0]),
        why={"step": "elementwise: any shape"},
    ),
    # ------------------------------------------------------------------------------------------------ data
    C(
        "data.select_classes",
        lambda a: data.select_classes(DIGITS, a["classes"]),
        {"classes": "erd"},
        classes=np.array([3, 7]),
    ),
    C("data.load_digits", lambda a: data.load_digits(test_size=a["test_size"]), {"test_size": "nd"}, test_size=0.2),
    C("data.load_iris", lambda a: data.load_iris(test_size=a["test_size"]), {"test_size": "nd"}, test_size=0.2),
    C(
        "data.load_breast_cancer",
        lambda a: data.load_breast_cancer(test_size=a["test_size"]),
        {"test_size": "nd"},
        test_size=0.2,
    ),
    C(
        "data.make_classification",
        lambda a: data.make_classification(100, test_size=a["test_size"]),
        {"test_size": "nd"},
        test_size=0.2,
    ),
    C(
        "data.batches",
        lambda a: list(data.batches(None, a["x"], a["y"], batch_size=4)),
        {"x": "e", "y": "er"},
        {"x": ["arrays"], "y": ["arrays"]},
        x=np.asarray(FEATS),
        y=np.asarray(YT),
        why={"x": "rows of any shape and dtype", "y": "any dtype"},
    ),
    C(
        "data.random_crop_flip",
        lambda a: data.random_crop_flip(KEY, a["x"], padding=a["padding"]),
        {"x": "nerd", "padding": "nd"},
        x=X_IMG,
        padding=2,
    ),
    C("data.num_batches", lambda a: data.num_batches(a["n"], 4), {"n": "nd"}, n=10),
    C("data.cup_reference", lambda a: data.cup_reference(radius=a["radius"]), {"radius": "nd"}, radius=30.0),
    C("data.make_cups", lambda a: data.make_cups(20, noise=a["noise"]), {"noise": "nd"}, noise=0.0),
    C("data.check_cube", lambda a: data.check_cube(a["cube"]), {"cube": "nerd"}, cube=np.abs(CUBE)),
    C(
        "data.make_hyperspectral_scene",
        lambda a: data.make_hyperspectral_scene(32, 32, bands=4, noise=a["noise"]),
        {"noise": "nd"},
        noise=1.0,
    ),
    C("data.scale_cube", lambda a: data.scale_cube(a["cube"]), {"cube": "nerd"}, cube=np.abs(CUBE)),
    C("data.pixel_windows", lambda a: data.pixel_windows(a["cube"], 3), {"cube": "nerd"}, cube=np.abs(CUBE)),
    C(
        "data.window_split",
        lambda a: data.window_split(SCENE, 1, val_fraction=a["val_fraction"]),
        {"val_fraction": "nd"},
        val_fraction=0.2,
    ),
    C("data.make_fair_tabular", lambda a: data.make_fair_tabular(200, shift=a["shift"]), {"shift": "nd"}, shift=1.0),
    C(
        "data.make_rotated_digits",
        lambda a: data.make_rotated_digits((0, 30), 2, x=a["x"], y=a["y"]),
        {"x": "nerd", "y": "erd"},
        x=np.asarray(DIGITS.train.x),
        y=np.asarray(DIGITS.train.y),
    ),
    C(
        "data.domain_batch_sampler",
        lambda a: data.domain_batch_sampler(a["labels"], 3, 2, 2)(KEY),
        {"labels": "erd"},
        labels=np.asarray(GROUPS),
    ),
    C(
        "data.domain_batch_indices",
        lambda a: data.domain_batch_indices(KEY, a["labels"], 3, 2, 2),
        {"labels": "erd"},
        labels=np.asarray(GROUPS),
    ),
    C(
        "data.make_imbalanced",
        lambda a: data.make_imbalanced(data.Split(a["x"], a["y"]), 4.0),
        {"x": "er", "y": "erd"},
        x=np.asarray(FEATS),
        y=np.asarray(GROUPS),
        why={"x": "rows of any shape and dtype: only selected"},
    ),
    C(
        "data.balanced_sampler",
        lambda a: data.balanced_sampler(a["labels"])(KEY, 6),
        {"labels": "erd"},
        labels=np.asarray(GROUPS),
    ),
    C(
        "data.injection_sampler",
        lambda a: data.injection_sampler(a["pool_labels"], 4)(KEY),
        {"pool_labels": "erd"},
        pool_labels=np.asarray(GROUPS),
    ),
    C("data.expected_wait", lambda a: data.expected_wait(a["num_rare"], 4), {"num_rare": "nd"}, num_rare=5),
    C(
        "data.synthesize",
        lambda a: data.synthesize(a["x"], 6),
        {"x": "nerd"},
        x=np.asarray(RNG.uniform(size=(3, 8, 8, 1)), np.float32),
    ),
    # ---------------------------------------------------------------------------------------------- models
    C(
        "models.init_variables",
        lambda a: models.init_variables(VGG, KEY, a["x"], train=False),
        {"x": "rd"},
        x=VGG_X,
        why={"x": "only its shape and dtype matter (values are never read; an empty batch is fine)"},
    ),
    C(
        "models.create_train_state",
        lambda a: models.create_train_state(KEY, VGG, a["sample_input"], _adam()),
        {"sample_input": "rd"},
        {"sample_input": ["x"]},
        sample_input=VGG_X,
        why={"sample_input": "only its shape and dtype matter (an empty batch is fine)"},
    ),
    C(
        "models.cross_entropy",
        lambda a: models.cross_entropy(a["logits"], a["labels"]),
        {"logits": "nerd", "labels": "erd"},
        logits=LOGITS,
        labels=Y6,
    ),
    C(
        "models.evaluate",
        lambda a: models.evaluate(TRAIN_STATE, a["x"], a["y"]),
        {"x": "nerd", "y": "erd"},
        x=np.asarray(VGG_X),
        y=np.array([0, 2]),
    ),
]

# Public names that take no array input a user could get wrong in these ways, with the reason.
NO_ARRAY_INPUT = {
    "data.prefetch": "moves the items of any iterable to a device: nothing is computed from the values",
    "rl.gather_runs": "copies any pytree (empty arrays included) to the host: nothing is computed from the values",
    "interval.Interval": "a plain pytree container; every function that takes one validates it (interval.check)",
    "lipschitz.Result": "a result record",
    "lipschitz.PaperNetwork": "a result record",
    "lipschitz.paper_network": "takes a network name (unknown names: test_lipschitz)",
    "gan.Critic": "a Flax module",
    "gan.Generator": "a Flax module",
    "gan.GanState": "a state record",
    "gan.Preset": "a configuration record",
    "gan.make_train_step": "a factory of a jitted step (its arrays are checked by the losses above)",
    "gan.thesis_lr": "a schedule factory over an iteration count",
    "anomaly.plot_semilog_roc": "plotting",
    "anomaly.plot_heatmap": "plotting",
    "gates.edges": "takes a graph",
    "gates.init_gates": "takes a graph",
    "gates.gated": "a model wrapper factory",
    "gates.CostModel": "a record",
    "gates.cost_model": "takes a graph",
    "gates.split_optimizer": "an optax factory",
    "gates.make_train_step": "a factory of a jitted step",
    "gates.latency_factors": "times callables",
    "gates.alpha_path": "a generator driving the caller's own training callables",
    "prune.Graph": "a record",
    "prune.Group": "a record",
    "prune.Layer": "a record",
    "prune.Member": "a record",
    "prune.Cost": "a record",
    "prune.MaskedUpdatesState": "an optax state",
    "prune.Stats": "a record",
    "prune.bn_layer": "takes a graph and one of its groups",
    "explain.Tap": "a Flax module",
    "explain.guided_relus": "a context manager",
    "fairness.init_mlp": "takes a key and sizes",
    "fairness.moea_fitness": "a factory of a fitness function (its arrays: fairness.model_objectives above)",
    "losses.RunningMeanBalancer": "an optax-style factory",
    "losses.BalancerState": "a state record",
    "evolution.run": "drives a strategy (its arrays go through ask / tell)",
    "evolution.Strategy": "the strategy base class (its ask / tell: test_strategy_contract)",
    "evolution.SingleObjective": "a strategy base class (its ask / tell: test_strategy_contract)",
    "evolution.register": "a class decorator (non-strategies: test_strategy_contract)",
    "evolution.make": "builds a strategy by name (unknown names: test_strategy_contract)",
    "models.with_im2col": "wraps an apply function (no array input)",
    "data.shipped_data_file": "takes a data set and a file name (missing copies: test_fair_data)",
    "models.CCSANet": "a Flax module",
    "models.LeNet": "a Flax module",
    "models.NormCNN": "a Flax module",
    "models.im2col_conv": "Flax's conv_general_dilated slot inside nn.Conv, which checks shapes before calling it",
    "metrics.far_floor": "takes a count and an optional floor (checked through log_auc_chance's cases)",
    "evolution.optimize": "drives a strategy (its arrays go through ask / tell)",
    "evolution.step": "drives a strategy (its arrays go through ask / tell)",
    "evolution.GA": "a strategy class (rates: test_evolution; fitness: the selections above)",
    "evolution.GAParams": "a record (checked by GA.init / GA.ask)",
    "evolution.EvoState": "a state record",
    "evolution.DE": "a strategy class (rates: test_evolution)",
    "evolution.DEParams": "a record (checked by DE.ask)",
    "evolution.NSGA2": "a strategy class (rates: test_moo)",
    "evolution.NSGA2Params": "a record (checked by ask)",
    "evolution.MOState": "a state record",
    "evolution.pareto_front": "takes an MOState built by NSGA2.tell",
    "evolution.box_nsga2": "a preset factory over sizes and a box",
    "rl.DDPG": "an agent class",
    "rl.DDPGState": "a state record",
    "rl.EnvState": "a state record",
    "rl.MountainCarContinuous": "an environment class (actions: rl.step_autoreset above)",
    "rl.SparseNavigate": "an environment class (actions: rl.step_autoreset above)",
    "rl.IMState": "a state record",
    "rl.IntrinsicMotivation": "a module class (rewards: the functions above)",
    "rl.RunState": "a state record",
    "rl.Trainer": "a training driver",
    "data.Split": "a record",
    "data.Dataset": "a record",
    "data.CupMeshes": "a record",
    "data.HyperspectralScene": "a record",
    "data.FairTabular": "a record",
    "data.RotatedDomains": "a record",
    "data.load_tfds": "reads a prepared dataset directory (missing / malformed: test_data)",
    "data.load_scene": "reads a file (missing / malformed: test_data)",
    "data.load_german": "reads a file (missing / malformed: test_data)",
    "data.load_compas": "reads a file (missing / malformed: test_data)",
    "data.load_adult": "reads a file (missing / malformed: test_data)",
    "models.MLP": "a Flax module",
    "models.VGG": "a Flax module",
    "models.SmallCNN": "a Flax module",
    "models.BasicBlock": "a Flax module",
    "models.ResNet": "a Flax module",
    "models.resnet56": "a module factory",
    "models.TrainState": "a state record",
    "models.train": "a training driver over a Dataset (its arrays: models.evaluate above; checkpoints: test_models)",
}


def _adam():
    import optax

    return optax.adam(1e-3)


def _masked_update(updates):
    tx = prune.masked_updates(prune.expand(GRAPH, MASKS, VGG_V)["params"])
    out, _ = tx.update(updates, tx.init(updates))
    return out


# ------------------------------------------------------------------------------------------------- mutations


def _first_leaf_path(tree):
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    for path, leaf in leaves:
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype") and np.asarray(leaf).size:
            return path
    raise AssertionError("no array leaf")


def _replace_first_leaf(tree, fn):
    target = _first_leaf_path(tree)
    return jax.tree_util.tree_map_with_path(lambda p, v: fn(v) if p == target else v, tree)


def _mutate_array(a, kind):
    a_np = np.asarray(a)
    wrap = (lambda v: jnp.asarray(v)) if isinstance(a, jax.Array) else (lambda v: v)
    if kind == "n":
        v = a_np.astype(np.result_type(a_np.dtype, np.float32)).copy()
        v.flat[0] = np.nan
        return wrap(v)
    if kind == "e":
        return wrap(a_np[:0])
    if kind == "r":
        return wrap(a_np[None])
    if kind == "d":
        if a_np.dtype.kind == "f":
            return wrap(a_np.astype(np.complex64))
        return wrap(a_np.astype(np.float32) + 0.5)  # labels, indices, masks, counts given as fractions
    raise AssertionError(kind)


def mutate(value, kind):
    if isinstance(value, interval.Interval):
        if kind == "n":
            return interval.Interval(_mutate_array(value.lo, "n"), value.hi)
        return interval.Interval(_mutate_array(value.lo, kind), _mutate_array(value.hi, kind))
    if isinstance(value, tuple) and all(hasattr(v, "shape") for v in value):  # a (lo, hi) box
        return tuple(_mutate_array(v, kind) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"n": float("nan"), "d": complex(value, 1.0)}[kind]
    if isinstance(value, (dict, list)) or (hasattr(value, "keys") and not hasattr(value, "shape")):
        return _replace_first_leaf(value, lambda v: _mutate_array(v, kind))
    return _mutate_array(value, kind)


def _has_nan(out) -> bool:
    for leaf in jax.tree.leaves(out, is_leaf=lambda v: isinstance(v, interval.Interval)):
        if isinstance(leaf, interval.Interval):
            if np.isnan(np.asarray(leaf.lo)).any() or np.isnan(np.asarray(leaf.hi)).any():
                return True
            continue
        try:
            v = np.asarray(leaf)
        except Exception:  # noqa: BLE001 -- non-array leaves (strings, objects) hold no NaN
            continue
        if v.dtype.kind in "fc" and np.isnan(v).any():
            return True
    return False


KINDS = {"n": "NaN", "e": "empty", "r": "wrong rank", "d": "wrong dtype"}
PARAMS = [
    pytest.param(c, arg, k, id=f"{c.fn}-{arg}-{KINDS[k]}") for c in CASES for arg, ks in c.bad.items() for k in ks
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.fn) for c in CASES])
def test_good_arguments_work(case):
    """The table's own set-up: each function runs on its good arguments (so an error below is the bad input's)."""
    case.call(dict(case.args))


def _names_argument(msg: str, case: Case, arg: str) -> bool:
    words = [arg] + list(case.names.get(arg, []))
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(w)}(?![A-Za-z0-9_])", msg) for w in words)


@pytest.mark.parametrize("case, arg, kind", PARAMS)
def test_bad_input_gives_a_clear_error_or_nan(case, arg, kind):
    args = dict(case.args)
    args[arg] = mutate(args[arg], kind)
    try:
        out = case.call(args)
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert _names_argument(msg, case, arg), (
            f"{case.fn}: the error for {KINDS[kind]} `{arg}` does not name it: {msg}"
        )
        assert "Traceback" not in msg and len(msg) < 600, msg
        return
    except Exception as e:  # noqa: BLE001 -- exactly what the rule forbids
        pytest.fail(f"{case.fn}: {KINDS[kind]} `{arg}` raised {type(e).__name__} (not a clear error): {e}"[:800])
    if kind == "n":
        assert _has_nan(out), f"{case.fn}: NaN in `{arg}` gave a result without NaN: {out!r}"[:800]
    else:
        pytest.fail(f"{case.fn}: {KINDS[kind]} `{arg}` was accepted: {out!r}"[:800])


def _public(module: str):
    """``module.name`` for each public function / class; a name re-exported from an earlier module of ``MODULES``
    (``evolution.moo.hypervolume`` is ``evolution.hypervolume``) is listed once, under the earlier module."""
    earlier = set()
    for m in MODULES[: MODULES.index(module)]:
        mod = importlib.import_module(f"jaxkit.{m}")
        earlier |= {id(getattr(mod, n)) for n in getattr(mod, "__all__", [])}
    mod = importlib.import_module(f"jaxkit.{module}")
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and id(obj) not in earlier:
            yield f"{module}.{name}"


def test_every_public_function_is_covered():
    covered = {c.fn for c in CASES}
    public = {n for m in MODULES for n in _public(m)}
    missing = sorted(public - covered - set(NO_ARRAY_INPUT))
    assert not missing, f"public functions with no bad-input case (add a Case or a NO_ARRAY_INPUT reason): {missing}"
    stale = sorted((covered | set(NO_ARRAY_INPUT)) - public)
    assert not stale, f"table rows for names that are not public: {stale}"


def coverage_report() -> dict:
    """Per module: public names, those with bad-input cases, those without array input."""
    out = {}
    for m in MODULES:
        names = list(_public(m))
        out[m] = {
            "public": len(names),
            "cases": sum(n in {c.fn for c in CASES} for n in names),
            "no_array_input": sum(n in NO_ARRAY_INPUT for n in names),
        }
    return out


if __name__ == "__main__":  # python tests/test_bad_input.py: the coverage table for the closing note
    for m, r in coverage_report().items():
        print(f"{m:12s} public {r['public']:3d}  with cases {r['cases']:3d}  no array input {r['no_array_input']:3d}")
    print("cases:", len(CASES), " parametrised bad inputs:", len(PARAMS))


# ------------------------------------------------------------------- issue 35's silently accepted inputs
def _uniform3(k):
    return jax.random.uniform(k, (3,))


def _ask(strategy, params):
    state = strategy.init(KEY)
    return strategy.ask(KEY, state, params)


ISSUE_35 = [  # (what, call, the argument the error must name): each was accepted silently before
    (
        "PM with a gene outside [lo, hi] (was NaN)",
        lambda: evolution.polynomial_mutation(KEY, jnp.array([[1.5, 0.2]]), lo=0.0, hi=1.0),
        "population",
    ),
    ("PM with lo > hi", lambda: evolution.polynomial_mutation(KEY, POP, lo=1.0, hi=0.0), "lo"),
    ("SBX with lo > hi", lambda: evolution.sbx_crossover(KEY, POP, POP_B, lo=np.ones(3), hi=np.zeros(3)), "lo"),
    ("hypervolume with a NaN reference point", lambda: evolution.hypervolume(OBJ, [np.nan, 1.5]), "ref_point"),
    (
        "generalized entropy index of [nan, 1, 2] (was 0.0)",
        lambda: fairness.generalized_entropy_index(jnp.array([np.nan, 1.0, 2.0])),
        "b",
    ),
    ("generalized entropy index of nothing (was 0.0)", lambda: fairness.generalized_entropy_index(jnp.zeros(0)), "b"),
    (
        "generalized entropy index of negative benefits",
        lambda: fairness.generalized_entropy_index(jnp.array([-1.0, 1.0, 2.0])),
        "b",
    ),
    (
        "fit_temperature on NaN logits (was ~1000)",
        lambda: calibration.fit_temperature(LOGITS.at[0, 0].set(jnp.nan), Y6),
        "logits",
    ),
    (
        "fit_temperature on empty logits (was ~1000)",
        lambda: calibration.fit_temperature(jnp.zeros((0, 3)), jnp.zeros(0, int)),
        "logits",
    ),
    (
        "calibration.ece on empty input (was a numpy reduction error)",
        lambda: calibration.ece(jnp.zeros((0, 3)), jnp.zeros(0, int)),
        "probs",
    ),
    (
        "GA.ask with crossover_rate=1.5 (only init checked)",
        lambda: _ask(evolution.GA(6, _uniform3), evolution.GAParams(crossover_rate=1.5)),
        "crossover_rate",
    ),
    (
        "DE.ask with crossover_rate=1.5",
        lambda: _ask(evolution.DE(6, _uniform3), evolution.DEParams(crossover_rate=1.5)),
        "crossover_rate",
    ),
    (
        "NSGA2.ask with mutation_rate=2",
        lambda: _ask(evolution.NSGA2(4, 2, _uniform3), evolution.NSGA2Params(mutation_rate=2.0)),
        "mutation_rate",
    ),
    (
        "LocalNorm(2) with group=5 (used another group's affine)",
        lambda: normalize.LocalNorm(2).apply(LN_V, LN_X, group=5),
        "group",
    ),
    (
        "rl.reliability.cvar([1, nan, 3], .5) (ignored the NaN)",
        lambda: rl.reliability.cvar(jnp.array([1.0, np.nan, 3.0]), 0.5),
        "x",
    ),
    (
        "warmup_cosine_sparsity at step -5 (was -0.5)",
        lambda: schedules.warmup_cosine_sparsity(0.5, 100, 10)(-5),
        "step",
    ),
    ("gmp_sparsity at a NaN step", lambda: schedules.gmp_sparsity(0.9, 10, 100)(np.nan), "step"),
]


@pytest.mark.parametrize("what, call, arg", [pytest.param(*c, id=c[0]) for c in ISSUE_35])
def test_issue_35_inputs_are_clear_errors(what, call, arg):
    with pytest.raises((ValueError, TypeError)) as e:
        call()
    assert re.search(rf"(?<![A-Za-z0-9_]){re.escape(arg)}(?![A-Za-z0-9_])", str(e.value)), (what, str(e.value))


ISSUE_35_TRACED = [  # the same inputs inside jit: NaN out, never a plausible number
    ("LocalNorm group 5", lambda g: normalize.LocalNorm(2).apply(LN_V, LN_X, group=g), 5),
    ("schedule at step -5", lambda t: schedules.warmup_cosine_sparsity(0.5, 100, 10)(t), -5.0),
    ("cvar with a NaN", lambda x: rl.reliability.cvar(x, 0.5), jnp.array([1.0, np.nan, 3.0])),
    ("generalized entropy index with a NaN", fairness.generalized_entropy_index, jnp.array([np.nan, 1.0, 2.0])),
    ("generalized entropy index of negative benefits", fairness.generalized_entropy_index, jnp.array([-1.0, 1.0, 2.0])),
]


@pytest.mark.parametrize("what, fn, arg", [pytest.param(*c, id=c[0]) for c in ISSUE_35_TRACED])
def test_issue_35_inputs_traced_give_nan(what, fn, arg):
    assert np.isnan(np.asarray(jax.jit(fn)(arg))).any(), what
