# The two commands of the README: `make repro` (set up, then run the pipeline) and
# `make test` (set up, then run the tests). Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin

# The venv's commands (clipreid, dvc) first on PATH, for DVC's stage commands too.
export PATH := $(BIN):$(PATH)
# No telemetry, nothing waits on the network.
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: repro test setup params clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip<26.2"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

repro: setup
	dvc repro

test: setup
	python -m pytest

# Recompose params.yaml after editing conf/ (plain `dvc repro` reads params.yaml only).
params: setup
	clipreid compose

clean:
	rm -rf $(VENV)
