# syntax=docker/dockerfile:1
# CLIP-ReID pipeline image, for GPU hosts (and CPU ones). The image holds the pinned
# environment only; the project's code comes from the mounted clone:
#
#   docker build -t clipreid .
#   docker run --rm --gpus all --shm-size=8g --user "$(id -u):$(id -g)" \
#       -v "$PWD":/workspace clipreid dvc repro
#
# (README.md, "Containers": Podman, drivers, other CUDA builds, what was verified.)
#
# BASE_IMAGE: any Debian-based image with Python 3.11 and its venv module. The default
# carries no CUDA: the torch wheel in requirements.lock brings its own CUDA 13 libraries
# from PyPI, and the host's driver (>= 580, through the NVIDIA Container Toolkit) does
# the rest.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# git: DVC and the Prefect flows read the mounted project's history.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git make \
    && rm -rf /var/lib/apt/lists/*

# The environment, in its own layer before any code: a code edit never reinstalls
# torch and its CUDA libraries (about 5 GB). pip reads PIP_* build arguments, for a
# mirror or a local wheel folder (`--build-arg PIP_INDEX_URL=...`).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY requirements.lock /opt/clipreid/requirements.lock
RUN python3 -m venv "$VIRTUAL_ENV" \
    && python -m pip install --quiet --upgrade "pip<26.2" \
    && python -m pip install --quiet --require-hashes --no-deps \
        -r /opt/clipreid/requirements.lock

# A non-root user. The mounted project usually belongs to someone else (the host
# user, or root): git would refuse it as "dubious ownership", and with it
# `dvc exp show` and the flows. The container runs only the project it is given.
# HOME is writable by any uid, so `--user "$(id -u):$(id -g)"` works too.
RUN useradd --create-home --home-dir /home/clipreid --uid 1000 --shell /bin/bash clipreid \
    && chmod 0777 /home/clipreid \
    && git config --system --add safe.directory '*'

# The project, installed editable at /workspace, where the clone is mounted: the
# mounted src/clipreid is the code that runs, and the code DVC hashes. The copy made
# here only serves an image run without a mount.
WORKDIR /workspace
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install --quiet --no-deps --no-build-isolation -e /workspace \
    && rm -rf src/*.egg-info

# No telemetry; nothing waits on the network. CLIPREID_CONTAINER tells `make` that the
# environment is the image's (no .venv in the mounted project).
ENV HOME=/home/clipreid \
    DVC_NO_ANALYTICS=1 \
    GX_ANALYTICS_ENABLED=false \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLIPREID_CONTAINER=1
USER clipreid
CMD ["dvc", "repro"]
