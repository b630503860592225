# fedcart: `make help` lists the targets.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
COMPOSE ?= docker compose

.PHONY: help setup run test bench clean up down logs

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup:  ## install system packages, .venv/ and front-end assets (idempotent)
	@bash scripts/setup.sh

run: setup  ## start a local swarm on the embedded store and print its URLs
	$(VENV)/bin/fedcart swarm

test: setup  ## install what is missing, then run the whole test suite
	@bash scripts/run_tests.sh

bench: setup  ## run the benchmarks in bench/ (prints tables)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:  ## remove the virtual environment and local data
	rm -rf $(VENV) data artifacts reports

up: .env  ## build the image and start MongoDB, 2 bridges and 3 carts in containers (docker compose)
	$(COMPOSE) up --detach --build
	@$(COMPOSE) ps

down: .env  ## stop and remove the containers and networks (volumes keep the data; `docker compose down -v` drops them)
	$(COMPOSE) down

logs: .env  ## follow the containers' logs (`make logs S=cart-0` for one service)
	$(COMPOSE) logs --follow $(S)

.env:
	cp .env.example .env
