# Two entry points for a fresh clone (only Python >= 3.10 and pip needed):
#   make demo   -- create .venv, install jaxkit, train the digits CNN
#   make test   -- create .venv, install jaxkit with test extras, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# pytest-xdist workers; JAX compile time dominates the suite, so two processes use both cores. --dist loadgroup
# keeps tests that share one compiled program (xdist_group) on one worker, so the persistent cache serves them.
WORKERS ?= 2

.PHONY: demo test test-fast bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-demo: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e ".[plot]"
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python experiments/train_digits.py

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup tests

test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup -m "not slow" tests

bench: $(VENV)/.installed-test
	for f in benchmarks/*.py; do [ "$$(basename $$f)" = common.py ] || $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) results .pytest_cache
