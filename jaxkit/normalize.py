"""Weight/gradient centralisation in the Flax layout, LocalNorm, and dynamic batch norm.

**Centralisation** (Fuhl & Kasneci, ICANN 2021). One statistic per *output
filter* ``j``. Flax kernels keep the output axis **last** -- Conv
``(kh, kw, in, out)``, Dense ``(in, out)`` -- so every statistic here runs
over all axes but the last; 1-D leaves (biases, norm scales) are skipped:

* WC  (:func:`center`)      ``W_j <- W_j - mean(W_j)``
* WS  (:func:`standardize`) ``W_j <- (W_j - mean(W_j)) / std(W_j)``
* WN  (:func:`unit_norm`)   ``W_j <- W_j / ||W_j||``
* GC  (:func:`centralize_gradients`) ``dW_j <- dW_j - mean(dW_j)`` (an optax transform)

``optax.centralize`` averages over all axes but the *first* (PyTorch's
``(out, in, kh, kw)`` layout): on Flax kernels it centres the wrong slices.

Two ways to apply WC/WS/WN: a **reparameterisation** (:func:`reparameterize`,
:func:`Reparameterized`) -- the model always sees the transformed weights,
gradients flow through the transform, the raw weights stay free -- and a
**projection** (:func:`project_weights`) -- an optax transform that makes every
update land on the constraint set (``new = T(params + update)``). Under plain
SGD with GC, centred weights stay centred, so "project once, then GC" equals
the WC reparameterisation's forward pass; under Adam (per-coordinate scaling) or
weight decay it does not. The paper's WC is the forward reparameterisation
(weights centred in the forward pass), which its numbers need; the projection
is the cheap alternative for SGD. Differentiating through WC already centres
the raw weights' gradient, so WC + GC equals WC unless an uncentred term (weight
decay before GC) enters the update -- or with ``straight_through=True``.

**LocalNorm** (Yin, Scholte & Bohté, ICANN 2021): :class:`LocalNorm` normalises
``K`` groups of consecutive samples with their own statistics (no running
averages) and per-group scale and shift; :func:`localnorm_predict` gives the
paper's four test modes (voting by ``vmap`` over the group index);
:func:`bn_to_localnorm` converts a trained BatchNorm model's variables.
**Dynamic BN** (:func:`dynamic_bn_apply`): evaluate any Flax model with its
BatchNorm layers using the current batch's statistics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxkit import _checks as _c
from jaxkit import tree as _tree

__all__ = [
    "TEST_MODES",
    "WEIGHT_TRANSFORMS",
    "LocalNorm",
    "Reparameterized",
    "bn_to_localnorm",
    "center",
    "centralize_gradients",
    "dynamic_bn_apply",
    "localnorm_predict",
    "majority_vote",
    "project_weights",
    "reparameterize",
    "standardize",
    "transform_weights",
    "unit_norm",
]

PyTree = Any


def _filter_axes(x):
    return tuple(range(x.ndim - 1))


def _kernel(w):
    """A real, non-empty kernel ``[..., filters]`` (rank >= 1) as a floating array."""
    w = _c.array(w, "w", min_ndim=1, kind="r")
    if int(np.prod(jnp.shape(w))) == 0:
        raise ValueError(f"`w` is empty (shape {tuple(jnp.shape(w))}).")
    w = jnp.asarray(w)
    return w if jnp.issubdtype(w.dtype, jnp.floating) else w.astype(jnp.float32)


def center(w):
    """WC: subtract each output filter's mean, ``W_j <- W_j - mean(W_j)`` (all axes but the last).

    Args:
      w: a kernel in the Flax layout, output axis last (Conv ``(kh, kw, in, out)``, Dense ``(in, out)``).

    Returns:
      The centred kernel.

    Raises:
      TypeError: ``w`` not real.
      ValueError: ``w`` empty (a 1-D ``w`` is a row of one-entry filters).

    References:
      Fuhl & Kasneci, "Weight and Gradient Centralization in Deep Neural Networks", ICANN 2021 (WC).

    Examples:
      >>> w = jnp.arange(6.0).reshape(3, 2)  # a Dense kernel (in=3, out=2): one filter per column
      >>> print(jaxkit.normalize.center(w))
      [[-2. -2.]
       [ 0.  0.]
       [ 2.  2.]]
    """
    w = _kernel(w)
    return w - jnp.mean(w, axis=_filter_axes(w), keepdims=True)


def standardize(w, eps: float = 1e-5):
    """WS: ``W_j <- (W_j - mean(W_j)) / sqrt(var(W_j) + eps)`` per output filter (all axes but the last).

    Args:
      w: a kernel in the Flax layout, output axis last.
      eps: added to the variance.

    Returns:
      The standardised kernel.

    Raises:
      TypeError: ``w`` not real.
      ValueError: ``w`` empty (a 1-D ``w`` is a row of one-entry filters).

    References:
      Fuhl & Kasneci, "Weight and Gradient Centralization in Deep Neural Networks", ICANN 2021 (WS); Qiao et al.,
      "Micro-Batch Training with Batch-Channel Normalization and Weight
      Standardization", arXiv:1903.10520, 2019.

    Examples:
      >>> w = jnp.arange(6.0).reshape(3, 2)  # a Dense kernel (in=3, out=2): one filter per column
      >>> print(np.asarray(jaxkit.normalize.standardize(w), float).round(3))
      [[-1.225 -1.225]
       [ 0.     0.   ]
       [ 1.225  1.225]]
    """
    w = _kernel(w)
    ax = _filter_axes(w)
    c = w - jnp.mean(w, axis=ax, keepdims=True)
    return c * jax.lax.rsqrt(jnp.mean(c * c, axis=ax, keepdims=True) + eps)


def unit_norm(w, eps: float = 1e-12):
    """WN: ``W_j <- W_j / ||W_j||_2`` per output filter (all axes but the last).

    Args:
      w: a kernel in the Flax layout, output axis last.
      eps: added to the norm.

    Returns:
      The normalised kernel.

    Raises:
      TypeError: ``w`` not real.
      ValueError: ``w`` empty (a 1-D ``w`` is a row of one-entry filters).

    References:
      Fuhl & Kasneci, "Weight and Gradient Centralization in Deep Neural Networks", ICANN 2021 (WN); Salimans & Kingma,
      "Weight Normalization", NeurIPS 2016 (the direction ``v / ||v||``).

    Examples:
      >>> w = jnp.arange(6.0).reshape(3, 2)  # a Dense kernel (in=3, out=2): one filter per column
      >>> print(np.asarray(jaxkit.normalize.unit_norm(w), float).round(3))
      [[0.    0.169]
       [0.447 0.507]
       [0.894 0.845]]
    """
    w = _kernel(w)
    return w * jax.lax.rsqrt(jnp.sum(w * w, axis=_filter_axes(w), keepdims=True) + eps)


WEIGHT_TRANSFORMS: dict[str, Callable] = {"center": center, "standardize": standardize, "normalize": unit_norm}


def _kind(kind):
    if kind not in WEIGHT_TRANSFORMS:
        raise ValueError(f"`kind` must be one of {sorted(WEIGHT_TRANSFORMS)}, got {kind!r}.")
    return WEIGHT_TRANSFORMS[kind]


def _selector(mask):
    """Leaves of rank >= 2 selected by ``mask`` (None: all of them)."""
    if mask is None:
        return lambda path, leaf: np.ndim(leaf) >= 2
    pred = _tree.predicate(mask)
    return lambda path, leaf: np.ndim(leaf) >= 2 and pred(path, leaf)


def _map_filters(fn, tree: PyTree, mask, name: str, *rest) -> PyTree:
    try:
        return _tree.map_selected(fn, tree, _selector(mask), *rest, name=name)
    except ValueError as e:
        what = f"mask {mask!r}" if mask is not None else "the default mask (all leaves of rank >= 2)"
        raise ValueError(f"`mask`: {what} selects no leaf of rank >= 2 (kernels) in `{name}`. {e}") from None


def transform_weights(params: PyTree, kind: str = "center", mask=None) -> PyTree:
    """Apply WC / WS / WN to the selected kernels of a params tree (other leaves unchanged).

    Leaves of rank < 2 (biases, norm scales) are never touched.

    Args:
      params: a params pytree.
      kind: ``"center"`` (WC), ``"standardize"`` (WS) or ``"normalize"`` (WN).
      mask: a :mod:`jaxkit.tree` pattern of the kernels to transform (default: every leaf of rank >= 2).

    Returns:
      A params tree of the same structure.

    Raises:
      ValueError: an unknown ``kind``, a ``mask`` that selects nothing.

    References:
      Fuhl & Kasneci, "Weight and Gradient Centralization in Deep Neural Networks", ICANN 2021.

    Examples:
      >>> params = {"Dense_0": {"kernel": jnp.arange(6.0).reshape(3, 2), "bias": jnp.ones(2)}}
      >>> out = jaxkit.normalize.transform_weights(params, "center")
      >>> print(out["Dense_0"]["kernel"].mean(0), out["Dense_0"]["bias"])
      [0. 0.] [1. 1.]
    """
    return _map_filters(_kind(kind), params, mask, "params")


def centralize_gradients(mask=None) -> optax.GradientTransformation:
    """GC as an optax transform: subtract each output filter's mean from the selected updates.

    ``dW_j <- dW_j - mean(dW_j)`` over all axes but the last (``optax.centralize`` averages over all axes but
    the first: PyTorch's layout). Put it first in an ``optax.chain`` (before momentum / Adam), as in the paper.
    Stateless (``optax.EmptyState``).

    Args:
      mask: a :mod:`jaxkit.tree` pattern of the kernels to transform (default: every leaf of rank >= 2).

    Returns:
      An ``optax.GradientTransformation``.

    Raises:
      ValueError: a ``mask`` that selects nothing (at the first update).

    References:
      Fuhl & Kasneci, "Weight and Gradient Centralization in Deep Neural Networks", ICANN 2021 (GC); Yong et al.,
      "Gradient Centralization: A New Optimization Technique for Deep Neural
      Networks", ECCV 2020, Eq. (1).

    Examples:
      >>> params = {"Dense_0": {"kernel": jnp.arange(6.0).reshape(3, 2), "bias": jnp.ones(2)}}
      >>> tx = optax.chain(jaxkit.normalize.centralize_gradients(), optax.sgd(0.1))
      >>> updates, _ = tx.update(params, tx.init(params), params)  # the params as their own gradient
      >>> print(updates["Dense_0"]["kernel"].mean(0), updates["Dense_0"]["bias"])
      [0. 0.] [-0.1 -0.1]
    """

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        del params
        return _map_filters(center, updates, mask, "updates"), state

    return optax.GradientTransformation(init, update)


def project_weights(kind: str = "center", mask=None) -> optax.GradientTransformation:
    """An optax transform whose updates land the selected kernels on WC / WS / WN's constraint set.

    ``update' = T(params + update) - params`` for the selected leaves (others unchanged); put it **last** in the
    chain. Needs ``params``.

    Args:
      kind: ``"center"`` (WC), ``"standardize"`` (WS) or ``"normalize"`` (WN).
      mask: a :mod:`jaxkit.tree` pattern of the kernels to transform (default: every leaf of rank >= 2).

    Returns:
      An ``optax.GradientTransformation``.

    Raises:
      ValueError: an unknown ``kind``; ``params`` not given to ``update``.

    References:
      Fuhl & Kasneci, "Weight and Gradient Centralization in Deep Neural Networks", ICANN 2021 (the weight transforms;
      the projection is our cheap alternative to the reparameterisation).

    Examples:
      >>> params = {"Dense_0": {"kernel": jnp.arange(6.0).reshape(3, 2), "bias": jnp.ones(2)}}
      >>> tx = jaxkit.normalize.project_weights("center")
      >>> zero = jax.tree.map(jnp.zeros_like, params)
      >>> updates, _ = tx.update(zero, tx.init(params), params)
      >>> print(optax.apply_updates(params, updates)["Dense_0"]["kernel"].mean(0))
      [0. 0.]
    """
    fn = _kind(kind)

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("project_weights needs `params` in `update(updates, state, params)`.")
        new = _map_filters(lambda u, p: fn(p + u) - p, updates, mask, "updates", params)
        return new, state

    return optax.GradientTransformation(init, update)


def _straight_through(fn):
    return lambda w: w + jax.lax.stop_gradient(fn(w) - w)


def reparameterize(apply_fn: Callable, kind: str = "center", mask=None, straight_through: bool = False) -> Callable:
    """``apply_fn`` seeing WC / WS / WN-transformed kernels: ``f(variables, *args, **kw)``.

    Works for any Flax ``apply``: the ``params`` collection (or a bare params
    tree) is transformed on every call, so gradients w.r.t. the raw params flow
    through the transform (the paper's forward-pass centralisation). For WC
    that gradient is already centred per filter, so GC on top of it changes
    nothing unless something uncentred enters the update first (weight decay
    added before ``centralize_gradients``, as in the SGD-with-weight-decay
    implementations of GC). ``straight_through=True`` uses the transformed
    weights forward but passes the gradient to the raw weights unchanged
    (``w + stop_gradient(T(w) - w)``).

    Args:
      apply_fn: a Flax ``apply`` (or any ``fn(variables, *args, **kw)``).
      kind: ``"center"`` (WC), ``"standardize"`` (WS) or ``"normalize"`` (WN).
      mask: a :mod:`jaxkit.tree` pattern of the kernels to transform (default: every leaf of rank >= 2).
      straight_through: forward the transformed weights, pass gradients to the raw ones unchanged.

    Returns:
      The wrapped function.

    Raises:
      ValueError: an unknown ``kind`` (at once), a ``mask`` that selects nothing (at the first call).

    References:
      Fuhl & Kasneci, "Weight and Gradient Centralization in Deep Neural Networks", ICANN 2021 (the forward-pass
      centralisation).

    Examples:
      >>> model = nn.Dense(2)
      >>> variables = model.init(jax.random.key(0), jnp.ones((1, 3)))
      >>> f = jaxkit.normalize.reparameterize(model.apply, "center")
      >>> kernel = jaxkit.normalize.center(variables["params"]["kernel"])
      >>> centred = {"params": {**variables["params"], "kernel": kernel}}
      >>> bool(jnp.allclose(f(variables, jnp.ones((1, 3))), model.apply(centred, jnp.ones((1, 3)))))
      True
    """
    fn = _kind(kind)
    if straight_through:
        fn = _straight_through(fn)

    def wrapped(variables, *args, **kwargs):
        if args:
            _check_input(apply_fn, variables, args[0], kwargs)
        if isinstance(variables, dict) and "params" in variables:
            variables = {**variables, "params": _map_filters(fn, variables["params"], mask, "params")}
        else:
            variables = _map_filters(fn, variables, mask, "params")
        return apply_fn(variables, *args, **kwargs)

    return wrapped


def _check_input(apply_fn, variables, x, kwargs, name="x"):
    """The model's first input: real, non-empty, and of a shape ``apply_fn`` accepts (abstract evaluation)."""
    _c.fits(lambda v, xx: apply_fn(v, xx, **kwargs), variables, _c.array(x, name, kind="r", nonempty=True), name)


def Reparameterized(module: nn.Module, kind: str = "center", mask=None, straight_through: bool = False) -> nn.Module:
    """A copy of ``module`` whose ``params`` are WC / WS / WN-transformed on read (``nn.map_variables``).

    Params are created raw at ``init``; paths inside ``mask`` are relative to ``module``. The result has the same
    variable structure as ``module``.

    Args:
      module: a Flax Linen module.
      kind: ``"center"`` (WC), ``"standardize"`` (WS) or ``"normalize"`` (WN).
      mask: a :mod:`jaxkit.tree` pattern of the kernels to transform (default: every leaf of rank >= 2).
      straight_through: as in :func:`reparameterize`.

    Returns:
      A Linen module.

    Raises:
      ValueError: an unknown ``kind``.

    References:
      Fuhl & Kasneci, "Weight and Gradient Centralization in Deep Neural Networks", ICANN 2021.

    Examples:
      >>> layer = jaxkit.normalize.Reparameterized(nn.Dense(2), "center")
      >>> variables = layer.init(jax.random.key(0), jnp.ones((1, 3)))
      >>> jax.tree.map(jnp.shape, variables)  # the same structure as nn.Dense(2)'s
      {'params': {'bias': (2,), 'kernel': (3, 2)}}
    """
    fn = _kind(kind)
    if straight_through:
        fn = _straight_through(fn)
    fields = {
        f.name: getattr(module, f.name)
        for f in dataclasses.fields(module)
        if f.init and f.name not in ("parent", "name")
    }
    cls = nn.map_variables(type(module), "params", trans_in_fn=lambda p: _map_filters(fn, p, mask, "params"), init=True)
    return cls(**fields)


# ---------------------------------------------------------------------------------------------- LocalNorm
class LocalNorm(nn.Module):
    """LocalNorm: batch norm per group of ``N / K`` consecutive samples, with per-group scale and shift.

    ``x``: ``(N, ..., C)`` (channels last). With ``group=None`` the batch is
    split into ``num_groups`` groups of consecutive samples (``N`` must be
    divisible); each (group, channel) is normalised with the mean and biased
    variance over (its samples, all spatial positions) from the *current*
    activations -- no running averages -- then scaled and shifted by that
    group's ``scale[k]``, ``bias[k]`` (params of shape ``(K, C)``). With an
    integer ``group = g`` (may be traced, e.g. under ``vmap`` for voting) the
    whole input is normalised as one group with group ``g``'s scale and shift.
    """

    num_groups: int
    epsilon: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True

    @nn.compact
    def __call__(self, x, group=None):
        x = jnp.asarray(_c.array(x, "x", min_ndim=2, kind="r", nonempty=True))
        k, c = int(self.num_groups), x.shape[-1]
        if k < 1:
            raise ValueError(f"`num_groups` must be >= 1, got {self.num_groups}.")
        scale = self.param("scale", nn.initializers.ones, (k, c)) if self.use_scale else jnp.ones((k, c))
        bias = self.param("bias", nn.initializers.zeros, (k, c)) if self.use_bias else jnp.zeros((k, c))
        if group is not None:
            g = jnp.asarray(group, jnp.int32)
            if _c.is_concrete(g) and not 0 <= int(g) < k:  # indexing would clamp to another group's affine
                raise ValueError(f"LocalNorm: `group` must be in [0, {k}), got {int(g)}.")
            xs = x[None]
            ok = (g >= 0) & (g < k)  # a traced out-of-range group gives NaN, not a neighbour's affine
            sc = jnp.where(ok, scale[jnp.clip(g, 0, k - 1)], jnp.nan)[None]
            bi = jnp.where(ok, bias[jnp.clip(g, 0, k - 1)], jnp.nan)[None]
        else:
            n = x.shape[0]
            if n % k:
                raise ValueError(
                    f"LocalNorm: the batch size of `x` ({n}) must be divisible by `num_groups` = {k} "
                    f"(groups of consecutive samples); pad the batch or pass `group=`."
                )
            xs = x.reshape((k, n // k) + x.shape[1:])
            sc, bi = scale, bias
        axes = tuple(range(1, xs.ndim - 1))
        mean = jnp.mean(xs, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(xs - mean), axis=axes, keepdims=True)
        y = (xs - mean) * jax.lax.rsqrt(var + self.epsilon)
        shape = (sc.shape[0],) + (1,) * (xs.ndim - 2) + (c,)
        y = y * sc.reshape(shape) + bi.reshape(shape)
        return y.reshape(x.shape)


TEST_MODES = ("single", "single_vote", "groups", "batch_vote")


def majority_vote(logits):
    """Majority vote over the leading axis of ``(V, N, C)`` logits: the most frequent argmax per sample.

    Ties are broken by the summed softmax probabilities.

    Args:
      logits: ``[V, N, C]``, one ``[N, C]`` prediction per voter.

    Returns:
      ``[N]`` class indices.

    Raises:
      ValueError: ``logits`` not a real ``[V, N, C]`` array.

    References:
      Yin, Scholte & Bohté, "LocalNorm: Robust Image Classification through Dynamically Regularized Normalization",
      ICANN 2021 (voting over the groups' affine parameters).

    Examples:
      >>> votes = jnp.array([[[5.0, 0, 0]], [[0, 1.0, 0]], [[0, 0.5, 0.4]], [[3.0, 0, 0]]])  # 0, 1, 1, 0
      >>> jaxkit.normalize.majority_vote(votes)  # a tie: class 0 has the larger summed probability
      Array([0], dtype=int32)
    """
    logits = _c.array(logits, "logits", ndim=3, kind="r", nonempty=True)
    if 0 in jnp.shape(logits):
        raise ValueError(f"`logits` is empty (shape {tuple(jnp.shape(logits))}); expected (V, N, C).")
    _c.no_nan(logits, "logits")
    logits = jnp.asarray(logits)
    num_classes = logits.shape[-1]
    votes = jax.nn.one_hot(jnp.argmax(logits, -1), num_classes).sum(0)
    tiebreak = jax.nn.softmax(logits, -1).sum(0) / (logits.shape[0] + 1.0)  # < 1: only breaks ties
    return jnp.argmax(votes + tiebreak, -1)


def localnorm_predict(
    apply_fn: Callable, variables: PyTree, x, num_groups: int, mode: str = "single_vote", group: int = 0, **kwargs
):
    """Predicted classes ``(N,)`` of a LocalNorm model under one of the paper's test modes.

    ``apply_fn(variables, x, group=...)`` must pass ``group`` on to its
    LocalNorm layers (``None``: split into groups). Modes:

    * ``"single"`` -- each image alone, normalised by its own statistics, with group ``group``'s affine;
    * ``"single_vote"`` -- each image alone through every group, majority vote;
    * ``"groups"`` -- the test batch split into ``num_groups`` groups like in training (``N`` divisible);
    * ``"batch_vote"`` -- the whole batch as one group through every group's affine, majority vote.

    Args:
      apply_fn: ``apply_fn(variables, x, group=...)``, passing ``group`` on to its LocalNorm layers.
      variables: the model's variables.
      x: ``[N, ...]`` inputs.
      num_groups: ``K``, the LocalNorm layers' group count.
      mode: ``"single"``, ``"single_vote"``, ``"groups"`` or ``"batch_vote"``.
      group: the group of ``"single"``.
      **kwargs: further ``apply_fn`` arguments.

    Returns:
      ``[N]`` class indices.

    Raises:
      ValueError: an unknown ``mode``; ``N`` not divisible by ``num_groups`` in ``"groups"``.

    References:
      Yin, Scholte & Bohté, "LocalNorm: Robust Image Classification through Dynamically Regularized Normalization",
      ICANN 2021 (the four test modes).

    Examples:
      >>> class Net(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x, group=None):
      ...         x = jaxkit.normalize.LocalNorm(2, name="norm")(nn.Dense(4)(x), group)
      ...         return nn.Dense(3)(nn.relu(x))
      >>> net, x = Net(), jax.random.normal(jax.random.key(1), (6, 5))
      >>> variables = net.init(jax.random.key(0), x)
      >>> [jaxkit.normalize.localnorm_predict(net.apply, variables, x, 2, m).shape
      ...  for m in ("single", "single_vote", "groups", "batch_vote")]
      [(6,), (6,), (6,), (6,)]
    """
    if mode not in TEST_MODES:
        raise ValueError(f"`mode` must be one of {TEST_MODES}, got {mode!r}.")
    x = _c.array(x, "x", min_ndim=2, kind="r", nonempty=True)
    _c.no_nan(x, "x")  # predictions are class indices: NaN would silently become class 0
    x = jnp.asarray(x)
    out = _c.fits(lambda v, xx: apply_fn(v, xx, group=None if mode == "groups" else 0, **kwargs), variables, x)
    if len(out) != 2 or out[0] != x.shape[0]:
        raise ValueError(
            f"`x` of shape {x.shape} gives model outputs of shape {out}; expected logits ({x.shape[0]}, num_classes)."
        )
    k = int(num_groups)
    if mode == "groups":
        return jnp.argmax(apply_fn(variables, x, group=None, **kwargs), -1)
    one = lambda xi, g: apply_fn(variables, xi[None], group=g, **kwargs)[0]
    if mode == "single":
        return jnp.argmax(jax.vmap(one, in_axes=(0, None))(x, group), -1)
    groups = jnp.arange(k)
    if mode == "single_vote":
        logits = jax.vmap(lambda g: jax.vmap(one, in_axes=(0, None))(x, g))(groups)
    else:
        logits = jax.vmap(lambda g: apply_fn(variables, x, group=g, **kwargs))(groups)
    return majority_vote(logits)


def bn_to_localnorm(variables: PyTree, num_groups: int) -> dict:
    """LocalNorm params from a trained BatchNorm model: every BN layer's ``scale`` / ``bias`` copied to all groups.

    A BN layer is a params sub-dict whose path also appears in ``batch_stats``. Its ``(C,)`` scale and bias
    become ``(K, C)``; running statistics are dropped (LocalNorm keeps none). The LocalNorm model must name its
    norm layers like the BN model (e.g. ``name="norm0"``) so the paths agree.

    Args:
      variables: ``{"params": ..., "batch_stats": ...}`` of the BN model.
      num_groups: ``K``.

    Returns:
      ``{"params": ...}`` for the LocalNorm model.

    Raises:
      ValueError: no ``batch_stats``, ``num_groups < 1``.

    References:
      Yin, Scholte & Bohté, "LocalNorm: Robust Image Classification through Dynamically Regularized Normalization",
      ICANN 2021 (LocalNorm initialised from a BN model).

    Examples:
      >>> class BNNet(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x, train=False):
      ...         x = nn.BatchNorm(use_running_average=not train, name="norm")(nn.Dense(4)(x))
      ...         return nn.Dense(3)(nn.relu(x))
      >>> net, x = BNNet(), jax.random.normal(jax.random.key(1), (6, 5))
      >>> variables = net.init(jax.random.key(0), x)
      >>> local = jaxkit.normalize.bn_to_localnorm(variables, 2)
      >>> jax.tree.map(jnp.shape, local["params"]["norm"])
      {'bias': (2, 4), 'scale': (2, 4)}
    """
    if not (isinstance(variables, dict) and "params" in variables and "batch_stats" in variables):
        raise ValueError("`variables` must hold 'params' and 'batch_stats' (a trained BatchNorm model).")
    k = int(num_groups)
    if k < 1:
        raise ValueError(f"`num_groups` must be >= 1, got {num_groups}.")
    _c.tree_finite(variables, "variables")
    bn_layers = {p.rsplit("/", 1)[0] for p in _tree.flatten(variables["batch_stats"], "batch_stats")}
    if not bn_layers:
        raise ValueError("`variables['batch_stats']` is empty: no BatchNorm layer to convert.")

    def conv(kp, leaf):
        path = _tree.path_str(kp)
        parent, name = path.rsplit("/", 1) if "/" in path else ("", path)
        if parent in bn_layers and name in ("scale", "bias"):
            return jnp.broadcast_to(leaf, (k,) + leaf.shape)
        return leaf

    return {"params": jax.tree_util.tree_map_with_path(conv, variables["params"])}


def dynamic_bn_apply(apply_fn: Callable, variables: PyTree, x, *args, train_kwarg: str = "train", **kwargs):
    """Evaluate a Flax model with BatchNorm using the *current batch's* statistics ("dynamic BN").

    Calls ``apply_fn(variables, x, *args, train=True, mutable=["batch_stats"])`` and discards the updated
    running averages, so the stored model is not changed.

    Args:
      apply_fn: the model's ``apply``.
      variables: ``{"params": ..., "batch_stats": ...}`` (the running averages are not used).
      x: the batch.
      *args: further positional arguments of ``apply_fn``.
      train_kwarg: the name of the model's train flag.
      **kwargs: further keyword arguments (a model whose train flag also enables dropout needs ``rngs=``).

    Returns:
      The model's output on ``x``.

    Raises:
      ValueError: an ``x`` that does not fit the model (naming ``x``).

    References:
      Yin, Scholte & Bohté, "LocalNorm: Robust Image Classification through Dynamically Regularized Normalization",
      ICANN 2021 (test-time batch statistics); Nado et al., "Evaluating Prediction-Time Batch Normalization for
      Robustness under Covariate Shift", arXiv:2006.10963, 2020.

    Examples:
      >>> class BNNet(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x, train=False):
      ...         x = nn.BatchNorm(use_running_average=not train, name="norm")(nn.Dense(4)(x))
      ...         return nn.Dense(3)(nn.relu(x))
      >>> net, x = BNNet(), jax.random.normal(jax.random.key(1), (6, 5))
      >>> variables = net.init(jax.random.key(0), x)
      >>> out = jaxkit.normalize.dynamic_bn_apply(net.apply, variables, x)
      >>> out.shape, bool(jnp.allclose(out, net.apply(variables, x)))  # batch vs running statistics
      ((6, 3), False)
    """
    x = _c.array(x, "x", kind="r", nonempty=True)
    _c.fits(
        lambda v, xx: apply_fn(v, xx, *args, mutable=["batch_stats"], **{train_kwarg: True}, **kwargs), variables, x
    )
    out, _ = apply_fn(variables, x, *args, mutable=["batch_stats"], **{train_kwarg: True}, **kwargs)
    return out
