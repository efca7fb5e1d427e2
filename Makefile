# The commands the README and CI use. Everything runs inside .venv, made on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
AS_ROOT := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_SOURCES := --source demo/articles.jsonl --source demo/putin-victory-alaska-summit.txt

.PHONY: install demo test lint typecheck evaluate clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

# Debian's Chromium drives the browser tests through Playwright; no browser is ever downloaded.
$(CHROMIUM):
	$(AS_ROOT) apt-get update -qq && $(AS_ROOT) apt-get install -y -qq chromium

demo: $(INSTALLED)  ## index the bundled demo corpus and serve it at http://127.0.0.1:8000
	$(BIN)/recommender reindex $(DEMO_SOURCES)
	$(BIN)/recommender serve --host 127.0.0.1 --port 8000

test: $(INSTALLED) $(CHROMIUM)  ## the whole suite: real model, real Redis, real Chromium
	$(BIN)/python -m pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(BIN)/mypy

.PHONY: bench-api
BENCH_ARGS ?=
# e.g. make bench-api BENCH_ARGS="--rounds 3 --duration 5 --json"
bench-api: $(INSTALLED)  ## requests/s and p50/p99 of the related endpoint vs a bare FastAPI ceiling (needs wrk)
	$(BIN)/recommender bench api $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .recommender .pytest_cache .mypy_cache .ruff_cache test-artifacts
