"""Evolutionary search: pure operators, ``init / ask / tell`` strategies, vmapped and sharded fitness.

* :mod:`~jaxkit.evolution.operators` -- crossover (uniform / row-block, DE
  binomial), mutation (Gaussian, uniform, categorical within allowed sets,
  drop), fresh-gene replacement, tournament / truncation / elitist selection;
  pure functions over populations (pytrees with a leading member axis).
* :class:`Strategy` (:mod:`~jaxkit.evolution.base`) -- the ``init / ask / tell``
  contract (evosax's, with separate ``params``; minimisation unless
  ``maximize=True``), one jitted ask and tell per configuration, and the
  registry (:data:`STRATEGIES`, :func:`register`, :func:`make`) of
  :class:`GA` (generational, (mu + lambda) elitist; ``ga.py``), :class:`DE`
  (DE/rand/1/bin; ``de.py``) and :class:`NSGA2` (``nsga2.py``).
* :func:`evaluate` -- ``vmap`` of a fitness function over the population, the
  population sharded over all devices when there are several (same numbers as
  one device).
* :mod:`~jaxkit.evolution.moo` -- multi-objective (the face of ``pareto.py``
  and ``nsga2.py``): :func:`non_dominated_sort`,
  :func:`crowding_distance`, :func:`hypervolume`, :func:`pure_diversity`,
  :func:`spacing`, SBX / polynomial mutation and :class:`NSGA2`.
* :func:`run` (all generations in one ``lax.scan``), :func:`step` (one
  generation as one sharded program, optionally Lamarckian) and
  :func:`optimize` (host loop: sharded evaluation, progress bar, orbax
  checkpoint and resume).

Peers: evosax (composable, single-objective), DEAP (complete, pure Python),
pymoo (multi-objective, NumPy; our reference in the tests and benchmarks).
"""

from jaxkit.evolution import moo, operators
from jaxkit.evolution.base import STRATEGIES, EvoState, SingleObjective, Strategy, make, register
from jaxkit.evolution.de import DE, DEParams
from jaxkit.evolution.evaluate import evaluate, pad_population
from jaxkit.evolution.ga import GA, GAParams
from jaxkit.evolution.loop import optimize, run, step
from jaxkit.evolution.moo import (
    NSGA2,
    MOState,
    NSGA2Params,
    box_nsga2,
    crowding_distance,
    dominates,
    hypervolume,
    non_dominated_sort,
    pareto_front,
    polynomial_mutation,
    pure_diversity,
    rank_and_crowding,
    sbx_crossover,
    spacing,
    survival_order,
)
from jaxkit.evolution.operators import (
    binomial_crossover,
    categorical_mutation,
    de_mutation,
    drop,
    elitist_merge,
    gaussian_mutation,
    ranking_key,
    replace_fraction,
    tournament_selection,
    truncation_selection,
    uniform_crossover,
    uniform_mutation,
)

__all__ = [
    "DE",
    "GA",
    "NSGA2",
    "STRATEGIES",
    "DEParams",
    "EvoState",
    "GAParams",
    "MOState",
    "NSGA2Params",
    "SingleObjective",
    "Strategy",
    "binomial_crossover",
    "box_nsga2",
    "categorical_mutation",
    "crowding_distance",
    "de_mutation",
    "dominates",
    "drop",
    "elitist_merge",
    "evaluate",
    "gaussian_mutation",
    "hypervolume",
    "make",
    "moo",
    "non_dominated_sort",
    "operators",
    "optimize",
    "pad_population",
    "pareto_front",
    "polynomial_mutation",
    "pure_diversity",
    "rank_and_crowding",
    "ranking_key",
    "register",
    "replace_fraction",
    "run",
    "sbx_crossover",
    "spacing",
    "step",
    "survival_order",
    "tournament_selection",
    "truncation_selection",
    "uniform_crossover",
    "uniform_mutation",
]
