"""Universal adversarial perturbation (UAP): one ``delta`` for a whole data set, ``||delta||_p <= eps``,
found by stochastic projected ascent on the mean loss of ``x + delta`` over random batches
(:func:`universal_perturbation`, one jitted ``fori_loop``); metrics :func:`universal_evasion_rate` (UER)
and :func:`targeted_success_rate` (TSR).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxkit import _checks as _c
from jaxkit.robust.projection import norm_name, positive_eps, project

__all__ = ["targeted_success_rate", "universal_evasion_rate", "universal_perturbation"]


def _check_delta(delta, x):
    d = _c.array(delta, "delta", kind="f")
    if jnp.shape(d) != x.shape[1:]:
        raise ValueError(f"`delta` must have the shape of one input {x.shape[1:]}, got {jnp.shape(d)}.")
    _c.finite(d, "delta")
    return jnp.asarray(d)


def universal_perturbation(
    key,
    apply_fn: Callable,
    params,
    data,
    eps: float,
    norm: str = "inf",
    target=None,
    *,
    steps: int = 100,
    batch_size: int = 200,
    step_size: float | None = None,
    clip: tuple[float, float] | None = None,
):
    """One perturbation ``delta`` (shape of one input) that fools the model on the whole data set.

    ``data = (x, y)``. Each of ``steps`` iterations draws ``batch_size`` samples
    and takes a projected ascent step on the mean cross-entropy of the true
    labels at ``x + delta`` (untargeted) or a descent step on the cross-entropy
    of ``target`` (targeted): ``delta <- P(delta +- step_size * s)`` with
    ``s = sign(g)`` for ``inf`` and ``g / ||g||`` for ``2`` (the usual
    projected-gradient form of the paper's SGD; ``step_size`` default
    ``2.5 eps / steps``, our choice). ``clip=(lo, hi)`` keeps ``x + delta`` in
    a valid input range during the search. Starts at 0; jitted ``fori_loop``.

    Args:
      key: PRNG key of the batches.
      apply_fn: ``(params, x) -> logits``.
      params: the model's params.
      data: ``(x, y)``, ``[N, ...]`` inputs and ``[N]`` labels.
      eps: the radius of ``delta``.
      norm: ``"inf"`` or ``"2"``.
      target: a target class (targeted UAP), or ``None``.
      steps: iterations.
      batch_size: samples per iteration.
      step_size: the step (default ``2.5 eps / steps``).
      clip: ``(lo, hi)`` valid input range, or ``None``.

    Returns:
      ``delta`` of shape ``x.shape[1:]``, ``||delta||_norm <= eps``.

    Raises:
      ValueError: inputs and labels of different lengths, a negative ``eps``, an unknown ``norm``, a target out
        of range, non-positive ``steps`` / ``batch_size``.

    References:
      Co, Martinez Rego & Lupu, "Jacobian Regularization for Mitigating Universal Adversarial Perturbations", ICANN 2021
      (the stochastic projected-gradient UAP); Moosavi-Dezfooli et al., "Universal adversarial
      perturbations", CVPR 2017.

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> delta = jaxkit.robust.universal_perturbation(jax.random.key(0), apply_fn, weights, (x, y), 0.3, steps=20,
      ...                                             batch_size=3)
      >>> print(np.asarray(delta, float).round(3))
      [-0.3  0.3]
    """
    eps = positive_eps(eps)
    n = norm_name(norm)
    x, y = _c.batch_and_labels(*data)
    if int(steps) < 1 or int(batch_size) < 1:
        raise ValueError(f"`steps` and `batch_size` must be >= 1, got {steps} and {batch_size}.")
    lr = 2.5 * eps / int(steps) if step_size is None else float(step_size)
    targeted = target is not None
    if targeted:
        _check_target(apply_fn, params, x, target)
    tgt = jnp.asarray(0 if target is None else target, jnp.int32)
    return _uap(
        key, apply_fn, params, x, y, tgt, eps, n, targeted, int(steps), min(int(batch_size), x.shape[0]), lr, clip
    )


@jax.jit(static_argnames=("apply_fn", "norm", "targeted", "steps", "batch_size", "clip"))
def _uap(key, apply_fn, params, x, y, tgt, eps, norm, targeted, steps, batch_size, lr, clip):
    def loss(delta, xb, yb):
        xa = xb + delta
        if clip is not None:
            xa = jnp.clip(xa, clip[0], clip[1])
        logits = apply_fn(params, xa)
        labels = jnp.full_like(yb, tgt) if targeted else yb
        ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
        return -ce if targeted else ce

    def body(i, delta):
        idx = jax.random.choice(jax.random.fold_in(key, i), x.shape[0], (batch_size,), replace=False)
        g = jax.grad(loss)(delta, x[idx], y[idx])
        s = jnp.sign(g) if norm == "inf" else g / jnp.maximum(jnp.linalg.norm(g), 1e-12)
        return project(delta + lr * s, eps, norm)

    return jax.lax.fori_loop(0, steps, body, jnp.zeros(x.shape[1:], x.dtype))


def _check_target(apply_fn, params, x, target):
    """``target`` must be one of the model's classes (a class it cannot output would give a plausible 0)."""
    classes = jax.eval_shape(apply_fn, params, jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype)).shape[-1]
    if _c.is_concrete(target) and not 0 <= int(target) < classes:
        raise ValueError(f"`target` must lie in [0, {classes}) (one of the model's classes), got {target}.")


def _predict(apply_fn, params, x, delta, clip):
    xa = x + delta
    if clip is not None:
        xa = jnp.clip(xa, clip[0], clip[1])
    return jnp.argmax(apply_fn(params, xa), -1)


def universal_evasion_rate(apply_fn: Callable, params, x, y, delta, clip=None):
    """UER: the share of ``x + delta`` the model misclassifies (all samples).

    Args:
      apply_fn: ``(params, x) -> logits``.
      params: the model's params.
      x: ``[N, ...]`` inputs.
      y: ``[N]`` labels.
      delta: one perturbation, ``x.shape[1:]``.
      clip: ``(lo, hi)`` valid input range, or ``None``.

    Returns:
      A scalar array in ``[0, 1]``.

    Raises:
      ValueError: ``delta`` of another shape than one input, labels of another length.

    References:
      Co, Martinez Rego & Lupu, "Jacobian Regularization for Mitigating Universal Adversarial Perturbations", ICANN 2021
      (UER).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> round(float(jaxkit.robust.universal_evasion_rate(apply_fn, weights, x, y, jnp.array([-0.3, 0.3]))), 3)
      0.333
    """
    x, y = _c.batch_and_labels(x, y)
    return jnp.mean(_predict(apply_fn, params, x, _check_delta(delta, x), clip) != y)


def targeted_success_rate(apply_fn: Callable, params, x, y, delta, target: int, clip=None):
    """TSR: the share of samples *not* of class ``target`` that ``x + delta`` sends to ``target``.

    Args:
      apply_fn: ``(params, x) -> logits``.
      params: the model's params.
      x: ``[N, ...]`` inputs.
      y: ``[N]`` labels.
      delta: one perturbation, ``x.shape[1:]``.
      target: the target class.
      clip: ``(lo, hi)`` valid input range, or ``None``.

    Returns:
      A scalar array in ``[0, 1]`` (0 when every sample is of class ``target``).

    Raises:
      ValueError: as :func:`universal_evasion_rate`, a target out of range.

    References:
      Co, Martinez Rego & Lupu, "Jacobian Regularization for Mitigating Universal Adversarial Perturbations", ICANN 2021
      (TSR).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> float(jaxkit.robust.targeted_success_rate(apply_fn, weights, x, y, jnp.array([-0.3, 0.3]), 1))
      0.5
    """
    x, y = _c.batch_and_labels(x, y)
    _check_target(apply_fn, params, x, target)
    hit = _predict(apply_fn, params, x, _check_delta(delta, x), clip) == target
    other = y != target
    return jnp.sum(hit & other) / jnp.maximum(jnp.sum(other), 1)
