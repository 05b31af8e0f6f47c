"""Shared test set-up: a persistent JAX compilation cache and small shared fixtures."""

import os

import jax
import pytest

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
# Golden reference data lives in ../shared beside the checkout (as in CI); JAXKIT_SHARED_DIR overrides.
SHARED = os.environ.get("JAXKIT_SHARED_DIR", os.path.join(os.path.dirname(REPO), "shared"))


def golden_file(*parts):
    """Path of a file under shared/data; skips the test (saying why) when the data is not there."""
    path = os.path.join(SHARED, "data", *parts)
    if not os.path.exists(path):
        pytest.skip(f"golden data {path} not found (set JAXKIT_SHARED_DIR to the shared/ folder)")
    return path


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def digits():
    from jaxkit import data

    return data.load_digits(seed=0)


def run_forced_devices(n: int, code: str) -> str:
    """Run ``code`` in a fresh Python with ``n`` forced host CPU devices; assert it exits 0 and prints ``ok``."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import textwrap  # noqa: PLC0415

    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout.lower(), r.stdout + r.stderr
    return r.stdout
