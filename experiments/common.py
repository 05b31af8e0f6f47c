"""Helpers shared by the experiment scripts: configuration echo, mean ± std tables, plots.

Experiments are run as ``python experiments/<name>.py``; this file sits next to
them, so ``import common`` works without installing anything extra.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence

import numpy as np


def print_config(args, extra: dict | None = None) -> dict:
    """Print the run's full configuration (flags, seeds, versions) as JSON and return it."""
    import jax  # noqa: PLC0415

    import jaxkit  # noqa: PLC0415

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


def output_dir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


def pyplot():
    """``matplotlib.pyplot`` with a non-interactive backend, or ``None`` if matplotlib is missing."""
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        print("matplotlib is not installed: skipping plots (pip install 'jaxkit[plot]').")
        return None
    return plt


def load_dataset(name: str, data_dir: str | None = None):
    """``"digits"`` (scikit-learn's bundled 8x8 digits) or ``"tfds:NAME"`` (prepared offline in ``data_dir``)."""
    from jaxkit import data  # noqa: PLC0415

    if name == "digits":
        return data.load_digits(seed=0)
    if name.startswith("tfds:"):
        return data.load_tfds(name[5:], data_dir=data_dir)
    raise SystemExit(f"--dataset must be 'digits' or 'tfds:NAME', got {name!r}")


def parse_cfg(text: str) -> tuple:
    """VGG config from ``"16,16,M,32,32,M"``."""
    return tuple("M" if c.strip().upper() == "M" else int(c) for c in text.split(","))

