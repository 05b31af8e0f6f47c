"""Shared test set-up: a persistent JAX compilation cache and small shared fixtures."""

import os

import jax
import numpy as np
import pytest

# Any skip fails the run unless tests/skip_policy.py allows it (pytester: testing that policy itself).
pytest_plugins = ["skip_policy", "pytester"]

# Compiled executables are reused across test processes and runs; keeps the suite's compile time down.
# JAXKIT_JAX_CACHE_DIR overrides the location (an empty folder measures a cold CI run). The environment variables
# carry the same settings into notebook kernels and forced-device subprocesses.
CACHE_DIR = os.environ.get("JAXKIT_JAX_CACHE_DIR", os.path.expanduser("~/.cache/jaxkit/jax_cache"))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", CACHE_DIR)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Longest tests first (longest-processing-time-first scheduling): pytest-xdist hands out tests in collection order,
# so a long test collected last leaves the other worker idle at the end of a pass. Seconds per test on 2 CPU cores
# with a cold compilation cache (from --durations); a test that is not listed keeps its place after these.
# The WGAN-GP runs share one xdist_group (one compiled step via the persistent cache) and run in a row.
LONG_TESTS = {
    "test_hyperspectral_gan_detects": 97,
    "test_notebook_runs_top_to_bottom[hyperspectral_anomaly": 96,
    "test_hyperspectral_experiment_resumes": 95,
    "test_blend_prune_digits": 90,
    "test_gator_digits": 39,
    "test_pruned_yolo_digits": 39,
    "test_runs_killed_at_random_moments": 60,
    "test_notebook_runs_top_to_bottom[lipschitz": 33,
    "test_notebook_runs_top_to_bottom[evolution": 31,
    "test_place_runs_shards": 28,
    "test_softrmax_robustness_experiment": 25,
    "test_lipbab_table1_reproduces": 24,
    "test_nsga2_sharded_evaluation": 22,
    "test_dense_grid_lower_bound": 19,
    "test_removal_through_flatten": 15,
    "test_vmapped_runs_equal": 14,
    "test_recreation_cost_finds": 14,
    "test_site_builds_strict": 19,
}


def pytest_collection_modifyitems(config, items):
    def weight(item):
        return max((w for k, w in LONG_TESTS.items() if k in item.nodeid), default=0)

    items.sort(key=lambda it: -weight(it))  # stable: the rest keep their collection order


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def digits():
    from jaxkit import data

    return data.load_digits(seed=0)


def run_forced_devices(n: int, code: str) -> str:
    """Run ``code`` in a fresh Python with ``n`` forced host CPU devices; assert it exits 0 and prints ``ok``."""
    import subprocess
    import sys
    import textwrap

    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0 and "ok" in r.stdout.lower(), r.stdout + r.stderr
    return r.stdout


# Class decisions from two different programs (vmap vs loop, masked vs physically removed, jit vs eager) agree only
# up to rounding: a sample whose two top logits are within rounding of a tie may go either way. These helpers
# compare decisions exactly everywhere else. TIE_TOL is relative to the sample's largest |logit| (float32 programs
# that differ in summation order differ by a few ulps, ~1e-7 relative; 1e-5 leaves a wide margin).
TIE_TOL = 1e-5


def _near_tie(ref_logits, tol):
    z = np.asarray(ref_logits, np.float64)
    top2 = np.sort(z, axis=-1)[..., -2:]
    return (top2[..., 1] - top2[..., 0]) <= tol * np.maximum(1.0, np.abs(z).max(-1))


def assert_same_predictions(pred, ref_logits, *, tol=TIE_TOL):
    """``pred`` (class indices) equal ``argmax(ref_logits)`` except on near-tied samples (any tied class passes)."""
    pred, z = np.asarray(pred), np.asarray(ref_logits, np.float64)
    tie = _near_tie(z, tol)
    ok = pred == z.argmax(-1)
    close = z.max(-1) - np.take_along_axis(z, pred[..., None], -1)[..., 0] <= tol * np.maximum(1.0, np.abs(z).max(-1))
    assert np.all(ok | (tie & close)), f"{int(np.sum(~(ok | (tie & close))))} decisions differ away from a tie"


def assert_accuracy_close(acc, ref_logits, labels, *, tol=TIE_TOL):
    """An accuracy equals ``mean(argmax(ref_logits) == labels)`` up to the near-tied samples (1/N each)."""
    z, y = np.asarray(ref_logits), np.asarray(labels)
    ref = np.mean(z.argmax(-1) == y)
    slack = np.sum(_near_tie(z, tol)) / len(y)
    assert abs(float(acc) - ref) <= slack + 1e-7, (float(acc), ref, slack)
