"""Generational genetic algorithm with (mu + lambda) elitist survival over pytree populations."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxkit.evolution import operators as ops
from jaxkit.evolution.base import EvoState, SingleObjective, initial_first, register, vary

__all__ = ["GA", "GAParams"]

PyTree = Any


@struct.dataclass
class GAParams:
    """GA rates (traceable). ``fresh_fraction``: share of each generation's offspring replaced by fresh random genes."""

    crossover_rate: float = 0.8
    mutation_rate: float = 0.1
    fresh_fraction: float = 0.0


@register("ga")
@dataclasses.dataclass(frozen=True)
class GA(SingleObjective):
    """Generational GA with (mu + lambda) elitist survival.

    Args:
      popsize: N >= 2 (survivors per generation).
      sample: ``key -> gene`` (a pytree), for the initial population and fresh genes.
      crossover: ``(key, parents_a, parents_b, rate) -> (children_a, children_b)``
        (default :func:`~jaxkit.evolution.operators.uniform_crossover`).
      mutate: ``(key, population, rate) -> population`` (default Gaussian, sigma 0.1).
      num_offspring: offspring per generation (default N).
      selection: ``"tournament"`` (binary, lower key wins) or ``"random"``
        (uniform parents: the blending paper's Algorithm 1 has no selection
        step; survival is then the only pressure).
      tournament_size: contestants per tournament.
      maximize: maximise fitness instead of minimising.
    """

    popsize: int
    sample: Callable[[jax.Array], PyTree]
    crossover: Callable = ops.uniform_crossover
    mutate: Callable = functools.partial(ops.gaussian_mutation, sigma=0.1)
    num_offspring: int | None = None
    selection: str = "tournament"
    tournament_size: int = 2
    maximize: bool = False

    def __post_init__(self):
        if int(self.popsize) < 2:
            raise ValueError(f"`popsize` must be >= 2, got {self.popsize}.")
        if self.selection not in ("tournament", "random"):
            raise ValueError(f"`selection` must be 'tournament' or 'random', got {self.selection!r}.")
        if self.num_offspring is not None and int(self.num_offspring) < 1:
            raise ValueError(f"`num_offspring` must be >= 1, got {self.num_offspring}.")
        if not 1 <= int(self.tournament_size) <= self.popsize:
            raise ValueError(f"`tournament_size` must be in [1, popsize={self.popsize}], got {self.tournament_size}.")

    @property
    def default_params(self) -> GAParams:
        return GAParams()

    def ask_impl(self, key: jax.Array, state: EvoState, params: GAParams) -> PyTree:
        m = self.num_offspring_per_ask
        pairs = (m + 1) // 2
        k_sel, k_x, k_mut, k_fresh, k_rep = jax.random.split(key, 5)
        if self.selection == "tournament":
            idx = ops.tournament_selection(k_sel, self.key(state.fitness), 2 * pairs, self.tournament_size)
        else:
            idx = jax.random.randint(k_sel, (2 * pairs,), 0, self.popsize)
        par = jax.tree.map(lambda x: x[idx], state.population)
        kids = vary(k_x, k_mut, par, m, self.crossover, self.mutate, params.crossover_rate, params.mutation_rate)
        fresh = jax.vmap(self.sample)(jax.random.split(k_fresh, m))
        kids = ops.replace_fraction(k_rep, kids, fresh, params.fresh_fraction)
        return initial_first(state, kids, m, self.popsize)

    def tell_impl(self, population: PyTree, fitness: jax.Array, state: EvoState, params: GAParams) -> EvoState:
        """Keep the best ``popsize`` of parents and offspring (sorted, best first; parents win ties)."""
        keys = jnp.concatenate([self.key(state.fitness), self.key(fitness)])
        keep = jnp.argsort(keys, stable=True)[: self.popsize]
        pop = jax.tree.map(lambda p, o: jnp.concatenate([p, o])[keep], state.population, population)
        return self.with_best(state, pop, jnp.concatenate([state.fitness, fitness])[keep])
