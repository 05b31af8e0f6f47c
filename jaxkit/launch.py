"""Multi-process runs on JAX's own distributed runtime: join one from a script, or start N local processes.

In the script, before any other JAX work::

    import jaxkit.launch
    jaxkit.launch.initialize()   # no-op in a plain single process

Start ``N`` processes on this machine (each with ``D`` forced host CPU devices if ``--devices`` is given)::

    python -m jaxkit.launch --processes 2 --devices 2 -- my_script.py --its --flags

Each process gets ``JAX_COORDINATOR_ADDRESS`` (a free local port), ``JAXKIT_NUM_PROCESSES`` and
``JAXKIT_PROCESS_ID``; :func:`initialize` reads them and calls ``jax.distributed.initialize`` (with gloo CPU
collectives when the processes run on CPU). On a cluster, start one process per host with the scheduler
(``srun``, ``mpirun``, a Kubernetes job) and set ``JAXKIT_DISTRIBUTED=1`` instead: :func:`initialize` then lets
``jax.distributed.initialize()`` detect SLURM / Open MPI / the cloud TPU environment itself. The launcher prefixes
each line of output with ``[i]`` and exits with the first non-zero exit status (the others are stopped).

Inside the processes, ``jax.devices()`` holds every process's devices: ``evolution.evaluate`` / ``step`` /
``optimize``, ``rl.place_runs`` + ``Trainer.run_many`` and ``lipschitz.lipschitz_constant`` shard over all of
them; each process must pass the same values (``evaluate`` checks it) and reads results with
``rl.gather_runs`` (``np.asarray`` of a sharded array fails where a process holds only its shards).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading

__all__ = ["initialize", "main"]

ENV_PROCESSES = "JAXKIT_NUM_PROCESSES"
ENV_PROCESS_ID = "JAXKIT_PROCESS_ID"
ENV_CLUSTER = "JAXKIT_DISTRIBUTED"


def initialize() -> bool:
    """Join the multi-process run this process was started in; ``True`` if it is one, ``False`` otherwise."""
    import jax  # noqa: PLC0415  (the launcher itself never imports JAX)

    if os.environ.get(ENV_PROCESSES):
        n, i = int(os.environ[ENV_PROCESSES]), int(os.environ[ENV_PROCESS_ID])
        if os.environ.get("JAX_PLATFORMS", "cpu").split(",")[0] == "cpu":
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"], num_processes=n, process_id=i)
        return True
    if os.environ.get(ENV_CLUSTER) == "1":
        jax.distributed.initialize()
        return True
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def _pump(i: int, stream, out) -> None:
    for line in iter(stream.readline, ""):
        out.write(f"[{i}] {line}")
        out.flush()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jaxkit.launch",
        description="Start N local processes of a Python script joined by jax.distributed (see jaxkit.launch).",
    )
    p.add_argument("--processes", "-n", type=int, default=2, help="number of processes (default: 2)")
    p.add_argument("--devices", type=int, help="forced host CPU devices per process (default: the platform's)")
    p.add_argument("--timeout", type=float, help="seconds before every process is stopped (default: none)")
    p.add_argument("script", help="the Python script each process runs")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    a = p.parse_args(argv)
    if a.processes < 1:
        p.error(f"--processes must be >= 1, got {a.processes}")
    if a.devices is not None and a.devices < 1:
        p.error(f"--devices must be >= 1, got {a.devices}")
    if not os.path.isfile(a.script):
        p.error(f"no script at {a.script!r}")
    env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f"localhost:{_free_port()}")
    env[ENV_PROCESSES] = str(a.processes)
    if a.devices is not None:
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={a.devices}".strip()
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    procs, pumps = [], []
    for i in range(a.processes):
        proc = subprocess.Popen(
            [sys.executable, a.script, *args],
            env=dict(env, **{ENV_PROCESS_ID: str(i)}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        pumps.append(threading.Thread(target=_pump, args=(i, proc.stdout, sys.stdout), daemon=True))
        pumps[-1].start()
    status = 0
    try:
        for proc in procs:
            rc = proc.wait(timeout=a.timeout)
            if rc and not status:
                status = rc
                for other in procs:  # one process failed: the others would wait on it forever
                    if other.poll() is None:
                        other.terminate()
    except subprocess.TimeoutExpired:
        status = 124
        for proc in procs:
            proc.kill()
    for t in pumps:
        t.join(timeout=5)
    return status


if __name__ == "__main__":
    sys.exit(main())
