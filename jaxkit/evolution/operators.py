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
    """Raise if a concrete probability lies outside [0, 1] (traced values pass unchecked)."""
    try:
        r = np.asarray(rate, np.float64)
    except jax.errors.TracerArrayConversionError:
        return
    if r.ndim == 0 and not (0.0 <= float(r) <= 1.0):
        raise ValueError(f"`{name}` must be a probability in [0, 1], got {float(r)}.")


def popsize(population: PyTree, name: str = "population") -> int:
    """The leading axis shared by every leaf (``ValueError`` naming ``name`` if they disagree or it is < 1)."""
    return _sharding.leading_size(population, name)


def check_population(population: PyTree, name: str = "population", *, kind: str | None = "n") -> int:
    """``popsize`` plus, per leaf, a numeric dtype (``kind``, see ``_checks.array``) and -- when concrete -- no
    NaN in a floating leaf (a NaN gene is a broken member, not something to vary). Returns the population size.
    Traced leaves are only shape- and dtype-checked."""
    n = popsize(population, name)
    for leaf in jax.tree.leaves(population):
        _c.array(leaf, name, kind=kind)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            _c.no_nan(leaf, name)
    return n


def check_pair(name_a: str, a: PyTree, name_b: str, b: PyTree, kind: str | None = "n") -> int:
    """Two populations of the same structure, shapes and size (parents, or a population and its replacements)."""
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
    """A non-empty real ``[N]`` vector (NaN allowed: a failed evaluation, ranked last)."""
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

    ``population``: ``[N, D]`` floats, ``N >= 4``.
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
    """DE's binomial crossover: each entry from ``donor`` with probability ``CR``, one forced entry per row."""
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
    """Each float entry gets ``N(0, sigma^2)`` noise with probability ``rate`` (``None``: the default 0.1), then
    clipped to ``[lo, hi]``."""
    rate = 0.1 if rate is None else rate

    def draw(k, x):
        y = x + sigma * jax.random.normal(k, x.shape, x.dtype)
        return jnp.clip(y, lo, hi) if lo is not None or hi is not None else y

    return _mutate_where(key, population, rate, draw, kind="f")


def uniform_mutation(key: jax.Array, population: PyTree, rate=0.1, lo=0.0, hi=1.0) -> PyTree:
    """Each float entry is redrawn from ``U[lo, hi]`` with probability ``rate`` (``None``: the default 0.1)."""
    rate = 0.1 if rate is None else rate
    return _mutate_where(
        key, population, rate, lambda k, x: jax.random.uniform(k, x.shape, x.dtype, minval=lo, maxval=hi), kind="f"
    )


def categorical_mutation(key: jax.Array, population: jax.Array, rate, allowed: jax.Array) -> jax.Array:
    """Redraw integer entries, with probability ``rate``, uniformly among the allowed categories.

    ``population``: ``[N, *S]`` ints; ``allowed``: ``[*S, M]`` bools, the
    categories each position may take (e.g. the criteria of one cluster of one
    layer). Every position must allow at least one category; a redrawn entry
    may equal the old one.
    """
    check_rate("rate", rate)
    x = _c.array(population, "population", min_ndim=1, kind="i")
    popsize(x)
    allowed = _c.array(allowed, "allowed", min_ndim=1, kind="r")
    _c.no_nan(allowed, "allowed")
    allowed = jnp.asarray(allowed, bool)
    if allowed.shape[:-1] != x.shape[1:]:
        raise ValueError(f"`allowed` must be [{', '.join(map(str, x.shape[1:]))}, M], got shape {allowed.shape}.")
    k_hit, k_new = jax.random.split(key)
    logits = jnp.where(allowed, 0.0, -jnp.inf)
    new = jax.random.categorical(k_new, jnp.broadcast_to(logits, x.shape + allowed.shape[-1:]))
    hit = jax.random.bernoulli(k_hit, rate, x.shape)
    return jnp.where(hit, new.astype(x.dtype), x)


def drop(key: jax.Array, population: PyTree, rate, value=0.0) -> PyTree:
    """Set each entry to ``value`` with probability ``rate`` (the blending EA's "drop" of a factor)."""
    return _mutate_where(key, population, rate, lambda k, x: jnp.full_like(x, value))


def replace_fraction(key: jax.Array, population: PyTree, fresh: PyTree, fraction) -> PyTree:
    """Replace ``round(fraction * N)`` randomly chosen members by the members of ``fresh`` (same shape)."""
    check_rate("fraction", fraction)
    n = check_pair("population", population, "fresh", fresh)
    count = jnp.round(jnp.asarray(fraction, jnp.float32) * n)
    take = jnp.argsort(jax.random.uniform(key, (n,))) < count
    return jax.tree.map(lambda x, f: jnp.where(take.reshape((n,) + (1,) * (x.ndim - 1)), f, x), population, fresh)


def ranking_key(fitness: jax.Array, maximize: bool = False) -> jax.Array:
    """Minimisation key: ``fitness`` (or ``-fitness``), NaN mapped to ``+inf`` so it ranks last."""
    f = jnp.asarray(_c.array(fitness, "fitness", kind="r"))  # elementwise: any shape
    if f.ndim and f.size == 0:
        raise ValueError(f"`fitness` is empty (shape {f.shape}).")
    f = -f if maximize else f
    return jnp.where(jnp.isnan(f), jnp.inf, f)


def tournament_selection(key: jax.Array, fitness: jax.Array, num: int, size: int = 2) -> jax.Array:
    """Indices of ``num`` winners of ``size``-way tournaments (with replacement; lower fitness wins)."""
    f = ranking_key(check_fitness(fitness))
    n = f.shape[0]
    if not 1 <= int(size) <= n:
        raise ValueError(f"Tournament `size` must be in [1, {n}], got {size}.")
    cand = jax.random.randint(key, (int(num), int(size)), 0, n)
    return cand[jnp.arange(int(num)), jnp.argmin(f[cand], axis=1)]


def truncation_selection(fitness: jax.Array, num: int) -> jax.Array:
    """Indices of the ``num`` best (lowest) members, best first; ties keep the earlier index."""
    return jnp.argsort(ranking_key(check_fitness(fitness)), stable=True)[: int(num)]


def elitist_merge(
    population: PyTree, fitness: jax.Array, offspring: PyTree, offspring_fitness: jax.Array
) -> tuple[PyTree, jax.Array]:
    """(mu + lambda) survival: the best ``N`` of parents and offspring, best first (parents win ties)."""
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
