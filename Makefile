# Ecom Data Platform. `make run` and `make test` bootstrap everything (uv, the virtualenv) themselves.
SHELL := /bin/bash
UV := ./scripts/uv
RUN := $(UV) run --frozen
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
ENV_FILE ?= .env
COMPOSE ?= docker compose

# Each package's tests run in their own pytest process: services are separate programs.
DB_PACKAGES := libs/servicekit gateway services/customer-service services/product-service \
               services/sync-service services/analytics-service
TEST_PACKAGES := libs/contracts $(DB_PACKAGES) cli
TYPED_PACKAGES := -p contracts -p servicekit -p gateway -p customer_service -p product_service \
                  -p sync_service -p analytics_service -p ecom_cli

.PHONY: help sync run test test-pg lint format bench docs clean deploy-check images up down

help:
	@echo "make run      start the whole stack on embedded defaults (SQLite + embedded broker)"
	@echo "make test     run every test on SQLite and the embedded broker"
	@echo "make test-pg  run the database tests on PostgreSQL ($(PG_TEST_URL)) and Redis ($(REDIS_TEST_URL))"
	@echo "make lint     ruff check, ruff format --check, mypy"
	@echo "make bench    run the benchmarks; results in bench/results/"
	@echo "make docs     regenerate docs/events.md and docs/asyncapi.yaml"
	@echo "make deploy-check  validate compose, Kubernetes, Prometheus and Grafana files (tests/deploy)"
	@echo "make images   build the base image and one image per service (needs a Docker engine)"
	@echo "make up       start the production-like compose stack (needs .env); make down stops it"
	@echo "make clean    remove var/, caches and the virtualenv"

# Byte-compiled at install: where PYTHONDONTWRITEBYTECODE is set (this machine's environment does) every
# process would otherwise compile each module it imports again.
sync:
	@$(UV) sync --frozen --quiet --compile-bytecode

run: sync
	$(RUN) ecom dev

# Every package runs even when an earlier one failed; the failed ones are named at the end.
test: sync
	@scripts/install-browser.sh
	@failed=""; for pkg in $(TEST_PACKAGES); do \
		echo "=== $$pkg"; \
		$(RUN) pytest $$pkg/tests -q -m "not postgres" || failed="$$failed $$pkg"; \
	done; \
	echo "=== tests/e2e (gateway and services on real ports; the dashboard in Debian's Chromium)"; \
	$(RUN) pytest tests/e2e -q -m "not postgres" || failed="$$failed tests/e2e"; \
	if [ -n "$$failed" ]; then echo "=== FAILED:$$failed"; exit 1; fi

test-pg: sync
	@$(RUN) python scripts/check_postgres.py "$(PG_TEST_URL)"
	@scripts/install-browser.sh
	@failed=""; for pkg in $(DB_PACKAGES); do \
		echo "=== $$pkg (PostgreSQL)"; \
		TEST_DATABASE_URL="$(PG_TEST_URL)" TEST_REDIS_URL="$(REDIS_TEST_URL)" $(RUN) pytest $$pkg/tests -q \
			|| failed="$$failed $$pkg"; \
	done; \
	echo "=== tests/e2e (PostgreSQL)"; \
	TEST_DATABASE_URL="$(PG_TEST_URL)" $(RUN) pytest tests/e2e -q || failed="$$failed tests/e2e"; \
	if [ -n "$$failed" ]; then echo "=== FAILED:$$failed"; exit 1; fi

lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy $(TYPED_PACKAGES)

format: sync
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

bench: sync
	$(RUN) python bench/run.py

docs: sync
	$(RUN) ecom-contracts generate

deploy-check: sync
	@scripts/install-deploy-tools.sh
	$(RUN) pytest tests/deploy -q

images:
	deploy/docker/build-images.sh

up:
	@deploy/check-env.sh "$(ENV_FILE)"
	$(COMPOSE) --env-file "$(ENV_FILE)" up -d

down:
	$(COMPOSE) -p ecom down

clean:
	rm -rf var .venv .tools .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
