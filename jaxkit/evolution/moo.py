"""Multi-objective evolution: Pareto ranks, crowding, quality indicators and NSGA-II.

Everything minimises and works on an ``[N, M]`` array of objectives (one row
per member); every function is jittable.

* :func:`non_dominated_sort` -- the Pareto front index of every member
  (0 = non-dominated) in one jitted call. Members are sorted
  lexicographically (a dominator always comes first) and ranked block by
  block: a member's rank is one more than the largest rank among the earlier
  members that dominate it, so each pair is compared once (``N^2 M / 2``
  comparisons, in ``[block, block]`` tiles) instead of once per front as the
  textbook front-peeling does. Rows with a NaN form a last front of their own.
* :func:`crowding_distance` -- NSGA-II's crowding distance within each front
  (pymoo's convention: boundary members ``inf``, each objective normalised by
  its range in the front, the sum divided by ``M``; fronts of one or two
  members are ``inf``).
* :func:`hypervolume` (exact for 2 and 3 objectives, Monte-Carlo beyond),
  :func:`pure_diversity` (Wang, Jin & Yao 2017) and :func:`spacing`
  (Schott 1995).
* :class:`NSGA2` -- Deb et al. (2002) in the engine's ``init / ask / tell``
  style: binary tournament on (rank, crowding), variation by the engine's
  operators (Gaussian mutation by default; :func:`sbx_crossover` and
  :func:`polynomial_mutation` for pymoo's real-coded defaults), (mu + lambda)
  survival by rank then crowding. Its :class:`MOState` is a pytree that
  :class:`jaxkit.checkpoint.Checkpointer` saves and restores, and
  :func:`jaxkit.evolution.optimize` / :func:`~jaxkit.evolution.run` drive it
  like the single-objective strategies (fitness functions return ``[M]``).

The primitives live in :mod:`jaxkit.evolution.pareto`, the strategy in :mod:`jaxkit.evolution.nsga2`; this
module is their public face (``evolution.moo.<name>``) and re-exports every public name of both.
"""

from __future__ import annotations

from jaxkit.evolution import nsga2, pareto
from jaxkit.evolution.nsga2 import *  # noqa: F403  (the face re-exports every public name)
from jaxkit.evolution.pareto import *  # noqa: F403  (the face re-exports every public name)

__all__ = []
__all__ += pareto.__all__
__all__ += nsga2.__all__
