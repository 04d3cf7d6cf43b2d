"""The container image, built and run for real (Podman, CPU).

The Dockerfile is built with buildah on a local Debian base (tools/container.py: this
machine has no Docker engine and reaches no image registry), from a fresh clone of this
repository. The same clone, owned by root, is mounted into a container that runs as the
image's non-root user, so git's "dubious ownership" check is in play. In it:
`clipreid --help`, the import of the mounted code (not a copy in the image), git, and
`dvc repro` of the embedded default to the end. The container's metrics/evaluation.json
must equal the host's: the file committed with dvc.lock, which a host `dvc repro`
wrote. With the host's pinned environment and CPU, every stage is deterministic, so the
whole run must also leave the clone unchanged (dvc.lock's output hashes included).

Slow (about a quarter of an hour for the pipeline, plus the first build: the base image
and the environment layer are then cached outside the repository, in
$CLIPREID_CONTAINER_CACHE). Skipped, with the reason, only where the tools cannot be
installed (not root, no apt).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("container", ROOT / "tools" / "container.py")
container = importlib.util.module_from_spec(spec)
spec.loader.exec_module(container)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(4800)]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A fresh clone of this repository, built into the image, mounted read-write."""
    try:
        container.ensure_tools()
    except (container.ContainerError, subprocess.CalledProcessError) as err:
        pytest.skip(f"buildah/podman cannot be installed here: {err}")
    clone = tmp_path_factory.mktemp("container") / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
                   check=True)
    container.build(clone)
    # Owned by root, writable by the container's user (uid 1000): git refuses such a
    # repository unless safe.directory allows it.
    subprocess.run(["chmod", "-R", "a+rwX", str(clone)], check=True)
    return clone


def in_container(project: Path, *command: str) -> subprocess.CompletedProcess:
    return container.run_command(project, list(command), capture_output=True, text=True,
                                 check=False)


def test_image_runs_the_mounted_code_as_a_non_root_user(project):
    done = in_container(project, "sh", "-c",
                        "id -u && python -c 'import clipreid; print(clipreid.__file__)'"
                        " && git status --porcelain && clipreid --help")
    assert done.returncode == 0, done.stderr[-4000:]
    uid, module, *rest = done.stdout.splitlines()
    assert uid == "1000"
    assert module == "/workspace/src/clipreid/__init__.py"
    help_text = "\n".join(rest)
    for command in ("prepare", "validate", "prompt", "finetune", "evaluate", "export"):
        assert command in help_text
    assert container.image_size() > 0


def test_dvc_repro_in_the_container_equals_the_host_run(project):
    host = json.loads(git("show", "HEAD:metrics/evaluation.json", cwd=project))
    done = in_container(project, "dvc", "repro")
    assert done.returncode == 0, done.stderr[-4000:]
    ran = json.loads((project / "metrics" / "evaluation.json").read_text())
    assert ran == host
    # Every output (prompts, weights, ONNX files, metrics) bit-identical to the host's.
    assert git("status", "--porcelain", cwd=project) == ""
    # Files written into the mount belong to the container's user, not root.
    assert (project / "models" / "reid.pt").stat().st_uid == 1000
    shown = in_container(project, "dvc", "exp", "show", "--no-pager", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)
