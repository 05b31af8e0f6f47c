"""NSGA-II (Deb, Pratap, Agarwal & Meyarivan 2002) in the engine's ``init / ask / tell`` style.

Binary tournament on (rank, crowding) (:func:`~jaxkit.evolution.pareto.dominance_tournament`), variation by the
engine's operators (Gaussian weight noise by default; :func:`~jaxkit.evolution.pareto.sbx_crossover` and
:func:`~jaxkit.evolution.pareto.polynomial_mutation` for pymoo's real-coded defaults, :func:`box_nsga2`),
(mu + lambda) survival by rank then crowding. Its :class:`MOState` is a pytree that
:class:`jaxkit.checkpoint.Checkpointer` saves and restores, and :func:`jaxkit.evolution.optimize` /
:func:`~jaxkit.evolution.run` drive it like the single-objective strategies (fitness functions return ``[M]``).
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

from jaxkit.evolution import operators as ops
from jaxkit.evolution.base import Strategy, initial_first, register, vary
from jaxkit.evolution.pareto import (
    dominance_tournament,
    polynomial_mutation,
    rank_and_crowding,
    sbx_crossover,
    survival_order,
)

PyTree = Any

__all__ = ["NSGA2", "MOState", "NSGA2Params", "box_nsga2", "pareto_front", "weight_noise"]


@struct.dataclass
class MOState:
    """Population, its ``[N, M]`` objectives (user orientation; NaN = not evaluated), fronts, crowding, counters."""

    population: PyTree
    objectives: jax.Array
    rank: jax.Array
    crowding: jax.Array
    generation: jax.Array
    nan_count: jax.Array


@struct.dataclass
class NSGA2Params:
    """Variation rates (traceable): crossover per pair; mutation as the ``mutate`` operator reads it, ``None`` (the
    default) leaving the operator's own default (:func:`weight_noise` mutates every entry, the fairness paper's
    choice; :func:`polynomial_mutation` each variable with probability ``1 / n_var``, as pymoo)."""

    crossover_rate: float = 0.9
    mutation_rate: float | None = None


def weight_noise(key: jax.Array, population: PyTree, rate=1.0, *, sigma: float = 0.01) -> PyTree:
    """NSGA-II's default mutation for network weights: ``N(0, sigma^2)`` noise on each entry with probability ``rate``.

    ``None`` or 1: every entry (the fairness paper's operator, sigma 0.01).

    Args:
      key: PRNG key.
      population: a pytree with a leading member axis.
      rate: the per-entry probability.
      sigma: the noise's standard deviation.

    Returns:
      The population.

    Raises:
      ValueError: ``rate`` outside ``[0, 1]``, a negative ``sigma``.

    References:
      Zhang et al., "Fairer Machine Learning Through Multi-objective Evolutionary Learning", ICANN 2021.

    Examples:
      >>> out = jaxkit.evolution.moo.weight_noise(jax.random.key(0), jnp.zeros((2, 3)), sigma=0.01)
      >>> bool(jnp.all(jnp.abs(out) < 0.1)), bool(jnp.all(out != 0))
      (True, True)
    """
    return ops.gaussian_mutation(key, population, 1.0 if rate is None else rate, sigma)


def box_nsga2(
    popsize: int,
    num_objectives: int,
    lo,
    hi,
    *,
    eta_crossover: float = 15.0,
    eta_mutation: float = 20.0,
    crossover_rate: float = 0.9,
    individual_rate: float = 0.9,
    num_offspring: int | None = None,
    maximize: bool | tuple[bool, ...] = False,
) -> tuple["NSGA2", NSGA2Params]:
    """NSGA-II for a box-bounded real vector, with pymoo's ``NSGA2`` defaults: ``(strategy, params)``.

    Uniform initial sampling in ``[lo, hi]`` (vectors of the gene's length), SBX (``eta_crossover`` 15, each pair
    crossed with probability 0.9), polynomial mutation (``eta_mutation`` 20; a member mutated with probability
    0.9, each variable with probability ``1 / n_var``), rank-and-crowding survival. pymoo also drops duplicate
    offspring; this does not (continuous problems rarely produce any).

    Args:
      popsize: members.
      num_objectives: ``M``.
      lo: lower bounds of the variables.
      hi: upper bounds.
      eta_crossover: SBX's index.
      eta_mutation: polynomial mutation's index.
      crossover_rate: SBX's per-pair probability.
      individual_rate: polynomial mutation's per-member probability.
      num_offspring: offspring per generation (default ``popsize``).
      maximize: per objective (or one flag for all).

    Returns:
      ``(NSGA2, params)``.

    Raises:
      ValueError: ``lo > hi``, ``popsize < 2``, ``num_objectives < 1``.

    References:
      Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II", IEEE TEVC 6(2), 2002; Blank & Deb,
      "pymoo: Multi-Objective Optimization in Python", IEEE Access 8, 2020 (the defaults).

    Examples:
      >>> strategy, params = jaxkit.evolution.box_nsga2(8, 2, jnp.zeros(2), jnp.ones(2))
      >>> zdt = lambda x: jnp.array([x[0], 1 - jnp.sqrt(x[0]) + x[1]])
      >>> state, trace = jaxkit.evolution.run(strategy, zdt, jax.random.key(0), 20, params)
      >>> trace.shape  # generations x members x objectives
      (20, 8, 2)
    """
    lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    if lo.shape != hi.shape or lo.ndim != 1 or lo.size == 0:
        raise ValueError(f"`lo` and `hi` must be vectors of the same length, got shapes {lo.shape} and {hi.shape}.")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo <= hi)):
        raise ValueError("`lo` and `hi` must be finite with `lo` <= `hi` in every variable.")
    lo_j, hi_j = jnp.asarray(lo), jnp.asarray(hi)
    strategy = NSGA2(
        int(popsize),
        int(num_objectives),
        sample=functools.partial(_uniform_box, lo=lo_j, hi=hi_j),
        crossover=functools.partial(sbx_crossover, eta=float(eta_crossover), lo=lo_j, hi=hi_j),
        mutate=functools.partial(
            polynomial_mutation, eta=float(eta_mutation), lo=lo_j, hi=hi_j, individual_rate=float(individual_rate)
        ),
        num_offspring=num_offspring,
        maximize=maximize,
    )
    return strategy, NSGA2Params(crossover_rate=float(crossover_rate), mutation_rate=None)


def _uniform_box(key, *, lo, hi):
    return jax.random.uniform(key, lo.shape, lo.dtype, lo, hi)


@register("nsga2")
@dataclasses.dataclass(frozen=True)
class NSGA2(Strategy):
    """NSGA-II (Deb, Pratap, Agarwal & Meyarivan 2002) over pytree populations, ``init / ask / tell``.

    Args:
      popsize: mu >= 4 survivors per generation.
      num_objectives: M >= 2; fitness functions return ``[M]`` per member.
      sample: ``key -> gene`` for the initial population (e.g. a Glorot-initialised network).
      crossover: ``(key, a, b, rate) -> (child_a, child_b)`` or ``None`` for
        none (the fairness paper's choice); e.g. :func:`sbx_crossover` or
        :func:`~jaxkit.evolution.operators.uniform_crossover`.
      mutate: ``(key, population, rate) -> population``, ``rate = None`` when
        ``params.mutation_rate`` is ``None``: the operator's own default (default: :func:`weight_noise`, Gaussian
        noise ``N(0, 0.01^2)`` on every entry). For box-bounded problems use
        :func:`box_nsga2` (pymoo's NSGA-II defaults).
      num_offspring: lambda (default mu).
      maximize: one bool, or one per objective.
      block_size: tile size of :func:`non_dominated_sort`.

    ``state.rank`` / ``state.crowding`` are those of the merged parents and
    offspring the survivors were chosen from (as pymoo stores them); rows with
    a NaN objective rank last and are counted in ``state.nan_count``.
    """

    popsize: int
    num_objectives: int
    sample: Callable[[jax.Array], PyTree]
    crossover: Callable | None = None
    mutate: Callable | None = weight_noise
    num_offspring: int | None = None
    maximize: bool | tuple[bool, ...] = False
    block_size: int = 128

    def __post_init__(self):
        if int(self.popsize) < 4:
            raise ValueError(f"`popsize` must be >= 4 for NSGA-II (binary tournaments on a front), got {self.popsize}.")
        if int(self.num_objectives) < 1:
            raise ValueError(f"`num_objectives` must be >= 1, got {self.num_objectives}.")
        if self.num_offspring is not None and int(self.num_offspring) < 1:
            raise ValueError(f"`num_offspring` must be >= 1, got {self.num_offspring}.")
        if not isinstance(self.maximize, bool) and len(tuple(self.maximize)) != int(self.num_objectives):
            raise ValueError(
                f"`maximize` must be a bool or one bool per objective ({self.num_objectives}), got {self.maximize}."
            )

    @property
    def default_params(self) -> NSGA2Params:
        return NSGA2Params()

    @property
    def sign(self) -> jax.Array:
        """``+1`` per minimised objective, ``-1`` per maximised one (objectives times this are minimised)."""
        mx = (self.maximize,) * int(self.num_objectives) if isinstance(self.maximize, bool) else tuple(self.maximize)
        return jnp.asarray([-1.0 if x else 1.0 for x in mx], jnp.float32)

    def initial_state(self, population: PyTree, params: NSGA2Params) -> MOState:
        n, m = self.popsize, int(self.num_objectives)
        return MOState(
            population=population,
            objectives=jnp.full((n, m), jnp.nan, jnp.float32),
            rank=jnp.zeros((n,), jnp.int32),
            crowding=jnp.full((n,), jnp.inf, jnp.float32),
            generation=jnp.int32(0),
            nan_count=jnp.int32(0),
        )

    def ask_impl(self, key: jax.Array, state: MOState, params: NSGA2Params) -> PyTree:
        m = self.num_offspring_per_ask
        pairs = (m + 1) // 2
        k_sel, k_x, k_mut = jax.random.split(key, 3)
        idx = dominance_tournament(k_sel, state.objectives * self.sign, state.crowding, 2 * pairs)
        par = jax.tree.map(lambda x: x[idx], state.population)
        kids = vary(k_x, k_mut, par, m, self.crossover, self.mutate, params.crossover_rate, params.mutation_rate)
        return initial_first(state, kids, m, self.popsize)

    def tell_impl(self, population: PyTree, objectives: jax.Array, state: MOState, params: NSGA2Params) -> MOState:
        """(mu + lambda) survival: whole fronts in order, the last one cut by crowding distance."""
        allf = jnp.concatenate([state.objectives, objectives])
        # pymoo's survival: later duplicates of a front get crowding 0
        ranks, crowd = rank_and_crowding(allf * self.sign, block_size=self.block_size, filter_duplicates=True)
        keep = survival_order(ranks, crowd)[: self.popsize]
        pop = jax.tree.map(lambda p, o: jnp.concatenate([p, o])[keep], state.population, population)
        return dataclasses.replace(state, population=pop, objectives=allf[keep], rank=ranks[keep], crowding=crowd[keep])

    def trace(self, state: MOState) -> jax.Array:
        """What :func:`~jaxkit.evolution.run` records per generation: the population's objectives."""
        return state.objectives

    def summary(self, state: MOState, objectives) -> dict:
        """One :func:`~jaxkit.evolution.optimize` history record (front size, per-objective front minima)."""
        f = np.asarray(state.objectives, np.float64)
        front = np.asarray(state.rank) == 0
        sign = np.asarray(self.sign)
        best = [float(v) for v in (np.nanmin(f[front] * sign, axis=0) * sign)] if front.any() else []
        return {
            "front_size": int(front.sum()),
            "front_best": best,
            "objectives": [[None if math.isnan(v) else float(v) for v in row] for row in np.asarray(objectives)],
            "postfix": {"front": int(front.sum())},
        }


def pareto_front(state: MOState) -> tuple[PyTree, jax.Array]:
    """The non-dominated members of a state and their objectives (host call: the size is data-dependent).

    Args:
      state: an NSGA-II state.

    Returns:
      ``(members, objectives)``.

    Raises:
      ValueError: a state that is not multi-objective.

    References:
      Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II", IEEE TEVC 6(2), 2002.

    Examples:
      >>> strategy, params = jaxkit.evolution.box_nsga2(8, 2, jnp.zeros(2), jnp.ones(2))
      >>> zdt = lambda x: jnp.array([x[0], 1 - jnp.sqrt(x[0]) + x[1]])
      >>> state, _ = jaxkit.evolution.run(strategy, zdt, jax.random.key(0), 20, params)
      >>> members, objectives = jaxkit.evolution.pareto_front(state)
      >>> bool(jnp.all(jaxkit.evolution.non_dominated_sort(objectives) == 0))
      True
    """
    if not hasattr(state, "rank") or not hasattr(state, "objectives"):
        raise ValueError(f"`state` must be a multi-objective (NSGA-II) state, got {type(state).__name__}.")
    keep = np.flatnonzero((np.asarray(state.rank) == 0) & ~np.isnan(np.asarray(state.objectives)).any(axis=1))
    return jax.tree.map(lambda x: x[keep], state.population), state.objectives[keep]
