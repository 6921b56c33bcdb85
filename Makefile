# Cryolabel: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
INSTALLED := $(VENV)/.installed
DEV_INSTALLED := $(VENV)/.installed-dev
VENDOR := frontend/static/vendor/.installed

.PHONY: demo test install lint bench clean

# Python keeps the bytecode of what it imports (__pycache__, ignored by git). An environment that turns that off
# (PYTHONDONTWRITEBYTECODE) makes every process compile Django, Celery and torch again from source: measured on
# two cores, a Django start 5.1 -> 1.7 s and importing torch 18 -> 6 s once the caches are there. Installs stay
# --no-compile: only what is imported gets compiled, once.
unexport PYTHONDONTWRITEBYTECODE

install: $(DEV_INSTALLED) $(VENDOR)

# The runtime set (what `make demo` and the Docker image need); for tests, benchmarks and lint the dev tools too,
# installed with it in one pip run (one resolution: ~20 s less on a fresh clone than two runs).
$(INSTALLED): requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt
	@touch $@

$(DEV_INSTALLED): requirements.txt requirements-dev.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt -r requirements-dev.txt
	@touch $(INSTALLED) $@

# Front-end packages (package.json + lock) copied into static files: see scripts/vendor.sh.
$(VENDOR): package.json package-lock.json scripts/vendor.sh
	@scripts/vendor.sh

## Set everything up and start the platform with demo data on embedded defaults.
demo: $(INSTALLED) $(VENDOR)
	@scripts/demo.sh

## Set everything up (services included) and run the whole test suite, in both modes.
test: $(DEV_INSTALLED) $(VENDOR)
	@scripts/test.sh

lint: $(DEV_INSTALLED)
	$(VENV)/bin/ruff check .

## Benchmarks, on demand (never in CI): see README.
bench: $(DEV_INSTALLED)
	@scripts/bench.sh

clean:
	rm -rf var .pytest_cache
