# The few commands people run. Each installs what it needs first (fast when done before).
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/.solcx

.PHONY: install demo portal test bench lint format artifacts clean

install:
	@bash tools/install

demo: install  ## the patient / provider / doctor story on a fresh local chain and IPFS node
	@medvault demo

portal: install  ## the browser portal on a fresh local chain, IPFS and keepers with demo data (Ctrl-C stops it)
	@medvault portal --demo

test: install   ## lint, types, contract tests (forge), Python unit and integration tests
	@bash tools/check

bench: install  ## every benchmark figure with its spread and baseline against its target; the JSON in bench-results.json (about 20 minutes)
	@medvault bench all --output bench-results.json

artifacts: install  ## rebuild src/medvault/chain/artifacts.json (the shipped ABIs and bytecode) from contracts/
	@PYTHONPATH=$(CURDIR)/src python -m medvault.dev.artifacts

lint:
	@ruff check . && ruff format --check . && mypy

format:
	@ruff format . && ruff check --fix .

clean:
	rm -rf .build .forge .pytest_cache .mypy_cache .ruff_cache
