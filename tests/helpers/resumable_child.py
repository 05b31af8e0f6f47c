"""A child process for the fault-injection test: a GA run (evolution.optimize) and a training run (models.train),
both checkpointed under DIR, then their results written to DIR/result.npz. Killed at random moments and started
again on the same DIR, it must end exactly where an uninterrupted run ends.

    python tests/helpers/resumable_child.py DIR
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkit import data, models
from jaxkit import evolution as evo


def sphere(x):
    return jnp.sum((x - 0.3) ** 2)


def sample(k):
    return jax.random.uniform(k, (6,))


def main(directory):
    ga = evo.GA(16, sample)
    state, hist = evo.optimize(
        ga, sphere, jax.random.key(0), 40, checkpoint_dir=os.path.join(directory, "ga"), progress=False
    )
    ds = data.make_classification(400, 8, 3, seed=0)
    ts = models.create_train_state(jax.random.key(1), models.MLP((32, 3)), ds.train.x[:1], optax.adam(1e-2))
    ts, thist = models.train(
        ts,
        ds,
        key=jax.random.key(2),
        epochs=12,
        batch_size=32,
        progress=False,
        checkpoint_dir=os.path.join(directory, "train"),
        config={"lr": 1e-2},
    )
    out = {
        "ga_population": np.asarray(state.population),
        "ga_fitness": np.asarray(state.fitness),
        "ga_history": np.asarray([h["fitness"] for h in hist], np.float64),
        "train_history": np.asarray([[h["train_loss"], h["test_accuracy"]] for h in thist]),
        **{f"param_{i}": np.asarray(p) for i, p in enumerate(jax.tree.leaves(ts.params))},
    }
    tmp = os.path.join(directory, "result.tmp.npz")
    np.savez(tmp, **out)
    os.replace(tmp, os.path.join(directory, "result.npz"))
    print("finished", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
