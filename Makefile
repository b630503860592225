# fedcart: `make help` lists the targets.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
UV    := $(VENV)/bin/uv
COMPOSE ?= docker compose

# `make lock` resolves from PyPI itself (not this machine's pip config or mirrors), for the Python and platform
# the image and the dev machines run. Existing pins are kept unless pyproject.toml needs otherwise; upgrade with
# `make lock LOCK_ARGS=--upgrade` (everything) or `make lock LOCK_ARGS="-P keras"` (one package).
LOCK_FLAGS := --quiet --no-config --default-index https://pypi.org/simple --generate-hashes \
	--python-version 3.11 --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock"
LOCK_ARGS ?=
# The build backend ([build-system] requires) goes into both locks: setup.sh and the Dockerfile build fedcart with it.
BUILD_REQUIRES = $(PY) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')"

.PHONY: help setup lock run test bench clean up down logs

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup:  ## install system packages, .venv/ and front-end assets (idempotent)
	@bash scripts/setup.sh

run: setup  ## start a local swarm on the embedded store and print its URLs
	$(VENV)/bin/fedcart swarm

lock: $(UV)  ## refresh requirements.lock (image) and requirements-dev.lock (setup) from pyproject.toml, with hashes
	$(BUILD_REQUIRES) | $(UV) pip compile $(LOCK_FLAGS) $(LOCK_ARGS) pyproject.toml - --extra dev -o requirements-dev.lock
	$(BUILD_REQUIRES) | $(UV) pip compile $(LOCK_FLAGS) $(LOCK_ARGS) pyproject.toml - -c requirements-dev.lock -o requirements.lock
	@git diff --stat -- requirements.lock requirements-dev.lock
	@echo "lock: requirements.lock and requirements-dev.lock are up to date; \`make setup\` installs the dev lock into $(VENV)/"

test: setup  ## install what is missing, then run ruff, mypy and the whole test suite (timed)
	@bash scripts/run_tests.sh

bench: setup  ## run the benchmarks in bench/ (prints tables)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:  ## remove the virtual environment and local data
	rm -rf $(VENV) data artifacts reports

up: .env  ## build the image and start MongoDB, 2 bridges and 3 carts in containers (docker compose)
	@sh scripts/compose_secrets.sh docker-compose.yml
	$(COMPOSE) up --detach --build
	@$(COMPOSE) ps

down: .env  ## stop and remove the containers and networks (volumes keep the data; `docker compose down -v` drops them)
	$(COMPOSE) down

logs: .env  ## follow the containers' logs (`make logs S=cart-0` for one service)
	$(COMPOSE) logs --follow $(S)

.env:
	cp .env.example .env

# uv comes with the dev lock (`make setup`); this only bootstraps it when the lock cannot be installed yet.
$(UV):
	[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q uv
