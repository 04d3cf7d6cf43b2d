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

.PHONY: repro test setup lock browser params pipeline retrain serve clean exps

# In the container image (Dockerfile) the environment is the image's own, installed
# from the same lock, with the mounted project editable: no .venv is made.
ifdef CLIPREID_CONTAINER
setup:
	@python -c "import clipreid"
else
setup: $(VENV)/.installed
endif

# The whole environment comes from requirements.lock (pinned, with hashes: `make lock`);
# the project then installs without build isolation, from the locked setuptools and wheel.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip<26.2"
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Pin the whole environment again after changing pyproject.toml's dependencies: pip's
# resolver writes requirements.lock through tools/lock.py (tests/test_environment_lock.py
# fails while the lock is stale).
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/lock.py

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

# The experiments side by side: what changed between them, best mAP first (fits a
# 120-column terminal with mAP and rank-1 in the first columns).
exps: setup
	dvc exp show --no-pager --only-changed --sort-by metrics/evaluation.json:mAP \
	  --sort-order desc --drop 'Created|State|Executor|models/.*|data/.*|src/.*'

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
