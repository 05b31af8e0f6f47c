"""Calibration estimators on 10^6 scores (jitted vs NumPy) and the bootstrap reliability curve (vmapped vs a loop).

Lines printed (ratio > 1 = jaxkit faster):

* each binned estimator (ECE_l uniform/hard, ECE_a adaptive/hard, ECE_c
  uniform/convex, ECE_ac adaptive/convex; sqrt(N) = 1000 bins) and the two KDE
  estimators (Gaussian ECE_d, triweight) on 10^6 class scores, jitted vs a
  NumPy implementation of the same algorithm (a loop over the bins for the
  binned ones; linear binning + the reflected kernel matrix for the KDEs);
  the values agree to 1e-4;
* the 200-resample bootstrap of the reliability curve on 2,000 scores,
  vmapped in one program (one bandwidth, one kernel matrix for all resamples,
  the default) vs a Python loop over resamples calling the jitted
  single-resample curve with that bandwidth;
* netcal's ``ECE`` (uniform and adaptive bins, 15, top-label confidence of
  10-class softmax outputs) on 10^4, 10^5, 10^6 samples, warm and first call
  in a fresh process -- when netcal can be imported; otherwise "not run"
  (netcal pulls torch; ``--netcal-from DIR`` imports its metrics from an
  unpacked netcal wheel with torch, pyro and gpytorch replaced by empty
  stubs: its ECE code is NumPy and SciPy only).

    python benchmarks/calibration.py     # ~1 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from benchkit import best_time, first_call, parse, report

from jaxkit import calibration as cal


def np_binned(s, y, b, binning, mapping):
    if binning == "uniform":
        edges = np.linspace(0, 1, b + 1)
    else:
        srt = np.sort(s)
        k = (np.arange(1, b) * len(s)) // b
        edges = np.concatenate([[0.0], 0.5 * (srt[k - 1] + srt[k]), [1.0]])
    total = 0.0
    if mapping == "hard":
        for j in range(b):
            m = (s > edges[j]) & (s <= edges[j + 1]) if j else (s <= edges[1])
            total += abs(np.sum(y[m] - s[m]))
    else:
        c = 0.5 * (edges[:-1] + edges[1:])
        for j in range(b):
            w = np.zeros_like(s)
            if j > 0:
                m = (s > c[j - 1]) & (s <= c[j])
                w[m] = (s[m] - c[j - 1]) / (c[j] - c[j - 1])
            else:
                w[s <= c[0]] = 1.0
            if j < b - 1:
                m = (s > c[j]) & (s < c[j + 1])
                w[m] = (c[j + 1] - s[m]) / (c[j + 1] - c[j])
            else:
                w[s > c[-1]] = 1.0
            total += abs(np.sum(w * (y - s)))
    return total / len(s)


def np_kde_ece(s, y, kernel, g=1025):
    h = 1.06 * np.std(s, ddof=1) * len(s) ** -0.2
    grid = np.linspace(0, 1, g)
    pos = np.clip(s, 0, 1) * (g - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, g - 2)
    t = pos - lo

    def binned(w):
        out = np.zeros(g)
        np.add.at(out, lo, w * (1 - t))
        np.add.at(out, lo + 1, w * t)
        return out

    def k(u):
        if kernel == "gaussian":
            return np.exp(-0.5 * u**2) / math.sqrt(2 * math.pi)
        return np.where(np.abs(u) < 1, 35 / 32 * (1 - u**2) ** 3, 0.0)

    kk = (
        k((grid[:, None] - grid[None]) / h)
        + k((grid[:, None] + grid[None]) / h)
        + k((grid[:, None] + grid[None] - 2) / h)
    )
    f = kk @ binned(np.ones_like(s)) / (len(s) * h)
    f1 = kk @ binned(y) / (len(s) * h)
    return np.trapezoid(np.abs(f1 - grid * f), grid)


_STUB = """
import sys, types
class _Stub(types.ModuleType):  # any attribute is a do-nothing class: enough for netcal's imports
    def __getattr__(self, k):
        if k.startswith("__"):
            raise AttributeError(k)
        v = type(k, (), {"__init__": lambda self, *a, **kw: None})
        setattr(self, k, v)
        return v
for _m in ["torch", "torch.nn", "torch.nn.functional", "torch.distributions", "torch.utils", "torch.optim",
           "torch.utils.tensorboard", "pyro", "pyro.distributions", "pyro.infer", "pyro.nn", "gpytorch", "tensorboard"]:
    sys.modules.setdefault(_m, _Stub(_m))
sys.modules["torch"].nn = sys.modules["torch.nn"]
sys.modules["torch.nn"].functional = sys.modules["torch.nn.functional"]
sys.modules["torch"].distributions = sys.modules["torch.distributions"]
"""

_NETCAL_DATA = """
import numpy as np
rng = np.random.default_rng(0)
z = rng.normal(size=({n}, 10)).astype(np.float32) * 2
p = np.exp(z - z.max(1, keepdims=True)); p = (p / p.sum(1, keepdims=True)).astype(np.float32)
hit = rng.random({n}) < np.clip(1.5 * p.max(1) - 0.25, 0, 1)  # over-confident below 0.5, under- above
y = np.where(hit, p.argmax(1), rng.integers(0, 10, {n})).astype(np.int32)
"""


def bench_netcal(args):
    """netcal's ECE vs ``cal.ece`` (top-label confidence, 15 bins), warm and first call; "not run" without netcal."""
    if args.netcal_from:
        exec(_STUB, {})
        sys.path.insert(0, os.path.abspath(args.netcal_from))
    try:
        from netcal.metrics import ECE
    except ImportError as e:
        print(f"netcal ECE: not run (netcal not importable: {e}; see --netcal-from)", flush=True)
        return
    for n in (10**4, 10**5, 10**6):
        env = {}
        exec(_NETCAL_DATA.format(n=n), env)
        p_np, y_np = env["p"], env["y"]
        p_j, y_j = jnp.asarray(p_np), jnp.asarray(y_np)
        for binning in ("uniform", "adaptive"):
            peer = ECE(15, equal_intervals=binning == "uniform")
            ours = lambda: cal.ece(p_j, y_j, n_bins=15, binning=binning).block_until_ready()
            v, ref = float(ours()), float(peer.measure(p_np, y_np))
            assert abs(v - ref) < 1e-5, (n, binning, v, ref)
            t_j, _ = best_time(ours, args.repeat)
            t_n, _ = best_time(lambda: peer.measure(p_np, y_np), args.repeat)
            report(f"ECE ({binning}, 15 bins, top-label) on {n:,} samples: jaxkit vs netcal (ECE {v:.5f})", t_n, t_j)
            if n == 10**6:  # first call: a fresh process, compilation included, vs netcal's (warm) time
                setup = (
                    "import jax, jax.numpy as jnp\nfrom jaxkit import calibration as cal\n"
                    + _NETCAL_DATA.format(n=n)
                    + f"def run():\n    cal.ece(jnp.asarray(p), jnp.asarray(y), n_bins=15, binning={binning!r})"
                    + ".block_until_ready()\n"
                )
                t_f, n_c = first_call(setup)
                report(
                    f"ECE ({binning}, 15 bins) on {n:,} samples, first call in a fresh process (no compilation "
                    f"cache; {n_c} XLA compilations) vs netcal",
                    t_n,
                    t_f,
                )


# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"n": 10_000_000}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--netcal-from",
        metavar="DIR",
        help="an unpacked netcal wheel (pip download --no-deps netcal==1.4.0; unzip): its metrics are imported "
        "with torch, pyro and gpytorch stubbed (default: netcal as installed, else 'not run')",
    )
    args = parse(p, argv, FULL)
    if args.netcal_from and not os.path.isdir(os.path.join(args.netcal_from, "netcal")):
        p.error(f"--netcal-from: no netcal/ package in {args.netcal_from!r}")
    bench_netcal(args)
    rng = np.random.default_rng(0)
    s = rng.random(args.n).astype(np.float32)
    y = (rng.random(args.n) < s**2).astype(np.int32)
    probs = jnp.asarray(np.stack([1 - s, s], 1))
    labels = jnp.asarray(y)
    b = int(round(math.sqrt(args.n)))
    s64, y64 = s.astype(np.float64), y.astype(np.float64)
    for name, binning, mapping in [
        ("ECE_l", "uniform", "hard"),
        ("ECE_a", "adaptive", "hard"),
        ("ECE_c", "uniform", "convex"),
        ("ECE_ac", "adaptive", "convex"),
    ]:
        f = lambda: cal.ece(probs, labels, "class", cls=1, binning=binning, mapping=mapping).block_until_ready()
        v = float(f())
        t_j, _ = best_time(f, args.repeat)
        t_n, ref = best_time(lambda: np_binned(s64, y64, b, binning, mapping), 1)
        assert abs(v - ref) < 1e-4, (name, v, ref)
        report(
            f"{name} ({binning}, {mapping}, {b} bins) on {args.n:,} scores: jitted vs NumPy loop over bins "
            f"(ECE {v:.4f})",
            t_n,
            t_j,
        )
    for name, kernel in [("ECE_d (Gaussian KDE)", "gaussian"), ("KDE-ECE (triweight)", "triweight")]:
        f = lambda: cal.ece_kde(probs, labels, "class", cls=1, kernel=kernel).block_until_ready()
        v = float(f())
        t_j, _ = best_time(f, args.repeat)
        t_n, ref = best_time(lambda: np_kde_ece(s64, y64, kernel), 1)
        assert abs(v - ref) < 1e-4, (name, v, ref)
        report(
            f"{name} on {args.n:,} scores: jitted vs NumPy (same linear binning + kernel matrix) (ECE {v:.4f})",
            t_n,
            t_j,
        )

    n = 2000
    pb, yb = probs[:n], labels[:n]
    key = jax.random.key(0)
    cal.reliability_curve(key, pb, yb, "class", cls=1, num_bootstrap=200)[1].block_until_ready()
    t_v, _ = best_time(
        lambda: cal.reliability_curve(key, pb, yb, "class", cls=1, num_bootstrap=200)[1].block_until_ready(),
        args.repeat,
    )
    h = float(cal.silverman_bandwidth(pb[:, 1]))  # the curve's default: one bandwidth for every resample
    one = jax.jit(lambda p_, y_: cal.local_calibration_error(p_, y_, "class", cls=1, grid_size=257, bandwidth=h))
    sb, ybn = np.asarray(pb), np.asarray(yb)

    def loop():
        r = np.random.default_rng(0)
        curves = []
        for _ in range(200):
            idx = r.integers(0, n, n)
            grid, lce, _ = one(sb[idx], ybn[idx])
            curves.append(np.asarray(lce) + np.asarray(grid))
        return np.nanquantile(np.stack(curves), [0.5, 0.05, 0.95], axis=0)

    q_loop = loop()
    t_l, _ = best_time(loop, args.repeat)
    _, med, _, _ = cal.reliability_curve(key, pb, yb, "class", cls=1, num_bootstrap=200)
    inner = slice(50, 207)  # different resamples: the medians agree to bootstrap noise
    assert np.nanmax(np.abs(np.asarray(med)[inner] - q_loop[0][inner])) < 0.05
    report(
        f"bootstrap reliability curve, 200 resamples of {n} scores: vmapped vs Python loop over resamples "
        "(jitted curve per resample)",
        t_l,
        t_v,
    )


if __name__ == "__main__":
    main()
