"""Every module a DVC stage runs is one of its dependencies in dvc.yaml, and nothing else
of the package is: changing the code of a stage reruns it, changing another stage's code
does not.

The modules a stage runs are found from the source: the imports of the stage's module
``clipreid.stages.<stage>`` (wherever they are in it), then, transitively, every
``clipreid`` import of each module reached and the packages' ``__init__`` files. The
package uses absolute imports only (the walk fails on a relative one) and imports no
module of its own by name at run time (importlib), the CLI aside.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
STAGES = ("prepare", "validate", "prompt", "finetune", "evaluate", "export")
#: Modules that cannot change a stage's outputs, so no stage depends on them: the
#: package's docstring, exception classes, the command line (it only dispatches), the
#: params schema and reader (they check params.yaml, whose values DVC tracks, and never
#: change a value: tests/config/test_schema.py) and the file layout (its paths are
#: dvc.yaml's own, tests/test_layout.py).
NOT_DEPENDENCIES = {"clipreid/__init__.py", "clipreid/errors.py", "clipreid/cli.py",
                    "clipreid/config/__init__.py", "clipreid/config/schema.py",
                    "clipreid/config/params.py", "clipreid/config/compose.py",
                    "clipreid/stages/__init__.py", "clipreid/stages/layout.py"}


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` (a package's __init__.py), or None."""
    path = SRC.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def imported_modules(tree) -> set[str]:
    """``clipreid`` modules imported anywhere in ``tree`` (for ``from package import
    name``, the submodule ``package.name`` where there is one)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "clipreid"}
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"relative import (line {node.lineno}): the walk follows "
                                 "absolute imports only; write 'from clipreid...'")
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] == "clipreid":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if module_file(f"{node.module}.{a.name}")}
    return found


def has_code(path: Path) -> bool:
    """Whether a module does more than carry a docstring."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
               for n in body)


def files_run_by(stage: str) -> set[str]:
    todo, seen = {f"clipreid.stages.{stage}"}, set()
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo |= {".".join(parts[:i]) for i in range(1, len(parts))}  # parent packages
        todo |= imported_modules(ast.parse(module_file(name).read_text()))
    return {module_file(name).relative_to(SRC).as_posix() for name in seen
            if has_code(module_file(name))}


def declared_code(stage: str) -> list[str]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec.get("deps", [])]
    return [d.removeprefix("src/") for d in deps if d.startswith("src/")]


def covered(path: str, declared: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in declared)


@pytest.mark.parametrize("stage", STAGES)
def test_every_module_a_stage_runs_is_a_dependency(stage):
    declared = declared_code(stage)
    missing = sorted(f for f in files_run_by(stage) - NOT_DEPENDENCIES
                     if not covered(f, declared))
    assert not missing, f"dvc.yaml stage '{stage}' runs {missing} but does not depend on them"


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_depends_on_no_module_it_does_not_run(stage):
    run = files_run_by(stage)
    package = [p.relative_to(SRC).as_posix() for p in (SRC / "clipreid").rglob("*.py")]
    extra = sorted(f for f in package if covered(f, declared_code(stage)) and f not in run
                   and has_code(SRC / f))
    assert not extra, f"dvc.yaml stage '{stage}' depends on {extra}, which it does not run"


def test_the_import_walk_finds_what_a_stage_runs():
    """The walk itself: fine-tuning reaches its sampler through two levels of imports,
    and the training stages do not reach the evaluation package."""
    finetune = files_run_by("finetune")
    assert {"clipreid/training/finetune.py", "clipreid/loader/sampler.py",
            "clipreid/model/backbone.py", "clipreid/io.py"} <= finetune
    assert not any(f.startswith("clipreid/evaluation/") for f in files_run_by("prompt"))
    assert "clipreid/loader/sampler.py" not in files_run_by("prompt")


def test_no_package_imports_upward():
    """Layers: nothing below the stages imports a stage, the CLI or the orchestration;
    the model knows no files of data sets, training or evaluation; the input pipeline
    knows no model."""
    rules = {"clipreid/model/": ("clipreid.dataset", "clipreid.training",
                                 "clipreid.evaluation", "clipreid.stages", "clipreid.loader"),
             "clipreid/loader/": ("clipreid.model", "clipreid.training",
                                  "clipreid.evaluation", "clipreid.stages"),
             "clipreid/dataset/": ("clipreid.model", "clipreid.training", "clipreid.loader",
                                   "clipreid.evaluation", "clipreid.stages"),
             "clipreid/training/": ("clipreid.evaluation", "clipreid.stages",
                                    "clipreid.dataset"),
             "clipreid/evaluation/": ("clipreid.training", "clipreid.stages"),
             "clipreid/config/": ("clipreid.dataset", "clipreid.model", "clipreid.training",
                                  "clipreid.evaluation", "clipreid.stages", "clipreid.loader"),
             "clipreid/runtime.py": ("clipreid.training", "clipreid.model", "clipreid.stages"),
             "clipreid/distributed.py": ("clipreid.training", "clipreid.model",
                                         "clipreid.stages", "clipreid.loader"),
             "clipreid/features.py": ("clipreid.training", "clipreid.stages")}
    bad = []
    for path in (SRC / "clipreid").rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        for prefix, banned in rules.items():
            if rel.startswith(prefix):
                for name in imported_modules(ast.parse(path.read_text())):
                    if name.startswith(banned):
                        bad.append(f"{rel} imports {name}")
    assert not bad, bad
