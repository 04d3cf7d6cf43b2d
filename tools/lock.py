"""Write requirements.lock: the whole environment of ``pip install -e ".[test]"``, pinned.

Every package that the install brings in, transitively, is written as
``name==version --hash=sha256:...`` (the hash of the file that pip chose), for pip's
hash-checking mode; the project itself is left out. pyproject.toml's build requirements
(setuptools, wheel) are resolved with it, so that ``make setup`` can install the project
without build isolation, from locked packages only.

The resolution is pip's own: a dry run of the install into an empty environment
(``--ignore-installed``), with the machine's pip configuration (indexes, constraints),
whose JSON installation report names each package, its version and its file's hashes.

The header of the lock records a digest of pyproject.toml's dependency lists, so that a
test (tests/test_environment_lock.py) can tell when they changed without a new lock.

Usage (run with the venv's python, as ``make lock`` does)::

    python tools/lock.py                    # resolve and write requirements.lock
    python tools/lock.py --report r.json    # write it from a report already made

Standard library only, plus ``packaging`` (pip's vendored copy where it is not installed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from urllib.parse import unquote, urlparse

try:
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
except ImportError:  # a bare venv: pip's vendored copy
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
#: The extra of pyproject.toml that the lock includes.
EXTRA = "test"
#: The header line that records the digest of pyproject.toml's dependency lists.
DIGEST_PREFIX = "# pyproject-dependencies-sha256:"


def read_pyproject(path: Path = PYPROJECT) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def dependency_lists(path: Path = PYPROJECT) -> dict[str, list[str]]:
    """pyproject.toml's [project].dependencies and its test extra, each normalised: every
    requirement with its whitespace removed, the list sorted."""
    project = read_pyproject(path)["project"]
    lists = {
        "dependencies": project.get("dependencies", []),
        EXTRA: project.get("optional-dependencies", {}).get(EXTRA, []),
    }
    return {key: sorted("".join(req.split()) for req in reqs) for key, reqs in lists.items()}


def dependencies_digest(path: Path = PYPROJECT) -> str:
    """sha256 of the normalised dependency lists (canonical JSON), as hex."""
    text = json.dumps(dependency_lists(path), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def build_requirements(path: Path = PYPROJECT) -> list[str]:
    return list(read_pyproject(path).get("build-system", {}).get("requires", []))


def resolve_command(report: Path, path: Path = PYPROJECT) -> list[str]:
    """pip's dry-run install of the project with its test extra and build requirements."""
    return [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--quiet", "--report", str(report), "-e", f"{path.parent}[{EXTRA}]",
            *build_requirements(path)]


def resolve(path: Path = PYPROJECT) -> dict:
    """Run pip's resolver and return its installation report."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(resolve_command(report, path), check=True)
        return json.loads(report.read_text())


def sha256_of(item: dict) -> list[str]:
    """The sha256 hashes of one report entry's file: those pip recorded, or, for a local
    file that came without one, computed here; an error when there is none."""
    info = item["download_info"]
    hashes = info.get("archive_info", {}).get("hashes", {})
    if "sha256" in hashes:
        return [hashes["sha256"]]
    legacy = info.get("archive_info", {}).get("hash", "")
    if legacy.startswith("sha256="):
        return [legacy.removeprefix("sha256=")]
    url = urlparse(info["url"])
    if url.scheme == "file" and Path(unquote(url.path)).is_file():
        return [hashlib.sha256(Path(unquote(url.path)).read_bytes()).hexdigest()]
    name = item["metadata"]["name"]
    raise SystemExit(f"lock: no sha256 for {name} ({info['url']}): not an archive pip "
                     "can check (a VCS or directory requirement?); pin a released version")


def lock_lines(report: dict, project: str) -> list[str]:
    """``name==version --hash=sha256:...`` for every package the report installs, but the
    project; sorted by normalised name."""
    lines = {}
    for item in report["install"]:
        name = canonicalize_name(item["metadata"]["name"])
        if name == canonicalize_name(project):
            continue
        if name in lines:
            raise SystemExit(f"lock: {name} twice in pip's report")
        hashes = " ".join(f"--hash=sha256:{h}" for h in sha256_of(item))
        lines[name] = f"{name}=={item['metadata']['version']} {hashes}"
    return [lines[name] for name in sorted(lines)]


def render(report: dict, path: Path = PYPROJECT) -> str:
    project = read_pyproject(path)["project"]["name"]
    env = report.get("environment", {})
    build = " ".join(f'"{r}"' for r in build_requirements(path))
    header = [
        "# requirements.lock: every package that `pip install -e \".[test]\"` installs,",
        "# transitively (the project itself left out), with pyproject.toml's build",
        f"# requirements ({build}), each pinned to one version and",
        "# the sha256 of the file pip chose, for pip's hash-checking mode.",
        "#",
        "# Made by tools/lock.py from the JSON installation report of pip's resolver:",
        "#   python -m pip install --dry-run --ignore-installed --quiet --report report.json \\",
        f"#     -e \".[test]\" {build}",
        f"# (pip {report.get('pip_version', '?')}, "
        f"{env.get('implementation_name', '?')} {env.get('python_full_version', '?')}, "
        f"{env.get('sys_platform', '?')} {env.get('platform_machine', '?')}: the files are "
        "those for this platform).",
        "# Do not edit by hand. After changing pyproject.toml's dependencies, regenerate it:",
        "#   make lock",
        "# `make setup` installs from it:",
        "#   python -m pip install --require-hashes --no-deps -r requirements.lock",
        "#   python -m pip install --no-deps --no-build-isolation -e .",
        f"{DIGEST_PREFIX} {dependencies_digest(path)}",
        "",
    ]
    return "\n".join(header + lock_lines(report, project)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT)
    parser.add_argument("--output", type=Path, default=LOCK)
    parser.add_argument("--report", type=Path,
                        help="use this pip installation report instead of resolving")
    args = parser.parse_args(argv)

    requires_python = read_pyproject(args.pyproject)["project"].get("requires-python", "")
    if not SpecifierSet(requires_python).contains(platform.python_version()):
        raise SystemExit(f"lock: Python {platform.python_version()} is outside the "
                         f"project's requires-python {requires_python!r}; use the venv's")
    report = json.loads(args.report.read_text()) if args.report else resolve(args.pyproject)
    text = render(report, args.pyproject)
    old = args.output.read_text() if args.output.exists() else None
    if text == old:
        print(f"{args.output.name}: unchanged")
    else:
        args.output.write_text(text)
    count = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    print(f"{args.output.name}: {count} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
