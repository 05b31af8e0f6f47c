"""What every attack of ``robust.ATTACKS`` must satisfy: ``robust_accuracy`` (one compiled call over the budgets)
agrees with the attack's own public function applied budget by budget, the adversarial inputs stay in the
eps-ball and the clip range, and ``eps = 0`` gives the clean accuracy. A registered attack without an entry in
``PUBLIC`` fails ``test_every_registered_attack_is_tested``."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkit import robust

STEPS = 5


class _Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(nn.tanh(nn.Dense(16)(x)))


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (40, 6)).astype(np.float32)
    y = (x[:, :3].argmax(1)).astype(np.int32)
    net = _Net()
    params = net.init(jax.random.key(0), x)
    means = robust.class_means(x, y, 3)
    return net.apply, params, x, y, means


# name -> x_adv from the attack's public function, as robust_accuracy runs it (white box, untargeted except
# for the average attack, which always moves towards a target class)
def _public(name, apply_fn, params, x, y, means, eps, norm, clip):
    key = jax.random.key(0)
    if name == "fgsm":
        return robust.fgsm(apply_fn, params, x, y, eps, norm=norm, clip=clip)
    if name == "bim":
        return robust.bim(apply_fn, params, x, y, eps, steps=STEPS, norm=norm, clip=clip)
    if name == "pgd":
        return robust.pgd(
            key, apply_fn, params, x, y, eps, norm=norm, steps=STEPS, step_size=2.5 * eps / STEPS, clip=clip
        )
    return robust.average_sample_attack(x, y, means, 0, eps, clip=clip)


PUBLIC = ("fgsm", "bim", "pgd", "average")


def test_every_registered_attack_is_tested():
    assert set(PUBLIC) == set(robust.ATTACKS)


def _accuracy(apply_fn, params, x, y):
    return float(np.mean(np.asarray(jnp.argmax(apply_fn(params, x), -1)) == y))


# the average-sample attack is an l-inf attack only
@pytest.mark.parametrize(
    "name, norm", [(n, p) for n in sorted(robust.ATTACKS) for p in ("inf", "2") if not (n == "average" and p == "2")]
)
def test_adversarial_inputs_stay_in_the_ball_and_the_clip_range(problem, name, norm):
    apply_fn, params, x, y, means = problem
    eps = 0.1
    adv = np.asarray(_public(name, apply_fn, params, x, y, means, eps, norm, (0.0, 1.0)))
    d = (adv - x).reshape(len(x), -1)
    size = np.abs(d).max(1) if norm == "inf" else np.sqrt((d * d).sum(1))
    assert size.max() <= eps * (1 + 1e-5) + 1e-6
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    assert size.max() > 0.5 * eps  # it moved


@pytest.mark.parametrize("name", sorted(robust.ATTACKS))
def test_robust_accuracy_equals_the_public_attack_budget_by_budget(problem, name):
    """Two programs (all budgets vmapped in one call vs one call per budget): accuracies equal to one example
    in 40 (a float32 rounding can flip an example that sits on a decision boundary)."""
    apply_fn, params, x, y, means = problem
    eps = [0.0, 0.05, 0.2]
    kw = dict(steps=STEPS, key=jax.random.key(0))
    if name == "average":
        kw.update(means=means, target=0)
    acc = robust.robust_accuracy(apply_fn, params, x, y, eps, name, **kw)
    assert acc[0] == pytest.approx(_accuracy(apply_fn, params, x, y))  # eps = 0: the clean accuracy
    for e, a in zip(eps[1:], acc[1:]):
        adv = _public(name, apply_fn, params, x, y, means, e, "inf", None)
        assert abs(a - _accuracy(apply_fn, params, adv, y)) <= 1 / len(x) + 1e-9, (name, e)


def test_unknown_attack_is_named(problem):
    apply_fn, params, x, y, _ = problem
    with pytest.raises(ValueError, match="`attack` must be one of"):
        robust.robust_accuracy(apply_fn, params, x, y, [0.1], "cw")
