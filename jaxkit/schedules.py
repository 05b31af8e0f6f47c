"""Decay schedules as optax-style ``step -> value`` functions (jittable, composable).

* :func:`bfrifp_decay` -- BFRIFP's pruned-channel multiplier ``D(l, e)``
  (Qiu et al., ICANN 2021), a function of epoch *and* layer;
* :func:`warmup_cosine_sparsity` -- Pruned-YOLO's sparsity coefficient: linear
  warm-up, then cosine decay "like the learning rate", optionally to a floor;
* :func:`gmp_sparsity` -- gradual magnitude pruning's cubic sparsity ramp
  (Zhu & Gupta 2017);
* :func:`temperature` -- exponential / linear / cosine annealing for gate
  temperatures;
* :func:`ramp` -- a delayed linear ramp of a loss weight, e.g. Gator's cost
  weight ``alpha`` (our extension: the paper holds ``alpha`` fixed per phase).

Step convention: ``step`` (or ``epoch``) 0 is the value used *before the first
update*, as in optax. Every function accepts Python numbers or traced arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c

__all__ = ["bfrifp_decay", "gmp_sparsity", "ramp", "temperature", "warmup_cosine_sparsity"]


def _step(step, name="step"):
    """A step / epoch count as float32: real and >= 0 (a ValueError when concrete; NaN inside a trace)."""
    t = _c.array(step, name, kind="r")
    if _c.is_concrete(t):
        v = np.asarray(t, np.float64)
        if np.any(~np.isfinite(v)) or np.any(v < 0):
            raise ValueError(
                f"`{name}` must be a finite count >= 0 ({name} 0 is before the first update), got "
                f"{v.ravel()[~(np.isfinite(v.ravel()) & (v.ravel() >= 0))][0]}."
            )
    t = jnp.asarray(t, jnp.float32)
    return jnp.where(t < 0, jnp.nan, t)


def _pos(name, v, strict=True):
    if not np.isfinite(v) or (v <= 0 if strict else v < 0):
        raise ValueError(f"`{name}` must be {'>' if strict else '>='} 0, got {v}.")


def bfrifp_decay(
    n_layers: int, lambda_e: float = 2.0, lambda_l: float = 5.0, depth_norm: float | None = None
) -> Callable:
    """``D(l, e) = exp(min(-lambda_e * e + lambda_l * (n - l) / L, 0))``.

    ``l = 1..n`` is the layer index (1 = first), ``e`` the (possibly fractional:
    our per-step extension) training epoch. The paper prints ``(n - l) / L``
    with ``L`` undefined; ``depth_norm=None`` reads it as ``L = n`` (our choice).
    Deeper layers decay first: with ``n = 13`` the last layer gives 1, 0.135,
    0.018 at ``e = 0, 1, 2`` and the first 1, 1, 1, 0.250 at ``e = 0..3``.

    Returns ``D(epoch, layer)``; both arguments broadcast.
    """
    if int(n_layers) < 1:
        raise ValueError(f"`n_layers` must be >= 1, got {n_layers}.")
    _pos("lambda_e", lambda_e)
    _pos("lambda_l", lambda_l, strict=False)
    n = float(n_layers)
    big_l = n if depth_norm is None else float(depth_norm)
    _pos("depth_norm", big_l)

    def decay(epoch, layer):
        e = _step(epoch, "epoch")
        lyr = jnp.asarray(_c.array(layer, "layer", kind="r"), jnp.float32)
        return jnp.exp(jnp.minimum(-lambda_e * e + lambda_l * (n - lyr) / big_l, 0.0))

    return decay


def warmup_cosine_sparsity(peak: float, total_steps: int, warmup_steps: int = 0, floor: float = 0.0) -> Callable:
    """Pruned-YOLO's sparsity coefficient ``s(t)``.

    Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then cosine decay
    to ``floor * peak`` at ``total_steps`` (held after). The paper gives no floor
    (``floor=0``); the authors' code decays to ``0.2 * peak`` (``floor=0.2``).
    """
    _pos("peak", peak, strict=False)
    if int(total_steps) <= int(warmup_steps) or int(warmup_steps) < 0:
        raise ValueError(f"Need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}.")
    if not 0 <= floor <= 1:
        raise ValueError(f"`floor` is a fraction of `peak` in [0, 1], got {floor}.")
    w, t_total = float(warmup_steps), float(total_steps)

    def schedule(step):
        t = _step(step)
        warm = peak * t / jnp.maximum(w, 1.0)
        frac = jnp.clip((t - w) / (t_total - w), 0.0, 1.0)
        cos = peak * (floor + (1 - floor) * 0.5 * (1 + jnp.cos(jnp.pi * frac)))
        return jnp.where(t < w, warm, cos)

    return schedule


def gmp_sparsity(final: float, begin_step: int, end_step: int, initial: float = 0.0) -> Callable:
    """Zhu & Gupta's cubic ramp: ``s_t = s_f + (s_i - s_f) * (1 - (t - t_0) / (t_1 - t_0))^3``.

    ``initial`` before ``begin_step``, ``final`` after ``end_step``.
    """
    for name, v in (("final", final), ("initial", initial)):
        if not 0 <= v < 1:
            raise ValueError(f"`{name}` sparsity must lie in [0, 1), got {v}.")
    if int(end_step) <= int(begin_step):
        raise ValueError(f"`end_step` must exceed `begin_step`, got {begin_step} and {end_step}.")
    t0, t1 = float(begin_step), float(end_step)

    def schedule(step):
        frac = jnp.clip((_step(step) - t0) / (t1 - t0), 0.0, 1.0)
        return final + (initial - final) * (1.0 - frac) ** 3

    return schedule


def temperature(init: float, final: float, total_steps: int, kind: str = "exponential") -> Callable:
    """Anneal from ``init`` to ``final`` over ``total_steps`` (held after).

    ``kind``: ``"exponential"`` (geometric: ``init * (final/init)^(t/T)``),
    ``"linear"`` or ``"cosine"``.
    """
    _pos("init", init)
    _pos("final", final)
    if int(total_steps) < 1:
        raise ValueError(f"`total_steps` must be >= 1, got {total_steps}.")
    if kind not in ("exponential", "linear", "cosine"):
        raise ValueError(f"`kind` must be 'exponential', 'linear' or 'cosine', got {kind!r}.")
    t_total = float(total_steps)

    def schedule(step):
        f = jnp.clip(_step(step) / t_total, 0.0, 1.0)
        if kind == "exponential":
            return init * (final / init) ** f
        if kind == "linear":
            return init + (final - init) * f
        return final + (init - final) * 0.5 * (1 + jnp.cos(jnp.pi * f))

    return schedule


def ramp(final: float, ramp_steps: int, *, initial: float = 0.0, delay: int = 0) -> Callable:
    """``initial`` for ``delay`` steps, then linear to ``final`` over ``ramp_steps`` (held after).

    For loss weights switched on gradually, e.g. the ``alpha`` of
    :func:`jaxkit.gates.make_train_step` (the Gator paper uses a constant
    ``alpha`` per gated phase: ``ramp_steps = 0`` gives that).
    """
    if not (np.isfinite(final) and final >= 0):
        raise ValueError(f"`final` must be a finite number >= 0, got {final}.")
    if not (np.isfinite(initial) and initial >= 0):
        raise ValueError(f"`initial` must be a finite number >= 0, got {initial}.")
    if int(ramp_steps) < 0 or int(delay) < 0:
        raise ValueError(f"`ramp_steps` and `delay` must be >= 0, got {ramp_steps} and {delay}.")
    t0, width = float(delay), float(max(int(ramp_steps), 1))

    def schedule(step):
        t = _step(step)
        if int(ramp_steps) == 0:
            return jnp.where(t >= t0, final, initial).astype(jnp.float32)
        frac = jnp.clip((t - t0) / width, 0.0, 1.0)
        return initial + (final - initial) * frac

    return schedule
