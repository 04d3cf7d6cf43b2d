"""The retraining flow on a copy of the real project (micro configuration): the champion is
re-scored by the real `evaluate` stage, and a promoted experiment's overrides are kept in
conf/, where the next experiment's composition reads them."""

from __future__ import annotations

import math

import pytest
import yaml

from clipreid.config.compose import params_drift
from pipelines.retrain import retrain
from pipelines_testkit import history, tracked_changes, write_config
from project_support import copy_project, run

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_a_promoted_recipe_is_where_the_next_experiment_starts(micro_project, tmp_path):
    root = copy_project(micro_project[0], tmp_path / "project")
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "champion"], root)
    config = str(write_config(tmp_path / "c.yaml", retraining={
        "champion_model": ["models/reid.pt"], "split_file": "reports/evaluation.json",
        "tolerance": 1.0, "floor_margin": None}))  # promote whatever the micro run scores

    first = retrain(repo=str(root), overrides=["finetune.epochs=1"], config_path=config)
    assert first["decision"] == "promoted", first
    assert first["reasons"] == ["overrides: finetune.epochs=1"]
    assert math.isfinite(first["champion_rescored"]["mAP"])
    assert first["champion_rescored"] == first["champion_committed"]  # same data, same model
    assert len(first["split"]) == 64  # the real evaluate stage's split digest
    kept = yaml.safe_load((root / "conf" / "kept" / "overrides.yaml").read_text())
    assert kept["finetune"]["epochs"] == 1
    committed = run(["git", "show", "--name-only", "--format=", "HEAD"], root).stdout.split()
    assert {"conf/kept/overrides.yaml", "params.yaml", "dvc.lock"} <= set(committed)
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["finetune"]["epochs"] == 1
    assert params_drift(params, root / "conf") == []  # conf/ composes the champion's recipe
    assert tracked_changes(root) == ""

    # The next retraining, with an override of its own, trains from the promoted recipe.
    second = retrain(repo=str(root), overrides=["evaluation.batch_size=16"],
                     config_path=config)
    assert second["decision"] == "promoted", second
    trained = run(["git", "show", f"{second['commit']}:params.yaml"], root).stdout
    trained = yaml.safe_load(trained)
    assert trained["finetune"]["epochs"] == 1 and trained["evaluation"]["batch_size"] == 16
    assert second["champion_rescored"] == second["challenger"]  # the same model as champion
    assert [h["decision"] for h in history(root)] == ["promoted", "promoted"]
