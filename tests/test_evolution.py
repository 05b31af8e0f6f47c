import functools
import os
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO

from jaxkit import evolution as evo


def _pop(n=6, d=5, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return {"P": jax.random.uniform(k1, (n, 4, 3)), "S": jax.random.randint(k2, (n, 4, 3), 0, 12)}


def test_uniform_crossover_swaps_aligned_rows_and_keeps_shapes():
    a, b = _pop(seed=0), _pop(seed=1)
    ca, cb = evo.uniform_crossover(jax.random.key(2), a, b, 1.0, block_ndim=1)
    chex.assert_trees_all_equal_shapes_and_dtypes(ca, a)
    for i in range(6):
        for row in range(4):
            from_a = bool(jnp.all(ca["P"][i, row] == a["P"][i, row]))
            from_b = bool(jnp.all(ca["P"][i, row] == b["P"][i, row]))
            assert from_a != from_b  # a whole row from exactly one parent ...
            src = a if from_a else b
            assert bool(jnp.all(ca["S"][i, row] == src["S"][i, row]))  # ... and its criteria travel with it
            other = b if from_a else a
            assert bool(jnp.all(cb["P"][i, row] == other["P"][i, row]))  # the second child gets the rest
    same_a, _ = evo.uniform_crossover(jax.random.key(2), a, b, 0.0)  # rate 0: copies
    chex.assert_trees_all_equal(same_a, a)
    # element-wise: about half the entries swap
    ea, _ = evo.uniform_crossover(jax.random.key(3), {"x": jnp.zeros((200, 50))}, {"x": jnp.ones((200, 50))}, 1.0)
    assert 0.45 < float(ea["x"].mean()) < 0.55


def test_mutations_keep_ranges_and_cluster_membership():
    key = jax.random.key(0)
    x = jax.random.uniform(key, (300, 20))
    g = evo.gaussian_mutation(key, x, 0.5, 1.0, lo=0.0, hi=1.0)
    assert float(g.min()) >= 0 and float(g.max()) <= 1 and 0.4 < float(jnp.mean(g != x)) < 0.6
    u = evo.uniform_mutation(key, x, 1.0, -2.0, -1.0)
    assert float(u.min()) >= -2 and float(u.max()) <= -1
    d = evo.drop(key, x, 0.05)
    assert 0.03 < float(jnp.mean(d == 0)) < 0.07 and bool(jnp.all((d == 0) | (d == x)))
    allowed = jnp.asarray(np.random.default_rng(0).random((4, 3, 12)) < 0.3).at[..., 0].set(True)
    s = jnp.zeros((500, 4, 3), jnp.int32)
    m = evo.categorical_mutation(key, s, 1.0, allowed)
    hits = np.asarray(jnp.take_along_axis(jnp.broadcast_to(allowed, (500, 4, 3, 12)), m[..., None], -1))
    assert hits.all()  # every redrawn criterion lies in its cluster
    counts = np.bincount(np.asarray(m[:, 0, 0]), minlength=12)
    assert set(np.flatnonzero(counts)) == set(np.flatnonzero(np.asarray(allowed[0, 0])))  # and all of them occur
    r = evo.replace_fraction(key, x[:50], jnp.full((50, 20), -1.0), 0.08)
    assert int(jnp.sum(r[:, 0] == -1)) == 4  # round(0.08 * 50)


def test_de_operators():
    x = jnp.arange(40.0).reshape(8, 5) * jnp.asarray([1, 0, 0, 0, 0])[None]
    donor = evo.de_mutation(jax.random.key(0), jnp.arange(8.0)[:, None] * 10 ** jnp.arange(3.0), 0.5)
    assert donor.shape == (8, 3)
    t = evo.binomial_crossover(jax.random.key(1), x, x + 100, 0.0)
    assert bool(jnp.all(jnp.sum(t != x, axis=1) == 1))  # CR = 0: exactly the forced entry comes from the donor
    # donors use three distinct members other than i: with x_j = 2^j the indices are recoverable
    pop = (2.0 ** jnp.arange(8.0))[:, None]
    d = np.asarray(evo.de_mutation(jax.random.key(5), pop, 1.0))[:, 0]
    for i, v in enumerate(d):
        found = [
            (r1, r2, r3)
            for r1 in range(8)
            for r2 in range(8)
            for r3 in range(8)
            if len({i, r1, r2, r3}) == 4 and 2.0**r1 + 2.0**r2 - 2.0**r3 == v
        ]
        assert found


def test_selection_minimises_and_ranks_nan_last():
    f = jnp.asarray([3.0, jnp.nan, 1.0, 2.0, 0.5])
    assert list(np.asarray(evo.truncation_selection(f, 5))) == [4, 2, 3, 0, 1]
    assert list(np.asarray(evo.truncation_selection(evo.ranking_key(f, maximize=True), 5))) == [0, 3, 2, 4, 1]
    # contestants drawn with replacement: the best wins iff drawn, P = 1 - (4/5)^size; NaN only if all are NaN
    win = np.asarray(evo.tournament_selection(jax.random.key(0), f, 4000, size=5))
    assert abs(np.mean(win == 4) - (1 - 0.8**5)) < 0.03 and np.mean(win == 1) < 0.002
    win2 = np.asarray(evo.tournament_selection(jax.random.key(1), f, 4000, size=2))
    assert abs(np.mean(win2 == 4) - 0.36) < 0.03 and abs(np.mean(win2 == 1) - 0.04) < 0.015
    pop, fit = evo.elitist_merge(
        jnp.arange(3.0), jnp.asarray([5.0, 1.0, 3.0]), jnp.arange(10.0, 13.0), jnp.asarray([2.0, jnp.nan, 0.0])
    )
    assert list(np.asarray(pop)) == [12.0, 1.0, 10.0] and list(np.asarray(fit)) == [0.0, 1.0, 2.0]


def _sphere(x):
    return jnp.sum(x**2)


def _rastrigin(x):
    return 10 * x.shape[0] + jnp.sum(x**2 - 10 * jnp.cos(2 * jnp.pi * x))


def _uniform(k):
    return jax.random.uniform(k, (10,), minval=-5.12, maxval=5.12)


def _ga_mutate(k, p, r):
    return evo.gaussian_mutation(k, p, r, 0.3, lo=-5.12, hi=5.12)


def test_sphere_and_rastrigin_10d_converge():
    de = evo.DE(50, _uniform, lo=-5.12, hi=5.12)
    s, best = evo.run(de, _sphere, jax.random.key(0), 300)
    assert float(s.best_fitness) < 1e-8 and bool(jnp.all(jnp.diff(best) <= 0))  # elitist: never gets worse
    s, _ = evo.run(de, _rastrigin, jax.random.key(0), 600, evo.DEParams(0.5, 0.1))  # small CR: separable function
    assert float(s.best_fitness) < 1e-3, float(s.best_fitness)  # the global minimum (0), not a local one (>= 1)
    ga = evo.GA(50, _uniform, mutate=_ga_mutate)
    s, _ = evo.run(ga, _sphere, jax.random.key(0), 400)
    assert float(s.best_fitness) < 1e-3
    s, _ = evo.run(ga, _rastrigin, jax.random.key(0), 600)
    assert float(s.best_fitness) < 5.0, float(s.best_fitness)  # random start: ~100; within 5 of the optimum
    assert float(jnp.sum(s.best_member**2)) < 5.0


def test_fixed_key_reproduces_and_resume_continues_exactly(tmp_path):
    ga = evo.GA(8, _uniform, mutate=_ga_mutate, maximize=True)
    f = lambda x: -_rastrigin(x)
    s1, h1 = evo.optimize(ga, f, jax.random.key(7), 6, progress=False)
    s2, h2 = evo.optimize(ga, f, jax.random.key(7), 6, progress=False)
    chex.assert_trees_all_equal(s1, s2)
    assert h1 == h2 and h1[-1]["best"] == float(s1.best_fitness) == max(s1.fitness)
    # interrupted after 3 generations, resumed to 6: identical to the uninterrupted run and to run()
    evo.optimize(ga, f, jax.random.key(7), 3, checkpoint_dir=str(tmp_path), progress=False)
    s3, h3 = evo.optimize(ga, f, jax.random.key(7), 6, checkpoint_dir=str(tmp_path), progress=False)
    chex.assert_trees_all_close(s3, s1)
    assert [h["best"] for h in h3] == [h["best"] for h in h1]
    s4, _ = evo.run(ga, f, jax.random.key(7), 6)
    chex.assert_trees_all_close(s4.population, s1.population)


def test_ask_tell_compile_once():
    ga = evo.GA(6, _uniform)
    st = ga.init(jax.random.key(0))
    ask, tell = evo.base._ask, evo.base._tell  # one jitted ask and tell shared by every strategy, keyed by config
    before = ask._cache_size(), tell._cache_size()
    for g in range(4):
        pop, st = ga.ask(jax.random.key(g), st)
        st = ga.tell(pop, jax.vmap(_sphere)(pop), st)
    assert (ask._cache_size() - before[0], tell._cache_size() - before[1]) == (1, 1)
    assert int(st.generation) == 4


def test_nan_fitness_is_ranked_last_and_reported():
    ga = evo.GA(4, _uniform)
    st = ga.init(jax.random.key(0))
    pop, st = ga.ask(jax.random.key(1), st)
    with pytest.warns(RuntimeWarning, match="2 of 4 fitness values are NaN"):
        fit = evo.evaluate(
            lambda x: jnp.where(x[0] > 0, jnp.nan, _sphere(x)),
            jax.tree.map(lambda x: x.at[:2, 0].set(jnp.asarray([1.0, 1.0])).at[2:, 0].set(-1.0), pop),
        )
    st = ga.tell(pop, fit, st)
    assert int(st.nan_count) == 2 and not np.isnan(float(st.best_fitness))
    assert np.isnan(np.asarray(st.fitness)[-2:]).all()  # sorted best first, NaN at the end


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: evo.GA(1, _uniform), "popsize"),
        (lambda: evo.DE(3, _uniform), "popsize"),
        (lambda: evo.GA(4, _uniform, selection="roulette"), "selection"),
        (lambda: evo.GA(4, _uniform).init(jax.random.key(0), evo.GAParams(crossover_rate=1.5)), "crossover_rate"),
        (lambda: evo.uniform_crossover(jax.random.key(0), _pop(), _pop(), -0.1), "rate"),
        (lambda: evo.drop(jax.random.key(0), _pop(), 2.0), "rate"),
        (lambda: evo.evaluate(lambda g: g["P"], _pop()), r"one scalar \(or one vector of objectives\) per member"),
        (lambda: evo.evaluate(lambda g: g["missing"], _pop()), "failed on one member"),
        (
            lambda: evo.GA(4, _uniform).tell(
                jnp.zeros((4, 10)), jnp.zeros((4, 2)), evo.GA(4, _uniform).init(jax.random.key(0))
            ),
            "shape \\(4,\\)",
        ),
        (
            lambda: evo.categorical_mutation(
                jax.random.key(0), jnp.zeros((2, 3), jnp.int32), 0.1, jnp.ones((4, 5), bool)
            ),
            "allowed",
        ),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_sharded_evaluation_matches_one_device():
    """Two forced CPU devices, a population of 7 (not a multiple of 2), a fitness that fine-tunes a model."""
    code = textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np, optax
        from jaxkit import evolution as evo, models
        assert len(jax.devices()) == 2, jax.devices()
        model = models.MLP(features=(8, 3))
        x = jax.random.normal(jax.random.key(0), (32, 4)); y = (x[:, 0] > 0).astype(jnp.int32)
        v = model.init(jax.random.key(1), x)

        def fitness(gene, v, data):  # gene scales the init, then 10 SGD steps inside the fitness
            x, y = data
            p = jax.tree.map(lambda w: w * gene[0], v["params"])
            def step(p, _):
                g = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(
                    model.apply({"params": p}, x), y).mean())(p)
                return jax.tree.map(lambda a, b: a - gene[1] * b, p, g), None
            p, _ = jax.lax.scan(step, p, None, length=10)
            return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, x), y).mean()

        pop = jax.random.uniform(jax.random.key(2), (7, 2), minval=0.1, maxval=1.0)
        one = evo.evaluate(fitness, pop, v, (x, y), devices=jax.devices()[:1])
        two = evo.evaluate(fitness, pop, v, (x, y))
        assert two.shape == (7,), two.shape
        np.testing.assert_allclose(np.asarray(two), np.asarray(one), rtol=1e-5, atol=1e-6)
        print("OK", np.asarray(two))
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("as_partial", [False, True])
def test_chunked_and_one_at_a_time_evaluation_match_the_whole_vmap(as_partial):
    """batch_size = 1 is a plain compiled lax.map (no vmap of one member), k a lax.map over vmapped chunks; a
    population of 7 (not a multiple of 3); a plain function and a Partial (the compiled-as-data path)."""
    w = jax.random.normal(jax.random.key(0), (5, 3))

    def fitness(scale, gene, w):
        return jnp.sum(jnp.tanh(gene @ w) ** 2) * scale

    fit = jax.tree_util.Partial(fitness, 2.0) if as_partial else functools.partial(fitness, 2.0)
    pop = jax.random.normal(jax.random.key(1), (7, 5))
    ref = np.asarray([fitness(2.0, g, w) for g in pop])
    for b in (None, 1, 3):
        np.testing.assert_allclose(np.asarray(evo.evaluate(fit, pop, w, batch_size=b)), ref, rtol=1e-5)


def test_run_is_one_compiled_program_initial_population_included(caplog):
    """``run`` draws the initial population inside its one program: drawn eagerly, the key fold, split and sample
    were 7 more XLA compilations (0.6 s of NSGA-II's first call on ZDT1). Same result as the host loop."""
    import logging

    key = jax.random.key(3)  # made before logging: the user's own key is not run's compilation
    ga = evo.GA(13, lambda k: jax.random.normal(k, (5,)))  # a configuration no other test compiles
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        state, trace = evo.run(ga, lambda x: jnp.sum(x**2), key, 4)
        jax.block_until_ready(trace)
    compiled = [r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()]
    assert len(compiled) == 1 and "_run" in compiled[0], compiled
    ref, _ = evo.optimize(ga, lambda x: jnp.sum(x**2), key, 4, progress=False)
    np.testing.assert_allclose(float(state.best_fitness), float(ref.best_fitness), rtol=1e-6)


def test_a_new_fitness_lambda_each_call_is_reported_once():
    """A lambda made every generation recompiles every time (programs are cached per function object): evaluate
    says so once, with the fix; the same function object, or a Partial, never warns."""
    import warnings

    pop = jnp.ones((4, 3))

    def same(g):
        return jnp.sum(g) * 2.0

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(4):
            evo.evaluate(same, pop)
            evo.evaluate(jax.tree_util.Partial(lambda g, w: jnp.sum(g * w), jnp.ones(3)), pop)
    with pytest.warns(RuntimeWarning, match="new function object on each call") as rec:
        for _ in range(5):
            evo.evaluate(lambda g: jnp.sum(g) + 0.5, pop)
    assert len([w for w in rec if "new function object" in str(w.message)]) == 1


def test_default_chunk_keeps_the_compiled_temporaries_within_the_memory_budget():
    """Each member builds a 1 MiB intermediate: 64 members at once need ~64 MiB of temporaries; with an 8 MiB
    budget evaluate picks a power-of-two chunk whose compiled program fits (XLA's memory analysis), with the
    same fitness as the whole population at once (two different programs summing 2^18 float32 terms in different
    orders: rtol 1e-4)."""
    import importlib

    ev = importlib.import_module("jaxkit.evolution.evaluate")  # the module (the face exports the function)

    def fit(g, w):
        return jnp.sum(jnp.tanh(jnp.outer(g, w * g)) @ w)  # a materialised [512, 512] float32 per member

    pop = jax.random.normal(jax.random.key(0), (64, 512))
    w = jnp.linspace(0.5, 1.5, 512)
    whole = evo.evaluate(fit, pop, w, memory_budget=float("inf"))
    assert ev.temp_bytes(ev._vmapped(fit, 1), pop, w) > 32 * 2**20
    budget = 8 * 2**20
    chunked = evo.evaluate(fit, pop, w, memory_budget=budget)
    np.testing.assert_allclose(np.asarray(chunked), np.asarray(whole), rtol=1e-4)
    key = next(k for k in ev._AUTO if k[0][0] is fit and k[3] == budget)
    k = ev._AUTO[key]
    assert k is not None and k & (k - 1) == 0 and 1 <= k <= 8
    assert ev.temp_bytes(ev._vmapped(fit, 1, batch_size=k), pop, w) <= budget
    with pytest.raises(ValueError, match="memory_budget"):
        evo.evaluate(fit, pop, w, memory_budget=0)


def test_step_reports_nan_fitness_from_inside_the_program():
    """step's NaN warning comes from a debug callback in the compiled generation (no host sync in step itself):
    it is raised by the time the generation's values are read, and never without NaN."""
    import warnings

    ga = evo.GA(4, _uniform)
    st = ga.init(jax.random.key(0))
    with pytest.warns(RuntimeWarning, match="step: 4 of 4 fitness values are NaN"):
        st2, fit = evo.step(ga, lambda x: jnp.nan * _sphere(x), jax.random.key(1), st)
        assert np.isnan(np.asarray(fit)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, fit = evo.step(ga, _sphere, jax.random.key(2), st)
        np.asarray(fit)
        _, fit = evo.step(ga, lambda x: jnp.nan * _sphere(x), jax.random.key(1), st, warn_nan=False)
        np.asarray(fit)


def test_operator_settings_are_checked():
    k = jax.random.key(0)
    with pytest.raises(ValueError, match="at least one category at every position"):
        evo.categorical_mutation(k, jnp.zeros((2, 1), jnp.int32), 0.5, jnp.zeros((1, 3), bool))
    with pytest.raises(ValueError, match="`sigma` must be a finite number >= 0"):
        evo.gaussian_mutation(k, jnp.zeros((2, 2)), 0.5, -1.0)
    with pytest.raises(ValueError, match=r"`num` must be in \[1, 3\]"):
        evo.truncation_selection(jnp.zeros(3), 5)
    with pytest.raises(ValueError, match="`lo` must be <= `hi`"):
        evo.uniform_mutation(k, jnp.zeros((2, 2)), 0.5, 1.0, 0.0)
    with pytest.raises(ValueError, match="`p` must be a finite number > 0"):
        evo.pure_diversity(np.ones((3, 2)), p=0.0)
    with pytest.raises(ValueError, match="`num` must be >= 1"):
        evo.moo.dominance_tournament(k, jnp.ones((3, 2)), jnp.zeros(3), 0)
    with pytest.raises(ValueError, match="`multiple` must be >= 1"):
        evo.pad_population(jnp.zeros(3), 0)
    ga = evo.GA(4, lambda key: jax.random.uniform(key, (2,)))
    with pytest.raises(ValueError, match="multi-objective"):
        evo.pareto_front(ga.init(k))
