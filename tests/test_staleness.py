"""Exactly which stages a code change makes stale: in a copy of the micro project after
`dvc repro`, a comment is appended to each module of src/ in turn and `dvc status`
names the stages whose dependencies changed (those after them rerun only if the outputs
of these change)."""

from __future__ import annotations

import json
from pathlib import Path

from project_support import copy_project, run

ALL = ("prepare", "validate", "prompt", "finetune", "evaluate", "export")
MODEL_USERS = ("prompt", "finetune", "evaluate", "export")
TRAINING = ("prompt", "finetune")
NONE = ()

#: Module -> the stages that `dvc status` reports changed when it is edited. By hand.
EXPECTED = {
    "clipreid/__init__.py": NONE,
    "clipreid/cli.py": NONE,                    # dispatches only
    "clipreid/official.py": NONE,               # import-official, a command outside the graph
    "clipreid/embed.py": ("export",),           # embed; export scores its ONNX files with it
    "clipreid/gallery.py": NONE,                # index and search, commands outside the graph
    "clipreid/errors.py": NONE,
    "clipreid/config/__init__.py": NONE,
    "clipreid/config/compose.py": NONE,         # params.yaml's values are what DVC tracks
    "clipreid/config/params.py": NONE,
    "clipreid/config/schema.py": NONE,
    "clipreid/stages/__init__.py": NONE,
    "clipreid/stages/layout.py": NONE,          # its paths are dvc.yaml's own
    "clipreid/stages/prepare.py": ("prepare",),
    "clipreid/stages/validate.py": ("validate",),
    "clipreid/stages/prompt.py": ("prompt",),
    "clipreid/stages/finetune.py": ("finetune",),
    "clipreid/stages/evaluate.py": ("evaluate",),
    "clipreid/stages/export.py": ("export",),
    "clipreid/stages/common.py": TRAINING,
    "clipreid/io.py": ALL,
    "clipreid/dataset/__init__.py": NONE,
    "clipreid/dataset/manifest.py": ALL,
    "clipreid/dataset/prepare.py": ("prepare",),
    # the synthetic set's generator is its data (dataset.source): validate reads it too
    "clipreid/dataset/synthetic.py": ("prepare", "validate"),
    "clipreid/dataset/readers/__init__.py": ("prepare",),
    "clipreid/dataset/readers/_common.py": ("prepare",),
    "clipreid/dataset/readers/custom.py": ("prepare",),
    "clipreid/dataset/readers/folders.py": ("prepare",),
    "clipreid/dataset/readers/market.py": ("prepare",),
    "clipreid/dataset/readers/msmt17.py": ("prepare",),
    "clipreid/dataset/readers/vehicleid.py": ("prepare",),
    "clipreid/dataset/readers/veri.py": ("prepare",),
    "clipreid/validation/__init__.py": ("validate",),
    "clipreid/validation/_gx.py": ("validate",),
    "clipreid/validation/checks.py": ("validate",),
    "clipreid/validation/datadocs.py": ("validate",),
    "clipreid/validation/engine.py": ("validate",),
    "clipreid/validation/frames.py": ("validate",),
    "clipreid/validation/images.py": ("validate",),
    "clipreid/validation/report.py": ("validate",),
    "clipreid/validation/runner.py": ("validate",),
    "clipreid/validation/settings.py": ("validate",),
    "clipreid/validation/suites.py": ("validate",),
    "clipreid/loader/__init__.py": NONE,
    "clipreid/loader/images.py": MODEL_USERS,
    "clipreid/loader/pixels.py": ("validate", *MODEL_USERS),  # validation checks the same
    "clipreid/loader/transforms.py": ("prompt", "evaluate", "export"),
    "clipreid/loader/sampler.py": ("finetune",),
    "clipreid/loader/decoded.py": ("finetune",),
    "clipreid/distributed.py": ("prompt", "finetune"),
    "clipreid/loader/augment.py": ("finetune",),
    "clipreid/model/__init__.py": MODEL_USERS,
    "clipreid/model/backbone.py": MODEL_USERS,
    "clipreid/model/image_encoder.py": MODEL_USERS,
    "clipreid/model/reid.py": MODEL_USERS,
    "clipreid/model/text_encoder.py": MODEL_USERS,
    "clipreid/model/saved.py": ("finetune", "evaluate", "export"),
    "clipreid/losses.py": TRAINING,
    "clipreid/runtime.py": ("prompt", "finetune", "evaluate", "export"),
    "clipreid/features.py": ("prompt", "evaluate"),
    "clipreid/training/__init__.py": NONE,
    "clipreid/training/prompt.py": ("prompt",),
    "clipreid/training/finetune.py": ("finetune",),
    "clipreid/training/checkpoint.py": TRAINING,
    "clipreid/training/live.py": TRAINING,
    "clipreid/training/run.py": TRAINING,
    "clipreid/training/schedules.py": TRAINING,
    "clipreid/evaluation/__init__.py": ("evaluate", "export"),
    "clipreid/evaluation/distance.py": ("evaluate", "export"),
    "clipreid/evaluation/inputs.py": ("evaluate", "export"),
    "clipreid/evaluation/metrics.py": ("evaluate", "export"),
    "clipreid/evaluation/plots.py": ("evaluate", "export"),
    "clipreid/evaluation/protocols.py": ("evaluate", "export"),
    "clipreid/evaluation/query_expansion.py": ("evaluate", "export"),
    "clipreid/evaluation/ranking.py": ("evaluate", "export"),
    "clipreid/evaluation/rerank.py": ("evaluate", "export"),
    "clipreid/evaluation/results.py": ("evaluate", "export"),
    "clipreid/evaluation/thresholds.py": ("evaluate", "export"),
    "clipreid/export.py": ("export",),
    "clipreid/model_card.py": ("export",),
    "hydra_plugins/clipreid_params/__init__.py": NONE,
}


def stale_stages(root: Path) -> set[str]:
    status = json.loads(run(["dvc", "status", "--json"], root).stdout or "{}")
    return set(status)


def test_the_table_covers_every_module():
    src = Path(__file__).resolve().parents[1] / "src"
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.py")) == sorted(EXPECTED)


def test_each_module_makes_exactly_its_stages_stale(micro_project, tmp_path):
    root = copy_project(micro_project[0], tmp_path / "project")
    assert stale_stages(root) == set()
    wrong = {}
    for module, expected in EXPECTED.items():
        path = root / "src" / module
        original = path.read_bytes()
        path.write_bytes(original + b"\n# an edit that changes no behaviour\n")
        try:
            got = stale_stages(root)
        finally:
            path.write_bytes(original)
        if got != set(expected):
            wrong[module] = {"expected": sorted(expected), "stale": sorted(got)}
    assert not wrong, json.dumps(wrong, indent=1)
    assert stale_stages(root) == set()
