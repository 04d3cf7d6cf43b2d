"""requirements.lock pins the whole environment of pyproject.toml, and is not stale.

``make setup`` installs from the lock alone (hash-checking, ``--no-deps``), so a
dependency added to pyproject.toml without ``make lock`` would silently not be installed.
These checks read files only (no network, no pip): the digest of pyproject.toml's
dependency lists recorded in the lock's header, every requirement satisfied by one exact
pin, a sha256 for every pin, no name twice. Each check is a function of the two paths that
returns its problems, so that the tests at the end can show that each one fails on a
mutated copy.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
#: Pins that the project states on their own (the CUDA wheels on the registry).
EXPECTED_PINS = {"torch": "2.14.1", "torchvision": "0.29.1"}
SHA256 = re.compile(r"--hash=sha256:[0-9a-f]{64}")
#: A lock line: its name, the operator after it and the rest of its first word.
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(===|==|[<>=!~]*)(\S*)")

_spec = importlib.util.spec_from_file_location("lock_tool", ROOT / "tools" / "lock.py")
lock_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock_tool)


def lock_lines(lock: Path) -> list[str]:
    """The requirement lines of the lock (comments and blank lines left out, ``\\``
    continuations joined)."""
    text = lock.read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def locked(lock: Path) -> list[tuple[str, str | None, str]]:
    """(normalised name, pinned version or None when not ``==``, line) per lock line."""
    entries = []
    for line in lock_lines(lock):
        match = PIN.match(line)
        name, operator, version = match.groups() if match else (line.split()[0], "", "")
        entries.append((canonicalize_name(name), version if operator == "==" else None, line))
    return entries


def recorded_digest(lock: Path) -> str | None:
    for line in lock.read_text().splitlines():
        if line.startswith(lock_tool.DIGEST_PREFIX):
            return line.removeprefix(lock_tool.DIGEST_PREFIX).strip()
    return None


def project_requirements(pyproject: Path) -> list[Requirement]:
    """[project].dependencies and the test extra, parsed."""
    lists = lock_tool.read_pyproject(pyproject)["project"]
    reqs = lists.get("dependencies", []) + lists.get("optional-dependencies", {}).get("test", [])
    return [Requirement(r) for r in reqs]


def build_requirements(pyproject: Path) -> list[Requirement]:
    return [Requirement(r) for r in lock_tool.build_requirements(pyproject)]


def version_or_none(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


# -- the checks: each returns its problems -------------------------------------------------

def digest_problems(pyproject: Path, lock: Path) -> list[str]:
    recorded, current = recorded_digest(lock), lock_tool.dependencies_digest(pyproject)
    if recorded is None:
        return [f"{lock.name} has no '{lock_tool.DIGEST_PREFIX}' line: run `make lock`"]
    if recorded != current:
        return [f"pyproject.toml's dependencies changed since {lock.name} was made "
                f"(digest {current}, lock records {recorded}): run `make lock`"]
    return []


def requirement_problems(pyproject: Path, lock: Path,
                         requirements: list[Requirement] | None = None) -> list[str]:
    """Each requirement (that applies here) is satisfied by exactly one locked pin."""
    pins = [(name, version) for name, version, _ in locked(lock)]
    problems = []
    for req in project_requirements(pyproject) if requirements is None else requirements:
        if req.marker is not None and not req.marker.evaluate({"extra": "test"}):
            continue
        name = canonicalize_name(req.name)
        matching = [v for n, v in pins if n == name and v is not None
                    and (parsed := version_or_none(v)) is not None
                    and req.specifier.contains(parsed, prereleases=True)]
        if len(matching) != 1:
            found = [v for n, v in pins if n == name] or "nothing"
            problems.append(f"{req} is satisfied by {len(matching)} locked pins "
                            f"(the lock has {found}): run `make lock`")
    return problems


def pin_problems(lock: Path) -> list[str]:
    pins = {name: version for name, version, _ in locked(lock)}
    return [f"{name} is locked at {pins.get(name)}, not {version}"
            for name, version in EXPECTED_PINS.items() if pins.get(name) != version]


def hash_problems(lock: Path) -> list[str]:
    """Every line an exact ``name==version`` with at least one sha256 hash."""
    problems = []
    for name, version, line in locked(lock):
        if version is None or not re.fullmatch(r"[A-Za-z0-9._+!-]+", version):
            problems.append(f"not an exact name==version pin: {line}")
        if not SHA256.search(line):
            problems.append(f"no sha256 hash: {line}")
    return problems


def duplicate_problems(lock: Path) -> list[str]:
    counts = Counter(name for name, _, _ in locked(lock))
    return [f"{name} is locked {n} times" for name, n in sorted(counts.items()) if n > 1]


# -- the real files --------------------------------------------------------------------------

def test_lock_is_made_from_the_current_dependencies():
    assert digest_problems(PYPROJECT, LOCK) == []


def test_every_dependency_is_satisfied_by_one_locked_pin():
    assert requirement_problems(PYPROJECT, LOCK) == []


def test_build_requirements_are_locked_for_the_install_without_build_isolation():
    assert requirement_problems(PYPROJECT, LOCK, build_requirements(PYPROJECT)) == []


def test_torch_and_torchvision_pins():
    assert pin_problems(LOCK) == []


def test_every_pin_has_a_sha256_hash():
    assert locked(LOCK), "requirements.lock locks nothing"
    assert hash_problems(LOCK) == []


def test_no_package_is_locked_twice_and_the_project_not_at_all():
    assert duplicate_problems(LOCK) == []
    assert "clipreid" not in {name for name, _, _ in locked(LOCK)}


# -- each check fails where it should: mutated copies in tmp_path ----------------------------

@pytest.fixture
def copies(tmp_path):
    """Copies of pyproject.toml and requirements.lock to mutate."""
    return (Path(shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")),
            Path(shutil.copy(LOCK, tmp_path / "requirements.lock")))


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_checks_pass_on_unchanged_copies(copies):
    pyproject, lock = copies
    assert digest_problems(pyproject, lock) == []
    assert requirement_problems(pyproject, lock) == []
    assert pin_problems(lock) == hash_problems(lock) == duplicate_problems(lock) == []


def test_a_new_dependency_is_drift(copies):
    pyproject, lock = copies
    replace(pyproject, '"matplotlib",', '"matplotlib",\n    "flask>=3",')
    assert "run `make lock`" in digest_problems(pyproject, lock)[0]
    (problem,) = requirement_problems(pyproject, lock)
    assert "flask>=3" in problem and "nothing" in problem


def test_a_changed_test_extra_is_drift(copies):
    pyproject, lock = copies
    replace(pyproject, '"pytest-timeout"', '"pytest-timeout>=99"')
    assert digest_problems(pyproject, lock)
    assert len(requirement_problems(pyproject, lock)) == 1


def test_formatting_and_order_are_no_drift(copies):
    pyproject, lock = copies
    replace(pyproject, '"numpy",', '"numpy" ,')
    replace(pyproject, '"torch==2.14.1",', '"torch == 2.14.1",')
    replace(pyproject, '"pytest", "pytest-timeout"', '"pytest-timeout", "pytest"')
    assert digest_problems(pyproject, lock) == []


def test_a_lock_without_digest_or_with_an_old_one(copies):
    pyproject, lock = copies
    digest = recorded_digest(lock)
    replace(lock, digest, "0" * 64)
    assert digest_problems(pyproject, lock)
    replace(lock, f"{lock_tool.DIGEST_PREFIX} {'0' * 64}\n", "")
    assert "has no" in digest_problems(pyproject, lock)[0]


def test_a_pin_outside_a_requirement(copies):
    pyproject, lock = copies
    replace(lock, "\ndvc==3.67.1 ", "\ndvc==3.67.0 ")
    (problem,) = requirement_problems(pyproject, lock)
    assert problem.startswith("dvc==3.67.1")


def test_two_pins_of_one_requirement(copies):
    pyproject, lock = copies
    line = next(line for line in lock_lines(lock) if line.startswith("numpy=="))
    lock.write_text(lock.read_text() + line.replace("numpy==", "NumPy==1.") + "\n")
    assert len(requirement_problems(pyproject, lock)) == 1  # numpy: 2 pins satisfy it
    assert duplicate_problems(lock) == ["numpy is locked 2 times"]


def test_build_requirements_outside_the_lock(copies):
    pyproject, lock = copies
    line = next(line for line in lock_lines(lock) if line.startswith("wheel=="))
    replace(lock, line + "\n", "")
    assert requirement_problems(pyproject, lock) == []  # not a project dependency
    assert len(requirement_problems(pyproject, lock, build_requirements(pyproject))) == 1


@pytest.mark.parametrize("package", ["torch", "torchvision"])
def test_torch_pins(copies, package):
    _, lock = copies
    replace(lock, f"\n{package}=={EXPECTED_PINS[package]} ", f"\n{package}==2.13.0 ")
    (problem,) = pin_problems(lock)
    assert package in problem


def test_a_pin_without_sha256(copies):
    _, lock = copies
    line = next(line for line in lock_lines(lock) if line.startswith("six=="))
    replace(lock, line, line.split()[0])
    assert hash_problems(lock) == [f"no sha256 hash: {line.split()[0]}"]
    replace(lock, line.split()[0], line.replace("sha256", "md5"))
    assert len(hash_problems(lock)) == 1


def test_a_loose_pin(copies):
    _, lock = copies
    line = next(line for line in lock_lines(lock) if line.startswith("six=="))
    replace(lock, line, line.replace("six==", "six>="))
    assert hash_problems(lock) == [f"not an exact name==version pin: {line.replace('six==', 'six>=')}"]
