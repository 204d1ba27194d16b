# hookflow: every task of the workspace. `make up` runs the product, `make test` tests it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
LOCAL := deploy/local
SRC := schemas/src services/gateway/src services/engine/src services/auth/src cli/src
# The environment is rebuilt whenever a pin or a distribution's metadata changes.
INSTALL_INPUTS := requirements/bootstrap.txt requirements/lock.txt schemas/pyproject.toml cli/pyproject.toml \
	$(wildcard services/*/pyproject.toml)

.PHONY: traces help install lock up down status logs user bench bench-smoke images chaos fuzz test test-unit lint fmt schemas infra-up infra-down infra-status clean browser screenshots

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: $(INSTALL_INPUTS)
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required (python3.11 or python3)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || \
		{ echo "$(PYTHON) is older than Python 3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/bootstrap.txt
	$(UV) pip sync --quiet --python $(PY) requirements/lock.txt
	touch $@

node_modules/.installed: package.json
	@command -v npm >/dev/null || { echo "Node.js 20 and npm are required (the SDK tests and the Node.js example)"; exit 1; }
	rm -rf node_modules
	npm install --silent
	touch $@

install: $(VENV)/.installed node_modules/.installed ## create .venv and node_modules with the pinned dependencies

lock: install ## re-pin requirements/lock.txt from the pyproject files and requirements/dev.in
	$(UV) pip compile --quiet --python-version 3.11 --no-header requirements/all.in -o requirements/lock.txt

traces: install ## the product with traces in a local Jaeger, and one traced callback of the example
	$(LOCAL)/traces.sh up

infra-up: ## install (once) and start Kafka and FerretDB
	$(LOCAL)/infra.sh up

infra-down: ## stop Kafka and FerretDB
	$(LOCAL)/infra.sh down

infra-status: ## show whether Kafka and FerretDB run
	$(LOCAL)/infra.sh status

up: install ## run the product: Kafka, FerretDB, the services, the example flow
	@$(LOCAL)/up.sh

down: ## stop everything `make up` (and `make traces`) started
	$(LOCAL)/services.sh stop
	$(LOCAL)/traces.sh stop
	$(LOCAL)/infra.sh down

status: ## show what runs
	-$(LOCAL)/infra.sh status
	-$(LOCAL)/services.sh status

logs: ## follow every process's log
	tail -n 20 -F .local/logs/*.log .local/kafka/logs/server.log .local/ferretdb/logs/ferretdb.log

user: install ## create a user with roles: make user EMAIL=... PASSWORD=... ROLES="A B"
	@test -n "$(EMAIL)" -a -n "$(PASSWORD)" || { echo "usage: make user EMAIL=... PASSWORD=... ROLES=\"A B\""; exit 2; }
	$(LOCAL)/with-infra.sh $(PY) -m auth.cli create-user --email "$(EMAIL)" --password "$(PASSWORD)" $(foreach r,$(ROLES),--role $(r))

browser: ## Debian's Chromium for the console's browser tests (installed once, with apt)
	@$(LOCAL)/chromium.sh

screenshots: install browser ## the console's screenshots in docs/console, taken by its browser tests
	$(LOCAL)/with-infra.sh env HOOKFLOW_SCREENSHOTS=$(CURDIR)/docs/console $(PY) -m pytest -q tests/e2e/console

test: install lint browser ## lint, unit, integration, e2e and browser tests against real Kafka and FerretDB, a bench smoke run
	$(LOCAL)/with-infra.sh sh -c '$(PY) -m pytest && $(PY) bench/run.py --smoke --out .local/bench-smoke'

bench: install ## the benchmark suite: bench/results/report.md, latest.json and plots
	$(LOCAL)/with-infra.sh $(PY) bench/run.py --out bench/results

images: install ## build every service's OCI image (buildah, mmdebstrap base), start each and check it
	$(LOCAL)/with-infra.sh $(LOCAL)/images.sh all

chaos: install ## the fault suites: kill -9 every part, then brokers of three, under load; nothing acknowledged is lost
	$(PY) tests/chaos/chaos.py --executions 400
	$(PY) -m tests.chaos.brokers --executions 400
	$(PY) -m tests.chaos.schedule --events 20 --minutes 5 --executions 400

fuzz: install ## 10,000 generated and hostile requests against the running services: no 5xx
	$(LOCAL)/with-infra.sh env HOOKFLOW_FUZZ_REQUESTS=10000 HOOKFLOW_FUZZ_REPORT=.local/fuzz/report.json \
		$(PY) -m pytest -q -s -W ignore::hypothesis.errors.HypothesisWarning tests/e2e/test_fuzz.py

bench-smoke: install ## every benchmark for a moment, to show that it still runs
	$(LOCAL)/with-infra.sh $(PY) bench/run.py --smoke --out .local/bench-smoke

test-unit: install ## unit tests only: no services needed
	$(PY) -m pytest -m "not integration"

lint: install ## ruff (lint and format check), mypy --strict (code, tests, bench) and the import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(SRC) conftest.py
	$(VENV)/bin/mypy bench tests $(wildcard services/*/tests)
	$(VENV)/bin/lint-imports --no-cache

schemas: install ## export the JSON Schemas of Kafka messages and the services' OpenAPI documents
	$(PY) -m schemas.export
	$(PY) -m gateway.openapi
	$(PY) -m engine.openapi
	$(PY) -m auth.openapi
	$(PY) docs/asyncapi/generate.py
	$(PY) -m schemas.frontdoor ingress > deploy/k8s/base/ingress.yaml

fmt: install ## format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: down ## stop everything, remove .venv and .local (installs, data, logs)
	rm -rf $(VENV) .local
