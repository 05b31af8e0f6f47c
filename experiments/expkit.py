"""The run skeleton every experiment script shares, and the helpers they have in common.

Skeleton: :func:`parser` (flags validated by name before any work, exit 2) -> :func:`print_config` ->
seeds -> :func:`format_table` / :func:`mean_std` -> :func:`write_json` and :func:`save_figure` into
:func:`output_dir`, all inside :func:`experiment` (results staged and committed only when the run succeeds;
checkpoints in :func:`state_dir`). Helpers: datasets, VGG pre-training and narrowing, epoch loops, accuracy.

Experiments are run as ``python experiments/<name>.py``; this file sits next to them, so ``import expkit``
works without installing anything extra (named apart from ``benchmarks/benchkit.py``, so a process that
imports both gets each).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shutil
import sys
from collections.abc import Sequence

import numpy as np

from jaxkit.checkpoint import CheckpointError


def print_config(args, extra: dict | None = None) -> dict:
    """Print the run's full configuration (flags, seeds, versions) as JSON and return it."""
    import jax

    import jaxkit

    cfg = dict(vars(args))
    cfg.update(extra or {})
    cfg["_env"] = {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxkit": jaxkit.__version__,
        "backend": jax.default_backend(),
        "devices": jax.device_count(),
        "argv": sys.argv,
    }
    print("configuration:\n" + json.dumps(cfg, indent=2, default=str), flush=True)
    return cfg


def mean_std(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """``"m ± s"`` with the sample standard deviation (ddof=1; ``± 0`` for one value)."""
    v = np.asarray(values, dtype=np.float64) * scale
    s = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{v.mean():.{digits}f} ± {s:.{digits}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence], title: str | None = None) -> str:
    """A plain-text table with right-aligned columns."""
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    out = [title] if title else []
    out.append("  ".join(h.rjust(w) for h, w in zip(cells[0], widths)))
    out.append(line)
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells[1:]]
    return "\n".join(out)


def compilation_cache() -> str:
    """Persist XLA executables across runs (re-runs skip compilation), unless the process already chose a cache.

    Location: ``$JAXKIT_JAX_CACHE_DIR``, else ``~/.cache/jaxkit/jax_cache``. A cache configured before (by the
    test suite, or by ``JAX_COMPILATION_CACHE_DIR``) is left as it is.
    """
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update(
            "jax_compilation_cache_dir",
            os.environ.get("JAXKIT_JAX_CACHE_DIR", os.path.expanduser("~/.cache/jaxkit/jax_cache")),
        )
    return jax.config.jax_compilation_cache_dir


_STAGING: dict[str, str] = {}  # staging folder -> the results folder it replaces files in (this process)
_ACTIVE: list[str] = []  # the experiments running now (output_dir stages only inside one)


def output_dir(path: str) -> str:
    """Where a run writes its results: a staging folder beside ``path`` that :func:`experiment` moves into
    ``path`` only when the run succeeds (a failed, interrupted or empty run leaves earlier results untouched).

    Outside an :func:`experiment` (or for a folder inside a staging folder) it is ``path`` itself, created.
    Checkpoints and per-run caches that must survive a failed run go to :func:`state_dir` instead.
    """
    path = os.path.abspath(path)
    if not _ACTIVE or any(path == s or path.startswith(s + os.sep) for s in _STAGING):
        os.makedirs(path, exist_ok=True)
        return path
    for staging, final in _STAGING.items():
        if final == path:
            return staging
    staging = f"{path}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    _STAGING[staging] = path
    return staging


def write_json(out: str, obj, name: str = "results.json") -> str:
    """Write a run's results as JSON into ``out`` (the folder from :func:`output_dir`); values JSON cannot hold
    (NumPy scalars, paths) are written as strings. Returns the file's path."""
    path = os.path.join(out, name)
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=1, default=str)
    return path


# ------------------------------------------------------------------------------------------- paper vs here
SUPPORTS, DOES_NOT_SUPPORT, NOT_COMPARABLE = "supports", "does not support", "not comparable"


def claim(what: str, paper: str, here: str, holds: bool | None, why: str, *, comparable: bool | str = True) -> dict:
    """One row of an experiment's "paper vs here" block.

    ``what``: the paper's claim in a few words; ``paper`` / ``here``: its headline number(s) and ours, as text;
    ``holds``: whether our measurement shows the claim (``None``: nothing measured says either way); ``why``: the
    measured reason, in words (e.g. "blended 97.2 < best single 99.4 over 2 seeds"). ``comparable=True`` when the
    setting is the paper's in kind (same task, data of the same kind), else a short reason ("stand-in data",
    "8x8 digits, not ImageNet"): the verdict is then ``not comparable (<reason>)`` and ``why`` still says whether
    the direction holds here."""
    if comparable is not True:
        verdict = f"{NOT_COMPARABLE} ({comparable})"
    elif holds is None:
        verdict = f"{NOT_COMPARABLE} (not measured)"
    else:
        verdict = SUPPORTS if holds else DOES_NOT_SUPPORT
    return {"claim": what, "paper": paper, "here": here, "verdict": verdict, "why": why}


class Diff:
    """A paired difference over seeds, compared with its noise: ``d > x`` is true only when the mean exceeds ``x``
    by more than two standard errors (``d < x`` likewise below), so a verdict never rests on seed noise; with one
    seed there is no noise estimate and no comparison holds. ``float(d)`` / ``format(d)`` give the mean."""

    def __init__(self, values):
        v = np.asarray(values, float)
        self.n = len(v)
        self.mean = float(np.mean(v))
        self.sd = float(np.std(v, ddof=1)) if self.n > 1 else float("nan")
        self.se = self.sd / np.sqrt(self.n) if self.n > 1 else float("inf")

    def __gt__(self, x):
        return self.mean - 2 * self.se > x

    def __ge__(self, x):
        return self.mean - 2 * self.se >= x

    def __lt__(self, x):
        return self.mean + 2 * self.se < x

    def __le__(self, x):
        return self.mean + 2 * self.se <= x

    def __float__(self):
        return self.mean

    def __abs__(self):
        return abs(self.mean)

    def __format__(self, spec):
        return format(self.mean, spec)

    @property
    def noise(self) -> str:
        if self.n < 2:
            return "one seed: no noise estimate"
        return "beyond 2 standard errors" if abs(self.mean) > 2 * self.se else "within 2 standard errors: seed noise"


def paired(a: Sequence[float], b: Sequence[float], scale: float = 100.0, unit: str = "points") -> tuple[Diff, str]:
    """``a - b`` paired by seed, times ``scale``: ``(Diff, "+1.23 ± 0.45 points over 3 seeds (within seed
    noise ...)")`` -- what a claim "a beats b" is judged on (see :class:`Diff`: comparisons count only beyond
    two standard errors)."""
    d = Diff((np.asarray(a, float) - np.asarray(b, float)) * scale)
    sd = 0.0 if d.n < 2 else d.sd
    return d, f"{d.mean:+.2f} ± {sd:.2f} {unit} over {d.n} seed{'s' * (d.n != 1)} ({d.noise})"


def verdict(claims: Sequence[dict], out: str | None = None) -> list[dict]:
    """Print the "paper vs here" block every experiment ends with (rows from :func:`claim`) and, with ``out``,
    write it to ``out/verdict.json``. Returns the rows."""
    claims = list(claims)
    lines = ["", "paper vs here"]
    for c in claims:
        lines += [
            f"- {c['claim']}",
            f"    paper: {c['paper']}",
            f"    here:  {c['here']}",
            f"    -> {c['verdict']}: {c['why']}",
        ]
    print("\n".join(lines), flush=True)
    if out is not None:
        write_json(out, claims, "verdict.json")
    return claims


def state_dir(*parts: str) -> str:
    """A folder written in place (checkpoints, finished-run caches): what a later run resumes from."""
    path = os.path.abspath(os.path.join(*parts))
    os.makedirs(path, exist_ok=True)
    return path


def _commit() -> list[str]:
    moved = []
    for staging, final in list(_STAGING.items()):
        for root, _, files in os.walk(staging):
            dest = os.path.join(final, os.path.relpath(root, staging))
            os.makedirs(dest, exist_ok=True)
            for f in files:
                os.replace(os.path.join(root, f), os.path.join(dest, f))
                moved.append(os.path.join(dest, f))
        shutil.rmtree(staging, ignore_errors=True)
        del _STAGING[staging]
    return moved


def _discard() -> None:
    for staging in list(_STAGING):
        shutil.rmtree(staging, ignore_errors=True)
        del _STAGING[staging]


def _empty(result) -> bool:
    return result is not None and hasattr(result, "__len__") and len(result) == 0


def experiment(main):
    """Decorator for an experiment's ``main(argv)``: results are staged (:func:`output_dir`) and moved into place
    only when ``main`` returns a non-empty result; an exception, an empty result or Ctrl-C leaves earlier results
    untouched. Ctrl-C ends with one line (exit status 130), an empty result with one line (status 1)."""

    @functools.wraps(main)
    def wrapped(argv=None):
        _ACTIVE.append(main.__module__)
        try:
            result = main(argv)
        except CheckpointError as e:  # another run's checkpoints, or none readable: one line, status 2
            _discard()
            print(f"{os.path.basename(sys.argv[0]) or 'experiment'}: error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            _discard()
            print(
                "\ninterrupted: earlier results are untouched; checkpoints are kept, so the same command resumes.",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(130) from None
        except BaseException:
            _discard()
            raise
        finally:
            _ACTIVE.pop()
        if _empty(result):
            _discard()
            print("error: the run produced no results; earlier results are untouched.", file=sys.stderr, flush=True)
            raise SystemExit(1)
        for final in sorted(set(_STAGING.values())):
            print(f"results: {final}", flush=True)
        _commit()
        return result

    return wrapped


# ------------------------------------------------------------------------------------------- command lines
# Counts that must be >= 1 (everything else of type int must be >= 0; seeds may be any int >= 0).
POSITIVE_INTS = {
    "epochs",
    "steps",
    "generations",
    "popsize",
    "trials",
    "iterations",
    "batch_size",
    "chunk",
    "bins",
    "samples",
    "sets",
    "sizes",
    "runs",
    "hidden",
    "pool",
    "per_class",
    "true_bins",
    "uap_steps",
    "uap_batch",
    "sim_samples",
    "pgd_steps",
    "n_theta",
    "n_profile",
    "noise_dim",
    "latent",
    "trees",
    "pretrain_epochs",
    "train_sets",
    "stat_batches",
    "window",
    "holdout",
    "size",
    "checkpoint_every",
    "min_iterations",
    "classes",
    "dims",
    "train_size",
    "pca",
    "top",
    "rare",
    "n_proj",
    "seeds",
}
# Floats that must be > 0, and those that must lie in [0, 1] (fractions, probabilities, pruning ratios).
POSITIVE_FLOATS = {"lr", "pretrain_lr", "model_lr", "time_limit", "sigma", "tau", "temperature"}
UNIT_FLOATS = {
    "ratio",
    "rate",
    "rates",
    "mutation_rate",
    "crossover_rate",
    "val_fraction",
    "test_size",
    "s_floor",
    "s_warmup",
    "s",
}


def _int_type(name: str, minimum: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v

    parse.__name__ = "int"
    return parse


def _float_type(name: str):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not np.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be finite, got {text}")
        if name in POSITIVE_FLOATS and v <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
        if name in UNIT_FLOATS and not 0 <= v <= 1:
            raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {v}")
        if name == "ratio" and v >= 1:  # a pruning ratio of 1 removes everything
            raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {v}")
        if name not in UNIT_FLOATS and name not in POSITIVE_FLOATS and v < 0 and not _SIGNED.search(name):
            raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
        return v

    parse.__name__ = "float"
    return parse


_SIGNED = re.compile(r"shift|bias|offset|angle")  # floats that may be negative


class _Formatter(argparse.RawTextHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and every argument's default in ``--help``."""


class Parser(argparse.ArgumentParser):
    """``argparse`` with jaxkit's rules: every default shown in ``--help``, and numbers validated by name before any
    work (counts >= 1, other ints >= 0, floats finite, learning rates > 0, fractions in [0, 1]); a bad value exits
    with status 2 and one line naming the flag."""

    def __init__(self, description: str | None = None, **kw):
        kw.setdefault("formatter_class", _Formatter)
        super().__init__(description=description, **kw)

    def add_argument(self, *names, **kw):
        if names and names[0].startswith("-") and not kw.get("action"):
            dest = kw.get("dest") or max(names, key=len).lstrip("-").replace("-", "_")
            if kw.get("type") is int:
                seedlike = "seed" in dest and not (dest == "seeds" and "nargs" not in kw)
                kw["type"] = _int_type(dest, 1 if dest in POSITIVE_INTS and not seedlike else 0)
            elif kw.get("type") is float:
                kw["type"] = _float_type(dest)
        if not kw.get("help"):
            kw["help"] = "(default: %(default)s)"
        return super().add_argument(*names, **kw)


def parser(doc: str | None) -> Parser:
    return Parser(doc)


def pyplot():
    """``matplotlib.pyplot`` with a non-interactive backend, or ``None`` if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping plots (pip install 'jaxkit-papers[plot]').")
        return None
    return plt


def map_grid(plt, grid: dict, cols, rows: int, is_image, label: str):
    """A ``rows x len(cols)`` figure of ``grid[col][i]`` maps in [0, 1]: inputs (``is_image(col)``) in grey, maps in
    "jet" with one shared colour bar labelled ``label``. Returns the figure."""
    fig, axes = plt.subplots(
        rows, len(cols), figsize=(1.6 * len(cols) + 0.8, 1.6 * rows), squeeze=False, layout="constrained"
    )
    for i in range(rows):
        for j, c in enumerate(cols):
            axes[i, j].imshow(np.asarray(grid[c][i]), cmap="gray" if is_image(c) else "jet", vmin=0, vmax=1)
            axes[i, j].axis("off")
            if i == 0:
                axes[i, j].set_title(c, fontsize=8)
    fig.colorbar(plt.cm.ScalarMappable(cmap="jet", norm=plt.Normalize(0, 1)), ax=axes, shrink=0.6, label=label)
    return fig


def save_figure(fig, out: str, name: str, dpi: int = 120) -> str:
    """Save ``fig`` as ``out/name`` (tight layout unless it has a layout engine), close it, print and return the
    path."""
    import matplotlib.pyplot as plt

    path = os.path.join(out, name)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    print(f"plot: {path}")
    return path


def load_dataset(name: str, data_dir: str | None = None):
    """``"digits"`` (scikit-learn's bundled 8x8 digits) or ``"tfds:NAME"`` (prepared offline in ``data_dir``)."""
    from jaxkit import data

    if name == "digits":
        return data.load_digits(seed=0)
    if name.startswith("tfds:"):
        return data.load_tfds(name[5:], data_dir=data_dir)
    raise SystemExit(f"--dataset must be 'digits' or 'tfds:NAME', got {name!r}")


def parse_cfg(text: str) -> tuple:
    """VGG config from ``"16,16,M,32,32,M"``."""
    return tuple("M" if c.strip().upper() == "M" else int(c) for c in text.split(","))


def pretrain_vgg(
    ds,
    cfg,
    seed: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    batch_norm: bool = True,
    checkpoint_dir: str | None = None,
    augment=None,
):
    """Train ``VGG(cfg)`` with Adam (cosine decay) from ``jax.random.key(seed)``; returns ``(model, state)``.

    The unpruned starting point shared by the pruning experiments (resumable with ``checkpoint_dir``);
    ``augment``: see :func:`augmentation`.
    """
    import jax
    import optax

    from jaxkit import models

    model = models.VGG(cfg=tuple(cfg), num_classes=ds.num_classes, batch_norm=batch_norm)
    k_init, k_train = jax.random.split(jax.random.key(seed))
    steps = max(epochs * (len(ds.train) // batch_size), 1)
    state = models.create_train_state(k_init, model, ds.train.x[:1], optax.adam(optax.cosine_decay_schedule(lr, steps)))
    state, _ = models.train(
        state,
        ds,
        key=k_train,
        epochs=epochs,
        batch_size=batch_size,
        progress=False,
        checkpoint_dir=checkpoint_dir,
        config={"lr": lr, "epochs": epochs},
        augment=augment,
    )
    return model, state


def pretrain_from_args(args, ds, cfg, seed: int, checkpoint_dir: str | None = None):
    """:func:`pretrain_vgg` with the flags of :func:`pretrain_parser` (``--pretrain-epochs``, ``--pretrain-lr``,
    ``--batch-size``, ``--augment``)."""
    return pretrain_vgg(
        ds,
        cfg,
        seed,
        epochs=args.pretrain_epochs,
        batch_size=args.batch_size,
        lr=args.pretrain_lr,
        checkpoint_dir=checkpoint_dir,
        augment=augmentation(args),
    )


def narrow_cfg(cfg, kept: dict) -> tuple:
    """The VGG config after pruning: conv ``i`` keeps ``kept["params/Conv_i"]`` channels."""
    out, i = [], 0
    for v in cfg:
        if v == "M":
            out.append(v)
        else:
            out.append(int(kept.get(f"params/Conv_{i}", v)))
            i += 1
    return tuple(out)


def small_state(model, variables, sample, tx):
    """A TrainState for ``model`` holding ``variables`` (e.g. a pruned, narrower params tree)."""
    import jax

    from jaxkit import models

    state = models.create_train_state(jax.random.key(0), model, sample, tx)
    return state.replace(
        params=variables["params"], batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(variables["params"])
    )


def pretrain_parser(doc: str):
    """An argparse parser with the flags shared by the pruning experiments (data, VGG config, pre-training)."""

    p = parser(doc)
    p.add_argument("--dataset", default="digits", help="'digits' or 'tfds:NAME' (prepared offline)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--cfg", default="16,16,M,32,32,M", help="VGG config: conv widths and M for max-pool")
    p.add_argument("--pretrain-epochs", type=int, default=15)
    p.add_argument("--pretrain-lr", type=float, default=3e-3, help="Adam lr of the unpruned network (cosine)")
    add_augment_flag(p)
    return p


def add_augment_flag(p) -> None:
    """``--augment auto|on|off``: the standard CIFAR augmentation of every training batch (see :func:`augmentation`)."""
    p.add_argument(
        "--augment",
        choices=["auto", "on", "off"],
        default="auto",
        help="random 4-pixel-padded crop + horizontal flip of every training batch (jaxkit.data.random_crop_flip, "
        "the CIFAR papers' augmentation); auto: on for tfds:cifar* datasets, off otherwise",
    )


def augmentation(args):
    """``jaxkit.data.random_crop_flip`` when ``--augment`` asks for it (``auto``: a CIFAR dataset), else ``None``:
    pass it as ``augment=`` to ``models.train`` / ``prune.blend_search.masked_finetune`` or call it in a step."""
    from jaxkit import data

    on = args.augment == "on" or (args.augment == "auto" and "cifar" in str(args.dataset).lower())
    return data.random_crop_flip if on else None


def narrow_resnet(model, graph, masks):
    """The ``models.ResNet`` whose widths match ``prune.remove(graph, masks, ...)`` of ``model``."""
    from jaxkit import models, prune

    kept = prune.kept_counts(graph, masks)
    n_blocks = sum(model.stage_sizes)
    inner = tuple(kept[f"params/BasicBlock_{i}/Conv_0"] for i in range(n_blocks))
    ends = list(np.cumsum(model.stage_sizes) - 1)
    widths = tuple(kept.get(graph.group(f"params/BasicBlock_{i}/Conv_1").name, w) for i, w in zip(ends, model.widths))
    return models.ResNet(
        model.stage_sizes, widths, model.num_classes, model.shortcut, model.bn_momentum, inner_widths=inner
    )


def make_epoch(step, x, y, *, batch_size: int, augment=None):
    """``epoch(state, key) -> (state, losses)``: ``step(state, xb, yb, key) -> (state, loss)`` over one epoch's
    shuffled minibatches (the last partial batch dropped), one jitted step per minibatch. Build it once per
    configuration and reuse it for every seed (one compile). ``augment(key, xb) -> xb`` (:func:`augmentation`)
    transforms each minibatch first, with its own key.

    The minibatches are *not* fused into one ``lax.scan``: on XLA:CPU a scanned training step with convolutions
    ran ~20x slower than the same step called from Python (jax 0.10; see docs/design-notes.md). Seeds are not
    vmapped either: a vmapped conv becomes a grouped conv, also slow on CPU.
    """
    import jax
    import jax.numpy as jnp

    x, y = jnp.asarray(x), jnp.asarray(y)
    nb = len(x) // batch_size
    one = jax.jit(step)
    aug = jax.jit(augment) if augment is not None else None

    def epoch(state, k):
        k_perm, k_steps = jax.random.split(k)
        idx = jax.random.permutation(k_perm, len(x))[: nb * batch_size].reshape(nb, batch_size)
        losses = []
        for b in range(nb):
            xb = x[idx[b]]
            if aug is not None:
                xb = aug(jax.random.fold_in(jax.random.fold_in(k_steps, b), 1), xb)
            state, loss = one(state, xb, y[idx[b]], jax.random.fold_in(k_steps, b))
            losses.append(loss)
        return state, jnp.stack(losses)

    return epoch


def classifier_step(apply, tx, batch_norm: bool):
    """A cross-entropy training step for :func:`make_epoch` over ``state = (variables, opt_state)``.

    ``apply(variables, x, train=True[, mutable=["batch_stats"]])`` gives logits; with ``batch_norm`` the updated
    running statistics are kept."""
    import jax
    import optax

    def step(state, xb, yb, key):
        v, o = state

        def loss_fn(p):
            if batch_norm:
                logits, upd = apply({**v, "params": p}, xb, train=True, mutable=["batch_stats"])
            else:
                logits, upd = apply({**v, "params": p}, xb, train=True), {}
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), upd

        (loss, upd), g = jax.value_and_grad(loss_fn, has_aux=True)(v["params"])
        u, o = tx.update(g, o, v["params"])
        return ({**v, **upd, "params": optax.apply_updates(v["params"], u)}, o), loss

    return step


def fit_epochs(epoch, state, key, *, epochs: int, on_epoch=None):
    """Run ``epochs`` calls of a :func:`make_epoch` function (epoch ``e`` uses ``fold_in(key, e)``);
    ``on_epoch(e, state, mean_loss)`` after each. Returns ``(state, [mean loss per epoch])``."""
    import jax
    import jax.numpy as jnp

    losses = []
    for e in range(epochs):
        state, ls = epoch(state, jax.random.fold_in(key, e))
        losses.append(float(jnp.mean(ls)))
        if on_epoch is not None:
            on_epoch(e, state, losses[-1])
    return state, losses


def accuracy(predict, x, y, batch_size: int = 512) -> float:
    """Share of ``argmax predict(xb)`` equal to ``y``, in batches."""
    import numpy as _np

    hits = 0
    for i in range(0, len(x), batch_size):
        hits += int(
            _np.sum(_np.asarray(predict(x[i : i + batch_size])).argmax(-1) == _np.asarray(y[i : i + batch_size]))
        )
    return hits / len(x)
