"""Adversarial attacks: FGSM, BIM / PGD (l-inf, l2, targeted, random start), the average-sample attack,
and robust accuracy under any of them (:data:`ATTACKS` names them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkit import _checks as _c
from jaxkit.robust.margins import prediction_margin
from jaxkit.robust.projection import ascent_direction, batch_norms, clip_range, nonneg_eps, norm_name, project_each
from jaxkit.robust.softrmax import softrmax_cross_entropy

__all__ = [
    "ATTACKS",
    "LOSSES",
    "average_sample_attack",
    "bim",
    "class_means",
    "fgsm",
    "margin_loss",
    "pgd",
    "robust_accuracy",
]


def margin_loss(logits, labels):
    """``max_{j != y} z_j - z_y`` per example (Carlini-Wagner's margin on the raw outputs; an attacker maximises
    it). Independent of the head's loss: on a softRmax model (prediction ``argmax z``) it attacks the decision
    directly and sidesteps gradient masking by the softRmax NLL."""
    logits = _c.logits(logits)
    return -prediction_margin(logits, _c.labels_for(logits, labels))


LOSSES = {
    "softmax": optax.softmax_cross_entropy_with_integer_labels,
    "softrmax": softrmax_cross_entropy,
    "margin": margin_loss,
}


UNROLL = 10


def _loss_fn(loss):
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(
            f"`loss` must be one of {tuple(LOSSES)} or a callable (logits, labels) -> per-example loss, got {loss!r}."
        )
    return LOSSES[loss]


def _input_grad(apply_fn, params, x, labels, loss):
    """Per-example ``grad_x loss(f(x_i), labels_i)`` (the batch sum, so examples do not mix) and the losses."""

    def total(xx):
        ls = loss(apply_fn(params, xx), labels)
        return jnp.sum(ls), ls

    g, ls = jax.grad(total, has_aux=True)(x)
    return g, ls


def _clip(x, clip):
    return x if clip is None else jnp.clip(x, clip[0], clip[1])


def _fgsm(apply_fn, params, x, y, eps, norm, targeted, loss, clip):
    g, _ = _input_grad(apply_fn, params, x, y, loss)
    s = -1.0 if targeted else 1.0
    e = jnp.reshape(eps, (-1,) + (1,) * (x.ndim - 1))
    return _clip(x + s * e * ascent_direction(g, norm), clip)


def _check_attack(x, y, eps):
    x, y = _c.batch_and_labels(x, y)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"`x` must be floating point, got {x.dtype}.")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"`y` (labels, or target labels when targeted) must be integers, got {y.dtype}.")
    e = nonneg_eps(eps)
    if e.ndim > 1 or (e.ndim == 1 and e.shape[0] != x.shape[0]):
        raise ValueError(f"`eps` must be a scalar or one value per example ({x.shape[0]}), got shape {e.shape}.")
    return x, y, jnp.asarray(e, x.dtype)


def fgsm(
    apply_fn: Callable, params, x, y, eps, *, norm: str = "inf", targeted: bool = False, loss="softmax", clip=None
):
    """Fast gradient sign method (Goodfellow et al. 2015).

    ``x' = x + eps sign(grad_x J(x, y))``; ``targeted=True`` reads ``y`` as the
    target labels and steps ``x' = x - eps sign(grad_x J(x, y_t))``. ``norm="2"``
    gives the l2 fast gradient method (``g / ||g||_2`` per example). ``loss`` is
    ``"softmax"``, ``"softrmax"`` or a callable ``(logits, labels) -> per-example
    loss``. ``clip=(lo, hi)`` keeps the result in a valid input range (inputs
    are in the model's own scale). ``eps`` is a scalar or one value per example.
    ``"margin"`` (:func:`margin_loss`) attacks the decision whatever the head.
    """
    x, y, e = _check_attack(x, y, eps)
    return _fgsm_jit(apply_fn, params, x, y, e, norm_name(norm), bool(targeted), _loss_fn(loss), clip_range(clip))


_fgsm_jit = jax.jit(_fgsm, static_argnames=("apply_fn", "norm", "targeted", "loss", "clip"))


def _pgd(key, apply_fn, params, x, y, eps, alpha, norm, steps, random_start, targeted, keep_best, loss, clip):
    sign = -1.0 if targeted else 1.0
    e = jnp.reshape(eps, (-1,) + (1,) * (x.ndim - 1))
    a = jnp.reshape(alpha, (-1,) + (1,) * (x.ndim - 1))
    if random_start:
        if norm == "inf":
            d0 = jax.random.uniform(key, x.shape, x.dtype, -1.0, 1.0) * e
        else:  # uniform in the l2 ball: a Gaussian direction, radius eps * U^(1/n)
            k1, k2 = jax.random.split(key)
            v = jax.random.normal(k1, x.shape, x.dtype)
            n = np.prod(x.shape[1:])
            r = jax.random.uniform(k2, (x.shape[0],) + (1,) * (x.ndim - 1), x.dtype) ** (1.0 / n)
            d0 = v / jnp.maximum(batch_norms(v, "2"), 1e-12) * r * e
        x0 = _clip(x + d0, clip)
    else:
        x0 = x

    def objective(ls):  # larger is better for the attacker
        return sign * ls

    g0, l0 = _input_grad(apply_fn, params, x0, y, loss)

    def body(_, carry):
        xa, g, best_x, best_v = carry
        xn = xa + sign * a * ascent_direction(g, norm)
        xn = _clip(x + project_each(xn - x, e, norm), clip)
        gn, ln = _input_grad(apply_fn, params, xn, y, loss)
        v = objective(ln)
        better = (v > best_v).reshape((-1,) + (1,) * (x.ndim - 1))
        return xn, gn, jnp.where(better, xn, best_x), jnp.maximum(v, best_v)

    xa, _, best_x, _ = jax.lax.fori_loop(0, steps, body, (x0, g0, x0, objective(l0)), unroll=UNROLL)
    return best_x if keep_best else xa


_pgd_jit = jax.jit(
    _pgd, static_argnames=("apply_fn", "norm", "steps", "random_start", "targeted", "keep_best", "loss", "clip")
)


def pgd(
    key,
    apply_fn: Callable,
    params,
    x,
    y,
    eps,
    *,
    norm: str = "inf",
    steps: int = 10,
    step_size=None,
    random_start: bool = True,
    targeted: bool = False,
    keep_best: bool = True,
    loss="softmax",
    clip=None,
):
    """Projected gradient descent attack (Madry et al. 2018): ``steps`` iterations of
    ``x <- clip(x + P_eps(x + alpha d(grad) - x_0))`` with ``d = sign`` (l-inf) or
    ``g / ||g||_2`` (l2), the gradient taken at the current iterate.

    ``random_start`` draws the start uniformly in the ball (needs ``key``; ours
    and Madry's extension of BIM); ``step_size`` defaults to ``2.5 eps / steps``.
    ``keep_best`` returns, per example, the iterate with the highest loss
    (lowest target loss when ``targeted``) among the start and all steps -- so
    the attack never does worse than its start; ``False`` returns the last
    iterate. One jitted ``lax.fori_loop``; other arguments as in :func:`fgsm`.
    """
    x, y, e = _check_attack(x, y, eps)
    if int(steps) < 1:
        raise ValueError(f"`steps` must be >= 1, got {steps}.")
    alpha = 2.5 * e / int(steps) if step_size is None else jnp.asarray(nonneg_eps(step_size, "step_size"), x.dtype)
    if random_start and key is None:
        raise ValueError("`key` is required with random_start=True (or pass random_start=False).")
    key = jax.random.key(0) if key is None else key
    return _pgd_jit(
        key,
        apply_fn,
        params,
        x,
        y,
        e,
        alpha,
        norm_name(norm),
        int(steps),
        bool(random_start),
        bool(targeted),
        bool(keep_best),
        _loss_fn(loss),
        clip_range(clip),
    )


def bim(
    apply_fn: Callable,
    params,
    x,
    y,
    eps,
    *,
    steps: int = 10,
    norm: str = "inf",
    targeted: bool = False,
    keep_best: bool = False,
    loss="softmax",
    clip=None,
):
    """Basic iterative method (Kurakin et al. 2017): ``steps`` signed steps of ``alpha = eps / steps`` from ``x``,
    the gradient taken at the current iterate, projected on the ``eps``-ball (the thesis prints the gradient at
    ``x``; this is the standard BIM). :func:`pgd` without random start; returns the last iterate by default."""
    x, y, e = _check_attack(x, y, eps)
    if int(steps) < 1:
        raise ValueError(f"`steps` must be >= 1, got {steps}.")
    return _pgd_jit(
        None,
        apply_fn,
        params,
        x,
        y,
        e,
        e / int(steps),
        norm_name(norm),
        int(steps),
        False,
        bool(targeted),
        bool(keep_best),
        _loss_fn(loss),
        clip_range(clip),
    )


def class_means(x, y, num_classes: int | None = None):
    """``Avg_c``: the mean training input of each class, shape ``(num_classes,) + x.shape[1:]``."""
    x, y = _c.batch_and_labels(x, y)
    c = int(jnp.max(y)) + 1 if num_classes is None else int(num_classes)
    counts = np.bincount(np.asarray(y), minlength=c)
    if len(counts) > c or np.any(counts == 0):
        raise ValueError(f"`y` must hold every class 0..{c - 1} at least once (counts {counts.tolist()}).")
    sums = jax.ops.segment_sum(x, y, num_segments=c)
    return sums / jnp.asarray(counts, x.dtype).reshape((c,) + (1,) * (x.ndim - 1))


def _average(x, y, means, target, eps, clip):
    e = jnp.reshape(eps, (-1,) + (1,) * (x.ndim - 1))
    return _clip(x + e * jnp.sign(means[target] - means[y]), clip)


def average_sample_attack(x, y, means, target, eps, clip=None):
    """Average-sample attack (thesis ch. 5): ``x'_y = x_y + eps sign(Avg_t - Avg_y)``.

    Semi-black-box: no gradients, but the class means ``means`` (from
    :func:`class_means` on training data). ``target`` is one class or one per
    example (examples already of class ``target`` move by ``sign(0) = 0``).
    """
    x, y, e = _check_attack(x, y, eps)
    means = _c.array(means, "means", kind="f", nonempty=True)
    _c.finite(means, "means")
    means = jnp.asarray(means, x.dtype)
    if means.shape[1:] != x.shape[1:]:
        raise ValueError(f"`means` must have shape (num_classes,) + {x.shape[1:]}, got {means.shape}.")
    t = jnp.broadcast_to(jnp.asarray(target, jnp.int32), y.shape)
    return _average(x, y, means, t, e, clip_range(clip))


# Each attack as ``craft(eps) -> x_adv`` for one (traced) budget; work that does not depend on ``eps`` is done
# once, outside the batch of budgets. Arguments: (key, source_fn, source_params, x, y, means, target, norm, steps,
# targeted, loss, clip, random_start).
def _craft_fgsm(key, source_fn, source_params, x, y, means, target, norm, steps, targeted, loss, clip, random_start):
    g, _ = _input_grad(source_fn, source_params, x, target if targeted else y, loss)  # independent of eps
    d = (-1.0 if targeted else 1.0) * ascent_direction(g, norm)
    return lambda e: _clip(x + e * d, clip)


def _craft_iterative(
    key, source_fn, source_params, x, y, means, target, norm, steps, targeted, loss, clip, random_start, *, pgd
):
    labels = target if targeted else y
    rs = random_start if pgd else False

    def run(e):
        alpha = 2.5 * e / steps if pgd else e / steps
        return _pgd(key, source_fn, source_params, x, labels, e, alpha, norm, steps, rs, targeted, pgd, loss, clip)

    return run


def _craft_average(key, source_fn, source_params, x, y, means, target, norm, steps, targeted, loss, clip, random_start):
    return lambda e: _average(x, y, means, target, e, clip)


#: The attacks :func:`robust_accuracy` runs, by name: ``"fgsm"``, ``"bim"`` (``steps`` steps of ``eps/steps``),
#: ``"pgd"`` (random start, ``2.5 eps / steps``, best iterate), ``"average"`` (:func:`average_sample_attack`).
ATTACKS = {
    "fgsm": _craft_fgsm,
    "bim": functools.partial(_craft_iterative, pgd=False),
    "pgd": functools.partial(_craft_iterative, pgd=True),
    "average": _craft_average,
}


@jax.jit(
    static_argnames=(
        "apply_fn",
        "source_fn",
        "attack",
        "norm",
        "steps",
        "targeted",
        "loss",
        "clip",
        "random_start",
        "vectorize",
    )
)
def _robust_hits(
    key,
    apply_fn,
    params,
    source_fn,
    source_params,
    x,
    y,
    eps,
    means,
    target,
    valid,
    attack,
    norm,
    steps,
    targeted,
    loss,
    clip,
    random_start,
    vectorize,
):
    craft = ATTACKS[attack](
        key, source_fn, source_params, x, y, means, target, norm, steps, targeted, loss, clip, random_start
    )

    def one(e):
        pred = jnp.argmax(apply_fn(params, craft(e)), -1)
        return jnp.sum((pred == y) & valid), jnp.sum((pred == target) & valid)

    return jax.vmap(one)(eps) if vectorize else jax.lax.map(one, eps)


def robust_accuracy(
    apply_fn: Callable,
    params,
    x,
    y,
    eps,
    attack: str = "fgsm",
    *,
    key=None,
    steps: int = 10,
    norm: str = "inf",
    targeted: bool = False,
    target=None,
    loss="softmax",
    clip=None,
    random_start: bool = True,
    means=None,
    source=None,
    batch_size: int | None = None,
    return_success: bool = False,
    vectorize: bool = True,
):
    """Accuracy under ``attack`` at every budget in ``eps`` -- one jitted call ``vmap``-ped over the budgets.

    ``attack``: ``"fgsm"``, ``"bim"`` (``steps`` steps of ``eps/steps``),
    ``"pgd"`` (random start, ``2.5 eps / steps``, best iterate) or
    ``"average"`` (:func:`average_sample_attack`; needs ``means`` and
    ``target``). ``eps = 0`` gives the clean accuracy. ``source=(apply_fn,
    params)`` crafts the attack on another model and transfers it (the
    substitute-model black-box attack); by default the attacked model crafts
    it (white box). ``targeted`` (or ``attack="average"``) reads ``target`` as
    the target class(es); ``return_success=True`` then also returns the share
    of examples classified as the target. For FGSM the input gradient does not
    depend on ``eps`` and is computed once for all budgets. ``batch_size``
    splits the examples into chunks (the last one padded and masked, so one compile).
    ``vectorize=False`` runs the budgets one after another inside the same
    compiled call (``lax.map``) -- on a CPU, where an iterative attack is
    compute-bound, that can beat ``vmap``'s eps-times larger batches.
    Returns a float64 numpy array, one accuracy per ``eps``.
    """
    if attack not in ATTACKS:
        raise ValueError(f"`attack` must be one of {tuple(ATTACKS)}, got {attack!r}.")
    x, y = _c.batch_and_labels(x, y)
    e = nonneg_eps(eps)
    if e.ndim != 1 or e.size == 0:
        raise ValueError(f"`eps` must be a non-empty list of budgets, got {eps}.")
    n = norm_name(norm)
    if attack in ("bim", "pgd") and int(steps) < 1:
        raise ValueError(f"`steps` must be >= 1, got {steps}.")
    if attack == "pgd" and random_start and key is None:
        raise ValueError("`key` is required for attack='pgd' with random_start=True.")
    if (targeted or attack == "average") and target is None:
        raise ValueError("`target` (one class or one per example) is required for targeted and average attacks.")
    if attack == "average":
        if means is None:
            raise ValueError("`means` (robust.class_means of the training data) is required for attack='average'.")
        means = jnp.asarray(means, x.dtype)
        if means.shape[1:] != x.shape[1:]:
            raise ValueError(f"`means` must have shape (num_classes,) + {x.shape[1:]}, got {means.shape}.")
    else:
        means = jnp.zeros((1,) + x.shape[1:], x.dtype)
    tgt = jnp.broadcast_to(jnp.asarray(-1 if target is None else target, jnp.int32), y.shape)
    src_fn, src_params = (apply_fn, params) if source is None else source
    key = jax.random.key(0) if key is None else key
    bs = x.shape[0] if batch_size is None else int(batch_size)
    hits = succ = jnp.zeros(e.size, jnp.int32)  # counts summed on the device: one transfer at the end
    pad = (-x.shape[0]) % bs  # the last batch is padded (rows masked out of the counts): one compile per call
    if pad:
        x, y, tgt = (jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]) for a in (x, y, tgt))
    valid = jnp.arange(x.shape[0]) < x.shape[0] - pad
    for i in range(0, x.shape[0], bs):
        h, s = _robust_hits(
            jax.random.fold_in(key, i),
            apply_fn,
            params,
            src_fn,
            src_params,
            x[i : i + bs],
            y[i : i + bs],
            jnp.asarray(e, x.dtype),
            means,
            tgt[i : i + bs],
            valid[i : i + bs],
            attack,
            n,
            int(steps),
            bool(targeted),
            _loss_fn(loss),
            clip_range(clip),
            bool(random_start),
            bool(vectorize),
        )
        hits, succ = hits + h, succ + s
    hits, succ = (np.asarray(v, np.float64) for v in jax.device_get((hits, succ)))
    acc = hits / (x.shape[0] - pad)
    if return_success:
        return acc, succ / (x.shape[0] - pad)
    return acc
