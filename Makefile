# Entry points. Every target works on a fresh machine: it installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv lint unit e2e test build cluster-up cluster-down cluster-status nodes demo demo-down bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed  ## the Python environment with the dev tools

lint: venv  ## ruff, mypy and the import layering contract
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: venv  ## pure tests, no cluster
	$(BIN)/pytest -q tests/unit

build:  ## build (or find) the control-plane binaries; cached outside the tree
	hack/build

cluster-up: build  ## start the local control plane with the simulated GPU fleet
	hack/up
	hack/nodes

cluster-down:  ## stop everything cluster-up started
	hack/down

cluster-status:
	hack/status

e2e: venv build  ## e2e tests on the local control plane (uses a running one, else starts and stops its own)
	hack/e2e

test: venv build  ## lint, unit and e2e tests: what CI runs
	$(MAKE) lint
	$(BIN)/pytest -q tests/unit
	hack/e2e

bench: venv  ## benchmarks: print figures (see docs/benchmarks.md)
	$(BIN)/python -m bench

demo: venv build  ## the main job: cluster, fleet, operator, examples, and what they became
	hack/demo

demo-down:  ## stop the demo's operator and cluster
	hack/demo-down

clean:
	rm -rf $(VENV) .cluster .mypy_cache .pytest_cache .ruff_cache
