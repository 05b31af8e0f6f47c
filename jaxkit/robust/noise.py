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
    """Multiplicative Gaussian noise ``x (1 + xi)``, ``xi ~ N(0, sigma^2)`` element-wise.

    Args:
      key: PRNG key.
      x: inputs of any shape.
      sigma: the noise's standard deviation (>= 0).

    Returns:
      Noisy inputs of ``x``'s shape.

    Raises:
      ValueError: a negative or non-finite ``sigma``.

    References:
      Yin, Scholte & Bohté, "LocalNorm: Robust Image Classification through Dynamically Regularized Normalization",
      ICANN 2021 (its noise robustness tests).

    Examples:
      >>> noisy = jaxkit.robust.multiplicative_gaussian_noise(jax.random.key(0), jnp.ones((2, 3)), 0.1)
      >>> noisy.shape, bool(jnp.all(jnp.abs(noisy - 1) < 0.5))
      ((2, 3), True)
    """
    if not float(sigma) >= 0:
        raise ValueError(f"`sigma` must be >= 0, got {sigma}.")
    x = jnp.asarray(_c.array(x, "x", kind="f"))
    return x * (1.0 + sigma * jax.random.normal(key, x.shape, x.dtype))


def multiplicative_bernoulli_noise(key, x, rate: float):
    """Multiplicative Bernoulli noise ``x * b``, ``b ~ Bernoulli(1 - rate)``: each value dropped with prob. ``rate``.

    Args:
      key: PRNG key.
      x: inputs of any shape.
      rate: the drop probability in ``[0, 1]``.

    Returns:
      Noisy inputs of ``x``'s shape.

    Raises:
      ValueError: ``rate`` outside ``[0, 1]``.

    References:
      Yin, Scholte & Bohté, "LocalNorm: Robust Image Classification through Dynamically Regularized
      Normalization", ICANN 2021 (its noise robustness tests).

    Examples:
      >>> kept = jaxkit.robust.multiplicative_bernoulli_noise(jax.random.key(0), jnp.ones(1000), 0.3)
      >>> round(float(kept.mean()), 1)
      0.7
    """
    if not 0 <= float(rate) <= 1:
        raise ValueError(f"`rate` must be in [0, 1], got {rate}.")
    x = jnp.asarray(_c.array(x, "x", kind="f"))
    return x * jax.random.bernoulli(key, 1.0 - rate, x.shape).astype(x.dtype)
