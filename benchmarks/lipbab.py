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

Last, node throughput over 1, 2 and 4 forced host CPU devices (each count in its own process): a random
(10,40,40,40,3) net on [-0.1, 0.1]^10, p = 2, batch 128, stopped at ``--nodes`` nodes; nodes/s and the share of
the search spent in device batches (node bounds + simplex) vs on the host.

    python benchmarks/lipbab.py [--batches 8 32 128] [--repeat 3] [--nodes 20000]
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
from benchkit import best_time, first_call, report

from jaxkit import lipschitz

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


def throughput(nodes: int) -> None:
    import os
    import subprocess
    import sys

    rows = {}
    for n in (1, 2, 4):
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
    for n in (2, 4):
        report(
            f"lipbab {nodes} nodes sharded over {n} vs 1 forced host devices (same bounds)",
            nodes / rows[1][0],
            nodes / rows[n][0],
        )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=20000, help="node budget of the throughput runs")
    ap.add_argument("--throughput-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.throughput_child:
        throughput_child(args.nodes)
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
    for p in (1, 2, np.inf):
        run(best_b, p)()  # compile for this p
        t, r = best_time(run(best_b, p), args.repeat)
        assert r.exact and abs(r.upper - EXACT[p]) <= 1e-9 * EXACT[p], (p, r)
        report(f"lipbab exact p={'inf' if p == np.inf else p} vs paper (Colab, GLPK, {PAPER_S[p]} s)", PAPER_S[p], t)
    setup = (
        "from jaxkit import lipschitz\n"
        "net = lipschitz.paper_network('sd_10-30-30-30-3')\n"
        f"def run():\n    lipschitz.lipschitz_constant(net.params, net.box, p=2, batch={best_b})\n"
    )
    t_first, n_compiles = first_call(setup)
    report(
        f"lipbab exact p=2 (10,30,30,30,3), first call in a fresh process (no compilation cache; {n_compiles} XLA "
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
    throughput(args.nodes)


if __name__ == "__main__":
    main()
