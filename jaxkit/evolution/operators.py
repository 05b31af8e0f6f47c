"""Variation and selection operators: pure functions over populations.

A *population* is a pytree whose leaves have a leading population axis
``[N, ...]`` (a gene can be an array or a pytree of arrays, e.g. float
calibration factors beside integer criterion indices). Every stochastic
operator takes an explicit ``key`` first; rates may be Python floats (checked
to lie in [0, 1]) or traced scalars (inside ``jit``, unchecked).

Fitness is **minimised** by the selection operators (pass ``-fitness`` or use
a strategy's ``maximize=True``); NaN fitness ranks last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit import _sharding

__all__ = [
    "binomial_crossover",
    "categorical_mutation",
    "check_fitness",
    "check_pair",
    "check_population",
    "check_rate",
    "de_mutation",
    "drop",
    "elitist_merge",
    "gaussian_mutation",
    "popsize",
    "ranking_key",
    "replace_fraction",
    "tournament_selection",
    "truncation_selection",
    "uniform_crossover",
    "uniform_mutation",
]

PyTree = Any


def check_rate(name: str, rate) -> None:
    """Raise if a concrete probability lies outside ``[0, 1]`` (traced values pass unchecked).

    Args:
      name: the argument's name.
      rate: the probability.

    Returns:
      ``None``.

    Raises:
      ValueError: a concrete ``rate`` outside ``[0, 1]``.

    Examples:
      >>> jaxkit.evolution.operators.check_rate("rate", 1.5)
      Traceback (most recent call last):
      ...
      ValueError: `rate` must be a probability in [0, 1], got 1.5.
    """
    try:
        r = np.asarray(rate, np.float64)
    except jax.errors.TracerArrayConversionError:
        return
    if r.ndim == 0 and not (0.0 <= float(r) <= 1.0):
        raise ValueError(f"`{name}` must be a probability in [0, 1], got {float(r)}.")


def popsize(population: PyTree, name: str = "population") -> int:
    """The leading axis shared by every leaf of a population.

    Args:
      population: a pytree.
      name: the argument's name in error messages.

    Returns:
      ``N``.

    Raises:
      ValueError: leaves that disagree, or ``N < 1``.

    Examples:
      >>> jaxkit.evolution.operators.popsize({"a": jnp.zeros((4, 3)), "b": jnp.zeros(4)})
      4
    """
    return _sharding.leading_size(population, name)


def check_population(population: PyTree, name: str = "population", *, kind: str | None = "n") -> int:
    """``popsize`` plus, per leaf, a numeric dtype and -- when concrete -- no NaN in a floating leaf.

    A NaN gene is a broken member, not something to vary; traced leaves are only shape- and dtype-checked.

    Args:
      population: a pytree.
      name: the argument's name in error messages.
      kind: the allowed dtype kinds (see ``_checks.array``).

    Returns:
      The population size.

    Raises:
      ValueError: NaN genes, leaves that disagree in size.
      TypeError: a leaf of another dtype kind.

    Examples:
      >>> jaxkit.evolution.operators.check_population(jnp.zeros((4, 3)))
      4
    """
    n = popsize(population, name)
    for leaf in jax.tree.leaves(population):
        _c.array(leaf, name, kind=kind)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            _c.no_nan(leaf, name)
    return n


def check_pair(name_a: str, a: PyTree, name_b: str, b: PyTree, kind: str | None = "n") -> int:
    """Two populations of the same structure, shapes and size (parents, or a population and its replacements).

    Args:
      name_a: the first argument's name.
      a: the first population.
      name_b: the second argument's name.
      b: the second population.
      kind: the allowed dtype kinds.

    Returns:
      The population size.

    Raises:
      ValueError: structures, shapes or sizes that differ.

    Examples:
      >>> jaxkit.evolution.operators.check_pair("a", jnp.zeros((4, 3)), "b", jnp.ones((4, 3)))
      4
    """
    n = check_population(a, name_a, kind=kind)
    check_population(b, name_b, kind=kind)
    ta, tb = jax.tree.structure(a), jax.tree.structure(b)
    if ta != tb or any(np.shape(x) != np.shape(y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))):
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same structure and shapes (population size "
            f"included), got {jax.tree.map(np.shape, a)} and {jax.tree.map(np.shape, b)}."
        )
    return n


def check_fitness(fitness, name: str = "fitness", n: int | None = None, of: str = "population"):
    """A non-empty real ``[N]`` fitness vector (NaN allowed: a failed evaluation, ranked last).

    Args:
      fitness: the fitness.
      name: the argument's name in error messages.
      n: the expected length (``None``: any).
      of: what the fitness belongs to, for messages.

    Returns:
      The fitness as an array.

    Raises:
      ValueError: not ``[N]`` or empty, another length than ``n``.

    Examples:
      >>> jaxkit.evolution.operators.check_fitness(jnp.array([1.0, jnp.nan])).shape
      (2,)
    """
    f = _c.array(fitness, name, ndim=1, kind="r", nonempty=True)
    if n is not None and f.shape[0] != n:
        raise ValueError(f"`{name}` must have one value per member of `{of}` ({n}), got shape {tuple(f.shape)}.")
    return f


def _split_like(key, tree):
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, list(jax.random.split(key, len(leaves))))


def uniform_crossover(
    key: jax.Array,
    a: PyTree,
    b: PyTree,
    rate=1.0,
    *,
    swap_prob: float = 0.5,
    block_ndim: int | Sequence[int] | None = None,
) -> tuple[PyTree, PyTree]:
    """Uniform crossover of paired parents ``a[i]``, ``b[i]`` -> two children each.

    Each pair is crossed with probability ``rate`` (else copied). A crossed
    pair swaps units with probability ``swap_prob``; a unit is one element, or
    with ``block_ndim = d`` one index into the first ``d`` gene axes (``d = 1``
    swaps whole rows). ``block_ndim`` may be one int per leaf, and the swap
    decision is shared by every leaf with the same leading gene shape, so rows
    of several leaves (e.g. a layer's factors and its criteria) travel
    together.

    Args:
      key: PRNG key.
      a: first parents (a pytree with a leading pair axis).
      b: second parents, same structure.
      rate: the crossover probability of a pair.
      swap_prob: the swap probability of a unit.
      block_ndim: swap whole blocks of the first ``d`` gene axes (per leaf, or ``None``: elements).

    Returns:
      ``(children_a, children_b)``.

    Raises:
      ValueError: parents of different structures, probabilities outside ``[0, 1]``.

    References:
      Syswerda, "Uniform Crossover in Genetic Algorithms", ICGA 1989; He et al., "Blending Pruning Criteria for CNNs",
      ICANN 2021 (layer-wise crossover).

    Examples:
      >>> kids_a, kids_b = jaxkit.evolution.uniform_crossover(jax.random.key(0), jnp.zeros((2, 4)), jnp.ones((2, 4)))
      >>> print(kids_a + kids_b)  # every unit went to exactly one child
      [[1. 1. 1. 1.]
       [1. 1. 1. 1.]]
    """
    check_rate("rate", rate)
    check_rate("swap_prob", swap_prob)
    n = check_pair("a", a, "b", b)
    leaves_a, treedef = jax.tree.flatten(a)
    leaves_b = treedef.flatten_up_to(b)
    dims = [block_ndim] * len(leaves_a) if block_ndim is None or isinstance(block_ndim, int) else list(block_ndim)
    if len(dims) != len(leaves_a):
        raise ValueError(f"`block_ndim` must be an int or one per leaf ({len(leaves_a)}), got {block_ndim}.")
    k_pair, k_swap = jax.random.split(key)
    crossed = jax.random.bernoulli(k_pair, rate, (n,))
    cache = {}
    out_a, out_b = [], []
    for la, lb, d in zip(leaves_a, leaves_b, dims):
        unit = tuple(la.shape[1:] if d is None else la.shape[1 : 1 + d])
        if unit not in cache:  # one decision per unit shape: aligned rows move together
            cache[unit] = jax.random.bernoulli(jax.random.fold_in(k_swap, len(cache)), swap_prob, (n, *unit))
        swap = cache[unit] & crossed.reshape((n,) + (1,) * len(unit))
        swap = swap.reshape(swap.shape + (1,) * (la.ndim - swap.ndim))
        out_a.append(jnp.where(swap, lb, la))
        out_b.append(jnp.where(swap, la, lb))
    return jax.tree.unflatten(treedef, out_a), jax.tree.unflatten(treedef, out_b)


def de_mutation(key: jax.Array, population: jax.Array, differential_weight=0.5) -> jax.Array:
    """DE/rand/1 donors ``x_r1 + F (x_r2 - x_r3)`` with distinct ``r1, r2, r3`` different from ``i``.

    Args:
      key: PRNG key.
      population: ``[N, D]`` floats, ``N >= 4``.
      differential_weight: ``F``.

    Returns:
      ``[N, D]`` donors.

    Raises:
      ValueError: ``N < 4``, a population that is not ``[N, D]`` floats.

    References:
      Storn & Price, "Differential Evolution -- A Simple and Efficient Heuristic for Global Optimization over Continuous
      Spaces", J. Global Optim. 11, 1997.

    Examples:
      >>> jaxkit.evolution.de_mutation(jax.random.key(0), jnp.arange(8.0).reshape(4, 2), 0.5).shape
      (4, 2)
    """
    x = _c.array(population, "population", ndim=2, kind="f")
    _c.no_nan(x, "population")
    n = x.shape[0]
    if n < 4:
        raise ValueError(f"DE mutation needs a population of at least 4, got {n}.")
    keys = jax.random.split(key, n)

    def pick(k, i):
        others = jnp.where(jnp.arange(n - 1) >= i, jnp.arange(n - 1) + 1, jnp.arange(n - 1))
        return jax.random.choice(k, others, (3,), replace=False)

    r = jax.vmap(pick)(keys, jnp.arange(n))
    return x[r[:, 0]] + differential_weight * (x[r[:, 1]] - x[r[:, 2]])


def binomial_crossover(key: jax.Array, target: jax.Array, donor: jax.Array, crossover_rate=0.9) -> jax.Array:
    """DE's binomial crossover: each entry from ``donor`` with probability ``CR``, one forced entry per row.

    Args:
      key: PRNG key.
      target: ``[N, D]`` current members.
      donor: ``[N, D]`` donors (:func:`de_mutation`).
      crossover_rate: ``CR`` in ``[0, 1]``.

    Returns:
      ``[N, D]`` trial vectors.

    Raises:
      ValueError: shapes that differ, ``CR`` outside ``[0, 1]``.

    References:
      Storn & Price, "Differential Evolution -- A Simple and Efficient Heuristic for Global Optimization over Continuous
      Spaces", J. Global Optim. 11, 1997.

    Examples:
      >>> print(jaxkit.evolution.binomial_crossover(jax.random.key(0), jnp.zeros((2, 3)), jnp.ones((2, 3)), 0.0))
      [[0. 0. 1.]
       [0. 1. 0.]]
    """
    check_rate("crossover_rate", crossover_rate)
    _c.array(target, "target", ndim=2, kind="n")
    _c.array(donor, "donor", ndim=2, kind="n")
    check_pair("target", target, "donor", donor)
    n, d = jnp.shape(target)
    if d == 0:
        raise ValueError("`target` has no variables (shape (N, 0)).")
    k1, k2 = jax.random.split(key)
    take = jax.random.bernoulli(k1, crossover_rate, (n, d))
    forced = jax.nn.one_hot(jax.random.randint(k2, (n,), 0, d), d, dtype=bool)
    return jnp.where(take | forced, donor, target)


def _mutate_where(key, population, rate, draw, kind="n"):
    check_rate("rate", rate)
    check_population(population, kind=kind)
    out = []
    leaves, treedef = jax.tree.flatten(population)
    for i, x in enumerate(leaves):
        k = jax.random.fold_in(key, i)
        k_hit, k_new = jax.random.split(k)
        hit = jax.random.bernoulli(k_hit, rate, x.shape)
        out.append(jnp.where(hit, draw(k_new, x), x))
    return jax.tree.unflatten(treedef, out)


def gaussian_mutation(key: jax.Array, population: PyTree, rate=0.1, sigma=0.1, *, lo=None, hi=None) -> PyTree:
    """Each float entry gets ``N(0, sigma^2)`` noise with probability ``rate``, then is clipped to ``[lo, hi]``.

    Args:
      key: PRNG key.
      population: a pytree with a leading member axis.
      rate: the mutation probability (``None``: 0.1).
      sigma: the noise's standard deviation.
      lo: lower bound (``None``: none).
      hi: upper bound (``None``: none).

    Returns:
      The population.

    Raises:
      ValueError: ``rate`` outside ``[0, 1]``, a negative ``sigma``, NaN genes (when concrete).

    References:
      Goldberg, *Genetic Algorithms in Search, Optimization and Machine Learning*, Addison-Wesley 1989 (real-coded
      mutation); Bäck, 1996.

    Examples:
      >>> out = jaxkit.evolution.gaussian_mutation(jax.random.key(0), jnp.zeros((2, 3)), 1.0, 0.1, lo=-0.05, hi=0.05)
      >>> bool(jnp.all(jnp.abs(out) <= jnp.float32(0.05)))
      True
    """
    rate = 0.1 if rate is None else rate
    if _c.is_concrete(sigma) and not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"`sigma` must be a finite number >= 0, got {sigma}.")

    def draw(k, x):
        y = x + sigma * jax.random.normal(k, x.shape, x.dtype)
        return jnp.clip(y, lo, hi) if lo is not None or hi is not None else y

    return _mutate_where(key, population, rate, draw, kind="f")


def uniform_mutation(key: jax.Array, population: PyTree, rate=0.1, lo=0.0, hi=1.0) -> PyTree:
    """Each float entry is redrawn from ``U[lo, hi]`` with probability ``rate`` (``None``: 0.1).

    Args:
      key: PRNG key.
      population: a pytree with a leading member axis.
      rate: the redraw probability.
      lo: lower bound.
      hi: upper bound.

    Returns:
      The population.

    Raises:
      ValueError: ``rate`` outside ``[0, 1]``, ``lo > hi``.

    References:
      Goldberg, *Genetic Algorithms in Search, Optimization and Machine Learning*, Addison-Wesley 1989.

    Examples:
      >>> out = jaxkit.evolution.uniform_mutation(jax.random.key(0), jnp.zeros((2, 3)), rate=1.0, lo=0.5, hi=1.0)
      >>> bool(jnp.all((out >= 0.5) & (out <= 1.0)))
      True
    """
    rate = 0.1 if rate is None else rate
    if _c.is_concrete(lo) and _c.is_concrete(hi) and np.any(np.asarray(lo) > np.asarray(hi)):
        raise ValueError(f"`lo` must be <= `hi`, got lo={lo} and hi={hi}.")
    return _mutate_where(
        key, population, rate, lambda k, x: jax.random.uniform(k, x.shape, x.dtype, minval=lo, maxval=hi), kind="f"
    )


def categorical_mutation(key: jax.Array, population: jax.Array, rate, allowed: jax.Array) -> jax.Array:
    """Redraw integer entries, with probability ``rate``, uniformly among the allowed categories.

    ``population``: ``[N, *S]`` ints; ``allowed``: ``[*S, M]`` bools, the
    categories each position may take (e.g. the criteria of one cluster of one
    layer). Every position must allow at least one category; a redrawn entry
    may equal the old one.

    Args:
      key: PRNG key.
      population: ``[N, *S]`` integer genes.
      rate: the redraw probability.
      allowed: ``[*S, M]`` bools.

    Returns:
      ``[N, *S]`` genes.

    Raises:
      ValueError: a position with no allowed category, shapes that do not match, ``rate`` outside ``[0, 1]``.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021 (mutating the criterion picked from a cluster).

    Examples:
      >>> allowed = jnp.array([[True, False, True], [False, True, False]])  # position 1 can only be category 1
      >>> genes = jaxkit.evolution.categorical_mutation(jax.random.key(0), jnp.zeros((3, 2), jnp.int32), 1.0, allowed)
      >>> bool(jnp.all(allowed[jnp.arange(2), genes]))
      True
    """
    check_rate("rate", rate)
    x = _c.array(population, "population", min_ndim=1, kind="i")
    popsize(x)
    allowed = _c.array(allowed, "allowed", min_ndim=1, kind="r")
    _c.no_nan(allowed, "allowed")
    if _c.is_concrete(allowed) and not np.all(np.any(np.asarray(allowed) != 0, axis=-1)):
        raise ValueError("`allowed` must allow at least one category at every position.")
    allowed = jnp.asarray(allowed, bool)
    if allowed.shape[:-1] != x.shape[1:]:
        raise ValueError(f"`allowed` must be [{', '.join(map(str, x.shape[1:]))}, M], got shape {allowed.shape}.")
    k_hit, k_new = jax.random.split(key)
    logits = jnp.where(allowed, 0.0, -jnp.inf)
    new = jax.random.categorical(k_new, jnp.broadcast_to(logits, x.shape + allowed.shape[-1:]))
    hit = jax.random.bernoulli(k_hit, rate, x.shape)
    return jnp.where(hit, new.astype(x.dtype), x)


def drop(key: jax.Array, population: PyTree, rate, value=0.0) -> PyTree:
    """Set each entry to ``value`` with probability ``rate`` (the blending EA's "drop" of a factor).

    Args:
      key: PRNG key.
      population: a pytree with a leading member axis.
      rate: the drop probability.
      value: the value dropped entries take.

    Returns:
      The population.

    Raises:
      ValueError: ``rate`` outside ``[0, 1]``, NaN genes (when concrete).

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Sec. 3.3.

    Examples:
      >>> print(jaxkit.evolution.drop(jax.random.key(0), jnp.ones((2, 3)), 1.0))
      [[0. 0. 0.]
       [0. 0. 0.]]
    """
    return _mutate_where(key, population, rate, lambda k, x: jnp.full_like(x, value))


def replace_fraction(key: jax.Array, population: PyTree, fresh: PyTree, fraction) -> PyTree:
    """Replace ``round(fraction * N)`` randomly chosen members by the members of ``fresh`` (same shape).

    Args:
      key: PRNG key.
      population: ``N`` members.
      fresh: ``N`` fresh members (only the chosen ones are used).
      fraction: in ``[0, 1]``.

    Returns:
      The population.

    Raises:
      ValueError: populations of different shapes, ``fraction`` outside ``[0, 1]``.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021, Sec. 3.3 (fresh genes).

    Examples:
      >>> out = jaxkit.evolution.replace_fraction(jax.random.key(0), jnp.zeros((4, 2)), jnp.ones((4, 2)), 0.5)
      >>> float(out[:, 0].sum())  # two of four members replaced
      2.0
    """
    check_rate("fraction", fraction)
    n = check_pair("population", population, "fresh", fresh)
    count = jnp.round(jnp.asarray(fraction, jnp.float32) * n)
    take = jnp.argsort(jax.random.uniform(key, (n,))) < count
    return jax.tree.map(lambda x, f: jnp.where(take.reshape((n,) + (1,) * (x.ndim - 1)), f, x), population, fresh)


def ranking_key(fitness: jax.Array, maximize: bool = False) -> jax.Array:
    """The minimisation key: ``fitness`` (or ``-fitness``), NaN mapped to ``+inf`` so it ranks last.

    Args:
      fitness: ``[N]`` fitness.
      maximize: negate (larger is better).

    Returns:
      ``[N]`` keys.

    Examples:
      >>> print(jaxkit.evolution.ranking_key(jnp.array([2.0, jnp.nan, 1.0])))
      [ 2. inf  1.]
    """
    f = jnp.asarray(_c.array(fitness, "fitness", kind="r"))  # elementwise: any shape
    if f.ndim and f.size == 0:
        raise ValueError(f"`fitness` is empty (shape {f.shape}).")
    f = -f if maximize else f
    return jnp.where(jnp.isnan(f), jnp.inf, f)


def tournament_selection(key: jax.Array, fitness: jax.Array, num: int, size: int = 2) -> jax.Array:
    """Indices of ``num`` winners of ``size``-way tournaments (with replacement; lower fitness wins).

    Args:
      key: PRNG key.
      fitness: ``[N]`` fitness (NaN loses).
      num: winners.
      size: contestants per tournament.

    Returns:
      ``[num]`` int32 indices.

    Raises:
      ValueError: ``size < 1`` or ``num < 1``.

    References:
      Goldberg, *Genetic Algorithms in Search, Optimization and Machine Learning*, Addison-Wesley 1989.

    Examples:
      >>> jaxkit.evolution.tournament_selection(jax.random.key(0), jnp.array([3.0, 1.0, 2.0, 0.5]), 3).shape
      (3,)
    """
    f = ranking_key(check_fitness(fitness))
    n = f.shape[0]
    if not 1 <= int(size) <= n:
        raise ValueError(f"Tournament `size` must be in [1, {n}], got {size}.")
    cand = jax.random.randint(key, (int(num), int(size)), 0, n)
    return cand[jnp.arange(int(num)), jnp.argmin(f[cand], axis=1)]


def truncation_selection(fitness: jax.Array, num: int) -> jax.Array:
    """Indices of the ``num`` best (lowest) members, best first; ties keep the earlier index.

    Args:
      fitness: ``[N]`` fitness (NaN last).
      num: members kept, ``<= N``.

    Returns:
      ``[num]`` int32 indices.

    Raises:
      ValueError: ``num`` outside ``[1, N]``.

    References:
      Goldberg, *Genetic Algorithms in Search, Optimization and Machine Learning*, Addison-Wesley 1989.

    Examples:
      >>> print(jaxkit.evolution.truncation_selection(jnp.array([3.0, 1.0, 2.0, 1.0]), 2))
      [1 3]
    """
    fitness = check_fitness(fitness)
    if not 1 <= int(num) <= fitness.shape[0]:
        raise ValueError(f"`num` must be in [1, {fitness.shape[0]}] (the population size), got {num}.")
    return jnp.argsort(ranking_key(fitness), stable=True)[: int(num)]


def elitist_merge(
    population: PyTree, fitness: jax.Array, offspring: PyTree, offspring_fitness: jax.Array
) -> tuple[PyTree, jax.Array]:
    """(mu + lambda) survival: the best ``N`` of parents and offspring, best first (parents win ties).

    Args:
      population: ``N`` parents.
      fitness: ``[N]`` their fitness (lower is better; NaN last).
      offspring: ``M`` children of the same structure.
      offspring_fitness: ``[M]``.

    Returns:
      ``(population, fitness)`` of the ``N`` survivors.

    Raises:
      ValueError: populations of different structures, fitness of the wrong length.

    References:
      Goldberg, *Genetic Algorithms in Search, Optimization and Machine Learning*, Addison-Wesley 1989; Bäck,
      *Evolutionary Algorithms in Theory and Practice*, 1996 (the (mu + lambda) scheme).

    Examples:
      >>> parents, kids = jnp.array([[0.0], [1.0]]), jnp.array([[5.0], [6.0]])
      >>> pop, fit = jaxkit.evolution.elitist_merge(parents, jnp.array([2.0, 1.0]), kids, jnp.array([1.0, 0.5]))
      >>> print(pop.ravel(), fit)
      [6. 1.] [0.5 1. ]
    """
    n = check_population(population, kind=None)
    check_fitness(fitness, n=n)
    m = check_population(offspring, "offspring", kind=None)
    check_fitness(offspring_fitness, "offspring_fitness", n=m, of="offspring")
    if jax.tree.structure(population) != jax.tree.structure(offspring) or any(
        np.shape(p)[1:] != np.shape(o)[1:] for p, o in zip(jax.tree.leaves(population), jax.tree.leaves(offspring))
    ):
        raise ValueError("`population` and `offspring` must have the same structure and member shapes.")
    allf = jnp.concatenate([jnp.asarray(fitness), jnp.asarray(offspring_fitness)])
    keep = truncation_selection(allf, n)
    pop = jax.tree.map(lambda p, o: jnp.concatenate([p, o])[keep], population, offspring)
    return pop, allf[keep]
