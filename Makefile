# tau3mu: two commands do all set-up on a fresh machine.
#   make demo   creates .venv, generates a dataset, runs the analysis, prints where outputs are
#   make test   creates .venv with the test extras, installs what tests need, runs pytest
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP_RUN := $(VENV)/.stamp-run
STAMP_TEST := $(VENV)/.stamp-test
PYTEST_ARGS ?=
# pytest-xdist workers for make test (one per core); a test file stays on one worker
TEST_WORKERS ?= auto

.PHONY: all demo test env test-env system-deps lint bench bench-docs clean

all: demo

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# the analysis plus the validation extra (ROOT from PyPI writes the Run 2 std::vector layout)
$(STAMP_RUN): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[validation,parquet]'
	@touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[test,validation,parquet,bench,htcondor]' ruff
	@touch $@ $(STAMP_RUN)

env: $(STAMP_RUN)
test-env: $(STAMP_TEST)

# the real xrootd server for the XRootD tests (Debian's xrootd-server); needs root or sudo
system-deps:
	@if ! command -v xrootd >/dev/null 2>&1; then \
	  echo "installing xrootd-server (Debian package) for the XRootD tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq xrootd-server >/dev/null; \
	fi

demo: $(STAMP_RUN)
	$(VENV)/bin/tau3mu demo --out demo-output

# TAU3MU_REQUIRE_ALL=1: a test that would skip (no ROOT, no xrootd server) fails instead.
# A test still running at 15 minutes has hung (the slowest takes about one; the tests' own
# subprocess limits, at most 10 minutes, fire first): pytest-timeout ends its worker
# ("thread": also from inside C code), after faulthandler printed its stacks at 4.
# --max-worker-restart=0: a worker that crashes or is ended stops the run, naming its
# test; pytest-xdist 3.8's file scheduling can deadlock on a replaced worker
TEST_LIMITS := --timeout=900 --timeout-method=thread --max-worker-restart=0
test: $(STAMP_TEST) system-deps
	TAU3MU_REQUIRE_ALL=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(TEST_LIMITS) $(PYTEST_ARGS)

# ruff (lint and format) and mypy ([tool.mypy] in pyproject.toml; .ci/typecheck.py gives
# mypy the installed layout, tau3mu.kernels and tau3mu.processors included)
lint: $(STAMP_TEST)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) .ci/typecheck.py

bench: $(STAMP_TEST)
	$(PY) benchmarks/run_all.py

# README.md and docs/benchmarks.md: the tables between <!-- results:... --> markers,
# rendered from benchmarks/results/*.json with each figure's source named
bench-docs: $(STAMP_RUN)
	$(PY) benchmarks/render_docs.py

clean:
	rm -rf $(VENV) demo-output build *.egg-info .pytest_cache .hypothesis
