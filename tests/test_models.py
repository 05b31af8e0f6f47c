import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxkit import data, models
from jaxkit.checkpoint import Checkpointer


def test_mlp_matches_float64_numpy_forward():
    model = models.MLP((7, 5, 3))
    x = np.random.default_rng(0).normal(size=(6, 2, 2)).astype(np.float32)
    params = model.init(jax.random.key(1), x)["params"]
    assert list(params) == ["Dense_0", "Dense_1", "Dense_2"]
    h = x.reshape(6, -1).astype(np.float64)
    for i in range(3):
        h = h @ np.asarray(params[f"Dense_{i}"]["kernel"], np.float64) + np.asarray(params[f"Dense_{i}"]["bias"])
        if i < 2:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(model.apply({"params": params}, x), h, rtol=1e-5, atol=1e-5)


def test_vgg_shapes_names_and_bad_input():
    model = models.VGG(cfg=(4, "M", 8, "M"), num_classes=5)
    v = model.init(jax.random.key(0), jnp.ones((2, 8, 8, 1)))
    assert model.apply(v, jnp.ones((3, 8, 8, 1))).shape == (3, 5)
    assert "bias" not in v["params"]["Conv_0"]  # BN follows, so the conv has no bias
    assert set(v["batch_stats"]) == {"BatchNorm_0", "BatchNorm_1"}
    with pytest.raises(ValueError, match=r"expects `x` as NHWC images \(rank 4\)"):
        model.apply(v, jnp.ones((3, 64)))
    with pytest.raises(ValueError, match="`features` is empty"):
        models.MLP(()).init(jax.random.key(0), jnp.ones((1, 3)))


def test_init_variables_equals_flax_init_with_static_kwargs():
    x = np.ones((2, 8, 8, 1), np.float32)
    for module, kw in [(models.VGG(cfg=(4, "M", 8), num_classes=5), {"train": False}), (models.MLP((6, 3)), {})]:
        ref = module.init(jax.random.key(3), jnp.asarray(x), **kw)  # eager Flax: the reference draws
        got = models.init_variables(module, jax.random.key(3), x, **kw)
        assert jax.tree.structure(got) == jax.tree.structure(ref)
        # the same draws; compiled as one program, only the last bit of rounding may differ
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), got, ref)
        other = models.init_variables(module, jax.random.key(4), x, **kw)
        assert not np.allclose(other["params"]["Dense_0"]["kernel"], got["params"]["Dense_0"]["kernel"])
        # inside a trace it is plain module.init, part of the enclosing program
        traced = jax.jit(lambda k: models.init_variables(module, k, x, **kw))(jax.random.key(3))
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), traced, ref)


@pytest.fixture(scope="module")
def small_state(digits):
    return models.create_train_state(
        jax.random.key(0), models.VGG(cfg=(8, "M", 8)), digits.train.x[:1], optax.sgd(0.1, momentum=0.9)
    )


def test_train_step_lowers_the_loss_and_updates_batch_stats(small_state, digits):
    x, y = digits.train.x[:64], digits.train.y[:64]
    state, first = models.train_step(small_state, x, y)
    for _ in range(60):
        state, m = models.train_step(state, x, y)
    assert float(m["loss"]) < 0.5 * float(first["loss"])
    assert int(state.step) == 61
    assert not np.allclose(state.batch_stats["BatchNorm_0"]["mean"], small_state.batch_stats["BatchNorm_0"]["mean"])


def test_train_step_traces_once():
    step = jax.jit(chex.assert_max_traces(models.train_step.__wrapped__, n=1))
    state = models.create_train_state(
        jax.random.key(0), models.MLP((4, 2)), np.ones((1, 3), np.float32), optax.adam(1e-2)
    )
    x, y = np.ones((5, 3), np.float32), np.zeros(5, np.int32)
    for _ in range(3):
        state, _ = step(state, x, y)


def test_evaluate_matches_a_direct_computation(small_state, digits):
    x, y = digits.test.x, digits.test.y
    out = models.evaluate(small_state, x, y, batch_size=100)  # 360 rows: last batch padded
    logits = np.asarray(small_state.apply(x), np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    np.testing.assert_allclose(out["loss"], -logp[np.arange(len(y)), y].mean(), rtol=1e-5)
    assert out["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y))
    # sums stay on the device and come back in one transfer, not one host sync per batch (a transfer guard
    # cannot see float() on CPU, where device buffers are host memory: count the fetches instead)
    fetched, real = [], jax.device_get
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jax, "device_get", lambda t: fetched.append(1) or real(t))
        again = models.evaluate(small_state, x, y, batch_size=100)
    assert len(fetched) == 1 and again == pytest.approx(out, rel=1e-6)


def test_checkpointer_round_trip_keeps_structure_and_dtypes(tmp_path, small_state):
    tree = {"step": small_state.step, "params": small_state.params, "opt_state": small_state.opt_state}
    with Checkpointer(tmp_path / "c", max_to_keep=2) as ck:
        assert ck.latest_step() is None
        for s in (1, 2, 3):
            ck.save(s, tree, {"note": s})
        assert ck.all_steps() == [2, 3]
        back, meta = ck.restore(tree)
    assert meta == {"note": 3}
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    chex.assert_trees_all_equal(back, jax.tree.map(np.asarray, tree))
    assert back["step"].dtype == np.int32
    with pytest.raises(ValueError, match="`max_to_keep`"):
        Checkpointer(tmp_path / "d", max_to_keep=0)


class _Stop(Exception):
    pass


def test_interrupted_training_resumes_at_the_right_epoch_with_the_same_result(tmp_path):
    ds = data.load_digits(seed=1)
    ds = data.Dataset("digits_small", data.Split(ds.train.x[:300], ds.train.y[:300]), ds.test, 10)

    def fresh():
        return models.create_train_state(
            jax.random.key(0), models.VGG(cfg=(4, "M", 8)), ds.train.x[:1], optax.sgd(0.05, momentum=0.9)
        )

    kw = dict(key=jax.random.key(5), epochs=4, batch_size=32, progress=False)
    ref, ref_hist = models.train(fresh(), ds, **kw)

    epochs_run = []

    def crash_after_two(epoch, state, record):
        epochs_run.append(epoch)
        if epoch == 2:
            raise _Stop

    with pytest.raises(_Stop):
        models.train(fresh(), ds, checkpoint_dir=str(tmp_path), callback=crash_after_two, **kw)
    resumed, hist = models.train(
        fresh(), ds, checkpoint_dir=str(tmp_path), callback=lambda e, s, r: epochs_run.append(e), **kw
    )
    assert epochs_run == [1, 2, 3, 4]  # epochs 1-2 were not redone
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
    assert int(resumed.step) == int(ref.step) == 4 * (300 // 32)
    chex.assert_trees_all_close(resumed.params, ref.params, rtol=1e-6, atol=1e-7)
    assert hist[-1]["test_accuracy"] == pytest.approx(ref_hist[-1]["test_accuracy"])
    with pytest.raises(ValueError, match=r"config\['batch_size'\] is 32 there and 16 here"):
        models.train(fresh(), ds, checkpoint_dir=str(tmp_path), **{**kw, "batch_size": 16})


def test_train_rejects_bad_arguments(small_state, digits):
    with pytest.raises(ValueError, match=r"`batch_size` must lie in \[1, 1437\]"):
        models.train(small_state, digits, key=jax.random.key(0), epochs=1, batch_size=5000)
    with pytest.raises(ValueError, match="`epochs` must be >= 0"):
        models.train(small_state, digits, key=jax.random.key(0), epochs=-1)


def test_before_epoch_hook_transforms_the_state_before_each_epoch(small_state, digits):
    seen = []

    def hook(epoch, state):
        seen.append((epoch, int(state.step)))
        return state.replace(params=jax.tree.map(jnp.zeros_like, state.params)) if epoch == 1 else state

    steps = len(digits.train) // 64
    state, _ = models.train(small_state, digits, key=jax.random.key(0), epochs=2, progress=False, before_epoch=hook)
    assert seen == [(0, 0), (1, steps)]
    plain, _ = models.train(small_state, digits, key=jax.random.key(0), epochs=2, progress=False)
    # the zeroed restart shows in the result: far smaller weights than the uninterrupted run
    norm = lambda p: float(sum(jnp.sum(x**2) for x in jax.tree.leaves(p)))
    assert norm(state.params) < 0.5 * norm(plain.params)


@pytest.mark.parametrize(
    "kw",
    [
        dict(padding="SAME", strides=(1, 1)),
        dict(padding="VALID", strides=(2, 2)),
        dict(padding=((2, 0), (1, 1)), strides=(1, 2)),
        dict(padding="SAME", strides=(1, 1), kernel_dilation=(2, 2)),
        dict(padding="SAME", feature_group_count=2),
    ],
)
def test_im2col_conv_equals_xla_conv_also_under_vmap(kw):
    import flax.linen as nn

    conv = nn.Conv(6, (3, 3), **kw)
    x = jax.random.normal(jax.random.key(0), (2, 9, 7, 4))
    v = conv.init(jax.random.key(1), x)
    ref = conv.apply(v, x)
    got = models.with_im2col(conv.apply)(v, x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-5, atol=1e-5)
    # a population of kernels under vmap (the case im2col exists for), gradients included
    vs = jax.tree.map(lambda a: jnp.stack([a, 2 * a, -a]), v)
    loss = lambda f: lambda v: jnp.sum(f(v, x) ** 2)
    g_ref = jax.vmap(jax.grad(loss(conv.apply)))(vs)
    g_got = jax.vmap(jax.grad(loss(models.with_im2col(conv.apply))))(vs)
    for a, b in zip(jax.tree.leaves(g_got), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)


def _zero_x(ds):
    return data.Dataset(ds.name, data.Split(np.zeros_like(ds.train.x), ds.train.y), ds.test, ds.num_classes)


def test_train_augments_every_minibatch_inside_the_step(small_state, digits):
    kw = dict(key=jax.random.key(0), epochs=1, batch_size=64, progress=False)
    plain, _ = models.train(small_state, digits, **kw)
    # an identity augmentation is the plain run (another compiled program: rounding-level tolerance)
    same, _ = models.train(small_state, digits, augment=lambda k, x: x, **kw)
    chex.assert_trees_all_close(same.params, plain.params, rtol=1e-5, atol=1e-6)
    # the augmentation's output is what the step trains on: zeroing it = training on zero images
    zeroed, _ = models.train(small_state, digits, augment=lambda k, x: jnp.zeros_like(x), **kw)
    on_zeros, _ = models.train(small_state, _zero_x(digits), **kw)
    chex.assert_trees_all_close(zeroed.params, on_zeros.params, rtol=1e-5, atol=1e-6)
    # a keyed augmentation: the same key repeats the run, and it differs from the plain run
    a1, _ = models.train(small_state, digits, augment=data.random_crop_flip, **kw)
    a2, _ = models.train(small_state, digits, augment=data.random_crop_flip, **kw)
    chex.assert_trees_all_equal(a1.params, a2.params)
    assert not np.allclose(a1.params["Dense_0"]["kernel"], plain.params["Dense_0"]["kernel"], atol=1e-4)
    with pytest.raises(TypeError, match="`augment` must be a function"):
        models.train(small_state, digits, augment="crop", **kw)


def test_train_draws_a_fresh_augmentation_key_per_batch_and_epoch(small_state, digits):
    seen = []

    def spy(k, x):
        jax.debug.callback(lambda kd: seen.append(tuple(np.asarray(kd))), jax.random.key_data(k))
        return x

    models.train(small_state, digits, key=jax.random.key(0), epochs=2, batch_size=256, progress=False, augment=spy)
    jax.effects_barrier()
    assert len(seen) == 2 * (len(digits.train) // 256) and len(set(seen)) == len(seen)


def test_resnet56_refuses_settings_it_cannot_build():
    with pytest.raises(ValueError, match="`shortcut` must be 'A' or 'B'"):
        models.resnet56(shortcut="C")
    with pytest.raises(ValueError, match="`widths` must be three positive integers"):
        models.resnet56(widths=(16, 32))
    assert models.resnet56(widths=(8, 16, 32)).widths == (8, 16, 32)
