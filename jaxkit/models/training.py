"""A resumable classification training loop.

:func:`init_variables` (``module.init`` as one cheaply compiled XLA program), :class:`TrainState`,
:func:`train_step`, :func:`eval_step`, :func:`evaluate` and :func:`train` -- an optax training loop with a
tqdm progress bar and orbax checkpoint/resume through :class:`jaxkit.checkpoint.Run`: a killed run resumes
after its last finished epoch and ends with the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training import train_state
from tqdm.auto import tqdm

from jaxkit import _checks as _c
from jaxkit import data as _data
from jaxkit._checks import is_concrete
from jaxkit.checkpoint import Run

PyTree = Any

__all__ = [
    "TrainState",
    "create_train_state",
    "cross_entropy",
    "eval_step",
    "evaluate",
    "init_variables",
    "train",
    "train_step",
]


class TrainState(train_state.TrainState):
    """Everything a training step changes, as one pytree: Flax's ``flax.training.train_state.TrainState``
    (``step``, ``params``, ``opt_state``, static ``apply_fn`` and ``tx``; ``apply_gradients``, ``create``) plus
    ``batch_stats`` (``{}`` for models without BatchNorm), :attr:`variables` and :meth:`apply`.
    """

    batch_stats: PyTree = struct.field(default_factory=dict)

    @property
    def variables(self) -> dict:
        v = {"params": self.params}
        if self.batch_stats:
            v["batch_stats"] = self.batch_stats
        return v

    def apply(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Logits in inference mode (running BatchNorm statistics)."""
        return self.apply_fn(self.variables, x, train=train)


def init_variables(module: nn.Module, key: jax.Array, *inputs: Any, **kwargs: Any) -> Any:
    """``module.init(key, *inputs, **kwargs)`` run as one XLA program compiled without LLVM optimisation.

    Run eagerly, Flax's ``init`` compiles every initialiser and layer op one by one (6.6 s for the digits VGG on
    2 CPU cores, cold); jitted at XLA's default level it is one program of mostly random-bit generation that
    still takes 4.6 s to compile; at ``xla_backend_optimization_level=0`` it compiles in 0.65 s and runs once.
    The values are the same draws as ``module.init`` (up to the last bit of floating-point rounding).

    ``inputs`` are traced (only their shapes and dtypes matter); ``kwargs`` are static Python values
    (``train=False``, ``group=0``...). Called inside a ``jit``/``vmap`` trace it is plain ``module.init`` (it is
    then part of the enclosing program).

    Args:
      module: a Flax Linen module.
      key: PRNG key.
      *inputs: example inputs (traced: shapes and dtypes).
      **kwargs: static keyword arguments of the module's ``__call__``.

    Returns:
      The module's variables.

    Examples:
      >>> variables = jaxkit.models.init_variables(jaxkit.models.MLP((8, 3)), jax.random.key(0), jnp.zeros((1, 4)))
      >>> jax.tree.map(jnp.shape, variables["params"]["Dense_1"])
      {'bias': (3,), 'kernel': (8, 3)}
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
    """Initialise ``model`` on ``sample_input`` and ``tx``: a :class:`TrainState` at step 0.

    Args:
      key: PRNG key of the initialisation.
      model: a Flax Linen module.
      sample_input: a batch (only its shape and dtype matter).
      tx: an optax optimiser.

    Returns:
      A :class:`TrainState` (params, ``batch_stats`` when the model has them, optimiser state).

    Raises:
      ValueError: a ``sample_input`` that does not fit the model (naming it).

    Examples:
      >>> state = jaxkit.models.create_train_state(jax.random.key(0), jaxkit.models.MLP((8, 3)), jnp.zeros((1, 4)),
      ...                                          optax.sgd(0.1))
      >>> x, y = jax.random.normal(jax.random.key(1), (16, 4)), jnp.arange(16) % 3
      >>> int(state.step), sorted(state.params)
      (0, ['Dense_0', 'Dense_1'])
    """
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
    """Per-example softmax cross-entropy with integer labels (nats): ``-log softmax(logits)[y]``.

    Args:
      logits: ``[N, C]``.
      labels: ``[N]`` integer labels.

    Returns:
      ``[N]`` losses.

    Examples:
      >>> loss = jaxkit.models.cross_entropy(jnp.array([[0.0, 0.0], [2.0, 0.0]]), jnp.array([0, 0]))
      >>> print(np.asarray(loss).round(4))
      [0.6931 0.1269]
    """
    logits = _c.array(logits, "logits", min_ndim=1, kind="f")
    labels = _c.labels(labels, "labels", jnp.shape(logits)[-1])
    if jnp.shape(labels) != jnp.shape(logits)[:-1]:
        raise ValueError(
            f"`labels` must have shape {tuple(jnp.shape(logits)[:-1])} (one per row of `logits`), got "
            f"{tuple(jnp.shape(labels))}."
        )
    if 0 in jnp.shape(logits):
        raise ValueError(f"`logits` is empty (shape {tuple(jnp.shape(logits))}).")
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


@jax.jit
def train_step(state: TrainState, x: jax.Array, y: jax.Array) -> tuple[TrainState, dict]:
    """One optimiser step on the mean cross-entropy; returns the new state and the batch's metrics.

    Jitted; BatchNorm statistics are updated when the model has them.

    Args:
      state: a :class:`TrainState`.
      x: a batch of inputs.
      y: ``[N]`` integer labels.

    Returns:
      ``(state, {"loss", "accuracy"})``.

    Examples:
      >>> state = jaxkit.models.create_train_state(jax.random.key(0), jaxkit.models.MLP((8, 3)), jnp.zeros((1, 4)),
      ...                                          optax.sgd(0.1))
      >>> x, y = jax.random.normal(jax.random.key(1), (16, 4)), jnp.arange(16) % 3
      >>> state, metrics = jaxkit.models.train_step(state, x, y)
      >>> int(state.step), sorted(metrics)
      (1, ['accuracy', 'loss'])
    """
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


@functools.partial(jax.jit, static_argnames=("augment",))
def _augmented_step(state: TrainState, x: jax.Array, y: jax.Array, key: jax.Array, augment) -> tuple[TrainState, dict]:
    """:func:`train_step` on ``augment(key, x)``: one compiled program per ``augment`` function."""
    return train_step(state, augment(key, x), y)


@jax.jit
def eval_step(state: TrainState, x: jax.Array, y: jax.Array, weight: jax.Array) -> dict:
    """Weighted sums of loss and correct predictions (``weight`` 0 marks padding rows).

    Args:
      state: a :class:`TrainState`.
      x: a batch of inputs.
      y: ``[N]`` integer labels.
      weight: ``[N]`` weights (1 for real rows, 0 for padding).

    Returns:
      ``{"loss", "correct", "count"}`` sums.

    Examples:
      >>> state = jaxkit.models.create_train_state(jax.random.key(0), jaxkit.models.MLP((8, 3)), jnp.zeros((1, 4)),
      ...                                          optax.sgd(0.1))
      >>> x, y = jax.random.normal(jax.random.key(1), (16, 4)), jnp.arange(16) % 3
      >>> sums = jaxkit.models.eval_step(state, x, y, jnp.ones(16))
      >>> float(sums["count"])
      16.0
    """
    logits = state.apply(x, train=False)
    return {
        "loss": jnp.sum(weight * cross_entropy(logits, y)),
        "correct": jnp.sum(weight * (jnp.argmax(logits, -1) == y)),
        "count": jnp.sum(weight),
    }


def evaluate(state: TrainState, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> dict[str, float]:
    """Mean loss and accuracy over ``(x, y)``, in batches (the last one padded so ``eval_step`` compiles once).

    Args:
      state: a :class:`TrainState`.
      x: ``[N, ...]`` inputs.
      y: ``[N]`` integer labels.
      batch_size: rows per jitted call.

    Returns:
      ``{"loss", "accuracy"}`` floats.

    Raises:
      ValueError: ``x`` and ``y`` of different lengths or empty, ``batch_size < 1``.

    Examples:
      >>> state = jaxkit.models.create_train_state(jax.random.key(0), jaxkit.models.MLP((8, 3)), jnp.zeros((1, 4)),
      ...                                          optax.sgd(0.1))
      >>> x, y = jax.random.normal(jax.random.key(1), (16, 4)), jnp.arange(16) % 3
      >>> sorted(jaxkit.models.evaluate(state, np.asarray(x), np.asarray(y), batch_size=5))
      ['accuracy', 'loss']
    """
    x = _c.array(x, "x", min_ndim=1, kind="r")
    y = _c.labels(_c.array(y, "y", ndim=1), "y")
    n = len(y)
    if n == 0 or len(x) == 0:
        raise ValueError("evaluate: `x` and `y` are empty.")
    _c.same_leading("x", x, "y", y)
    bs = min(int(batch_size), n)
    totals = None  # summed on the device: one transfer at the end, no host sync per batch
    for xb, yb in _data.batches(None, x, y, batch_size=bs):
        w = np.ones(len(yb), np.float32)
        if len(yb) < bs:
            pad = bs - len(yb)
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros(pad, yb.dtype)])
            w = np.concatenate([w, np.zeros(pad, np.float32)])
        out = {k: eval_step(state, xb, yb, w)[k] for k in ("loss", "correct", "count")}
        totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
    t = {k: float(v) for k, v in jax.device_get(totals).items()}
    return {"loss": t["loss"] / t["count"], "accuracy": t["correct"] / t["count"]}


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
    augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
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
    it a deterministic function so a resumed run stays identical. ``augment(key, x_batch) -> x_batch`` (e.g.
    :func:`jaxkit.data.random_crop_flip`, the CIFAR crop + flip) transforms every training minibatch inside the
    jitted step, keyed by ``key``, the epoch and the batch index (so a resumed run augments the same way);
    evaluation sees the data as it is.

    Records hold ``epoch`` (1-based), ``train_loss``, ``train_accuracy``,
    ``test_loss``, ``test_accuracy``, ``seconds`` (epoch wall time).

    Args:
      state: the initial :class:`TrainState`.
      dataset: a :class:`jaxkit.data.Dataset` (train and test splits).
      key: PRNG key of the shuffles (and of ``augment``).
      epochs: epochs to train (a resumed run trains the missing ones).
      batch_size: minibatch size (<= the training set's size).
      checkpoint_dir: save and resume here (``None``: no checkpoints).
      progress: show a progress bar.
      callback: ``callback(epoch, state, record)`` after each epoch.
      before_epoch: ``before_epoch(epoch, state) -> state`` before each epoch's steps.
      config: what the state does not show (learning rate, ...), part of the checkpoint's fingerprint.
      overwrite: start over in a ``checkpoint_dir`` holding another run.
      augment: ``augment(key, x_batch) -> x_batch`` inside the jitted step.

    Returns:
      ``(state, history)``: the final state and the per-epoch records.

    Raises:
      ValueError: ``epochs < 0``, ``batch_size`` outside ``[1, N_train]``.
      TypeError: an ``augment`` that is not a function.
      jaxkit.checkpoint.CheckpointMismatch: resuming a ``checkpoint_dir`` that holds another run.

    Examples:
      >>> ds = jaxkit.data.load_digits(seed=0)
      >>> state = jaxkit.models.create_train_state(jax.random.key(0), jaxkit.models.MLP((32, 10)), ds.train.x[:1],
      ...                                          optax.adam(3e-3))
      >>> state, history = jaxkit.models.train(state, ds, key=jax.random.key(1), epochs=2, progress=False)
      >>> len(history), history[-1]["test_accuracy"] > 0.8
      (2, True)
    """
    if int(epochs) < 0:
        raise ValueError(f"`epochs` must be >= 0, got {epochs}.")
    if augment is not None and not callable(augment):
        raise TypeError(f"`augment` must be a function (key, x) -> x or None, got {type(augment).__name__}.")
    n_train = len(dataset.train)
    if not 1 <= int(batch_size) <= n_train:
        raise ValueError(f"`batch_size` must lie in [1, {n_train}] (the training set size), got {batch_size}.")
    fingerprint = {
        "model": state.apply_fn,
        "initial_state": _state_leaves(state),
        "key": key,
        "batch_size": int(batch_size),
        "n_train": n_train,
        "data": [dataset.train.x, dataset.train.y, dataset.test.x, dataset.test.y],
        "before_epoch": before_epoch,
        **({"augment": augment} if augment is not None else {}),  # absent when unused: older checkpoints still match
        **dict(config or {}),
    }
    run = Run(
        checkpoint_dir,
        _state_leaves(state),
        fingerprint,
        total=int(epochs),
        what="epoch",
        overwrite=overwrite,
        verbose=progress,
    )
    if run.start:
        state = state.replace(**jax.tree.map(jnp.asarray, run.state))
    history: list[dict] = list(run.metadata.get("history", []))
    start = run.start
    bar = tqdm(
        range(start, int(epochs)),
        initial=start,
        total=int(epochs),
        desc="train",
        unit="epoch",
        disable=not progress,
        leave=False,
    )
    try:
        for epoch in bar:
            t0 = time.perf_counter()
            if before_epoch is not None:
                state = before_epoch(epoch, state)
            k_epoch = jax.random.fold_in(key, epoch)
            k_aug = jax.random.fold_in(k_epoch, _data.AUGMENT_KEY_TAG)
            for i, (xb, yb) in enumerate(
                _data.prefetch(
                    _data.batches(
                        k_epoch, dataset.train.x, dataset.train.y, batch_size=int(batch_size), drop_remainder=True
                    )
                )
            ):
                if augment is None:
                    state, _ = train_step(state, xb, yb)
                else:
                    state, _ = _augmented_step(state, xb, yb, jax.random.fold_in(k_aug, i), augment)
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
