# Tenantry — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?= -n 2

.PHONY: setup messages run test test-sqlite test-postgres lint bench bench-full cluster cluster-stop clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

# Compiled message catalogs (the app compiles a missing one in memory, so this is a speed-up).
LOCALE := src/tenantry/locale
$(LOCALE)/%/LC_MESSAGES/messages.mo: $(LOCALE)/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel -q compile -d $(LOCALE) -l $* -D messages

setup: $(STAMP) $(LOCALE)/de/LC_MESSAGES/messages.mo

# Re-extract the strings to translate and merge them into every language's .po.
messages: setup
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k NotFound -k Unauthenticated --no-location --sort-output \
		-o $(LOCALE)/messages.pot src/tenantry
	$(BIN)/pybabel update -i $(LOCALE)/messages.pot -d $(LOCALE) --no-wrap

run: setup
	mkdir -p var
	$(BIN)/tenantry init
	$(BIN)/tenantry serve --host 127.0.0.1 --port 8000

# Two instances and a worker behind HAProxy on the local PostgreSQL and Redis (README, Production).
# TENANTRY_DATABASE_URL / TENANTRY_REDIS_URL choose them; CLUSTER_PORT the proxy's port.
CLUSTER_PORT ?= 8080
cluster: setup
	$(BIN)/python -m deploy.cluster up --port $(CLUSTER_PORT)

cluster-stop:
	$(BIN)/python -m deploy.cluster down

test: setup
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$TENANTRY_TEST_POSTGRES_URL" ]; then \
		$(MAKE) --no-print-directory test-postgres; \
	else echo "TENANTRY_TEST_POSTGRES_URL not set: skipped the PostgreSQL run"; fi

test-sqlite: setup
	TENANTRY_TEST_BACKEND=sqlite $(BIN)/pytest $(PYTEST_ARGS)

# The cluster and fault tests (tests/cluster/) start one cluster of their own and run in one
# process after the rest: spread over xdist workers, each worker would start another cluster.
test-postgres: setup
	TENANTRY_TEST_BACKEND=postgres $(BIN)/pytest $(PYTEST_ARGS) -m "not cluster and not fault"
	TENANTRY_TEST_BACKEND=postgres $(BIN)/pytest -n 0 -m "cluster or fault" tests/cluster

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Short measurements (`--quick`, a few minutes); `make bench-full` for the figures to record.
bench: setup
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

bench-full: setup
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
