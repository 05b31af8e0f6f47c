"""jaxkit: published deep-learning methods as pure, jitted JAX transforms over Flax params.

Modules are imported on first use (``jaxkit.tree``, ``jaxkit.data``, ...), so
``import jaxkit`` stays fast and optional dependencies stay optional.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("tree", "data", "models", "checkpoint", "schedules", "interval", "lipschitz", "prune", "gates", "gan",
               "anomaly", "evolution", "fairness", "calibration", "losses", "rl", "normalize", "robust",
               "explain")

__all__ = list(_SUBMODULES) + ["__version__"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"jaxkit.{name}")
    raise AttributeError(f"module 'jaxkit' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
