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
import pytest

from jaxkit import (anomaly, calibration, explain, fairness, gan, gates, interval, lipschitz, losses, models, prune,
                    robust)

MODULES = ("interval", "lipschitz", "gan", "anomaly", "gates", "prune", "robust", "explain", "calibration",
           "fairness", "losses")

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
MLP = {"Dense_0": {"kernel": RNG.normal(size=(3, 4)), "bias": RNG.normal(size=4)},
       "Dense_1": {"kernel": RNG.normal(size=(4, 2)), "bias": RNG.normal(size=2)}}
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
    C("interval.box", lambda a: interval.box(a["lo"], a["hi"]), {"lo": "ned", "hi": "ned"},
      lo=np.zeros(3), hi=np.ones(3), why={"lo": "a box may have any shape", "hi": "a box may have any shape"}),
    C("interval.check", lambda a: interval.check(a["x"]), {"x": "nd"}, x=IV,
      why={"x": "any shape is a valid interval"}),
    C("interval.convert", lambda a: interval.convert(a["x"], jnp.float32), {"x": "nd"}, x=np.array([0.1, 2.0]),
      why={"x": "elementwise: any shape"}),
    C("interval.matmul", lambda a: interval.matmul(a["w"], a["x"]), {"w": "nerd", "x": "nerd"},
      w=np.ones((2, 3)), x=IV),
    C("interval.dense", lambda a: interval.dense(a["x"], a["kernel"], a["bias"]),
      {"x": "nerd", "kernel": "nerd", "bias": "nerd"}, x=IV, kernel=np.ones((3, 2)), bias=np.zeros(2)),
    C("interval.relu", lambda a: interval.relu(a["x"]), {"x": "nd"}, x=IV, why={"x": "elementwise: any shape"}),
    C("interval.monotone", lambda a: interval.monotone("tanh", a["x"]), {"x": "nd"}, x=IV,
      why={"x": "elementwise: any shape"}),
    C("interval.ibp", lambda a: interval.ibp(a["params"], a["x"]), {"params": "nerd", "x": "nerd"},
      params=MLP, x=IV),
    C("interval.mlp_layers", lambda a: interval.mlp_layers(a["params"]), {"params": "nerd"}, params=MLP),
    C("interval.contains", lambda a: interval.contains(a["outer"], a["x"]), {"outer": "nd"},
      outer=IV, x=np.full(3, 0.5), why={"x": "a NaN point is reported as not contained (False), by design"}),
    # --------------------------------------------------------------------------------------------- lipschitz
    C("lipschitz.lipschitz_constant", lambda a: lipschitz.lipschitz_constant(a["params"], a["box"], batch=4),
      {"params": "nerd", "box": "nerd"}, params=MLP, box=(np.zeros(3), np.ones(3))),
    C("lipschitz.naive_upper_bound", lambda a: lipschitz.naive_upper_bound(a["params"]), {"params": "nerd"},
      params=MLP),
    C("lipschitz.jacobian_norm", lambda a: lipschitz.jacobian_norm(a["params"], a["x"]),
      {"params": "nerd", "x": "nerd"}, params=MLP, x=np.full(3, 0.3)),
    C("lipschitz.to_net", lambda a: lipschitz.to_net(a["params"]), {"params": "nerd"}, params=MLP),
    # --------------------------------------------------------------------------------------------------- gan
    C("gan.gradient_penalty", lambda a: gan.gradient_penalty(Critic().apply, a["params"], a["real"], a["fake"], KEY),
      {"params": "n", "real": "nerd", "fake": "nerd"}, params=CRITIC_V, real=REAL, fake=FAKE),
    C("gan.critic_loss", lambda a: gan.critic_loss(Critic().apply, a["params"], a["real"], a["fake"], KEY),
      {"params": "n", "real": "nerd", "fake": "nerd"}, params=CRITIC_V, real=REAL, fake=FAKE),
    C("gan.generator_loss", lambda a: gan.generator_loss(Critic().apply, a["params"], a["fake"]),
      {"params": "n", "fake": "nerd"}, params=CRITIC_V, fake=FAKE),
    C("gan.interpolate", lambda a: gan.interpolate(KEY, a["real"], a["fake"]), {"real": "nerd", "fake": "nerd"},
      real=REAL, fake=FAKE),
    C("gan.init_state", lambda a: gan.init_state(KEY, Gen(), Critic(), 2, a["sample_x"], _adam(), _adam()),
      {"sample_x": "ed"}, sample_x=REAL[:1],
      why={"sample_x": "only its shape is used (NaN values are irrelevant to the initial parameters); its rank is "
                       "the critic's business"}),
    # ----------------------------------------------------------------------------------------------- anomaly
    C("anomaly.as_pixels", lambda a: anomaly.as_pixels(a["x"]), {"x": "nerd"}, names={"x": ["cube"]}, x=CUBE),
    C("anomaly.rx_fit", lambda a: anomaly.rx_fit(a["background"]), {"background": "ned"},
      background=CUBE.reshape(-1, 3), why={"background": "[N, B] pixels or an [H, W, B] cube"}),
    C("anomaly.rx_scores", lambda a: anomaly.rx_scores(a["x"], a["mu"], a["cov_inv"]),
      {"x": "nerd", "mu": "nerd", "cov_inv": "nerd"}, x=CUBE, mu=np.zeros(3), cov_inv=np.eye(3)),
    C("anomaly.global_rx", lambda a: anomaly.global_rx(a["cube"], a["background_mask"]),
      {"cube": "nerd", "background_mask": "erd"}, cube=CUBE, background_mask=np.ones((12, 12), bool),
      why={"background_mask": "boolean: no NaN"}),
    C("anomaly.local_rx", lambda a: anomaly.local_rx(a["cube"], 1, 3), {"cube": "nerd"}, cube=CUBE),
    C("anomaly.gmm_scores", lambda a: anomaly.gmm_scores(a["x"], a["background"], n_components=2),
      {"x": "nerd", "background": "ned"}, x=CUBE, background=CUBE.reshape(-1, 3),
      why={"background": "[N, B] pixels or an [H, W, B] cube"}),
    C("anomaly.discriminator_scores", lambda a: anomaly.discriminator_scores(Critic().apply, a["params"], a["x"]),
      {"params": "n", "x": "nerd"}, params=CRITIC_V, x=REAL),
    C("anomaly.recreation_cost",
      lambda a: anomaly.recreation_cost(KEY, Gen().apply, a["g_params"], a["x"], noise_dim=2, runs=2, iterations=3),
      {"g_params": "n", "x": "nerd"}, g_params=GEN_V, x=REAL),
    C("anomaly.anogan_scores",
      lambda a: anomaly.anogan_scores(KEY, Gen().apply, a["g_params"], lambda p, x: x, None, a["x"], noise_dim=2,
                                      runs=2, iterations=3),
      {"g_params": "n", "x": "nerd"}, g_params=GEN_V, x=REAL),
    C("anomaly.roc_curve", lambda a: anomaly.roc_curve(a["scores"], a["labels"]), {"scores": "ned", "labels": "ed"},
      scores=SCORES, labels=BIN_LABELS, why=FLAT),
    C("anomaly.auc", lambda a: anomaly.auc(a["scores"], a["labels"]), {"scores": "ned", "labels": "ed"},
      scores=SCORES, labels=BIN_LABELS, why=FLAT),
    C("anomaly.log_auc", lambda a: anomaly.log_auc(a["scores"], a["labels"]), {"scores": "ned", "labels": "ed"},
      scores=SCORES, labels=BIN_LABELS, why=FLAT),
    C("anomaly.lg_far", lambda a: anomaly.lg_far(a["scores"], a["labels"]), {"scores": "ned", "labels": "ed"},
      scores=SCORES, labels=BIN_LABELS, why=FLAT),
    C("anomaly.log_auc_chance", lambda a: anomaly.log_auc_chance(a["n_neg"]), {"n_neg": "nd"}, n_neg=100,
      why={"n_neg": "a count: no empty or higher-rank form"}),
    C("anomaly.partial_auc", lambda a: anomaly.partial_auc(a["scores"], a["labels"], a["max_fpr"]),
      {"scores": "ned", "labels": "ed", "max_fpr": "n"}, scores=SCORES, labels=BIN_LABELS, max_fpr=0.3, why=FLAT),
    C("anomaly.evaluate_targets", lambda a: anomaly.evaluate_targets(a["scores"], a["inner"], a["outer"]),
      {"scores": "nerd", "inner": "erd", "outer": "erd"}, scores=CUBE[..., 0],
      inner=np.zeros((1, 12, 12), bool) | (np.arange(144).reshape(1, 12, 12) == 30),
      outer=np.zeros((1, 12, 12), bool) | (np.arange(144).reshape(1, 12, 12) == 30)),
    # ------------------------------------------------------------------------------------------------- gates
    C("gates.sample_gates", lambda a: gates.sample_gates(a["gate_params"], KEY, 3), {"gate_params": "nerd"},
      gate_params=THETA),
    C("gates.deterministic_gates", lambda a: gates.deterministic_gates(a["gate_params"]), {"gate_params": "nerd"},
      gate_params=THETA),
    C("gates.kill", lambda a: gates.kill(a["gate_params"]), {"gate_params": "nerd"}, gate_params=THETA),
    C("gates.cost_loss", lambda a: gates.cost_loss(gates.cost_model(GRAPH), a["gates"], a["alpha"]),
      {"gates": "ned", "alpha": "n"}, gates=gates.deterministic_gates(THETA), alpha=0.5,
      why={"gates": "[C] or [B, C] per edge"}),
    C("gates.fold", lambda a: gates.fold(a["gate_params"]), {"gate_params": "nerd"}, gate_params=THETA),
    C("gates.open_fraction", lambda a: gates.open_fraction(a["gate_params"]), {"gate_params": "nerd"},
      gate_params=THETA),
    # ------------------------------------------------------------------------------------------------- prune
    C("prune.build_graph", lambda a: prune.build_graph(VGG, VGG_V, a["x"]), {"x": "r"}, x=VGG_X[:1],
      names={"x": ["args"]}, why={"x": "an example input: only the trace matters (batch size and values unused)"}),
    C("prune.count", lambda a: prune.count(GRAPH, a["masks"]), {"masks": "erd"}, masks=MASKS,
      why={"masks": "boolean"}),
    C("prune.channel_masks", lambda a: prune.channel_masks(a["scores"], 0.5), {"scores": "nerd"}, scores=CH_SCORES),
    C("prune.global_masks", lambda a: prune.global_masks(a["scores"], 0.5), {"scores": "ned"}, scores=CH_SCORES,
      why={"scores": "[C] or [P, C] (groups tied by a shortcut)"}),
    C("prune.expand", lambda a: prune.expand(GRAPH, a["masks"], VGG_V), {"masks": "erd"}, masks=MASKS,
      why={"masks": "boolean"}),
    C("prune.apply_masks", lambda a: prune.apply_masks(a["tree"], prune.expand(GRAPH, MASKS, VGG_V)),
      {}, tree=VGG_V, why={"tree": "masking removes entries: a NaN in a pruned entry goes with it (as in "
                                   "prune.remove); NaN in kept entries stays NaN"}),
    C("prune.magnitude_masks", lambda a: prune.magnitude_masks(a["tree"], 0.5), {"tree": "n"},
      tree={"Conv_0": {"kernel": VGG_V["params"]["Conv_0"]["kernel"]}},
      why={"tree": "a parameter tree (only leaves selected by `pattern` are ranked)"}),
    C("prune.masked_updates", lambda a: _masked_update(a["updates"]), {},
      updates=jax.tree.map(jnp.ones_like, VGG_V["params"]), why={"updates": "an optax transform's update tree"}),
    # (masked_updates zeroes frozen entries, NaN included, as apply_masks; kept entries keep their NaN)
    C("prune.remove", lambda a: prune.remove(GRAPH, a["masks"], VGG_V), {"masks": "erd"}, masks=MASKS,
      why={"masks": "boolean"}),
    C("prune.kept_counts", lambda a: prune.kept_counts(GRAPH, a["masks"]), {"masks": "erd"}, masks=MASKS,
      why={"masks": "boolean"}),
    C("prune.sparsity", lambda a: prune.sparsity(a["masks"]), {}, masks=MASKS,
      why={"masks": "any boolean tree; an empty leaf holds no channels"}),
    C("prune.collect_stats", lambda a: prune.collect_stats(VGG, VGG_V, a["xs"], a["ys"], GRAPH),
      {"xs": "nerd", "ys": "erd"}, xs=VGG_X[None], ys=jnp.array([[0, 1]])),
    C("prune.all_scores", lambda a: prune.all_scores(GRAPH, a["variables"], STATS), {"variables": "n"},
      variables=VGG_V, why={"variables": "a parameter tree"}),
    C("prune.scores", lambda a: prune.scores("l1", GRAPH, a["variables"]), {"variables": "n"}, variables=VGG_V,
      why={"variables": "a parameter tree"}),
    C("prune.minmax", lambda a: prune.minmax(a["s"]), {"s": "nerd"}, s=jnp.arange(4.0)),
    C("prune.geometric_median", lambda a: prune.geometric_median(a["points"]), {"points": "nerd"},
      points=jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32)),
    C("prune.rankdata", lambda a: prune.rankdata(a["x"]), {"x": "ned"}, x=jnp.array([3.0, 1.0, 2.0]),
      why={"x": "ranks along the last axis of any batch shape"}),
    C("prune.correlation_matrix", lambda a: prune.correlation_matrix(a["scores"]), {"scores": "nerd"},
      scores=jnp.asarray(RNG.normal(size=(3, 8)), jnp.float32)),
    C("prune.kmeans", lambda a: prune.kmeans(KEY, a["x"], 2), {"x": "erd"},
      x=jnp.asarray(RNG.normal(size=(8, 2)), jnp.float32),
      why={"x": "NaN rows are correlations of constant criteria (scipy's convention), read as 0 by design"}),
    C("prune.blend", lambda a: prune.blend(a["scores"], ["l1", "l2"], a["weights"]),
      {"scores": "nerd", "weights": "nerd"}, scores={"l1": CH_SCORES, "l2": CH_SCORES}, weights=jnp.array([0.5, 0.5])),
    # ------------------------------------------------------------------------------------------------ robust
    C("robust.project", lambda a: robust.project(a["delta"], 0.1), {"delta": "nd"}, delta=X_IMG,
      why={"delta": "any shape"}),
    C("robust.input_jacobians", lambda a: robust.input_jacobians(APPLY, CNN_V, a["x"]), {"x": "nerd"}, x=X_IMG),
    C("robust.jacobian_frobenius_penalty", lambda a: robust.jacobian_frobenius_penalty(APPLY, CNN_V, a["x"], KEY),
      {"x": "nerd"}, x=X_IMG),
    C("robust.jacobian_cosine_similarity", lambda a: robust.jacobian_cosine_similarity(APPLY, CNN_V, a["x"]),
      {"x": "nerd"}, x=X_IMG),
    C("robust.universal_perturbation",
      lambda a: robust.universal_perturbation(KEY, APPLY, CNN_V, (a["x"], a["y"]), 0.1, steps=2, batch_size=2),
      {"x": "nerd", "y": "erd"}, names={"x": ["data"], "y": ["data", "labels"]}, x=X_IMG, y=Y3),
    C("robust.universal_evasion_rate",
      lambda a: robust.universal_evasion_rate(APPLY, CNN_V, a["x"], a["y"], a["delta"]),
      {"x": "nerd", "y": "erd", "delta": "nd"}, names={"y": ["labels"]}, x=X_IMG, y=Y3, delta=X_IMG[0] * 0),
    C("robust.targeted_success_rate",
      lambda a: robust.targeted_success_rate(APPLY, CNN_V, a["x"], a["y"], a["delta"], 1),
      {"x": "nerd", "y": "erd", "delta": "nd"}, names={"y": ["labels"]}, x=X_IMG, y=Y3, delta=X_IMG[0] * 0),
    C("robust.multiplicative_gaussian_noise", lambda a: robust.multiplicative_gaussian_noise(KEY, a["x"], 0.1),
      {"x": "nd"}, x=X_IMG, why={"x": "elementwise: any shape"}),
    C("robust.multiplicative_bernoulli_noise", lambda a: robust.multiplicative_bernoulli_noise(KEY, a["x"], 0.1),
      {"x": "nd"}, x=X_IMG, why={"x": "elementwise: any shape"}),
    C("robust.softrmax_distances", lambda a: robust.softrmax_distances(a["z"]), {"z": "nd"}, names={"z": ["logits"]},
      z=LOGITS, why={"z": "rows of any batch shape"}),
    C("robust.softrmax_log_probs", lambda a: robust.softrmax_log_probs(a["z"]), {"z": "nd"}, names={"z": ["logits"]},
      z=LOGITS, why={"z": "rows of any batch shape"}),
    C("robust.softrmax", lambda a: robust.softrmax(a["z"]), {"z": "nd"}, names={"z": ["logits"]}, z=LOGITS,
      why={"z": "rows of any batch shape"}),
    C("robust.softrmax_cross_entropy", lambda a: robust.softrmax_cross_entropy(a["logits"], a["labels"]),
      {"logits": "nerd", "labels": "erd"}, logits=LOGITS, labels=Y6),
    C("robust.margin_loss", lambda a: robust.margin_loss(a["logits"], a["labels"]),
      {"logits": "nerd", "labels": "erd"}, logits=LOGITS, labels=Y6),
    C("robust.project_batch", lambda a: robust.project_batch(a["delta"], 0.1), {"delta": "ned"}, delta=X_IMG,
      why={"delta": "a batch [B, ...] of any input rank"}),
    C("robust.fgsm", lambda a: robust.fgsm(APPLY, CNN_V, a["x"], a["y"], 0.1), {"x": "nerd", "y": "erd"},
      names={"y": ["labels"]}, x=X_IMG, y=Y3),
    C("robust.pgd", lambda a: robust.pgd(KEY, APPLY, CNN_V, a["x"], a["y"], 0.1, steps=2), {"x": "nerd", "y": "erd"},
      names={"y": ["labels"]}, x=X_IMG, y=Y3),
    C("robust.bim", lambda a: robust.bim(APPLY, CNN_V, a["x"], a["y"], 0.1, steps=2), {"x": "nerd", "y": "erd"},
      names={"y": ["labels"]}, x=X_IMG, y=Y3),
    C("robust.class_means", lambda a: robust.class_means(a["x"], a["y"], 3), {"x": "nerd", "y": "erd"},
      names={"y": ["labels"]}, x=X_IMG, y=Y3),
    C("robust.average_sample_attack",
      lambda a: robust.average_sample_attack(a["x"], a["y"], a["means"], 1, 0.1),
      {"x": "nerd", "y": "erd", "means": "nerd"}, names={"y": ["labels"]}, x=X_IMG, y=Y3,
      means=robust.class_means(X_IMG, Y3, 3)),
    C("robust.prediction_margin", lambda a: robust.prediction_margin(a["logits"], a["y"]),
      {"logits": "nerd", "y": "erd"}, names={"y": ["labels"]}, logits=LOGITS, y=Y6),
    C("robust.magnitude_margin_ratio", lambda a: robust.magnitude_margin_ratio(APPLY, CNN_V, a["x"], a["y"]),
      {"x": "nerd", "y": "erd"}, names={"y": ["labels"]}, x=X_IMG, y=Y3),
    C("robust.robust_accuracy", lambda a: robust.robust_accuracy(APPLY, CNN_V, a["x"], a["y"], [0.0, 0.1]),
      {"x": "nerd", "y": "erd"}, names={"y": ["labels"]}, x=X_IMG, y=Y3),
    # ----------------------------------------------------------------------------------------------- explain
    C("explain.cam", lambda a: explain.cam(APPLY, CNN_V, a["x"], a["kernel"]), {"x": "nerd", "kernel": "nerd"},
      x=X_IMG, kernel=jnp.ones((5, 3))),
    C("explain.features_and_logits", lambda a: explain.features_and_logits(APPLY, CNN_V, a["x"], "features"),
      {"x": "nerd"}, x=X_IMG),
    C("explain.gradcam", lambda a: explain.gradcam(APPLY, CNN_V, a["x"], a["target"]), {"x": "nerd", "target": "erd"},
      x=X_IMG, target=Y3),
    C("explain.gradcam_from_features",
      lambda a: explain.gradcam_from_features(lambda p, f: f.reshape(f.shape[0], -1)[:, :3], None, a["features"]),
      {"features": "nerd"}, features=jnp.asarray(RNG.uniform(size=(2, 3, 3, 4)), jnp.float32)),
    C("explain.guided_backprop", lambda a: explain.guided_backprop(APPLY, CNN_V, a["x"]), {"x": "nerd"}, x=X_IMG),
    C("explain.layer_names", lambda a: explain.layer_names(APPLY, CNN_V, a["x"]), {"x": "r"}, x=X_IMG,
      why={"x": "a shape example: its values and batch size are never used"}),
    C("explain.normalize_maps", lambda a: explain.normalize_maps(a["maps"]), {"maps": "ned"}, maps=MAPS,
      why={"maps": "a batch of maps of any rank"}),
    C("explain.resolve_layer", lambda a: explain.resolve_layer(APPLY, CNN_V, a["x"], None), {"x": "r"}, x=X_IMG,
      why={"x": "a shape example: its values and batch size are never used"}),
    C("explain.saliency", lambda a: explain.saliency(APPLY, CNN_V, a["x"]), {"x": "nerd"}, x=X_IMG),
    C("explain.local_spatial_entropy", lambda a: explain.local_spatial_entropy(a["maps"], 3, 4),
      {"maps": "nerd"}, maps=MAPS),
    C("explain.entropy_scores", lambda a: explain.entropy_scores(a["maps"], 3, 4), {"maps": "nerd"}, maps=MAPS),
    C("explain.feature_response", lambda a: explain.feature_response(APPLY, CNN_V, a["x"]), {"x": "nerd"}, x=X_IMG),
    C("explain.fit_threshold", lambda a: explain.fit_threshold(a["clean_scores"]), {"clean_scores": "nerd"},
      clean_scores=SCORES),
    C("explain.detect", lambda a: explain.detect(a["scores"], a["threshold"]), {"scores": "nd", "threshold": "n"},
      scores=SCORES, threshold=0.5, why={"scores": "elementwise: any shape"}),
    C("explain.detection_report", lambda a: explain.detection_report(a["clean_scores"], a["attacked_scores"]),
      {"clean_scores": "nerd", "attacked_scores": "nerd"}, clean_scores=SCORES, attacked_scores=SCORES + 1),
    # ------------------------------------------------------------------------------------------- calibration
    C("calibration.scores_and_events", lambda a: calibration.scores_and_events(a["probs"], a["labels"]),
      {"probs": "nerd", "labels": "erd"}, probs=PROBS, labels=LABELS),
    C("calibration.bin_weights", lambda a: calibration.bin_weights(a["s"], 5), {"s": "nerd"}, s=PROBS[:, 0]),
    C("calibration.ece", lambda a: calibration.ece(a["probs"], a["labels"]), {"probs": "nerd", "labels": "erd"},
      probs=PROBS, labels=LABELS),
    C("calibration.mce", lambda a: calibration.mce(a["probs"], a["labels"]), {"probs": "nerd", "labels": "erd"},
      probs=PROBS, labels=LABELS),
    C("calibration.kde_density", lambda a: calibration.kde_density(a["s"], grid_size=65), {"s": "nerd"},
      s=PROBS[:, 0]),
    C("calibration.ece_kde", lambda a: calibration.ece_kde(a["probs"], a["labels"], grid_size=65),
      {"probs": "nerd", "labels": "erd"}, probs=PROBS, labels=LABELS),
    C("calibration.ece_kde_triweight", lambda a: calibration.ece_kde_triweight(a["probs"], a["labels"], grid_size=65),
      {"probs": "nerd", "labels": "erd"}, probs=PROBS, labels=LABELS),
    C("calibration.local_calibration_error",
      lambda a: calibration.local_calibration_error(a["probs"], a["labels"], grid_size=65),
      {"probs": "nerd", "labels": "erd"}, probs=PROBS, labels=LABELS),
    C("calibration.reliability_curve",
      lambda a: calibration.reliability_curve(KEY, a["probs"], a["labels"], num_bootstrap=4, grid_size=33),
      {"probs": "nerd", "labels": "erd"}, probs=PROBS, labels=LABELS),
    C("calibration.reliability_diagram", lambda a: calibration.reliability_diagram(a["probs"], a["labels"], n_bins=4),
      {"probs": "nerd", "labels": "erd"}, probs=PROBS, labels=LABELS),
    C("calibration.fit_temperature", lambda a: calibration.fit_temperature(a["logits"], a["labels"]),
      {"logits": "nerd", "labels": "erd"}, logits=LOGITS, labels=Y6),
    C("calibration.silverman_bandwidth", lambda a: calibration.silverman_bandwidth(a["s"]), {"s": "nerd"},
      s=PROBS[:, 0]),
    # ---------------------------------------------------------------------------------------------- fairness
    C("fairness.cross_groups", lambda a: fairness.cross_groups(a["a"], a["b"]), {"a": "erd", "b": "erd"},
      names={"a": ["codes"], "b": ["codes"]}, a=GROUPS, b=YT),
    C("fairness.benefits", lambda a: fairness.benefits(a["y_true"], a["y_pred"]), {"y_true": "nerd", "y_pred": "nerd"},
      y_true=YT * 1.0, y_pred=YP * 1.0),
    C("fairness.generalized_entropy_index", lambda a: fairness.generalized_entropy_index(a["b"]), {"b": "nerd"},
      b=fairness.benefits(YT, YP)),
    C("fairness.ge_decomposition", lambda a: fairness.ge_decomposition(a["b"], a["groups"], 3),
      {"b": "nerd", "groups": "erd"}, b=fairness.benefits(YT, YP), groups=GROUPS),
    C("fairness.individual_unfairness",
      lambda a: fairness.individual_unfairness(a["y_true"], a["y_pred"], a["groups"], 3),
      {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"}, y_true=YT, y_pred=YP, groups=GROUPS),
    C("fairness.group_unfairness", lambda a: fairness.group_unfairness(a["y_true"], a["y_pred"], a["groups"], 3),
      {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"}, y_true=YT, y_pred=YP, groups=GROUPS),
    C("fairness.fairness_objectives", lambda a: fairness.fairness_objectives(a["y_true"], a["prob"], a["groups"], 3),
      {"y_true": "nerd", "prob": "nerd", "groups": "erd"}, y_true=YT, prob=PROB, groups=GROUPS),
    C("fairness.group_rates", lambda a: fairness.group_rates(a["y_true"], a["y_pred"], a["groups"], 3),
      {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"}, y_true=YT, y_pred=YP, groups=GROUPS),
    C("fairness.demographic_parity_difference",
      lambda a: fairness.demographic_parity_difference(a["y_true"], a["y_pred"], a["groups"], 3),
      {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"}, y_true=YT, y_pred=YP, groups=GROUPS),
    C("fairness.demographic_parity_ratio",
      lambda a: fairness.demographic_parity_ratio(a["y_true"], a["y_pred"], a["groups"], 3),
      {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"}, y_true=YT, y_pred=YP, groups=GROUPS),
    C("fairness.equalized_odds_difference",
      lambda a: fairness.equalized_odds_difference(a["y_true"], a["y_pred"], a["groups"], 3),
      {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"}, y_true=YT, y_pred=YP, groups=GROUPS),
    C("fairness.equalized_odds_ratio",
      lambda a: fairness.equalized_odds_ratio(a["y_true"], a["y_pred"], a["groups"], 3),
      {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"}, y_true=YT, y_pred=YP, groups=GROUPS),
    C("fairness.equal_opportunity_ratio",
      lambda a: fairness.equal_opportunity_ratio(a["y_true"], a["y_pred"], a["groups"], 3),
      {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"}, y_true=YT, y_pred=YP, groups=GROUPS),
    C("fairness.equal_opportunity_difference",
      lambda a: fairness.equal_opportunity_difference(a["y_true"], a["y_pred"], a["groups"], 3),
      {"y_true": "nerd", "y_pred": "nerd", "groups": "erd"}, y_true=YT, y_pred=YP, groups=GROUPS),
    C("fairness.predict_proba", lambda a: fairness.predict_proba(a["params"], a["x"]), {"params": "n", "x": "nerd"},
      params=fairness.init_mlp(KEY, 3, 4), x=FEATS),
    C("fairness.model_objectives", lambda a: fairness.model_objectives(a["params"], a["x"], a["y"], a["groups"], 3),
      {"params": "n", "x": "nerd", "y": "nerd", "groups": "erd"}, params=fairness.init_mlp(KEY, 3, 4), x=FEATS, y=YT,
      groups=GROUPS),
    C("fairness.member_key", lambda a: fairness.member_key(KEY, a["params"]), {},
      params=fairness.init_mlp(KEY, 3, 4), why={"params": "only the bits of two weights seed a key: NaN bits too"}),
    # ------------------------------------------------------------------------------------------------ losses
    C("losses.class_mean_pairwise_distance", lambda a: losses.class_mean_pairwise_distance(a["x"], a["labels"], 3),
      {"x": "nerd", "labels": "erd"}, x=FEATS, labels=GROUPS),
    C("losses.class_similarity_matrix", lambda a: losses.class_similarity_matrix(a["distances"]),
      {"distances": "nerd"}, distances=jnp.asarray(RNG.uniform(size=(3, 3)), jnp.float32)),
    C("losses.similarity_smooth_labels", lambda a: losses.similarity_smooth_labels(a["labels"], a["similarity"]),
      {"labels": "erd", "similarity": "nerd"}, labels=Y6, similarity=jnp.eye(3)),
    C("losses.uniform_smooth_labels", lambda a: losses.uniform_smooth_labels(a["labels"], 3), {"labels": "erd"},
      labels=Y6),
    C("losses.hir_loss", lambda a: losses.hir_loss(a["logits"], a["labels"]), {"logits": "nerd", "labels": "erd"},
      logits=LOGITS, labels=Y6),
    C("losses.pairwise_kl", lambda a: losses.pairwise_kl(a["logits"]), {"logits": "nerd"}, logits=LOGITS),
    C("losses.median_bandwidths", lambda a: losses.median_bandwidths(a["xs"], a["xt"]), {"xs": "nerd", "xt": "nerd"},
      xs=FEATS, xt=FEATS + 1),
    C("losses.mk_mmd", lambda a: losses.mk_mmd(a["xs"], a["xt"]), {"xs": "nerd", "xt": "nerd"}, xs=FEATS, xt=FEATS + 1),
    C("losses.class_balanced_weights", lambda a: losses.class_balanced_weights(a["counts"]), {"counts": "nerd"},
      counts=jnp.array([10.0, 3.0, 1.0])),
    C("losses.focal_loss", lambda a: losses.focal_loss(a["logits"], a["labels"]), {"logits": "nerd", "labels": "erd"},
      logits=LOGITS, labels=Y6),
    C("losses.class_balanced_focal_loss",
      lambda a: losses.class_balanced_focal_loss(a["logits"], a["labels"], a["counts"]),
      {"logits": "nerd", "labels": "erd", "counts": "nerd"}, logits=LOGITS, labels=Y6, counts=jnp.array([10.0, 3, 1])),
    C("losses.balanced_sum", lambda a: losses.balanced_sum(a["losses"], a["weights"]),
      {"losses": "nerd", "weights": "nerd"}, losses=jnp.array([1.0, 2.0]), weights=jnp.array([0.5, 0.5])),
]

# Public names that take no array input a user could get wrong in these ways, with the reason.
NO_ARRAY_INPUT = {
    "interval.Interval": "a plain pytree container; every function that takes one validates it (interval.check)",
    "lipschitz.Result": "a result record",
    "lipschitz.PaperNetwork": "a result record",
    "lipschitz.paper_network": "takes a network name (unknown names: test_lipschitz)",
    "gan.Critic": "a Flax module", "gan.Generator": "a Flax module", "gan.GanState": "a state record",
    "gan.Preset": "a configuration record",
    "gan.make_train_step": "a factory of a jitted step (its arrays are checked by the losses above)",
    "gan.thesis_lr": "a schedule factory over an iteration count",
    "anomaly.plot_semilog_roc": "plotting", "anomaly.plot_heatmap": "plotting",
    "gates.edges": "takes a graph", "gates.init_gates": "takes a graph", "gates.gated": "a model wrapper factory",
    "gates.CostModel": "a record", "gates.cost_model": "takes a graph", "gates.split_optimizer": "an optax factory",
    "gates.make_train_step": "a factory of a jitted step", "gates.latency_factors": "times callables",
    "gates.alpha_path": "a generator driving the caller's own training callables",
    "prune.Graph": "a record", "prune.Group": "a record", "prune.Layer": "a record", "prune.Member": "a record",
    "prune.Cost": "a record", "prune.MaskedUpdatesState": "an optax state", "prune.Stats": "a record",
    "prune.bn_layer": "takes a graph and one of its groups",
    "explain.Tap": "a Flax module", "explain.guided_relus": "a context manager",
    "fairness.init_mlp": "takes a key and sizes",
    "fairness.moea_fitness": "a factory of a fitness function (its arrays: fairness.model_objectives above)",
    "losses.RunningMeanBalancer": "an optax-style factory", "losses.BalancerState": "a state record",
}


def _adam():
    import optax  # noqa: PLC0415

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
PARAMS = [pytest.param(c, arg, k, id=f"{c.fn}-{arg}-{KINDS[k]}") for c in CASES for arg, ks in c.bad.items()
          for k in ks]


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
        assert _names_argument(msg, case, arg), \
            f"{case.fn}: the error for {KINDS[kind]} `{arg}` does not name it: {msg}"
        assert "Traceback" not in msg and len(msg) < 600, msg
        return
    except Exception as e:  # noqa: BLE001 -- exactly what the rule forbids
        pytest.fail(f"{case.fn}: {KINDS[kind]} `{arg}` raised {type(e).__name__} (not a clear error): {e}"[:800])
    if kind == "n":
        assert _has_nan(out), f"{case.fn}: NaN in `{arg}` gave a result without NaN: {out!r}"[:800]
    else:
        pytest.fail(f"{case.fn}: {KINDS[kind]} `{arg}` was accepted: {out!r}"[:800])


def _public(module: str):
    mod = importlib.import_module(f"jaxkit.{module}")
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{module}.{name}"


def test_every_public_function_is_covered():
    covered = {c.fn for c in CASES}
    missing = [n for m in MODULES for n in _public(m) if n not in covered and n not in NO_ARRAY_INPUT]
    assert not missing, f"public functions with no bad-input case (add a Case or a NO_ARRAY_INPUT reason): {missing}"
    stale = sorted((covered | set(NO_ARRAY_INPUT)) - {n for m in MODULES for n in _public(m)})
    assert not stale, f"table rows for names that are not public: {stale}"


def coverage_report() -> dict:
    """Per module: public names, those with bad-input cases, those without array input."""
    out = {}
    for m in MODULES:
        names = list(_public(m))
        out[m] = {"public": len(names), "cases": sum(n in {c.fn for c in CASES} for n in names),
                  "no_array_input": sum(n in NO_ARRAY_INPUT for n in names)}
    return out


if __name__ == "__main__":  # python tests/test_bad_input.py: the coverage table for the closing note
    for m, r in coverage_report().items():
        print(f"{m:12s} public {r['public']:3d}  with cases {r['cases']:3d}  no array input {r['no_array_input']:3d}")
    print("cases:", len(CASES), " parametrised bad inputs:", len(PARAMS))
