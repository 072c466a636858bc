# Thin targets. Every target depends on `setup`, so on a fresh clone `make demo` and
# `make test` are each one command. uv comes from PyPI if it is missing.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen
PYTEST_ARGS ?=
IMAGE_TAGS_ARGS ?=

.PHONY: setup demo test lint format bench ui clean image-tags

setup: .venv/.synced-bytecode

# --compile-bytecode: the libraries' .pyc files are written once here, not on every start by every
# process (where PYTHONDONTWRITEBYTECODE is set, Python never writes them, and each `mlops-lab demo`
# then compiled MLflow, Prefect, Great Expectations and Evidently from source: about 7 s a run).
.venv/.synced-bytecode: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

demo: setup
	$(RUN) mlops-lab demo loop

test: setup
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
