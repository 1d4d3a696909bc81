# LEAD Partner Portal. `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test test-tools lint typecheck pytest install benchmarks clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

demo: install ## Create, migrate and seed the demo database, then serve http://127.0.0.1:8000
	$(BIN)/portal demo

test: install test-tools lint typecheck pytest ## Everything CI runs: ruff, mypy --strict, pytest (SQLite + PostgreSQL)

lint: install ## ruff
	$(BIN)/ruff check .

typecheck: install ## mypy --strict on portal/
	$(BIN)/mypy

# Unit plus integration tests run first, with branch coverage (printed; below the floor fails),
# then the end-to-end tests (HTTP and browser), which are not counted in the coverage.
COVERAGE_FLOOR ?= 85

pytest: install test-tools ## The test suite on SQLite and PostgreSQL (PORTAL_TEST_POSTGRES_URL)
	$(BIN)/pytest tests/unit tests/integration --cov --cov-report=term:skip-covered \
		--cov-fail-under=$(COVERAGE_FLOOR)
	$(BIN)/pytest tests/e2e

test-tools: ## Chromium and node_modules (oidc-provider, axe-core) for the browser tests
	bash scripts/ensure-test-tools.sh

benchmarks: install ## Run the benchmarks (see README)
	bash scripts/ensure-test-tools.sh bench
	$(BIN)/python -m benchmarks

install: $(STAMP) ## Create .venv and install the portal with its development tools

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11+"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var
