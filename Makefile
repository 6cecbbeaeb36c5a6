# cryptovol: `make run` rebuilds the pipeline, `make test` checks everything.
# Both create .venv (Python 3.12) and install the package on first use.
SHELL := /bin/bash
export TF_CPP_MIN_LOG_LEVEL ?= 2
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo python3)
STAMP := $(VENV)/.installed
# The offline mirror beside the checkout is used for tests when nothing else is configured.
TEST_DATA_DIR := $(or $(CRYPTOVOL_DATA_DIR),$(if $(wildcard ../shared/data/yahoo),$(abspath ../shared/data),))

.PHONY: setup run test export-check nbtest pytest clean lab report
setup: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 12), f"cryptovol needs Python >= 3.12 (pandas-ta); found {sys.version.split()[0]} at {sys.executable}. Install 3.12 (pyenv install 3.12) or run: make PYTHON=/path/to/python3.12"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python settings.ini setup.py
	$(BIN)/python -m pip install --quiet -e ".[dev,sweep]"   # sweep: Ray Tune + Optuna, so the tests cover `cryptovol sweep`
	@touch $(STAMP)

run: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

export-check: setup
	$(BIN)/nbdev_export
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  if [ -n "$$(git status --porcelain -- cryptovol)" ]; then \
	    echo "nbdev_export changed cryptovol/: the package is out of date with nbs/. Commit the exported files."; \
	    git status --short -- cryptovol; exit 1; \
	  else echo "cryptovol/ matches nbs/ (nbdev_export changed nothing)"; fi; \
	else echo "not a git checkout: skipping the export drift check"; fi

nbtest: setup
	CRYPTOVOL_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/nbdev_test --n_workers 2

pytest: setup
	CRYPTOVOL_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest -q tests

test: export-check nbtest pytest

lab: setup
	$(BIN)/jupyter lab nbs

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
