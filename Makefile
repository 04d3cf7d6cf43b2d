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

.PHONY: repro test setup browser params pipeline retrain serve clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip<26.2"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

repro: setup
	dvc repro

test: setup browser
	python -m pytest

# The Data Docs test renders the validation report in headless Chromium (Debian's).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Recompose params.yaml after editing conf/ (plain `dvc repro` reads params.yaml only).
params: setup
	clipreid compose

# Prefect flows over DVC (pipelines/README.md): the pipeline as retried tasks, a
# retraining that promotes only a model that is not worse, and its weekly schedule.
pipeline: setup
	python -m pipelines.run_pipeline

retrain: setup
	python -m pipelines.retrain

serve: setup
	python -m pipelines.serve

clean:
	rm -rf $(VENV)
