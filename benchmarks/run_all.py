"""Run every benchmark and keep their ratio lines with the machine they were measured on.

Each ``benchmarks/<name>.py`` runs in its own process (a fresh JAX, so one script's compilation cache or device
state cannot flatter another), its output is shown as it comes, and every comparison line
(``<what>: <ratio>x (baseline <t> s, jaxkit <t> s)``) and every "not run" line is collected into
``benchmarks/results/<date>-<backend>.txt`` under a header with the CPU model, core count, JAX / jaxkit versions,
backend, devices and commit. A script that fails is reported (and makes the exit status 1); the others still run.

    python benchmarks/run_all.py                 # small defaults, the whole set (make bench)
    python benchmarks/run_all.py --full          # the sizes meant for an accelerator (scripts that have --full)
    python benchmarks/run_all.py --only lipbab anomaly
    JAX_PLATFORMS=cuda python benchmarks/run_all.py --full     # on a GPU machine
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RATIO = re.compile(r": \d+(\.\d+)?x \(baseline ")
SKIP = {"benchkit.py", "run_all.py"}


def scripts(only=None, folder=HERE) -> list[str]:
    names = sorted(f for f in os.listdir(folder) if f.endswith(".py") and f not in SKIP)
    if only:
        unknown = sorted(set(only) - {n[:-3] for n in names})
        if unknown:
            raise SystemExit(
                f"run_all.py: error: --only: no benchmark named {', '.join(unknown)} "
                f"(have {', '.join(n[:-3] for n in names)})"
            )
        names = [n for n in names if n[:-3] in only]
    return names


def machine() -> dict:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}
    probe = (
        "import jax, jaxkit; print(jax.__version__, jaxkit.__version__, jax.default_backend(), "
        "jax.device_count(), jax.devices()[0].device_kind, sep='|')"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    if out.returncode == 0:
        jax_v, jk_v, backend, n, kind = out.stdout.strip().splitlines()[-1].split("|")
        info.update(jax=jax_v, jaxkit=jk_v, backend=backend, devices=f"{n} x {kind}")
    else:
        info.update(jax="?", jaxkit="?", backend="unknown", devices="?")
    try:
        info["commit"] = (
            subprocess.run(
                ["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            or "?"
        )
    except OSError:
        info["commit"] = "?"
    return info


def accepts_full(path: str) -> bool:
    """The script defines ``--full``: itself, or through ``benchkit.parse(..., FULL)``."""
    with open(path) as fh:
        src = fh.read()
    return '"--full"' in src or ("FULL = " in src and "parse(" in src)


def run_one(name: str, full: bool, folder: str = HERE) -> tuple[int, float, list[str]]:
    path = os.path.join(folder, name)
    cmd = [sys.executable, path] + (["--full"] if full and accepts_full(path) else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    kept = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        if RATIO.search(line) or "not run" in line:
            kept.append(line.rstrip("\n"))
    return proc.wait(), time.perf_counter() - t0, kept


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="pass --full to the scripts that have it (accelerator sizes)")
    p.add_argument("--only", nargs="+", default=None, help="benchmark names (without .py)")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for <date>-<backend>.txt")
    p.add_argument("--dir", default=HERE, help=argparse.SUPPRESS)  # tests run a folder of stand-in scripts
    args = p.parse_args(argv)
    names = scripts(args.only, args.dir)
    info = machine()
    header = [
        f"# jaxkit benchmarks, {datetime.date.today().isoformat()}{' (--full)' if args.full else ''}",
        *(f"# {k}: {v}" for k, v in info.items()),
        "",
    ]
    print("\n".join(header), flush=True)
    lines, failed, total = [], [], time.perf_counter()
    for name in names:
        print(f"\n=== {name}", flush=True)
        rc, seconds, kept = run_one(name, args.full, args.dir)
        status = "ok" if rc == 0 else f"FAILED (exit {rc})"
        if rc:
            failed.append(name)
        lines += [f"## {name}: {status}, {seconds:.1f} s", *kept, ""]
    total = time.perf_counter() - total
    lines.append(
        f"# total {total:.0f} s for {len(names)} scripts" + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(
        args.out, f"{datetime.date.today().isoformat()}-{info['backend']}{'-full' if args.full else ''}.txt"
    )
    with open(path + ".tmp", "w") as fh:
        fh.write("\n".join(header + lines) + "\n")
    os.replace(path + ".tmp", path)
    print(f"\n{lines[-1]}\nresults: {path}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
