"""Pure-JAX continuous-control environments with gymnax's signatures: ``reset(key, params)`` /
``step(key, state, action, params)``.

* :class:`MountainCarContinuous` -- the classic ``MountainCarContinuous-v0``
  dynamics, reward and termination (Moore 1990; OpenAI Gym), with Gym's
  999-step time limit;
* :class:`SparseNavigate` -- our small sparse-reward task in the spirit of the
  paper's lidar navigation (AerisNavigate): a point robot in a square arena with
  eight lidar rays must find a goal in the far corner; reward 1 on arrival,
  0 otherwise.

An environment is a frozen (hashable) dataclass: pass it as a static argument
to ``jit``. As in gymnax, ``reset(key, params=None) -> (obs, state)`` and
``step(key, state, action, params=None)``; ``params`` are the physical
constants (``env.default_params``, the environment itself; ``dataclasses.replace(env, power=...)`` gives
others, and ``None`` means the default). Unlike gymnax, ``step`` returns
``(obs, state, reward, terminated, truncated)`` (Gymnasium's split of ``done``) and does not reset by itself:
``terminated`` is a true end (no bootstrapping), ``truncated`` the time limit (bootstrap), and
:func:`step_autoreset` resets finished episodes inside a ``lax.scan``. Both environments are deterministic given
the state: ``step``'s key is accepted for gymnax's signature and unused. The pre-gymnax call ``step(state, action)``
still works until the next release, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import jax
import jax.numpy as jnp
from flax import struct

from jaxkit import _checks as _c

__all__ = ["EnvState", "MountainCarContinuous", "SparseNavigate", "check_action", "step_autoreset"]


@struct.dataclass
class EnvState:
    """``physics``: the environment's continuous state vector; ``t``: steps taken in this episode."""

    physics: jax.Array
    t: jax.Array


def _gymnax_step(step):
    """``step(key, state, action, params=None)``; a call in the old order ``step(state, action)`` is moved over
    (key None) with a DeprecationWarning."""

    @functools.wraps(step)
    def wrapper(self, *args, **kw):
        if args and isinstance(args[0], EnvState):
            warnings.warn(
                f"{type(self).__name__}.step: the signature is now gymnax's step(key, state, action, params); "
                "step(state, action) works until the next release.",
                DeprecationWarning,
                stacklevel=2,
            )
            args = (None, *args)
        return step(self, *args, **kw)

    return wrapper


def check_action(env, action) -> jax.Array:
    """``action`` as float32 of shape ``(env.act_dim,)``, or a clear error (a static shape check, fine under jit).

    Args:
      env: the environment.
      action: the action.

    Returns:
      A float32 ``[act_dim]`` array.

    Raises:
      ValueError: another shape.
      TypeError: not real numbers.

    Examples:
      >>> jaxkit.rl.envs.check_action(jaxkit.rl.MountainCarContinuous(), jnp.array([0.5]))
      Array([0.5], dtype=float32)
    """
    action = jnp.asarray(_c.array(action, "action", kind="r"), jnp.float32)
    if action.shape != (env.act_dim,):
        raise ValueError(f"`action` must have shape ({env.act_dim},) for {type(env).__name__}, got {action.shape}.")
    return action


@dataclasses.dataclass(frozen=True)
class MountainCarContinuous:
    """``MountainCarContinuous-v0``: an under-powered car must swing up to the flag at x >= 0.45.

    Per step, with force ``f = clip(a, -1, 1)``::

        v <- clip(v + f * power - 0.0025 * cos(3 x), -0.07, 0.07)
        x <- clip(x + v, -1.2, 0.6);   v <- 0 if x == -1.2 and v < 0
        terminated = x >= 0.45 and v >= 0
        reward = 100 * terminated - 0.1 * a^2       (the *unclipped* action, as in Gym)

    Reset: ``x ~ U(-0.6, -0.4)``, ``v = 0``. Observation ``(x, v)``.
    """

    max_steps: int = 999
    power: float = 0.0015
    goal_velocity: float = 0.0
    obs_dim: int = 2
    act_dim: int = 1

    min_position = -1.2
    max_position = 0.6
    max_speed = 0.07
    goal_position = 0.45

    @property
    def default_params(self) -> MountainCarContinuous:
        return self

    def reset(self, key, params: MountainCarContinuous | None = None):
        x = jax.random.uniform(key, (), jnp.float32, -0.6, -0.4)
        physics = jnp.stack([x, jnp.zeros((), jnp.float32)])
        return physics, EnvState(physics, jnp.zeros((), jnp.int32))

    @_gymnax_step
    def step(self, key, state: EnvState, action, params: MountainCarContinuous | None = None):
        p = self if params is None else params
        a = check_action(self, action)[0]
        x, v = state.physics[0], state.physics[1]
        force = jnp.clip(a, -1.0, 1.0)
        v = jnp.clip(v + force * p.power - 0.0025 * jnp.cos(3 * x), -p.max_speed, p.max_speed)
        x = jnp.clip(x + v, p.min_position, p.max_position)
        v = jnp.where((x == p.min_position) & (v < 0), 0.0, v)
        terminated = (x >= p.goal_position) & (v >= p.goal_velocity)
        reward = jnp.where(terminated, 100.0, 0.0) - 0.1 * a**2
        t = state.t + 1
        physics = jnp.stack([x, v]).astype(jnp.float32)
        return physics, EnvState(physics, t), reward.astype(jnp.float32), terminated, t >= p.max_steps


@dataclasses.dataclass(frozen=True)
class SparseNavigate:
    """A point robot in the arena ``[-1, 1]^2`` must reach a goal disc in the far corner.

    Start: ``(-0.8, -0.8)`` plus ``U(-0.05, 0.05)`` jitter per axis. Action
    ``a in [-1, 1]^2`` (clipped) moves the robot by ``speed * a`` (then clipped
    to the arena). Reward 1 and termination when within ``goal_radius`` of
    ``(0.8, 0.8)``; 0 otherwise (sparse); time limit ``max_steps``.
    Observation: position (2) and ``num_rays`` lidar ranges to the walls,
    divided by the arena diagonal (the robot does *not* see the goal).
    """

    max_steps: int = 400
    speed: float = 0.05
    goal_radius: float = 0.15
    num_rays: int = 8
    act_dim: int = 2

    @property
    def obs_dim(self) -> int:
        return 2 + self.num_rays

    def _observe(self, pos):
        ang = jnp.arange(self.num_rays, dtype=jnp.float32) * (2 * jnp.pi / self.num_rays)
        d = jnp.stack([jnp.cos(ang), jnp.sin(ang)], axis=1)  # (R, 2)
        big = jnp.float32(1e6)
        # distance along each ray to the wall it meets first (axis-aligned box [-1, 1]^2)
        tx = jnp.where(
            d[:, 0] > 1e-6,
            (1 - pos[0]) / jnp.maximum(d[:, 0], 1e-6),
            jnp.where(d[:, 0] < -1e-6, (-1 - pos[0]) / jnp.minimum(d[:, 0], -1e-6), big),
        )
        ty = jnp.where(
            d[:, 1] > 1e-6,
            (1 - pos[1]) / jnp.maximum(d[:, 1], 1e-6),
            jnp.where(d[:, 1] < -1e-6, (-1 - pos[1]) / jnp.minimum(d[:, 1], -1e-6), big),
        )
        lidar = jnp.minimum(tx, ty) / (2 * jnp.sqrt(2.0))
        return jnp.concatenate([pos, lidar]).astype(jnp.float32)

    @property
    def default_params(self) -> SparseNavigate:
        return self

    def reset(self, key, params: SparseNavigate | None = None):
        pos = jnp.float32(-0.8) + jax.random.uniform(key, (2,), jnp.float32, -0.05, 0.05)
        return self._observe(pos), EnvState(pos, jnp.zeros((), jnp.int32))

    @_gymnax_step
    def step(self, key, state: EnvState, action, params: SparseNavigate | None = None):
        p = self if params is None else params
        a = jnp.clip(check_action(self, action), -1.0, 1.0)
        pos = jnp.clip(state.physics + p.speed * a, -1.0, 1.0)
        terminated = jnp.sum((pos - 0.8) ** 2) <= p.goal_radius**2
        t = state.t + 1
        return (self._observe(pos), EnvState(pos, t), terminated.astype(jnp.float32), terminated, t >= p.max_steps)


def step_autoreset(env, key, state: EnvState, action, params=None):
    """``env.step`` that starts a new episode (with ``key``) when this one ends.

    Returns ``(next_obs, obs, state, reward, terminated, done)``: ``next_obs``
    is the true successor (for the replay buffer), ``obs`` / ``state`` where to
    continue from (a fresh episode's first observation after ``done``).

    Args:
      env: an environment with gymnax's signatures.
      key: PRNG key (the step and a possible reset).
      state: the environment state.
      action: the action.
      params: the environment's params (default: ``env.default_params``).

    Returns:
      ``(next_obs, obs, state, reward, terminated, done)``.

    Raises:
      ValueError: an action of the wrong shape.

    Examples:
      >>> env = jaxkit.rl.MountainCarContinuous()
      >>> obs, state = env.reset(jax.random.key(0))
      >>> next_obs, obs, state, reward, terminated, done = jaxkit.rl.step_autoreset(env, jax.random.key(1), state,
      ...                                                                        jnp.array([1.0]))
      >>> next_obs.shape, round(float(reward), 3), bool(done)  # Gym's reward: -0.1 a^2
      ((2,), -0.1, False)
    """
    # the step gets its own key (fold_in), the reset the key itself: this package's deterministic environments
    # ignore the step key, so their episodes are those of the pre-gymnax signature
    next_obs, state2, reward, terminated, truncated = env.step(jax.random.fold_in(key, 1), state, action, params)
    done = terminated | truncated
    reset_obs, reset_state = env.reset(key, params)
    obs = jnp.where(done, reset_obs, next_obs)
    state2 = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, state2)
    return next_obs, obs, state2, reward, terminated, done
