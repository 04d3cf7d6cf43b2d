"""Every module a DVC stage runs is one of its dependencies in dvc.yaml, so that changing
the code of a stage (its sampler, its transforms, the way it saves) reruns it.

The modules a stage runs are found from the source: the imports of the ``clipreid``
command's function for the stage and of ``clipreid.stages``' function of the same name
(its module-level imports included), then, transitively, every ``clipreid`` import of
each module reached (wherever it is in the module) and the packages' ``__init__`` files.
The package uses absolute imports only (the walk fails on a relative one) and imports no
module of its own by name at run time (importlib).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
STAGES = ("prepare", "validate", "prompt", "finetune", "evaluate", "export")
#: Modules whose changes cannot change a stage's outputs: the package's version string,
#: exception classes, the command-line parsing (whose output paths dvc.yaml declares)
#: and the stage's parameter selection (a copy of dvc.yaml's, tests/test_config.py).
NOT_DEPENDENCIES = {"clipreid/__init__.py", "clipreid/errors.py", "clipreid/cli.py",
                    "clipreid/params.py"}


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` (a package's __init__.py), or None."""
    path = SRC.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def imported_modules(nodes) -> set[str]:
    """``clipreid`` modules imported by the statements under ``nodes`` (for ``from
    package import name``, the submodule ``package.name`` where there is one)."""
    found = set()
    for node in (n for top in nodes for n in ast.walk(top)):
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


def function_node(module: str, name: str) -> ast.FunctionDef:
    tree = ast.parse(module_file(module).read_text())
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def module_level_imports(module: str) -> set[str]:
    tree = ast.parse(module_file(module).read_text())
    return imported_modules([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))])


#: Modules of which only the parts named above are followed: each holds one function per
#: stage, importing what that stage alone needs.
ENTRY_MODULES = {"clipreid.cli", "clipreid.stages"}


def stage_functions(stage: str) -> list[ast.FunctionDef]:
    """``clipreid.stages``' function for ``stage`` and the helpers of that module it
    calls, directly or through other helpers."""
    tree = ast.parse(module_file("clipreid.stages").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    found, todo = {}, [stage]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = functions[name]
        todo += [n.func.id for n in ast.walk(functions[name]) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name) and n.func.id in functions]
    return list(found.values())


def has_code(path: Path) -> bool:
    """Whether a module does more than carry a docstring."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
               for n in body)


def files_run_by(stage: str) -> set[str]:
    todo = imported_modules([function_node("clipreid.cli", f"cmd_{stage}"),
                             *stage_functions(stage)])
    todo |= module_level_imports("clipreid.stages")
    seen = set(ENTRY_MODULES)
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo |= {".".join(parts[:i]) for i in range(1, len(parts))}  # parent packages
        todo |= imported_modules([ast.parse(module_file(name).read_text())])
    run = {name for name in seen - ENTRY_MODULES if has_code(module_file(name))}
    return {module_file(name).relative_to(SRC).as_posix() for name in run} | \
        {"clipreid/stages.py"}


def declared_code(stage: str) -> list[str]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec.get("deps", [])]
    return [d.removeprefix("src/") for d in deps if d.startswith("src/")]


@pytest.mark.parametrize("stage", STAGES)
def test_every_module_a_stage_runs_is_a_dependency(stage):
    declared = declared_code(stage)
    missing = sorted(f for f in files_run_by(stage) - NOT_DEPENDENCIES
                     if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in declared))
    assert not missing, f"dvc.yaml stage '{stage}' runs {missing} but does not depend on them"


def test_the_import_walk_finds_what_a_stage_runs():
    """The walk itself: fine-tuning reaches its sampler through two levels of imports,
    and the training stages do not reach the evaluation package."""
    finetune = files_run_by("finetune")
    assert {"clipreid/train/fine_tuning.py", "clipreid/data/sampler.py",
            "clipreid/model/backbone.py", "clipreid/io.py"} <= finetune
    assert not any(f.startswith("clipreid/evaluation/") for f in files_run_by("prompt"))
