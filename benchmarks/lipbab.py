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

    python benchmarks/lipbab.py [--batches 8 32 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
from benchkit import best_time, first_call, report

from jaxkit import lipschitz

NET = lipschitz.paper_network("sd_10-30-30-30-3")
EXACT, PAPER_S = NET.exact, NET.paper_seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
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


if __name__ == "__main__":
    main()
