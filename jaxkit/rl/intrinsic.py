"""Intrinsic motivation with reward gating (Pecháč & Farkaš, ICANN 2021), usable with any agent.

A forward model ``Pi(s, a) -> s'_hat`` and a meta-critic ``MetaPi(s, a) -> e_hat``:

* prediction error ``e = (1/n) ||s' - s'_hat||^2`` (``n`` = observation size);
  prediction-error reward ``r_fm = e`` (:func:`prediction_error_reward`);
* predictive surprise ``r_mc = e/e_hat + e_hat/e - 2`` when ``|e - e_hat| > sigma``,
  else 0 (:func:`surprise_reward`);
* the gate ``r_i = max(eps_fm tanh(r_fm), eps_mc tanh(r_mc))`` (:func:`gate`).

Both modules learn from replay batches (each its own batch): the forward model
on ``(1/n) ||s' - s'_hat||^2`` (Adam 1e-4), the meta-critic on
``(e - e_hat)^2`` with ``e`` from the current forward model held fixed (Adam 2e-4).

The four agents of the paper differ only in the intrinsic reward added to the
external one (:data:`AGENTS`, :func:`agent_reward`): none (baseline),
``eps_fm tanh(r_fm)`` (FM), ``eps_mc tanh(r_mc)`` (MC) and the gate (gated MC).
Squashing the single-module rewards with the same ``eps tanh`` as the gate is
our reading: it keeps the four agents' reward scales comparable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxkit import _checks as _c
from jaxkit._checks import is_concrete
from jaxkit.models import MLP

__all__ = [
    "AGENTS",
    "IMState",
    "IntrinsicMotivation",
    "agent_reward",
    "gate",
    "prediction_error",
    "prediction_error_reward",
    "surprise_reward",
]

AGENTS = ("baseline", "fm", "mc", "gated")


def _no_nan(name, x):
    _c.array(x, name, kind="r")
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x, np.float64))):
        raise ValueError(f"`{name}` contains NaN or inf values; a reward must be finite.")


def _positive(name, v):
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"`{name}` must be a finite number > 0, got {v}.")


def prediction_error(next_obs, predicted):
    """The forward model's prediction error ``e = (1/n) ||s' - s'_hat||^2`` over the last axis.

    Args:
      next_obs: ``[..., n]`` true next observations.
      predicted: ``[..., n]`` the forward model's predictions.

    Returns:
      ``[...]`` errors.

    Raises:
      ValueError: shapes that differ.

    References:
      Pecháč & Farkaš, ICANN 2021 (intrinsic motivation with reward gating; ``experiments/reward_gating.py``).

    Examples:
      >>> jaxkit.rl.prediction_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(2.5, dtype=float32)
    """
    next_obs = jnp.asarray(_c.array(next_obs, "next_obs", min_ndim=1, kind="r"))
    predicted = jnp.asarray(_c.array(predicted, "predicted", min_ndim=1, kind="r"))
    if next_obs.shape != predicted.shape:
        raise ValueError(f"`next_obs` {next_obs.shape} and `predicted` {predicted.shape} must have the same shape.")
    return jnp.mean((next_obs - predicted) ** 2, axis=-1)


def prediction_error_reward(error):
    """The prediction-error reward ``r_fm = e`` (the forward model's error is the reward).

    Args:
      error: prediction errors ``e``.

    Returns:
      ``r_fm``, of ``error``'s shape.

    References:
      Pecháč & Farkaš, ICANN 2021 (intrinsic motivation with reward gating; ``experiments/reward_gating.py``).

    Examples:
      >>> jaxkit.rl.prediction_error_reward(jnp.array(0.2))
      Array(0.2, dtype=float32)
    """
    _no_nan("error", error)
    return jnp.asarray(error, jnp.float32)


def surprise_reward(error, error_estimate, sigma: float, eps: float = 1e-12):
    """Predictive surprise ``e/e_hat + e_hat/e - 2`` where ``|e - e_hat| > sigma``, else 0.

    ``e`` and ``e_hat`` are clamped below at ``eps`` before the ratios (our
    choice: a meta-critic output can reach 0 or below). The value is ``>= 0``
    and 0 exactly when ``e = e_hat``.

    Args:
      error: prediction errors ``e``.
      error_estimate: the meta-critic's estimates ``e_hat``.
      sigma: the gap below which there is no surprise.
      eps: the clamp of ``e`` and ``e_hat``.

    Returns:
      ``r_mc >= 0``, of ``error``'s shape.

    References:
      Pecháč & Farkaš, ICANN 2021 (intrinsic motivation with reward gating; ``experiments/reward_gating.py``).

    Examples:
      >>> surprise = jaxkit.rl.surprise_reward
      >>> float(surprise(jnp.array(0.2), jnp.array(0.1), 0.05)), float(surprise(jnp.array(0.2), jnp.array(0.1), 0.5))
      (0.5, 0.0)
    """
    _positive("sigma", float(sigma))
    _no_nan("error", error)
    _no_nan("error_estimate", error_estimate)
    e = jnp.maximum(jnp.asarray(error, jnp.float32), eps)
    eh = jnp.maximum(jnp.asarray(error_estimate, jnp.float32), eps)
    s = e / eh + eh / e - 2.0
    return jnp.where(jnp.abs(jnp.asarray(error) - jnp.asarray(error_estimate)) > sigma, s, 0.0)


def gate(r_fm, r_mc, eps_fm: float = 1.0, eps_mc: float = 1.0):
    """The reward gate ``r_i = max(eps_fm tanh(r_fm), eps_mc tanh(r_mc))``, and which term won.

    ``surprise_wins`` is True where the surprise term is strictly larger (the
    statistic of the paper's Table 3; ties go to the prediction error).

    Args:
      r_fm: prediction-error rewards.
      r_mc: surprise rewards.
      eps_fm: the prediction-error term's scale.
      eps_mc: the surprise term's scale.

    Returns:
      ``(r_i, surprise_wins)``.

    References:
      Pecháč & Farkaš, ICANN 2021 (intrinsic motivation with reward gating; ``experiments/reward_gating.py``) (the gate;
      Table 3's statistic).

    Examples:
      >>> r, surprise_wins = jaxkit.rl.gate(jnp.array(0.2), jnp.array(0.5))
      >>> round(float(r), 4), bool(surprise_wins)
      (0.4621, True)
    """
    _positive("eps_fm", float(eps_fm))
    _positive("eps_mc", float(eps_mc))
    _no_nan("r_fm", r_fm)
    _no_nan("r_mc", r_mc)
    a = eps_fm * jnp.tanh(jnp.asarray(r_fm, jnp.float32))
    b = eps_mc * jnp.tanh(jnp.asarray(r_mc, jnp.float32))
    return jnp.maximum(a, b), b > a


def agent_reward(kind, r_fm, r_mc, eps_fm: float = 1.0, eps_mc: float = 1.0):
    """The intrinsic reward of agent ``kind`` (an index into :data:`AGENTS`, may be traced, or its name).

    ``baseline``: 0; ``fm``: ``eps_fm tanh(r_fm)``; ``mc``: ``eps_mc tanh(r_mc)``; ``gated``: :func:`gate`.

    Args:
      kind: an agent name or index.
      r_fm: prediction-error rewards.
      r_mc: surprise rewards.
      eps_fm: the prediction-error term's scale.
      eps_mc: the surprise term's scale.

    Returns:
      The intrinsic rewards.

    Raises:
      ValueError: an unknown agent name.

    References:
      Pecháč & Farkaš, ICANN 2021 (intrinsic motivation with reward gating; ``experiments/reward_gating.py``) (the four
      agents).

    Examples:
      >>> [round(float(jaxkit.rl.agent_reward(k, jnp.array(0.2), jnp.array(0.5))), 4) for k in jaxkit.rl.AGENTS]
      [0.0, 0.1974, 0.4621, 0.4621]
    """
    if isinstance(kind, str):
        if kind not in AGENTS:
            raise ValueError(f"`kind` must be one of {AGENTS}, got {kind!r}.")
        kind = AGENTS.index(kind)
    else:
        _c.array(kind, "kind", kind="i")
    gate(r_fm, r_mc, eps_fm, eps_mc)  # checks eps and NaN rewards
    a = eps_fm * jnp.tanh(jnp.asarray(r_fm, jnp.float32))
    b = eps_mc * jnp.tanh(jnp.asarray(r_mc, jnp.float32))
    options = jnp.stack([jnp.zeros_like(a), a, b, jnp.maximum(a, b)])  # the gate's value, from the same terms
    return jnp.take(options, jnp.asarray(kind, jnp.int32), axis=0)


@struct.dataclass
class IMState:
    forward: Any
    meta: Any
    forward_opt: optax.OptState
    meta_opt: optax.OptState


@dataclasses.dataclass(frozen=True)
class IntrinsicMotivation:
    """Forward model + meta-critic: static configuration; methods are pure functions of :class:`IMState`.

    ``sigma`` is the surprise threshold. The paper does not print its value;
    our default 0.01 reproduces its Table-3 pattern on MountainCar, where
    ``|e - e_hat|`` exceeds 0.01 on well under 1 % of early transitions and
    on almost none later (a threshold near the typical ``|e - e_hat|``, ~1e-4,
    lets surprise win most of the time instead). ``eps_fm = eps_mc = 1`` as in
    the paper (0.01 in its sparse lidar task). ``hidden`` (two hidden layers)
    is our choice.
    """

    obs_dim: int
    act_dim: int
    sigma: float = 0.01
    eps_fm: float = 1.0
    eps_mc: float = 1.0
    forward_lr: float = 1e-4
    meta_lr: float = 2e-4
    hidden: Sequence[int] = (64, 64)

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if int(self.obs_dim) < 1 or int(self.act_dim) < 1:
            raise ValueError(f"`obs_dim` and `act_dim` must be >= 1, got {self.obs_dim} and {self.act_dim}.")
        for name in ("sigma", "eps_fm", "eps_mc", "forward_lr", "meta_lr"):
            _positive(name, float(getattr(self, name)))

    @property
    def forward_net(self):
        return MLP(tuple(self.hidden) + (self.obs_dim,))

    @property
    def meta_net(self):
        return MLP(tuple(self.hidden) + (1,))

    def init(self, key) -> IMState:
        kf, km = jax.random.split(key)
        x = jnp.zeros((1, self.obs_dim + self.act_dim))
        fwd, meta = self.forward_net.init(kf, x), self.meta_net.init(km, x)
        return IMState(fwd, meta, optax.adam(self.forward_lr).init(fwd), optax.adam(self.meta_lr).init(meta))

    def _inputs(self, obs, action):
        obs, action = jnp.asarray(obs, jnp.float32), jnp.asarray(action, jnp.float32)
        if obs.shape[-1:] != (self.obs_dim,) or action.shape[-1:] != (self.act_dim,):
            raise ValueError(
                f"`obs` and `action` must end in sizes {self.obs_dim} and {self.act_dim}, "
                f"got shapes {obs.shape} and {action.shape}."
            )
        if obs.shape[:-1] != action.shape[:-1]:
            raise ValueError(f"`obs` {obs.shape} and `action` {action.shape} must share their batch shape.")
        return jnp.concatenate([obs, action], axis=-1).reshape((-1, self.obs_dim + self.act_dim)), obs.shape[:-1]

    def predict(self, state: IMState, obs, action):
        """``(s'_hat, e_hat)`` for ``obs (..., obs_dim)`` and ``action (..., act_dim)``."""
        x, batch = self._inputs(obs, action)
        s_hat = cast(jax.Array, self.forward_net.apply(state.forward, x)).reshape(batch + (self.obs_dim,))
        e_hat = cast(jax.Array, self.meta_net.apply(state.meta, x))[:, 0].reshape(batch)
        return s_hat, e_hat

    def rewards(self, state: IMState, obs, action, next_obs) -> dict:
        """All the signals of the paper for a transition (or batch): ``error``, ``error_estimate``,
        ``r_fm``, ``r_mc``, ``r_gate`` and ``surprise_wins``."""
        s_hat, e_hat = self.predict(state, obs, action)
        e = prediction_error(jnp.asarray(next_obs, jnp.float32), s_hat)
        r_fm = prediction_error_reward(e)
        r_mc = surprise_reward(e, e_hat, self.sigma)
        r_gate, wins = gate(r_fm, r_mc, self.eps_fm, self.eps_mc)
        return {
            "error": e,
            "error_estimate": e_hat,
            "r_fm": r_fm,
            "r_mc": r_mc,
            "r_gate": r_gate,
            "surprise_wins": wins,
        }

    def agent_reward(self, state: IMState, kind, obs, action, next_obs):
        """Intrinsic reward of agent ``kind`` (see :func:`agent_reward`) for a transition or batch."""
        r = self.rewards(state, obs, action, next_obs)
        return agent_reward(kind, r["r_fm"], r["r_mc"], self.eps_fm, self.eps_mc)

    def update(self, state: IMState, forward_batch, meta_batch) -> tuple[IMState, dict]:
        """One Adam step of the forward model on ``forward_batch`` and of the meta-critic on ``meta_batch``
        (dicts with obs, action, next_obs). The meta-critic's target ``e`` uses the updated forward model."""

        def fm_loss(p):
            x, _ = self._inputs(forward_batch["obs"], forward_batch["action"])
            return jnp.mean(prediction_error(forward_batch["next_obs"], self.forward_net.apply(p, x)))

        f_loss, f_grad = jax.value_and_grad(fm_loss)(state.forward)
        f_upd, f_opt = optax.adam(self.forward_lr).update(f_grad, state.forward_opt, state.forward)
        fwd = optax.apply_updates(state.forward, f_upd)

        x, _ = self._inputs(meta_batch["obs"], meta_batch["action"])
        target = jax.lax.stop_gradient(
            prediction_error(meta_batch["next_obs"], cast(jax.Array, self.forward_net.apply(cast(Any, fwd), x)))
        )

        def mc_loss(p):
            return jnp.mean((cast(jax.Array, self.meta_net.apply(p, x))[:, 0] - target) ** 2)

        m_loss, m_grad = jax.value_and_grad(mc_loss)(state.meta)
        m_upd, m_opt = optax.adam(self.meta_lr).update(m_grad, state.meta_opt, state.meta)
        meta = optax.apply_updates(state.meta, m_upd)
        return IMState(fwd, meta, f_opt, m_opt), {"forward_loss": f_loss, "meta_loss": m_loss}
