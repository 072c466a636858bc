# Thin targets. Every target depends on `setup`, so on a fresh clone `make demo` and
# `make test` are each one command. uv comes from PyPI if it is missing: scripts/bootstrap_uv.py fetches
# the pinned uv wheel into .tools/bin with the standard library alone, so a stock python3 that is
# externally managed (PEP 668) and has no pip or venv module is enough; no sudo.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
SYNC_QUIET := $(shell [ -t 2 ] || echo --quiet)  # progress bars on a terminal, quiet in CI logs
RUN := $(UV) run --frozen
PYTEST_ARGS ?=
IMAGE_TAGS_ARGS ?=

.PHONY: setup demo test lint format bench ui clean image-tags

setup: .venv/.synced-bytecode

# --compile-bytecode: the libraries' .pyc files are written once here, not on every start by every
# process (where PYTHONDONTWRITEBYTECODE is set, Python never writes them, and each `mlops-lab demo`
# then compiled MLflow, Prefect, Great Expectations and Evidently from source: about 7 s a run).
.venv/.synced-bytecode: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 scripts/bootstrap_uv.py --dest .tools >/dev/null
	@echo "setup: installing the locked environment into .venv (the first time downloads about 1 GB)"
	$(UV) sync --frozen $(SYNC_QUIET) --compile-bytecode
	@touch $@

demo: setup
	$(RUN) mlops-lab demo loop

test: setup
	@scripts/system-tools.sh   # promtool, prometheus, wrk: installed when root or passwordless sudo allows
	$(RUN) pytest $(PYTEST_ARGS)

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) lint-imports   # the layers hold one import direction and no circles (pyproject.toml)

format: setup
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

bench: setup
	$(RUN) mlops-lab bench
	$(RUN) mlops-lab capacity      # the capacity plan and prod's sizes follow the new figures
	$(RUN) mlops-lab demo-timings  # every demo once, in order: docs/demo-timings.md

ui: setup
	$(RUN) mlops-lab ui

image-tags: setup
	$(RUN) mlops-lab images tags $(IMAGE_TAGS_ARGS)

clean:
	rm -rf .state
