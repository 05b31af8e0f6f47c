"""Small reference Flax models and a resumable classification training loop.

* :class:`MLP` -- ``Dense -> ReLU -> ... -> Dense`` (the networks of LipBaB,
  fairness and calibration experiments).
* :class:`VGG` -- VGG-style CNN from a config list (ints are 3x3 conv widths,
  ``"M"`` a 2x2 max-pool), optional BatchNorm, global average pooling and a
  dense head. ``VGG(cfg=DIGITS_CFG)`` is the digits CNN.
* :class:`ResNet` / :func:`resnet56` -- CIFAR-style ResNets with option-A
  (parameter-free) or option-B (projection) shortcuts.
* :func:`init_variables` -- ``module.init`` as one cheaply compiled XLA program.
* :class:`TrainState`, :func:`train_step`, :func:`eval_step`, :func:`evaluate`
  and :func:`train` -- an optax training loop with a tqdm progress bar and
  orbax checkpoint/resume: a killed run resumes after its last finished epoch
  and ends with the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import time
from functools import partial
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax import lax

from jaxkit import data as _data
from jaxkit import _checks as _c
from jaxkit._checks import is_concrete

__all__ = [
    "MLP",
    "VGG",
    "SmallCNN",
    "DIGITS_CFG",
    "BasicBlock",
    "ResNet",
    "resnet56",
    "TrainState",
    "init_variables",
    "create_train_state",
    "cross_entropy",
    "train_step",
    "eval_step",
    "evaluate",
    "train",
]

PyTree = Any

#: The digits CNN: 8x8 -> 4x4 -> 2x2, 16/32 channels (~15k parameters).
DIGITS_CFG: tuple = (16, 16, "M", 32, 32, "M")


class MLP(nn.Module):
    """Fully connected ReLU network: ``features[-1]`` outputs, no activation on the last layer.

    Inputs of any shape ``[N, ...]`` are flattened. Layers are named
    ``Dense_0 ... Dense_{L-1}``.
    """

    features: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = nn.relu

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        del train  # uniform signature with the models that use it
        if not self.features:
            raise ValueError("MLP: `features` is empty; expected at least one layer width.")
        x = x.reshape((x.shape[0], -1))
        for i, width in enumerate(self.features):
            x = nn.Dense(int(width), name=f"Dense_{i}")(x)
            if i < len(self.features) - 1:
                x = self.activation(x)
        return x


class VGG(nn.Module):
    """VGG-style CNN on NHWC inputs.

    ``cfg``: ints are 3x3 ``SAME`` conv widths (each followed by BatchNorm if
    ``batch_norm`` -- then the conv has no bias -- and ReLU), ``"M"`` a 2x2
    max-pool. Then global average pooling, ``hidden`` dense ReLU layers and a
    dense classifier. Layer names are Flax's defaults (``Conv_0``,
    ``BatchNorm_0``, ``Dense_0`` ...).
    """

    cfg: Sequence[int | str] = DIGITS_CFG
    num_classes: int = 10
    batch_norm: bool = True
    hidden: Sequence[int] = ()
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"VGG expects `x` as NHWC images (rank 4), got shape {x.shape}.")
        for v in self.cfg:
            if v == "M":
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
                continue
            x = nn.Conv(int(v), (3, 3), padding="SAME", use_bias=not self.batch_norm)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)(x)
            x = nn.relu(x)
        x = x.mean(axis=(1, 2))
        for width in self.hidden:
            x = nn.relu(nn.Dense(int(width))(x))
        return nn.Dense(self.num_classes)(x)


class SmallCNN(nn.Module):
    """A small CNN for explanation and robustness work: ``widths`` 3x3 SAME conv + ReLU layers with a 2x2
    max-pool between them (not after the last), the last ReLU output named ``"features"`` (an
    :class:`jaxkit.explain.Tap`, no parameters) for Grad-CAM, then ``head="flatten"`` (as VGG) or ``"gap"``
    (global average pooling, as ResNet: Grad-CAM equals CAM), ``hidden`` dense ReLU layers and a dense
    classifier. With ``hidden=()`` the head is one dense layer (``Dense_0``), the setting in which Grad-CAM
    manipulation by ``jaxkit.explain.manipulate`` is exact. Layer names: ``Conv_i``, ``Dense_j``."""

    widths: Sequence[int] = (16, 32)
    num_classes: int = 10
    hidden: Sequence[int] = ()
    head: str = "flatten"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        from jaxkit.explain import Tap  # noqa: PLC0415

        if x.ndim != 4:
            raise ValueError(f"SmallCNN expects `x` as NHWC images (rank 4), got shape {x.shape}.")
        for i, w in enumerate(self.widths):
            x = nn.relu(nn.Conv(int(w), (3, 3), padding="SAME")(x))
            if i < len(self.widths) - 1:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = Tap(name="features")(x)
        if self.head not in ("flatten", "gap"):
            raise ValueError(f"SmallCNN: `head` must be 'flatten' or 'gap', got {self.head!r}.")
        x = x.reshape(x.shape[0], -1) if self.head == "flatten" else jnp.mean(x, axis=(1, 2))
        for width in self.hidden:
            x = nn.relu(nn.Dense(int(width))(x))
        return nn.Dense(self.num_classes)(x)


class BasicBlock(nn.Module):
    """``conv3x3(stride) - BN - ReLU - conv3x3 - BN``, plus shortcut, then ReLU (He et al. 2016).

    ``shortcut="A"``: identity, or -- when the shape changes -- stride-2
    subsampling and zero channels padded equally on both sides (CIFAR ResNets;
    no parameters). ``"B"``: a 1x1 conv + BN projection when the shape changes.
    """

    features: int
    strides: int = 1
    shortcut: str = "A"
    bn_momentum: float = 0.9
    inner_features: int | None = None  # width of the first conv (pruned models); default ``features``

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        bn = partial(nn.BatchNorm, use_running_average=not train, momentum=self.bn_momentum)
        s = (self.strides, self.strides)
        inner = self.features if self.inner_features is None else int(self.inner_features)
        y = nn.Conv(inner, (3, 3), s, padding=((1, 1), (1, 1)), use_bias=False)(x)
        y = nn.relu(bn()(y))
        y = nn.Conv(self.features, (3, 3), padding=((1, 1), (1, 1)), use_bias=False)(y)
        y = bn()(y)
        if self.strides != 1 or x.shape[-1] != self.features:
            if self.shortcut == "A":
                x = x[:, :: self.strides, :: self.strides, :]
                extra = self.features - x.shape[-1]
                x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
            elif self.shortcut == "B":
                x = bn()(nn.Conv(self.features, (1, 1), s, use_bias=False)(x))
            else:
                raise ValueError(f"BasicBlock: `shortcut` must be 'A' or 'B', got {self.shortcut!r}.")
        return nn.relu(y + x)


class ResNet(nn.Module):
    """CIFAR-style ResNet on NHWC inputs (He et al. 2016, Sec. 4.2).

    ``conv3x3(widths[0]) - BN - ReLU``, then ``len(stage_sizes)`` stages of
    :class:`BasicBlock` (the first block of every stage after the first has
    stride 2), global average pooling and a dense classifier. ResNet-``6n+2``
    is ``stage_sizes=(n, n, n)``: :func:`resnet56` is ``n = 9``. ``inner_widths``
    (one per block, optional) sets each block's first-conv width, as left by
    pruning the blocks' inner channels.
    """

    stage_sizes: Sequence[int] = (9, 9, 9)
    widths: Sequence[int] = (16, 32, 64)
    num_classes: int = 10
    shortcut: str = "A"
    bn_momentum: float = 0.9
    inner_widths: Sequence[int] | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"ResNet expects `x` as NHWC images (rank 4), got shape {x.shape}.")
        if len(self.stage_sizes) != len(self.widths):
            raise ValueError(f"ResNet: `stage_sizes` {tuple(self.stage_sizes)} and `widths` {tuple(self.widths)} "
                             "must have the same length.")
        x = nn.Conv(int(self.widths[0]), (3, 3), padding=((1, 1), (1, 1)), use_bias=False)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)(x))
        inner = list(self.inner_widths) if self.inner_widths is not None else None
        if inner is not None and len(inner) != sum(self.stage_sizes):
            raise ValueError(f"ResNet: `inner_widths` needs one width per block ({sum(self.stage_sizes)}), "
                             f"got {len(inner)}.")
        k = 0
        for i, (n, w) in enumerate(zip(self.stage_sizes, self.widths)):
            for j in range(int(n)):
                x = BasicBlock(int(w), 2 if (i > 0 and j == 0) else 1, self.shortcut, self.bn_momentum,
                               inner[k] if inner is not None else None)(x, train)
                k += 1
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


def resnet56(num_classes: int = 10, widths: Sequence[int] = (16, 32, 64), shortcut: str = "A") -> ResNet:
    """ResNet-56 for 32x32 inputs: 853,018 parameters and 125.49M MACs with the default widths."""
    return ResNet((9, 9, 9), tuple(widths), num_classes, shortcut)


class TrainState(struct.PyTreeNode):
    """Everything a training step changes, as one pytree.

    ``batch_stats`` is ``{}`` for models without BatchNorm. ``apply_fn`` and
    ``tx`` are static (part of the tree structure, not leaves).
    """

    step: jax.Array
    params: PyTree
    batch_stats: PyTree
    opt_state: optax.OptState
    apply_fn: Callable = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    @property
    def variables(self) -> dict:
        v = {"params": self.params}
        if self.batch_stats:
            v["batch_stats"] = self.batch_stats
        return v

    def apply(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Logits in inference mode (running BatchNorm statistics)."""
        return self.apply_fn(self.variables, x, train=train)


def init_variables(module: nn.Module, key: jax.Array, *inputs: Any, **kwargs: Any) -> dict:
    """``module.init(key, *inputs, **kwargs)`` run as one XLA program compiled without LLVM optimisation.

    Run eagerly, Flax's ``init`` compiles every initialiser and layer op one by one (6.6 s for the digits VGG on
    2 CPU cores, cold); jitted at XLA's default level it is one program of mostly random-bit generation that
    still takes 4.6 s to compile; at ``xla_backend_optimization_level=0`` it compiles in 0.65 s and runs once.
    The values are the same draws as ``module.init`` (up to the last bit of floating-point rounding).

    ``inputs`` are traced (only their shapes and dtypes matter); ``kwargs`` are static Python values
    (``train=False``, ``group=0``...). Called inside a ``jit``/``vmap`` trace it is plain ``module.init`` (it is
    then part of the enclosing program).
    """
    for i, x in enumerate(inputs):
        _c.array(x, "x" if i == 0 else f"inputs[{i}]", kind="r")
    if not all(is_concrete(a) for a in (jax.random.key_data(key), *inputs)):
        return module.init(key, *inputs, **kwargs)
    fn = jax.jit(lambda k, *xs: module.init(k, *xs, **kwargs), compiler_options={"xla_backend_optimization_level": 0})
    return fn(key, *(jnp.asarray(x) for x in inputs))


def create_train_state(
    key: jax.Array, model: nn.Module, sample_input: jax.Array | np.ndarray, tx: optax.GradientTransformation
) -> TrainState:
    """Initialise ``model`` on ``sample_input`` (a batch; only its shape matters) and ``tx``."""
    variables = init_variables(model, key, sample_input, train=False)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        apply_fn=model.apply,
        tx=tx,
    )


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example softmax cross-entropy with integer labels (nats)."""
    logits = _c.array(logits, "logits", min_ndim=1, kind="f")
    labels = _c.labels(labels, "labels", jnp.shape(logits)[-1])
    if jnp.shape(labels) != jnp.shape(logits)[:-1]:
        raise ValueError(f"`labels` must have shape {tuple(jnp.shape(logits)[:-1])} (one per row of `logits`), got "
                         f"{tuple(jnp.shape(labels))}.")
    if 0 in jnp.shape(logits):
        raise ValueError(f"`logits` is empty (shape {tuple(jnp.shape(logits))}).")
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


@jax.jit
def train_step(state: TrainState, x: jax.Array, y: jax.Array) -> tuple[TrainState, dict]:
    """One optimiser step on mean cross-entropy; returns the new state and batch metrics."""
    has_bn = bool(state.batch_stats)

    def loss_fn(params):
        variables = {"params": params}
        if has_bn:
            variables["batch_stats"] = state.batch_stats
            logits, upd = state.apply_fn(variables, x, train=True, mutable=["batch_stats"])
            new_stats = upd["batch_stats"]
        else:
            logits = state.apply_fn(variables, x, train=True)
            new_stats = state.batch_stats
        return cross_entropy(logits, y).mean(), (logits, new_stats)

    (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        batch_stats=new_stats,
        opt_state=opt_state,
    )
    metrics = {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == y)}
    return new_state, metrics


@jax.jit
def eval_step(state: TrainState, x: jax.Array, y: jax.Array, weight: jax.Array) -> dict:
    """Weighted sums of loss and correct predictions (``weight`` 0 marks padding rows)."""
    logits = state.apply(x, train=False)
    return {
        "loss": jnp.sum(weight * cross_entropy(logits, y)),
        "correct": jnp.sum(weight * (jnp.argmax(logits, -1) == y)),
        "count": jnp.sum(weight),
    }


def evaluate(state: TrainState, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> dict[str, float]:
    """Mean loss and accuracy over ``(x, y)``. The last batch is padded so ``eval_step`` compiles once."""
    x = _c.array(x, "x", min_ndim=1, kind="r")
    y = _c.labels(_c.array(y, "y", ndim=1), "y")
    n = len(y)
    if n == 0 or len(x) == 0:
        raise ValueError("evaluate: `x` and `y` are empty.")
    _c.same_leading("x", x, "y", y)
    bs = min(int(batch_size), n)
    totals = {"loss": 0.0, "correct": 0.0, "count": 0.0}
    for (xb, yb) in _data.batches(None, x, y, batch_size=bs):
        w = np.ones(len(yb), np.float32)
        if len(yb) < bs:
            pad = bs - len(yb)
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros(pad, yb.dtype)])
            w = np.concatenate([w, np.zeros(pad, np.float32)])
        out = eval_step(state, xb, yb, w)
        for k in totals:
            totals[k] += float(out[k])
    return {"loss": totals["loss"] / totals["count"], "accuracy": totals["correct"] / totals["count"]}


def _state_leaves(state: TrainState) -> dict:
    return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats, "opt_state": state.opt_state}


def train(
    state: TrainState,
    dataset: _data.Dataset,
    *,
    key: jax.Array,
    epochs: int,
    batch_size: int = 64,
    checkpoint_dir: str | None = None,
    progress: bool = True,
    callback: Callable[[int, TrainState, dict], None] | None = None,
    before_epoch: Callable[[int, TrainState], TrainState] | None = None,
    config: dict | None = None,
    overwrite: bool = False,
) -> tuple[TrainState, list[dict]]:
    """Train for ``epochs`` epochs; returns the final state and one record per epoch.

    Each epoch shuffles with ``jax.random.fold_in(key, epoch)`` and drops the last
    incomplete batch (so the step compiles once), then evaluates on the train
    and test splits. With ``checkpoint_dir`` the state and history are saved
    after every epoch; calling ``train`` again with the same directory restores
    the newest checkpoint and continues with the next epoch, so an interrupted
    run ends exactly where an uninterrupted one would. The checkpoint carries a fingerprint of the run (the
    model's configuration, the initial state's bytes, ``key``, ``batch_size``, the data's bytes, ``before_epoch``
    and the caller's ``config`` -- put what the state does not show there, e.g. the learning rate); resuming
    with anything different is a :class:`jaxkit.checkpoint.CheckpointMismatch`, ``overwrite=True`` starts over
    (``epochs`` may grow: a finished run continues). ``callback(epoch, state,
    record)`` runs after each epoch's checkpoint (raise in it to stop early).
    ``before_epoch(epoch, state) -> state`` (0-based ``epoch``) may transform
    the state before each epoch's steps (e.g. Pruned-YOLO's soft mask); keep
    it a deterministic function so a resumed run stays identical.

    Records hold ``epoch`` (1-based), ``train_loss``, ``train_accuracy``,
    ``test_loss``, ``test_accuracy``, ``seconds`` (epoch wall time).
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    if int(epochs) < 0:
        raise ValueError(f"`epochs` must be >= 0, got {epochs}.")
    n_train = len(dataset.train)
    if not 1 <= int(batch_size) <= n_train:
        raise ValueError(f"`batch_size` must lie in [1, {n_train}] (the training set size), got {batch_size}.")
    from jaxkit.checkpoint import Run  # noqa: PLC0415

    fingerprint = {"model": state.apply_fn, "initial_state": _state_leaves(state), "key": key,
                   "batch_size": int(batch_size), "n_train": n_train,
                   "data": [dataset.train.x, dataset.train.y, dataset.test.x, dataset.test.y],
                   "before_epoch": before_epoch, **dict(config or {})}
    run = Run(checkpoint_dir, _state_leaves(state), fingerprint, total=int(epochs), what="epoch",
              overwrite=overwrite, verbose=progress)
    if run.start:
        state = state.replace(**jax.tree.map(jnp.asarray, run.state))
    history: list[dict] = list(run.metadata.get("history", []))
    start = run.start
    bar = tqdm(range(start, int(epochs)), initial=start, total=int(epochs), desc="train", unit="epoch",
               disable=not progress, leave=False)
    try:
        for epoch in bar:
            t0 = time.perf_counter()
            if before_epoch is not None:
                state = before_epoch(epoch, state)
            for xb, yb in _data.batches(jax.random.fold_in(key, epoch), dataset.train.x, dataset.train.y,
                                        batch_size=int(batch_size), drop_remainder=True):
                state, _ = train_step(state, xb, yb)
            tr = evaluate(state, dataset.train.x, dataset.train.y)
            te = evaluate(state, dataset.test.x, dataset.test.y)
            record = {
                "epoch": epoch + 1,
                "train_loss": tr["loss"],
                "train_accuracy": tr["accuracy"],
                "test_loss": te["loss"],
                "test_accuracy": te["accuracy"],
                "seconds": time.perf_counter() - t0,
            }
            history.append(record)
            bar.set_postfix(loss=f"{tr['loss']:.3f}", test_acc=f"{te['accuracy']:.3f}")
            run.save(epoch + 1, _state_leaves(state), {"history": history})
            if callback is not None:
                callback(epoch + 1, state, record)
    finally:
        bar.close()
        run.close()
    return state, history


def im2col_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
                feature_group_count=1, precision=None, preferred_element_type=None):
    """``lax.conv_general_dilated`` as shifted slices @ kernel (NHWC inputs, HWIO kernels).

    Same numbers as the XLA convolution; other layouts, feature groups and
    input dilation fall back to it. Why: under ``vmap`` with a kernel per
    member (a population of networks) JAX lowers a convolution to a grouped
    one, which XLA:CPU runs far slower than the batched matrix product this
    becomes.
    """
    nd = lhs.ndim - 2
    spatial = "HWD"[:nd]
    layout = ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
    strides = tuple(window_strides)
    rdil = tuple(rhs_dilation or (1,) * nd)
    ok = (feature_group_count == 1 and all(d == 1 for d in (lhs_dilation or (1,) * nd))
          and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
          == lax.conv_dimension_numbers(lhs.shape, rhs.shape, layout))
    window = tuple((k - 1) * d + 1 for k, d in zip(rhs.shape[:nd], rdil))
    pads = (lax.padtype_to_pads(lhs.shape[1:-1], window, strides, padding) if isinstance(padding, str)
            else [tuple(p) for p in padding]) if ok else []
    if not ok or any(lo < 0 or hi < 0 for lo, hi in pads):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                        feature_group_count=feature_group_count, precision=precision,
                                        preferred_element_type=preferred_element_type)
    x = jnp.pad(lhs, [(0, 0), *pads, (0, 0)])
    out = [(x.shape[1 + i] - window[i]) // strides[i] + 1 for i in range(nd)]
    cols = []
    for offset in np.ndindex(*rhs.shape[:nd]):  # kernel offsets in HW(D) order, as the kernel's reshape
        start = [o * d for o, d in zip(offset, rdil)]
        cols.append(lax.slice(x, (0, *start, 0),
                              (x.shape[0], *[s + (n - 1) * st + 1 for s, n, st in zip(start, out, strides)],
                               x.shape[-1]), (1, *strides, 1)))
    patches = jnp.stack(cols, axis=-2)  # [N, *out, taps, C_in]
    k = rhs.reshape(len(cols), rhs.shape[-2], rhs.shape[-1])
    return jnp.einsum("...tc,tco->...o", patches, k, precision=precision,
                      preferred_element_type=preferred_element_type)


def with_im2col(apply_fn: Callable) -> Callable:
    """Wrap ``model.apply`` so every ``nn.Conv`` computes with :func:`im2col_conv` (same outputs).

    For populations of conv nets under ``vmap`` on CPU (see
    :func:`im2col_conv`); modules that set their own convolution function are
    left alone.
    """
    def interceptor(next_fun, args, kwargs, context):
        m = context.module
        if (context.method_name == "__call__" and type(m) is nn.Conv and m.conv_general_dilated is None
                and m.conv_general_dilated_cls is None):
            object.__setattr__(m, "conv_general_dilated", im2col_conv)  # frozen module: restored below
            try:
                return next_fun(*args, **kwargs)
            finally:
                object.__setattr__(m, "conv_general_dilated", None)
        return next_fun(*args, **kwargs)

    def apply(*args, **kwargs):
        with nn.intercept_methods(interceptor):
            return apply_fn(*args, **kwargs)

    return apply
