# Cutline: `make run` starts the whole system, `make test` checks it. Neither needs
# anything running beforehand: both start a bundled Redis unless REDIS_URL is set.

VENV := .venv
PY := $(VENV)/bin/python
# The venv is rebuilt only when a requirements file changes: the stamp is newer than both.
STAMP := $(VENV)/.installed
# Prefer the Python the project is pinned to; fall back to whatever python3 is.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
WORKERS ?= 2
PORT ?= 8000
HOST ?= 127.0.0.1
PYTEST_ARGS ?=
# tests/conftest.py sets the settings module itself, after isolating var/ (see there).
PYTEST := env -u DJANGO_SETTINGS_MODULE $(PY) -m pytest
LINT_TYPED := cluster/core/algorithm.py cluster/core/fifo.py cluster/core/process.py cluster/core/verdict.py cluster/core/links.py cluster/core/restore.py cluster/core/conditions.py cluster/core/detectors.py cluster/core/compare.py cluster/core/workloads.py

.PHONY: venv run test test-integration test-integration-broker lint bench clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: venv
	$(PY) manage.py serve --workers $(WORKERS) --port $(PORT) --host $(HOST)

test: venv
	$(PYTEST) tests/unit tests/integration tests/e2e $(PYTEST_ARGS)

test-integration: venv
	$(PYTEST) tests/integration $(PYTEST_ARGS)

# The tests whose behaviour rests on the broker, for running again on another broker.
test-integration-broker: venv
	$(PYTEST) tests/integration/engine tests/integration/services -m workers $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy cluster/core
	$(VENV)/bin/lint-imports

bench: venv
	$(PY) -m bench

# var/ (the database, the admin's account, the secret key) is data, not build output:
# remove it by hand to start from scratch.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis bench/artifacts tests/artifacts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
