# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install januspro into it and run. Override TORCH to pick another build,
# e.g. `make test TORCH=torch` (the default is the CPU build this project develops against).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(PIP) install "$(TORCH)" || $(PIP) install torch
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: $(VENV)/.core
	$(PIP) install -e ".[dev]"
	touch $@

install: $(VENV)/.core
install-dev: $(VENV)/.dev

demo: $(VENV)/.core
	$(BIN)/januspro demo

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_generation.py

clean:
	rm -rf $(VENV) build src/*.egg-info
