"""WGAN-GP: losses, a jitted training iteration, presets, and the hyperspectral thesis networks.

critic = gan.Critic(window=1, dim=8); generator = gan.Generator(noise_dim=4)
g_tx, d_tx = gan.PRESETS["gulrajani"].optimizers()
state = gan.init_state(key, generator, critic, 4, x[:1], g_tx, d_tx)
step = gan.make_train_step(lambda p, z: generator.apply({"params": p}, z),
                           lambda p, x: critic.apply({"params": p}, x), g_tx, d_tx, noise_dim=4)
state, metrics = step(state, real_batches, key)   # real_batches: [5, B, 20, 1, 1]
"""

from jaxkit.gan.losses import critic_loss, generator_loss, gradient_penalty, interpolate
from jaxkit.gan.thesis import BANDS, Critic, Generator
from jaxkit.gan.train import PRESETS, GanState, Preset, init_state, make_train_step, thesis_lr

__all__ = [
    "BANDS",
    "PRESETS",
    "Critic",
    "GanState",
    "Generator",
    "Preset",
    "critic_loss",
    "generator_loss",
    "gradient_penalty",
    "init_state",
    "interpolate",
    "make_train_step",
    "thesis_lr",
]
