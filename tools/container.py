"""Build the project's image and run commands in it, without a Docker engine.

Machines with no Docker engine and no access to image registries (ours) can still build
and run OCI images as root with Debian's ``buildah`` and ``podman``, from a base image
made locally with ``debootstrap``. This script does that, for the container test
(tests/test_container.py) and for anyone in the same situation:

    python tools/container.py build SRC            # image from the Dockerfile in SRC
    python tools/container.py run PROJECT -- dvc repro

``build`` installs the tools with apt when they are missing, makes the base image once
(Debian bookworm, minbase, with python3, pip, venv and CA certificates: Debian's Python
is 3.11, as the lock needs) and builds ``SRC/Dockerfile`` on it with ``--layers``, so
that a second build reuses the environment layer. ``run`` starts a container of the
image with PROJECT mounted at /workspace, as the image's non-root user, with no
network.

Everything it keeps (base root file system, image storage, pip cache) lives in one
folder outside the repository: ``$CLIPREID_CONTAINER_CACHE``, by default
/var/tmp/clipreid-container. Where pip is configured with local wheel folders or
``file://`` indexes (this machine's torch), they are mounted read-only into the build
and passed on as PIP_* build arguments.

Flags that this machine needs, found by trying (each is explained where it is used):
``--isolation chroot`` for the build, ``--runtime runc`` and explicit rlimits for
``podman run``, and the overlay storage driver under our own ``--root``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("CLIPREID_CONTAINER_CACHE", "/var/tmp/clipreid-container"))
BASE_IMAGE = "localhost/clipreid-base:bookworm"
IMAGE = "localhost/clipreid:latest"
TOOLS = {"buildah": "buildah", "podman": "podman", "runc": "runc",
         "debootstrap": "debootstrap", "newuidmap": "uidmap"}
BASE_PACKAGES = "python3,python3-pip,python3-venv,ca-certificates"
LOCAL_CA_FOLDER = Path("/usr/local/share/ca-certificates")


class ContainerError(RuntimeError):
    """A step of building or running the image failed; the message says which."""


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, **{"check": True, **kwargs})


def storage_options() -> list[str]:
    """buildah's and podman's storage, in the cache folder (shared by both)."""
    return ["--root", str(CACHE / "storage"), "--runroot", str(CACHE / "run"),
            "--storage-driver", "overlay"]


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None
            and not Path("/usr/sbin", tool).exists()]


def ensure_tools() -> None:
    """Install buildah, podman, runc, debootstrap and uidmap with apt when missing."""
    missing = missing_tools()
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ContainerError(
            f"missing {', '.join(missing)}; install Debian's "
            f"{' '.join(sorted(set(TOOLS.values())))} (as root, with apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(["apt-get", "update", "-qq"], env=env)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
          *sorted(set(TOOLS.values()))], env=env)
    if still := missing_tools():
        raise ContainerError(f"apt-get installed the packages but {still} are missing")


def debian_mirror() -> str:
    """The Debian mirror apt already uses (deb822 or one-line sources)."""
    for sources in sorted(Path("/etc/apt").glob("sources.list*")) + sorted(
            Path("/etc/apt/sources.list.d").glob("*")):
        if not sources.is_file():
            continue
        for line in sources.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] or words[:1] == ["deb"]:
                url = words[1] if words[0] == "URIs:" else words[-3]
                if "security" not in url:
                    return url
    return "http://deb.debian.org/debian"


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", *storage_options(), "image", "exists", name],
                          capture_output=True).returncode == 0


def ensure_base_image() -> None:
    """Debian bookworm from debootstrap, imported as BASE_IMAGE (once per cache)."""
    if image_exists(BASE_IMAGE):
        return
    rootfs = CACHE / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    _run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}",
          "bookworm", str(rootfs), debian_mirror()])
    # pip inside the build reaches the registry through this machine's CAs.
    if LOCAL_CA_FOLDER.is_dir():
        target = rootfs / LOCAL_CA_FOLDER.relative_to("/")
        target.mkdir(parents=True, exist_ok=True)
        for cert in LOCAL_CA_FOLDER.glob("*.crt"):
            shutil.copy2(cert, target / cert.name)
        _run(["chroot", str(rootfs), "update-ca-certificates"])
    for marker in (rootfs / "usr/lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    _run(["podman", *storage_options(), "import", "-", BASE_IMAGE], stdin=tar.stdout)
    if tar.wait() != 0:
        raise ContainerError(f"tar of {rootfs} failed")
    shutil.rmtree(rootfs)


def _pip_config() -> dict[str, str]:
    """pip's configured values (all scopes and PIP_* variables), by option name."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                         capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        values[key.rpartition(".")[2]] = value.strip().strip("'\"")
    return values


def local_pip_sources() -> tuple[list[str], list[str]]:
    """Build arguments and read-only volumes for pip's local indexes and wheel folders."""
    config = _pip_config()
    build_args, volumes = [], []
    for option, arg in (("extra-index-url", "PIP_EXTRA_INDEX_URL"),
                        ("find-links", "PIP_FIND_LINKS")):
        local = [v for v in config.get(option, "").split()
                 if v.startswith("file://") or v.startswith("/")]
        for value in local:
            folder = Path(value.removeprefix("file://"))
            root = Path("/", *folder.parts[1:3])  # e.g. /opt/pypi of /opt/pypi/simple
            if root.is_dir() and f"{root}:{root}:ro" not in volumes:
                volumes.append(f"{root}:{root}:ro")
        if local:
            build_args += ["--build-arg", f"{arg}={' '.join(local)}"]
    return build_args, volumes


def build(context: Path, tag: str = IMAGE) -> None:
    """Build CONTEXT/Dockerfile on the local base image, reusing cached layers."""
    ensure_tools()
    CACHE.mkdir(parents=True, exist_ok=True)
    ensure_base_image()
    build_args, volumes = local_pip_sources()
    _run(["buildah", *storage_options(), "bud", "--layers",
          # no user namespaces or seccomp setup for RUN steps: chroot works here.
          "--isolation", "chroot",
          "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", *build_args,
          *[f"--volume={v}" for v in volumes],
          "--tag", tag, str(context)])


def run_command(project: Path, command: list[str], tag: str = IMAGE,
                extra: list[str] = (), **kwargs) -> subprocess.CompletedProcess:
    """Run COMMAND in a container of TAG with PROJECT mounted at /workspace."""
    return _run(["podman", *storage_options(), "run", "--rm",
                 # crun fails on this machine's hybrid cgroups; runc works.
                 "--runtime", "runc", "--cgroup-manager", "cgroupfs",
                 "--network", "none",
                 # podman's default rlimits are refused here.
                 "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                 "--shm-size", "1g",
                 "-v", f"{project.resolve()}:/workspace", *extra,
                 tag, *command], **kwargs)


def image_size(tag: str = IMAGE) -> int:
    out = subprocess.run(["podman", *storage_options(), "image", "inspect",
                          "--format", "{{.Size}}", tag],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="build SRC/Dockerfile into " + IMAGE)
    b.add_argument("src", type=Path, nargs="?", default=Path("."))
    r = sub.add_parser("run", help="run a command with PROJECT mounted at /workspace")
    r.add_argument("project", type=Path)
    r.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.action == "build":
            build(args.src)
            print(f"{IMAGE}: {image_size() / 2**30:.1f} GiB")
        else:
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            run_command(args.project, command or ["dvc", "repro"])
    except (ContainerError, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
