"""One jitted WGAN-GP iteration for any generator/critic pair, and the two optimiser presets.

An iteration is ``n_critic`` critic updates (each on its own real batch and fresh
``z``, run in ``lax.scan``) and one generator update, in the order the preset
says: ``"critic_first"`` (Gulrajani et al.) or ``"generator_first"`` (the
thesis code: one generator step, then 5 critic steps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxkit import _checks as _c
from jaxkit.gan.losses import critic_loss, generator_loss
from jaxkit.models import init_variables

__all__ = ["PRESETS", "GanState", "Preset", "init_state", "make_train_step", "thesis_lr"]

PyTree = Any


class GanState(struct.PyTreeNode):
    """Generator and critic params and optimiser states; ``step`` counts iterations."""

    step: jax.Array
    g_params: PyTree
    d_params: PyTree
    g_opt: optax.OptState
    d_opt: optax.OptState


def thesis_lr(iterations: int, n_steps_per_iteration: int = 1) -> optax.Schedule:
    """The thesis's learning rate: 5e-6, then 1e-6 after 1/3 and 5e-7 after 2/3 of the iterations.

    Args:
      iterations: the run's length in iterations.
      n_steps_per_iteration: optimiser steps per iteration (5 for a critic with ``n_critic=5``).

    Returns:
      An optax schedule of the optimiser step.

    Raises:
      ValueError: ``iterations`` or ``n_steps_per_iteration`` not a positive integer.

    References:
      the WGAN-GP hyperspectral anomaly-detection MSc thesis (NTNU/FFI, 2018) that
      ``experiments/hyperspectral_wgan_gp.py`` reproduces.

    Examples:
      >>> lr = jaxkit.gan.thesis_lr(300)
      >>> [round(float(lr(t)), 8) for t in (0, 100, 200)]
      [5e-06, 1e-06, 5e-07]
    """
    if int(iterations) < 1:
        raise ValueError(f"`iterations` must be >= 1, got {iterations}.")
    k = int(n_steps_per_iteration)
    return optax.piecewise_constant_schedule(5e-6, {k * (iterations // 3): 0.2, k * (2 * iterations // 3): 0.5})


@dataclasses.dataclass(frozen=True)
class Preset:
    """A training recipe. ``optimizers(iterations)`` returns ``(generator tx, critic tx)``."""

    name: str
    order: str  # "critic_first" | "generator_first"
    n_critic: int = 5
    lambda_gp: float = 10.0
    batch_size: int = 256
    iterations: int = 20_000

    def optimizers(self, iterations: int | None = None) -> tuple[optax.GradientTransformation, ...]:
        it = int(iterations or self.iterations)
        if self.name == "thesis":
            return optax.adam(thesis_lr(it)), optax.adam(thesis_lr(it, self.n_critic))
        return optax.adam(1e-4, b1=0.0, b2=0.9), optax.adam(1e-4, b1=0.0, b2=0.9)


PRESETS = {
    # the thesis code: Adam with default betas, lr 5e-6 -> 1e-6 -> 5e-7, batch 256, 20k iterations,
    # each iteration one generator step then 5 critic steps
    "thesis": Preset("thesis", "generator_first", batch_size=256, iterations=20_000),
    # Gulrajani et al.: Adam lr 1e-4, betas (0, 0.9), 5 critic steps then one generator step
    "gulrajani": Preset("gulrajani", "critic_first", batch_size=64, iterations=100_000),
}


def init_state(
    key: jax.Array,
    generator: Any,
    critic: Any,
    noise_dim: int,
    sample_x: jax.Array,
    g_tx: optax.GradientTransformation,
    d_tx: optax.GradientTransformation,
) -> GanState:
    """Initialise Flax ``generator`` / ``critic`` modules (their ``"params"``) and both optimisers.

    Args:
      key: PRNG key (split between the two networks).
      generator: a Flax module ``z [B, noise_dim] -> x``.
      critic: a Flax module ``x -> scores``.
      noise_dim: length of ``z``.
      sample_x: real samples ``[N, ...]`` (the first one fixes the critic's input shape).
      g_tx: the generator's optax optimiser.
      d_tx: the critic's optax optimiser.

    Returns:
      A :class:`GanState` at step 0.

    Raises:
      ValueError: ``sample_x`` empty or not floating point, ``noise_dim`` not a positive integer.

    References:
      Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, Algorithm 1 (two networks, two Adam
      optimisers).

    Examples:
      >>> state = jaxkit.gan.init_state(jax.random.key(0), jaxkit.gan.Generator(noise_dim=8),
      ...     jaxkit.gan.Critic(), 8, jnp.zeros((2, 20, 1, 1)), optax.adam(1e-4), optax.adam(1e-4))
      >>> int(state.step)
      0
    """
    x = _c.array(sample_x, "sample_x", min_ndim=1, kind="f", nonempty=True)
    _c.positive_int(noise_dim, "noise_dim")
    kg, kd = jax.random.split(key)
    # init_variables: one cheaply compiled program per network instead of Flax's op-by-op eager init
    # (~160 small XLA programs, ~11 s on 2 CPU cores for the thesis networks)
    g_params = init_variables(generator, kg, jnp.zeros((1, int(noise_dim)), jnp.float32))["params"]
    d_params = init_variables(critic, kd, jnp.asarray(x[:1]))["params"]
    return GanState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_params,
        d_params=d_params,
        g_opt=g_tx.init(g_params),
        d_opt=d_tx.init(d_params),
    )


def make_train_step(
    generator_apply: Callable,
    critic_apply: Callable,
    g_tx: optax.GradientTransformation,
    d_tx: optax.GradientTransformation,
    *,
    noise_dim: int,
    n_critic: int = 5,
    lambda_gp: float = 10.0,
    order: str = "critic_first",
    one_sided: bool = False,
    unroll: int | bool = True,
) -> Callable:
    """A jitted ``step(state, real, key) -> (state, metrics)`` running one WGAN-GP iteration.

    Args:
      generator_apply: ``(params, z [B, noise_dim]) -> x [B, ...]`` (``params``: the ``"params"`` collection).
      critic_apply: ``(params, x) -> scores [B]`` (or ``[B, 1]``).
      g_tx: the generator's optax optimiser.
      d_tx: the critic's optax optimiser.
      noise_dim: length of the generator's input ``z``.
      n_critic: critic steps per generator step.
      lambda_gp: weight of the gradient penalty.
      order: ``"critic_first"`` (Gulrajani et al.) or ``"generator_first"``.
      one_sided: penalise only gradient norms above 1.
      unroll: the critic ``lax.scan``'s unroll (``True``: fully unrolled --
        XLA's CPU backend runs convolutions inside a rolled loop body several times
        slower; pass 1 to keep the program small).

    Returns:
      ``step(state, real, key) -> (state, metrics)``, jitted: ``real`` is ``[n_critic, B, ...]`` (one real batch
      per critic step); ``key`` is fresh per iteration (``z`` and the interpolation weights come from it).
      Metrics (means over the critic steps): ``critic_loss``, ``wasserstein`` (``mean D(x) - mean D(G(z))``),
      ``gp``, ``generator_loss``.

    Raises:
      ValueError: an unknown ``order``, ``n_critic < 1``.

    References:
      Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, Algorithm 1 (``n_critic`` critic steps,
      then a generator step); the thesis's order
      (``generator_first``): the WGAN-GP hyperspectral anomaly-detection MSc thesis (NTNU/FFI, 2018) that
      ``experiments/hyperspectral_wgan_gp.py`` reproduces.

    Examples:
      >>> gen, crit = jaxkit.gan.Generator(noise_dim=8), jaxkit.gan.Critic()
      >>> tx = optax.adam(1e-4)
      >>> state = jaxkit.gan.init_state(jax.random.key(0), gen, crit, 8, jnp.zeros((2, 20, 1, 1)), tx, tx)
      >>> g_apply = lambda p, z: gen.apply({"params": p}, z)  # the steps work on params, not variables
      >>> d_apply = lambda p, x: crit.apply({"params": p}, x)
      >>> step = jaxkit.gan.make_train_step(g_apply, d_apply, tx, tx, noise_dim=8, n_critic=2)
      >>> state, metrics = step(state, jnp.ones((2, 16, 20, 1, 1)), jax.random.key(1))  # 2 batches of 16 pixels
      >>> int(state.step), sorted(metrics)
      (1, ['critic_loss', 'generator_loss', 'gp', 'wasserstein'])
    """
    if order not in ("critic_first", "generator_first"):
        raise ValueError(f"`order` must be 'critic_first' or 'generator_first', got {order!r}.")
    if int(n_critic) < 1:
        raise ValueError(f"`n_critic` must be >= 1, got {n_critic}.")

    def critic_update(carry, inputs):
        g_params, d_params, d_opt = carry
        real, key = inputs
        kz, kgp = jax.random.split(key)
        z = jax.random.normal(kz, (real.shape[0], int(noise_dim)), real.dtype)
        fake = jax.lax.stop_gradient(generator_apply(g_params, z))
        (loss, aux), grads = jax.value_and_grad(
            lambda p: critic_loss(critic_apply, kgp, p, real, fake, lambda_gp=lambda_gp, one_sided=one_sided),
            has_aux=True,
        )(d_params)
        upd, d_opt = d_tx.update(grads, d_opt, d_params)
        return (g_params, optax.apply_updates(d_params, upd), d_opt), {"critic_loss": loss, **aux}

    def generator_update(state, key, batch):
        z = jax.random.normal(key, (batch, int(noise_dim)), jnp.float32)
        loss, grads = jax.value_and_grad(lambda p: generator_loss(critic_apply, state.d_params, generator_apply(p, z)))(
            state.g_params
        )
        upd, g_opt = g_tx.update(grads, state.g_opt, state.g_params)
        return state.replace(g_params=optax.apply_updates(state.g_params, upd), g_opt=g_opt), loss

    def critics(state, real, key):
        keys = jax.random.split(key, real.shape[0])
        (_, d_params, d_opt), m = jax.lax.scan(
            critic_update, (state.g_params, state.d_params, state.d_opt), (real, keys), unroll=unroll
        )
        return state.replace(d_params=d_params, d_opt=d_opt), jax.tree.map(jnp.mean, m)

    @jax.jit
    def step(state: GanState, real: jax.Array, key: jax.Array):
        if real.ndim < 3 or real.shape[0] != int(n_critic):
            raise ValueError(f"`real` must be [n_critic={n_critic}, B, ...], got shape {real.shape}.")
        kc, kg = jax.random.split(key)
        if order == "generator_first":
            state, g_loss = generator_update(state, kg, real.shape[1])
            state, m = critics(state, real, kc)
        else:
            state, m = critics(state, real, kc)
            state, g_loss = generator_update(state, kg, real.shape[1])
        return state.replace(step=state.step + 1), {**m, "generator_loss": g_loss}

    return step
