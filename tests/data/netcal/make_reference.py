"""Writes reference.npz: netcal's ECE / MCE on fixed inputs, for tests/test_calibration.py.

netcal pulls torch (with CUDA libraries), pyro and gpytorch, so it is never a test dependency: its outputs on
fixed inputs are stored here instead, with this script and the versions that produced them.

Reproduce (a throwaway environment; netcal's metrics need torch only to import):

    python -m venv /tmp/ncenv
    /tmp/ncenv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/ncenv/bin/pip install --no-deps netcal==1.4.0
    /tmp/ncenv/bin/pip install numpy scipy matplotlib scikit-learn tqdm
    /tmp/ncenv/bin/python tests/data/netcal/make_reference.py

The inputs are stored next to the outputs, so the test does not depend on this script's random draws.
"""

from __future__ import annotations

import os

import netcal
import numpy as np
import scipy
from netcal.metrics import ECE, MCE

HERE = os.path.dirname(os.path.abspath(__file__))


def binary(n, power, seed):
    """Scores s ~ U(0, 1) as a two-class problem whose class-1 events are Bernoulli(s^power)."""
    rng = np.random.default_rng(seed)
    s = rng.random(n).astype(np.float32)
    y = (rng.random(n) < s**power).astype(np.int32)
    return np.stack([1 - s, s], 1), y


def multiclass(n, c, temperature, seed):
    """Over-confident softmax outputs: labels drawn from softmax(z), reported probabilities softmax(z / T)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * 2.0
    true = np.exp(z - z.max(1, keepdims=True))
    true /= true.sum(1, keepdims=True)
    y = np.array([rng.choice(c, p=row) for row in true], np.int32)
    shown = np.exp(z / temperature - (z / temperature).max(1, keepdims=True))
    return (shown / shown.sum(1, keepdims=True)).astype(np.float32), y


def main():
    cases = {"binary": binary(5000, 2, 0), "multiclass": multiclass(3000, 5, 0.6, 1)}
    out = {
        "netcal_version": np.array(netcal.__version__),
        "numpy_version": np.array(np.__version__),
        "scipy_version": np.array(scipy.__version__),
    }
    for name, (p, y) in cases.items():
        out[f"{name}/probs"], out[f"{name}/labels"] = p, y
        for b in (10, 15):
            out[f"{name}/ece_uniform_{b}"] = np.float64(ECE(b).measure(p, y))
            out[f"{name}/ece_adaptive_{b}"] = np.float64(ECE(b, equal_intervals=False).measure(p, y))
            out[f"{name}/mce_uniform_{b}"] = np.float64(MCE(b).measure(p, y))
    np.savez_compressed(os.path.join(HERE, "reference.npz"), **out)
    for k, v in out.items():
        if v.ndim == 0:
            print(k, v)


if __name__ == "__main__":
    main()
