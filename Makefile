# matcher: `make help` lists the targets. Everything runs in .venv, made on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
WORLD ?= world
HOUSEHOLDS ?=
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# test processes (pytest-xdist): the suite's tests are independent (each has its own database or schema)
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup run world import train serve admin test test-fast bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed ## Make .venv and install matcher with its test tools

world: setup ## Generate the default synthetic Rizhao world into ./world (HOUSEHOLDS=N for a smaller one)
	$(BIN)/matcher generate --out $(WORLD) --seed 0 $(if $(HOUSEHOLDS),--households $(HOUSEHOLDS))

import: world ## Create the database (SQLite under instance/) and import ./world, keeping what the service recorded
	$(BIN)/matcher db init
	$(BIN)/matcher db import $(WORLD) --keep-stored

train: world ## Train the model on ./world's referrals (artifact in models/)
	$(BIN)/matcher train $(WORLD) --out models

serve: setup ## Serve the API and pages on http://$(HOST):$(PORT)
	$(BIN)/matcher serve --host $(HOST) --port $(PORT)

run: import train serve ## Set everything up and serve: world, database, model, service

admin: setup ## Create the first admin account (login: admin); prints its password on the last line
	$(BIN)/matcher db init
	$(BIN)/matcher user create --role admin --login admin --display-name 管理员 --generate

test: setup ## Run the whole test suite (PostgreSQL tests skip when it is unreachable, fail in CI)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: setup ## Run the benchmarks and rewrite their figures under bench/
	$(BIN)/pip install --quiet -e '.[test,bench,distributed]'
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean: ## Remove the venv, the generated world, the database and trained models
	rm -rf $(VENV) $(WORLD) instance/*.db* models/*.joblib models/*.json
