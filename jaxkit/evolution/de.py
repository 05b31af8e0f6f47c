"""Differential evolution, DE/rand/1/bin (Storn & Price 1997), on ``[N, D]`` float genes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from jaxkit.evolution import operators as ops
from jaxkit.evolution.base import EvoState, SingleObjective, register

__all__ = ["DE", "DEParams"]


@struct.dataclass
class DEParams:
    """DE/rand/1/bin: differential weight ``F`` and crossover rate ``CR``."""

    differential_weight: float = 0.5
    crossover_rate: float = 0.9


@register("de")
@dataclasses.dataclass(frozen=True)
class DE(SingleObjective):
    """Differential evolution (DE/rand/1/bin, Storn & Price 1997) on ``[N, D]`` float genes.

    Each member gets one trial vector; the trial replaces it when not worse
    (one-to-one survival). ``lo``/``hi`` clip trials to a box.
    """

    popsize: int
    sample: Callable[[jax.Array], jax.Array]
    lo: float | None = None
    hi: float | None = None
    maximize: bool = False

    def __post_init__(self):
        if int(self.popsize) < 4:
            raise ValueError(f"`popsize` must be >= 4 for DE/rand/1, got {self.popsize}.")

    @property
    def default_params(self) -> DEParams:
        return DEParams()

    def ask_impl(self, key: jax.Array, state: EvoState, params: DEParams) -> jax.Array:
        k_m, k_x = jax.random.split(key)
        donor = ops.de_mutation(k_m, state.population, params.differential_weight)
        trial = ops.binomial_crossover(k_x, state.population, donor, params.crossover_rate)
        if self.lo is not None or self.hi is not None:
            trial = jnp.clip(trial, self.lo, self.hi)
        return jnp.where(state.generation == 0, state.population, trial)

    def tell_impl(self, population: jax.Array, fitness: jax.Array, state: EvoState, params: DEParams) -> EvoState:
        """One-to-one survival: each trial replaces its parent when not worse."""
        better = self.key(fitness) <= self.key(state.fitness)
        pop = jnp.where(better[:, None], population, state.population)
        return self.with_best(state, pop, jnp.where(better, fitness, state.fitness))
