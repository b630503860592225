# fedcart: `make help` lists the targets.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: help setup run test bench clean

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
