# cryptovol: `make run` rebuilds the pipeline, `make test` checks everything.
# Both create .venv (Python 3.12) and install the package on first use.
SHELL := /bin/bash
export TF_CPP_MIN_LOG_LEVEL ?= 2
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo python3)
STAMP := $(VENV)/.installed
# Test data: $CRYPTOVOL_DATA_DIR, else the offline mirror beside the checkout; market data is never in the repository.
# With neither, the tests that need data skip with the one-line reason and the notebook tests are skipped (and say so).
TEST_DATA_DIR := $(or $(CRYPTOVOL_DATA_DIR),$(if $(wildcard ../shared/data/yahoo),$(abspath ../shared/data),))
NO_DATA := no data folder: set CRYPTOVOL_DATA_DIR or place the offline mirror at ../shared/data

.PHONY: setup run refresh test export-check lint nbtest pytest clean lab report browser docs docs-check screenshots
setup: $(STAMP)
DOCS_STAMP := $(VENV)/.installed-docs
CHROMIUM ?= $(or $(CRYPTOVOL_CHROMIUM),$(shell command -v chromium 2>/dev/null),/usr/bin/chromium)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 12), f"cryptovol needs Python >= 3.12 (pandas-ta); found {sys.version.split()[0]} at {sys.executable}. Install 3.12 (pyenv install 3.12) or run: make PYTHON=/path/to/python3.12"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python settings.ini setup.py
	$(BIN)/python -m pip install --quiet -e ".[dev,sweep]"   # sweep: Ray Tune + Optuna, so the tests cover `cryptovol sweep`
	@touch $(STAMP)

run: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	@echo; echo "Reports: $(CURDIR)/reports/index.html (per coin: reports/COIN/html/, metrics: reports/COIN/metrics.json)"
	@echo "Summary (reports/summary.md):"; echo; cat reports/summary.md

# Live data: merge the newest Yahoo prices and Fear & Greed values into data/raw/ (needs the network).
# (`make run` itself reads $CRYPTOVOL_DATA_DIR, else ../shared/data, else the live services.)
refresh: setup
	$(BIN)/cryptovol download --live
	@echo "data/raw/ refreshed from the live services; \`make run\` (dvc repro) now rebuilds on it"

export-check: setup
	$(BIN)/nbdev_export
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  if [ -n "$$(git status --porcelain -- cryptovol)" ]; then \
	    echo "nbdev_export changed cryptovol/: the package is out of date with nbs/. Commit the exported files."; \
	    git status --short -- cryptovol; exit 1; \
	  else echo "cryptovol/ matches nbs/ (nbdev_export changed nothing)"; fi; \
	else echo "not a git checkout: skipping the export drift check"; fi

# pyflakes' checks with ruff (pyproject.toml [tool.ruff]): the package, the notebooks, tests, benchmarks, docs scripts
# `ruff format` and lines <= 100 hold for every notebook, test, benchmark and docs script (the exported package
# cryptovol/ is nbdev's output: its __all__ blocks are nbdev's layout, so it is checked by `ruff check` only)
FORMATTED := $(wildcard nbs/*.ipynb tests/*.py benchmarks/*.py docs/*.py)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check $(FORMATTED)
	$(BIN)/ruff check --select E501 $(FORMATTED)

# nbdev_test's run (docs/run_notebooks.py: the same cells skipped, the same failures, 2 workers) that also keeps each
# notebook's outputs in _docs_src/executed/ (git-ignored) for the docs site, so `make test` runs the notebooks once
nbtest: setup
	@if [ -z "$(TEST_DATA_DIR)" ]; then echo "nbtest: SKIPPED, the notebooks demonstrate on real data: $(NO_DATA)"; \
	else CRYPTOVOL_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/python docs/run_notebooks.py --n_workers 2; fi

# two processes (pytest-xdist); a test file stays in one, the Ray tests share one (tests/conftest.py)
PYTEST_WORKERS ?= 2
pytest: setup browser
	$(if $(TEST_DATA_DIR),CRYPTOVOL_DATA_DIR=$(TEST_DATA_DIR)) $(BIN)/pytest -q -rs -n $(PYTEST_WORKERS) --dist loadgroup --durations=30 tests

# Headless Chromium for the browser test (tests/test_report_browser.py): Debian's package, since Playwright cannot
# download its own browser offline. Installed with apt when missing and we are root; otherwise the test skips and says why.
browser:
	@if [ -x "$(CHROMIUM)" ]; then echo "browser: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "browser: installing Debian's chromium"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "browser: apt-get install chromium failed; the browser test will be skipped"; \
	else echo "browser: no chromium and cannot apt-get install it (not root); the browser test will be skipped"; fi

# The documentation site: README + notebooks + API into _docs/ (MkDocs Material, mkdocs-jupyter, mkdocstrings; offline).
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,sweep,docs]"
	@touch $@

# Notebook pages show the outputs of `make nbtest`'s executed copies; a notebook without a current copy is run here on the
# data folder, or (no data folder) shown without outputs, and the build lists those pages.
docs: $(DOCS_STAMP)
	$(if $(TEST_DATA_DIR),CRYPTOVOL_DATA_DIR=$(TEST_DATA_DIR)) NO_MKDOCS_2_WARNING=1 $(BIN)/python docs/build_docs.py

docs-check: docs
	@test -s _docs/index.html && test -s _docs/api/report.html && echo "docs-check: _docs/index.html and the API pages exist" \
	  || { echo "docs-check: _docs/index.html or _docs/api/report.html missing after make docs"; exit 1; }
	@$(if $(TEST_DATA_DIR),CRYPTOVOL_DATA_DIR=$(TEST_DATA_DIR)) $(BIN)/python docs/build_docs.py --check

# Screenshots for README (docs/*.png) of the reports a full `make run` wrote.
screenshots: setup browser
	$(BIN)/python docs/screenshots.py

test: export-check lint nbtest pytest docs-check

lab: setup
	$(BIN)/jupyter lab nbs

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis _docs _docs_src
