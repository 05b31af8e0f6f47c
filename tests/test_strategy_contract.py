"""The ``init / ask / tell`` contract, checked for every strategy in the registry (evosax's tests/test_algorithms
pattern): a strategy registered without an entry in ``BUILD`` fails ``test_every_registered_strategy_is_tested``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkit import evolution as evo

DIM = 3


def _sample(k):
    return jax.random.uniform(k, (DIM,), minval=-2.0, maxval=2.0)


def _sphere(x):
    return jnp.sum(x**2)


def _two(x):
    return jnp.stack([jnp.sum(x**2), jnp.sum((x - 1.0) ** 2)])


# name -> (build(**overrides), fitness of one member)
BUILD = {
    "ga": (lambda **kw: evo.GA(8, _sample, **kw), _sphere),
    "de": (lambda **kw: evo.DE(8, _sample, **kw), _sphere),
    "nsga2": (lambda **kw: evo.NSGA2(8, 2, _sample, **kw), _two),
}
NAMES = sorted(evo.STRATEGIES)


def test_every_registered_strategy_is_tested():
    assert set(BUILD) == set(evo.STRATEGIES)
    for name, cls in evo.STRATEGIES.items():
        assert issubclass(cls, evo.Strategy) and cls.name == name


def _generations(strategy, fitness, key, n, state=None):
    params = strategy.default_params
    state = strategy.init(jax.random.fold_in(key, 99), params) if state is None else state
    for g in range(n):
        pop, state = strategy.ask(jax.random.fold_in(key, g), state, params)
        state = strategy.tell(pop, jax.vmap(fitness)(pop), state, params)
    return state


@pytest.mark.parametrize("name", NAMES)
def test_first_ask_is_the_initial_population_and_tell_counts_generations(name):
    build, fitness = BUILD[name]
    s = build()
    state = s.init(jax.random.key(0))
    assert int(state.generation) == 0 and int(state.nan_count) == 0
    pop, state2 = s.ask(jax.random.key(1), state)
    assert state2 is state  # ask does not change the state
    chex.assert_trees_all_close(pop, state.population)
    assert evo.operators.popsize(pop) == s.num_offspring_per_ask
    state = s.tell(pop, jax.vmap(fitness)(pop), state)
    assert int(state.generation) == 1
    pop2, _ = s.ask(jax.random.key(2), state)
    assert not np.allclose(np.asarray(pop2), np.asarray(state.population))  # variation from generation 1 on
    chex.assert_trees_all_equal_shapes_and_dtypes(pop2, pop)


@pytest.mark.parametrize("name", NAMES)
def test_ask_and_tell_compile_once_per_configuration(name):
    build, fitness = BUILD[name]
    s = build()
    state = _generations(s, fitness, jax.random.key(0), 1)
    before = evo.base._ask._cache_size(), evo.base._tell._cache_size()
    _generations(s, fitness, jax.random.key(1), 3, state)
    _generations(build(), fitness, jax.random.key(2), 2, state)  # an equal configuration shares the programs
    assert (evo.base._ask._cache_size(), evo.base._tell._cache_size()) == before


@pytest.mark.parametrize("name", NAMES)
def test_maximizing_the_negated_fitness_is_minimizing_the_fitness(name):
    build, fitness = BUILD[name]
    lo = _generations(build(), fitness, jax.random.key(3), 4)
    hi = _generations(build(maximize=True), lambda x: -fitness(x), jax.random.key(3), 4)
    chex.assert_trees_all_close(hi.population, lo.population)


@pytest.mark.parametrize("name", NAMES)
def test_nan_fitness_is_counted_and_ranked_last(name):
    build, fitness = BUILD[name]
    s = build()
    state = s.init(jax.random.key(0))
    pop, state = s.ask(jax.random.key(1), state)
    f = jax.vmap(fitness)(pop).at[0].set(jnp.nan)
    state = s.tell(pop, f, state)
    assert int(state.nan_count) == 1
    values = state.fitness if f.ndim == 1 else state.objectives
    # the NaN member survives only if nothing else could fill the population (it cannot win a place here)
    if s.popsize < 2 * s.num_offspring_per_ask:
        assert np.isnan(np.asarray(values)).any(axis=tuple(range(1, values.ndim))).sum() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_tell_rejects_wrong_shapes_with_a_clear_error(name):
    build, fitness = BUILD[name]
    s = build()
    state = s.init(jax.random.key(0))
    pop, state = s.ask(jax.random.key(1), state)
    f = jax.vmap(fitness)(pop)
    with pytest.raises(ValueError, match="`population` must have 8 members"):
        s.tell(jax.tree.map(lambda x: x[:5], pop), f[:5], state)
    with pytest.raises(ValueError, match=r"`(fitness|objectives)` must have shape"):
        s.tell(pop, f[:, None] if f.ndim == 1 else f[:, :1], state)
    with pytest.raises(ValueError, match="params.crossover_rate"):
        s.ask(jax.random.key(2), state, s.default_params.replace(crossover_rate=1.5))


@pytest.mark.parametrize("name", NAMES)
def test_run_scan_equals_the_host_loop(name):
    """``run`` (one lax.scan) and ``optimize`` (host loop) give the same state for the same key (float32,
    same ops in two programs: tolerance 1e-6)."""
    build, fitness = BUILD[name]
    s = build()
    state, trace = evo.run(s, fitness, jax.random.key(5), 3)
    assert trace.shape[0] == 3
    state2, history = evo.optimize(s, lambda g: fitness(g), jax.random.key(5), 3, progress=False)
    assert len(history) == 3
    chex.assert_trees_all_close(state2.population, state.population, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_make_builds_the_registered_class(name):
    build, _ = BUILD[name]
    ref = build()
    args = (8, 2, _sample) if name == "nsga2" else (8, _sample)
    assert evo.make(name, *args) == ref


def test_single_objective_best_never_gets_worse():
    for name in ("ga", "de"):
        build, fitness = BUILD[name]
        s = build()
        state, trace = evo.run(s, fitness, jax.random.key(0), 8)
        t = np.asarray(trace)
        assert np.all(np.diff(t) <= 0), (name, t)
        assert float(state.best_fitness) == pytest.approx(float(jnp.min(jax.vmap(fitness)(state.population))))


def test_registry_errors():
    with pytest.raises(ValueError, match="`name` must be one of"):
        evo.make("cma", 8, _sample)
    with pytest.raises(TypeError, match="Strategy subclass"):
        evo.register("x")(object)
    with pytest.raises(ValueError, match="already registered"):
        evo.register("ga")(evo.DE)
    with pytest.raises(TypeError, match="`strategy` must be a jaxkit.evolution.Strategy"):
        evo.run(object(), _sphere, jax.random.key(0), 2)
