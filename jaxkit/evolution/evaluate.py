"""Population fitness: ``vmap`` on one device, the population sharded over several.

:func:`evaluate` maps ``fitness_fn(gene, *args) -> scalar`` over a population
(a pytree with a leading member axis) in one jitted call. With more than one
device (GPUs, TPU cores, or CPU devices forced with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``) the population is
padded to a multiple of the device count, laid out along a one-axis
``jax.sharding.Mesh`` and each device evaluates its slice; the extra ``args``
(data, pre-trained weights) are replicated. One device takes the plain path
and gives the same numbers. Under ``jax.distributed`` the mesh spans every
process's devices; each process passes the same population (same key) and gets
the full fitness vector back.

The fitness may itself train a network (a fine-tune loop in ``lax.scan``):
it is vmapped like any other function.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jaxkit import _sharding
from jaxkit._memory import MEMORY_BUDGET, temp_bytes
from jaxkit.evolution import operators as ops

__all__ = ["evaluate", "pad_population"]

PyTree = Any


def pad_population(population: PyTree, multiple: int) -> tuple[PyTree, int]:
    """Pad the member axis to a multiple of ``multiple`` by repeating the last member; returns ``(padded, n)``.

    Args:
      population: a pytree with a leading member axis.
      multiple: the multiple (e.g. the device count).

    Returns:
      ``(padded, n)`` with ``n`` the real size.

    Raises:
      ValueError: ``multiple < 1``.

    Examples:
      >>> padded, n = jaxkit.evolution.pad_population(jnp.arange(3.0), 4)
      >>> print(padded, n)
      [0. 1. 2. 2.] 3
    """
    if int(multiple) < 1:
        raise ValueError(f"`multiple` must be >= 1, got {multiple}.")
    return _sharding.pad_to_multiple(population, multiple)


_CHECKED: set = set()  # fitness signatures whose output shape was already checked
_FN_OBJECTS: dict = {}  # code object -> ids of the distinct function objects seen with it (recompilations)
_WARNED: set = set()
RECOMPILE_WARNING_AFTER = 3


_AUTO: dict = {}  # (signature, members, devices, budget) -> chosen batch size


def _auto_batch(make, call, key, members: int, budget: float):
    """``None`` (the whole population at once) if its program's temporaries fit ``budget``, else the largest
    power-of-two chunk whose program fits (or 1); decided once per key."""
    if key in _AUTO:
        return _AUTO[key]
    whole = temp_bytes(make(None), *call)
    choice = None
    if whole > budget and members > 1:
        k = 1 << max(0, int(np.floor(np.log2(max(1.0, members * budget / whole)))))
        k = min(k, members // 2 or 1)
        while k > 1 and temp_bytes(make(k), *call) > budget:
            k //= 2
        choice = k
    if len(_AUTO) > 256:
        _AUTO.clear()
    _AUTO[key] = choice
    return choice


def _warn_new_function_objects(fitness_fn) -> None:
    """Warn once per code object when new function objects of the same code keep arriving: each compiles anew
    (the compiled programs are cached per function object; a lambda made every generation recompiles every time)."""
    code = getattr(fitness_fn, "__code__", None)
    if code is None or code in _WARNED:
        return
    seen = _FN_OBJECTS.setdefault(code, set())
    seen.add(id(fitness_fn))
    if len(seen) >= RECOMPILE_WARNING_AFTER:
        _WARNED.add(code)
        warnings.warn(
            f"evaluate: `fitness_fn` is a new function object on each call ({len(seen)} so far, same code: "
            f"{code.co_name} in {code.co_filename}:{code.co_firstlineno}), so each call compiles again. Pass the same "
            "function every generation, or a jax.tree_util.Partial whose arrays are data (one compilation).",
            RuntimeWarning,
            stacklevel=3,
        )


def _map(f, pop, batch_size):
    """``lax.map`` over chunks of ``batch_size`` vmapped members; ``1``: a plain ``lax.map`` (a vmap of one member
    still rewrites every convolution and matmul into its batched form: 1.33 vs 1.12 s for the digits-VGG fitness
    of 16 genes on 2 CPU cores)."""
    return jax.lax.map(f, pop) if batch_size == 1 else jax.lax.map(f, pop, batch_size=batch_size)


@functools.lru_cache(maxsize=64)
def _vmapped(fitness_fn, n_args, in_shardings=None, out_shardings=None, batch_size=None):
    if batch_size is None:
        f = jax.vmap(fitness_fn, in_axes=(0,) + (None,) * n_args)
    else:  # lax.map over chunks of batch_size vmapped members

        def f(pop, *args):
            return _map(lambda g: fitness_fn(g, *args), pop, batch_size)

    if in_shardings is None:
        return jax.jit(f)
    return jax.jit(f, in_shardings=in_shardings, out_shardings=out_shardings)


@functools.lru_cache(maxsize=64)
def _vmapped_tree(n_args, in_shardings=None, out_shardings=None, batch_size=None):
    """As :func:`_vmapped` for a fitness that is a pytree (``jax.tree_util.Partial``): its data are arguments of
    the compiled program, its function part of the cache key, so new data of the same shapes reuse the program."""

    def f(fn, pop, *args):
        if batch_size is None:
            return jax.vmap(lambda g: fn(g, *args))(pop)
        return _map(lambda g: fn(g, *args), pop, batch_size)

    if in_shardings is None:
        return jax.jit(f)
    return jax.jit(f, in_shardings=in_shardings, out_shardings=out_shardings)


def evaluate(
    fitness_fn: Callable[..., jax.Array],
    population: PyTree,
    *args: Any,
    devices: Sequence[Any] | None = None,
    batch_size: int | None = None,
    warn_nan: bool = True,
    memory_budget: float | None = None,
) -> jax.Array:
    """``[N]`` fitness (``[N, M]`` objectives) of every member: ``vmap(fitness_fn)(population, *args)``, sharded.

    Args:
      fitness_fn: ``(gene, *args) -> scalar`` (or ``[M]`` objectives for
        multi-objective strategies); jitted and vmapped here (cached
        per function, so pass the same function object every generation). A
        ``jax.tree_util.Partial`` is passed to the compiled program as data: a new
        Partial of the same function and shapes (e.g. the next seed's problem)
        reuses the compilation.
      population: pytree with a leading member axis ``N``.
      *args: shared inputs, broadcast to every member (replicated on devices).
      devices: default ``jax.devices()`` (all, every process); one device
        gives the unsharded path.
      batch_size: ``None`` (default) vmaps the whole population (per device) when the compiled program's
        temporaries fit ``memory_budget``, else the largest power-of-two chunk that fits (measured with XLA's
        memory analysis of the compiled program, decided once per signature); ``k``
        vmaps ``k`` members at a time and loops over the chunks inside the
        same jitted call (``lax.map``) -- less memory, and on CPU, where a
        small network's training step is already compute-bound, often faster
        (``1`` is a compiled sequential loop).
      memory_budget: bytes of temporaries per device for the automatic chunk (default
        :data:`MEMORY_BUDGET`, 1 GiB; ``float("inf")``: always the whole population).
      warn_nan: warn (with the count and indices) when some fitness is NaN;
        strategies rank NaN last.

    Returns:
      ``[N]`` fitness (``[N, M]`` objectives).

    Raises:
      ValueError: a ``fitness_fn`` that does not return one scalar or vector per member, or, under
        ``jax.distributed``, processes passing different populations or arguments (each process's copy fills
        its own shards, so they would silently mix).

    References:
      Lange, "evosax: JAX-based Evolution Strategies", GECCO 2023 Companion (population fitness under
      ``vmap``).

    Examples:
      >>> jaxkit.evolution.evaluate(lambda x: jnp.sum(x ** 2), jnp.ones((4, 3)))
      Array([3., 3., 3., 3.], dtype=float32)
    """
    n = ops.popsize(population)
    _warn_new_function_objects(fitness_fn)
    one = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), population)
    sig = (
        fitness_fn,
        jax.tree.structure((one, args)),
        tuple((np.shape(x), str(getattr(x, "dtype", type(x)))) for x in jax.tree.leaves((one, args))),
    )
    if sig not in _CHECKED:  # trace the fitness once per signature, not every generation
        try:
            out = jax.eval_shape(fitness_fn, one, *args)
        except Exception as e:
            raise ValueError(
                f"`fitness_fn` failed on one member (shapes {jax.tree.map(lambda s: s.shape, one)}): "
                f"{type(e).__name__}: {e}"
            ) from e
        if not (hasattr(out, "shape") and len(out.shape) <= 1):
            got = jax.tree.map(lambda s: s.shape, out)
            raise ValueError(
                f"`fitness_fn` must return one scalar (or one vector of objectives) per member, got {got}."
            )
        if len(_CHECKED) > 256:
            _CHECKED.clear()
        _CHECKED.add(sig)
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1 or None, got {batch_size}.")
    budget = MEMORY_BUDGET if memory_budget is None else float(memory_budget)
    if not budget > 0:
        raise ValueError(f"`memory_budget` must be a positive number of bytes, got {memory_budget}.")
    auto = batch_size is None
    batch_size = None if batch_size is None else int(batch_size)
    devices = list(devices) if devices is not None else jax.devices()
    tree = isinstance(fitness_fn, jax.tree_util.Partial)
    if len(devices) <= 1:
        if tree:
            make = lambda b: _vmapped_tree(len(args), batch_size=b)
            call = (fitness_fn, population, *args)
        else:
            make = lambda b: _vmapped(fitness_fn, len(args), batch_size=b)
            call = (population, *args)
        if auto:
            batch_size = _auto_batch(make, call, (sig, n, 1, budget), n, budget)
        fit = make(batch_size)(*call)
    else:
        mesh = _sharding.mesh(devices)
        assert mesh is not None  # several devices
        _sharding.check_same(population, "population")  # several processes: the same members everywhere
        _sharding.check_same(args, "args")
        if tree:
            _sharding.check_same(fitness_fn, "fitness_fn")
        member, repl = _sharding.members(mesh), _sharding.replicated(mesh)
        padded, _ = _sharding.pad_to_multiple(population, mesh.size)  # the mesh above, not a second one
        padded = jax.tree.map(lambda x: _sharding.put(x, member), padded)
        args = tuple(jax.tree.map(lambda x: _sharding.put(x, repl), a) for a in args)
        if tree:
            shard = (repl, member) + (repl,) * len(args)
            make = lambda b: _vmapped_tree(len(args), shard, member, b)
            call = (jax.tree.map(lambda x: _sharding.put(x, repl), fitness_fn), padded, *args)
        else:
            shard = (member,) + (repl,) * len(args)
            make = lambda b: _vmapped(fitness_fn, len(args), shard, member, b)
            call = (padded, *args)
        if auto:
            per_device = ops.popsize(padded) // mesh.size
            batch_size = _auto_batch(make, call, (sig, n, tuple(devices), budget), per_device, budget)
        fit = make(batch_size)(*call)
        fit = _sharding.gather(fit)[:n]
    if warn_nan:
        warn_nan_members(fit, "evaluate", stacklevel=3)
    return fit


def warn_nan_members(fitness, where: str, stacklevel: int = 2) -> None:
    """Warn with the count and indices of members whose fitness (any objective) is NaN."""
    f = np.asarray(fitness)
    bad = np.flatnonzero(np.isnan(f.reshape(f.shape[0], -1)).any(axis=1))
    if bad.size:
        warnings.warn(
            f"{where}: {bad.size} of {f.shape[0]} fitness values are NaN (members {bad[:10].tolist()}"
            f"{'...' if bad.size > 10 else ''}); strategies rank them last.",
            RuntimeWarning,
            stacklevel=stacklevel + 1,
        )
