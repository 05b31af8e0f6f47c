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
    """The margin loss ``max_{j != y} z_j - z_y`` per example (an attacker maximises it).

    Carlini-Wagner's margin on the raw outputs. Independent of the head's loss: on a softRmax model (prediction ``argmax
    z``) it attacks the decision
    directly and sidesteps gradient masking by the softRmax NLL.

    Args:
      logits: ``[N, C]``.
      labels: ``[N]`` integer labels.

    Returns:
      ``[N]`` margins (negative while correctly classified).

    References:
      Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017, Sec. V.A
      (objective f_6 on the logits, without confidence).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> print(np.asarray(jaxkit.robust.margin_loss(x @ weights, y), float).round(3))
      [-2.  -2.  -0.4]
    """
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
    """Fast gradient sign method: ``x' = x + eps sign(grad_x J(x, y))``.

    ``x' = x + eps sign(grad_x J(x, y))``; ``targeted=True`` reads ``y`` as the
    target labels and steps ``x' = x - eps sign(grad_x J(x, y_t))``. ``norm="2"``
    gives the l2 fast gradient method (``g / ||g||_2`` per example). ``loss`` is
    ``"softmax"``, ``"softrmax"`` or a callable ``(logits, labels) -> per-example
    loss``. ``clip=(lo, hi)`` keeps the result in a valid input range (inputs
    are in the model's own scale). ``eps`` is a scalar or one value per example.
    ``"margin"`` (:func:`margin_loss`) attacks the decision whatever the head.

    Args:
      apply_fn: ``(params, x) -> logits [N, C]``.
      params: the model's params.
      x: ``[N, ...]`` inputs.
      y: ``[N]`` integer labels (the target labels when ``targeted``).
      eps: the budget, a scalar or one per example.
      norm: ``"inf"`` or ``"2"``.
      targeted: step towards ``y`` (read as targets) instead of away from it.
      loss: ``"softmax"``, ``"softrmax"``, ``"margin"`` or a callable ``(logits, labels) -> [N]``.
      clip: ``(lo, hi)`` valid input range, or ``None``.

    Returns:
      ``[N, ...]`` adversarial inputs.

    Raises:
      ValueError: inputs and labels of different lengths, labels out of range, a negative or non-finite ``eps``,
        an unknown ``norm`` / ``loss``, an inverted ``clip`` (checks that need values run when concrete).

    References:
      Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015, Sec. 4 (FGSM);
      Miyato et al., ICLR 2016 (the l2 fast gradient method).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> print(np.asarray(jaxkit.robust.fgsm(apply_fn, weights, x, y, 0.1), float).round(3))
      [[0.9 0.1]
       [0.1 0.9]
       [0.5 0.5]]
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
    """Projected gradient descent attack: ``steps`` projected steps from a random start in the ``eps``-ball.

    ``x <- clip(x_0 + P_eps(x + alpha d(grad) - x_0))`` with ``d = sign`` (l-inf) or ``g / ||g||_2`` (l2), the
    gradient taken at the current iterate.
    ``x <- clip(x + P_eps(x + alpha d(grad) - x_0))`` with ``d = sign`` (l-inf) or
    ``g / ||g||_2`` (l2), the gradient taken at the current iterate.

    ``random_start`` draws the start uniformly in the ball (needs ``key``; ours
    and Madry's extension of BIM); ``step_size`` defaults to ``2.5 eps / steps``.
    ``keep_best`` returns, per example, the iterate with the highest loss
    (lowest target loss when ``targeted``) among the start and all steps -- so
    the attack never does worse than its start; ``False`` returns the last
    iterate. One jitted ``lax.fori_loop``; other arguments as in :func:`fgsm`.

    Args:
      key: PRNG key of the random start.
      apply_fn: ``(params, x) -> logits [N, C]``.
      params: the model's params.
      x: ``[N, ...]`` inputs.
      y: ``[N]`` integer labels (the target labels when ``targeted``).
      eps: the budget, a scalar or one per example.
      norm: ``"inf"`` or ``"2"``.
      steps: iterations.
      step_size: ``alpha`` (default ``2.5 eps / steps``).
      random_start: start uniformly in the ball (else at ``x``).
      targeted: step towards ``y`` (read as targets).
      keep_best: return each example's best iterate (else the last).
      loss: ``"softmax"``, ``"softrmax"``, ``"margin"`` or a callable ``(logits, labels) -> [N]``.
      clip: ``(lo, hi)`` valid input range, or ``None``.

    Returns:
      ``[N, ...]`` adversarial inputs.

    Raises:
      ValueError: inputs and labels of different lengths, labels out of range, a negative or non-finite ``eps``,
        an unknown ``norm`` / ``loss``, an inverted ``clip`` (checks that need values run when concrete).

    References:
      Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018, Sec. 2.1.

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> adv = jaxkit.robust.pgd(jax.random.key(0), apply_fn, weights, x, y, 0.3, steps=5)
      >>> print(np.asarray(adv @ weights, float).argmax(1))  # the third example's label flips
      [0 1 1]
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
    """Basic iterative method: ``steps`` signed steps of ``eps / steps``, each projected on the ``eps``-ball.

    The gradient is taken at the current iterate (the thesis prints the gradient at ``x``; this is the standard
    BIM). :func:`pgd` without random start; returns the last iterate by default.

    Args:
      apply_fn: ``(params, x) -> logits [N, C]``.
      params: the model's params.
      x: ``[N, ...]`` inputs.
      y: ``[N]`` integer labels (the target labels when ``targeted``).
      eps: the budget, a scalar or one per example.
      steps: iterations.
      norm: ``"inf"`` or ``"2"``.
      targeted: step towards ``y`` (read as targets) instead of away from it.
      keep_best: return each example's iterate with the highest loss instead of the last.
      loss: ``"softmax"``, ``"softrmax"``, ``"margin"`` or a callable ``(logits, labels) -> [N]``.
      clip: ``(lo, hi)`` valid input range, or ``None``.

    Returns:
      ``[N, ...]`` adversarial inputs.

    Raises:
      ValueError: inputs and labels of different lengths, labels out of range, a negative or non-finite ``eps``,
        an unknown ``norm`` / ``loss``, an inverted ``clip`` (checks that need values run when concrete).

    References:
      Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world", ICLR Workshop 2017, Sec. 2.2.

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> print(np.asarray(jaxkit.robust.bim(apply_fn, weights, x, y, 0.3, steps=3), float).round(3))
      [[0.7 0.3]
       [0.3 0.7]
       [0.3 0.7]]
    """
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
    """``Avg_c``: the mean training input of each class, shape ``(num_classes,) + x.shape[1:]``.

    Args:
      x: ``[N, ...]`` training inputs.
      y: ``[N]`` integer labels.
      num_classes: ``C`` (default ``max(y) + 1``).

    Returns:
      ``[C, ...]`` means (a class with no example: zeros).

    Raises:
      ValueError: inputs and labels of different lengths, labels out of range.

    References:
      the TU Delft dissertation on sensitivities of visual learning (its ch. 5 on robustness) (the average-sample
      attack's class averages).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> print(np.asarray(jaxkit.robust.class_means(x, y), float).round(3))
      [[0.8 0.2]
       [0.  1. ]]
    """
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
    """The average-sample attack: ``x'_y = x_y + eps sign(Avg_t - Avg_y)``.

    Semi-black-box: no gradients, but the class means ``means`` (from
    :func:`class_means` on training data). ``target`` is one class or one per
    example (examples already of class ``target`` move by ``sign(0) = 0``).

    Args:
      x: ``[N, ...]`` inputs.
      y: ``[N]`` integer labels.
      means: ``[C, ...]`` class means (:func:`class_means`).
      target: the target class, or one per example.
      eps: the budget, a scalar or one per example.
      clip: ``(lo, hi)`` valid input range, or ``None``.

    Returns:
      ``[N, ...]`` adversarial inputs.

    Raises:
      ValueError: shapes that do not match, labels or targets out of range, a negative ``eps``.

    References:
      the TU Delft dissertation on sensitivities of visual learning (its ch. 5 on robustness).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> adv = jaxkit.robust.average_sample_attack(x, y, jaxkit.robust.class_means(x, y), 1, 0.1)
      >>> print(np.asarray(adv, float).round(3))
      [[0.9 0.1]
       [0.  1. ]
       [0.5 0.5]]
    """
    x, y, e = _check_attack(x, y, eps)
    means = _c.array(means, "means", kind="f", nonempty=True)
    _c.finite(means, "means")
    means = jnp.asarray(means, x.dtype)
    if means.shape[1:] != x.shape[1:]:
        raise ValueError(f"`means` must have shape (num_classes,) + {x.shape[1:]}, got {means.shape}.")
    t = jnp.broadcast_to(jnp.asarray(target, jnp.int32), y.shape)
    if _c.is_concrete(t) and (np.min(t) < 0 or np.max(t) >= means.shape[0]):
        raise ValueError(f"`target` must lie in [0, {means.shape[0]}) (a class of `means`), got {target}.")
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

    Args:
      apply_fn: ``(params, x) -> logits [N, C]``.
      params: the model's params.
      x: ``[N, ...]`` inputs.
      y: ``[N]`` integer labels (the target labels when ``targeted``).
      eps: the budgets, ``[E]`` (0: clean accuracy).
      attack: ``"fgsm"``, ``"bim"``, ``"pgd"`` or ``"average"``.
      key: PRNG key (``"pgd"``'s random start).
      steps: iterations of ``"bim"`` / ``"pgd"``.
      norm: ``"inf"`` or ``"2"``.
      targeted: attack towards ``target``.
      target: the target class(es) of a targeted or ``"average"`` attack.
      loss: as :func:`fgsm`.
      clip: ``(lo, hi)`` valid input range, or ``None``.
      random_start: ``"pgd"``'s random start.
      means: class means for ``"average"``.
      source: ``(apply_fn, params)`` of a substitute model that crafts the attack (transfer).
      batch_size: examples per chunk (``None``: all at once).
      return_success: also return the targeted success rate per budget.
      vectorize: ``vmap`` over the budgets (``False``: ``lax.map``).

    Returns:
      ``[E]`` float64 accuracies (and ``[E]`` success rates with ``return_success``).

    Raises:
      ValueError: inputs and labels of different lengths, labels out of range, a negative or non-finite ``eps``,
        an unknown ``norm`` / ``loss``, an inverted ``clip`` (checks that need values run when concrete).
      ValueError: an unknown ``attack``, ``"pgd"`` without ``key``, ``"average"`` without ``means`` / ``target``.

    References:
      the TU Delft dissertation on sensitivities of visual learning (its ch. 5 on robustness) (robust accuracy over
      budgets); Goodfellow et al. 2015; Kurakin et al. 2017; Madry et al. 2018;
      Papernot et al., "Practical Black-Box Attacks against Machine Learning", AsiaCCS 2017 (transfer).

    Examples:
      >>> weights = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # a linear model: logits = x @ weights
      >>> apply_fn = lambda w, x: x @ w
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]]), jnp.array([0, 1, 0])
      >>> jaxkit.robust.robust_accuracy(apply_fn, weights, x, y, jnp.array([0.0, 0.05, 0.2])).round(3)
      array([1.   , 1.   , 0.667])
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
