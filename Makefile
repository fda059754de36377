# faultlab: every target creates .venv when it is missing, then installs only what it needs.
# Stamp files in .venv record what is installed; they are redone when pyproject.toml changes.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHROMIUM := /usr/bin/chromium
PYTEST_ARGS ?= -n auto

.PHONY: run test ui bench lint clean

# The flagship: every design of checkout-noisy-neighbor on 5 seeds, the table, out/report.html.
run: $(VENV)/.installed-run
	$(BIN)/faultlab compare checkout-noisy-neighbor --reps 5 --out out/

bench: $(VENV)/.installed-run
	$(BIN)/faultlab bench

ui: $(VENV)/.installed-ui
	$(BIN)/python -m streamlit run ui/app.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The suite is spread over the CPUs (pytest-xdist); `make test PYTEST_ARGS=` runs it serially.
test: lint $(CHROMIUM)
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf out build dist report .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# dev includes the ui extra, and ui includes the package itself, so each stamp implies the next.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-ui: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[ui]'
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $@ $(VENV)/.installed-ui $(VENV)/.installed-run

# The browser for the UI tests, from Debian; as root directly, otherwise through sudo.
$(CHROMIUM):
	@if [ "$$(id -u)" -eq 0 ]; then sudo=; \
	elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "error: $(CHROMIUM) is missing; install Debian's chromium as root" >&2; exit 1; fi; \
	set -x; \
	$$sudo apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
