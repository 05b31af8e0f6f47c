"""Gator gates (jaxkit.gates): sampling, straight-through gradient, cost losses, folding and removal."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxkit import data, gates, models, prune


@pytest.fixture(scope="module")
def small():
    model = models.VGG(cfg=(8, "M", 16), num_classes=10)
    x = jnp.ones((2, 8, 8, 1))
    v = model.init(jax.random.key(0), x)
    return model, v, prune.build_graph(model, v, x[:1])


def test_init_and_sampled_frequencies_match_sigmoid(small):
    *_, g = small
    th = gates.init_gates(g)
    assert list(th) == ["params/Conv_0", "params/Conv_1"]
    assert float(jax.nn.sigmoid(th["params/Conv_0"][0])) == pytest.approx(0.995)
    theta = {"e": jnp.asarray([-2.0, -0.5, 0.0, 1.0, 3.0])}
    n = 40_000
    freq = np.asarray(gates.sample_gates(jax.random.key(0), theta, n)["e"]).mean(0)
    p = np.asarray(jax.nn.sigmoid(theta["e"]))
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n))
    assert set(np.unique(np.asarray(gates.sample_gates(jax.random.key(1), theta, 8)["e"]))) <= {0.0, 1.0}


def test_straight_through_gradient_is_the_sigmoid_derivative():
    theta = {"e": jnp.asarray([-1.0, 0.3, 2.0])}
    key = jax.random.key(7)
    grad = jax.grad(lambda t: jnp.sum(gates.sample_gates(key, t, 16)["e"]))(theta)["e"]
    x = jax.random.logistic(jax.random.fold_in(key, 0), (16, 3))  # the same noise (edge index 0)
    s = jax.nn.sigmoid(theta["e"] + x)
    np.testing.assert_allclose(grad, np.sum(s * (1 - s), 0), rtol=1e-5)
    # temperature: d sigmoid(z / tau) = s (1 - s) / tau
    g2 = jax.grad(lambda t: jnp.sum(gates.sample_gates(key, t, 16, temperature=2.0)["e"]))(theta)["e"]
    s2 = jax.nn.sigmoid((theta["e"] + x) / 2)
    np.testing.assert_allclose(g2, np.sum(s2 * (1 - s2), 0) / 2, rtol=1e-5)


def test_memory_and_flops_costs_by_hand(small):
    *_, g = small
    # Conv_0: 3x3, 1 -> 8 (64 positions); Conv_1: 3x3, 8 -> 16 (16 positions); Dense: 16 -> 10 (1 position)
    mem = gates.cost_model(g, "memory")
    lam0, lam1 = (float(v) for v in mem.factors())
    assert (lam0, lam1) == (9 * 1 + 9 * 16, 9 * 8 + 10)  # Eq. 5
    assert mem.denominator == 8 * lam0 + 16 * lam1
    # the double-counting identity: Conv_1 sits between two gated edges and is counted twice
    w = {k: int(np.prod(v["kernel"].shape)) for k, v in small[1]["params"].items() if "kernel" in v}
    assert mem.denominator == w["Conv_0"] + 2 * w["Conv_1"] + w["Dense_0"]
    flops = gates.cost_model(g, "flops")
    f0, f1 = (float(v) for v in flops.factors())
    assert f0 == pytest.approx(9 * 1 * 1 + 9 * 16 / 4) and f1 == pytest.approx(9 * 8 / 4 + 10 / 64)  # Eq. 6
    # with some gates closed: c_j(t) enters both the count and the other edge's factor
    gts = {"params/Conv_0": jnp.asarray([1.0] * 5 + [0.0] * 3), "params/Conv_1": jnp.asarray([1.0] * 10 + [0.0] * 6)}
    expected = 5 * (9 + 9 * 10) + 10 * (9 * 5 + 10)
    assert float(mem.raw(gts)) == pytest.approx(expected)
    assert float(mem(gts)) == pytest.approx(expected / mem.denominator)


def test_cost_is_one_at_initialisation(small):
    *_, g = small
    th = gates.init_gates(g)
    for kind in ("memory", "flops"):
        cm = gates.cost_model(g, kind)
        assert float(cm(gates.deterministic_gates(th))) == pytest.approx(1.0)
        sampled = float(cm(gates.sample_gates(jax.random.key(0), th, 256)))
        assert 0.97 < sampled <= 1.0  # 0.5 % of gates closed per sample


def test_latency_cost_and_bad_input(small):
    *_, g = small
    with pytest.raises(ValueError, match="latency"):
        gates.cost_model(g, "latency")
    with pytest.raises(ValueError, match="lacks"):
        gates.cost_model(g, "latency", latency={"params/Conv_0": 1.0})
    cm = gates.cost_model(g, "latency", latency={"params/Conv_0": 2.0, "params/Conv_1": 1.0})
    assert cm.denominator == 8 * 2.0 + 16 * 1.0
    with pytest.raises(ValueError, match="kind"):
        gates.cost_model(g, "energy")
    with pytest.raises(ValueError, match="alpha"):
        gates.cost_loss(cm, gates.deterministic_gates(gates.init_gates(g)), -1.0)


def test_latency_factors_time_the_pruned_networks(small):
    model, v, g = small
    calls = []

    def build(masks):
        calls.append(dict(masks))
        small_v = prune.remove(g, masks, v) if masks else v
        cfg = (prune.kept_counts(g, masks)["params/Conv_0"], "M", prune.kept_counts(g, masks)["params/Conv_1"])
        f = jax.jit(models.VGG(cfg=cfg, num_classes=10).apply)
        x = jnp.ones((64, 8, 8, 1))
        return lambda: f(small_v, x)

    lat = gates.latency_factors(build, g, repeat=3)
    assert set(lat) == {"params/Conv_0", "params/Conv_1"} and all(t > 0 for t in lat.values())
    assert calls[0] == {} and int(np.sum(~np.asarray(calls[1]["params/Conv_0"]))) == 4


@pytest.mark.parametrize("arch", ["vgg_bn", "vgg_nobn", "resnet_b"])
def test_folded_and_removed_equals_gated_with_deterministic_gates(arch):
    if arch == "resnet_b":
        model = models.ResNet((1, 1), (8, 16), 10, "B")
        x = jax.random.normal(jax.random.key(0), (4, 8, 8, 3))
    else:
        model = models.VGG(cfg=(8, "M", 16, 16), num_classes=10, batch_norm=arch == "vgg_bn")
        x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
    v = model.init(jax.random.key(1), x)
    g = prune.build_graph(model, v, x[:1])
    th = gates.init_gates(g)
    th = {
        n: jax.random.normal(jax.random.fold_in(jax.random.key(2), i), t.shape) for i, (n, t) in enumerate(th.items())
    }
    apply = gates.gated(model, g)
    want = apply(v, x, gates=gates.deterministic_gates(th))
    masks = gates.fold(th)
    small_v = prune.remove(g, masks, v)
    kept = prune.kept_counts(g, masks)
    if arch == "resnet_b":
        inner = tuple(kept[f"params/BasicBlock_{i}/Conv_0"] for i in range(2))
        widths = (kept["params/Conv_0"], kept["params/BasicBlock_1/Conv_1"])
        narrow = models.ResNet((1, 1), widths, 10, "B", inner_widths=inner)
    else:
        narrow = models.VGG(
            cfg=(kept["params/Conv_0"], "M", kept["params/Conv_1"], kept["params/Conv_2"]),
            num_classes=10,
            batch_norm=arch == "vgg_bn",
        )
    np.testing.assert_allclose(narrow.apply(small_v, x), want, rtol=1e-5, atol=1e-5)
    # per-sample gates of shape [B, C] broadcast the same way
    per_sample = {n: jnp.broadcast_to(t, (4,) + t.shape) for n, t in gates.deterministic_gates(th).items()}
    np.testing.assert_allclose(apply(v, x, gates=per_sample), want, rtol=1e-6, atol=1e-6)


def test_gated_bad_gates(small):
    model, v, g = small
    apply = gates.gated(model, g)
    with pytest.raises(ValueError, match="lacks"):
        apply(v, jnp.ones((1, 8, 8, 1)), gates={"params/Conv_0": jnp.ones(8)})
    with pytest.raises(ValueError, match="C = 16"):
        apply(v, jnp.ones((1, 8, 8, 1)), gates={"params/Conv_0": jnp.ones(8), "params/Conv_1": jnp.ones(8)})
    with pytest.raises(ValueError, match="non-empty"):
        gates.fold({})


def test_killed_channels_stay_pruned():
    theta = {"e": jnp.asarray([-0.1, 2.0, 0.5])}
    tx = optax.adam(0.5)
    opt = tx.init(theta)
    theta = gates.kill(theta)
    for i in range(30):  # the loss wants every gate open
        g = jax.grad(lambda t: -jnp.sum(gates.sample_gates(jax.random.key(i), t, 32)["e"]))(theta)
        upd, opt = tx.update(g, opt, theta)
        theta = gates.kill(optax.apply_updates(theta, upd))
        assert float(jnp.sum(gates.sample_gates(jax.random.key(100 + i), theta, 64)["e"][:, 0])) == 0
    assert float(theta["e"][0]) <= 0 and float(theta["e"][1]) > 2.0
    assert list(np.asarray(gates.fold(theta)["e"])) == [False, True, True]
    assert list(np.asarray(gates.fold({"e": jnp.asarray([-1.0, -0.5])})["e"])) == [False, True]  # min_keep


def test_cost_falls_while_accuracy_holds_on_digits():
    ds = data.load_digits()
    model = models.VGG(cfg=(16, "M", 32), num_classes=10)
    x0 = ds.train.x[:1]
    v = model.init(jax.random.key(0), x0)
    g = prune.build_graph(model, v, x0)
    cm = gates.cost_model(g, "flops")
    apply = gates.gated(model, g)
    params = {"model": v["params"], "gates": gates.init_gates(g)}  # theta_0 = ln 199

    def run(alpha, params, stats, epochs, gate_lr):
        # gates follow SGD with momentum, as in the paper (Adam would move every gate at ~lr per step)
        tx = gates.split_optimizer(optax.adam(3e-3), optax.sgd(gate_lr, 0.9) if gate_lr else optax.set_to_zero())
        opt = tx.init(params)
        step = gates.make_train_step(apply, cm, tx)
        for e in range(epochs):
            for i, (xb, yb) in enumerate(
                data.batches(jax.random.key(e), ds.train.x, ds.train.y, batch_size=64, drop_remainder=True)
            ):
                params, opt, stats, _ = step(params, opt, stats, xb, yb, jax.random.key(1000 * e + i), alpha)
        return params, stats

    def accuracy(params, stats):
        det = gates.deterministic_gates(params["gates"])
        logits = apply({"params": params["model"], "batch_stats": stats}, ds.test.x, gates=det)
        return float(np.mean(np.argmax(np.asarray(logits), -1) == ds.test.y))

    params, stats = run(0.0, params, v["batch_stats"], 6, 0.0)  # train the model, gates fixed open
    base_acc = accuracy(params, stats)
    base_cost = float(cm(gates.deterministic_gates(params["gates"])))
    params, stats = run(0.5, params, stats, 6, 2.0)  # gated training with the FLOPs cost, alpha = 0.5
    cost = float(cm(gates.deterministic_gates(params["gates"])))
    assert base_cost == pytest.approx(1.0) and cost < 0.97, cost  # some channels closed for good ...
    assert accuracy(params, stats) >= base_acc - 0.05, (base_acc, accuracy(params, stats))  # ... at <= 5 points


def test_gated_step_compiles_once(small):
    import chex

    model, v, g = small
    apply = gates.gated(model, g)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(v, th, key):
        return apply(v, jnp.ones((3, 8, 8, 1)), gates=gates.sample_gates(key, th, 3))

    th = gates.init_gates(g)
    for i in range(3):
        f(v, jax.tree.map(lambda t: t - i, th), jax.random.key(i))


def test_alpha_path_threads_the_gated_state_and_folds():
    calls = []

    def phase(state, alpha):  # each phase lowers theta by alpha; state counts the phases
        calls.append((state["n"], alpha))
        theta = {"e": state["theta"]["e"] - alpha}
        return {"n": state["n"] + 1, "theta": theta}, theta

    def finish(state, masks, alpha):  # a fine-tune must never feed the next phase
        state["theta"] = None
        return int(np.sum(np.asarray(masks["e"])))

    st = {"n": 0, "theta": {"e": jnp.asarray([0.5, 1.5, 3.5, 6.0])}}
    out = list(gates.alpha_path([1.0, 2.0, 2.0], phase, st, lambda s, m, a: finish(dict(s), m, a)))
    assert calls == [(0, 1.0), (1, 2.0), (2, 2.0)]
    assert [r for *_, r in out] == [3, 2, 1]  # theta after phases: [-.5,.5,2.5,5], [-2.5,-1.5,.5,3], [.., -1.5, 1]
    assert [a for a, *_ in out] == [1.0, 2.0, 2.0] and out[-1][2]["n"] == 3
    # all closed -> fold keeps min_keep channels
    ((_, masks, _, _),) = gates.alpha_path([10.0], phase, st, min_keep=1)
    assert list(np.asarray(masks["e"])) == [False, False, False, True]
    for bad, match in (([], "non-empty"), ([-1.0], ">= 0"), ([2.0, 1.0], "non-decreasing")):
        with pytest.raises(ValueError, match=match):
            list(gates.alpha_path(bad, phase, st))


def test_train_step_temperature_is_traced(small):
    model, v, g = small
    apply = gates.gated(model, g)
    cm = gates.cost_model(g, "flops")
    tx = gates.split_optimizer(optax.sgd(0.0), optax.sgd(1.0))
    step = gates.make_train_step(apply, cm, tx)
    params = {"model": v["params"], "gates": gates.init_gates(g, init=3.0)}
    opt = tx.init(params)
    x, y = jnp.ones((4, 8, 8, 1)), jnp.zeros((4,), jnp.int32)
    key = jax.random.key(0)
    for tau in (1.0, 4.0):  # same compiled step; the cost's gate gradient is the one at temperature tau
        p0, *_ = step(params, opt, v.get("batch_stats", {}), x, y, key, 0.0, tau)
        p1, *_ = step(params, opt, v.get("batch_stats", {}), x, y, key, 1.0, tau)
        ref = jax.grad(lambda t: cm(gates.sample_gates(key, t, 4, temperature=tau)))(params["gates"])
        for n in ref:
            np.testing.assert_allclose(
                np.asarray(p0["gates"][n] - p1["gates"][n]), np.asarray(ref[n]), rtol=1e-3, atol=1e-6
            )
    assert step._cache_size() == 1


def test_gate_settings_are_checked():
    model = models.VGG(cfg=(4, "M", 8), num_classes=3)
    x = jnp.zeros((1, 8, 8, 1))
    graph = prune.build_graph(model, model.init(jax.random.key(0), x), x)
    theta = gates.init_gates(graph)
    with pytest.raises(ValueError, match="`init` must be a finite number"):
        gates.init_gates(graph, init=float("nan"))
    with pytest.raises(ValueError, match="`batch` must be >= 1"):
        gates.sample_gates(jax.random.key(0), theta, 0)
    with pytest.raises(ValueError, match="`temperature` must be > 0"):
        gates.sample_gates(jax.random.key(0), theta, 2, temperature=0.0)
    with pytest.raises(ValueError, match="`min_keep` must be >= 0"):
        gates.fold(theta, min_keep=-1)
    with pytest.raises(ValueError, match="`repeat` must be >= 1"):
        gates.latency_factors(lambda m: lambda: 1, graph, repeat=0)
    # a traced temperature (a schedule inside jit) is not inspected
    g = jax.jit(lambda t: gates.sample_gates(jax.random.key(0), theta, 2, temperature=t))(0.5)
    assert g["params/Conv_0"].shape == (2, 4)
