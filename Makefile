# faceswap-pipeline: the commands the README names. Every target sets the machine up first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
REQS := requirements-dev.txt requirements-engine.txt requirements-models.txt requirements-media.txt \
        layers/common/requirements.txt pyproject.toml scripts/setup.sh

.PHONY: setup demo up test bench validate build clean

setup: $(VENV)/.installed
$(VENV)/.installed: $(REQS)
	bash scripts/setup.sh

demo: setup          ## a real face swap through the real pipeline, locally
	$(PY) -m faceswap_local.demo

up: setup            ## the local stack in the foreground
	$(PY) -m faceswap_local.stack

test: setup          ## the whole test suite (CI runs exactly this)
	$(PY) -m pytest

bench: setup         ## speed and memory figures, measured in one run on this machine
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_engine.py
	$(PY) bench/bench_demo.py

validate:            ## sam validate --lint (needs aws-sam-cli; see README)
	sam validate --lint -t template.yaml

build:               ## sam build (needs python3.12 on PATH, no Docker)
	sam build -t template.yaml

clean:
	rm -rf .aws-sam .local-stack .bench
