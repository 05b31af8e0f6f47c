"""LipBaB: batched node evaluation vs one node at a time, exact p = 2 on the (10,30,30,30,3) net.

Same process, same network (the paper's own, shipped with jaxkit), compile
excluded (one warm-up search per configuration), best of ``--repeat`` runs.
jaxkit is the best of the batch sizes tried, with the default batched
feasibility LPs. Two baselines, each on its own line:

* ``batch=1, lp="highs"``: the paper's sequential search, one node and one LP
  (HiGHS) at a time: the issue's "B = 1, sequential, as the paper";
* ``batch=1, lp="batched"``: one node at a time but the same LP machinery, so
  that line isolates what batching the nodes alone buys.

Also prints absolute times next to the paper's (Colab, sequential Python + GLPK:
79 s for p = 2), and the first call in a fresh process with the compilation cache off (tracing and every XLA
compilation included; the count is printed) against the paper's time.

Last, node throughput over 1 and 2 forced host CPU devices (1, 2 and 4 with --full; each count in its own
process): a random (10,40,40,40,3) net on [-0.1, 0.1]^10, p = 2, batch 128, stopped at ``--nodes`` nodes;
nodes/s and the share of the search spent in device batches (node bounds + simplex) vs on the host.

Then the scaling table (``--scaling small``, the default: random nets of widths 20 and 40, depth 3, p = 2, an 8 s
cap; ``--scaling grid``:
widths 20, 40, 64, 100, depths 3-5, p = 1, 2, inf, about an hour on 2 CPU cores; ``--scaling only``: the grid
alone): random and trained (10, width x depth, 3) nets on [0, 0.1]^10, exact and k-approximate (lower >= 0.9
upper), each search capped at ``--cap`` seconds after a short compiling search; columns nodes explored, node
batches, time to the first bound (the root's), time to the final certificate, status and final relative gap; then
the largest width exactly certified within the cap per depth and p.

    python benchmarks/lipbab.py [--batches 32 128] [--repeat 3] [--nodes 5000] [--device-counts 1 2]
    python benchmarks/lipbab.py --scaling only --cap 60
    python benchmarks/lipbab.py --lipbab-from ../LipBaB --lipbab-cap 600   # beside the original (needs cvxopt)
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
from benchkit import best_time, first_call, parse, report

from jaxkit import lipschitz

# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"nodes": 20000, "device_counts": [1, 2, 4], "batches": [8, 32, 128]}

# the first-call lines use one fixed batch (not the warm winner, which varies run to run between 32 and 128 and
# changes the programs compiled: 5 at 32, 6 at 128)
FIRST_CALL_BATCH = 32
NET = lipschitz.paper_network("sd_10-30-30-30-3")
EXACT, PAPER_S = NET.exact, NET.paper_seconds


def throughput_child(nodes: int) -> None:
    """In a process with forced devices: nodes/s of a budgeted search sharded over all of them."""
    import jax

    rng = np.random.default_rng(0)
    sizes = (10, 40, 40, 40, 3)
    params = [(rng.normal(size=(a, b)) / np.sqrt(a), rng.normal(size=b) * 0.1) for a, b in zip(sizes, sizes[1:])]
    box = (np.full(10, -0.1), np.full(10, 0.1))
    go = lambda: lipschitz.lipschitz_constant(params, box, p=2, batch=128, max_nodes=nodes)
    go()  # compile
    t, r = best_time(go, 2)
    host = np.array([1 - d / w for w, d in r.rounds if w > 0])
    print(
        f"THROUGHPUT {len(jax.devices())} {r.nodes / t:.0f} {r.device_seconds / r.seconds:.3f} {r.upper:.12g} "
        f"{np.median(host):.3f} {np.percentile(host, 90):.3f} {len(host)}",
        flush=True,
    )


def throughput(nodes: int, counts=(1, 2)) -> None:
    import os
    import subprocess
    import sys

    rows = {}
    for n in counts:
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
        cmd = [sys.executable, os.path.abspath(__file__), "--throughput-child", "--nodes", str(nodes)]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("THROUGHPUT ")), None)
        if r.returncode or line is None:
            print(f"throughput on {n} devices failed:\n{r.stderr[-1500:]}", flush=True)
            return
        _, _, rate, share, upper, host_med, host_p90, n_rounds = line.split()
        rows[n] = (float(rate), float(share), upper)
        print(
            f"lipbab nodes/s, (10,40,40,40,3) p=2 batch 128, {nodes} nodes, {n} forced host device(s): {rate} "
            f"(device batches {100 * float(share):.0f} % of the time, host {100 - 100 * float(share):.0f} %; host "
            f"share per round: median {100 * float(host_med):.0f} %, 90th percentile {100 * float(host_p90):.0f} % "
            f"over {n_rounds} rounds; upper bound {upper})",
            flush=True,
        )
    assert len({u for _, _, u in rows.values()}) == 1, rows  # the same search on every device count
    for n in counts[1:]:
        report(
            f"lipbab {nodes} nodes sharded over {n} vs 1 forced host devices (same bounds)",
            nodes / rows[1][0],
            nodes / rows[n][0],
        )


def scaling_net(width: int, depth: int, kind: str, seed: int = 0) -> list:
    """A (10, width x depth, 3) ReLU MLP on the box [0, 0.1]^10: ``"random"`` (normal / sqrt(fan-in) weights,
    biases N(0, 0.1^2)) or ``"trained"`` (that net after 300 full-batch Adam steps on 2,048 points of the box
    labelled by a random linear teacher, 3 classes)."""
    rng = np.random.default_rng(seed)
    sizes = (10,) + (width,) * depth + (3,)
    params = [(rng.normal(size=(a, b)) / np.sqrt(a), rng.normal(size=b) * 0.1) for a, b in zip(sizes, sizes[1:])]
    if kind == "random":
        return params
    import jax
    import jax.numpy as jnp
    import optax

    x = rng.uniform(0, 0.1, (2048, 10)).astype(np.float32)
    y = np.argmax((x - 0.05) @ rng.normal(size=(10, 3)), 1)
    x, y = jnp.asarray(x * 10), jnp.asarray(y)  # the net sees the box scaled to [0, 1]; folded back below

    def loss(ps):
        h = x
        for w, b in ps[:-1]:
            h = jax.nn.relu(h @ w + b)
        return optax.softmax_cross_entropy_with_integer_labels(h @ ps[-1][0] + ps[-1][1], y).mean()

    ps = [(jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)) for w, b in params]
    tx = optax.adam(1e-2)

    @jax.jit
    def step(ps, opt):
        g = jax.grad(loss)(ps)
        u, opt = tx.update(g, opt, ps)
        return optax.apply_updates(ps, u), opt

    opt = tx.init(ps)
    for _ in range(300):
        ps, opt = step(ps, opt)
    out = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in ps]
    out[0] = (out[0][0] * 10, out[0][1])  # x in [0, 0.1]: the first layer absorbs the scale
    return out


def original_lipbab(path: str, params, box, p: float, cap: float) -> dict:
    """Run the original LipBaB (``LipBaB.py`` of https://github.com/pyrobits/LipBaB, from a local checkout at
    ``path``; it needs cvxopt with GLPK) on ``params`` over ``box`` for the norm ``p``, stopped after ``cap``
    seconds by the time limit its own loop has (commented out in its file; enabled here). Its code is not a
    dependency and is not copied: its function definitions are executed as they are, our network replaces the one
    it loads, and its main loop runs with its prints discarded. Returns ``{"status", "seconds", "lower", "upper",
    "nodes"}``, or ``{"status": "not run (<why>)"}``."""
    import contextlib
    import os
    import re
    import time
    from pathlib import Path

    file = Path(path) / "LipBaB.py"
    if not file.is_file():
        return {"status": f"not run (no {file})"}
    src = file.read_text()
    load = re.search(r"^wts\s*=\s*np\.load", src, re.M)
    main = re.search(r"^#\s*main algorithm", src, re.M | re.I)
    if load is None or main is None:
        return {"status": "not run (LipBaB.py has an unknown layout)"}
    body, n_cap = re.subn(
        r"#\s*if \(time\.time\(\) - (\w+)\)\s*>=\s*\d+\s*:[^\n]*\n(\s*)#\s*break",
        r"if (time.time() - \1) >= __cap__:\n\2break",
        src[main.start() :],
    )
    body, n_p = re.subn(r"^pnorm\s*=\s*\S+", "pnorm = __p__", body, flags=re.M)
    if (n_cap, n_p) != (1, 1):
        return {"status": "not run (LipBaB.py has an unknown layout)"}
    ns: dict = {"__name__": "lipbab_original", "__cap__": float(cap), "__p__": p}
    try:
        exec(compile(src[: load.start()], str(file), "exec"), ns)  # imports cvxopt; defines the algorithm
    except ImportError as e:
        return {"status": f"not run ({e}; pip install cvxopt)"}
    net = lipschitz.to_net(params)
    ns["weights"] = [None] + [w.tolist() for w in net.weights]  # its layout: weights[l] is [out, in]
    ns["biases"] = [None] + [b.tolist() for b in net.biases]
    ns["ls"] = list(net.sizes)
    ns["L"] = len(net.sizes) - 1
    ns["X"] = [0] * net.sizes[0]
    ns["act_pat"] = [[[1, 1] for _ in range(e)] for e in net.sizes]
    ns["bnds"] = [[float(a), float(b)] for a, b in zip(*box)]
    t = time.perf_counter()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # it prints every node's bound
        exec(compile(body, str(file), "exec"), ns)
    seconds = time.perf_counter() - t
    queue = ns["pq"].queue
    upper = max(-queue[0][0], ns["glb"]) if queue else ns["glb"]
    return {
        "status": "exact" if upper <= ns["glb"] else "budget",
        "seconds": seconds,
        "lower": ns["glb"],
        "upper": upper,
        "nodes": ns["pcnt"],
    }


def original_cell(path, params, box, p, cap) -> str:
    """The scaling table's original-LipBaB column: time, status, bounds; "not run" without a checkout."""
    if path is None:
        return "not run (no --lipbab-from)"
    r = original_lipbab(path, params, box, p, cap)
    if "seconds" not in r:
        return r["status"]
    return f"{r['seconds']:.1f} s {r['status']} [{r['lower']:.6g}, {r['upper']:.6g}] {r['nodes']} nodes (cap {cap:g} s)"


def scaling_table(widths, depths, ps, cap, batch, kinds=("random", "trained"), lipbab_from=None, lipbab_cap=600.0):
    """Nodes, batches, time to the first bound, time to the final certificate and final gap, exact and
    k-approximate (lower >= 0.9 upper, k = 1/0.9), random and trained nets; then the largest width exactly
    certified within ``cap`` seconds per depth."""
    box = (np.zeros(10), np.full(10, 0.1))
    k_approx = 1 / 0.9
    print(
        "kind    | net | p | target | nodes | batches | first bound s | final s | status | final gap | "
        "original LipBaB, exact (not a dependency: --lipbab-from a checkout, with cvxopt)",
        flush=True,
    )
    certified: dict = {(kind, d, p): [] for kind in kinds for d in depths for p in ps}
    for kind in kinds:
        for depth in depths:
            for width in widths:
                params = scaling_net(width, depth, kind)
                name = f"(10,{','.join([str(width)] * depth)},3)"
                for p in ps:
                    # compile this net's programs first (a search of a quarter of the cap: the node bounds and
                    # most LP shapes), so the times below are warm
                    lipschitz.lipschitz_constant(params, box, p=p, batch=batch, time_limit=cap / 4)
                    for k in (1.0, k_approx):
                        r = lipschitz.lipschitz_constant(params, box, p=p, k=k, batch=batch, time_limit=cap)
                        gap = (r.upper - r.lower) / r.upper if r.upper > 0 else 0.0
                        if k == 1.0 and r.exact:
                            certified[kind, depth, p].append(width)
                        orig = original_cell(lipbab_from, params, box, p, lipbab_cap) if k == 1.0 else "-"
                        print(
                            f"{kind:7s} | {name} | {p:g} | "
                            f"{'exact' if k == 1 else 'k=0.9'} | {r.nodes} | {len(r.rounds)} | "
                            f"{r.history[0][1]:.3f} | {r.seconds:.2f} | {r.status} | {gap:.1e} | {orig}",
                            flush=True,
                        )
    for (kind, depth, p), ws in certified.items():
        print(
            f"lipbab largest width exactly certified in <= {cap:g} s, {kind} nets of depth {depth}, "
            f"p={p:g}: {max(ws) if ws else 'none'} (of {', '.join(map(str, widths))})",
            flush=True,
        )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    ap.add_argument(
        "--device-counts", type=int, nargs="+", default=[1, 2], help="forced host devices of the throughput runs"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=5000, help="node budget of the throughput runs")
    ap.add_argument(
        "--scaling",
        choices=["small", "grid", "only", "off"],
        default="small",
        help="the scaling table: small (widths 20 40, depth 3, p=2), grid (widths 20 40 64 100, depths 3-5, "
        "p = 1, 2, inf; about an hour on 2 CPU cores), only (the grid and nothing else), off",
    )
    ap.add_argument("--widths", type=int, nargs="+", default=[20, 40, 64, 100], help="widths of the grid")
    ap.add_argument("--depths", type=int, nargs="+", default=[3, 4, 5], help="hidden layers of the grid")
    ap.add_argument("--kinds", nargs="+", choices=["random", "trained"], default=["random", "trained"])
    ap.add_argument("--ps", type=float, nargs="+", default=[1, 2, np.inf], help="norms of the grid (inf allowed)")
    ap.add_argument(
        "--cap", type=float, default=None, help="seconds per search in the scaling table (default 8 small, 60 grid)"
    )
    ap.add_argument("--scaling-batch", type=int, default=64, help="node batch of the scaling table's searches")
    ap.add_argument(
        "--lipbab-from",
        default=None,
        metavar="DIR",
        help="a checkout of the original LipBaB (github.com/pyrobits/LipBaB; needs cvxopt): its time on SDnet p=2 "
        "and in the scaling table's exact rows, each capped at --lipbab-cap",
    )
    ap.add_argument("--lipbab-cap", type=float, default=600.0, help="seconds per run of the original LipBaB")
    ap.add_argument("--throughput-child", action="store_true", help=argparse.SUPPRESS)
    args = parse(ap, argv, FULL)
    if args.lipbab_from is not None and not os.path.isfile(os.path.join(args.lipbab_from, "LipBaB.py")):
        ap.error(f"--lipbab-from: no LipBaB.py in {args.lipbab_from!r} (a checkout of github.com/pyrobits/LipBaB)")
    if not args.lipbab_cap > 0:
        ap.error(f"--lipbab-cap: expected a positive number of seconds, got {args.lipbab_cap}")
    if args.throughput_child:
        throughput_child(args.nodes)
        return
    if args.scaling in ("grid", "only"):
        scaling_table(
            args.widths,
            args.depths,
            args.ps,
            args.cap or 60.0,
            args.scaling_batch,
            tuple(args.kinds),
            args.lipbab_from,
            args.lipbab_cap,
        )
        if args.scaling == "only":
            return
    params, box = NET.params, NET.box

    def run(b, p=2, lp="batched"):
        return lambda: lipschitz.lipschitz_constant(params, box, p=p, batch=b, lp=lp)

    times = {}
    for b, lp in [(1, "highs"), (1, "batched")] + [(b, "batched") for b in args.batches]:
        run(b, lp=lp)()  # compile
        times[b, lp], r = best_time(run(b, lp=lp), args.repeat)
        assert r.exact and abs(r.upper - EXACT[2]) <= 1e-9 * EXACT[2], (b, r)
        print(
            f"batch={b:4d} lp={lp:7s}: L2 = {r.upper:.12f} exact={r.exact} nodes={r.nodes} lp_calls={r.lp_calls} "
            f"(HiGHS {r.highs_calls}) {times[b, lp]:.3f} s",
            flush=True,
        )
    best_b = min(args.batches, key=lambda b: times[b, "batched"])
    best = times[best_b, "batched"]
    report(
        f"lipbab exact p=2 (10,30,30,30,3), batch={best_b} vs batch=1 sequential as the paper (one HiGHS LP at a time)",
        times[1, "highs"],
        best,
    )
    report(
        f"lipbab exact p=2 (10,30,30,30,3), batch={best_b} vs batch=1 with the same batched LPs",
        times[1, "batched"],
        best,
    )
    if args.lipbab_from is not None:
        orig = original_lipbab(args.lipbab_from, params, box, 2.0, args.lipbab_cap)
        if "seconds" in orig and orig["status"] == "exact":
            assert abs(orig["upper"] - EXACT[2]) <= 1e-6 * EXACT[2], orig  # the same constant (its rounding: 1e-15)
            report("lipbab exact p=2 (10,30,30,30,3) vs the original LipBaB run here (GLPK)", orig["seconds"], best)
        else:
            print(f"lipbab exact p=2 (10,30,30,30,3) vs the original LipBaB: {orig['status']}", flush=True)
    for p in (1, 2, np.inf):
        run(best_b, p)()  # compile for this p
        t, r = best_time(run(best_b, p), args.repeat)
        assert r.exact and abs(r.upper - EXACT[p]) <= 1e-9 * EXACT[p], (p, r)
        report(f"lipbab exact p={'inf' if p == np.inf else p} vs paper (Colab, GLPK, {PAPER_S[p]} s)", PAPER_S[p], t)
    setup = (
        "from jaxkit import lipschitz\n"
        "net = lipschitz.paper_network('sd_10-30-30-30-3')\n"
        f"def run():\n    lipschitz.lipschitz_constant(net.params, net.box, p=2, batch={FIRST_CALL_BATCH})\n"
    )
    t_first, n_compiles = first_call(setup)
    report(
        f"lipbab exact p=2 (10,30,30,30,3), batch={FIRST_CALL_BATCH}, first call in a fresh process (no compilation "
        f"cache; {n_compiles} XLA "
        f"compilations) vs paper (Colab, GLPK, {PAPER_S[2]} s)",
        PAPER_S[2],
        t_first,
    )
    with tempfile.TemporaryDirectory() as cache:
        first_call(setup, cache_dir=cache)  # fills the cache
        t_cached, _ = first_call(setup, cache_dir=cache)
    report(
        f"lipbab exact p=2 (10,30,30,30,3), first call in a fresh process with a warm persistent compilation cache "
        f"vs paper (Colab, GLPK, {PAPER_S[2]} s)",
        PAPER_S[2],
        t_cached,
    )
    throughput(args.nodes, tuple(args.device_counts))
    if args.scaling == "small":
        scaling_table(
            (20, 40), (3,), (2,), args.cap or 8.0, args.scaling_batch, ("random",), args.lipbab_from, args.lipbab_cap
        )


if __name__ == "__main__":
    main()
