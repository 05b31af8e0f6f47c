"""The multi-objective fairness paper's learner (Zhang et al., ICANN 2021): one-hidden-layer networks,
Glorot initialisation, Adam partial training kept Lamarckian-style.

:func:`init_mlp`, :func:`partial_train`, :func:`predict_proba`, :func:`model_objectives` and
:func:`moea_fitness`, the fitness for :func:`jaxkit.evolution.step` with :class:`jaxkit.evolution.NSGA2`
(``experiments/fair_moea.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkit import _checks as _c
from jaxkit.fairness.metrics import fairness_objectives, ge_alpha
from jaxkit.models import MLP

__all__ = [
    "OBJECTIVES",
    "VARIANTS",
    "init_mlp",
    "member_key",
    "model_objectives",
    "moea_fitness",
    "partial_train",
    "predict_proba",
]


OBJECTIVES = ("error", "individual", "group")


VARIANTS = {
    "E": ("error",),
    "EI": ("error", "individual"),
    "EG": ("error", "group"),
    "EIG": ("error", "individual", "group"),
}


def init_mlp(key: jax.Array, num_features: int, hidden: int = 64) -> dict:
    """Parameters of a one-hidden-layer :class:`jaxkit.models.MLP` ``(hidden, 1)``.

    Glorot-uniform kernels, zero biases.

    Args:
      key: PRNG key.
      num_features: input size.
      hidden: hidden units.

    Returns:
      ``{"Dense_0": ..., "Dense_1": ...}`` params.

    Raises:
      ValueError: ``num_features`` or ``hidden`` not a positive integer.

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021 (the learner);
      Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks", AISTATS 2010.

    Examples:
      >>> params = jaxkit.fairness.init_mlp(jax.random.key(0), 3, hidden=8)
      >>> jax.tree.map(jnp.shape, params)
      {'Dense_0': {'bias': (8,), 'kernel': (3, 8)}, 'Dense_1': {'bias': (1,), 'kernel': (8, 1)}}
    """
    _c.positive_int(num_features, "num_features")
    _c.positive_int(hidden, "hidden")
    shapes = jax.eval_shape(lambda: MLP((int(hidden), 1)).init(jax.random.key(0), jnp.zeros((1, int(num_features)))))[
        "params"
    ]
    k0, k1 = jax.random.split(key)
    glorot = nn.initializers.glorot_uniform()
    return {
        "Dense_0": {"kernel": glorot(k0, shapes["Dense_0"]["kernel"].shape), "bias": jnp.zeros((int(hidden),))},
        "Dense_1": {"kernel": glorot(k1, shapes["Dense_1"]["kernel"].shape), "bias": jnp.zeros((1,))},
    }


def predict_proba(params: Any, x) -> jax.Array:
    """Probability of the favourable class, ``sigmoid(MLP(x))``, ``[N]``, from :func:`init_mlp`-shaped params.

    Args:
      params: :func:`init_mlp`-shaped params.
      x: ``[N, num_features]`` features.

    Returns:
      ``[N]`` probabilities.

    Raises:
      ValueError: features that are not a finite ``[N, num_features]`` matrix fitting ``params``.

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (32, 3))
      >>> y = (x[:, 0] > 0).astype(jnp.int32)
      >>> params = jaxkit.fairness.init_mlp(jax.random.key(0), 3, hidden=8)
      >>> jaxkit.fairness.predict_proba(params, x).shape
      (32,)
    """
    return jax.nn.sigmoid(_logit(params, _checked_features(params, x)))


def _checked_features(params: Any, x) -> jax.Array:
    """``x`` as a real, non-empty, NaN-free ``[N, features]`` batch that :func:`init_mlp`-shaped ``params`` take."""
    x = _c.array(x, "x", ndim=2, kind="r", nonempty=True)
    _c.finite(x, "x")
    _c.tree_finite(params, "params")
    n_in = params["Dense_0"]["kernel"].shape[0]
    if x.shape[1] != n_in:
        raise ValueError(f"`x` has {x.shape[1]} features but the network takes {n_in}.")
    return x


def _logit(params: Any, x) -> jax.Array:
    """The network's logit ``[N]`` (hidden width read off the parameters)."""
    hidden = params["Dense_0"]["kernel"].shape[1]
    return cast(jax.Array, MLP((hidden, 1)).apply({"params": params}, x))[:, 0]


@_c.key_first(0, 1)
def partial_train(
    key: jax.Array, params: Any, x, y, *, steps: int = 10, batch_size: int = 64, learning_rate: float = 0.01
) -> Any:
    """``steps`` Adam steps on the binary cross-entropy, minibatches drawn uniformly (fresh optimiser state).

    The paper's local search: every new model is trained a little before it
    is evaluated and keeps the trained weights. It gives no step count or batch
    size: both are parameters (our defaults: 10 steps of 64). Jitted (one compilation per shapes and settings).

    Args:
      key: PRNG key of the minibatches.
      params: :func:`init_mlp`-shaped params.
      x: ``[N, num_features]`` features.
      y: ``[N]`` 0/1 labels.
      steps: Adam steps.
      batch_size: minibatch size.
      learning_rate: Adam's learning rate.

    Returns:
      The trained params.

    Raises:
      ValueError: features or labels of the wrong shape, labels not 0/1, negative ``steps`` (0: no training),
        non-positive ``batch_size`` / ``learning_rate``.

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021 (partial
      training of each new model, kept Lamarckian-style).

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (32, 3))
      >>> y = (x[:, 0] > 0).astype(jnp.int32)
      >>> params = jaxkit.fairness.init_mlp(jax.random.key(0), 3, hidden=8)
      >>> trained = jaxkit.fairness.partial_train(jax.random.key(2), params, x, y, steps=50, batch_size=16,
      ...                                         learning_rate=0.05)
      >>> accuracy = lambda p: float(jnp.mean((jaxkit.fairness.predict_proba(p, x) > 0.5) == y))
      >>> accuracy(params) < accuracy(trained)
      True
    """
    x = _checked_features(params, x)
    y = _c.per_example(y, "y", n=x.shape[0], ref="x", values="binary")
    steps = _c.positive_int(steps, "steps", minimum=0)
    batch_size = _c.positive_int(batch_size, "batch_size")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"`learning_rate` must be a finite number > 0, got {learning_rate}.")
    return _partial_train(key, params, x, y, steps=steps, batch_size=batch_size, learning_rate=float(learning_rate))


@functools.partial(jax.jit, static_argnames=("steps", "batch_size", "learning_rate"))
def _partial_train(key, params, x, y, *, steps, batch_size, learning_rate):
    tx = optax.adam(learning_rate)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)

    def loss(p, xb, yb):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(_logit(p, xb), yb))

    def body(carry, k):
        p, s = carry
        idx = jax.random.randint(k, (int(batch_size),), 0, x.shape[0])
        g = jax.grad(loss)(p, x[idx], y[idx])
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(body, (params, tx.init(params)), jax.random.split(key, int(steps)))
    return params


def model_objectives(
    params: dict, x, y, groups, num_groups: int, *, alpha: float = 2.0, benefit: str = "label"
) -> jax.Array:
    """``[error, f_I, f_G]`` of one network on a split (see :func:`fairness_objectives`).

    Args:
      params: :func:`init_mlp`-shaped params.
      x: ``[N, num_features]`` features.
      y: ``[N]`` 0/1 labels.
      groups: ``[N]`` group codes.
      num_groups: the number of groups.
      alpha: the entropy index's ``a``.
      benefit: ``"label"`` or ``"score"``.

    Returns:
      ``[3]`` array.

    Raises:
      ValueError: as :func:`predict_proba` and :func:`fairness_objectives`.

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (32, 3))
      >>> y = (x[:, 0] > 0).astype(jnp.int32)
      >>> params = jaxkit.fairness.init_mlp(jax.random.key(0), 3, hidden=8)
      >>> jaxkit.fairness.model_objectives(params, x, y, jnp.arange(32) % 2, 2).shape
      (3,)
    """
    y = _c.per_example(y, "y", values="binary")
    return fairness_objectives(y, predict_proba(params, x), groups, num_groups, alpha=alpha, benefit=benefit)


def member_key(key: jax.Array, params: dict) -> jax.Array:
    """A key for one member's minibatches from ``key`` and two of the member's weights (exact bits, no reduction).

    Members of a vmapped population differ in their weights, so they draw different minibatches; the same
    member gets the same key vmapped or not.

    Args:
      key: the generation's PRNG key.
      params: the member's :func:`init_mlp`-shaped params.

    Returns:
      A PRNG key.

    References:
      Our construction for ``moea_fitness(shared_batches=False)``; Zhang et al., "Fairer Machine Learning Through
      Multi-objective Evolutionary Learning", ICANN 2021 is silent on minibatches.

    Examples:
      >>> params = jaxkit.fairness.init_mlp(jax.random.key(0), 3, hidden=8)
      >>> k = jaxkit.fairness.member_key(jax.random.key(1), params)
      >>> again = jaxkit.fairness.member_key(jax.random.key(1), params)
      >>> bool(jnp.all(jax.random.key_data(k) == jax.random.key_data(again)))
      True
    """
    w = params["Dense_0"]["kernel"]
    bits = jax.lax.bitcast_convert_type(jnp.stack([w[0, 0], w[-1, -1]]).astype(jnp.float32), jnp.uint32)
    return jax.random.fold_in(jax.random.fold_in(key, bits[0]), bits[1])


def moea_fitness(
    objectives: Sequence[str] = OBJECTIVES,
    *,
    num_groups: int,
    steps: int = 10,
    batch_size: int = 64,
    learning_rate: float = 0.01,
    alpha: float = 2.0,
    benefit: str = "label",
    shared_batches: bool = True,
):
    """The paper's Lamarckian fitness for :func:`jaxkit.evolution.step` with ``has_aux=True``.

    Returns ``fitness(params, key, (x_tr, y_tr), (x_val, y_val, g_val)) ->
    (objectives, trained params)``: :func:`partial_train` on the training
    split, then the chosen subset of ``("error", "individual", "group")`` on
    validation. ``shared_batches`` (our choice; the paper is silent): every
    member of a generation sees the same minibatches drawn from ``key`` --
    one data gather feeds the whole vmapped population, about 1.4x faster on
    CPU; ``False`` draws each member its own (:func:`member_key`).
    Build it once per configuration (the compiled program is cached per
    function object).

    Args:
      objectives: the minimised objectives, a subset of ``("error", "individual", "group")``.
      num_groups: the number of groups in the validation split.
      steps: :func:`partial_train` steps.
      batch_size: its minibatch size.
      learning_rate: its Adam learning rate.
      alpha: the entropy index's ``a``.
      benefit: ``"label"`` or ``"score"``.
      shared_batches: one set of minibatches for the whole generation.

    Returns:
      ``fitness(params, key, (x_tr, y_tr), (x_val, y_val, g_val)) -> (objectives, trained params)``.

    Raises:
      ValueError: an unknown objective or ``benefit``, negative ``steps``, non-positive ``batch_size`` /
        ``learning_rate`` / ``num_groups``.

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021 (three
      objectives, partial training, NSGA-II).

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (32, 3))
      >>> y = (x[:, 0] > 0).astype(jnp.int32)
      >>> params = jaxkit.fairness.init_mlp(jax.random.key(0), 3, hidden=8)
      >>> fitness = jaxkit.fairness.moea_fitness(num_groups=2, steps=5, batch_size=16)
      >>> groups = jnp.arange(32) % 2
      >>> objectives, trained = fitness(params, jax.random.key(3), (x, y), (x, y, groups))
      >>> objectives.shape
      (3,)
    """
    bad = [o for o in objectives if o not in OBJECTIVES]
    if bad or not objectives:
        raise ValueError(f"`objectives` must be a non-empty subset of {OBJECTIVES}, got {tuple(objectives)}.")
    ge_alpha(alpha)
    _c.positive_int(num_groups, "num_groups")
    _c.positive_int(steps, "steps", minimum=0)
    _c.positive_int(batch_size, "batch_size")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"`learning_rate` must be a finite number > 0, got {learning_rate}.")
    if benefit not in ("label", "score"):
        raise ValueError(f"`benefit` must be 'label' or 'score', got {benefit!r}.")
    cols = tuple(OBJECTIVES.index(o) for o in objectives)
    return functools.partial(
        _moea_fitness,
        cols=cols,
        steps=int(steps),
        batch_size=int(batch_size),
        learning_rate=float(learning_rate),
        alpha=float(alpha),
        benefit=benefit,
        num_groups=int(num_groups),
        shared=bool(shared_batches),
    )


def _moea_fitness(
    params, key, train, val, *, cols, steps, batch_size, learning_rate, alpha, benefit, num_groups, shared
):
    k = key if shared else member_key(key, params)
    trained = partial_train(
        k, params, train[0], train[1], steps=steps, batch_size=batch_size, learning_rate=learning_rate
    )
    objs = model_objectives(trained, val[0], val[1], val[2], num_groups, alpha=alpha, benefit=benefit)
    return objs[jnp.asarray(cols)], trained
