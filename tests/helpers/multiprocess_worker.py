"""One process of tests/test_multiprocess.py: evolution, RL and LipBaB over every device of every process.

Run alone (one process, its own devices) it gives the single-process reference; under
``python -m jaxkit.launch --processes 2 --devices 2 -- tests/helpers/multiprocess_worker.py`` each of the two
processes prints the same ``RESULT`` line. Process 0 also checks that ``evaluate`` refuses populations that
differ between processes.
"""

from __future__ import annotations

import json
import sys

import jaxkit.launch

multi = jaxkit.launch.initialize()

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit import evolution as evo
from jaxkit import lipschitz, rl


def fitness(gene, target):
    return jnp.sum((gene - target) ** 2)


out: dict = {"processes": jax.process_count(), "devices": jax.device_count()}
pop = jax.random.normal(jax.random.key(0), (10, 5))
out["fitness"] = np.asarray(evo.evaluate(fitness, pop, jnp.arange(5.0))).tolist()

env = rl.MountainCarContinuous()
tr = rl.Trainer(
    env,
    rl.DDPG(2, 1, hidden=(8,)),
    rl.IntrinsicMotivation(2, 1, hidden=(8,)),
    total_steps=20,
    buffer_size=32,
    warmup_steps=5,
)
keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in range(3)])
placed, n = rl.place_runs(tr.init_many(keys))
kinds, _ = rl.place_runs(jnp.asarray(rl.kinds_index(["fm", "mc", "gated"])))
final, logs = tr.run_many(placed, kinds, 12)
out["rl_logs"] = {k: np.asarray(v, np.float64).tolist() for k, v in rl.gather_runs(logs, n).items()}

if len(sys.argv) > 1:  # a checkpoint of the sharded RL states: every process writes its shards, then all restore
    from jaxkit.checkpoint import Checkpointer

    with Checkpointer(sys.argv[1]) as ck:
        ck.save(1, final, {"runs": n})
        back, meta = ck.restore(final)
    same = [
        bool(np.array_equal(a, b))
        for a, b in zip(jax.tree.leaves(rl.gather_runs(final)), jax.tree.leaves(rl.gather_runs(back)))
    ]
    out["checkpoint"] = [all(same), meta["runs"], len(jax.tree.leaves(final))]

net = lipschitz.paper_network("sd_10-30-30-30-3")
res = lipschitz.lipschitz_constant(net.params, net.box, p=2, batch=32)
out["lipbab"] = [res.upper, res.exact, res.nodes]

if multi:
    try:
        evo.evaluate(fitness, pop + jax.process_index(), jnp.arange(5.0))
        out["mismatch"] = "no error"
    except ValueError as e:
        out["mismatch"] = str(e)
print("RESULT " + json.dumps(out), flush=True)
