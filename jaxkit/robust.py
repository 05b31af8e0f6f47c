"""Robustness: input Jacobians and their penalty, universal adversarial perturbations, input noise models.

Shared by the regularisation and the robustness/explanation work: attacks and
their projections live here once.

**Jacobian regularisation** (Co, Martinez Rego & Lupu, ICANN 2021; Hoffman et
al. 2019): ``L = CE + (lambda/2) (1/B) sum_i ||J(x_i)||_F^2`` with ``J`` the
Jacobian of the logits w.r.t. the input. :func:`jacobian_frobenius_penalty`
returns ``(1/B) sum_i ||J(x_i)||_F^2``, exactly (one reverse pass per class) or
by random projections, ``||J||_F^2 = C * E_v ||v^T J||^2`` with ``v`` uniform on
the unit sphere of the ``C`` logits. :func:`jacobian_cosine_similarity` gives
``<J_i, J_j> / (||J_i||_F ||J_j||_F)`` (the paper's alignment statistic).
The per-sample Jacobians assume the model treats samples independently (no
batch statistics: evaluate BatchNorm with running averages).

**Universal adversarial perturbation** (UAP): one ``delta`` for a whole data
set, ``||delta||_p <= eps``, found by stochastic projected ascent on the mean
loss of ``x + delta`` over random batches (:func:`universal_perturbation`,
one jitted ``fori_loop``); metrics :func:`universal_evasion_rate` (UER) and
:func:`targeted_success_rate` (TSR).

**Noise models** for robustness tests (LocalNorm paper):
:func:`multiplicative_gaussian_noise` ``x (1 + xi)``, ``xi ~ N(0, sigma^2)``,
and :func:`multiplicative_bernoulli_noise` ``x * b``, ``b ~ Bernoulli(1 - rate)``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkit import _checks as _c

__all__ = ["NORMS", "project", "input_jacobians", "jacobian_frobenius_penalty", "jacobian_cosine_similarity",
           "universal_perturbation", "universal_evasion_rate", "targeted_success_rate",
           "multiplicative_gaussian_noise", "multiplicative_bernoulli_noise",
           "softrmax_distances", "softrmax_log_probs", "softrmax", "softrmax_cross_entropy",
           "LOSSES", "ATTACKS", "margin_loss", "project_batch", "fgsm", "pgd", "bim", "class_means", "average_sample_attack",
           "prediction_margin", "magnitude_margin_ratio", "robust_accuracy"]

NORMS = ("inf", "2")


def _norm(norm) -> str:
    n = str(norm).lower().replace("linf", "inf").replace("l2", "2")
    if n not in NORMS:
        raise ValueError(f"`norm` must be one of {NORMS} (l-infinity or l2), got {norm!r}.")
    return n


def _eps(eps) -> float:
    e = float(eps)
    if not (np.isfinite(e) and e > 0):
        raise ValueError(f"`eps` must be a finite number > 0, got {eps}.")
    return e


def project(delta, eps: float, norm: str = "inf"):
    """Project one perturbation ``delta`` (any shape, taken as a whole) onto the ``eps``-ball of ``norm``:
    clip for ``"inf"``, rescale to norm ``eps`` when longer for ``"2"``."""
    n = _norm(norm)
    delta = jnp.asarray(_c.array(delta, "delta", kind="f"))
    if n == "inf":
        return jnp.clip(delta, -eps, eps)
    nrm = jnp.sqrt(jnp.sum(delta * delta))
    return delta * jnp.minimum(1.0, eps / jnp.maximum(nrm, 1e-12))


def _logits_fn(apply_fn, params):
    return lambda x: apply_fn(params, x)


def _check_x(x, name="x"):
    """A non-empty floating batch ``[N, ...]``, finite when concrete."""
    x = _c.array(x, name, min_ndim=1, kind="f", nonempty=True)
    _c.finite(x, name)
    return jnp.asarray(x)


def _nan_rows(x, out):
    """``out`` ``[N, ...]`` with NaN rows where the input row ``x[i]`` holds NaN (inside a trace: a ReLU's
    derivative at NaN is 0, so a gradient can come out finite from a NaN input)."""
    bad = jnp.isnan(x.reshape(x.shape[0], -1)).any(-1)
    return jnp.where(bad.reshape((-1,) + (1,) * (out.ndim - 1)), jnp.nan, out)


def input_jacobians(apply_fn: Callable, params, x):
    """Exact per-sample Jacobians of the logits w.r.t. the inputs: ``(B, C) + x.shape[1:]``.

    One reverse pass per logit over the batch (``jax.jacrev`` of the batch-summed logits).
    """
    x = _check_x(x)
    _c.fits(apply_fn, params, x)
    f = _logits_fn(apply_fn, params)
    jac = jax.jacrev(lambda xx: jnp.sum(f(xx), axis=0))(x)  # (C, B, ...)
    return _nan_rows(x, jnp.moveaxis(jac, 0, 1))


def jacobian_frobenius_penalty(apply_fn: Callable, params, x, key=None, n_proj: int = 1, exact: bool = False):
    """``(1/B) sum_i ||J(x_i)||_F^2`` -- multiply by ``lambda / 2`` for the paper's loss (``lambda = 0.05``).

    ``exact=True``: from :func:`input_jacobians` (``C`` reverse passes; fine for
    few classes). Otherwise ``n_proj`` random projections (Hoffman et al.):
    ``C * mean_v ||v^T J||^2``, ``v`` uniform on the unit sphere, one reverse pass
    each; unbiased, and exact for ``C = 1``. Differentiable w.r.t. ``params``.
    """
    x = _check_x(x)
    _c.fits(apply_fn, params, x)
    if exact:
        jac = input_jacobians(apply_fn, params, x)
        return jnp.sum(jac.reshape(x.shape[0], -1) ** 2) / x.shape[0]
    if key is None:
        raise ValueError("`key` is required for the projection estimate (or pass exact=True).")
    if int(n_proj) < 1:
        raise ValueError(f"`n_proj` must be >= 1, got {n_proj}.")
    f = _logits_fn(apply_fn, params)
    z, vjp = jax.vjp(f, x)
    c = z.shape[-1]

    def one(k):
        v = jax.random.normal(k, z.shape, z.dtype)
        v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
        (g,) = vjp(v)
        return jnp.sum(g.reshape(x.shape[0], -1) ** 2) / x.shape[0]

    val = c * jnp.mean(jax.vmap(one)(jax.random.split(key, int(n_proj))))
    return jnp.where(jnp.isnan(x).any(), jnp.nan, val)


def jacobian_cosine_similarity(apply_fn: Callable, params, x):
    """``(B, B)`` matrix of ``<J_i, J_j> / (||J_i||_F ||J_j||_F)`` over the flattened per-sample Jacobians."""
    jac = input_jacobians(apply_fn, params, x)
    flat = jac.reshape(jac.shape[0], -1)
    unit = flat / jnp.maximum(jnp.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def _check_data(x, y):
    x = _check_x(x)
    y = jnp.asarray(_c.array(y, "y", ndim=1, kind="i"))
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"`x` has {x.shape[0]} inputs (shape {x.shape}) but `y` has {y.shape[0]} labels; expected "
                         "one label per input.")
    return x, y


def _check_delta(delta, x):
    d = _c.array(delta, "delta", kind="f")
    if jnp.shape(d) != x.shape[1:]:
        raise ValueError(f"`delta` must have the shape of one input {x.shape[1:]}, got {jnp.shape(d)}.")
    _c.finite(d, "delta")
    return jnp.asarray(d)


def universal_perturbation(key, apply_fn: Callable, params, data, eps: float, norm: str = "inf", target=None, *,
                           steps: int = 100, batch_size: int = 200, step_size: float | None = None,
                           clip: tuple[float, float] | None = None):
    """One perturbation ``delta`` (shape of one input) that fools the model on the whole data set.

    ``data = (x, y)``. Each of ``steps`` iterations draws ``batch_size`` samples
    and takes a projected ascent step on the mean cross-entropy of the true
    labels at ``x + delta`` (untargeted) or a descent step on the cross-entropy
    of ``target`` (targeted): ``delta <- P(delta +- step_size * s)`` with
    ``s = sign(g)`` for ``inf`` and ``g / ||g||`` for ``2`` (the usual
    projected-gradient form of the paper's SGD; ``step_size`` default
    ``2.5 eps / steps``, our choice). ``clip=(lo, hi)`` keeps ``x + delta`` in
    a valid input range during the search. Starts at 0; jitted ``fori_loop``.
    """
    eps = _eps(eps)
    n = _norm(norm)
    x, y = _check_data(*data)
    if int(steps) < 1 or int(batch_size) < 1:
        raise ValueError(f"`steps` and `batch_size` must be >= 1, got {steps} and {batch_size}.")
    lr = 2.5 * eps / int(steps) if step_size is None else float(step_size)
    targeted = target is not None
    tgt = jnp.asarray(0 if target is None else target, jnp.int32)
    return _uap(key, apply_fn, params, x, y, tgt, eps, n, targeted, int(steps), min(int(batch_size), x.shape[0]),
                lr, clip)


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


def _predict(apply_fn, params, x, delta, clip):
    xa = x + delta
    if clip is not None:
        xa = jnp.clip(xa, clip[0], clip[1])
    return jnp.argmax(apply_fn(params, xa), -1)


def universal_evasion_rate(apply_fn: Callable, params, x, y, delta, clip=None):
    """UER: the share of ``x + delta`` the model misclassifies (all samples, as in Co et al.)."""
    x, y = _check_data(x, y)
    return jnp.mean(_predict(apply_fn, params, x, _check_delta(delta, x), clip) != y)


def targeted_success_rate(apply_fn: Callable, params, x, y, delta, target: int, clip=None):
    """TSR: the share of samples *not* of class ``target`` that ``x + delta`` sends to ``target``."""
    x, y = _check_data(x, y)
    hit = _predict(apply_fn, params, x, _check_delta(delta, x), clip) == target
    other = y != target
    return jnp.sum(hit & other) / jnp.maximum(jnp.sum(other), 1)


def multiplicative_gaussian_noise(key, x, sigma: float):
    """``x (1 + xi)``, ``xi ~ N(0, sigma^2)`` element-wise."""
    if not float(sigma) >= 0:
        raise ValueError(f"`sigma` must be >= 0, got {sigma}.")
    x = jnp.asarray(_c.array(x, "x", kind="f"))
    return x * (1.0 + sigma * jax.random.normal(key, x.shape, x.dtype))


def multiplicative_bernoulli_noise(key, x, rate: float):
    """``x * b``, ``b ~ Bernoulli(1 - rate)`` element-wise (each input value dropped with probability ``rate``)."""
    if not 0 <= float(rate) <= 1:
        raise ValueError(f"`rate` must be in [0, 1], got {rate}.")
    x = jnp.asarray(_c.array(x, "x", kind="f"))
    return x * jax.random.bernoulli(key, 1.0 - rate, x.shape).astype(x.dtype)


# --------------------------------------------------------------------------------------------------------------------
# softRmax (Cao, Lengyel et al., CVPR 2022 / TU Delft thesis ch. 5): a conservative, distance-based output head.
# --------------------------------------------------------------------------------------------------------------------

def _check_logits(z, name="logits"):
    z = jnp.asarray(_c.array(z, name, min_ndim=1, kind="f"))
    if z.size == 0 and z.shape[-1:] != (0,):
        raise ValueError(f"`{name}` is empty (shape {z.shape}).")
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"`{name}` must have a last axis of >= 2 classes, got shape {z.shape}.")
    if not jnp.issubdtype(z.dtype, jnp.floating):
        raise ValueError(f"`{name}` must be floating point, got {z.dtype}.")
    _c.finite(z, name)
    return z


def _check_labels_for(logits, labels, name="labels"):
    """Integer labels, one per row of ``logits`` (``logits.shape[:-1]``)."""
    if logits.size == 0:
        raise ValueError(f"`logits` is empty (shape {logits.shape}); expected at least one row.")
    lab = _c.array(labels, name, kind="i")
    if jnp.shape(lab) != logits.shape[:-1]:
        raise ValueError(f"`{name}` must have shape {logits.shape[:-1]} (one per row of `logits`), got "
                         f"{jnp.shape(lab)}.")
    return jnp.asarray(lab)


def softrmax_distances(z):
    """``d_k = ||z - e_k||^2`` for every class ``k`` (``e_k`` one-hot), shape of ``z``.

    ``||z||^2 - 2 z_k + 1`` in O(k), except for ``k = argmax z``, recomputed as
    ``sum_{i != k} z_i^2 + (z_k - 1)^2``: the identity cancels catastrophically
    in float32 near ``z = e_k`` (exactly where training drives ``z``), and only
    the largest component can give a small ``d_k``, so the cost stays O(k).
    """
    z = _check_logits(z)
    sq = z * z
    total = jnp.sum(sq, axis=-1, keepdims=True)
    d = total - 2.0 * z + 1.0
    top = jax.nn.one_hot(jnp.argmax(z, axis=-1), z.shape[-1], dtype=bool)
    others = jnp.sum(jnp.where(top, 0.0, sq), axis=-1, keepdims=True)
    direct = others + (z - 1.0) ** 2
    return jnp.where(top, direct, d)


def softrmax_log_probs(z, floor: float = 1e-12):
    """``log p_i``, ``p_i(z) = ||z - e_i||^-2 / sum_k ||z - e_k||^-2`` (softRmax).

    Log domain: ``log p = -log d - logsumexp(-log d)`` with ``d`` from
    :func:`softrmax_distances` floored at ``floor`` (so ``z = e_k`` exactly gives
    a finite, near-one-hot posterior instead of ``inf / inf``). Far from the
    centres every ``d_k ~ ||z||^2`` and ``p -> 1/k`` (conservative), where
    softmax goes one-hot.
    """
    if not float(floor) > 0:
        raise ValueError(f"`floor` must be > 0, got {floor}.")
    neg = -jnp.log(jnp.maximum(softrmax_distances(z), floor))
    return neg - jax.nn.logsumexp(neg, axis=-1, keepdims=True)


def softrmax(z, floor: float = 1e-12):
    """softRmax posteriors (rows sum to one); see :func:`softrmax_log_probs`."""
    return jnp.exp(softrmax_log_probs(z, floor))


def softrmax_cross_entropy(logits, labels, floor: float = 1e-12):
    """``-log p_y`` under softRmax, per example: a drop-in for
    ``optax.softmax_cross_entropy_with_integer_labels(logits, labels)``."""
    logits = _check_logits(logits)
    labels = jnp.asarray(labels)
    _check_labels_for(logits, labels)
    lp = softrmax_log_probs(logits, floor)
    return -jnp.take_along_axis(lp, labels[..., None], axis=-1)[..., 0]


# --------------------------------------------------------------------------------------------------------------------
# Adversarial attacks: FGSM, BIM / PGD (l-inf, l2, targeted, random start), average-sample, transfer.
# --------------------------------------------------------------------------------------------------------------------

def margin_loss(logits, labels):
    """``max_{j != y} z_j - z_y`` per example (Carlini-Wagner's margin on the raw outputs; an attacker maximises
    it). Independent of the head's loss: on a softRmax model (prediction ``argmax z``) it attacks the decision
    directly and sidesteps gradient masking by the softRmax NLL."""
    logits = _check_logits(logits)
    return -prediction_margin(logits, _check_labels_for(logits, labels))


LOSSES = {"softmax": optax.softmax_cross_entropy_with_integer_labels, "softrmax": softrmax_cross_entropy,
          "margin": margin_loss}
ATTACKS = ("fgsm", "bim", "pgd", "average")
UNROLL = 10


def _loss_fn(loss):
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"`loss` must be one of {tuple(LOSSES)} or a callable (logits, labels) -> per-example loss, "
                         f"got {loss!r}.")
    return LOSSES[loss]


def _eps_nonneg(eps, name="eps"):
    e = np.asarray(eps, dtype=np.float64)
    if not (np.all(np.isfinite(e)) and np.all(e >= 0)):
        raise ValueError(f"`{name}` must be finite and >= 0, got {eps}.")
    return e


def _clip_arg(clip):
    if clip is None:
        return None
    lo, hi = (float(c) for c in clip)
    if not lo < hi:
        raise ValueError(f"`clip` must be (low, high) with low < high, got {clip}.")
    return (lo, hi)


def _batch_norms(g, norm):
    axes = tuple(range(1, g.ndim))
    if norm == "inf":
        return jnp.max(jnp.abs(g), axis=axes, keepdims=True)
    return jnp.sqrt(jnp.sum(g * g, axis=axes, keepdims=True))


def _direction(g, norm):
    """The steepest-ascent unit step for ``norm``: ``sign(g)`` (l-inf) or ``g / ||g||_2`` per example."""
    if norm == "inf":
        return jnp.sign(g)
    return g / jnp.maximum(_batch_norms(g, "2"), 1e-12)


def project_batch(delta, eps, norm: str = "inf"):
    """Project each example's perturbation ``delta[i]`` onto its own ``eps``-ball (``eps`` scalar or per example)."""
    delta = jnp.asarray(_c.array(delta, "delta", min_ndim=1, kind="f", nonempty=True))
    return _proj(delta, jnp.reshape(jnp.asarray(eps, delta.dtype), (-1,) + (1,) * (delta.ndim - 1)), _norm(norm))


def _proj(delta, e, norm):  # e broadcastable to delta, one value per example
    if norm == "inf":
        return jnp.clip(delta, -e, e)
    return delta * jnp.minimum(1.0, e / jnp.maximum(_batch_norms(delta, "2"), 1e-12))


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
    return _clip(x + s * e * _direction(g, norm), clip)


def _check_attack(x, y, eps):
    x, y = _check_data(x, y)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"`x` must be floating point, got {x.dtype}.")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"`y` (labels, or target labels when targeted) must be integers, got {y.dtype}.")
    e = _eps_nonneg(eps)
    if e.ndim > 1 or (e.ndim == 1 and e.shape[0] != x.shape[0]):
        raise ValueError(f"`eps` must be a scalar or one value per example ({x.shape[0]}), got shape {e.shape}.")
    return x, y, jnp.asarray(e, x.dtype)


def fgsm(apply_fn: Callable, params, x, y, eps, *, norm: str = "inf", targeted: bool = False, loss="softmax",
         clip=None):
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
    return _fgsm_jit(apply_fn, params, x, y, e, _norm(norm), bool(targeted), _loss_fn(loss), _clip_arg(clip))


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
            d0 = v / jnp.maximum(_batch_norms(v, "2"), 1e-12) * r * e
        x0 = _clip(x + d0, clip)
    else:
        x0 = x

    def objective(ls):  # larger is better for the attacker
        return sign * ls

    g0, l0 = _input_grad(apply_fn, params, x0, y, loss)

    def body(_, carry):
        xa, g, best_x, best_v = carry
        xn = xa + sign * a * _direction(g, norm)
        xn = _clip(x + _proj(xn - x, e, norm), clip)
        gn, ln = _input_grad(apply_fn, params, xn, y, loss)
        v = objective(ln)
        better = (v > best_v).reshape((-1,) + (1,) * (x.ndim - 1))
        return xn, gn, jnp.where(better, xn, best_x), jnp.maximum(v, best_v)

    xa, _, best_x, _ = jax.lax.fori_loop(0, steps, body, (x0, g0, x0, objective(l0)), unroll=UNROLL)
    return best_x if keep_best else xa


_pgd_jit = jax.jit(_pgd, static_argnames=("apply_fn", "norm", "steps", "random_start", "targeted", "keep_best",
                                          "loss", "clip"))


def pgd(key, apply_fn: Callable, params, x, y, eps, *, norm: str = "inf", steps: int = 10, step_size=None,
        random_start: bool = True, targeted: bool = False, keep_best: bool = True, loss="softmax", clip=None):
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
    alpha = 2.5 * e / int(steps) if step_size is None else jnp.asarray(_eps_nonneg(step_size, "step_size"), x.dtype)
    if random_start and key is None:
        raise ValueError("`key` is required with random_start=True (or pass random_start=False).")
    key = jax.random.key(0) if key is None else key
    return _pgd_jit(key, apply_fn, params, x, y, e, alpha, _norm(norm), int(steps), bool(random_start),
                    bool(targeted), bool(keep_best), _loss_fn(loss), _clip_arg(clip))


def bim(apply_fn: Callable, params, x, y, eps, *, steps: int = 10, norm: str = "inf", targeted: bool = False,
        keep_best: bool = False, loss="softmax", clip=None):
    """Basic iterative method (Kurakin et al. 2017): ``steps`` signed steps of ``alpha = eps / steps`` from ``x``,
    the gradient taken at the current iterate, projected on the ``eps``-ball (the thesis prints the gradient at
    ``x``; this is the standard BIM). :func:`pgd` without random start; returns the last iterate by default."""
    x, y, e = _check_attack(x, y, eps)
    if int(steps) < 1:
        raise ValueError(f"`steps` must be >= 1, got {steps}.")
    return _pgd_jit(None, apply_fn, params, x, y, e, e / int(steps), _norm(norm), int(steps), False, bool(targeted),
                    bool(keep_best), _loss_fn(loss), _clip_arg(clip))


def class_means(x, y, num_classes: int | None = None):
    """``Avg_c``: the mean training input of each class, shape ``(num_classes,) + x.shape[1:]``."""
    x, y = _check_data(x, y)
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
    return _average(x, y, means, t, e, _clip_arg(clip))


def prediction_margin(logits, y):
    """``M_z = z_y - max_{i != y} z_i`` per example (negative when misclassified)."""
    logits = _check_logits(logits)
    y = _check_labels_for(logits, y, "y")
    zy = jnp.take_along_axis(logits, y[..., None], -1)[..., 0]
    other = jnp.where(jax.nn.one_hot(y, logits.shape[-1], dtype=bool), -jnp.inf, logits)
    return zy - jnp.max(other, axis=-1)


def magnitude_margin_ratio(apply_fn: Callable, params, x, y, ord: str = "l1"):
    """``R = m / M_z`` per example: the first-order FGSM view of robustness (thesis ch. 5).

    ``m = ||grad_x z_y - grad_x z_j||_1 / n`` (``ord="l1"``, the thesis's
    derivation; ``n`` the input size) or ``||...||_2`` (``ord="l2"``, the
    author's code), ``j`` the runner-up class, ``M_z`` the
    :func:`prediction_margin`. An l-inf step of ``eps`` lowers the margin by
    about ``eps n m`` (l1 form), so a small ``R`` means a robust example.
    """
    if ord not in ("l1", "l2"):
        raise ValueError(f"`ord` must be 'l1' or 'l2', got {ord!r}.")
    x, y = _check_data(x, y)
    return _mmr(apply_fn, params, x, y, ord)


@jax.jit(static_argnames=("apply_fn", "ord"))
def _mmr(apply_fn, params, x, y, ord):
    z = apply_fn(params, x)
    other = jnp.where(jax.nn.one_hot(y, z.shape[-1], dtype=bool), -jnp.inf, z)
    j = jnp.argmax(other, axis=-1)

    def gap(xx):
        zz = apply_fn(params, xx)
        return jnp.sum(jnp.take_along_axis(zz, y[:, None], 1) - jnp.take_along_axis(zz, j[:, None], 1))

    g = jax.grad(gap)(x).reshape(x.shape[0], -1)
    m = jnp.sum(jnp.abs(g), 1) / g.shape[1] if ord == "l1" else jnp.sqrt(jnp.sum(g * g, 1))
    return m / prediction_margin(z, y)


def _attack_fn(key, source_fn, source_params, x, y, means, target, attack, norm, steps, targeted, loss, clip,
               random_start):
    """``craft(eps) -> x_adv`` for one (traced) budget; work that does not depend on ``eps`` is done once here."""
    labels = target if targeted else y
    if attack == "fgsm":  # the input gradient does not depend on eps: computed once, outside the eps batch
        g, _ = _input_grad(source_fn, source_params, x, labels, loss)
        d = (-1.0 if targeted else 1.0) * _direction(g, norm)
        return lambda e: _clip(x + e * d, clip)
    if attack in ("bim", "pgd"):
        rs = random_start if attack == "pgd" else False

        def run(e):
            alpha = (e / steps) if attack == "bim" else 2.5 * e / steps
            return _pgd(key, source_fn, source_params, x, labels, e, alpha, norm, steps, rs, targeted,
                        attack == "pgd", loss, clip)

        return run
    return lambda e: _average(x, y, means, target, e, clip)


@jax.jit(static_argnames=("apply_fn", "source_fn", "attack", "norm", "steps", "targeted", "loss", "clip",
                          "random_start", "vectorize"))
def _robust_hits(key, apply_fn, params, source_fn, source_params, x, y, eps, means, target, attack, norm, steps,
                 targeted, loss, clip, random_start, vectorize):
    craft = _attack_fn(key, source_fn, source_params, x, y, means, target, attack, norm, steps, targeted, loss, clip,
                       random_start)

    def one(e):
        pred = jnp.argmax(apply_fn(params, craft(e)), -1)
        return jnp.sum(pred == y), jnp.sum(pred == target)

    return jax.vmap(one)(eps) if vectorize else jax.lax.map(one, eps)


def robust_accuracy(apply_fn: Callable, params, x, y, eps, attack: str = "fgsm", *, key=None, steps: int = 10,
                    norm: str = "inf", targeted: bool = False, target=None, loss="softmax", clip=None,
                    random_start: bool = True, means=None, source=None, batch_size: int | None = None,
                    return_success: bool = False, vectorize: bool = True):
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
    splits the examples into chunks (one compile per chunk shape).
    ``vectorize=False`` runs the budgets one after another inside the same
    compiled call (``lax.map``) -- on a CPU, where an iterative attack is
    compute-bound, that can beat ``vmap``'s eps-times larger batches.
    Returns a float64 numpy array, one accuracy per ``eps``.
    """
    if attack not in ATTACKS:
        raise ValueError(f"`attack` must be one of {ATTACKS}, got {attack!r}.")
    x, y = _check_data(x, y)
    e = _eps_nonneg(eps)
    if e.ndim != 1 or e.size == 0:
        raise ValueError(f"`eps` must be a non-empty list of budgets, got {eps}.")
    n = _norm(norm)
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
    hits, succ = np.zeros(e.size), np.zeros(e.size)
    for i in range(0, x.shape[0], bs):
        h, s = _robust_hits(jax.random.fold_in(key, i), apply_fn, params, src_fn, src_params, x[i:i + bs],
                            y[i:i + bs], jnp.asarray(e, x.dtype), means, tgt[i:i + bs], attack, n, int(steps),
                            bool(targeted), _loss_fn(loss), _clip_arg(clip), bool(random_start), bool(vectorize))
        hits += np.asarray(h)
        succ += np.asarray(s)
    acc = hits / x.shape[0]
    if return_success:
        return acc, succ / x.shape[0]
    return acc
