# TG-Matrix — the two commands a new machine needs:
#   make up     set up everything and start the whole system on the embedded default
#   make test   set up everything and run every test tier (unit, component, integration, e2e)
# Only Python 3.11 is required beforehand; uv is installed into .tools/ and builds .venv from uv.lock.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
PY     := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
# The campaign e2e runs issue 5's scenario at a tenth of its size in `make test` (200 paced messages,
# minutes -> about a minute); `make test-soak` runs it at full size (2,000 messages, 20 accounts).
# The ads e2e makes one rotation run in `make test` and three (a minute apart) under `make test-soak`.
export TGM_E2E_CAMPAIGN_SCALE ?= 0.1

.PHONY: up install chromium promtool check-deploy test test-serial test-unit test-integration test-e2e test-soak lint typecheck schemas bench bench-soak clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==0.13.9"

$(VENV)/.installed: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)
	$(UV) sync --all-packages --frozen --python $(PYTHON)
	@touch $@

# The operator console (console/): npm ci from the committed lock, then its build, only when an input
# changed (the stamp console/dist/.built); Debian's chromium and a CJK font (the Chinese screens) for
# its browser tests when missing (no Playwright browser download). Needs Node.js 20+ and npm; without
# them the console is skipped with a note (the gateway's `/` then says how to build it).
CONSOLE_INPUTS := console/package.json console/package-lock.json console/index.html console/vite.config.ts \
	console/tsconfig.json console/scripts/gen-types.mjs $(shell find console/src -type f -not -name 'types.gen.ts' 2>/dev/null) \
	$(wildcard libs/contracts/schemas/commands/*.json libs/contracts/schemas/events/*.json)

console/dist/.built: $(CONSOLE_INPUTS)
	@if command -v npm >/dev/null; then \
		cd console && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund && npm run build && touch dist/.built; \
	else echo "npm not found: the console is not built (install Node.js 20+ and run make install again)"; fi

chromium:
	@(command -v chromium >/dev/null && fc-list | grep -qi "noto sans cjk") || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk)

# promtool (tests/deploy/test_promtool.py checks the alert rules with it) from Debian's prometheus package
# when missing. A policy-rc.d that refuses every start keeps the package's own Prometheus daemon from
# starting during the install; it is removed again only if this target created it.
promtool:
	@command -v promtool >/dev/null || { \
		created=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
			chmod +x /usr/sbin/policy-rc.d; created=1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
		rc=$$?; [ -n "$$created" ] && rm -f /usr/sbin/policy-rc.d; exit $$rc; }

install: $(VENV)/.installed console/dist/.built chromium promtool

up: install
	$(VENV)/bin/tgm-stack up


# What CI runs: two pytest-xdist workers, a test file at a time on each (about 20 min; one process takes
# 36-40 min, over the 30-min budget). `make test-serial` runs the same tests in one process.
test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n 2 --dist loadfile

test-serial: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest -m "unit or component"

test-integration: install
	$(PY) -m pytest -m integration

test-e2e: install
	$(PY) -m pytest -m e2e

test-soak: install
	TGM_E2E_CAMPAIGN_SCALE=1 TGM_SOAK=1 $(PY) -m pytest tests/e2e/test_campaign_e2e.py tests/e2e/test_automation_campaign_e2e.py \
		tests/e2e/test_ads_e2e.py tests/e2e/test_truth_e2e.py tests/e2e/test_schemathesis_e2e.py services/ai/tests/test_knowledge.py -s

# The deployment checks alone (deploy/README.md): compose against the Compose Specification, the k8s
# kustomization against the Kubernetes schemas, promtool on the alert rules, the files cross-checked.
# They are also part of `make test`; no Docker engine or cluster is needed.
check-deploy: install
	$(PY) -m pytest tests/deploy

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy -p tgm_contracts -p tgm_runtime -p tgm_gateway -p tgm_session -p tgm_campaign -p tgm_ai -p tgm_analytics -p tgm_tailchat

schemas: install
	$(VENV)/bin/tgm-schemas write
	$(PY) deploy/generate.py

bench: install
	$(PY) bench/gateway/run.py
	$(PY) bench/automation/run.py
	$(PY) bench/collaboration/run.py --quick

# Issue 16's soak: an hour of steady mixed load on the emulator, every process's memory at the start
# and the end (bench/soak/README.md). Not part of `make bench`: it takes 65 minutes.
bench-soak: install
	$(PY) bench/soak/run.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .mypy_cache
