# make demo, make test, make check (= lint + types + test). Windows PowerShell equivalents are
# in README.md. The venv gets the pinned tools (requirements-dev.txt) and polybot itself
# (pip install --no-deps -e .), so .venv/bin/polybot exists.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv browser demo test lint types check clean-venv

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "polybot needs Python 3.11 or newer; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python demo.py

# Debian's chromium for the dashboard's browser tests, when it can be installed (as root with
# apt-get); otherwise those tests are skipped with a reason.
browser:
	@sh scripts/ensure_chromium.sh

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# Cheapest first: a lint or type finding fails in seconds, before the suite runs.
check: lint types test

clean-venv:
	rm -rf $(VENV)
