"""Reinforcement learning in pure JAX: environments, replay, DDPG, intrinsic motivation with reward gating.

Everything is a pure function of pytrees and explicit keys, so a whole
training run is one ``lax.scan`` and many runs are one ``vmap``:

* :mod:`jaxkit.rl.envs` -- ``MountainCarContinuous``, ``SparseNavigate``;
* :mod:`jaxkit.rl.replay` -- a functional ring buffer;
* :mod:`jaxkit.rl.ddpg` -- DDPG ``init / act / update``;
* :mod:`jaxkit.rl.intrinsic` -- forward model, meta-critic, the prediction-error
  and surprise rewards and their gate (Pecháč & Farkaš, ICANN 2021);
* :mod:`jaxkit.rl.train` -- the jitted training loop, vmapped over seeds and agents;
* :mod:`jaxkit.rl.reliability` -- dispersion (IQR) and risk (CVaR) across runs
  and across time (Chan et al., ICLR 2020).
"""

from jaxkit.rl import ddpg, envs, intrinsic, reliability, replay, train
from jaxkit.rl.ddpg import DDPG, DDPGState
from jaxkit.rl.envs import EnvState, MountainCarContinuous, SparseNavigate, step_autoreset
from jaxkit.rl.intrinsic import (
    AGENTS,
    IMState,
    IntrinsicMotivation,
    agent_reward,
    gate,
    prediction_error,
    prediction_error_reward,
    surprise_reward,
)
from jaxkit.rl.train import LOG_FIELDS, RunState, Trainer, gather_runs, kinds_index, ou_step, place_runs

__all__ = [
    "AGENTS",
    "DDPG",
    "LOG_FIELDS",
    "DDPGState",
    "EnvState",
    "IMState",
    "IntrinsicMotivation",
    "MountainCarContinuous",
    "RunState",
    "SparseNavigate",
    "Trainer",
    "agent_reward",
    "ddpg",
    "envs",
    "gate",
    "gather_runs",
    "intrinsic",
    "kinds_index",
    "ou_step",
    "place_runs",
    "prediction_error",
    "prediction_error_reward",
    "reliability",
    "replay",
    "step_autoreset",
    "surprise_reward",
    "train",
]
