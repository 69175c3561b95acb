# PartnerGuard's developer commands. Everything installs itself into .venv and node_modules.
# `make demo` runs the pipeline on local parts; `make test` runs linters, type checks and tests.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov pins packages the app's own pins refuse, so it gets a virtual environment of its own,
# inside .venv (ignored by git and ruff alike); tests/test_infra_checkov.py runs it from there.
TOOLS_VENV := $(VENV)/tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
# requirements.txt alone, as Azure installs it: tests/test_deployed_imports.py imports the deployment
# package there. tests/deployed_package.py builds it (again only when requirements.txt changes).
DEPLOYED_STAMP := $(VENV)/deployed/.requirements.sha256

.PHONY: install chromium demo test lint typecheck pytest checkov bench soak stop clean

# What `make test` needs. `make demo` needs only the app's .venv and Azurite.
install: $(PY_STAMP) $(NODE_STAMP) $(TOOLS_STAMP) $(DEPLOYED_STAMP) chromium

$(PY_STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "PartnerGuard needs Python 3.11 (the Azure Functions runtime it targets)"'
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "Python's venv module is missing: sudo apt-get install python3-venv" >&2; exit 2; fi; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(TOOLS_STAMP): requirements-tools.txt | $(PY_STAMP)
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	@touch $@

$(DEPLOYED_STAMP): requirements.txt | $(PY_STAMP)
	$(PY) -m tests.deployed_package

# The HTML report's browser test (tests/test_report_html_browser.py) runs Debian's Chromium.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "The browser test needs Chromium: sudo apt-get update && sudo apt-get install -y chromium" >&2; exit 2; fi; }

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 20) is needed for Azurite: sudo apt-get install nodejs npm" >&2; exit 2; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: $(PY_STAMP) $(NODE_STAMP)
	$(PY) -m partnerguard demo

test: install lint typecheck pytest

lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(PY_STAMP)
	$(VENV)/bin/mypy

pytest: install
	$(VENV)/bin/pytest

# The security scan of infra/ that tests/test_infra_checkov.py also runs, with its report.
checkov: $(TOOLS_STAMP)
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(TOOLS_VENV)/bin/checkov --framework bicep -d infra --skip-download --compact

# Measures scans against the bounds Graph's limits set and writes docs/performance.md (about 15
# minutes on 2 cores; `python -m testbed.bench --small` checks the harness in seconds).
bench: $(PY_STAMP) $(NODE_STAMP)
	$(PY) -m testbed.bench

# The alert delivery's simulation (tests/alerts_simulation.py) over 10,000 seeded schedules, about
# 5 minutes; fails on an alert lost or sent twice outside the documented window, and otherwise
# writes tests/alert_simulation_soak.json, which docs/reliability.md reports (`make test` runs the
# first schedules and checks the file is of this code).
soak: $(PY_STAMP)
	$(PY) -m tests.alerts_simulation --schedules 10000 --write

stop: $(PY_STAMP)
	$(PY) -m testbed.azurite stop

clean: stop
	rm -rf .azurite outbox test-output .pytest_cache .mypy_cache .ruff_cache
