"""WGAN-GP losses, train step and the thesis networks (jaxkit.gan)."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxkit import gan


def linear_critic(w):
    return lambda p, x: x.reshape(x.shape[0], -1) @ p


@pytest.mark.parametrize("one_sided", [False, True])
def test_gradient_penalty_of_a_linear_critic(one_sided):
    rng = np.random.default_rng(0)
    real = jnp.asarray(rng.normal(size=(16, 3, 2)), jnp.float32)
    fake = jnp.asarray(rng.normal(size=(16, 3, 2)), jnp.float32)
    for w in (rng.normal(size=6) * 0.1, rng.normal(size=6) * 2, np.zeros(6)):
        w = jnp.asarray(w, jnp.float32)
        gp = gan.gradient_penalty(linear_critic(w), jax.random.key(0), w, real, fake, one_sided=one_sided)
        n = float(np.linalg.norm(np.asarray(w, np.float64)))
        expected = max(n - 1, 0) ** 2 if one_sided else (n - 1) ** 2
        assert float(gp) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    # zero gradient: finite penalty and finite gradient (eps inside the sqrt)
    zero = jnp.zeros(6)
    g = jax.grad(lambda p: gan.gradient_penalty(linear_critic(p), jax.random.key(0), p, real, fake))(zero)
    assert np.all(np.isfinite(np.asarray(g)))


def test_gradient_penalty_norm_spans_all_non_batch_axes_and_uses_uniform_weights():
    # critic D(x) = sum(x^2)/2 has gradient x-hat: its norm over all axes per sample
    real = jnp.ones((8, 2, 3))
    fake = -jnp.ones((8, 2, 3))
    d = lambda p, x: 0.5 * jnp.sum(x.reshape(x.shape[0], -1) ** 2, -1)
    key = jax.random.key(3)
    xhat = gan.interpolate(key, real, fake)
    a = (1 - np.asarray(xhat)[:, 0, 0]) / 2  # xhat = 1 - 2a
    assert np.all((a >= 0) & (a <= 1)) and np.std(a) > 0.1  # U[0, 1], one per sample
    expected = np.mean((np.sqrt(6) * np.abs(1 - 2 * a) - 1) ** 2)
    assert float(gan.gradient_penalty(d, key, None, real, fake)) == pytest.approx(expected, rel=1e-4)


def test_losses_and_bad_input():
    w = jnp.asarray([1.0, -2.0])
    real, fake = jnp.ones((4, 2)), jnp.zeros((4, 2))
    loss, aux = gan.critic_loss(linear_critic(w), jax.random.key(0), w, real, fake, lambda_gp=10.0)
    assert float(aux["wasserstein"]) == pytest.approx(-1.0)
    assert float(loss) == pytest.approx(1.0 + 10 * (np.sqrt(5) - 1) ** 2, rel=1e-5)
    assert float(gan.generator_loss(linear_critic(w), w, real)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same shape"):
        gan.gradient_penalty(linear_critic(w), jax.random.key(0), w, real, fake[:2])


@pytest.mark.parametrize("window", [1, 3])
def test_thesis_network_shapes(window):
    critic, generator = gan.Critic(window=window, dim=2), gan.Generator(window=window, dim=2, noise_dim=4)
    x = jnp.zeros((3, 20, window, window))
    if window > 1:  # the 3-D convolutions take a minute to compile on XLA:CPU: check shapes abstractly
        pc = jax.eval_shape(critic.init, jax.random.key(0), x)
        pg = jax.eval_shape(generator.init, jax.random.key(1), jnp.zeros((1, 4)))
        assert jax.eval_shape(critic.apply, pc, x).shape == (3,)
        assert jax.eval_shape(generator.apply, pg, jnp.zeros((5, 4))).shape == (5, 20, window, window)
        assert jax.eval_shape(lambda p: critic.apply(p, x, method=critic.features), pc).shape == (3, 64 * 9)
        return
    pc = critic.init(jax.random.key(0), x)
    pg = generator.init(jax.random.key(1), jnp.zeros((1, 4)))
    assert critic.apply(pc, x).shape == (3,)
    out = generator.apply(pg, jax.random.normal(jax.random.key(2), (5, 4)))
    assert out.shape == (5, 20, window, window) and float(jnp.max(jnp.abs(out))) < 1
    # no normalisation layers anywhere (the thesis removed them)
    names = " ".join(jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_leaves_with_path(pc))
    assert "scale" not in names and "batch_stats" not in pc
    assert critic.apply(pc, x, method=critic.features).shape == (3, 64 * window * window)


@pytest.mark.parametrize("transpose", [False, True])
def test_width2_taps_equal_flax_conv_layers(transpose):
    """The WINDOW = 1 layers (two shifted matmuls) against Flax's own Conv / ConvTranspose: same params, outputs."""
    from jaxkit.gan.thesis import _Taps2

    rng = np.random.default_rng(0)
    checked = 0
    for t in (1, 2, 4, 5, 10, 20):
        for stride in (1, 2):
            for pad in ((0, 0), (0, 1), (1, 1)):
                x = jnp.asarray(rng.normal(size=(3, t, 4)), jnp.float32)
                layer = nn.ConvTranspose if transpose else nn.Conv
                ref = layer(5, (2,), (stride,), padding=(pad,))
                if t + sum(pad) < 2 and not transpose:
                    continue  # no full window: Flax returns an empty axis
                want_p = ref.init(jax.random.key(1), x)
                got_p = _Taps2(5, stride, pad, transpose).init(jax.random.key(1), x)
                # same names, shapes and initialisers; the draws come from two module programs: equal to rounding
                chex.assert_trees_all_equal_shapes_and_dtypes(got_p, want_p)
                chex.assert_trees_all_close(got_p, want_p, rtol=1e-6, atol=1e-7)
                got, want = _Taps2(5, stride, pad, transpose).apply(want_p, x), ref.apply(want_p, x)
                assert got.shape == want.shape, (t, stride, pad, got.shape, want.shape)
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
                checked += 1
    assert checked >= 30


def test_thesis_depth_schedule():
    """Depth 20 -> 10 -> 5 -> 4 -> 2 -> 1 in the critic, mirrored in the generator."""
    critic = gan.Critic(dim=1)
    x = jnp.zeros((2, 20, 1, 1))
    _, st = critic.apply(
        critic.init(jax.random.key(0), x),
        x,
        capture_intermediates=True,
        method=critic.features,
        mutable=["intermediates"],
    )
    depths = [st["intermediates"][f"block_{i}"]["__call__"][0].shape[1] for i in range(5)]
    assert depths == [10, 5, 4, 2, 1]
    gen = gan.Generator(dim=1)
    z = jnp.zeros((2, 4))
    _, st = gen.apply(gen.init(jax.random.key(0), z), z, capture_intermediates=True, mutable=["intermediates"])
    assert [st["intermediates"][f"block_{i}"]["__call__"][0].shape[1] for i in range(5)] == [2, 4, 5, 10, 20]


def test_bad_network_config():
    with pytest.raises(ValueError, match="bands"):
        gan.Critic(bands=10).init(jax.random.key(0), jnp.zeros((1, 10, 1, 1)))
    with pytest.raises(ValueError, match="window"):
        gan.Generator(window=2).init(jax.random.key(0), jnp.zeros((1, 4)))
    with pytest.raises(ValueError, match="expects"):
        gan.Critic().init(jax.random.key(0), jnp.zeros((1, 19, 1, 1)))


def test_thesis_lr_and_presets():
    lr = gan.thesis_lr(300)
    assert [float(lr(s)) for s in (0, 99, 100, 199, 200, 299)] == pytest.approx([5e-6, 5e-6, 1e-6, 1e-6, 5e-7, 5e-7])
    critic_lr = gan.thesis_lr(300, 5)
    assert float(critic_lr(499)) == pytest.approx(5e-6) and float(critic_lr(500)) == pytest.approx(1e-6)
    assert gan.PRESETS["thesis"].order == "generator_first" and gan.PRESETS["thesis"].batch_size == 256
    assert gan.PRESETS["gulrajani"].order == "critic_first"


class _MLP(nn.Module):
    out: int
    hidden: int = 64

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(self.hidden)(x))
        x = nn.relu(nn.Dense(self.hidden)(x))
        y = nn.Dense(self.out)(x)
        return y[:, 0] if self.out == 1 else y


def eight_gaussians(key, n):
    k1, k2 = jax.random.split(key)
    angles = jax.random.randint(k1, (n,), 0, 8) * (2 * jnp.pi / 8)
    centres = 2.0 * jnp.stack([jnp.cos(angles), jnp.sin(angles)], 1)
    return centres + 0.05 * jax.random.normal(k2, (n, 2))


def energy_distance(a, b):
    """Szekely's energy distance (float64, brute force): 0 iff the distributions agree."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = lambda x, y: np.mean(np.linalg.norm(x[:, None] - y[None], axis=-1))
    return 2 * d(a, b) - d(a, a) - d(b, b)


def test_wgan_gp_moves_generator_toward_eight_gaussians():
    # Gulrajani et al.'s toy setting: Adam(b1=0.5, b2=0.9), 5 critic steps, lambda = 0.1 for the toy data
    gen, critic = _MLP(2), _MLP(1)
    g_tx = d_tx = optax.adam(3e-4, b1=0.5, b2=0.9)
    state = gan.init_state(jax.random.key(0), gen, critic, 2, jnp.zeros((1, 2)), g_tx, d_tx)
    ga = lambda p, z: gen.apply({"params": p}, z)
    step = gan.make_train_step(
        ga,
        lambda p, x: critic.apply({"params": p}, x),
        g_tx,
        d_tx,
        noise_dim=2,
        n_critic=5,
        lambda_gp=0.1,
        order="critic_first",
    )
    z = jax.random.normal(jax.random.key(9), (1000, 2))
    ref = eight_gaussians(jax.random.key(5), 1000)
    start = energy_distance(ga(state.g_params, z), ref)
    for i in range(1000):
        key = jax.random.key(100 + i)
        real = eight_gaussians(jax.random.fold_in(key, 1), 5 * 128).reshape(5, 128, 2)
        state, m = step(state, real, key)
    end = energy_distance(ga(state.g_params, z), ref)
    assert int(state.step) == 1000 and all(np.isfinite(float(v)) for v in m.values())
    assert end < 0.25 * start, (start, end)


def test_train_step_compiles_once_and_checks_real_shape():
    gen, critic = _MLP(2, 8), _MLP(1, 8)
    tx = optax.adam(1e-3)
    state = gan.init_state(jax.random.key(0), gen, critic, 2, jnp.zeros((1, 2)), tx, tx)
    traced = chex.assert_max_traces(lambda p, z: gen.apply({"params": p}, z), n=2)  # generator + critic phase
    step = gan.make_train_step(
        traced, lambda p, x: critic.apply({"params": p}, x), tx, tx, noise_dim=2, n_critic=3, order="generator_first"
    )
    for i in range(3):
        state, _ = step(state, jnp.ones((3, 16, 2)), jax.random.key(i))
    with pytest.raises(ValueError, match="n_critic"):
        step(state, jnp.ones((4, 16, 2)), jax.random.key(0))
    with pytest.raises(ValueError, match="order"):
        gan.make_train_step(traced, traced, tx, tx, noise_dim=2, order="both")
