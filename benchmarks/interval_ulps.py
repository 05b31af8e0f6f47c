"""Measures how far XLA's elementwise functions are from the exact value, in outward steps of ``nextafter``.

``jaxkit.interval.monotone`` widens ``fn(lo)`` / ``fn(hi)`` by ``MONOTONE_ULPS[backend][dtype][name]`` steps of
the interval module's own outward rounding. This script finds, for each function and dtype, the smallest number
of steps that contains the exact value at every point of a dense sweep (2**20 points by default: log-uniform
magnitudes over the whole finite range with both signs, uniform points in [-40, 40], values around 0, ±1 and the ends of
each function's domain), and prints the table to paste into ``jaxkit/interval.py`` (measured steps, the margin
the library adds, and the value it stores).

References: float32 results against numpy's float64 functions of the same (exactly representable) inputs;
float64 results against numpy's ``longdouble`` (x87 80-bit on x86-64: 11 more bits than float64).
Subnormal inputs are left out here: ``monotone`` moves subnormal end points to 0 / ±tiny before calling the
function (see the module docstring); the tests check containment on subnormal inputs too.

    python benchmarks/interval_ulps.py                  # this machine's default backend
    XLA_FLAGS=--xla_backend_optimization_level=0 python benchmarks/interval_ulps.py   # -O0 code differs (arctan)
    JAX_PLATFORMS=cuda python benchmarks/interval_ulps.py   # on a GPU
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
from benchkit import parse

from jaxkit import interval as iv


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """The exact function in higher precision (float64 for float32 inputs, longdouble for float64)."""
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    x = x.astype(wide)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        if name == "sigmoid":
            return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))
        if name == "softplus":
            return np.where(x > 0, x + np.log1p(np.exp(-x)), np.log1p(np.exp(x)))
        return getattr(np, name)(x)


DOMAIN = {"log": (0.0, np.inf), "log1p": (-1.0, np.inf), "sqrt": (0.0, np.inf)}


def sweep(dtype, name: str, n: int, seed: int = 0) -> np.ndarray:
    """Dense test points of ``dtype`` in the function's domain (normal numbers and zeros; no subnormals)."""
    rng = np.random.default_rng(seed)
    fi = np.finfo(dtype)
    lo_e, hi_e = np.log10(fi.tiny), np.log10(fi.max)
    mags = 10 ** rng.uniform(lo_e, hi_e, n // 2)
    pts = [
        rng.choice([-1, 1], n // 2) * mags,
        rng.uniform(-40, 40, n // 4),
        rng.normal(0, 1e-3, n // 16),
        1 + rng.normal(0, 1e-4, n // 16),
        -1 + rng.normal(0, 1e-4, n // 16),
        np.array([0.0, -0.0, 1.0, -1.0, fi.tiny, -fi.tiny, fi.max, -fi.max]),
    ]
    x = np.concatenate(pts)
    a, b = DOMAIN.get(name, (-np.inf, np.inf))
    x = np.clip(x, a, b) if name != "log1p" else np.maximum(x, -1 + 2 * fi.eps)
    x = x.astype(dtype)
    return x[(np.abs(x) >= fi.tiny) | (x == 0)]


def _down_np(x):
    t = np.finfo(x.dtype).tiny
    step = np.nextafter(x, np.array(-np.inf, x.dtype))
    return np.where(x > t, step, np.where(x > 0, 0.0, np.where(x > -t, -t, step))).astype(x.dtype)


def steps_needed(y: np.ndarray, ref: np.ndarray, k_max: int = 1024) -> int:
    """Smallest k with down^k(y) <= ref <= up^k(y) at every point (NaN where both are NaN is fine)."""
    ok_nan = np.isnan(y) & np.isnan(ref)
    lo = hi = y
    for k in range(k_max + 1):
        inside = ok_nan | ((lo.astype(ref.dtype) <= ref) & (ref <= hi.astype(ref.dtype)))
        if inside.all():
            return k
        lo, hi = _down_np(lo), -_down_np(-hi)
    raise RuntimeError(f"more than {k_max} steps; worst points {y[~inside][:5]}")


def measure(n: int = 2**21) -> dict:
    table = {}
    for dtype in (np.float32, np.float64):
        with jax.enable_x64(dtype == np.float64):
            for name, (fn, _) in iv.MONOTONE_FUNCTIONS.items():
                x = sweep(dtype, name, n)
                y = np.asarray(jax.jit(fn)(jnp.asarray(x)))
                assert y.dtype == dtype, (name, y.dtype)
                table[np.dtype(dtype).name, name] = steps_needed(y, reference(name, x))
    return table


# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"points": 2**24}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=2**20, help="points per function and dtype (default %(default)s)")
    args = parse(ap, argv, FULL)
    if args.points < 1000:
        ap.error("--points: expected at least 1000")
    backend = jax.default_backend()
    print(f"backend {backend}, jax {jax.__version__}, {args.points} points per function and dtype", flush=True)
    table = measure(args.points)
    print(f"{'dtype':8s} {'function':9s} {'measured steps':>14s} {'stored (2x + 2)':>16s} {'library now':>12s}")
    worse = []
    for (dt, name), k in table.items():
        now = iv.MONOTONE_ULPS.get(backend, {}).get(dt, {}).get(name)
        print(f"{dt:8s} {name:9s} {k:14d} {2 * k + 2:16d} {str(now):>12s}")
        if now is not None and k > now:
            worse.append((dt, name, k, now))
    if worse:
        print(f"UNSOUND on this machine: measured more steps than the library uses: {worse}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
