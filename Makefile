# The commands the README and CI use. Everything runs inside .venv, made on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
WRK := /usr/bin/wrk
DOCKER_COMPOSE := /usr/bin/docker-compose
PHP := /usr/bin/php
WORDPRESS := /usr/share/wordpress/wp-settings.php
PLUGIN_DIR := integrations/wordpress/related-articles
PLUGIN_ZIP := dist/related-articles.zip
AS_ROOT := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_SOURCES := --source demo/articles.jsonl --source demo/putin-victory-alaska-summit.txt

.PHONY: install demo test lint typecheck evaluate clean wordpress-plugin

# uv installs the project in seconds where pip takes minutes (a fresh clone's `make test` waits for
# it). uv reads no pip configuration, so a local wheel folder that pip is told of (here, the CPU
# build of torch) is passed on. Modules are compiled to bytecode on first import, not all at once.
PIP_FIND_LINKS ?= $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv>=0.5'
	$(BIN)/uv pip install --quiet --python $(BIN)/python \
		$(addprefix --find-links ,$(PIP_FIND_LINKS)) -e '.[dev,ray]'
	touch $(INSTALLED)

install: $(INSTALLED)

# Debian's Chromium drives the browser tests through Playwright; no browser is ever downloaded.
$(CHROMIUM):
	$(AS_ROOT) apt-get update -qq && $(AS_ROOT) apt-get install -y -qq chromium

# wrk, the HTTP load generator of the benchmarks and the soak (tested by `make test` too).
$(WRK):
	$(AS_ROOT) apt-get update -qq && $(AS_ROOT) apt-get install -y -qq wrk

# Debian's docker-compose: tests/test_compose.py runs `docker-compose config` (no daemon needed).
$(DOCKER_COMPOSE):
	$(AS_ROOT) apt-get update -qq && $(AS_ROOT) apt-get install -y -qq docker-compose

# PHP's command line, for `php -l` over the WordPress plugin (make lint).
$(PHP):
	$(AS_ROOT) apt-get update -qq && $(AS_ROOT) apt-get install -y -qq php-cli

# tests/wordpress/: Debian's WordPress on PHP's built-in server over MariaDB (.ci/run starts it).
$(WORDPRESS):
	$(AS_ROOT) apt-get update -qq && $(AS_ROOT) apt-get install -y -qq wordpress php-cli php-mysql mariadb-client

# The WordPress plugin as the zip that Plugins → Add New → Upload Plugin takes (docs/wordpress.md).
wordpress-plugin: $(PLUGIN_ZIP)  ## the WordPress plugin's zip: dist/related-articles.zip
$(PLUGIN_ZIP): $(shell find $(PLUGIN_DIR) -type f)
	mkdir -p dist && rm -f $@
	cd $(dir $(PLUGIN_DIR)) && python3 -m zipfile -c $(abspath $@) $(notdir $(PLUGIN_DIR))

# The API on DEMO_API_PORT, and on DEMO_SITE_PORT (another origin) a publisher's page that embeds
# the widget; both ports are checked free before anything starts, and the page's server stops
# with the API. The editors' pages take the password `demo`; the admin token (click statistics,
# audit, live changes) is RECOMMENDER_ADMIN_TOKEN, else a random one, printed with the banner.
DEMO_API_PORT ?= 8000
DEMO_SITE_PORT ?= 8001
demo: $(INSTALLED)  ## index the bundled demo corpus; serve it at http://127.0.0.1:$(DEMO_API_PORT) and a demo page at http://127.0.0.1:$(DEMO_SITE_PORT)
	$(BIN)/python demo/announce.py check $(DEMO_API_PORT) $(DEMO_SITE_PORT)
	$(BIN)/recommender reindex $(DEMO_SOURCES)
	export RECOMMENDER_EDITOR_PASSWORD="$${RECOMMENDER_EDITOR_PASSWORD:-demo}" \
		RECOMMENDER_ADMIN_TOKEN="$${RECOMMENDER_ADMIN_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(18))')}" \
		RECOMMENDER_DEMO_SITE_URL="http://127.0.0.1:$(DEMO_SITE_PORT)/"; \
	$(BIN)/python demo/site_server.py $(DEMO_API_PORT) $(DEMO_SITE_PORT) & site=$$!; \
	$(BIN)/python demo/announce.py wait $(DEMO_API_PORT) $(DEMO_SITE_PORT) & banner=$$!; \
	trap 'kill $$site $$banner 2>/dev/null' EXIT INT TERM; \
	$(BIN)/recommender serve --host 127.0.0.1 --port $(DEMO_API_PORT)

# Python caches compiled modules (ours and the tests', rewritten by pytest) only where this is unset:
# a shell that sets it would compile every module again in each of the suite's ~400 processes.
unexport PYTHONDONTWRITEBYTECODE

# Two phases: the suite on two workers, then the tests that hold the app to a timeout or a pause
# (marker `timing`) one at a time, so that no parallel test steals their time slices. That phase
# leaves a core mostly idle: mypy runs on it, at the lowest priority so that it takes nothing the
# tests want, and its verdict is printed, and counted, at the end.
test: $(INSTALLED) $(CHROMIUM) $(WRK) $(DOCKER_COMPOSE) $(WORDPRESS) lint  ## lint, the suite, then its timing tests beside the type check: real model, real Redis, real Chromium, real WordPress
	$(BIN)/python -m pytest -m "not timing" --durations=25
	types_log=$$(mktemp); nice -n 19 $(BIN)/mypy > $$types_log 2>&1 & types=$$!; \
	$(BIN)/python -m pytest -m timing --numprocesses=0 --durations=10; tests=$$?; \
	wait $$types; types_status=$$?; echo "mypy:"; cat $$types_log; rm -f $$types_log; \
	exit $$(( tests || types_status ))

lint: $(INSTALLED) $(PHP)  ## ruff: lint, and check the formatting; php -l on the WordPress plugin
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	find integrations -name '*.php' -print0 | xargs -0 -n1 $(PHP) -l

typecheck: $(INSTALLED)  ## mypy: strict over the packages, test bodies checked too (pyproject.toml)
	$(BIN)/mypy

.PHONY: bench-api
BENCH_ARGS ?=
# e.g. make bench-api BENCH_ARGS="--rounds 3 --duration 5 --json"
bench-api: $(INSTALLED)  ## requests/s and p50/p99 of the related endpoint vs a bare FastAPI ceiling (needs wrk)
	$(BIN)/recommender bench api $(BENCH_ARGS)

.PHONY: bench
# e.g. make bench BENCH_ARGS="--texts 500 --catalog-size 100000 --api-duration 5"
bench: $(INSTALLED)  ## API, reindex vs encode, incremental vs full, 1 M-vector catalog: one table (needs wrk; ~30 min on 2 cores)
	$(BIN)/recommender bench all $(BENCH_ARGS)

.PHONY: bench-archive
ARCHIVE_ARTICLES ?= 100000
# e.g. make bench-archive ARCHIVE_ARTICLES=1000000 BENCH_ARGS="--json --work-dir /tmp/archive"
bench-archive: $(INSTALLED) $(WRK)  ## a publisher's archive of ARCHIVE_ARTICLES full texts (../shared/data): reindex, nightly, disk, serving memory and req/s vs issue 30's targets
	$(BIN)/recommender bench archive --articles $(ARCHIVE_ARTICLES) $(BENCH_ARGS)

.PHONY: soak
SOAK_ARGS ?=
# e.g. make soak SOAK_ARGS="--duration 30 --data-dir /tmp/soak"; Redis: REDIS_URL or 127.0.0.1:6379
soak: $(INSTALLED) $(WRK)  ## 5 minutes at 64 connections with Redis, a reindex and a swap midway: errors, p50/p99, memory
	$(BIN)/recommender bench soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .recommender .pytest_cache .mypy_cache .ruff_cache test-artifacts dist
