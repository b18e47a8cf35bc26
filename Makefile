# Smith's developer entry points. Everything runs inside the uv workspace (.venv).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# The pinned uv, installed on first use into .tools/ with nothing but Python's pip (no uv needed before).
# UV=... uses another one instead.
UV_VERSION := 0.13.9
UV_DIR := $(CURDIR)/.tools/uv-$(UV_VERSION)
LOCAL_UV := $(UV_DIR)/bin/uv
UV ?= $(LOCAL_UV)
export PATH := $(UV_DIR)/bin:$(PATH)
RUN := $(UV) run --frozen

.PHONY: help sync run plan test unit integration lint docs typecheck proto proto-check controlplane cluster-up cluster-down tilt-ci chaos bench profile clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

sync: $(if $(filter $(LOCAL_UV),$(UV)),$(LOCAL_UV)) ## install the workspace (all libs, services and dev tools) into .venv
	$(UV) sync --frozen --all-packages

$(LOCAL_UV):
	python3 -m pip install --quiet --disable-pip-version-check --target "$(UV_DIR)" "uv==$(UV_VERSION)"

run: sync controlplane ## Smith end to end: local control plane, all services, the sample Bundles, live status
	$(RUN) python tools/run.py $(ARGS)

plan: sync ## dry run: validate the sample bundles and print how they would converge, wave by wave
	$(RUN) smith plan deploy/samples

test: sync lint typecheck proto-check docs ## lint, type check, proto drift check, the docs built strictly, then every test
	$(RUN) pytest

unit: sync ## only the pure unit tests (no control plane)
	$(RUN) pytest tests/unit

lint: sync ## ruff and the import contracts
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

docs: sync ## build docs/ as a site (MkDocs Material, --strict: a broken link fails) into .smith/site
	NO_MKDOCS_2_WARNING=1 $(RUN) mkdocs build --strict --quiet

typecheck: sync ## mypy --strict
	$(RUN) mypy

proto: sync ## regenerate libs/proto from proto/smith/v1
	tools/gen-proto.sh

proto-check: sync ## fail when the committed generated code differs from what proto/ generates
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; tools/gen-proto.sh "$$tmp"; \
	diff -r -x __pycache__ "$$tmp/smith" libs/proto/src/smith || { echo "generated code is stale: run 'make proto'"; exit 1; }

controlplane: ## build (once, cached) the local control plane's binaries
	tools/controlplane/build.sh

cluster-up: sync controlplane ## start a local control plane in the background; prints its kubeconfig
	$(RUN) python -m smith_controlplane up

cluster-down: sync ## stop the local control plane started by cluster-up
	$(RUN) python -m smith_controlplane down

chaos: sync controlplane ## fault injection and hostile input at full size (make test runs a short version)
	SMITH_CHAOS=full $(RUN) pytest tests/chaos $(ARGS)

tilt-ci: sync controlplane ## the Tiltfile for real: build Tilt once, then `tilt ci` against a local plane
	$(RUN) python tools/tilt/ci.py

bench: sync controlplane ## benchmarks (bench/; docs/performance.md)
	$(RUN) python -m bench $(ARGS)

profile: sync controlplane ## py-spy on every service while reference chains converge (bench/profile.py)
	$(RUN) python -m bench.profile $(ARGS)

clean: ## remove caches and the local uv (not the control plane binaries)
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .hypothesis .tools
