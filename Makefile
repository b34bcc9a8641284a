# Every target installs what it needs: a fresh machine needs only Python 3.11+.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv

.PHONY: run test lint bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "hookd needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check uv

$(VENV)/.runtime: requirements.lock pyproject.toml | $(UV)
	$(UV) pip install -q --python $(BIN)/python -r requirements.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml | $(UV)
	$(UV) pip install -q --python $(BIN)/python -r requirements-dev.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

run: $(VENV)/.runtime
	$(BIN)/hookd serve

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(VENV)/.dev
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(VENV)/.dev
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
