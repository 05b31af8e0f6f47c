"""The ``init / ask / tell`` contract every strategy follows (evosax's style), and the strategy registry.

A strategy is a frozen dataclass holding the *static* configuration (sizes, operators, ``maximize``); its
hyper-parameters that may change or be traced live in a separate ``params`` pytree
(``strategy.default_params``); the evolving ``state`` is a pytree too (a ``flax.struct`` dataclass with at
least ``population``, ``generation`` and ``nan_count``), so it can be jitted, vmapped over independent runs
and saved with :class:`jaxkit.checkpoint.Checkpointer`::

    strategy = evolution.GA(popsize=20, sample=lambda k: jax.random.uniform(k, (10,)))
    params = strategy.default_params
    state = strategy.init(key, params)
    for g in range(50):
        key, k_ask = jax.random.split(key)
        pop, state = strategy.ask(k_ask, state, params)
        fit = evolution.evaluate(fitness_fn, pop)          # vmapped / sharded
        state = strategy.tell(pop, fit, state, params)

:class:`Strategy` owns what every strategy shares: default params, the checks at the boundary, one jitted
``ask`` and one jitted ``tell`` per strategy configuration (compiled once, whatever the generation), the
generation and NaN counters, and the hooks :func:`jaxkit.evolution.run` and :func:`jaxkit.evolution.optimize`
read (:meth:`Strategy.trace`, :meth:`Strategy.summary`). :class:`SingleObjective` adds the best-so-far member
and fitness (:class:`EvoState`). A subclass writes only ``initial_state``, ``ask_impl`` and ``tell_impl``, and
registers itself under a name (:func:`register`; :data:`STRATEGIES`, :func:`make`).

Fitness is minimised unless ``maximize=True``; ``state.fitness`` and ``state.best_fitness`` are in the user's
orientation. NaN fitness ranks last and is counted in ``state.nan_count``. The first ``ask`` returns the initial
population itself, so it is evaluated before any variation.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxkit import _checks as _c
from jaxkit.evolution import operators as ops

__all__ = ["STRATEGIES", "EvoState", "SingleObjective", "Strategy", "initial_first", "make", "register", "vary"]

PyTree = Any

#: Every registered strategy class by name (``"ga"``, ``"de"``, ``"nsga2"``, and any a user registers).
STRATEGIES: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: add a :class:`Strategy` subclass to :data:`STRATEGIES` under ``name``.

    Args:
      name: the registry name.

    Returns:
      The decorator.

    Raises:
      ValueError: a name already registered.

    Examples:
      >>> sorted(jaxkit.evolution.STRATEGIES)
      ['de', 'ga', 'nsga2']
    """

    def deco(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise TypeError(f"register({name!r}) expects a Strategy subclass, got {cls!r}.")
        if name in STRATEGIES and STRATEGIES[name] is not cls:
            raise ValueError(f"A strategy named {name!r} is already registered ({STRATEGIES[name].__name__}).")
        STRATEGIES[name] = cls
        cls.name = name
        return cls

    return deco


def make(name: str, *args: Any, **kwargs: Any) -> Strategy:
    """The strategy registered as ``name``, built with ``args`` / ``kwargs``.

    Args:
      name: a registered name (:data:`STRATEGIES`).
      *args: the strategy's constructor arguments.
      **kwargs: its keyword arguments.

    Returns:
      The strategy.

    Raises:
      ValueError: an unknown name.

    Examples:
      >>> ga = jaxkit.evolution.make("ga", 16, lambda key: jax.random.uniform(key, (3,)))
      >>> type(ga).__name__
      'GA'
    """
    cls = STRATEGIES[_c.one_of(name, "name", sorted(STRATEGIES))]
    return cls(*args, **kwargs)


@struct.dataclass
class EvoState:
    """Population, its fitness (user orientation; NaN = not evaluated yet), the best ever, counters."""

    population: PyTree
    fitness: jax.Array
    best_member: PyTree
    best_fitness: jax.Array
    generation: jax.Array
    nan_count: jax.Array


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


class Strategy:
    """Base of every strategy: the ``init / ask / tell`` contract (see the module docstring).

    Subclasses are frozen dataclasses with at least ``popsize``, ``sample`` and ``maximize`` fields, and define
    :attr:`default_params`, :meth:`initial_state`, :meth:`ask_impl` and :meth:`tell_impl` (pure, jittable; the
    base jits them with the strategy as a static argument). ``num_offspring`` (members per ``ask``) defaults to
    ``popsize``; a strategy with several objectives sets ``num_objectives``.
    """

    name: str = ""
    popsize: int
    sample: Callable
    maximize: Any

    # ---------------------------------------------------------------- what a subclass defines
    @property
    def default_params(self) -> Any:
        raise NotImplementedError

    def initial_state(self, population: PyTree, params: Any) -> Any:
        """The state of a freshly sampled population (nothing evaluated yet)."""
        raise NotImplementedError

    def ask_impl(self, key: jax.Array, state: Any, params: Any) -> PyTree:
        """The ``num_offspring`` members to evaluate next (traced)."""
        raise NotImplementedError

    def tell_impl(self, population: PyTree, fitness: jax.Array, state: Any, params: Any) -> Any:
        """The next state from evaluated offspring (traced; the base then advances the counters)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- shared
    @property
    def num_offspring_per_ask(self) -> int:
        return int(getattr(self, "num_offspring", None) or self.popsize)

    @property
    def fitness_shape(self) -> tuple[int, ...]:
        """What ``tell`` expects: ``(num_offspring,)``, or ``(num_offspring, M)`` for ``M`` objectives."""
        m = self.num_offspring_per_ask
        k = getattr(self, "num_objectives", None)
        return (m,) if k is None else (m, int(k))

    def check_params(self, params: Any) -> None:
        """Concrete rates (fields ending in ``_rate`` / ``_fraction``; ``None`` = operator default) in [0, 1]."""
        for f in dataclasses.fields(params):
            v = getattr(params, f.name)
            if f.name.endswith(("_rate", "_fraction")) and v is not None:
                ops.check_rate(f"params.{f.name}", v)

    def _params(self, params: Any) -> Any:
        params = self.default_params if params is None else params
        self.check_params(params)  # concrete rates are checked on every call, not only by init
        return params

    def init(self, key: jax.Array, params: Any = None) -> Any:
        """A random initial population from ``sample`` (one key per member)."""
        params = self._params(params)
        population = jax.vmap(self.sample)(jax.random.split(key, self.popsize))
        return self.initial_state(population, params)

    def ask(self, key: jax.Array, state: Any, params: Any = None) -> tuple[PyTree, Any]:
        """Offspring to evaluate (the initial population at generation 0 when ``num_offspring == popsize``)."""
        return _ask(self, key, state, self._params(params)), state

    def tell(self, population: PyTree, fitness: jax.Array, state: Any, params: Any = None) -> Any:
        """The next generation's state from the offspring of :meth:`ask` and their fitness."""
        params = self._params(params)
        m = self.num_offspring_per_ask
        if ops.popsize(population) != m:
            raise ValueError(f"`population` must have {m} members (from ask), got {ops.popsize(population)}.")
        f = jnp.asarray(fitness)
        if f.shape != self.fitness_shape:
            what = "one scalar per member" if len(self.fitness_shape) == 1 else "one row of objectives per member"
            arg = "fitness" if len(self.fitness_shape) == 1 else "objectives"
            raise ValueError(f"`{arg}` must have shape {self.fitness_shape} ({what}), got {f.shape}.")
        return _tell(self, population, f.astype(jnp.float32), state, params)

    def key(self, fitness: jax.Array) -> jax.Array:
        """Minimisation key of fitness values: user orientation flipped when maximising, NaN last."""
        return ops.ranking_key(fitness, self.maximize)

    # ---------------------------------------------------------------- hooks for run / optimize
    def trace(self, state: Any) -> jax.Array:
        """What :func:`~jaxkit.evolution.run` records per generation (default: the best fitness so far)."""
        return state.best_fitness

    def summary(self, state: Any, fitness: Any) -> dict:
        """One :func:`~jaxkit.evolution.optimize` history record; ``"postfix"`` goes to the progress bar."""
        f = np.asarray(fitness, np.float64)
        ok = f[~np.isnan(f)]
        best = float(state.best_fitness)
        return {
            "best": best,
            "gen_best": float((ok.max() if self.maximize else ok.min()) if ok.size else math.nan),
            "mean": float(ok.mean()) if ok.size else math.nan,
            "fitness": [None if math.isnan(v) else float(v) for v in f],
            "postfix": {"best": f"{best:.4g}"},
        }


# One compiled program per strategy configuration (the strategy is static: frozen dataclasses hash by value).
@functools.partial(jax.jit, static_argnums=0)
def _ask(strategy: Strategy, key, state, params):
    return strategy.ask_impl(key, state, params)


@functools.partial(jax.jit, static_argnums=0)
def _tell(strategy: Strategy, population, fitness, state, params):
    new = strategy.tell_impl(population, fitness, state, params)
    bad = jnp.isnan(fitness) if fitness.ndim == 1 else jnp.any(jnp.isnan(fitness), axis=1)
    return new.replace(generation=state.generation + 1, nan_count=state.nan_count + jnp.sum(bad).astype(jnp.int32))


class SingleObjective(Strategy):
    """A strategy with one scalar fitness: :class:`EvoState` with the best member and fitness ever seen."""

    def initial_state(self, population: PyTree, params: Any) -> EvoState:
        nan = jnp.full((self.popsize,), jnp.nan, jnp.float32)
        return EvoState(
            population=population,
            fitness=nan,
            best_member=jax.tree.map(lambda x: x[0], population),
            best_fitness=jnp.float32(jnp.nan),
            generation=jnp.int32(0),
            nan_count=jnp.int32(0),
        )

    def with_best(self, state: EvoState, population: PyTree, fitness: jax.Array) -> EvoState:
        """``state`` with this population and fitness, the best-so-far updated from them."""
        i = jnp.argmin(self.key(fitness))
        better = self.key(fitness[i]) < self.key(state.best_fitness)
        member = jax.tree.map(lambda b, p: jnp.where(better, p[i], b), state.best_member, population)
        return dataclasses.replace(
            state,
            population=population,
            fitness=fitness,
            best_member=member,
            best_fitness=jnp.where(better, fitness[i], state.best_fitness),
        )
