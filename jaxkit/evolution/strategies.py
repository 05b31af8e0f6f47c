"""``init / ask / tell`` strategies (evosax's style) over pytree populations.

A strategy is a frozen dataclass holding the *static* configuration (sizes,
operators, ``maximize``); its hyper-parameters that may change or be traced
live in a separate ``params`` pytree (``strategy.default_params``); the
evolving ``state`` (:class:`EvoState`) is a pytree too, so it can be jitted,
vmapped over independent runs and saved with :class:`jaxkit.checkpoint.Checkpointer`::

    strategy = evolution.GA(popsize=20, sample=lambda k: jax.random.uniform(k, (10,)))
    params = strategy.default_params
    state = strategy.init(key, params)
    for g in range(50):
        key, k_ask = jax.random.split(key)
        pop, state = strategy.ask(k_ask, state, params)
        fit = evolution.evaluate(fitness_fn, pop)          # vmapped / sharded
        state = strategy.tell(pop, fit, state, params)
    state.best_member, state.best_fitness

Fitness is minimised unless ``maximize=True``; ``state.fitness`` and
``state.best_fitness`` are in the user's orientation. NaN fitness ranks last
and is counted in ``state.nan_count`` (:func:`jaxkit.evolution.evaluate` warns).
The first ``ask`` returns the initial population itself, so it is evaluated
before any variation.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxkit.evolution import operators as ops

__all__ = ["EvoState", "GAParams", "GA", "DEParams", "DE"]

PyTree = Any


@struct.dataclass
class EvoState:
    """Population, its fitness (user orientation; NaN = not evaluated yet), the best ever, counters."""

    population: PyTree
    fitness: jax.Array
    best_member: PyTree
    best_fitness: jax.Array
    generation: jax.Array
    nan_count: jax.Array


def _check_popsize(n):
    if int(n) < 2:
        raise ValueError(f"`popsize` must be >= 2, got {n}.")


def _check_fitness(fitness, n):
    f = jnp.asarray(fitness)
    if f.shape != (n,):
        raise ValueError(f"`fitness` must have shape ({n},) (one scalar per member), got {f.shape}.")
    return f.astype(jnp.float32)


def vary(k_cross, k_mut, parents, m, crossover, mutate, crossover_rate, mutation_rate):
    """``m`` children: parents paired first half with second half, crossed and mutated (either may be ``None``)."""
    pairs = (m + 1) // 2
    a = jax.tree.map(lambda x: x[:pairs], parents)
    b = jax.tree.map(lambda x: x[pairs:], parents)
    if crossover is not None:
        a, b = crossover(k_cross, a, b, crossover_rate)
    kids = jax.tree.map(lambda u, v: jnp.concatenate([u, v])[:m], a, b)
    return kids if mutate is None else mutate(k_mut, kids, mutation_rate)  # None: the operator's own default


def initial_first(state, kids, m, popsize):
    """At generation 0 (and ``m == popsize``) hand out the initial population itself, so it gets evaluated."""
    if m != popsize:
        return kids
    first = state.generation == 0
    return jax.tree.map(lambda p, k: jnp.where(first, p, k), state.population, kids)


class _Base:
    popsize: int
    sample: Callable
    maximize: bool

    def _key(self, f):
        return ops.ranking_key(f, self.maximize)

    def init(self, key: jax.Array, params: Any = None) -> EvoState:
        """A random initial population from ``sample`` (one key per member)."""
        params = self.default_params if params is None else params
        self.check_params(params)
        pop = jax.vmap(self.sample)(jax.random.split(key, self.popsize))
        nan = jnp.full((self.popsize,), jnp.nan, jnp.float32)
        return EvoState(population=pop, fitness=nan, best_member=jax.tree.map(lambda x: x[0], pop),
                        best_fitness=jnp.float32(jnp.nan), generation=jnp.int32(0), nan_count=jnp.int32(0))

    def _best(self, state, pop, fit):
        i = jnp.argmin(self._key(fit))
        better = self._key(fit[i]) < self._key(state.best_fitness)
        member = jax.tree.map(lambda b, p: jnp.where(better, p[i], b), state.best_member, pop)
        return member, jnp.where(better, fit[i], state.best_fitness)

    def check_params(self, params) -> None:
        for f in dataclasses.fields(params):
            if f.name.endswith(("_rate", "_fraction")):
                ops.check_rate(f"params.{f.name}", getattr(params, f.name))


@struct.dataclass
class GAParams:
    """GA rates (traceable). ``fresh_fraction``: share of each generation's offspring replaced by fresh random genes."""

    crossover_rate: float = 0.8
    mutation_rate: float = 0.1
    fresh_fraction: float = 0.0


@dataclasses.dataclass(frozen=True)
class GA(_Base):
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
        _check_popsize(self.popsize)
        if self.selection not in ("tournament", "random"):
            raise ValueError(f"`selection` must be 'tournament' or 'random', got {self.selection!r}.")
        if self.num_offspring is not None and int(self.num_offspring) < 1:
            raise ValueError(f"`num_offspring` must be >= 1, got {self.num_offspring}.")
        if not 1 <= int(self.tournament_size) <= self.popsize:
            raise ValueError(f"`tournament_size` must be in [1, popsize={self.popsize}], got {self.tournament_size}.")

    @property
    def default_params(self) -> GAParams:
        return GAParams()

    @property
    def _m(self):
        return int(self.num_offspring or self.popsize)

    @functools.partial(jax.jit, static_argnums=0)
    def _ask(self, key, state, params):
        m = self._m
        pairs = (m + 1) // 2
        k_sel, k_x, k_mut, k_fresh, k_rep = jax.random.split(key, 5)
        if self.selection == "tournament":
            idx = ops.tournament_selection(k_sel, self._key(state.fitness), 2 * pairs, self.tournament_size)
        else:
            idx = jax.random.randint(k_sel, (2 * pairs,), 0, self.popsize)
        par = jax.tree.map(lambda x: x[idx], state.population)
        kids = vary(k_x, k_mut, par, m, self.crossover, self.mutate, params.crossover_rate, params.mutation_rate)
        fresh = jax.vmap(self.sample)(jax.random.split(k_fresh, m))
        kids = ops.replace_fraction(k_rep, kids, fresh, params.fresh_fraction)
        return initial_first(state, kids, m, self.popsize)

    def ask(self, key: jax.Array, state: EvoState, params: GAParams | None = None) -> tuple[PyTree, EvoState]:
        """Offspring to evaluate (the initial population at generation 0 when ``num_offspring == popsize``)."""
        params = self.default_params if params is None else params
        self.check_params(params)  # concrete rates are checked on every call, not only by init
        return self._ask(key, state, params), state

    @functools.partial(jax.jit, static_argnums=0)
    def _tell(self, population, fitness, state):
        keys = jnp.concatenate([self._key(state.fitness), self._key(fitness)])
        keep = jnp.argsort(keys, stable=True)[: self.popsize]  # parents win ties
        pop = jax.tree.map(lambda p, o: jnp.concatenate([p, o])[keep], state.population, population)
        fit = jnp.concatenate([state.fitness, fitness])[keep]
        best_member, best_fitness = self._best(state, pop, fit)
        return state.replace(population=pop, fitness=fit, best_member=best_member, best_fitness=best_fitness,
                             generation=state.generation + 1,
                             nan_count=state.nan_count + jnp.sum(jnp.isnan(fitness)).astype(jnp.int32))

    def tell(self, population: PyTree, fitness: jax.Array, state: EvoState,
             params: GAParams | None = None) -> EvoState:
        """Keep the best ``popsize`` of parents and offspring (sorted, best first)."""
        if ops.popsize(population) != self._m:
            raise ValueError(f"`population` must have {self._m} members (from ask), got {ops.popsize(population)}.")
        return self._tell(population, _check_fitness(fitness, self._m), state)


@struct.dataclass
class DEParams:
    """DE/rand/1/bin: differential weight ``F`` and crossover rate ``CR``."""

    differential_weight: float = 0.5
    crossover_rate: float = 0.9


@dataclasses.dataclass(frozen=True)
class DE(_Base):
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

    @functools.partial(jax.jit, static_argnums=0)
    def _ask(self, key, state, params):
        k_m, k_x = jax.random.split(key)
        donor = ops.de_mutation(k_m, state.population, params.differential_weight)
        trial = ops.binomial_crossover(k_x, state.population, donor, params.crossover_rate)
        if self.lo is not None or self.hi is not None:
            trial = jnp.clip(trial, self.lo, self.hi)
        return jnp.where(state.generation == 0, state.population, trial)

    def ask(self, key: jax.Array, state: EvoState, params: DEParams | None = None) -> tuple[jax.Array, EvoState]:
        params = self.default_params if params is None else params
        self.check_params(params)  # concrete rates are checked on every call, not only by init
        return self._ask(key, state, params), state

    @functools.partial(jax.jit, static_argnums=0)
    def _tell(self, population, fitness, state):
        better = self._key(fitness) <= self._key(state.fitness)
        pop = jnp.where(better[:, None], population, state.population)
        fit = jnp.where(better, fitness, state.fitness)
        best_member, best_fitness = self._best(state, pop, fit)
        return state.replace(population=pop, fitness=fit, best_member=best_member, best_fitness=best_fitness,
                             generation=state.generation + 1,
                             nan_count=state.nan_count + jnp.sum(jnp.isnan(fitness)).astype(jnp.int32))

    def tell(self, population: jax.Array, fitness: jax.Array, state: EvoState,
             params: DEParams | None = None) -> EvoState:
        if ops.popsize(population) != self.popsize:
            raise ValueError(f"`population` must have {self.popsize} members, got {ops.popsize(population)}.")
        return self._tell(population, _check_fitness(fitness, self.popsize), state)
