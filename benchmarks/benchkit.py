"""Timing helpers for the benchmark scripts: best-of-n wall time, first call in a fresh process, the ratio line
format (named apart from ``experiments/expkit.py``, so a benchmark may import an experiment)."""

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


_FIRST_CALL = """
import json, sys, time
from jax import monitoring
_n = [0]
monitoring.register_event_duration_secs_listener(
    lambda name, d, **k: _n.__setitem__(0, _n[0] + (name == "/jax/core/compile/backend_compile_duration")))
{setup}
_n[0] = 0  # count the first call's compilations, not the set-up's
_t = time.perf_counter()
run()
_dt = time.perf_counter() - _t
print("FIRSTCALL " + json.dumps([_dt, _n[0]]))
"""


def first_call(setup: str, timeout: float = 900, cache_dir: str | None = None) -> tuple[float, int]:
    """Seconds and XLA compilations of the first ``run()`` in a fresh Python with the compilation cache off.

    ``setup`` is code that imports what it needs and defines ``run()``; imports and set-up are not timed (a user
    pays them once per process either way), the first call with all its tracing and compiling is. With
    ``cache_dir`` the process uses that persistent compilation cache (every program cached, however quick to
    compile): call twice, and the second call measures a new process of a user who enabled the cache.
    """
    import os
    import subprocess
    import sys

    if cache_dir is None:
        env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false")
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
    else:
        env = dict(
            os.environ,
            JAX_ENABLE_COMPILATION_CACHE="true",
            JAX_COMPILATION_CACHE_DIR=cache_dir,
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        )
    r = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL.format(setup=setup)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("FIRSTCALL ")), None)
    if r.returncode or line is None:
        raise RuntimeError(f"first-call run failed:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    seconds, compiles = __import__("json").loads(line.split(" ", 1)[1])
    return float(seconds), int(compiles)


def parse(ap, argv=None, full: dict | None = None):
    """``ap.parse_args(argv)`` with a ``--full`` flag: the sizes meant for an accelerator.

    ``full`` maps argument names (``dest``) to their ``--full`` values; with ``--full`` each replaces its default
    unless the command line set that argument explicitly. ``run_all.py --full`` passes the flag to every script;
    the help text lists what it changes.
    """
    full = dict(full or {})
    unknown = sorted(set(full) - {a.dest for a in ap._actions})
    if unknown:
        raise ValueError(f"full: no argument named {unknown}")
    sizes = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in full.items()) or "nothing else"
    ap.add_argument("--full", action="store_true", help=f"the sizes meant for an accelerator: {sizes}")
    args = ap.parse_args(argv)
    if args.full:
        for dest, value in full.items():
            if getattr(args, dest) == ap.get_default(dest):
                setattr(args, dest, value)
    return args
