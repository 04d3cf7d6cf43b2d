# CPU image of the pipeline: `docker build -t clipreid .` then
#   docker run --rm -v "$PWD:/work" -w /work clipreid make repro
# (mount a clone of the repository: DVC needs its git history).
# For CUDA, start from an nvidia/cuda runtime image with Python 3.11 instead; the
# registry's torch 2.14.1 wheel for x86_64 is the CUDA build and runs on either.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends git make \
    && rm -rf /var/lib/apt/lists/*

ENV DVC_NO_ANALYTICS=1 \
    GX_ANALYTICS_ENABLED=false \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /opt/clipreid
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install --upgrade "pip<26.2" && python -m pip install -e ".[test]"

WORKDIR /work
CMD ["dvc", "repro"]
