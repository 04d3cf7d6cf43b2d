"""dvc.yaml and src/clipreid/stages/layout.py name the same files for every stage."""

from pathlib import Path

import pytest
import yaml

from clipreid.stages import STAGES, layout

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def paths(entries) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def test_the_graph_has_the_stages_in_order():
    assert tuple(DVC) == STAGES
    for stage in STAGES:
        assert DVC[stage]["cmd"] == f"clipreid {stage}"


@pytest.mark.parametrize("stage", STAGES)
def test_outputs_match_the_layout(stage):
    spec = DVC[stage]
    written = paths(spec.get("outs")) + paths(spec.get("metrics")) + paths(spec.get("plots"))
    assert sorted(written) == sorted(layout.OUTPUTS[stage])


@pytest.mark.parametrize("stage", STAGES)
def test_inputs_match_the_layout(stage):
    deps = [d for d in paths(DVC[stage].get("deps")) if not d.startswith("src/")]
    assert sorted(deps) == sorted(layout.INPUTS[stage])


@pytest.mark.parametrize("stage", STAGES)
def test_every_output_survives_a_failed_run(stage):
    """`persist`: DVC does not delete a stage's outputs before running it, so a run that
    stops (a refused param, a crash) leaves them as they were (the stages write
    atomically)."""
    for kind in ("outs", "metrics"):
        for entry in DVC[stage].get(kind) or []:
            assert isinstance(entry, dict) and next(iter(entry.values())).get("persist"), entry
