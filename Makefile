# PartnerGuard's developer commands. Everything installs itself into .venv and node_modules.
# `make demo` runs the pipeline on local parts; `make test` runs linters, type checks and tests.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: install demo test lint typecheck pytest stop clean

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "PartnerGuard needs Python 3.11 (the Azure Functions runtime it targets)"'
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "Python's venv module is missing: sudo apt-get install python3-venv" >&2; exit 2; fi; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 20) is needed for Azurite: sudo apt-get install nodejs npm" >&2; exit 2; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: install
	$(PY) -m partnerguard demo

test: install lint typecheck pytest

lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(PY_STAMP)
	$(VENV)/bin/mypy

pytest: install
	$(VENV)/bin/pytest

stop: $(PY_STAMP)
	$(PY) -m partnerguard.azurite stop

clean: stop
	rm -rf .azurite outbox test-output .pytest_cache .mypy_cache .ruff_cache
