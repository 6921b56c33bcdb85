# Cryolabel: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
INSTALLED := $(VENV)/.installed
VENDOR := frontend/static/vendor/.installed

.PHONY: demo test install lint bench clean

install: $(INSTALLED) $(VENDOR)

$(INSTALLED): requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt
	@touch $@

# Front-end packages (package.json + lock) copied into static files: see scripts/vendor.sh.
$(VENDOR): package.json package-lock.json scripts/vendor.sh
	@scripts/vendor.sh

## Set everything up and start the platform with demo data on embedded defaults.
demo: $(INSTALLED) $(VENDOR)
	@scripts/demo.sh

## Set everything up (services included) and run the whole test suite, in both modes.
test: $(INSTALLED) $(VENDOR)
	@scripts/test.sh

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

## Benchmarks, on demand (never in CI): see README.
bench: $(INSTALLED)
	@scripts/bench.sh

clean:
	rm -rf var .pytest_cache
