"""Resumable runs: a thin wrapper over ``orbax.checkpoint``, and the one resume helper every long loop uses.

Every long loop in jaxkit (training, GAN iterations, evolutionary generations, RL chunks) saves
``(state pytree, JSON metadata)`` at numbered steps and, started again on the same directory, continues from the
newest readable one. Saves are synchronous, so a run killed right after ``save`` returns loses nothing reported as
done, and orbax writes each step to a temporary folder that it renames only when complete.

Three rules make a resumed run trustworthy:

* **Fingerprints.** Every checkpoint stores the key path, shape and dtype of each leaf of the state and, with
  :class:`Run`, a configuration dict supplied by the caller (strategy parameters, model config, seeds, data
  identity) plus the jaxkit version. Resuming with anything different is a :class:`CheckpointMismatch` naming the
  first differing entry -- never a silent continuation of another run. ``overwrite=True`` starts over.
* **Fallback.** A newest checkpoint that cannot be read (truncated data, broken metadata, a deleted folder) is
  skipped with a warning naming it, and the newest readable one is used (two are kept by default); when none is
  readable the error is one line naming the directory.
* **No strays.** Unfinished ``*.orbax-checkpoint-tmp-*`` folders of killed saves are removed when a directory is
  opened.

Example::

    run = checkpoint.Run("runs/a", state, config={"lr": 1e-3, "seed": 0}, total=epochs, what="epoch")
    state, meta, start = run.state, run.metadata, run.start      # start = 0 for a fresh run
    for epoch in range(start, epochs):
        ...
        run.save(epoch + 1, state, {"history": history})
    run.close()
"""

from __future__ import annotations

import functools
import glob
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import __version__

__all__ = [
    "CheckpointError",
    "CheckpointMismatch",
    "Checkpointer",
    "Run",
    "config_digest",
    "fingerprint",
    "memo",
    "structure",
]

_STRUCTURE = "_structure"
_CONFIG = "_config"


class CheckpointError(ValueError):
    """No usable checkpoint where one was expected (the message names the directory)."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint made by a different run (the message names the first differing entry)."""


def _jsonable(v: Any) -> Any:
    """A canonical JSON form of a configuration value (arrays by shape, dtype and a hash of their bytes)."""
    if isinstance(v, dict):
        return {str(k): _jsonable(v[k]) for k in sorted(v, key=str)}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, (np.generic,)):
        return _jsonable(v.item())
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        a = np.asarray(jax.random.key_data(v) if jnp.issubdtype(v.dtype, jax.dtypes.prng_key) else v)
        return {
            "array": list(a.shape),
            "dtype": str(a.dtype),
            "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16],
        }
    if isinstance(v, functools.partial):  # jax.tree_util.Partial too: the function and what it is bound to
        return {"partial": _jsonable(v.func), "args": _jsonable(list(v.args)), "keywords": _jsonable(dict(v.keywords))}
    if inspect.ismethod(v):  # e.g. a Flax module's ``apply``: the module's configuration counts
        return {"method": v.__func__.__qualname__, "of": _jsonable(v.__self__)}
    if hasattr(v, "__dataclass_fields__"):
        return {
            "type": type(v).__name__,
            **{
                f: _jsonable(getattr(v, f, None))
                for f in v.__dataclass_fields__
                if not f.startswith("_") and f not in ("parent", "name")
            },
        }
    if callable(v):
        return f"{getattr(v, '__module__', '?')}.{getattr(v, '__qualname__', type(v).__name__)}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(v))  # no memory addresses: they differ between processes


def structure(tree: Any) -> list[list]:
    """``[[key path, shape, dtype], ...]`` of a pytree's leaves: what a checkpoint of it must match.

    Args:
      tree: a pytree of arrays.

    Returns:
      A JSON-able list, in tree-flatten order.

    Examples:
      >>> jaxkit.checkpoint.structure({"w": jnp.ones((2, 3)), "b": jnp.zeros(3, jnp.int32)})
      [["['b']", [3], 'int32'], ["['w']", [2, 3], 'float32']]
    """
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        dtype = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
        out.append([jax.tree_util.keystr(path), [int(s) for s in np.shape(leaf)], str(dtype)])
    return out


def fingerprint(config: dict | None) -> dict:
    """The configuration part of a checkpoint's fingerprint: ``config`` in canonical JSON plus the jaxkit version.

    Args:
      config: a JSON-able dict, or ``None``.

    Returns:
      A JSON-able dict (the configuration's values and ``"jaxkit"``: the version).

    Examples:
      >>> sorted(jaxkit.checkpoint.fingerprint({"lr": 0.1}))
      ['jaxkit', 'lr']
    """
    return {"jaxkit": __version__, **_jsonable(dict(config or {}))}


def config_digest(config: dict, length: int = 12) -> str:
    """A short stable hash of a configuration (e.g. to name a run's folder).

    SHA-256 of the configuration's canonical JSON (sorted keys), so key order does not matter.

    Args:
      config: a JSON-able dict.
      length: hex digits kept.

    Returns:
      A hex string of ``length`` characters.

    Examples:
      >>> digest = jaxkit.checkpoint.config_digest
      >>> digest({"lr": 0.1, "epochs": 3}) == digest({"epochs": 3, "lr": 0.1}), len(digest({"lr": 0.1}))
      (True, 12)
    """
    text = json.dumps(_jsonable(dict(config)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _first_difference(saved: Any, now: Any, where: str = "") -> str | None:
    if isinstance(saved, dict) and isinstance(now, dict):
        for k in list(saved) + [k for k in now if k not in saved]:
            if k not in now:
                return f"{where}[{k!r}] is {saved[k]!r} there and missing here"
            if k not in saved:
                return f"{where}[{k!r}] is missing there and {now[k]!r} here"
            d = _first_difference(saved[k], now[k], f"{where}[{k!r}]")
            if d:
                return d
        return None
    if saved != now:
        return f"{where or 'value'} is {saved!r} there and {now!r} here"
    return None


def _structure_difference(saved: list, now: list) -> str | None:
    if [e[0] for e in saved] != [e[0] for e in now]:
        s, n = {e[0] for e in saved}, {e[0] for e in now}
        extra, missing = sorted(s - n), sorted(n - s)
        what = (
            f"leaf {extra[0]} is there but not here"
            if extra
            else f"leaf {missing[0]} is here but not there"
            if missing
            else "the leaves are in another order"
        )
        return f"the state's structure differs: {what}"
    for (path, shape_s, dtype_s), (_, shape_n, dtype_n) in zip(saved, now):
        if list(shape_s) != list(shape_n) or dtype_s != dtype_n:
            return f"state leaf {path} is {dtype_s}{list(shape_s)} there and {dtype_n}{list(shape_n)} here"
    return None


def _spans_processes(x: Any) -> bool:
    return isinstance(x, jax.Array) and not x.is_fully_addressable


def _host_or_global(x: Any) -> Any:
    """A NumPy copy, or the array itself when it spans processes (only its shards are here; orbax saves those)."""
    return x if _spans_processes(x) else np.asarray(x)


def _abstract(x: Any) -> Any:
    """What ``restore`` fills: zeros like a host leaf, or the global shape, dtype and sharding of a spanning one."""
    if _spans_processes(x):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return np.zeros(np.shape(x), np.asarray(x).dtype)


class Checkpointer:
    """Save and restore ``(pytree, metadata)`` pairs under ``directory``.

    Args:
      directory: where checkpoints live (created if missing); relative paths are made absolute.
      max_to_keep: how many of the newest checkpoints to keep (at least 2 is what makes a corrupted newest one
        recoverable).

    ``save`` records the state's structure (key paths, shapes, dtypes) in the metadata; ``restore`` checks it
    against ``like`` and falls back to an older step when the newest cannot be read. Metadata keys starting with
    ``_`` are reserved.

    Example::

        ckpt = Checkpointer("runs/a")
        if ckpt.latest_step() is not None:
            state, meta = ckpt.restore(state)      # ``state`` gives the structure
        ...
        ckpt.save(epoch, state, {"history": history})
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 2):
        import orbax.checkpoint as ocp  # noqa: PLC0415  (slow import; only when used)

        if int(max_to_keep) < 1:
            raise ValueError(f"`max_to_keep` must be >= 1, got {max_to_keep}.")
        self._ocp = ocp
        self.directory = os.path.abspath(os.fspath(directory))
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise CheckpointError(f"checkpoint directory {self.directory} is a file.")
        for tmp in glob.glob(os.path.join(self.directory, "*.orbax-checkpoint-tmp*")):  # a killed save's leftovers
            shutil.rmtree(tmp, ignore_errors=True)
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=int(max_to_keep), create=True)
        )

    def latest_step(self) -> int | None:
        """The newest saved step, or ``None`` if there is none."""
        self._manager.reload()
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: Any, metadata: dict | None = None) -> None:
        """Save ``state`` (a pytree of arrays) and JSON-serialisable ``metadata`` at ``step``.

        Under ``jax.distributed`` every process calls it with the same step: arrays sharded across processes
        are written shard by shard by the processes that hold them (orbax's multi-process path), one process
        writes the metadata.
        """
        ocp = self._ocp
        state = jax.tree.map(_host_or_global, state)
        meta = dict(metadata or {})
        meta[_STRUCTURE] = structure(state)
        self._manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), metadata=ocp.args.JsonSave(meta)),
            force=True,
        )
        self._manager.wait_until_finished()

    def _restore_step(self, like: Any, step: int) -> tuple[Any, dict]:
        ocp = self._ocp
        meta = self._manager.restore(int(step), args=ocp.args.Composite(metadata=ocp.args.JsonRestore()))
        meta = dict(meta["metadata"])
        saved = meta.pop(_STRUCTURE, None)
        if saved is not None:
            diff = _structure_difference(saved, structure(jax.tree.map(_host_or_global, like)))
            if diff:
                raise CheckpointMismatch(f"checkpoint step {step} in {self.directory} does not fit this run: {diff}.")
        abstract = jax.tree.map(_abstract, like)
        out = self._manager.restore(int(step), args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        leaves = jax.tree.leaves(out["state"])
        for got, ref, (path, *_) in zip(leaves, jax.tree.leaves(abstract), structure(abstract)):
            if np.shape(got) != np.shape(ref):
                raise CheckpointMismatch(
                    f"checkpoint step {step} in {self.directory} does not fit this run: state "
                    f"leaf {path} has shape {list(np.shape(got))} there and "
                    f"{list(np.shape(ref))} here."
                )
        state = jax.tree.unflatten(jax.tree.structure(like), leaves)
        return state, meta

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restore ``(state, metadata)``; ``like`` is a pytree with the saved structure.

        ``step=None`` restores the newest *readable* checkpoint: one that fails to load (truncated or missing
        files) is skipped with a warning naming it. Leaves come back as numpy arrays with ``like``'s dtypes and
        shapes, in ``like``'s tree structure (namedtuple optimizer states included) -- except leaves of ``like``
        that span several processes, which come back as arrays with ``like``'s sharding; a checkpoint whose
        structure, shapes or dtypes differ from ``like`` is a :class:`CheckpointMismatch`.
        """
        steps = [int(step)] if step is not None else sorted(self.all_steps(), reverse=True)
        if not steps:
            raise CheckpointError(f"no checkpoint in {self.directory}.")
        problems = []
        for s in steps:
            try:
                return self._restore_step(like, s)
            except CheckpointMismatch:
                raise
            except Exception as e:  # noqa: BLE001 -- any unreadable step: orbax, tensorstore, JSON, OS errors
                first = (str(e).strip().splitlines() or [""])[0][:200]
                problems.append(f"step {s} ({type(e).__name__}: {first})")
                if step is None and s != steps[-1]:
                    warnings.warn(
                        f"checkpoint step {s} in {self.directory} is unreadable ({type(e).__name__}: "
                        f"{first}); falling back to an older one.",
                        stacklevel=2,
                    )
        raise CheckpointError(f"no readable checkpoint in {self.directory}: {'; '.join(problems)}.")

    def clear(self) -> None:
        """Delete every checkpoint in the directory (start over)."""
        for s in self.all_steps():
            self._manager.delete(s)
        self._manager.reload()

    def close(self) -> None:
        self._manager.close()
        for tmp in glob.glob(os.path.join(self.directory, "*.orbax-checkpoint-tmp*")):  # an interrupted save's
            shutil.rmtree(tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Run:
    """The resume helper of every long loop: open ``directory``, check the fingerprint, restore, save.

    Args:
      directory: the run's checkpoint folder (``None``: a run without checkpoints; ``save`` does nothing).
      like: the fresh state (gives the structure, shapes and dtypes; returned as ``state`` for a fresh run).
      config: what produced the run (JSON-able values; arrays by their bytes' hash, callables by name). Resuming
        with a different ``config`` or state structure is a :class:`CheckpointMismatch` naming the first
        difference, unless ``overwrite=True``, which deletes the old checkpoints first.
      total: the run's length in steps (for the resume line and to know a finished run).
      what: the name of a step in messages ("epoch", "generation", ...).
      max_to_keep: checkpoints kept (>= 2 so a corrupted newest one can fall back).
      verbose: print one line when resuming.

    After construction ``state``, ``metadata`` (the caller's dict, ``{}`` when fresh) and ``start`` (the saved
    step, 0 when fresh) describe where to continue.
    """

    def __init__(
        self,
        directory: str | os.PathLike | None,
        like: Any,
        config: dict | None = None,
        *,
        total: int | None = None,
        what: str = "step",
        overwrite: bool = False,
        max_to_keep: int = 2,
        verbose: bool = True,
    ):
        self.state, self.metadata, self.start = like, {}, 0
        self.directory, self._ckpt, self.config = None, None, None
        if directory is None:
            return
        self.directory = os.path.abspath(os.fspath(directory))
        self.config = fingerprint(config)
        if int(max_to_keep) < 2:
            raise ValueError(
                f"`max_to_keep` must be >= 2 (a corrupted newest checkpoint needs an older one), got {max_to_keep}."
            )
        self._ckpt = Checkpointer(self.directory, max_to_keep=max_to_keep)
        if overwrite:
            self._ckpt.clear()
            return
        if self._ckpt.latest_step() is None:
            return
        state, meta = self._ckpt.restore(like)
        saved = meta.pop(_CONFIG, None)
        if saved is None:
            raise CheckpointMismatch(
                f"checkpoints in {self.directory} carry no configuration (written by another "
                f"program or an older jaxkit); pass overwrite=True to start over."
            )
        diff = _first_difference(saved, self.config, "config")
        if diff:
            raise CheckpointMismatch(
                f"checkpoints in {self.directory} were made by a different run: {diff}. Use "
                f"another directory, or overwrite=True (--restart) to start over."
            )
        self.start = int(meta.pop("_step"))
        self.state, self.metadata = state, meta
        if verbose:
            of = f" of {total}" if total is not None else ""
            print(f"resumed from {what} {self.start}{of} in {self.directory}", flush=True)

    def save(self, step: int, state: Any, metadata: dict | None = None) -> None:
        """Checkpoint ``state`` after ``step`` steps with the caller's ``metadata`` (and the fingerprint)."""
        if self._ckpt is None:
            return
        meta = dict(metadata or {})
        meta[_CONFIG] = self.config
        meta["_step"] = int(step)
        self._ckpt.save(int(step), state, meta)

    def close(self) -> None:
        if self._ckpt is not None:
            self._ckpt.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def memo(path: str | os.PathLike | None, config: dict, compute, *, verbose: bool = True):
    """A finished part of a run, kept as JSON at ``path`` with its fingerprint.

    ``compute()`` runs only when ``path`` holds no result of the same ``config`` (a different one is recomputed
    and replaced, as is an unreadable file). Written atomically (temporary file + rename), so a killed write
    never leaves a half file.

    Args:
      path: the JSON file; ``None`` just computes.
      config: the part's configuration (JSON-able): what makes two results the same.
      compute: ``() -> result``, JSON-able values (lists, not arrays).
      verbose: say when a stored result is reused or replaced.

    Returns:
      The stored or computed result.

    Examples:
      >>> import os, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "part.json")
      >>> calls = []
      >>> compute = lambda: calls.append(1) or {"accuracy": 0.9}
      >>> first = jaxkit.checkpoint.memo(path, {"seed": 0}, compute, verbose=False)
      >>> again = jaxkit.checkpoint.memo(path, {"seed": 0}, compute, verbose=False)
      >>> again, len(calls)  # the second call read the file
      ({'accuracy': 0.9}, 1)
    """
    if path is None:
        return compute()
    path = os.path.abspath(os.fspath(path))
    fp = fingerprint(config)
    if os.path.isfile(path):
        try:
            with open(path) as fh:
                saved = json.load(fh)
            if saved.get("config") == fp:
                if verbose:
                    print(f"reused {path}", flush=True)
                return saved["result"]
        except (OSError, ValueError, AttributeError) as e:
            warnings.warn(f"{path} is unreadable ({type(e).__name__}); recomputing it.", stacklevel=2)
    result = compute()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump({"config": fp, "result": result}, fh)
    os.replace(tmp, path)
    return result
