"""WGAN-GP losses (Gulrajani et al., "Improved Training of Wasserstein GANs", 2017).

``critic_apply(params, x) -> scores`` is any function returning one score per
sample (``[N]`` or ``[N, 1]``); ``generator_apply(params, z) -> x``.

* critic loss ``mean D(G(z)) - mean D(x) + lambda * GP``,
* ``GP = mean((||grad_xhat D(xhat)||_2 - 1)^2)`` at ``xhat = (1 - a) x + a G(z)``,
  ``a ~ U[0, 1]`` per sample, the norm over **all** non-batch axes and
  ``eps`` inside the square root (a zero gradient gives 1, not NaN);
  ``one_sided=True`` penalises only norms above 1: ``mean(max(0, ||g|| - 1)^2)``;
* generator loss ``-mean D(G(z))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax.errors import FlaxError

from jaxkit import _checks as _c

__all__ = ["critic_loss", "generator_loss", "gradient_penalty", "interpolate"]

PyTree = Any


def _scores(critic_apply, params, x, name="x"):
    try:
        s = critic_apply(params, x)
    except (FlaxError, TypeError) as e:  # a sample shape the critic cannot take
        raise ValueError(
            f"`{name}` of shape {x.shape} does not fit the critic: {type(e).__name__}: {str(e)[:200]}"
        ) from e
    return s.reshape(s.shape[0], -1).sum(-1) if s.ndim > 1 else s


def _check_batch(x, name):
    x = _c.array(x, name, min_ndim=2, kind="f")
    if x.shape[0] == 0:
        raise ValueError(f"`{name}` is an empty batch (shape {x.shape}); expected at least one sample.")
    _c.finite(x, name)


def _check_pair(real, fake):
    _check_batch(real, "real")
    _check_batch(fake, "fake")
    if real.shape != fake.shape:
        raise ValueError(f"`real` and `fake` must have the same shape, got {real.shape} and {fake.shape}.")


def interpolate(key: jax.Array, real: jax.Array, fake: jax.Array) -> jax.Array:
    """``xhat = (1 - a) real + a fake`` with one ``a ~ U[0, 1]`` per sample."""
    _check_pair(real, fake)
    a = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    return (1 - a) * real + a * fake


@_c.key_first(1, 4)
def gradient_penalty(
    critic_apply: Callable,
    key: jax.Array,
    params: PyTree,
    real: jax.Array,
    fake: jax.Array,
    one_sided: bool = False,
    eps: float = 1e-12,
) -> jax.Array:
    """``mean((||grad D(xhat)|| - 1)^2)`` (unscaled; multiply by lambda). See the module docstring."""
    _check_pair(real, fake)
    xhat = interpolate(key, real, fake)
    total, grads = jax.value_and_grad(lambda x: jnp.sum(_scores(critic_apply, params, x)))(xhat)
    norm = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1) + eps)
    gap = jnp.maximum(norm - 1.0, 0.0) if one_sided else norm - 1.0
    # A critic that outputs NaN (e.g. NaN weights) can still have a finite input gradient (XLA's tanh' at NaN):
    # the penalty is NaN then, never a plausible number.
    return jnp.where(jnp.isnan(total), jnp.nan, jnp.mean(gap**2))


@_c.key_first(1, 4)
def critic_loss(
    critic_apply: Callable,
    key: jax.Array,
    params: PyTree,
    real: jax.Array,
    fake: jax.Array,
    *,
    lambda_gp: float = 10.0,
    one_sided: bool = False,
) -> tuple[jax.Array, dict]:
    """WGAN-GP critic loss and metrics ``{"wasserstein": mean D(x) - mean D(G(z)), "gp": GP}``."""
    _check_pair(real, fake)
    d_real = _scores(critic_apply, params, real, "real")
    d_fake = _scores(critic_apply, params, fake, "fake")
    gp = gradient_penalty(critic_apply, key, params, real, fake, one_sided)
    w = jnp.mean(d_real) - jnp.mean(d_fake)
    return -w + lambda_gp * gp, {"wasserstein": w, "gp": gp}


def generator_loss(critic_apply: Callable, critic_params: PyTree, fake: jax.Array) -> jax.Array:
    """``-mean D(G(z))``."""
    _check_batch(fake, "fake")
    return -jnp.mean(_scores(critic_apply, critic_params, fake, "fake"))
