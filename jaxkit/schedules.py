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
    """BFRIFP's multiplier of pruned channels' outputs, a function of epoch and layer.

    ``D(l, e) = exp(min(-lambda_e * e + lambda_l * (n - l) / L, 0))``

    ``l = 1..n`` is the layer index (1 = first), ``e`` the (possibly fractional:
    our per-step extension) training epoch. The paper prints ``(n - l) / L``
    with ``L`` undefined; ``depth_norm=None`` reads it as ``L = n`` (our choice).
    Deeper layers decay first: with ``n = 13`` the last layer gives 1, 0.135,
    0.018 at ``e = 0, 1, 2`` and the first 1, 1, 1, 0.250 at ``e = 0..3``.

    Args:
      n_layers: ``n``, the number of prunable layers (>= 1).
      lambda_e: decay rate per epoch (> 0).
      lambda_l: delay per unit of normalised depth (>= 0): shallow layers start decaying later.
      depth_norm: ``L``; ``None`` uses ``n``.

    Returns:
      ``D(epoch, layer)``, jittable; both arguments broadcast (``epoch`` >= 0, ``layer`` in ``1..n``).

    Raises:
      ValueError: ``n_layers < 1``, ``lambda_e <= 0``, ``lambda_l < 0`` or ``depth_norm <= 0``; from ``D``, a
        negative or non-finite concrete ``epoch``.

    References:
      Qiu et al., "BFRIFP: Brain Functional Reorganization Inspired Filter Pruning", ICANN 2021 (the decay of
      the pruned filters' outputs; used by :mod:`jaxkit.prune.bfrifp`).

    Examples:
      >>> d = jaxkit.schedules.bfrifp_decay(13)
      >>> print(np.round(d(jnp.array([0.0, 1.0, 2.0]), 13), 3))
      [1.    0.135 0.018]
      >>> print(np.round(d(3.0, 1), 3))
      0.25
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
    """Pruned-YOLO's sparsity coefficient ``s(t)``: linear warm-up, then cosine decay.

    ``s(t) = peak * t / w`` for ``t < w``, else
    ``peak * (floor + (1 - floor) * (1 + cos(pi * (t - w) / (T - w))) / 2)``, held at ``floor * peak`` after ``T``.

    The paper decays the coefficient "like the learning rate" and gives no floor (``floor=0``); the authors'
    code decays to ``0.2 * peak`` (``floor=0.2``).

    Args:
      peak: the coefficient at the end of the warm-up (>= 0).
      total_steps: ``T``, the step at which the decay ends (> ``warmup_steps``).
      warmup_steps: ``w`` (>= 0).
      floor: the final value as a fraction of ``peak``, in ``[0, 1]``.

    Returns:
      ``schedule(step) -> s``, jittable (``step`` >= 0; step 0 is before the first update, as in optax).

    Raises:
      ValueError: ``peak < 0``, not ``0 <= warmup_steps < total_steps``, ``floor`` outside ``[0, 1]``; from the
        schedule, a negative or non-finite concrete ``step``.

    References:
      Zhang et al., "Pruned-YOLO: Learning Efficient Object Detector Using Model Pruning", ICANN 2021 (the
      sparsity-training schedule; used with :func:`jaxkit.prune.pruned_yolo.bn_l1`).

    Examples:
      >>> s = jaxkit.schedules.warmup_cosine_sparsity(1e-3, total_steps=100, warmup_steps=10)
      >>> print([round(float(s(t)), 6) for t in (5, 10, 55, 100)])
      [0.0005, 0.001, 0.0005, 0.0]
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
    """Gradual magnitude pruning's cubic sparsity ramp.

    ``s_t = s_f + (s_i - s_f) * (1 - (t - t_0) / (t_1 - t_0))^3``, ``s_i`` before ``t_0``, ``s_f`` after ``t_1``.

    Args:
      final: ``s_f``, the final sparsity in ``[0, 1)``.
      begin_step: ``t_0``.
      end_step: ``t_1`` (> ``t_0``).
      initial: ``s_i``, in ``[0, 1)``.

    Returns:
      ``schedule(step) -> sparsity``, jittable.

    Raises:
      ValueError: a sparsity outside ``[0, 1)`` or ``end_step <= begin_step``; from the schedule, a negative or
        non-finite concrete ``step``.

    References:
      Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model compression",
      arXiv:1710.01878, 2017, Eq. (1) (with its pruning frequency ``Delta t = 1``).

    Examples:
      >>> s = jaxkit.schedules.gmp_sparsity(0.9, begin_step=0, end_step=100)
      >>> print([round(float(s(t)), 4) for t in (0, 50, 100, 200)])
      [0.0, 0.7875, 0.9, 0.9]
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
    """Anneal a temperature from ``init`` to ``final`` over ``total_steps`` (held after).

    ``exponential``: ``init * (final / init)^(t / T)``; ``linear``: ``init + (final - init) * t / T``;
    ``cosine``: ``final + (init - final) * (1 + cos(pi * t / T)) / 2``.

    Args:
      init: the temperature at step 0 (> 0).
      final: the temperature from ``total_steps`` on (> 0).
      total_steps: ``T`` (>= 1).
      kind: ``"exponential"`` (geometric), ``"linear"`` or ``"cosine"``.

    Returns:
      ``schedule(step) -> temperature``, jittable.

    Raises:
      ValueError: ``init`` or ``final`` not > 0, ``total_steps < 1``, an unknown ``kind``; from the schedule, a
        negative or non-finite concrete ``step``.

    References:
      Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017, Sec. 4 (annealing the
      temperature exponentially); the temperature of :func:`jaxkit.gates.sample_gates`.

    Examples:
      >>> t = jaxkit.schedules.temperature(1.0, 0.1, total_steps=100)
      >>> print([round(float(t(s)), 4) for s in (0, 50, 100, 150)])
      [1.0, 0.3162, 0.1, 0.1]
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
    """A loss weight held at ``initial`` for ``delay`` steps, then linear to ``final`` over ``ramp_steps``.

    ``w(t) = initial + (final - initial) * clip((t - delay) / ramp_steps, 0, 1)``; ``ramp_steps = 0`` switches
    from ``initial`` to ``final`` at ``t = delay``.

    For loss weights switched on gradually, e.g. the ``alpha`` of :func:`jaxkit.gates.make_train_step`.

    Args:
      final: the weight after the ramp (finite, >= 0).
      ramp_steps: length of the linear part (>= 0).
      initial: the weight before the ramp (finite, >= 0).
      delay: steps before the ramp starts (>= 0).

    Returns:
      ``schedule(step) -> weight``, jittable.

    Raises:
      ValueError: a negative or non-finite ``final`` / ``initial``, a negative ``ramp_steps`` / ``delay``; from
        the schedule, a negative or non-finite concrete ``step``.

    References:
      Our extension: Passov, David & Netanyahu, "Gator: Customizable Channel Pruning of Neural Networks with
      Gating", ICANN 2021, hold ``alpha`` fixed per gated phase (``ramp_steps=0``).

    Examples:
      >>> w = jaxkit.schedules.ramp(0.5, ramp_steps=10, delay=5)
      >>> print([round(float(w(t)), 3) for t in (0, 5, 10, 15, 30)])
      [0.0, 0.0, 0.25, 0.5, 0.5]
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
