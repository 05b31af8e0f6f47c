"""Host loops over generations: a fused ``lax.scan`` for cheap fitness, a resumable loop for costly fitness."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit.evolution.evaluate import evaluate
from jaxkit.evolution.strategies import EvoState

__all__ = ["run", "optimize"]


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


def optimize(strategy, fitness_fn: Callable[..., jax.Array], key: jax.Array, generations: int, *args: Any,
             params: Any = None, checkpoint_dir: str | None = None, progress: bool = True,
             callback: Callable[[int, EvoState, jax.Array, jax.Array], None] | None = None,
             devices=None) -> tuple[EvoState, list[dict]]:
    """Run ``generations`` of ask / :func:`evaluate` / tell; resumable, with a progress bar.

    Args:
      strategy: e.g. :class:`~jaxkit.evolution.GA`; ``params`` its hyper-parameters.
      fitness_fn, *args: as for :func:`evaluate` (vmapped, sharded over ``devices``).
      key: generation ``g`` asks with ``fold_in(key, g)``, so a resumed run
        continues exactly as an uninterrupted one.
      checkpoint_dir: save ``(state, history)`` with orbax after every
        generation; an existing checkpoint there is resumed (only the missing
        generations run).
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
    history: list[dict] = []
    ckpt = None
    if checkpoint_dir is not None:
        from jaxkit.checkpoint import Checkpointer  # noqa: PLC0415

        ckpt = Checkpointer(checkpoint_dir, max_to_keep=1)
        if ckpt.latest_step() is not None:
            state, meta = ckpt.restore(state)
            state = jax.tree.map(jnp.asarray, state)
            history = list(meta.get("history", []))
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
        if ckpt is not None:
            ckpt.save(g, state, {"history": history})
    bar.close()
    if ckpt is not None:
        ckpt.close()
    return state, history
