"""Shared test set-up: a persistent JAX compilation cache and small shared fixtures."""

import os

import jax
import pytest

# Compiled executables are reused across test processes and runs; keeps the suite's compile time down.
jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/jaxkit/jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def digits():
    from jaxkit import data

    return data.load_digits(seed=0)
