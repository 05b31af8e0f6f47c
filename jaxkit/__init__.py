"""jaxkit: published deep-learning methods as pure, jitted JAX transforms over Flax params.

Modules are imported on first use (``jaxkit.tree``, ``jaxkit.data``, ...), so
``import jaxkit`` stays fast and optional dependencies stay optional.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the lazy __getattr__ below returns, for type checkers and editors
    from jaxkit import (
        anomaly,
        calibration,
        checkpoint,
        data,
        evolution,
        explain,
        fairness,
        gan,
        gates,
        interval,
        lipschitz,
        losses,
        metrics,
        models,
        normalize,
        prune,
        rl,
        robust,
        schedules,
        tree,
    )

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "anomaly",
    "calibration",
    "checkpoint",
    "data",
    "evolution",
    "explain",
    "fairness",
    "gan",
    "gates",
    "interval",
    "lipschitz",
    "losses",
    "metrics",
    "models",
    "normalize",
    "prune",
    "rl",
    "robust",
    "schedules",
    "tree",
]
_SUBMODULES = frozenset(__all__) - {"__version__"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"jaxkit.{name}")
    raise AttributeError(f"module 'jaxkit' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
