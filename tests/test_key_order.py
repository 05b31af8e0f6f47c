"""The key-order rule, checked over every public function, and the old call orders of the functions that moved
their key (they work for one release, with a DeprecationWarning, and give the same numbers).

The rule (README "Conventions"): a stochastic function takes its PRNG key first -- after only the callables and
static configuration it is built from (``apply_fn``, ``strategy``, ``fitness_fn``, ``env``, a problem), as evosax's
``strategy.ask(key, ...)`` takes it first after the strategy it belongs to. Optional keys (default ``None``: the
stochastic variant of a deterministic function) and the keys of whole training drivers (``models.train(...,
key=)``) are keyword arguments.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxkit
from jaxkit import fairness, gan, gates

KEY_NAMES = ("key", "rng", "keys")
# what may come before a key: the callables and static configuration a function is built from
CONFIGURATION = {"apply_fn", "critic_apply", "strategy", "fitness_fn", "env", "module", "prob", "tune"}


def _public_functions():
    seen = set()
    for info in pkgutil.walk_packages(jaxkit.__path__, "jaxkit."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        mod = importlib.import_module(info.name)
        for name in getattr(mod, "__all__", ()):
            fn = getattr(mod, name, None)
            if not callable(fn) or inspect.isclass(fn) or id(fn) in seen:
                continue
            seen.add(id(fn))
            yield f"{info.name}.{name}", fn


def test_every_public_key_comes_first_or_is_a_keyword():
    checked, broken = 0, []
    for qual, fn in _public_functions():
        params = list(inspect.signature(fn).parameters.values())
        for i, p in enumerate(params):
            if p.name not in KEY_NAMES:
                continue
            checked += 1
            keyword = p.kind is inspect.Parameter.KEYWORD_ONLY
            optional = p.default is None
            first = all(q.name in CONFIGURATION for q in params[:i])
            if not (keyword or optional or first):
                broken.append(f"{qual}({', '.join(q.name for q in params[: i + 1])}, ...)")
    assert checked >= 40  # the walk found the library's stochastic functions
    assert broken == []


def _same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)


def _old(call):
    with pytest.warns(DeprecationWarning, match="key now comes at argument"):
        return call()


def test_moved_keys_old_orders_still_work_with_a_warning():
    k = jax.random.key(3)
    theta = {"e": jnp.array([0.5, -1.0, 2.0])}
    new = gates.sample_gates(k, theta, 4)
    _same(new, _old(lambda: gates.sample_gates(theta, k, 4)))
    _same(new, _old(lambda: gates.sample_gates(theta, key=k, batch=4)))
    legacy = jax.random.PRNGKey(3)  # a raw uint32 key is a key too
    _same(gates.sample_gates(legacy, theta, 4), _old(lambda: gates.sample_gates(theta, legacy, 4)))

    w = jnp.array([[1.0], [-2.0]])

    def critic(p, x):
        return (x.reshape(x.shape[0], -1) @ p)[:, 0]

    real, fake = jnp.ones((4, 2)), jnp.zeros((4, 2))
    _same(gan.gradient_penalty(critic, k, w, real, fake), _old(lambda: gan.gradient_penalty(critic, w, real, fake, k)))
    _same(gan.critic_loss(critic, k, w, real, fake), _old(lambda: gan.critic_loss(critic, w, real, fake, k)))

    params = fairness.init_mlp(jax.random.key(0), 3)
    x, y = np.random.default_rng(0).normal(size=(32, 3)), np.arange(32) % 2
    _same(
        fairness.partial_train(k, params, x, y, steps=2, batch_size=8),
        _old(lambda: fairness.partial_train(params, k, x, y, steps=2, batch_size=8)),
    )


def test_the_new_order_warns_nothing_and_jits():
    k = jax.random.key(0)
    theta = {"e": jnp.zeros(3)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = jax.jit(lambda k, t: gates.sample_gates(k, t, 2))(k, theta)
    assert out["e"].shape == (2, 3)
    with pytest.warns(DeprecationWarning):  # the old order is recognised inside a trace too (dtype and shape)
        jax.jit(lambda t, k: gates.sample_gates(t, k, 2))(theta, k)
