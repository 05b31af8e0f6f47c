"""Two local processes joined by jax.distributed (gloo CPU collectives), started by the launcher docs/scaling.md
shows: fitness, RL logs and a LipBaB constant equal the single-process results, and a checkpoint of sharded RL
states saves and restores from both processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

WORKER = os.path.join("tests", "helpers", "multiprocess_worker.py")


def _results(cmd, env) -> list[dict]:
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    rows = [ln.split("RESULT ", 1)[1] for ln in r.stdout.splitlines() if "RESULT " in ln]
    return [json.loads(x) for x in rows]


@pytest.mark.slow
def test_two_processes_give_the_single_process_results(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one device alone; the launcher forces 2 per process
    (single,) = _results([sys.executable, WORKER], env)
    launch = [sys.executable, "-m", "jaxkit.launch", "--processes", "2", "--devices", "2", "--timeout", "360"]
    multi = _results([*launch, "--", WORKER, str(tmp_path / "ckpt")], env)
    assert len(multi) == 2 and single["processes"] == 1
    for got in multi:
        assert (got["processes"], got["devices"]) == (2, 4)
        # two different programs (sharded over 4 devices vs one): stated tolerances
        np.testing.assert_allclose(got["fitness"], single["fitness"], rtol=1e-6)
        for k, v in single["rl_logs"].items():
            np.testing.assert_allclose(got["rl_logs"][k], v, rtol=2e-4, atol=1e-6, err_msg=k)
        np.testing.assert_allclose(got["lipbab"][0], single["lipbab"][0], rtol=1e-12)
        assert got["lipbab"][1:] == single["lipbab"][1:]  # exact, same node count
        assert "`population` differs between processes" in got["mismatch"], got["mismatch"]
        # the sharded RL states, saved from 2 processes (each its shards) and restored with their sharding
        assert got["checkpoint"][:2] == [True, 3] and got["checkpoint"][2] > 10, got["checkpoint"]
    assert multi[0] == multi[1]  # every process holds the same gathered results


@pytest.mark.parametrize(
    "argv, says",
    [(["--processes", "0", WORKER], "--processes"), (["--devices", "0", WORKER], "--devices"), (["nope.py"], "script")],
)
def test_launcher_refuses_bad_arguments_before_starting_anything(argv, says):
    r = subprocess.run(
        [sys.executable, "-m", "jaxkit.launch", *argv], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and says in r.stderr, r.stderr


def test_initialize_is_a_no_op_in_a_plain_process(monkeypatch):
    import jaxkit.launch

    for var in (jaxkit.launch.ENV_PROCESSES, jaxkit.launch.ENV_CLUSTER):
        monkeypatch.delenv(var, raising=False)
    assert jaxkit.launch.initialize() is False
