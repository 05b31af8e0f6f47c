"""Host loops over generations: a fused ``lax.scan`` for cheap fitness, a resumable loop for costly fitness."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from jaxkit import _sharding
from jaxkit.checkpoint import Run
from jaxkit.evolution.base import EvoState, Strategy
from jaxkit.evolution.evaluate import evaluate, warn_nan_members

__all__ = ["optimize", "run", "step"]


def _check_strategy(strategy) -> None:
    if not isinstance(strategy, Strategy):
        raise TypeError(
            f"`strategy` must be a jaxkit.evolution.Strategy (GA, DE, NSGA2, or a subclass of Strategy), "
            f"got {type(strategy).__name__}."
        )


def run(
    strategy, fitness_fn: Callable[[Any], jax.Array], key: jax.Array, generations: int, params: Any = None
) -> tuple[EvoState, jax.Array]:
    """All generations in one jitted ``lax.scan`` (single device): ``(final state, trace)``.

    The trace is what ``strategy.trace(state)`` returns per generation: the best fitness so far
    (:class:`~jaxkit.evolution.GA`, :class:`~jaxkit.evolution.DE`), the population's objectives
    ``[generations, N, M]`` (:class:`~jaxkit.evolution.NSGA2`).

    For fitness functions cheap enough that per-generation dispatch would
    dominate (benchmark functions, small models). Generation ``g`` uses
    ``fold_in(key, g)`` for ``ask``, as :func:`optimize` does, so both give the
    same result for the same key.

    Args:
      strategy: a strategy (:class:`~jaxkit.evolution.GA`, ...).
      fitness_fn: ``gene -> fitness`` (or objectives).
      key: PRNG key (generation ``g`` uses ``fold_in(key, g)``).
      generations: generations to run.
      params: the strategy's params (default: its defaults).

    Returns:
      ``(state, trace)``.

    Raises:
      ValueError: ``generations < 1``.
      TypeError: an object that is not a strategy.

    References:
      Lange, "evosax: JAX-based Evolution Strategies", GECCO 2023 Companion (ask / tell in ``lax.scan``).

    Examples:
      >>> sphere = lambda x: jnp.sum(x ** 2)
      >>> ga = jaxkit.evolution.GA(16, lambda key: jax.random.uniform(key, (3,), minval=-1.0, maxval=1.0))
      >>> state, trace = jaxkit.evolution.run(ga, sphere, jax.random.key(0), 30)
      >>> trace.shape, bool(trace[-1] <= trace[0])  # the best so far, per generation
      ((30,), True)
    """
    if int(generations) < 1:
        raise ValueError(f"`generations` must be >= 1, got {generations}.")
    _check_strategy(strategy)
    params = strategy._params(params)  # concrete checks here; the initial population is drawn inside the program
    return _run(strategy, fitness_fn, int(generations), key, params)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _run(strategy, fitness_fn, generations, key, params):
    # init inside the one program: drawn eagerly, its key folds, splits and samples were 7 more XLA compilations
    # (0.6 s of NSGA-II's 4 s first call on ZDT1)
    state = strategy.init(jax.random.fold_in(key, -1 % (2**31)), params)

    def body(state, g):
        pop, state = strategy.ask(jax.random.fold_in(key, g), state, params)
        state = strategy.tell(pop, jax.vmap(fitness_fn)(pop), state, params)
        return state, strategy.trace(state)

    return jax.lax.scan(body, state, jnp.arange(generations))


def step(
    strategy,
    fitness_fn: Callable[..., Any],
    key: jax.Array,
    state: Any,
    *args: Any,
    params: Any = None,
    has_aux: bool = False,
    devices=None,
    warn_nan: bool = True,
) -> tuple[Any, jax.Array]:
    """One generation -- ask, vmapped fitness, tell -- as one compiled program: ``(state, fitness)``.

    With ``has_aux=True`` the fitness returns ``(fitness, gene)`` and the
    returned genes replace the offspring before ``tell``: Lamarckian local
    search (e.g. a few optimiser steps on each new network, whose trained
    weights are kept). With several ``devices`` the offspring are padded to a
    multiple of their number and sharded along a one-axis mesh inside the
    program (``args`` replicated); the numbers match one device. The program
    is compiled once per (strategy, fitness, argument shapes). ``warn_nan``
    warns when members got NaN fitness (strategies rank them last) -- from inside the program
    (``jax.debug.callback``), so ``step`` returns without waiting for the generation to finish.

    Args:
      strategy: a strategy.
      fitness_fn: ``(gene, *args) -> fitness`` (``(fitness, gene)`` with ``has_aux``).
      key: the generation's PRNG key.
      state: the strategy's state.
      *args: shared fitness arguments.
      params: the strategy's params.
      has_aux: Lamarckian: the fitness also returns the trained gene.
      devices: devices to shard the offspring over (default: all).
      warn_nan: warn when members got NaN fitness.

    Returns:
      ``(state, fitness)``.

    Raises:
      TypeError: an object that is not a strategy.
      ValueError: a fitness of the wrong shape.

    References:
      Lange, "evosax: JAX-based Evolution Strategies", GECCO 2023 Companion; Whitley, Gordon & Mathias,
      "Lamarckian Evolution, the Baldwin Effect and Function Optimization", PPSN 1994.

    Examples:
      >>> sphere = lambda x: jnp.sum(x ** 2)
      >>> ga = jaxkit.evolution.GA(16, lambda key: jax.random.uniform(key, (3,), minval=-1.0, maxval=1.0))
      >>> state = ga.init(jax.random.key(0))
      >>> state, fitness = jaxkit.evolution.step(ga, sphere, jax.random.key(1), state)
      >>> fitness.shape
      (16,)
    """
    _check_strategy(strategy)
    params = strategy.default_params if params is None else params
    devices = tuple(devices) if devices is not None else tuple(jax.devices())
    mesh = _sharding.mesh(devices)
    if mesh is not None:
        repl = _sharding.replicated(mesh)
        args = tuple(jax.tree.map(lambda x: jax.device_put(x, repl), a) for a in args)
    state, fit = _step(strategy, fitness_fn, bool(has_aux), mesh, bool(warn_nan), key, state, params, *args)
    return state, fit


def _warn_from_device(fit) -> None:
    warn_nan_members(fit, "step", stacklevel=1)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _step(strategy, fitness_fn, has_aux, mesh, warn_nan, key, state, params, *args):
    pop, state = strategy.ask(key, state, params)
    n = jax.tree.leaves(pop)[0].shape[0]
    work = pop
    if mesh is not None:
        work, _ = _sharding.pad_to_multiple(pop, mesh.size)
        member = _sharding.members(mesh)
        work = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, member), work)
    out = jax.vmap(lambda g: fitness_fn(g, *args))(work)
    fit, new = out if has_aux else (out, pop)
    fit = fit[:n]
    if has_aux:
        new = jax.tree.map(lambda x: x[:n], new)
    if warn_nan:  # checked on the host when the values exist; no sync of the caller's Python loop
        jax.debug.callback(_warn_from_device, fit)
    return strategy.tell(new, fit, state, params), fit


def optimize(
    strategy,
    fitness_fn: Callable[..., jax.Array],
    key: jax.Array,
    generations: int,
    *args: Any,
    params: Any = None,
    checkpoint_dir: str | None = None,
    progress: bool = True,
    callback: Callable[[int, EvoState, jax.Array, jax.Array], None] | None = None,
    devices=None,
    config: dict | None = None,
    overwrite: bool = False,
) -> tuple[EvoState, list[dict]]:
    """Run ``generations`` of ask / :func:`evaluate` / tell; resumable, with a progress bar.

    Args:
      strategy: e.g. :class:`~jaxkit.evolution.GA`.
      fitness_fn: as for :func:`evaluate` (vmapped, sharded over ``devices``).
      *args: the fitness function's further arguments, as for :func:`evaluate`.
      key: generation ``g`` asks with ``fold_in(key, g)``, so a resumed run
        continues exactly as an uninterrupted one.
      checkpoint_dir: save ``(state, history)`` with orbax after every
        generation; an existing checkpoint there is resumed (only the missing
        generations run). The checkpoint carries a fingerprint (the strategy and
        its ``params``, ``key``, ``fitness_fn`` and the bytes of ``args``, plus
        the caller's ``config``); another run's checkpoint is a
        :class:`jaxkit.checkpoint.CheckpointMismatch` (``overwrite=True``
        starts over; ``generations`` may grow).
      callback: ``callback(g, state, population, fitness)`` after each generation.
      generations: generations to run in all (a resumed run runs the missing ones).
      params: the strategy's hyper-parameters (default: its defaults).
      progress: show a progress bar.
      devices: devices the fitness is sharded over (default: all).
      config: what the arguments do not show (part of the checkpoint's fingerprint).
      overwrite: start over in a ``checkpoint_dir`` holding another run.

    Returns:
      ``(state, history)``; ``history[g]`` has ``best`` (best ever), ``gen_best``, ``mean`` (NaN-aware) and
      ``fitness`` (this generation's list), or for strategies with a ``summary`` method
      (:class:`~jaxkit.evolution.NSGA2`) what it returns.

    Raises:
      ValueError: ``generations < 1``.
      TypeError: an object that is not a strategy.
      jaxkit.checkpoint.CheckpointMismatch: resuming a ``checkpoint_dir`` that holds another run.

    References:
      Lange, "evosax: JAX-based Evolution Strategies", GECCO 2023 Companion (the ask / tell interface).

    Examples:
      >>> sphere = lambda x: jnp.sum(x ** 2)
      >>> ga = jaxkit.evolution.GA(16, lambda key: jax.random.uniform(key, (3,), minval=-1.0, maxval=1.0))
      >>> state, history = jaxkit.evolution.optimize(ga, sphere, jax.random.key(0), 3, progress=False)
      >>> len(history), sorted(history[0])
      (3, ['best', 'fitness', 'gen_best', 'generation', 'mean'])
    """
    if int(generations) < 1:
        raise ValueError(f"`generations` must be >= 1, got {generations}.")
    _check_strategy(strategy)
    params = strategy.default_params if params is None else params
    state = strategy.init(jax.random.fold_in(key, -1 % (2**31)), params)
    run = Run(
        checkpoint_dir,
        state,
        {
            "strategy": strategy,
            "params": params,
            "key": key,
            "fitness_fn": fitness_fn,
            "args": list(args),
            **dict(config or {}),
        },
        total=int(generations),
        what="generation",
        overwrite=overwrite,
        verbose=progress,
    )
    state = jax.tree.map(jnp.asarray, run.state)
    history: list[dict] = list(run.metadata.get("history", []))
    start = len(history)
    bar = tqdm(
        range(start, int(generations)),
        initial=start,
        total=int(generations),
        desc="generation",
        unit="gen",
        disable=not progress,
        leave=False,
    )
    for g in bar:
        pop, state = strategy.ask(jax.random.fold_in(key, g), state, params)
        fit = evaluate(fitness_fn, pop, *args, devices=devices)
        state = strategy.tell(pop, fit, state, params)
        rec = {"generation": g, **strategy.summary(state, fit)}
        postfix = rec.pop("postfix", {})
        history.append(rec)
        bar.set_postfix(**postfix)
        if callback is not None:
            callback(g, state, pop, fit)
        run.save(g + 1, state, {"history": history})
    bar.close()
    run.close()
    return state, history
