"""DDPG (Lillicrap et al. 2016) as pure ``init / act / update`` functions over Flax params.

Actor ``mu(s) = max_action * tanh(MLP(s))`` and critic ``Q(s, a) = MLP([s, a])``
are three-layer MLPs (two hidden layers, ReLU; :class:`jaxkit.models.MLP`),
each with a target copy updated softly, ``theta' <- tau theta + (1 - tau) theta'``.
Critic: Adam on ``mean (Q(s, a) - y)^2`` with
``y = r + gamma (1 - terminal) Q'(s', mu'(s'))``; actor: Adam ascending
``mean Q(s, mu(s))``. The output layers start in ``U(-3e-3, 3e-3)`` as in the
DDPG paper. Exploration is the caller's: :meth:`DDPG.act` adds Gaussian
noise of a given standard deviation (e.g. a :mod:`jaxkit.schedules` value).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxkit.models import MLP

__all__ = ["DDPG", "DDPGState", "soft_update"]


@struct.dataclass
class DDPGState:
    actor: Any
    critic: Any
    target_actor: Any
    target_critic: Any
    actor_opt: optax.OptState
    critic_opt: optax.OptState


def soft_update(target, online, tau):
    """Polyak averaging of target networks: ``tau * online + (1 - tau) * target`` leaf by leaf.

    Args:
      target: the target network's params.
      online: the online network's params (same structure).
      tau: the update rate in ``[0, 1]``.

    Returns:
      The new target params.

    References:
      Lillicrap et al., "Continuous control with deep reinforcement learning", ICLR 2016, Sec. 3 (soft target updates).

    Examples:
      >>> jaxkit.rl.ddpg.soft_update({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, 0.1)
      {'w': Array([0.1, 0.1], dtype=float32)}
    """
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def _small_output(params, key, scale=3e-3):
    """Re-draw the last Dense layer in ``U(-scale, scale)`` (DDPG's output-layer init)."""
    last = sorted(params["params"], key=lambda n: int(n.split("_")[-1]))[-1]
    k1, k2 = jax.random.split(key)
    layer = params["params"][last]
    new = {
        "kernel": jax.random.uniform(k1, layer["kernel"].shape, jnp.float32, -scale, scale),
        "bias": jax.random.uniform(k2, layer["bias"].shape, jnp.float32, -scale, scale),
    }
    return {"params": {**params["params"], last: new}}


@dataclasses.dataclass(frozen=True)
class DDPG:
    """Static configuration of a DDPG agent; methods are pure functions of :class:`DDPGState`.

    Defaults follow Pecháč & Farkaš (2021): Adam 1e-4 (actor) and 2e-4
    (critic), ``gamma = 0.99``. ``hidden`` and ``tau`` are our choices
    (the paper does not print them).
    """

    obs_dim: int
    act_dim: int
    hidden: Sequence[int] = (64, 64)
    actor_lr: float = 1e-4
    critic_lr: float = 2e-4
    gamma: float = 0.99
    tau: float = 5e-3
    max_action: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if int(self.obs_dim) < 1 or int(self.act_dim) < 1:
            raise ValueError(f"`obs_dim` and `act_dim` must be >= 1, got {self.obs_dim} and {self.act_dim}.")
        for name in ("actor_lr", "critic_lr", "max_action"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"`{name}` must be > 0, got {getattr(self, name)}.")
        if not 0 <= float(self.gamma) <= 1 or not 0 < float(self.tau) <= 1:
            raise ValueError(f"`gamma` must be in [0, 1] and `tau` in (0, 1], got {self.gamma} and {self.tau}.")

    @property
    def actor_net(self):
        return MLP(tuple(self.hidden) + (self.act_dim,))

    @property
    def critic_net(self):
        return MLP(tuple(self.hidden) + (1,))

    @property
    def actor_tx(self):
        return optax.adam(self.actor_lr)

    @property
    def critic_tx(self):
        return optax.adam(self.critic_lr)

    def init(self, key) -> DDPGState:
        ka, kc, ka2, kc2 = jax.random.split(key, 4)
        actor = _small_output(self.actor_net.init(ka, jnp.zeros((1, self.obs_dim))), ka2)
        critic = _small_output(self.critic_net.init(kc, jnp.zeros((1, self.obs_dim + self.act_dim))), kc2)
        return DDPGState(actor, critic, actor, critic, self.actor_tx.init(actor), self.critic_tx.init(critic))

    def _check_obs(self, obs):
        obs = jnp.asarray(obs, jnp.float32)
        if obs.ndim < 1 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"`obs` must end in the observation size {self.obs_dim}, got shape {obs.shape}.")
        return obs

    def policy(self, actor, obs):
        """Deterministic action(s) ``max_action * tanh(MLP(obs))`` for ``obs`` of shape ``(..., obs_dim)``."""
        obs = self._check_obs(obs)
        flat = obs.reshape((-1, self.obs_dim))
        a = self.max_action * jnp.tanh(cast(jax.Array, self.actor_net.apply(actor, flat)))
        return a.reshape(obs.shape[:-1] + (self.act_dim,))

    def q_value(self, critic, obs, action):
        """``Q(s, a)`` for batches ``(B, obs_dim)`` and ``(B, act_dim)``; shape ``(B,)``."""
        return cast(jax.Array, self.critic_net.apply(critic, jnp.concatenate([obs, action], axis=-1)))[:, 0]

    def act(self, state: DDPGState, obs, key=None, noise_std=0.0):
        """The policy's action plus ``N(0, noise_std^2)`` noise (when ``key`` is given), clipped to the bounds."""
        a = self.policy(state.actor, obs)
        if key is not None:
            a = a + noise_std * jax.random.normal(key, a.shape)
        return jnp.clip(a, -self.max_action, self.max_action)

    def update(self, state: DDPGState, batch) -> tuple[DDPGState, dict]:
        """One critic and one actor Adam step on ``batch`` (dict: obs, action, reward, next_obs, terminal)."""
        obs, act, rew = batch["obs"], batch["action"], batch["reward"]
        nxt, term = batch["next_obs"], batch["terminal"].astype(jnp.float32)
        target_q = self.q_value(state.target_critic, nxt, self.policy(state.target_actor, nxt))
        y = jax.lax.stop_gradient(rew + self.gamma * (1.0 - term) * target_q)

        def critic_loss(c):
            return jnp.mean((self.q_value(c, obs, act) - y) ** 2)

        c_loss, c_grad = jax.value_and_grad(critic_loss)(state.critic)
        c_upd, critic_opt = self.critic_tx.update(c_grad, state.critic_opt, state.critic)
        critic = optax.apply_updates(state.critic, c_upd)

        def actor_loss(a):
            return -jnp.mean(self.q_value(critic, obs, self.policy(a, obs)))

        a_loss, a_grad = jax.value_and_grad(actor_loss)(state.actor)
        a_upd, actor_opt = self.actor_tx.update(a_grad, state.actor_opt, state.actor)
        actor = optax.apply_updates(state.actor, a_upd)
        new = DDPGState(
            actor,
            critic,
            soft_update(state.target_actor, actor, self.tau),
            soft_update(state.target_critic, critic, self.tau),
            actor_opt,
            critic_opt,
        )
        return new, {"critic_loss": c_loss, "actor_loss": a_loss}
