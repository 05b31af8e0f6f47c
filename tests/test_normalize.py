"""jaxkit.normalize: centralisation in the Flax layout, projections, reparameterisation, LocalNorm, dynamic BN."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_same_predictions

from jaxkit import normalize as nz


class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(6, (3, 3))(x))
        x = x.mean((1, 2))
        return nn.Dense(3)(nn.relu(nn.Dense(5)(x)))


@pytest.fixture(scope="module")
def params():
    return Net().init(jax.random.key(0), jnp.zeros((1, 6, 6, 2)))["params"]


def _filter_means(tree):
    return [np.abs(np.asarray(x).reshape(-1, x.shape[-1]).mean(0)).max() for x in jax.tree.leaves(tree) if x.ndim > 1]


def test_gc_zeroes_every_output_filter_mean_and_skips_biases(params):
    g = jax.tree.map(lambda x: jax.random.normal(jax.random.key(1), x.shape) + 3.0, params)
    tx = nz.centralize_gradients()
    out, _ = tx.update(g, tx.init(params))
    assert max(_filter_means(out)) < 1e-5
    np.testing.assert_array_equal(out["Conv_0"]["bias"], g["Conv_0"]["bias"])
    # mean over (kh, kw, in) per output channel: reference in float64 numpy
    k = np.asarray(g["Conv_0"]["kernel"], np.float64)
    np.testing.assert_allclose(out["Conv_0"]["kernel"], k - k.mean((0, 1, 2), keepdims=True), rtol=1e-5, atol=1e-5)


def test_gc_equals_optax_centralize_after_moving_the_output_axis_first():
    k = jax.random.normal(jax.random.key(2), (3, 3, 4, 8)) + 1.0
    ours, _ = nz.centralize_gradients().update({"kernel": k}, optax.EmptyState())
    theirs, _ = optax.centralize().update({"kernel": jnp.moveaxis(k, -1, 0)}, optax.EmptyState())
    np.testing.assert_allclose(ours["kernel"], jnp.moveaxis(theirs["kernel"], 0, -1), atol=1e-6)
    # and optax.centralize on the Flax layout centres different slices
    wrong, _ = optax.centralize().update({"kernel": k}, optax.EmptyState())
    assert not np.allclose(wrong["kernel"], ours["kernel"], atol=1e-3)


def test_weight_transforms_against_numpy_and_idempotent(params):
    w = np.asarray(params["Dense_0"]["kernel"], np.float64) + 0.5
    c = w - w.mean(0)
    np.testing.assert_allclose(nz.center(jnp.asarray(w)), c, atol=1e-6)
    np.testing.assert_allclose(nz.standardize(jnp.asarray(w), eps=0.0), c / c.std(0), rtol=1e-4)
    np.testing.assert_allclose(nz.unit_norm(jnp.asarray(w)), w / np.linalg.norm(w, axis=0), rtol=1e-5)
    once = nz.transform_weights(params, "center")
    twice = nz.transform_weights(once, "center")
    for a, b in zip(jax.tree.leaves(once), jax.tree.leaves(twice)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert max(_filter_means(once)) < 1e-6
    only = nz.transform_weights(params, "standardize", mask="Conv_*/kernel")
    np.testing.assert_array_equal(only["Dense_0"]["kernel"], params["Dense_0"]["kernel"])


def test_sgd_with_gc_keeps_a_centred_dense_layer_centred():
    model = nn.Dense(4)
    x = jax.random.normal(jax.random.key(3), (64, 5))
    y = jax.random.normal(jax.random.key(4), (64, 4))
    p = nz.transform_weights(model.init(jax.random.key(5), x)["params"], "center")
    tx = optax.chain(nz.centralize_gradients(), optax.sgd(0.1))
    st = tx.init(p)
    for _ in range(20):
        g = jax.grad(lambda q: jnp.mean((model.apply({"params": q}, x) - y) ** 2))(p)
        u, st = tx.update(g, st, p)
        p = optax.apply_updates(p, u)
    assert max(_filter_means(p)) < 1e-6
    # without GC it drifts off
    q = nz.transform_weights(model.init(jax.random.key(5), x)["params"], "center")
    g = jax.grad(lambda q: jnp.mean((model.apply({"params": q}, x) - y) ** 2))(q)
    assert max(_filter_means(optax.apply_updates(q, jax.tree.map(lambda v: -0.1 * v, g)))) > 1e-4


def test_projection_lands_on_the_constraint_and_needs_params(params):
    u = jax.tree.map(lambda x: jax.random.normal(jax.random.key(6), x.shape), params)
    for kind in ("center", "standardize", "normalize"):
        tx = nz.project_weights(kind)
        upd, _ = tx.update(u, tx.init(params), params)
        new = optax.apply_updates(params, upd)
        want = nz.transform_weights(optax.apply_updates(params, u), kind)
        for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="params"):
        nz.project_weights().update(u, optax.EmptyState())


def test_reparameterisation_function_and_module_agree(params):
    x = jax.random.normal(jax.random.key(7), (4, 6, 6, 2))
    f = nz.reparameterize(Net().apply, "standardize")
    want = Net().apply({"params": nz.transform_weights(params, "standardize")}, x)
    np.testing.assert_allclose(f({"params": params}, x), want, rtol=1e-5, atol=1e-6)
    mod = nz.Reparameterized(Net(), "standardize")
    v = mod.init(jax.random.key(0), x)
    assert jax.tree.structure(v["params"]) == jax.tree.structure(params)
    np.testing.assert_allclose(mod.apply({"params": params}, x), want, rtol=1e-5, atol=1e-6)
    # gradients flow through the transform: the raw kernel's gradient has zero filter means for WC
    g = jax.grad(lambda p: jnp.sum(nz.reparameterize(Net().apply, "center")({"params": p}, x) ** 2))(params)
    assert max(_filter_means(g)) < 1e-4


def test_centralisation_bad_input(params):
    with pytest.raises(ValueError, match="`mask`.*Nope"):
        nz.centralize_gradients(mask="Nope_*/kernel").update(params, optax.EmptyState())
    with pytest.raises(ValueError, match="`mask`"):
        nz.transform_weights(params, "center", mask="*/bias")  # only 1-D leaves: nothing to centre
    with pytest.raises(ValueError, match="kind"):
        nz.transform_weights(params, "whiten")


# ---------------------------------------------------------------- LocalNorm
def test_localnorm_one_group_equals_flax_batchnorm():
    x = jax.random.normal(jax.random.key(8), (8, 5, 5, 3)) * 2 + 1
    ln = nz.LocalNorm(1)
    v = ln.init(jax.random.key(0), x)
    v = {"params": {"scale": jnp.array([[1.5, 0.5, 2.0]]), "bias": jnp.array([[0.1, -0.2, 0.3]])}}
    bn = nn.BatchNorm(use_running_average=False, epsilon=1e-5)
    bv = bn.init(jax.random.key(0), x)
    bv = {
        "params": {"scale": v["params"]["scale"][0], "bias": v["params"]["bias"][0]},
        "batch_stats": bv["batch_stats"],
    }
    want, _ = bn.apply(bv, x, mutable=["batch_stats"])
    np.testing.assert_allclose(ln.apply(v, x), want, rtol=1e-4, atol=1e-5)


def test_localnorm_group_size_one_is_instance_norm_with_group_affine_and_moments_match_numpy():
    k = 4
    x = jax.random.normal(jax.random.key(9), (k, 6, 6, 3)) * 3 - 1
    scale = jax.random.uniform(jax.random.key(10), (k, 3), minval=0.5, maxval=2)
    bias = jax.random.normal(jax.random.key(11), (k, 3))
    out = nz.LocalNorm(k).apply({"params": {"scale": scale, "bias": bias}}, x)
    xn = np.asarray(x, np.float64)
    inst = (xn - xn.mean((1, 2), keepdims=True)) / np.sqrt(xn.var((1, 2), keepdims=True) + 1e-5)
    want = inst * np.asarray(scale)[:, None, None, :] + np.asarray(bias)[:, None, None, :]
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    # groups of 3 consecutive samples: per-(group, channel) moments over (samples, H, W)
    x = jax.random.normal(jax.random.key(12), (12, 4, 4, 2)) + jnp.arange(12.0)[:, None, None, None]
    out = np.asarray(nz.LocalNorm(4).apply({"params": {"scale": jnp.ones((4, 2)), "bias": jnp.zeros((4, 2))}}, x))
    g = out.reshape(4, 3, 4, 4, 2)
    np.testing.assert_allclose(g.mean((1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(g.var((1, 2, 3)), 1, atol=1e-3)
    xg = np.asarray(x, np.float64).reshape(4, 3, 4, 4, 2)
    ref = (xg - xg.mean((1, 2, 3), keepdims=True)) / np.sqrt(xg.var((1, 2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="divisible by `num_groups`"):
        nz.LocalNorm(5).apply({"params": {"scale": jnp.ones((5, 2)), "bias": jnp.zeros((5, 2))}}, x)


class LNNet(nn.Module):
    norm: str = "local"
    groups: int = 4

    @nn.compact
    def __call__(self, x, group=None, train=False):
        x = nn.Conv(4, (3, 3), use_bias=False)(x)
        if self.norm == "local":
            x = nz.LocalNorm(self.groups, name="norm0")(x, group)
        else:
            x = nn.BatchNorm(use_running_average=not train, name="norm0")(x)
        return nn.Dense(3)(nn.relu(x).mean((1, 2)))


def test_localnorm_test_modes_and_voting_against_loops():
    x = jax.random.normal(jax.random.key(13), (8, 5, 5, 2))
    net = LNNet()
    predict = jax.jit(nz.localnorm_predict, static_argnums=(0, 3, 4, 5))
    v = net.init(jax.random.key(1), x)
    v = {
        "params": {
            **v["params"],
            "norm0": {
                "scale": jax.random.uniform(jax.random.key(2), (4, 4), minval=0.5, maxval=2.0),
                "bias": jax.random.normal(jax.random.key(3), (4, 4)),
            },
        }
    }
    ap = jax.jit(lambda xx, g: net.apply(v, xx, group=g))  # the reference loops, one image / group at a time
    per = np.stack([[np.asarray(ap(x[i : i + 1], g))[0] for i in range(8)] for g in range(4)])
    single = predict(net.apply, v, x, 4, "single", 2)
    assert_same_predictions(single, per[2])  # one image at a time vs the batch: two programs
    votes = np.stack([np.bincount(per[:, i].argmax(-1), minlength=3) for i in range(8)])
    sv = np.asarray(predict(net.apply, v, x, 4, "single_vote"))
    assert all(votes[i, sv[i]] == votes[i].max() for i in range(8))
    assert_same_predictions(predict(net.apply, v, x, 4, "groups"), net.apply(v, x))
    whole = np.stack([np.asarray(ap(x, g)) for g in range(4)])
    bv = np.asarray(predict(net.apply, v, x, 4, "batch_vote"))
    bvotes = np.stack([np.bincount(whole[:, i].argmax(-1), minlength=3) for i in range(8)])
    assert all(bvotes[i, bv[i]] == bvotes[i].max() for i in range(8))
    with pytest.raises(ValueError, match="mode"):
        nz.localnorm_predict(net.apply, v, x, 4, "ensemble")


def test_majority_vote_breaks_ties_by_probability():
    logits = jnp.array([[[5.0, 0, 0]], [[0, 1.0, 0]], [[0, 0.5, 0.4]], [[3.0, 0, 0]]])  # votes 0,1,1,0 -> tie
    assert int(nz.majority_vote(logits)[0]) == 0  # class 0 has the larger summed probability


def test_bn_to_localnorm_and_dynamic_bn():
    x = jax.random.normal(jax.random.key(14), (8, 5, 5, 2)) * 2 + 1
    bn_net, ln_net = LNNet(norm="bn"), LNNet(norm="local", groups=4)
    v = bn_net.init(jax.random.key(0), x)
    v = {
        "params": {**v["params"], "norm0": {"scale": jnp.arange(1.0, 5.0), "bias": jnp.arange(4.0)}},
        "batch_stats": v["batch_stats"],
    }
    lv = nz.bn_to_localnorm(v, 4)
    assert lv["params"]["norm0"]["scale"].shape == (4, 4)
    np.testing.assert_array_equal(lv["params"]["norm0"]["bias"][3], jnp.arange(4.0))
    # dynamic BN = BN with the batch's own statistics = LocalNorm, whole batch as one group
    dyn = nz.dynamic_bn_apply(bn_net.apply, v, x)
    np.testing.assert_allclose(dyn, ln_net.apply(lv, x, group=0), rtol=1e-4, atol=1e-5)
    # and the stored running averages were not touched
    assert np.allclose(v["batch_stats"]["norm0"]["mean"], 0)
    with pytest.raises(ValueError, match="batch_stats"):
        nz.bn_to_localnorm({"params": v["params"]}, 4)


def test_gc_and_wc_train_step_is_jittable_and_compiles_once(params):
    import chex

    x = jax.random.normal(jax.random.key(15), (4, 6, 6, 2))
    y = jnp.array([0, 1, 2, 0])
    apply = nz.reparameterize(Net().apply, "center", ["Conv_*/kernel", "Dense_0/kernel"])
    tx = optax.chain(nz.centralize_gradients(["Conv_*/kernel", "Dense_0/kernel"]), optax.sgd(0.1, momentum=0.9))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(p, o):
        loss, g = jax.value_and_grad(
            lambda q: optax.softmax_cross_entropy_with_integer_labels(apply({"params": q}, x), y).mean()
        )(p)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o, loss

    p, o = params, tx.init(params)
    losses = []
    for _ in range(30):
        p, o, loss = step(p, o)
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    # the dense classifier (Dense_1) was not selected: its gradient was not centred
    assert _filter_means({"k": p["Dense_1"]["kernel"] - params["Dense_1"]["kernel"]})[0] > 1e-6


def test_gc_on_top_of_differentiable_wc_is_a_no_op_but_not_with_straight_through(params):
    x = jax.random.normal(jax.random.key(16), (4, 6, 6, 2))
    mask = ["Conv_*/kernel", "Dense_0/kernel"]

    def grads(st):
        f = nz.reparameterize(Net().apply, "center", mask, straight_through=st)
        return jax.grad(lambda p: jnp.sum(f({"params": p}, x) ** 2))(params)

    g = grads(False)
    gc, _ = nz.centralize_gradients(mask).update(g, optax.EmptyState())
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(gc)):
        np.testing.assert_allclose(a, b, atol=1e-5)  # already centred: GC changes nothing
    gs = grads(True)
    assert max(_filter_means({"k": gs["Conv_0"]["kernel"]})) > 1e-4  # straight-through: uncentred gradient
    want = jax.grad(lambda p: jnp.sum(Net().apply({"params": p}, x) ** 2))(nz.transform_weights(params, "center", mask))
    np.testing.assert_allclose(gs["Conv_0"]["kernel"], want["Conv_0"]["kernel"], rtol=1e-4, atol=1e-6)
