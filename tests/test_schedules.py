"""jaxkit.schedules: worked values from the papers, endpoints, jit, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxkit import schedules


def test_bfrifp_worked_values():
    d = schedules.bfrifp_decay(13)
    np.testing.assert_allclose([d(e, 13) for e in (0, 1, 2)], [1.0, np.exp(-2), np.exp(-4)], rtol=1e-6)
    np.testing.assert_allclose([d(e, 13) for e in (0, 1, 2)], [1.0, 0.135, 0.018], atol=5e-4)
    np.testing.assert_allclose([d(e, 1) for e in range(4)], [1, 1, 1, 0.250], atol=5e-4)
    first = {lyr: next(e for e in range(20) if d(e, lyr) < 0.01) for lyr in (13, 7, 1)}
    assert first == {13: 3, 7: 4, 1: 5}
    # fractional epochs (per-step decay) are monotone and match the integer values at integers
    es = jnp.linspace(0, 6, 61)
    v = d(es, 5)
    assert np.all(np.diff(np.asarray(v)) <= 0) and float(v[20]) == pytest.approx(float(d(2, 5)))
    # layer axis broadcasts, and the depth normaliser is a parameter
    assert d(1.0, jnp.arange(1, 14)).shape == (13,)
    assert float(schedules.bfrifp_decay(13, depth_norm=26)(1, 1)) == pytest.approx(np.exp(min(-2 + 5 * 12 / 26, 0)))


def test_warmup_cosine_sparsity_and_floor():
    s = schedules.warmup_cosine_sparsity(1e-3, total_steps=100, warmup_steps=10)
    assert float(s(0)) == 0.0 and float(s(5)) == pytest.approx(5e-4) and float(s(10)) == pytest.approx(1e-3)
    assert float(s(55)) == pytest.approx(5e-4) and float(s(100)) == pytest.approx(0.0, abs=1e-12)
    f = schedules.warmup_cosine_sparsity(1e-3, 100, 10, floor=0.2)
    assert float(f(100)) == pytest.approx(2e-4) and float(f(500)) == pytest.approx(2e-4)
    ref = optax.warmup_cosine_decay_schedule(0.0, 1e-3, 10, 100, end_value=2e-4)
    np.testing.assert_allclose([f(t) for t in range(0, 101, 7)], [ref(t) for t in range(0, 101, 7)], rtol=1e-5)


def test_gmp_and_temperature():
    g = schedules.gmp_sparsity(0.9, 10, 110)
    assert float(g(0)) == 0.0 and float(g(110)) == pytest.approx(0.9) and float(g(1000)) == pytest.approx(0.9)
    assert float(g(60)) == pytest.approx(0.9 * (1 - 0.5**3))
    for kind in ("exponential", "linear", "cosine"):
        t = schedules.temperature(5.0, 0.5, 100, kind)
        assert float(t(0)) == pytest.approx(5.0) and float(t(100)) == pytest.approx(0.5)
        assert float(t(200)) == pytest.approx(0.5)
    assert float(schedules.temperature(4.0, 1.0, 10)(5)) == pytest.approx(2.0)
    assert float(jax.jit(schedules.temperature(4.0, 1.0, 10, "cosine"))(jnp.int32(5))) == pytest.approx(2.5)


def test_ramp():
    r = schedules.ramp(4.0, 10, delay=5)
    assert [float(r(t)) for t in (0, 5, 10, 15, 100)] == pytest.approx([0.0, 0.0, 2.0, 4.0, 4.0])
    assert float(jax.jit(r)(jnp.int32(7))) == pytest.approx(0.8)
    step = schedules.ramp(2.0, 0, initial=0.5, delay=3)  # a step: constant alpha after a delay
    assert [float(step(t)) for t in (0, 2, 3, 9)] == pytest.approx([0.5, 0.5, 2.0, 2.0])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: schedules.ramp(-1.0, 10), "final"),
        (lambda: schedules.ramp(1.0, -1), "ramp_steps"),
        (lambda: schedules.bfrifp_decay(0), "n_layers"),
        (lambda: schedules.bfrifp_decay(5, lambda_e=0), "lambda_e"),
        (lambda: schedules.warmup_cosine_sparsity(1.0, 10, 10), "warmup_steps < total_steps"),
        (lambda: schedules.warmup_cosine_sparsity(1.0, 10, 0, floor=2), "floor"),
        (lambda: schedules.gmp_sparsity(1.0, 0, 10), "final"),
        (lambda: schedules.gmp_sparsity(0.5, 10, 10), "end_step"),
        (lambda: schedules.temperature(1.0, 0.0, 10), "final"),
        (lambda: schedules.temperature(1.0, 0.5, 10, "step"), "kind"),
    ],
)
def test_schedule_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
