"""Gator: per-channel stochastic gates with memory / FLOPs / latency cost losses (Passov, David & Netanyahu,
ICANN 2021).

The implementation and its documentation (edges, gates, the cost models, killing and folding gates into masks)
live in :mod:`jaxkit.prune.gator` -- Gator is a pruning method; ``jaxkit.gates`` is its public face and
re-exports every public name.
"""

from __future__ import annotations

from jaxkit.prune import gator
from jaxkit.prune.gator import *  # noqa: F403  (the face re-exports every public name)

__all__ = []
__all__ += gator.__all__
