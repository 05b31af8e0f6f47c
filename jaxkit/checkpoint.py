"""Resumable runs: a thin wrapper over ``orbax.checkpoint``.

Every long loop in jaxkit (training, GAN iterations, evolutionary generations,
branch-and-bound searches) saves ``(state pytree, JSON metadata)`` at numbered
steps and, when started again on the same directory, continues from the newest
one. Saves are synchronous so a run killed right after ``save`` returns loses
nothing that was reported as done.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

__all__ = ["Checkpointer"]


class Checkpointer:
    """Save and restore ``(pytree, metadata)`` pairs under ``directory``.

    Args:
      directory: where checkpoints live (created if missing); relative paths are
        made absolute.
      max_to_keep: how many of the newest checkpoints to keep.

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
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=int(max_to_keep), create=True),
        )

    def latest_step(self) -> int | None:
        """The newest saved step, or ``None`` if there is none."""
        self._manager.reload()
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        self._manager.reload()
        return list(self._manager.all_steps())

    def save(self, step: int, state: Any, metadata: dict | None = None) -> None:
        """Save ``state`` (a pytree of arrays) and JSON-serialisable ``metadata`` at ``step``."""
        ocp = self._ocp
        state = jax.tree.map(np.asarray, state)
        self._manager.save(
            int(step),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                metadata=ocp.args.JsonSave(dict(metadata or {})),
            ),
            force=True,
        )
        self._manager.wait_until_finished()

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restore ``(state, metadata)``; ``like`` is a pytree with the saved structure.

        ``step=None`` restores the newest checkpoint. Leaves come back as numpy
        arrays with ``like``'s dtypes and shapes, in ``like``'s tree structure
        (namedtuple optimizer states included).
        """
        ocp = self._ocp
        if step is None:
            step = self.latest_step()
            if step is None:
                raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(lambda x: np.zeros(np.shape(x), np.asarray(x).dtype), like)
        out = self._manager.restore(
            int(step),
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract),
                metadata=ocp.args.JsonRestore(),
            ),
        )
        state = jax.tree.unflatten(jax.tree.structure(like), jax.tree.leaves(out["state"]))
        return state, dict(out["metadata"])

    def close(self) -> None:
        self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
