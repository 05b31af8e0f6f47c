"""Multi-task loss balancing: :class:`RunningMeanBalancer`, ``sum_t L_t / m_t`` with ``m_t`` an exponential
running mean of ``L_t`` (optax-style state, resumable), and :func:`balanced_sum`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxkit import _checks as _c

__all__ = ["BalancerState", "RunningMeanBalancer", "balanced_sum"]


class BalancerState(NamedTuple):
    """``mean``: running mean of each task's loss; ``count``: updates so far (int32)."""

    mean: jax.Array
    count: jax.Array


class RunningMeanBalancer(NamedTuple):
    """Multi-task loss balancing by running means: ``total = sum_t L_t / m_t`` (``m_t`` held fixed in gradients).

    ``m_t <- decay * m_t + (1 - decay) * L_t`` after a first value ``m_t = L_t``
    (exponential averaging and ``decay`` are our choice; the case study gives
    neither). ``update`` returns the weights ``1 / m_t`` that already include
    the current losses, so the first step weighs every task to 1. Optax-style:
    ``state = init(num_tasks)``; ``weights, state = update(losses, state)``;
    the state is a pytree (checkpoint it to resume).
    """

    decay: float = 0.99
    eps: float = 1e-12

    def init(self, num_tasks: int) -> BalancerState:
        if not 0 <= float(self.decay) < 1:
            raise ValueError(f"`decay` must lie in [0, 1), got {self.decay}.")
        return BalancerState(jnp.zeros((int(num_tasks),), jnp.float32), jnp.zeros((), jnp.int32))

    def update(self, losses, state: BalancerState):
        l_now = jax.lax.stop_gradient(jnp.asarray(losses, jnp.float32))
        if l_now.shape != state.mean.shape:
            raise ValueError(f"`losses` must have shape {state.mean.shape} (one per task), got {l_now.shape}.")
        mean = jnp.where(state.count == 0, l_now, self.decay * state.mean + (1 - self.decay) * l_now)
        return 1.0 / jnp.maximum(mean, self.eps), BalancerState(mean, state.count + 1)


def balanced_sum(losses, weights):
    """The weighted total ``sum_t w_t L_t`` with the weights held constant (no gradient through them).

    Args:
      losses: ``[T]`` task losses.
      weights: ``[T]`` weights, e.g. from :class:`RunningMeanBalancer` ``.update``.

    Returns:
      A scalar array.

    Raises:
      ValueError: losses and weights of different shapes or not vectors.

    References:
      The running-mean loss balancing of the case study behind :class:`RunningMeanBalancer` (a weighted sum of
      task losses, as in Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses", CVPR
      2018, with the weights as constants).

    Examples:
      >>> float(jaxkit.losses.balanced_sum(jnp.array([2.0, 10.0]), jnp.array([0.5, 0.1])))
      2.0
    """
    losses = jnp.asarray(_c.array(losses, "losses", ndim=1, kind="r", nonempty=True))
    weights = jnp.asarray(_c.array(weights, "weights", ndim=1, kind="r", nonempty=True))
    if losses.shape != weights.shape:
        raise ValueError(f"`losses` {losses.shape} and `weights` {weights.shape} must have one entry per task each.")
    return jnp.sum(jax.lax.stop_gradient(weights) * losses)
