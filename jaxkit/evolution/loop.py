"""Host loops over generations: a fused ``lax.scan`` for cheap fitness, a resumable loop for costly fitness."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxkit.evolution.evaluate import evaluate, pad_population, warn_nan_members
from jaxkit.evolution.strategies import EvoState

__all__ = ["run", "optimize", "step"]


def run(strategy, fitness_fn: Callable[[Any], jax.Array], key: jax.Array, generations: int,
        params: Any = None) -> tuple[EvoState, jax.Array]:
    """All generations in one jitted ``lax.scan`` (single device): ``(final state, trace)``.

    The trace is the best fitness per generation, or what ``strategy.trace(state)``
    returns when the strategy defines it (:class:`~jaxkit.evolution.NSGA2`: the
    population's objectives, ``[generations, N, M]``).

    For fitness functions cheap enough that per-generation dispatch would
    dominate (benchmark functions, small models). Generation ``g`` uses
    ``fold_in(key, g)`` for ``ask``, as :func:`optimize` does, so both give the
    same result for the same key.
    """
    if int(generations) < 1:
        raise ValueError(f"`generations` must be >= 1, got {generations}.")
    params = strategy.default_params if params is None else params
    state = strategy.init(jax.random.fold_in(key, -1 % (2**31)), params)
    return _run(strategy, fitness_fn, int(generations), key, state, params)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _run(strategy, fitness_fn, generations, key, state, params):
    def body(state, g):
        pop, state = strategy.ask(jax.random.fold_in(key, g), state, params)
        state = strategy.tell(pop, jax.vmap(fitness_fn)(pop), state, params)
        return state, strategy.trace(state) if hasattr(strategy, "trace") else state.best_fitness

    return jax.lax.scan(body, state, jnp.arange(generations))


def step(strategy, fitness_fn: Callable[..., Any], key: jax.Array, state: Any, *args: Any, params: Any = None,
         has_aux: bool = False, devices=None, warn_nan: bool = True) -> tuple[Any, jax.Array]:
    """One generation -- ask, vmapped fitness, tell -- as one compiled program: ``(state, fitness)``.

    With ``has_aux=True`` the fitness returns ``(fitness, gene)`` and the
    returned genes replace the offspring before ``tell``: Lamarckian local
    search (e.g. a few optimiser steps on each new network, whose trained
    weights are kept). With several ``devices`` the offspring are padded to a
    multiple of their number and sharded along a one-axis mesh inside the
    program (``args`` replicated); the numbers match one device. The program
    is compiled once per (strategy, fitness, argument shapes). ``warn_nan``
    warns when members got NaN fitness (strategies rank them last).
    """
    params = strategy.default_params if params is None else params
    devices = tuple(devices) if devices is not None else tuple(jax.devices())
    mesh = Mesh(np.asarray(devices), ("pop",)) if len(devices) > 1 else None
    if mesh is not None:
        repl = NamedSharding(mesh, PartitionSpec())
        args = tuple(jax.tree.map(lambda x: jax.device_put(x, repl), a) for a in args)
    state, fit = _step(strategy, fitness_fn, bool(has_aux), mesh, key, state, params, *args)
    if warn_nan:
        warn_nan_members(fit, "step", stacklevel=2)
    return state, fit


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _step(strategy, fitness_fn, has_aux, mesh, key, state, params, *args):
    pop, state = strategy.ask(key, state, params)
    n = jax.tree.leaves(pop)[0].shape[0]
    work = pop
    if mesh is not None:
        work, _ = pad_population(pop, mesh.size)
        member = NamedSharding(mesh, PartitionSpec("pop"))
        work = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, member), work)
    out = jax.vmap(lambda g: fitness_fn(g, *args))(work)
    fit, new = out if has_aux else (out, pop)
    fit = fit[:n]
    if has_aux:
        new = jax.tree.map(lambda x: x[:n], new)
    return strategy.tell(new, fit, state, params), fit


def optimize(strategy, fitness_fn: Callable[..., jax.Array], key: jax.Array, generations: int, *args: Any,
             params: Any = None, checkpoint_dir: str | None = None, progress: bool = True,
             callback: Callable[[int, EvoState, jax.Array, jax.Array], None] | None = None,
             devices=None, config: dict | None = None, overwrite: bool = False) -> tuple[EvoState, list[dict]]:
    """Run ``generations`` of ask / :func:`evaluate` / tell; resumable, with a progress bar.

    Args:
      strategy: e.g. :class:`~jaxkit.evolution.GA`; ``params`` its hyper-parameters.
      fitness_fn, *args: as for :func:`evaluate` (vmapped, sharded over ``devices``).
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

    Returns ``(state, history)``; ``history[g]`` has ``best`` (best ever),
    ``gen_best``, ``mean`` (NaN-aware) and ``fitness`` (this generation's
    list), or for strategies with a ``summary`` method
    (:class:`~jaxkit.evolution.NSGA2`) what it returns.
    """
    if int(generations) < 1:
        raise ValueError(f"`generations` must be >= 1, got {generations}.")
    params = strategy.default_params if params is None else params
    state = strategy.init(jax.random.fold_in(key, -1 % (2**31)), params)
    from jaxkit.checkpoint import Run  # noqa: PLC0415

    run = Run(checkpoint_dir, state, {"strategy": strategy, "params": params, "key": key, "fitness_fn": fitness_fn,
                                      "args": list(args), **dict(config or {})},
              total=int(generations), what="generation", overwrite=overwrite, verbose=progress)
    state = jax.tree.map(jnp.asarray, run.state)
    history: list[dict] = list(run.metadata.get("history", []))
    from tqdm.auto import tqdm  # noqa: PLC0415

    start = len(history)
    bar = tqdm(range(start, int(generations)), initial=start, total=int(generations), desc="generation",
               unit="gen", disable=not progress, leave=False)
    for g in bar:
        pop, state = strategy.ask(jax.random.fold_in(key, g), state, params)
        fit = evaluate(fitness_fn, pop, *args, devices=devices)
        state = strategy.tell(pop, fit, state, params)
        if hasattr(strategy, "summary"):
            rec = {"generation": g, **strategy.summary(state, fit)}
            postfix = rec.pop("postfix", {})
        else:
            f = np.asarray(fit, np.float64)
            ok = f[~np.isnan(f)]
            rec = {"generation": g, "best": float(state.best_fitness),
                   "gen_best": float((ok.max() if strategy.maximize else ok.min()) if ok.size else math.nan),
                   "mean": float(ok.mean()) if ok.size else math.nan,
                   "fitness": [None if math.isnan(v) else float(v) for v in f]}
            postfix = {"best": f"{rec['best']:.4g}"}
        history.append(rec)
        bar.set_postfix(**postfix)
        if callback is not None:
            callback(g, state, pop, fit)
        run.save(g + 1, state, {"history": history})
    bar.close()
    run.close()
    return state, history
