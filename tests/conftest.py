"""Shared fixtures: small models and configs built in code; telemetry off."""

from __future__ import annotations

import os

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import pytest  # noqa: E402

TINY_VIT = {
    "name": "test_vit", "arch": "vit", "clip_name": None, "weights": None, "init_seed": 0,
    "input_size": [64, 32], "stride": 16, "sie": {"enabled": False, "coefficient": 1.0},
    "architecture": {
        "embed_dim": 32, "image_resolution": 32, "vision_layers": 2, "vision_width": 64,
        "vision_patch_size": 16, "context_length": 77, "vocab_size": 49408,
        "transformer_width": 32, "transformer_heads": 2, "transformer_layers": 2,
    },
}

TINY_RN = {
    **TINY_VIT, "name": "test_rn", "arch": "resnet",
    "architecture": {**TINY_VIT["architecture"], "vision_layers": [1, 1, 1, 1],
                     "vision_width": 8, "vision_patch_size": None},
}


@pytest.fixture
def tiny_vit_cfg():
    import copy

    return copy.deepcopy(TINY_VIT)


@pytest.fixture
def tiny_rn_cfg():
    import copy

    return copy.deepcopy(TINY_RN)


@pytest.fixture(scope="session")
def micro_project(tmp_path_factory):
    """A fresh git + DVC copy of the project with the micro configuration, after one
    `dvc repro` (returns its root and the repro's completed process). Tests that change
    it work on a copy (project_support.copy_project)."""
    from project_support import make_project, run

    root = make_project(tmp_path_factory.mktemp("micro") / "project")
    return root, run(["dvc", "repro"], root)
