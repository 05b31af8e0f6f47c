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
    """Random points on the segments between real and generated samples: ``xhat = (1 - a) real + a fake``.

    One ``a ~ U[0, 1]`` per sample, broadcast over its other axes.

    Args:
      key: PRNG key for ``a``.
      real: ``[N, ...]`` real samples.
      fake: ``[N, ...]`` generated samples (same shape).

    Returns:
      ``[N, ...]`` interpolates.

    Raises:
      ValueError: ``real`` / ``fake`` of different shapes, empty, or NaN (when concrete).

    References:
      Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, Algorithm 1 (the interpolates of the
      gradient penalty).

    Examples:
      >>> xhat = jaxkit.gan.interpolate(jax.random.key(0), jnp.ones((4, 2)), jnp.zeros((4, 2)))
      >>> bool(jnp.all((xhat >= 0) & (xhat <= 1))), bool(jnp.all(xhat[:, 0] == xhat[:, 1]))
      (True, True)
    """
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
    """The WGAN-GP gradient penalty ``mean((||grad D(xhat)||_2 - 1)^2)`` (unscaled; multiply by lambda).

    ``xhat`` from :func:`interpolate`; the norm over all non-batch axes with ``eps`` inside the square root (a zero
    gradient gives 1, not NaN); ``one_sided=True`` penalises only norms above 1: ``mean(max(0, ||g|| - 1)^2)``.

    Args:
      critic_apply: ``(params, x) -> scores [N]`` (or ``[N, 1]``).
      key: PRNG key for the interpolation weights.
      params: the critic's params.
      real: ``[N, ...]`` real samples.
      fake: ``[N, ...]`` generated samples (same shape).
      one_sided: penalise only norms above 1.
      eps: added under the square root.

    Returns:
      A scalar array.

    Raises:
      ValueError: ``real`` / ``fake`` of different shapes or empty, NaN (when concrete), or a critic that does
        not return one score per sample.

    References:
      Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, Eq. (3) and Sec. 4 (two- versus
      one-sided penalty); Petzka et al., "On the regularization of Wasserstein GANs", ICLR 2018 (one-sided).

    Examples:
      >>> critic = lambda params, x: x @ params["w"]  # a linear critic: its gradient norm is ||w|| = 5
      >>> params = {"w": jnp.array([3.0, 4.0])}
      >>> real, fake = jnp.ones((8, 2)), jnp.zeros((8, 2))
      >>> float(jaxkit.gan.gradient_penalty(critic, jax.random.key(0), params, real, fake))  # (5 - 1)^2
      16.0
    """
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
    """The WGAN-GP critic loss ``mean D(G(z)) - mean D(x) + lambda_gp * GP``, with its metrics.

    Args:
      critic_apply: ``(params, x) -> scores [N]`` (or ``[N, 1]``).
      key: PRNG key for the gradient penalty's interpolation.
      params: the critic's params.
      real: ``[N, ...]`` real samples.
      fake: ``[N, ...]`` generated samples (same shape).
      lambda_gp: the penalty's weight.
      one_sided: as :func:`gradient_penalty`.

    Returns:
      ``(loss, {"wasserstein": mean D(x) - mean D(G(z)), "gp": GP})``.

    Raises:
      ValueError: ``real`` / ``fake`` of different shapes or empty, NaN (when concrete), or a critic that does
        not return one score per sample.

    References:
      Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, Algorithm 1, line 7.

    Examples:
      >>> critic = lambda params, x: x @ params["w"]  # a linear critic: its gradient norm is ||w|| = 5
      >>> params = {"w": jnp.array([3.0, 4.0])}
      >>> real, fake = jnp.ones((8, 2)), jnp.zeros((8, 2))
      >>> loss, m = jaxkit.gan.critic_loss(critic, jax.random.key(0), params, real, fake)
      >>> float(loss), float(m["wasserstein"]), float(m["gp"])  # 0 - 7 + 10 * 16
      (153.0, 7.0, 16.0)
    """
    _check_pair(real, fake)
    d_real = _scores(critic_apply, params, real, "real")
    d_fake = _scores(critic_apply, params, fake, "fake")
    gp = gradient_penalty(critic_apply, key, params, real, fake, one_sided)
    w = jnp.mean(d_real) - jnp.mean(d_fake)
    return -w + lambda_gp * gp, {"wasserstein": w, "gp": gp}


def generator_loss(critic_apply: Callable, critic_params: PyTree, fake: jax.Array) -> jax.Array:
    """The WGAN generator loss ``-mean D(G(z))``.

    Args:
      critic_apply: ``(params, x) -> scores [N]`` (or ``[N, 1]``).
      critic_params: the critic's params (held fixed: differentiate with respect to the generator's).
      fake: ``[N, ...]`` generated samples.

    Returns:
      A scalar array.

    Raises:
      ValueError: ``fake`` empty or NaN (when concrete), or a critic that does not return one score per sample.

    References:
      Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, Algorithm 1, line 11.

    Examples:
      >>> critic = lambda params, x: x @ params["w"]  # a linear critic: its gradient norm is ||w|| = 5
      >>> params = {"w": jnp.array([3.0, 4.0])}
      >>> real, fake = jnp.ones((8, 2)), jnp.zeros((8, 2))
      >>> float(jaxkit.gan.generator_loss(critic, params, real))
      -7.0
    """
    _check_batch(fake, "fake")
    return -jnp.mean(_scores(critic_apply, critic_params, fake, "fake"))
