"""Multi-objective primitives: Pareto ranks, crowding, quality indicators, real-coded variation, selection.

Everything minimises and works on an ``[N, M]`` array of objectives (one row per member); every function is
jittable.

* :func:`non_dominated_sort` -- the Pareto front index of every member (0 = non-dominated) in one jitted call.
  Members are sorted lexicographically (a dominator always comes first) and ranked block by block: a member's
  rank is one more than the largest rank among the earlier members that dominate it, so each pair is compared
  once (``N^2 M / 2`` comparisons, in ``[block, block]`` tiles) instead of once per front as the textbook
  front-peeling does. Rows with a NaN form a last front of their own.
* :func:`crowding_distance` -- NSGA-II's crowding distance within each front (pymoo's convention: boundary
  members ``inf``, each objective normalised by its range in the front, the sum divided by ``M``; fronts of one
  or two members are ``inf``).
* :func:`hypervolume` (exact for 2 and 3 objectives, Monte-Carlo beyond), :func:`pure_diversity` (Wang, Jin &
  Yao 2017) and :func:`spacing` (Schott 1995).
* :func:`sbx_crossover`, :func:`polynomial_mutation` (pymoo's real-coded operators) and
  :func:`dominance_tournament` (pymoo's NSGA-II parent selection).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit import _sort
from jaxkit.evolution import operators as ops

__all__ = [
    "crowding_distance",
    "dominance_tournament",
    "dominates",
    "hypervolume",
    "non_dominated_sort",
    "polynomial_mutation",
    "pure_diversity",
    "rank_and_crowding",
    "sbx_crossover",
    "spacing",
    "survival_order",
]


PyTree = Any


def _check_objectives(objectives, name="objectives") -> jax.Array:
    f = jnp.asarray(_c.array(objectives, name, kind="r"))
    if f.ndim != 2 or f.shape[0] < 1 or f.shape[1] < 1:
        raise ValueError(f"`{name}` must be [N, M] (one row of M objectives per member), got shape {f.shape}.")
    if not jnp.issubdtype(f.dtype, jnp.floating):
        f = f.astype(jnp.float32)
    return f


def dominates(a: jax.Array, b: jax.Array) -> jax.Array:
    """Whether ``a`` Pareto-dominates ``b`` (minimisation): no worse in every objective, better in one.

    Broadcasts over leading axes; the last axis holds the objectives. NaN objectives are an error when concrete
    (inside a trace a NaN row dominates nothing and is dominated by nothing -- use :func:`non_dominated_sort`
    for populations with failed evaluations).

    Args:
      a: ``[..., M]`` objectives.
      b: ``[..., M]`` objectives.

    Returns:
      Booleans of the broadcast leading shape.

    Raises:
      ValueError: NaN objectives (when concrete), objective counts that differ.

    References:
      Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II", IEEE TEVC 6(2), 2002.

    Examples:
      >>> dominates = jaxkit.evolution.dominates
      >>> a, b, c = jnp.array([1.0, 2.0]), jnp.array([2.0, 2.0]), jnp.array([1.0, 3.0])
      >>> bool(dominates(a, b)), bool(dominates(c, b))
      (True, False)
    """
    for name, v in (("a", a), ("b", b)):
        _c.array(v, name, min_ndim=1, kind="r")
        if jnp.shape(v)[-1] == 0:
            raise ValueError(f"`{name}` has no objectives (last axis of length 0).")
        _c.no_nan(v, name)
    if jnp.shape(a)[-1] != jnp.shape(b)[-1]:
        raise ValueError(f"`a` and `b` must have the same number of objectives, got {jnp.shape(a)} and {jnp.shape(b)}.")
    return _dominates(jnp.asarray(a), jnp.asarray(b))


def _dominates(a, b):
    return jnp.all(a <= b, axis=-1) & jnp.any(a < b, axis=-1)


def non_dominated_sort(objectives: jax.Array, *, block_size: int = 128) -> jax.Array:
    """The front index of every member (0 = Pareto front), minimisation; ``int32 [N]``.

    Equal rows do not dominate each other (same front); rows containing NaN
    are put in one front after all others. ``block_size`` trades tile size
    against the number of sequential steps (results do not depend on it).

    Args:
      objectives: ``[N, M]`` minimised objectives.
      block_size: rows compared per tile.

    Returns:
      ``[N]`` int32 fronts.

    Raises:
      ValueError: objectives not ``[N, M]``, ``block_size < 1``.

    References:
      Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II", IEEE TEVC 6(2), 2002, Sec. III-A (fast
      non-dominated sorting).

    Examples:
      >>> objectives = jnp.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0]])  # minimised
      >>> print(jaxkit.evolution.non_dominated_sort(objectives))
      [0 0 0 1 2]
    """
    f = _check_objectives(objectives)
    if int(block_size) < 1:
        raise ValueError(f"`block_size` must be >= 1, got {block_size}.")
    return _nds(f, min(int(block_size), f.shape[0]))


@functools.partial(jax.jit, static_argnums=1)
def _nds(f, bs):
    n, m = f.shape
    valid = ~jnp.any(jnp.isnan(f), axis=1)
    # lexicographic order, NaN rows last: a dominator always precedes what it dominates
    keys = [jnp.where(valid, f[:, j], 0.0) for j in reversed(range(m))] + [~valid]
    order = _sort.lexsort(keys)
    nb = -(-n // bs)
    pad = nb * bs - n
    fs = jnp.concatenate([f[order], jnp.zeros((pad, m), f.dtype)]).reshape(nb, bs, m)
    ok = jnp.concatenate([valid[order], jnp.zeros((pad,), bool)]).reshape(nb, bs)

    def dom(fa, oka, fb, okb):  # [bs, bs]: row i of a dominates row j of b
        d = _dominates(fa[:, None, :], fb[None, :, :])
        return d & oka[:, None] & okb[None, :]

    def block(b, ranks):  # ranks: [nb, bs] holds 1 + rank (0 = not ranked yet)
        fb, okb = fs[b], ok[b]

        def earlier(a, r_ext):
            d = dom(fs[a], ok[a], fb, okb)
            return jnp.maximum(r_ext, jnp.max(jnp.where(d, ranks[a][:, None], 0), axis=0))

        r_ext = jax.lax.fori_loop(0, b, earlier, jnp.zeros((bs,), jnp.int32))
        d_in = dom(fb, okb, fb, okb)

        def relax(carry):  # longest dominance chain inside the block (few sweeps in practice)
            r, _ = carry
            new = 1 + jnp.maximum(r_ext, jnp.max(jnp.where(d_in, r[:, None], 0), axis=0))
            return new, jnp.any(new != r)

        r, _ = jax.lax.while_loop(lambda c: c[1], relax, (1 + r_ext, jnp.bool_(True)))
        return ranks.at[b].set(r)

    ranks = jax.lax.fori_loop(0, nb, block, jnp.zeros((nb, bs), jnp.int32))
    r_sorted = ranks.reshape(-1)[:n] - 1
    rank = jnp.zeros((n,), jnp.int32).at[order].set(r_sorted)
    last = jnp.max(jnp.where(valid, rank, -1)) + 1
    return jnp.where(valid, rank, last)


def crowding_distance(
    objectives: jax.Array, ranks: jax.Array | None = None, *, filter_duplicates: bool = False
) -> jax.Array:
    """The NSGA-II crowding distance of every member within its front (pymoo's ``"cd"`` convention).

    For each objective the front is sorted (stably, ties by index); a member's
    distance is the sum over objectives of the gap between its two neighbours
    divided by the front's range in that objective (0 when the range is 0),
    averaged over objectives; the extreme members get ``inf``, as does every
    member of a front with one or two members. Infinite objectives follow
    pymoo's ``calc_crowding_distance`` exactly (IEEE arithmetic: an infinite
    range makes finite gaps 0, ``inf / inf`` and ``inf - inf`` count 0), e.g.
    ``[[0, 3], [1, 2], [2, 1], [inf, 0]] -> [inf, 1/3, 1/3, inf]``. Duplicate rows
    count as any other (as ``calc_crowding_distance``) unless ``filter_duplicates``:
    then, as pymoo's NSGA-II survival (``RankAndCrowding``), a row equal to an
    earlier row of its front gets 0 and is left out of its neighbours' gaps
    (:class:`NSGA2` survives this way). Rows with NaN are ranked after every front
    and get 0 (pymoo has no NaN convention: a NaN row there zeroes its whole front).
    ``ranks`` defaults to :func:`non_dominated_sort`.

    Args:
      objectives: ``[N, M]`` minimised objectives.
      ranks: ``[N]`` fronts (default: :func:`non_dominated_sort`).
      filter_duplicates: pymoo's survival handling of duplicate rows.

    Returns:
      ``[N]`` distances (``inf`` at the extremes).

    Raises:
      ValueError: objectives not ``[N, M]``, ranks of another length.

    References:
      Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II", IEEE TEVC 6(2), 2002, Sec. III-B;
      Blank & Deb, "pymoo: Multi-Objective Optimization in Python", IEEE Access 8, 2020 (``calc_crowding_distance``).

    Examples:
      >>> objectives = jnp.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0]])  # minimised
      >>> print(jaxkit.evolution.crowding_distance(objectives))
      [inf  1. inf inf inf]
    """
    f = _check_objectives(objectives)
    ranks = non_dominated_sort(f) if ranks is None else jnp.asarray(_c.array(ranks, "ranks", kind="i"), jnp.int32)
    if ranks.shape != (f.shape[0],):
        raise ValueError(f"`ranks` must have shape ({f.shape[0]},), got {ranks.shape}.")
    return _crowding(f, ranks, bool(filter_duplicates))


def _later_duplicates(f, ranks):
    """Rows equal to an earlier row (by index) of the same front: sorted by front, then row values (stably)."""
    n, m = f.shape
    order = _sort.lexsort([f[:, j] for j in reversed(range(m))] + [ranks])
    fs, rs = f[order], ranks[order]
    same = jnp.concatenate([jnp.array([False]), jnp.all(fs[1:] == fs[:-1], axis=1) & (rs[1:] == rs[:-1])])
    return jnp.zeros((n,), bool).at[order].set(same)


@functools.partial(jax.jit, static_argnums=2)
def _crowding(f, ranks, filter_duplicates=False):
    n, m = f.shape
    valid = ~jnp.any(jnp.isnan(f), axis=1)
    size = jax.ops.segment_sum(jnp.ones((n,), jnp.int32), ranks, num_segments=n + 1)[ranks]
    dup = _later_duplicates(f, ranks) if filter_duplicates else jnp.zeros((n,), bool)
    work = jnp.where(dup, n, ranks)  # duplicates form a segment of their own: no one's neighbours
    lo = jax.ops.segment_min(f, work, num_segments=n + 1)
    hi = jax.ops.segment_max(f, work, num_segments=n + 1)
    norm = (hi - lo)[work]  # [n, m]: the front's range

    def one(col, nrm):
        order = _sort.lexsort((col, work))  # by front, then value; stable -> ties by index
        v, r = col[order], work[order]
        same_prev = jnp.concatenate([jnp.array([False]), r[1:] == r[:-1]])
        same_next = jnp.concatenate([r[:-1] == r[1:], jnp.array([False])])
        gap_prev = jnp.where(same_prev, v - jnp.roll(v, 1), jnp.inf)
        gap_next = jnp.where(same_next, jnp.roll(v, -1) - v, jnp.inf)
        nr = jnp.where(nrm[order] > 0, nrm[order], jnp.nan)  # a constant (or inf - inf) range: no contribution

        def term(gap):  # pymoo's IEEE arithmetic: inf / inf and inf - inf give NaN, and a NaN term counts 0
            t = gap / nr
            return jnp.where(jnp.isnan(t), 0.0, t)

        return jnp.zeros((n,), f.dtype).at[order].set(term(gap_prev) + term(gap_next))

    cd = jnp.sum(jax.vmap(one, in_axes=(1, 1), out_axes=1)(f, norm), axis=1) / m
    cd = jnp.where(size <= 2, jnp.inf, jnp.where(dup, 0.0, cd))  # pymoo: a front of <= 2 is inf before filtering
    return jnp.where(valid, cd, 0.0)


def rank_and_crowding(
    objectives: jax.Array, *, block_size: int = 128, filter_duplicates: bool = False
) -> tuple[jax.Array, jax.Array]:
    """``(ranks, crowding)`` in one call (see :func:`non_dominated_sort`, :func:`crowding_distance`).

    Args:
      objectives: ``[N, M]`` minimised objectives.
      block_size: as :func:`non_dominated_sort`.
      filter_duplicates: as :func:`crowding_distance`.

    Returns:
      ``(ranks [N], crowding [N])``.

    Raises:
      ValueError: as :func:`non_dominated_sort`.

    References:
      Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II", IEEE TEVC 6(2), 2002.

    Examples:
      >>> objectives = jnp.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0]])  # minimised
      >>> ranks, crowding = jaxkit.evolution.rank_and_crowding(objectives)
      >>> print(ranks)
      [0 0 0 1 2]
    """
    f = _check_objectives(objectives)
    ranks = non_dominated_sort(f, block_size=block_size)
    return ranks, _crowding(f, ranks, bool(filter_duplicates))


def survival_order(ranks: jax.Array, crowding: jax.Array) -> jax.Array:
    """Members sorted best first: by front, then by crowding distance (larger first), then by index.

    Args:
      ranks: ``[N]`` fronts.
      crowding: ``[N]`` crowding distances.

    Returns:
      ``[N]`` int32 indices.

    Raises:
      ValueError: inputs of different lengths.

    References:
      Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II", IEEE TEVC 6(2), 2002, Sec. III-C (the
      crowded-comparison order).

    Examples:
      >>> objectives = jnp.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0]])  # minimised
      >>> print(jaxkit.evolution.survival_order(*jaxkit.evolution.rank_and_crowding(objectives)))
      [0 2 1 3 4]
    """
    ranks = _c.array(ranks, "ranks", ndim=1, kind="i", nonempty=True)
    crowding = _c.array(crowding, "crowding", ndim=1, kind="r", nonempty=True)
    if jnp.shape(ranks) != jnp.shape(crowding):
        raise ValueError(
            f"`ranks` and `crowding` must have the same shape, got {jnp.shape(ranks)} and {jnp.shape(crowding)}."
        )
    return _sort.lexsort((-jnp.asarray(crowding), jnp.asarray(ranks)))


def hypervolume(
    objectives: jax.Array,
    ref_point: Sequence[float] | jax.Array,
    *,
    key: jax.Array | None = None,
    num_samples: int = 200_000,
) -> jax.Array:
    """The volume dominated by the points and bounded by ``ref_point`` (minimisation).

    Exact for 2 objectives (a sweep) and 3 (2-D sweeps over slabs in the third
    objective, ``O(N^2 log N)``); for more, a Monte-Carlo estimate from
    ``num_samples`` uniform points in the box between the points' ideal and
    ``ref_point`` (needs ``key``; standard error ~ ``V sqrt(p(1-p)/num_samples)``).
    Points not strictly better than ``ref_point`` in every objective and
    rows with NaN contribute nothing (pymoo's ``HV`` convention).

    Args:
      objectives: ``[N, M]`` minimised objectives.
      ref_point: ``[M]`` reference point.
      key: PRNG key of the Monte-Carlo estimate (``M > 3``).
      num_samples: its sample count.

    Returns:
      A scalar.

    Raises:
      ValueError: a reference point of another length, ``M > 3`` without ``key``.

    References:
      Zitzler & Thiele, "Multiobjective Evolutionary Algorithms: A Comparative Case Study and the Strength
      Pareto Approach", IEEE TEVC 3(4), 1999; pymoo's ``HV`` (the convention for points beyond the reference).

    Examples:
      >>> objectives = jnp.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0]])  # minimised
      >>> float(jaxkit.evolution.hypervolume(objectives[:3], jnp.array([5.0, 5.0])))
      11.0
    """
    f = _check_objectives(objectives)
    _c.finite(_c.array(ref_point, "ref_point", kind="r"), "ref_point")
    ref = jnp.asarray(ref_point, f.dtype)
    m = f.shape[1]
    if ref.shape != (m,):
        raise ValueError(f"`ref_point` must have shape ({m},) (one value per objective), got {ref.shape}.")
    inside = jnp.all(f < ref, axis=1) & ~jnp.any(jnp.isnan(f), axis=1)
    f = jnp.where(inside[:, None], f, ref)
    if m == 1:
        return jnp.max(ref[0] - f[:, 0])
    if m == 2:
        return _hv2(f, ref)
    if m == 3:
        return _hv3(f, ref)
    if key is None:
        raise ValueError(f"`key` is required for the Monte-Carlo hypervolume of {m} > 3 objectives.")
    return _hv_mc(key, f, ref, int(num_samples))


@jax.jit
def _hv2(f, ref):
    order = _sort.argsort(f[:, 0])
    x, y = f[order, 0], f[order, 1]
    ymin = jax.lax.cummin(y)
    width = jnp.concatenate([x[1:], ref[:1]]) - x
    return jnp.sum(width * (ref[1] - ymin))


@jax.jit
def _hv3(f, ref):
    order = _sort.argsort(f[:, 2])
    f = f[order]
    n = f.shape[0]
    z_next = jnp.concatenate([f[1:, 2], ref[2:]])

    def slab(k):  # area of the points up to k in (x, y), times the slab depth
        g = jnp.where((jnp.arange(n) <= k)[:, None], f[:, :2], ref[:2])
        return _hv2(g, ref[:2]) * (z_next[k] - f[k, 2])

    return jnp.sum(jax.lax.map(slab, jnp.arange(n), batch_size=min(n, 64)))


@functools.partial(jax.jit, static_argnums=3)
def _hv_mc(key, f, ref, num_samples):
    lo = jnp.min(f, axis=0)
    chunk = 4096
    reps = -(-num_samples // chunk)

    def count(k):
        u = jax.random.uniform(k, (chunk, f.shape[1]), f.dtype, lo, ref)
        return jnp.sum(jnp.any(jnp.all(f[None, :, :] <= u[:, None, :], axis=2), axis=1))

    hits = jnp.sum(jax.lax.map(count, jax.random.split(key, reps)))
    return jnp.prod(ref - lo) * hits / (reps * chunk)


def spacing(objectives: jax.Array) -> jax.Array:
    """Schott's spacing: the sample standard deviation of each point's L1 distance to its nearest other point.

    0 for evenly spaced fronts (lower is better); needs at least 2 points.

    Args:
      objectives: ``[N, M]``, ``N >= 2``.

    Returns:
      A scalar.

    Raises:
      ValueError: fewer than 2 points.

    References:
      Schott, "Fault Tolerant Design Using Single and Multicriteria Genetic Algorithm Optimization", MSc thesis,
      MIT, 1995.

    Examples:
      >>> objectives = jnp.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0]])  # minimised
      >>> float(jaxkit.evolution.spacing(objectives[:3]))  # (1, 4), (2, 2), (4, 1): all 3 apart in L1
      0.0
    """
    f = _check_objectives(objectives)
    if f.shape[0] < 2:
        raise ValueError(f"`objectives` needs at least 2 points for spacing, got {f.shape[0]}.")
    return _spacing(f)


@jax.jit
def _spacing(f):
    d = jnp.sum(jnp.abs(f[:, None, :] - f[None, :, :]), axis=-1)
    d = jnp.where(jnp.eye(f.shape[0], dtype=bool), jnp.inf, d)
    return jnp.std(jnp.min(d, axis=1), ddof=1)


def pure_diversity(objectives, p: float = 0.1) -> float:
    """Pure diversity PD, larger is more diverse (host / NumPy, float64).

    ``PD(X) = max_{s in X} [PD(X - s) + d(s, X - s)]`` with ``d`` the
    Minkowski dissimilarity of order ``p`` (0.1, the paper's choice) to the
    nearest other point, evaluated with the greedy procedure PlatEMO ships
    (the one the authors' group reports with; the recursion itself is
    exponential and the two differ in general): repeatedly take the point
    farthest from its nearest neighbour, link it to that neighbour unless
    they are already connected, add the distance, retire the point; ``N - 1``
    links in all.

    Args:
      objectives: ``[N, M]`` points.
      p: the Minkowski order of the dissimilarity.

    Returns:
      A Python float.

    Raises:
      ValueError: objectives not ``[N, M]`` or not finite, ``p <= 0``.

    References:
      Wang, Jin & Yao, "Diversity Assessment in Many-Objective Optimization", IEEE Trans. Cybern. 47(6),
      2017; PlatEMO's ``PD`` (the greedy evaluation).

    Examples:
      >>> objectives = jnp.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0]])  # minimised
      >>> jaxkit.evolution.pure_diversity(np.asarray(objectives[:3])) > 0
      True
    """
    if not (np.isfinite(p) and p > 0):
        raise ValueError(f"`p` must be a finite number > 0 (the Minkowski order), got {p}.")
    f = np.asarray(_c.array(np.asarray(objectives), "objectives", ndim=2, kind="r"), np.float64)  # host, float64
    if f.shape[0] < 1 or f.shape[1] < 1:
        raise ValueError(f"`objectives` must be [N, M] (one row of M objectives per member), got shape {f.shape}.")
    f = f[~np.isnan(f).any(axis=1)]  # like hypervolume: rows with NaN (failed evaluations) do not count
    n = f.shape[0]
    if n < 2:
        return 0.0
    dist = (np.abs(f[:, None, :] - f[None, :, :]) ** p).sum(-1) ** (1.0 / p)
    np.fill_diagonal(dist, np.inf)
    comp = np.arange(n)  # connected components (union-find without ranks; n is small)

    def root(i):
        while comp[i] != i:
            comp[i] = comp[comp[i]]
            i = comp[i]
        return i

    score = 0.0
    for _ in range(n - 1):
        while True:
            j = np.argmin(dist, axis=1)
            d = dist[np.arange(n), j]
            i = int(np.argmax(d))
            ji = int(j[i])
            if dist[ji, i] != -np.inf:
                dist[ji, i] = np.inf
            if dist[i, ji] != -np.inf:
                dist[i, ji] = np.inf
            if root(i) != root(ji):
                break
        comp[root(i)] = root(ji)
        dist[i, :] = -np.inf
        score += float(d[i])
    return score


def _leafwise_keys(key, tree):
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, [jax.random.fold_in(key, i) for i in range(len(leaves))])


def sbx_crossover(
    key: jax.Array,
    a: PyTree,
    b: PyTree,
    rate=0.9,
    *,
    eta: float = 15.0,
    var_rate: float = 0.5,
    exchange_rate: float = 0.5,
    lo: Any = -jnp.inf,
    hi: Any = jnp.inf,
    eps: float = 1e-14,
) -> tuple[PyTree, PyTree]:
    """Simulated binary crossover with bounds, as pymoo's ``SBX``.

    Each pair is crossed with probability ``rate``; in a crossed pair each
    variable with probability ``var_rate`` (unless the parents nearly agree)
    gets the bounded SBX spread of index ``eta``; the two children then swap
    with probability ``exchange_rate``; results are clipped to ``[lo, hi]``
    (scalars or arrays broadcastable to a gene; infinite bounds give the
    unbounded SBX).

    Args:
      key: PRNG key.
      a: first parents.
      b: second parents.
      rate: the per-pair probability.
      eta: the distribution index.
      var_rate: the per-variable probability.
      exchange_rate: the probability the children swap.
      lo: lower bounds.
      hi: upper bounds.
      eps: parents closer than this are not crossed.

    Returns:
      ``(children_a, children_b)``.

    Raises:
      ValueError: parents of different structures, probabilities outside ``[0, 1]``.

    References:
      Deb & Agrawal, "Simulated Binary Crossover for Continuous Search Space", Complex Systems 9, 1995; pymoo's
      ``SBX``.

    Examples:
      >>> a, b = jaxkit.evolution.sbx_crossover(jax.random.key(0), jnp.zeros((2, 3)), jnp.ones((2, 3)), lo=0.0, hi=1.0)
      >>> a.shape, bool(jnp.all((a >= 0) & (a <= 1)))
      ((2, 3), True)
    """
    ops.check_rate("rate", rate)
    ops.check_rate("var_rate", var_rate)
    _check_bounds(lo, hi)
    n = ops.check_pair("a", a, "b", b, kind="f")
    k_pair, k_leaf = jax.random.split(key)
    crossed = jax.random.bernoulli(k_pair, rate, (n,))
    keys = _leafwise_keys(k_leaf, a)

    def leaf(k, p1, p2):
        k_var, k_u, k_x = jax.random.split(k, 3)
        shape = p1.shape
        cross = jax.random.bernoulli(k_var, var_rate, shape) & (jnp.abs(p1 - p2) > eps)
        cross &= crossed.reshape((n,) + (1,) * (p1.ndim - 1))
        xl = jnp.broadcast_to(jnp.asarray(lo, p1.dtype), shape[1:])
        xu = jnp.broadcast_to(jnp.asarray(hi, p1.dtype), shape[1:])
        cross &= xl != xu
        y1, y2 = jnp.minimum(p1, p2), jnp.maximum(p1, p2)
        delta = jnp.where(cross, y2 - y1, 1.0)
        u = jax.random.uniform(k_u, shape, p1.dtype)

        def betaq(beta):
            alpha = 2.0 - beta ** -(eta + 1.0)
            low = (u * alpha) ** (1.0 / (eta + 1.0))
            high = (1.0 / jnp.maximum(2.0 - u * alpha, 1e-30)) ** (1.0 / (eta + 1.0))
            return jnp.where(u <= 1.0 / alpha, low, high)

        c1 = 0.5 * ((y1 + y2) - betaq(1.0 + 2.0 * (y1 - xl) / delta) * delta)
        c2 = 0.5 * ((y1 + y2) + betaq(1.0 + 2.0 * (xu - y2) / delta) * delta)
        sm = p1 < p2
        ch1, ch2 = jnp.where(sm, c1, c2), jnp.where(sm, c2, c1)
        swap = jax.random.bernoulli(k_x, exchange_rate, shape) ^ (p1 > p2)
        ch1, ch2 = jnp.where(swap, ch2, ch1), jnp.where(swap, ch1, ch2)
        out1 = jnp.clip(jnp.where(cross, ch1, p1), xl, xu)
        out2 = jnp.clip(jnp.where(cross, ch2, p2), xl, xu)
        return out1, out2

    pairs = jax.tree.map(leaf, keys, a, b)
    is_pair = lambda x: isinstance(x, tuple)
    return (jax.tree.map(lambda t: t[0], pairs, is_leaf=is_pair), jax.tree.map(lambda t: t[1], pairs, is_leaf=is_pair))


def polynomial_mutation(
    key: jax.Array, population: PyTree, rate=None, *, lo, hi, eta: float = 20.0, individual_rate: float = 1.0
) -> PyTree:
    """Polynomial mutation within ``[lo, hi]``, as pymoo's ``PM``.

    Each member is mutated with probability ``individual_rate`` (pymoo: 0.9);
    in a mutated member each variable with probability ``rate`` (default
    ``1 / number of variables`` of the leaf's gene) moves by the bounded
    polynomial perturbation of index ``eta``.

    Args:
      key: PRNG key.
      population: a pytree with a leading member axis.
      rate: the per-variable probability (default ``1 / n_var``).
      lo: lower bounds.
      hi: upper bounds.
      eta: the distribution index.
      individual_rate: the per-member probability.

    Returns:
      The population.

    Raises:
      ValueError: ``lo > hi``, probabilities outside ``[0, 1]``, NaN genes (when concrete).

    References:
      Deb & Goyal, "A Combined Genetic Adaptive Search (GeneAS) for Engineering Design", Computer Science and
      Informatics 26(4), 1996; pymoo's ``PM``.

    Examples:
      >>> out = jaxkit.evolution.polynomial_mutation(jax.random.key(0), jnp.full((2, 3), 0.5), lo=0.0, hi=1.0)
      >>> bool(jnp.all((out >= 0) & (out <= 1)))
      True
    """
    ops.check_rate("individual_rate", individual_rate)
    _check_bounds(lo, hi)
    for leaf_ in jax.tree.leaves(population):  # PM's polynomial is only defined inside the box
        if _c.is_concrete(leaf_) and _c.is_concrete(lo) and _c.is_concrete(hi):
            v = np.asarray(leaf_)
            if np.any(v < np.asarray(lo)) or np.any(v > np.asarray(hi)) or np.isnan(v).any():
                raise ValueError(
                    "`population` has values outside [lo, hi] (or NaN); polynomial mutation is "
                    "defined inside the box only (clip or repair first)."
                )
    n = ops.check_population(population, kind="f")
    k_ind, k_leaf = jax.random.split(key)
    who = jax.random.bernoulli(k_ind, individual_rate, (n,))
    keys = _leafwise_keys(k_leaf, population)

    def leaf(k, x):
        shape = x.shape
        r = 1.0 / max(1, math.prod(shape[1:])) if rate is None else rate
        ops.check_rate("rate", r)
        k_hit, k_u = jax.random.split(k)
        xl = jnp.broadcast_to(jnp.asarray(lo, x.dtype), shape[1:])
        xu = jnp.broadcast_to(jnp.asarray(hi, x.dtype), shape[1:])
        hit = jax.random.bernoulli(k_hit, r, shape) & who.reshape((n,) + (1,) * (x.ndim - 1)) & (xl != xu)
        span = jnp.where(xu > xl, xu - xl, 1.0)
        d1, d2 = (x - xl) / span, (xu - x) / span
        u = jax.random.uniform(k_u, shape, x.dtype)
        p = 1.0 / (eta + 1.0)
        low = (2.0 * u + (1.0 - 2.0 * u) * (1.0 - d1) ** (eta + 1.0)) ** p - 1.0
        high = 1.0 - (2.0 * (1.0 - u) + 2.0 * (u - 0.5) * (1.0 - d2) ** (eta + 1.0)) ** p
        y = jnp.clip(x + jnp.where(u <= 0.5, low, high) * span, xl, xu)
        return jnp.where(hit, y, x)

    return jax.tree.map(leaf, keys, population)


def dominance_tournament(key: jax.Array, objectives: jax.Array, crowding: jax.Array, num: int) -> jax.Array:
    """Indices of ``num`` binary-tournament winners, as pymoo's NSGA-II (``comp_by_dom_and_crowding``).

    Candidates are consecutive pairs of concatenated random permutations of the population (pymoo's
    ``TournamentSelection``); a candidate that dominates the other wins (minimisation), else the larger crowding
    distance, else a coin flip. A row with NaN loses against one without.

    Args:
      key: PRNG key.
      objectives: ``[N, M]`` minimised objectives.
      crowding: ``[N]`` crowding distances.
      num: winners.

    Returns:
      ``[num]`` int32 indices.

    Raises:
      ValueError: inputs of different lengths, ``num < 1``.

    References:
      Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II", IEEE TEVC 6(2), 2002; Blank & Deb,
      "pymoo: Multi-Objective Optimization in Python", IEEE Access 8, 2020 (``TournamentSelection``).

    Examples:
      >>> objectives = jnp.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0]])  # minimised
      >>> jaxkit.evolution.moo.dominance_tournament(jax.random.key(0), objectives,
      ...                                           jaxkit.evolution.crowding_distance(objectives), 4).shape
      (4,)
    """
    f = _check_objectives(objectives)
    n = f.shape[0]
    if int(num) < 1:
        raise ValueError(f"`num` must be >= 1, got {num}.")
    crowding = _c.array(crowding, "crowding", ndim=1, kind="r")
    if jnp.shape(crowding) != (n,):
        raise ValueError(
            f"`crowding` must have one value per row of `objectives` ({n}), got shape {jnp.shape(crowding)}."
        )
    objectives = f
    k_perm, k_tie = jax.random.split(key)
    reps = -(-2 * int(num) // n)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(k_perm, reps)).reshape(-1)
    cand = perms[: 2 * int(num)].reshape(int(num), 2)
    a, b = cand[:, 0], cand[:, 1]
    fa, fb = objectives[a], objectives[b]
    nan_a, nan_b = jnp.isnan(fa).any(-1), jnp.isnan(fb).any(-1)
    a_wins = _dominates(fa, fb) | (nan_b & ~nan_a)
    b_wins = _dominates(fb, fa) | (nan_a & ~nan_b)
    ca, cb = crowding[a], crowding[b]
    coin = jax.random.bernoulli(k_tie, 0.5, (int(num),))
    pick_a = jnp.where(
        a_wins, True, jnp.where(b_wins, False, jnp.where(ca > cb, True, jnp.where(cb > ca, False, coin)))
    )
    return jnp.where(pick_a, a, b)


def _check_bounds(lo, hi):
    _c.array(lo, "lo", kind="r")
    _c.array(hi, "hi", kind="r")
    if _c.is_concrete(lo) and _c.is_concrete(hi):
        lo_, hi_ = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        if np.isnan(lo_).any() or np.isnan(hi_).any() or np.any(lo_ > hi_):
            raise ValueError(f"`lo` must be <= `hi` (no NaN) in every variable, got lo={lo_} and hi={hi_}.")
