# The two commands: `make run` (the whole service, embedded defaults, demo data) and
# `make test` (lint, types, and the whole suite against real PostgreSQL, Redis and workers).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-unit lint bench chaos install install-dev clean

$(BIN)/python:
	sh scripts/make-venv.sh $(PYTHON) $(VENV)

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --disable-pip-version-check -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/python -m scripts.run

LINTED := app sagas tasks tests scripts bench alembic celery_worker.py wsgi.py gunicorn.conf.py

# The same checks run before each commit once `.venv/bin/pre-commit install` is done
# (.pre-commit-config.yaml).
lint: install-dev
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy app sagas tasks
	$(BIN)/python scripts/check_sizes.py
	$(BIN)/lint-imports .importlinter

test: lint
	$(BIN)/pytest

test-unit: install-dev
	$(BIN)/pytest tests/unit

# Everyday orders on the real stack beside the machine's own limits (bench/everyday.py), how late
# payment timeouts land (bench/timeouts.py), then the same orders as the database grows and with
# 100,000 orders awaiting payment (bench/growth.py).
bench: install-dev
	$(BIN)/python -m bench.everyday
	$(BIN)/python -m bench.timeouts
	$(BIN)/python -m bench.growth

# A seeded run of orders under faults on the real stack, then the checker (tests/chaos/run.py,
# docs/reliability.md). The short profile also runs inside `make test`, on each broker.
PROFILE ?= short
SEED ?= 1
BROKER ?= redis
chaos: install-dev
	$(BIN)/python -m tests.chaos.run --profile $(PROFILE) --seed $(SEED) --broker $(BROKER)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
