# corespond — one command to run it, one to test it (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell $(PYTHON) -c 'import hashlib,sys;print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest()[:12])')

.PHONY: install run test test-reliability lint format typecheck imports openapi openapi-check docs docs-check check eval triage-model triage-dictionary bench bench-geo geo-data clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install corespond with its dev tools

run: install  ## migrate, seed demo data and serve on 127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL)
	$(BIN)/corespond serve --migrate --demo

test: install  ## run the whole test suite on a real PostgreSQL
	$(BIN)/pytest

# Bounded as a whole too: each scenario bounds its own waits, this bounds the run.
test-reliability: install  ## kill -9, database outage, failing callbacks, replicas, duplicates (real processes, ~4 min)
	timeout 900 $(BIN)/pytest tests/reliability

lint: install  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install  ## mypy --strict on src/
	$(BIN)/mypy

imports: install  ## import contracts: layers and domain boundaries ([tool.importlinter] in pyproject.toml)
	$(BIN)/lint-imports

openapi: install  ## regenerate openapi/openapi.json
	$(BIN)/corespond openapi

openapi-check: install  ## fail if openapi/openapi.json is not what the app generates
	$(BIN)/corespond openapi --check

docs: install  ## regenerate docs/configuration.md from the settings class
	$(BIN)/corespond config-reference

docs-check: install  ## fail if docs/configuration.md is not what the settings class says
	$(BIN)/corespond config-reference --check

check: lint typecheck imports openapi-check docs-check test test-reliability  ## everything CI should be green on

REAL_CALL_TYPES ?= ../shared/data/real_call_types.json

eval: install  ## triage rules on the labelled set (dev and held-out) and on real call types
	$(BIN)/corespond triage eval tests/data/triage_calls.jsonl --split dev
	@echo
	$(BIN)/corespond triage eval tests/data/triage_calls.jsonl --split holdout
	@echo
	$(BIN)/corespond triage eval tests/data/triage_calls_fresh.jsonl
	@echo
	$(BIN)/corespond triage eval tests/data/triage_blind_d.jsonl
	@echo
	$(BIN)/corespond triage eval tests/data/triage_blind_e.jsonl
	@echo
	@for set in f g h i; do $(BIN)/corespond triage eval tests/data/triage_blind_$$set.jsonl; echo; done
	@for part in tests/data/corpus/part-*.jsonl; do $(BIN)/corespond triage eval $$part | tail -6; echo; done
	@if [ -f $(REAL_CALL_TYPES) ]; then $(BIN)/corespond triage real-call-types $(REAL_CALL_TYPES); \
	else echo "$(REAL_CALL_TYPES) not found: skipped the real call-type check"; fi
	@echo
	$(BIN)/python bench/triage.py

geo-data: install  ## rebuild the packaged county polygons and places (GEO_STATES="54 39")
	$(BIN)/pip install --quiet -e '.[dev,embedded,geo-build]'
	$(BIN)/python tools/build_geo.py $(foreach s,$(or $(GEO_STATES),54),--state $(s))

bench-geo: install  ## point -> county lookups per second
	$(BIN)/python bench/geo.py

triage-model: install  ## retrain the learned second opinion from tests/data (deterministic)
	$(BIN)/python tools/train_triage_model.py

triage-dictionary: install  ## rebuild the triage dictionary (needs Debian wamerican and wordnet-base)
	$(BIN)/pip install --quiet -e '.[dev,embedded,data-build]'
	$(BIN)/python tools/build_dictionary.py

bench: install  ## ingest load test against a running server (see bench/README.md)
	$(BIN)/python bench/ingest.py

clean:  ## remove the virtualenv and caches (keeps var/, the local database)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache
