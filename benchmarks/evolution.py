"""Population fitness: 16 pruned networks fine-tuned under ``vmap`` vs a Python loop over genes.

The fitness is the blending EA's (``jaxkit.prune.blend_search.finetune_fitness``):
prune the digits VGG by a gene, fine-tune ``--epochs`` epochs (SGD, in a
``lax.scan``), return validation accuracy. Lines printed:

* the blend search's second seed (a new problem of the same shapes) vs its first: the first call of each, the
  second reusing the first's compiled program (issue 33: each seed recompiled, ~14 s);
* vmapped population (convolutions as im2col, the default) vs a loop over
  genes calling a jitted per-gene fitness (the whole fine-tune in one
  ``lax.scan``, no Python per step) -- once with XLA's convolution (what
  ``nn.Conv`` gives; XLA:CPU runs convolutions inside a rolled scan several
  times slower, so this baseline is unfairly slow), once with the same im2col
  convolution (the strictest baseline);
* vmapped population vs a loop over genes with a per-step Python training loop
  (a jitted train step per batch, as one-off scripts do);
* population sharded over 2 forced host CPU devices vs 1 device (a
  subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``; this line and the XLA-convolution
  loop only with ``--all-baselines`` or ``--full``: ~60 s of the 10-minute ``make bench``);
* the memory table: XLA's temporaries of a toy fine-tune fitness for 256-16,384 members, the whole population
  at once vs ``evaluate``'s default chunk (1 GiB budget) and a 64 MiB budget (``--memory-only``: just this);
* the roofline: the population's FLOPs (XLA's cost analysis of one train step
  and one evaluation, times the steps run) per second of the vmapped
  evaluation, as a percentage of the measured peak of a 2048^2 float32 matmul.

    python benchmarks/evolution.py            # ~3 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from benchkit import best_time, parse, report

from jaxkit import data as jdata
from jaxkit import evolution, models, prune
from jaxkit.prune import blend_search as bs


def setup(popsize, epochs):
    ds = jdata.load_digits(seed=0)
    model = models.VGG(cfg=(16, 16, "M", 32, 32, "M"), num_classes=10)
    state = models.create_train_state(jax.random.key(0), model, ds.train.x[:1], optax.adam(3e-3))
    state, _ = models.train(state, ds, key=jax.random.key(1), epochs=3, batch_size=64, progress=False)
    v = state.variables
    graph = prune.build_graph(model, v, ds.train.x[:1])
    scores = prune.all_scores(graph, v)  # weight criteria: enough for timing
    prob = bs.problem(jax.random.key(0), scores, ratio=0.5, k=3)
    pop = jax.vmap(lambda k: bs.sample_gene(prob, k))(jax.random.split(jax.random.key(1), popsize))
    n_val = len(ds.train) // 10
    data = tuple(
        jnp.asarray(a) for a in (ds.train.x[n_val:], ds.train.y[n_val:], ds.train.x[:n_val], ds.train.y[:n_val])
    )
    return ds, model, v, graph, prob, pop, data


def _cost(fn, *args) -> dict:
    """XLA's cost analysis (``flops``, ``bytes accessed``, ...) of one call of a jitted ``fn``; a loop body is
    counted once, however many iterations run."""
    cost = fn.lower(*args).compile().cost_analysis()
    return cost[0] if isinstance(cost, (list, tuple)) else cost


def _flops(fn, *args) -> float:
    """XLA's FLOP count of one call of a jitted ``fn`` (a program without loops, so nothing is counted once for
    many iterations)."""
    return float(_cost(fn, *args)["flops"])


def matmul_peak(n: int = 2048, repeat: int = 5) -> float:
    """GFLOP/s of one jitted float32 ``n x n`` matmul, best of ``repeat``: the machine's practical peak."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    dot(a, a).block_until_ready()
    t, _ = best_time(lambda: dot(a, a).block_until_ready(), repeat)
    return 2 * n**3 / t / 1e9


def stream_bandwidth(n: int = 64 * 2**20, repeat: int = 5) -> float:
    """GB/s of a jitted ``2 * a + 1`` over ``n`` float32 (one read, one write): the streaming rate XLA reaches."""
    a = jnp.ones((n,), jnp.float32)
    f = jax.jit(lambda a: a * 2 + 1)
    f(a).block_until_ready()
    t, _ = best_time(lambda: f(a).block_until_ready(), repeat)
    return 2 * a.nbytes / t / 1e9


# (rows, contraction, columns) of the digits VGG's matmuls per gene, batch 64 (im2col: rows = 64 images x pixels,
# contraction = 3 x 3 taps x input channels): forward, then the weight-gradient shape of the widest layer
LAYER_MATMULS = ((4096, 9, 16), (4096, 144, 16), (1024, 144, 32), (1024, 288, 32), (144, 4096, 16))


def roofline(fit, pop, v, data, key, flops, peak, t_vmap, t_loop, args) -> None:
    """Why the population fitness stays far from the matmul peak, measured three ways.

    1. The same fitness restructured: the whole population vmapped (one batched ``dot_general`` per layer, the
       default), chunks of 4 (and of 2 with ``--all-baselines``) vmapped members in a ``lax.map``, one member at
       a time in a compiled ``lax.map`` (``evaluate(batch_size=1)``), against the fair loop over genes.
    2. The layers' matmul shapes alone, batched over the population as one ``einsum`` (genes a batch axis): the
       ceiling the contractions reach on this machine at these shapes (columns of 16-32 output channels).
    3. XLA's count of FLOPs and bytes of the vmapped program: its arithmetic intensity, and the operand traffic
       that 40 % of the peak would need, beside the streaming rate measured here.
    """
    times = {"whole population vmapped (default)": t_vmap}
    for b in (4, 2, 1) if args.all_baselines else (4, 1):
        f = lambda b=b: evolution.evaluate(fit, pop, v, data, key, batch_size=b).block_until_ready()
        f()
        what = "one gene at a time, compiled lax.map" if b == 1 else f"chunks of {b} vmapped genes in a lax.map"
        times[what], _ = best_time(f, args.repeat)
    for what, t in times.items():
        report(
            f"population fitness restructured: {what} vs loop over genes (jitted im2col fitness; "
            f"{100 * flops / t / 1e9 / peak:.0f} % of peak)",
            t_loop,
            t,
        )
    g = args.popsize
    rates = []
    for m, k, n in LAYER_MATMULS:
        a = jax.random.normal(jax.random.key(0), (g, m, k))
        w = jax.random.normal(jax.random.key(1), (g, k, n))
        mm = jax.jit(lambda a, w: jnp.einsum("gmk,gkn->gmn", a, w))
        mm(a, w).block_until_ready()
        t, _ = best_time(lambda: mm(a, w).block_until_ready(), 5)
        rates.append(f"{m}x{k}x{n} {2 * g * m * k * n / t / 1e9:.0f}")
    print(f"layer matmuls batched over {g} genes alone, GFLOP/s: {', '.join(rates)} (peak {peak:.0f})", flush=True)
    vm = jax.jit(jax.vmap(fit, in_axes=(0, None, None, None)))
    cost = _cost(vm, pop, v, data, key)
    intensity = float(cost["flops"]) / float(cost["bytes accessed"])
    bw = stream_bandwidth()
    achieved = flops / t_vmap / 1e9 / intensity
    print(
        f"population fitness roofline: {intensity:.2f} FLOP/byte (XLA's count of the vmapped program's operands and "
        f"results); 40 % of peak ({0.4 * peak:.0f} GFLOP/s) needs {0.4 * peak / intensity:.0f} GB/s of that traffic, "
        f"the default reaches {achieved:.0f} GB/s, a streaming 2a+1 {bw:.1f} GB/s",
        flush=True,
    )


def memory_table(sizes=(256, 1024, 4096, 16384)) -> None:
    """Temporaries (XLA's memory analysis, per device) of a toy fine-tune fitness as the population grows: the whole
    population at once vs evaluate's default chunk (memory_budget 1 GiB) and a 64 MiB budget."""
    import importlib

    ev = importlib.import_module("jaxkit.evolution.evaluate")
    rng = np.random.default_rng(0)
    xs, ys = jnp.asarray(rng.normal(size=(256, 16)), jnp.float32), jnp.asarray(rng.integers(0, 4, 256))

    def toy(gene, x, y):  # 20 SGD steps of a 16-64-4 MLP from the gene's weights, then the loss
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(jnp.tanh(x @ p[0]) @ p[1], y).mean()

        p = jax.lax.fori_loop(0, 20, lambda _, p: jax.tree.map(lambda a, g: a - 0.1 * g, p, jax.grad(loss)(p)), gene)
        return loss(p)

    print("members | whole population | default (1 GiB) chunk | 64 MiB budget chunk")
    for n in sizes:
        pop = (jnp.zeros((n, 16, 64)), jnp.zeros((n, 64, 4)))
        whole = ev.temp_bytes(ev._vmapped(toy, 2), pop, xs, ys)
        row = [f"{whole / 2**20:,.1f} MiB"]
        for budget in (ev.MEMORY_BUDGET, 64 * 2**20):
            k = ev._auto_batch(lambda b: ev._vmapped(toy, 2, batch_size=b), (pop, xs, ys), (n, budget), n, budget)
            t = whole if k is None else ev.temp_bytes(ev._vmapped(toy, 2, batch_size=k), pop, xs, ys)
            row.append(f"{t / 2**20:,.1f} MiB ({'all' if k is None else k} at a time)")
        print(f"{n:7d} | " + " | ".join(row), flush=True)


# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"popsize": 128, "epochs": 2, "all_baselines": True}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--popsize", type=int, default=16)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--all-baselines",
        action="store_true",
        help="also the XLA-convolution loop (the slow path, ~30 s) and the 2-device run (~30 s); on with --full",
    )
    p.add_argument("--devices-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--memory-only", action="store_true", help="only the memory table (compiles, runs nothing)")
    args = parse(p, argv, FULL)
    if args.memory_only:
        memory_table()
        return
    ds, model, v, graph, prob, pop, data = setup(args.popsize, args.epochs)
    key = jax.random.key(3)
    kw = dict(epochs=args.epochs, batch_size=64, learning_rate=0.05)
    fit = bs.finetune_fitness(model, graph, prob, **kw)
    if args.devices_child:
        n = len(jax.devices())
        evolution.evaluate(fit, pop, v, data, key, devices=jax.devices()[:1]).block_until_ready()
        evolution.evaluate(fit, pop, v, data, key).block_until_ready()
        t1, f1 = best_time(
            lambda: evolution.evaluate(fit, pop, v, data, key, devices=jax.devices()[:1]).block_until_ready(),
            args.repeat,
        )
        t2, f2 = best_time(lambda: evolution.evaluate(fit, pop, v, data, key).block_until_ready(), args.repeat)
        assert np.allclose(np.asarray(f1), np.asarray(f2), atol=1.5 / len(data[3])), (f1, f2)
        report(f"population of {args.popsize} sharded over {n} forced host devices vs 1 device", t1, t2)
        return

    print(
        f"population {args.popsize}, {args.epochs} fine-tune epoch(s) of {len(data[0])} digits per gene, "
        f"devices {jax.devices()}",
        flush=True,
    )
    # the first seed pays the compilation; the next seed's problem (other scores, same shapes) reuses it
    t = time.perf_counter()
    evolution.evaluate(fit, pop, v, data, key).block_until_ready()
    t_seed0 = time.perf_counter() - t
    prob1 = bs.problem(jax.random.key(1), jax.tree.map(lambda s: s + 0.01, prune.all_scores(graph, v)), ratio=0.5, k=3)
    pop1 = jax.vmap(lambda k: bs.sample_gene(prob1, k))(jax.random.split(jax.random.key(2), args.popsize))
    fit1 = bs.finetune_fitness(model, graph, prob1, **kw)
    t = time.perf_counter()
    evolution.evaluate(fit1, pop1, v, data, key).block_until_ready()
    t_seed1 = time.perf_counter() - t
    report(
        "blend fitness, second seed's first call (its own problem, compiled program reused) vs first seed's",
        t_seed0,
        t_seed1,
    )
    t_vmap, f_vmap = best_time(lambda: evolution.evaluate(fit, pop, v, data, key).block_until_ready(), args.repeat)

    genes = [jax.tree.map(lambda x, i=i: x[i], pop) for i in range(args.popsize)]
    loops = {}
    paths = (("XLA conv in a rolled lax.scan, the slow path", False),) if args.all_baselines else ()
    for name, im2col in (*paths, ("same im2col conv", True)):
        one = jax.jit(bs.finetune_fitness(model, graph, prob, im2col=im2col, **kw))
        one(genes[0], v, data, key).block_until_ready()
        # the slow path is ~9x slower: one timed run is enough to place it (and saves ~40 s of make bench)
        loops[name] = best_time(
            lambda one=one: [float(one(g, v, data, key)) for g in genes], args.repeat if im2col else 1
        )
    for name, (t_loop, f_loop) in loops.items():
        assert np.allclose(f_loop, np.asarray(f_vmap), atol=1.5 / len(data[3]))
        report(
            f"vmapped fitness of {args.popsize} fine-tuned nets vs loop over genes (jitted per-gene fitness, {name})",
            t_loop,
            t_vmap,
        )

    # one-off-script baseline: per gene, mask + Python loop of jitted train steps + evaluation
    x_tr, y_tr, x_val, y_val = data
    tx = optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.05, 0.9))

    @jax.jit
    def train_step(params, stats, opt, elem, xb, yb):  # nn.Conv as is: XLA's convolution
        def loss(p):
            logits, upd = model.apply({"params": p, "batch_stats": stats}, xb, train=True, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), upd["batch_stats"]

        g, stats = jax.grad(loss, has_aux=True)(params)
        u, opt = tx.update(g, opt, params)
        u = jax.tree.map(lambda a, m: jnp.where(m, a, 0.0), u, elem)
        return optax.apply_updates(params, u), stats, opt

    @jax.jit
    def acc(params, stats):
        logits = model.apply({"params": params, "batch_stats": stats}, x_val, train=False)
        return jnp.mean(jnp.argmax(logits, -1) == y_val)

    def script_loop():
        out = []
        for g in genes:
            masks = jax.tree.map(np.asarray, bs.gene_masks(prob, g))
            elem = prune.expand(graph, masks, v)
            w = prune.apply_masks(v, elem)
            params, stats, opt = w["params"], w["batch_stats"], tx.init(w["params"])
            n = (len(x_tr) // 64) * 64
            for e in range(args.epochs):
                perm = jax.random.permutation(jax.random.fold_in(key, e), len(x_tr))[:n].reshape(-1, 64)
                for idx in perm:
                    params, stats, opt = train_step(params, stats, opt, elem["params"], x_tr[idx], y_tr[idx])
            out.append(float(acc(params, stats)))
        return out

    script_loop()
    t_script, f_script = best_time(script_loop, args.repeat)
    report(
        f"vmapped fitness of {args.popsize} fine-tuned nets vs per-step Python training loop over genes",
        t_script,
        t_vmap,
    )

    # roofline: the population's FLOPs (XLA's count of one train step and one evaluation, times the steps run)
    # against the measured peak of one large float32 matmul on this machine, in this process
    w0 = prune.apply_masks(v, prune.expand(graph, jax.tree.map(np.asarray, bs.gene_masks(prob, genes[0])), v))
    elem0 = prune.expand(graph, jax.tree.map(np.asarray, bs.gene_masks(prob, genes[0])), v)["params"]
    step_args = (w0["params"], w0["batch_stats"], tx.init(w0["params"]), elem0, x_tr[:64], y_tr[:64])
    steps = args.epochs * (len(x_tr) // 64)
    flops = args.popsize * (steps * _flops(train_step, *step_args) + _flops(acc, w0["params"], w0["batch_stats"]))
    peak = matmul_peak()
    rate = flops / t_vmap / 1e9
    print(
        f"population fitness: {100 * rate / peak:.0f} % of measured matmul peak ({rate:.1f} GFLOP/s of "
        f"{peak:.1f}; {flops / 1e9:.1f} GFLOP per evaluation of {args.popsize} genes, {steps} SGD steps each)",
        flush=True,
    )
    roofline(fit, pop, v, data, key, flops, peak, t_vmap, loops["same im2col conv"][0], args)

    memory_table()
    if not args.all_baselines:
        return
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    r = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--devices-child",
            "--popsize",
            str(args.popsize),
            "--epochs",
            str(args.epochs),
            "--repeat",
            str(args.repeat),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    print(r.stdout.strip().splitlines()[-1] if r.returncode == 0 else f"2-device run failed:\n{r.stderr[-2000:]}")


if __name__ == "__main__":
    main()
