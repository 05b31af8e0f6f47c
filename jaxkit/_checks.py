"""Input-checking helpers shared by the public boundaries (public JAX API only)."""

from __future__ import annotations

import jax
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` has a value now (not a tracer inside ``jit`` / ``vmap`` / ``grad``): value checks can run."""
    try:
        np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False
    return True
