"""Timing helpers for the benchmark scripts: best-of-n wall time and the ratio line format."""

from __future__ import annotations

import time


def best_time(fn, repeat: int = 3) -> tuple[float, object]:
    """Minimum wall time of ``fn()`` over ``repeat`` runs (call once beforehand to compile)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def report(what: str, baseline_s: float, jaxkit_s: float) -> str:
    """Print ``<what>: <ratio>x (baseline <t> s, jaxkit <t> s)`` and return it."""
    line = f"{what}: {baseline_s / jaxkit_s:.2f}x (baseline {baseline_s:.3f} s, jaxkit {jaxkit_s:.3f} s)"
    print(line, flush=True)
    return line
