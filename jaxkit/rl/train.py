"""One jitted training loop for DDPG with (gated) intrinsic motivation; many runs under ``vmap``.

:class:`Trainer` holds the static configuration (environment, agent,
intrinsic module, budget). :meth:`Trainer.init` builds a run's whole state
(networks, optimizers, replay buffer, environment, PRNG key) and
:meth:`Trainer.run` advances it ``num_steps`` environment steps in one
``lax.scan``; per step it

1. acts with exploration noise whose standard deviation decays linearly from
   ``noise_init`` to ``noise_final`` over ``total_steps``
   (:func:`jaxkit.schedules.temperature`, ``kind="linear"``): independent Gaussian draws
   (``noise="gaussian"``), or an Ornstein-Uhlenbeck process of unit stationary std and mean-reversion rate
   ``noise_theta`` per step, restarted at 0 every episode (``noise="ou"``, Lillicrap et al. 2016's DDPG noise:
   the pushes persist for ~1/theta steps, which is what reaching MountainCar's flag needs);
2. steps the environment (new episode on termination or time limit) and
   stores the transition;
3. after ``warmup_steps`` transitions, draws three independent replay batches
   (agent, forward model, meta-critic) and takes one Adam step on each: the
   critic's reward is the external reward plus the intrinsic reward of the
   run's agent ``kind`` recomputed on the batch with the current modules.

``kind`` (an index into :data:`jaxkit.rl.intrinsic.AGENTS`) is *data*, so the
four agents and all their seeds form one batch: :meth:`Trainer.run_many` is
``jit(vmap(run))`` over stacked states and kinds -- an experiment is one
compiled program. A run whose losses turn non-finite is flagged
(``state.diverged``), keeps its last finite networks and stops learning; the
other runs in the batch are unaffected. Runs are resumable: the state
(including the raw key) is an ordinary pytree for :class:`jaxkit.checkpoint.Checkpointer`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxkit import _checks as _c
from jaxkit import _sharding, schedules
from jaxkit.rl import replay
from jaxkit.rl.ddpg import DDPG, DDPGState
from jaxkit.rl.envs import EnvState, step_autoreset
from jaxkit.rl.intrinsic import AGENTS, IMState, IntrinsicMotivation, agent_reward

__all__ = ["LOG_FIELDS", "RunState", "Trainer", "gather_runs", "kinds_index", "ou_step", "place_runs"]

LOG_FIELDS = (
    "ext_reward",
    "int_reward",
    "fm_term",
    "mc_term",
    "surprise_wins",
    "error",
    "done",
    "success",
    "episode_return",
)


@struct.dataclass
class RunState:
    agent: DDPGState
    motivation: IMState
    buffer: replay.ReplayState
    env: EnvState
    obs: jax.Array
    key: jax.Array  # raw uint32 key data (checkpoint-friendly)
    step: jax.Array
    episode_return: jax.Array
    diverged: jax.Array
    noise: jax.Array  # the OU process's state (zeros with Gaussian noise)


def ou_step(key, x, theta: float):
    """One step of the unit-variance Ornstein-Uhlenbeck process ``x' = (1 - theta) x + sqrt(1 - (1 - theta)^2) eps``.

    ``eps ~ N(0, I)``: stationary std 1 and lag-k correlation ``(1 - theta)^k`` (with dt = 1 and the DDPG
    paper's sigma folded into the noise schedule).

    Args:
      key: PRNG key.
      x: the current noise.
      theta: mean reversion in ``(0, 1]``.

    Returns:
      The next noise, of ``x``'s shape.

    References:
      Lillicrap et al., "Continuous control with deep reinforcement learning", ICLR 2016, Sec. 7 (exploration by an
      Ornstein-Uhlenbeck process).

    Examples:
      >>> jaxkit.rl.ou_step(jax.random.key(0), jnp.zeros(2), 0.15).shape
      (2,)
    """
    x = _c.array(x, "x", kind="r")
    th = jnp.float32(_c.number(theta, "theta", lo=0.0, hi=1.0, lo_open=True))
    return (1 - th) * x + jnp.sqrt(1 - (1 - th) ** 2) * jax.random.normal(key, jnp.shape(x))


def _where(c, a, b):
    return jax.tree.map(lambda x, y: jnp.where(c, x, y), a, b)


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Static configuration of a training run (hashable: passed to ``jit`` as a static argument).

    ``warmup_steps``, ``noise_init``, ``noise_final`` and ``buffer_size`` are
    our choices (the paper only says the noise decreases monotonically);
    ``batch_size = 32`` is the paper's.
    """

    env: Any
    agent: DDPG
    motivation: IntrinsicMotivation
    total_steps: int = 20_000
    buffer_size: int = 100_000
    batch_size: int = 32
    warmup_steps: int = 1_000
    noise_init: float = 1.0
    noise_final: float = 0.05
    noise: str = "gaussian"
    noise_theta: float = 0.15

    def __post_init__(self):
        e, a, m = self.env, self.agent, self.motivation
        if not (e.obs_dim == a.obs_dim == m.obs_dim):
            raise ValueError(f"observation sizes differ: env {e.obs_dim}, agent {a.obs_dim}, motivation {m.obs_dim}.")
        if not (e.act_dim == a.act_dim == m.act_dim):
            raise ValueError(f"action sizes differ: env {e.act_dim}, agent {a.act_dim}, motivation {m.act_dim}.")
        for name in ("total_steps", "buffer_size", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}.")
        if int(self.warmup_steps) < 0:
            raise ValueError(f"`warmup_steps` must be >= 0, got {self.warmup_steps}.")
        if not (0 < self.noise_final <= self.noise_init):
            raise ValueError(f"need 0 < `noise_final` <= `noise_init`, got {self.noise_final}, {self.noise_init}.")
        if self.noise not in ("gaussian", "ou"):
            raise ValueError(f"`noise` must be 'gaussian' or 'ou', got {self.noise!r}.")
        if not (0 < float(self.noise_theta) <= 1):
            raise ValueError(f"`noise_theta` must lie in (0, 1], got {self.noise_theta}.")

    @property
    def noise_schedule(self):
        return schedules.temperature(self.noise_init, self.noise_final, self.total_steps, kind="linear")

    def _transition(self, obs, action, reward, next_obs, terminal):
        return {"obs": obs, "action": action, "reward": reward, "next_obs": next_obs, "terminal": terminal}

    def init(self, key) -> RunState:
        """A fresh run from ``key`` (new-style or raw uint32 key)."""
        if not jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
        k_agent, k_im, k_env, k_run = jax.random.split(key, 4)
        obs, env_state = self.env.reset(k_env)
        example = self._transition(obs, jnp.zeros((self.env.act_dim,)), jnp.float32(0), obs, jnp.bool_(False))
        return RunState(
            self.agent.init(k_agent),
            self.motivation.init(k_im),
            replay.init(self.buffer_size, example),
            env_state,
            obs,
            jax.random.key_data(k_run),
            jnp.zeros((), jnp.int32),
            jnp.float32(0),
            jnp.bool_(False),
            jnp.zeros((self.env.act_dim,), jnp.float32),
        )

    def _step(self, kind, state: RunState, _):
        ag, im = self.agent, self.motivation
        key = jax.random.wrap_key_data(state.key)
        key, k_noise, k_reset, k_a, k_f, k_m = jax.random.split(key, 6)
        std = self.noise_schedule(state.step)
        if self.noise == "gaussian":
            action, ou = ag.act(state.agent, state.obs, k_noise, std), state.noise
        else:
            ou = ou_step(k_noise, state.noise, self.noise_theta)
            action = jnp.clip(ag.policy(state.agent.actor, state.obs) + std * ou, -ag.max_action, ag.max_action)
        next_obs, obs, env_state, r_ext, terminated, done = step_autoreset(self.env, k_reset, state.env, action)
        sig = im.rewards(state.motivation, state.obs, action, next_obs)
        fm_term = im.eps_fm * jnp.tanh(sig["r_fm"])
        mc_term = im.eps_mc * jnp.tanh(sig["r_mc"])
        r_int = agent_reward(kind, sig["r_fm"], sig["r_mc"], im.eps_fm, im.eps_mc)
        buffer = replay.add(state.buffer, self._transition(state.obs, action, r_ext, next_obs, terminated))

        batch = replay.sample(k_a, buffer, self.batch_size)
        r_b = im.rewards(state.motivation, batch["obs"], batch["action"], batch["next_obs"])
        batch = {
            **batch,
            "reward": batch["reward"] + agent_reward(kind, r_b["r_fm"], r_b["r_mc"], im.eps_fm, im.eps_mc),
        }
        new_agent, a_metrics = ag.update(state.agent, batch)
        new_im, m_metrics = im.update(
            state.motivation, replay.sample(k_f, buffer, self.batch_size), replay.sample(k_m, buffer, self.batch_size)
        )
        finite = jnp.all(jnp.isfinite(jnp.stack(list(a_metrics.values()) + list(m_metrics.values()))))
        learn = (buffer.size >= max(self.warmup_steps, 1)) & finite & ~state.diverged
        ep_ret = state.episode_return + r_ext
        new_state = RunState(
            _where(learn, new_agent, state.agent),
            _where(learn, new_im, state.motivation),
            buffer,
            env_state,
            obs,
            jax.random.key_data(key),
            state.step + 1,
            jnp.where(done, 0.0, ep_ret),
            state.diverged | ~finite,
            jnp.where(done, 0.0, ou),
        )
        log = {
            "ext_reward": r_ext,
            "int_reward": r_int,
            "fm_term": fm_term,
            "mc_term": mc_term,
            "surprise_wins": sig["surprise_wins"],
            "error": sig["error"],
            "done": done,
            "success": terminated,
            "episode_return": ep_ret,
        }
        return new_state, log

    @functools.partial(jax.jit, static_argnums=(0, 3))
    def run(self, state: RunState, kind, num_steps: int):
        """Advance one run ``num_steps`` steps: ``(state, logs)``, logs a dict of ``(num_steps,)`` arrays
        (:data:`LOG_FIELDS`; ``episode_return`` is meaningful where ``done``)."""
        return self._run(state, kind, num_steps)

    def _run(self, state, kind, num_steps):
        kind = jnp.asarray(kind, jnp.int32)
        return jax.lax.scan(functools.partial(self._step, kind), state, None, length=int(num_steps))

    @functools.partial(jax.jit, static_argnums=(0, 3))
    def run_many(self, states: RunState, kinds, num_steps: int):
        """:meth:`run` for a stack of runs (leading axis) in one program; logs are ``(runs, num_steps)``."""
        return jax.vmap(self._run, in_axes=(0, 0, None))(states, kinds, num_steps)

    def init_many(self, keys) -> RunState:
        """Stacked fresh runs, one per key."""
        return jax.jit(jax.vmap(self.init))(keys)


def kinds_index(names) -> np.ndarray:
    """Agent names (see :data:`AGENTS`) as the int32 indices :meth:`Trainer.run` takes.

    Args:
      names: agent names.

    Returns:
      An int32 array.

    Raises:
      ValueError: an unknown name.

    Examples:
      >>> jaxkit.rl.kinds_index(["baseline", "gated"])
      array([0, 3], dtype=int32)
    """
    names = list(names)
    if not names:
        raise ValueError(f"`names` is empty; expected agent names from {AGENTS}.")
    bad = [n for n in names if n not in AGENTS]
    if bad:
        raise ValueError(f"unknown agent(s) {bad}; expected names from {AGENTS}.")
    return np.asarray([AGENTS.index(n) for n in names], np.int32)


def place_runs(tree, devices=None):
    """Spread stacked runs (leading axis) over ``devices`` (default: all) for :meth:`Trainer.run_many`.

    Pads the run axis to a multiple of the device count by repeating the last
    run and places it with a ``NamedSharding``; ``jit`` then runs each device's
    share in parallel (on a CPU host, set
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` to use N cores).
    Returns ``(placed, n)``: slice results with ``[:n]``. One device: unchanged.

    Args:
      tree: a pytree of ``[runs, ...]`` arrays.
      devices: the devices (default: every device of every process).

    Returns:
      ``(placed, n)``.

    Examples:
      >>> placed, n = jaxkit.rl.place_runs(jnp.arange(3.0))
      >>> n, jaxkit.rl.gather_runs(placed, n)
      (3, array([0., 1., 2.], dtype=float32))
    """
    return _sharding.place(tree, devices, axis="runs", name="tree")


def gather_runs(tree, n: int | None = None):
    """NumPy copies of (sharded) run outputs on every process, the first ``n`` runs (``place_runs``'s ``n``).

    Under ``jax.distributed`` a process holds only its devices' runs, so ``np.asarray`` on ``run_many``'s
    outputs raises; this all-gathers them first (one device or process: a plain ``jax.device_get``).

    Args:
      tree: a pytree of (sharded) ``[runs, ...]`` arrays.
      n: the number of real runs (``None``: all).

    Returns:
      The pytree with NumPy leaves.

    Examples:
      >>> placed, n = jaxkit.rl.place_runs(jnp.arange(3.0))
      >>> jaxkit.rl.gather_runs(placed, n)
      array([0., 1., 2.], dtype=float32)
    """
    out = _sharding.fetch(tree)
    return out if n is None else jax.tree.map(lambda x: x[: int(n)], out)
