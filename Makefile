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
	@# The web app's end-to-end test drives Debian's Chromium; without it that test is skipped.
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
	  { echo "installing chromium (apt) for the browser test"; \
	    apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	    echo "could not install chromium: the browser test will be skipped"; }
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
