"""Noise models for robustness tests (LocalNorm paper): :func:`multiplicative_gaussian_noise`
``x (1 + xi)``, ``xi ~ N(0, sigma^2)``, and :func:`multiplicative_bernoulli_noise` ``x * b``,
``b ~ Bernoulli(1 - rate)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxkit import _checks as _c

__all__ = ["multiplicative_bernoulli_noise", "multiplicative_gaussian_noise"]


def multiplicative_gaussian_noise(key, x, sigma: float):
    """``x (1 + xi)``, ``xi ~ N(0, sigma^2)`` element-wise."""
    if not float(sigma) >= 0:
        raise ValueError(f"`sigma` must be >= 0, got {sigma}.")
    x = jnp.asarray(_c.array(x, "x", kind="f"))
    return x * (1.0 + sigma * jax.random.normal(key, x.shape, x.dtype))


def multiplicative_bernoulli_noise(key, x, rate: float):
    """``x * b``, ``b ~ Bernoulli(1 - rate)`` element-wise (each input value dropped with probability ``rate``)."""
    if not 0 <= float(rate) <= 1:
        raise ValueError(f"`rate` must be in [0, 1], got {rate}.")
    x = jnp.asarray(_c.array(x, "x", kind="f"))
    return x * jax.random.bernoulli(key, 1.0 - rate, x.shape).astype(x.dtype)
