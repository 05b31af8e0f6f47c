import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_accuracy_close

from jaxkit import data, evolution, models, prune
from jaxkit.prune import blend_search as bs

CFG = (8, "M", 8)


@pytest.fixture(scope="module")
def setup():
    ds = data.load_digits(seed=0)
    model = models.VGG(cfg=CFG, num_classes=10)
    st = models.create_train_state(jax.random.key(0), model, ds.train.x[:1], optax.adam(3e-3))
    st, _ = models.train(st, ds, key=jax.random.key(1), epochs=3, batch_size=64, progress=False)
    v = st.variables
    graph = prune.build_graph(model, v, ds.train.x[:1])
    xs = ds.train.x[:128].reshape(4, 32, 8, 8, 1)
    ys = ds.train.y[:128].reshape(4, 32)
    scores = prune.all_scores(graph, v, prune.collect_stats(model, v, xs, ys, graph))
    prob = bs.problem(jax.random.key(0), scores, ratio=0.5, k=3)
    return ds, model, v, graph, scores, prob


def test_problem_clusters_and_genes_respect_them(setup):
    _, _, _, _, scores, prob = setup
    assert prob.groups == ("params/Conv_0", "params/Conv_1") and prob.prune_counts == (4, 4)
    assert prob.criteria == tuple(scores) and prob.allowed.shape == (2, 3, len(scores))
    lab = np.asarray(prob.labels)
    for layer in range(2):  # allowed is the one-hot of the k-means labels (every cluster non-empty here)
        for k in range(3):
            assert list(np.flatnonzero(np.asarray(prob.allowed[layer, k]))) == list(np.flatnonzero(lab[layer] == k))
    pop = jax.vmap(lambda k: bs.sample_gene(prob, k))(jax.random.split(jax.random.key(1), 64))
    assert pop["P"].shape == (64, 2, 3) and float(pop["P"].min()) >= 0 and float(pop["P"].max()) <= 1
    member = jnp.take_along_axis(jnp.broadcast_to(prob.allowed, (64, 2, 3, len(scores))), pop["S"][..., None], -1)
    assert bool(jnp.all(member))
    # the GA's variation keeps every criterion inside its cluster, and P inside [0, 1]
    ga, gp = bs.strategy(prob, bs.BlendConfig(popsize=64, mutation_rate=0.5, drop_rate=0.3))
    st = ga.init(jax.random.key(2), gp)
    st = ga.tell(pop, jnp.arange(64.0), st, gp)
    kids, _ = ga.ask(jax.random.key(3), st, gp)
    member = jnp.take_along_axis(jnp.broadcast_to(prob.allowed, (64, 2, 3, len(scores))), kids["S"][..., None], -1)
    assert bool(jnp.all(member)) and float(kids["P"].min()) >= 0 and float(kids["P"].max()) <= 1
    assert float(jnp.mean(kids["P"] == 0)) > 0.15  # drop sets factors to 0


def test_gene_masks_fixed_counts_and_single_criteria(setup):
    _, _, _, _, scores, prob = setup
    for c in prob.criteria:  # a one-hot gene reproduces the criterion's own masks
        m = bs.gene_masks(prob, bs.single_criterion_gene(prob, c))
        ref = prune.channel_masks(scores[c], ratio=0.5)
        for g in prob.groups:
            assert list(np.asarray(m[g])) == list(np.asarray(ref[g])), c
    pop = jax.vmap(lambda k: bs.sample_gene(prob, k))(jax.random.split(jax.random.key(0), 8))
    masks = jax.vmap(lambda g: bs.gene_masks(prob, g))(pop)
    for g in prob.groups:
        assert bool(jnp.all(jnp.sum(~masks[g], axis=1) == 4))
    # blended score by hand for one gene
    gene = jax.tree.map(lambda x: x[0], pop)
    g0 = prob.groups[0]
    hand = sum(float(gene["P"][0, k]) * np.asarray(scores[prob.criteria[int(gene["S"][0, k])]][g0]) for k in range(3))
    np.testing.assert_allclose(np.asarray(bs.blended_scores(prob, gene)[g0]), hand, rtol=1e-5, atol=1e-6)


def _removed(model, graph, masks, variables):
    kept = prune.kept_counts(graph, masks)
    small = models.VGG(cfg=(kept["params/Conv_0"], "M", kept["params/Conv_1"]), num_classes=10)
    return small, prune.remove(graph, masks, variables)


def test_masked_finetune_equals_the_physically_removed_network(setup):
    ds, model, v, graph, _, prob = setup
    gene = bs.sample_gene(prob, jax.random.key(5))
    masks = jax.tree.map(np.asarray, bs.gene_masks(prob, gene))
    small, sv = _removed(model, graph, masks, v)
    x_tr, y_tr = jnp.asarray(ds.train.x[:256]), jnp.asarray(ds.train.y[:256])
    key = jax.random.key(9)
    kw = dict(epochs=2, batch_size=64, learning_rate=0.05, momentum=0.9, weight_decay=1e-3)
    tuned = jax.jit(bs.masked_finetune(model, graph, prob, **kw))(gene, v, (x_tr, y_tr), key)
    elem = prune.expand(graph, masks, v)
    assert all(
        bool(jnp.all(jnp.where(m, 0.0, x) == 0))
        for x, m in zip(jax.tree.leaves(tuned["params"]), jax.tree.leaves(elem["params"]))
    )
    # reference: the narrower network, trained with plain optax on the same batches
    tx = optax.chain(optax.add_decayed_weights(1e-3), optax.sgd(0.05, 0.9))
    p, stats, opt = sv["params"], sv["batch_stats"], tx.init(sv["params"])
    for e in range(2):
        perm = jax.random.permutation(jax.random.fold_in(key, e), 256)
        for b in range(4):
            idx = perm[64 * b : 64 * (b + 1)]

            def loss(p, stats=stats, idx=idx):
                logits, upd = small.apply(
                    {"params": p, "batch_stats": stats}, x_tr[idx], train=True, mutable=["batch_stats"]
                )
                return optax.softmax_cross_entropy_with_integer_labels(logits, y_tr[idx]).mean(), upd["batch_stats"]

            g, stats = jax.grad(loss, has_aux=True)(p)
            u, opt = tx.update(g, opt, p)
            p = optax.apply_updates(p, u)
    want = small.apply({"params": p, "batch_stats": stats}, ds.test.x, train=False)
    got = model.apply(tuned, ds.test.x, train=False)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-3, atol=1e-4)


def test_fitness_vmapped_equals_per_gene_and_epoch0_is_pruned_accuracy(setup):
    ds, model, v, graph, _, prob = setup
    pop = jax.vmap(lambda k: bs.sample_gene(prob, k))(jax.random.split(jax.random.key(0), 3))
    d = tuple(jnp.asarray(a) for a in (ds.train.x[:256], ds.train.y[:256], ds.test.x, ds.test.y))
    f0 = bs.finetune_fitness(model, graph, prob, epochs=0)
    acc0 = evolution.evaluate(f0, pop, v, d, jax.random.key(0))
    for i in range(3):
        masks = jax.tree.map(np.asarray, bs.gene_masks(prob, jax.tree.map(lambda x: x[i], pop)))
        small, sv = _removed(model, graph, masks, v)
        # masked network vs the physically smaller one: two programs, equal decisions up to near ties
        assert_accuracy_close(acc0[i], small.apply(sv, ds.test.x), ds.test.y)
    f1 = bs.finetune_fitness(model, graph, prob, epochs=1, batch_size=64, learning_rate=0.05)
    acc1 = evolution.evaluate(f1, pop, v, d, jax.random.key(0))
    loop = [float(jax.jit(f1)(jax.tree.map(lambda x: x[i], pop), v, d, jax.random.key(0))) for i in range(3)]
    np.testing.assert_allclose(np.asarray(acc1), loop, atol=1.5 / len(ds.test.y))  # <= 1 prediction may flip
    assert float(acc1.mean()) > float(acc0.mean())  # fine-tuning recovers accuracy


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda s: bs.problem(jax.random.key(0), s, k=3), "exactly one"),
        (lambda s: bs.problem(jax.random.key(0), s, ratio=0.5, k=20), "`k` must be"),
        (lambda s: bs.problem(jax.random.key(0), s, ratio=1.0), "`ratio`"),
        (lambda s: bs.problem(jax.random.key(0), s, prune_counts={"params/Conv_9": 1}), "unknown groups"),
        (lambda s: bs.problem(jax.random.key(0), s, ratio=0.5, criteria=["l1", "nope"]), "not in `scores`"),
        (lambda s: bs.BlendConfig(mutation_rate=1.2), "mutation_rate"),
        (lambda s: bs.BlendConfig(popsize=1), "popsize"),
        (lambda s: bs.BlendConfig(crossover_unit="gene"), "crossover_unit"),
    ],
)
def test_bad_input(setup, call, match):
    with pytest.raises(ValueError, match=match):
        call(setup[4])


def test_a_second_seed_reuses_the_compiled_fitness_and_fine_tune(setup):
    """The next seed's problem (other scores, same shapes) and a fresh model/graph of the same architecture run
    the programs compiled for the first: no per-seed recompilation (it cost ~14 s per extra seed)."""
    from jaxkit.evolution.evaluate import _vmapped_tree

    ds, model, v, graph, scores, prob = setup
    d = tuple(jnp.asarray(a) for a in (ds.train.x[:128], ds.train.y[:128], ds.test.x[:64], ds.test.y[:64]))
    runs = []
    for seed in (0, 1):
        m2 = models.VGG(cfg=CFG, num_classes=10)  # as an experiment rebuilds them per seed
        g2 = prune.build_graph(m2, v, ds.train.x[:1])
        noisy = jax.tree.map(lambda s: s + 0.01 * seed, scores)
        p2 = bs.problem(jax.random.key(seed), noisy, ratio=0.5, k=3)
        pop = jax.vmap(lambda k, p=p2: bs.sample_gene(p, k))(jax.random.split(jax.random.key(seed), 3))
        fit = bs.finetune_fitness(m2, g2, p2, epochs=1, batch_size=64, learning_rate=0.05)
        tune = bs.masked_finetune(m2, g2, p2, epochs=1, batch_size=64)
        runs.append(
            (
                evolution.evaluate(fit, pop, v, d, jax.random.key(0)),
                bs.finetune_genes(tune, jax.random.key(0), pop, v, d[:2]),
            )
        )
        sizes = (
            _vmapped_tree(3, batch_size=None)._cache_size(),
            bs.finetune_genes.__wrapped__._cache_size(),
        )  # the jitted function under the key-order shim
        if seed == 0:
            first = sizes
    assert min(first) >= 1 and sizes == first, (first, sizes)  # compiled for seed 0, nothing new for seed 1
    assert not np.allclose(np.asarray(runs[0][0]), np.asarray(runs[1][0]))  # and it did use the new problem


def test_masked_finetune_augments_each_minibatch(setup):
    ds, model, v, graph, _, prob = setup
    gene = bs.sample_gene(prob, jax.random.key(5))
    x_tr, y_tr = jnp.asarray(ds.train.x[:128]), jnp.asarray(ds.train.y[:128])
    key, kw = jax.random.key(9), dict(epochs=1, batch_size=64, learning_rate=0.05)
    run = lambda aug, x: jax.jit(bs.masked_finetune(model, graph, prob, augment=aug, **kw))(gene, v, (x, y_tr), key)
    plain = run(None, x_tr)
    # identity = no augmentation; zeros = fine-tuning on zero images (other programs: rounding-level tolerance)
    chex.assert_trees_all_close(run(lambda k, x: x, x_tr), plain, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(
        run(lambda k, x: jnp.zeros_like(x), x_tr), run(None, jnp.zeros_like(x_tr)), rtol=1e-5, atol=1e-6
    )
    crop = run(data.random_crop_flip, x_tr)
    assert not np.allclose(crop["params"]["Dense_0"]["kernel"], plain["params"]["Dense_0"]["kernel"], atol=1e-5)
    with pytest.raises(TypeError, match="`augment` must be a function"):
        bs.masked_finetune(model, graph, prob, augment=3)


def test_blend_search_settings_are_checked():
    model = models.VGG(cfg=(4, "M", 8), num_classes=3)
    x = jnp.zeros((1, 8, 8, 1))
    v = model.init(jax.random.key(0), x)
    g = prune.build_graph(model, v, x)
    prob = bs.problem(jax.random.key(0), prune.all_scores(g, v), ratio=0.5, k=2)
    with pytest.raises(ValueError, match="`criterion` must be one of the problem's criteria"):
        bs.single_criterion_gene(prob, "foo")
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        bs.masked_finetune(model, g, prob, batch_size=0)
