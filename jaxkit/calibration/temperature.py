"""Temperature scaling (Guo et al. 2017): the one scalar ``T`` that minimises the held-out NLL of
``softmax(logits / T)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit._checks import is_concrete

__all__ = ["fit_temperature"]


@jax.jit
def _fit_temperature(logits, labels):
    def dnll(log_beta):  # derivative of the NLL in beta = 1/T; NLL is convex in beta, so its sign brackets
        return jax.grad(lambda b: -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits * b), labels[:, None], 1)))(
            jnp.exp(log_beta)
        )

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        up = dnll(mid) < 0  # NLL still falling: the optimum lies at a larger beta
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 60, body, (jnp.float32(math.log(1e-3)), jnp.float32(math.log(1e3))))
    # inside a trace a NaN logit would leave the bisection at its upper end (T ~ 1000): NaN instead
    return jnp.where(jnp.isnan(logits).any(), jnp.nan, 1.0 / jnp.exp(0.5 * (lo + hi)))


def fit_temperature(logits, labels) -> jax.Array:
    """Temperature scaling: the ``T`` minimising the NLL of ``softmax(logits / T)``, jitted.

    The NLL is convex in ``1/T``: 60 bisection steps on the sign of its derivative (in log space) give ``T`` to
    float precision, within ``[1e-3, 1e3]``.

    Args:
      logits: ``[N, C]`` logits.
      labels: ``[N]`` integer labels in ``0..C-1``.

    Returns:
      ``T``, a scalar array (divide the logits by it).

    Raises:
      ValueError: logits not ``[N, C]`` or not finite, labels out of range or of another length.

    References:
      Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, Sec. 4.2 (temperature scaling).

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> z = rng.normal(size=(5000, 3))
      >>> labels = np.argmax(z + rng.gumbel(size=z.shape), axis=1)  # drawn from softmax(z)
      >>> round(float(jaxkit.calibration.fit_temperature(3 * z, labels)), 1)  # logits 3x too confident
      3.0
    """
    z = _c.array(logits, "logits", ndim=2, kind="r", nonempty=True)
    if z.shape[1] < 2:
        raise ValueError(f"`logits` must be [N, C] with C >= 2 classes, got shape {z.shape}.")
    _c.finite(z, "logits")
    z = jnp.asarray(z, jnp.float32)
    y = jnp.asarray(_c.array(labels, "labels", kind="i"))
    if y.shape != (z.shape[0],):
        raise ValueError(f"`labels` must have shape ({z.shape[0]},), got {y.shape}.")
    if is_concrete(y) and y.size and (np.asarray(y).min() < 0 or np.asarray(y).max() >= z.shape[1]):
        raise ValueError(f"`labels` must be class indices in [0, {z.shape[1]}).")
    return _fit_temperature(z, y.astype(jnp.int32))
