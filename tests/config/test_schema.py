"""The params schema: every bad value is refused naming the key, the value and what is
allowed, by `clipreid compose` and by every stage, before anything changes."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml

from clipreid.cli import main
from clipreid.config.compose import compose, compose_text, keep_overrides, params_drift
from clipreid.config.params import read_params_file
from clipreid.config.schema import (
    CLIP_NAMES, Params, SeverityConfig, as_dict, from_dict, parse_params)
from clipreid.errors import ConfigError
from clipreid.validation.checks import default_severities

ROOT = Path(__file__).resolve().parents[2]

#: (override, what the message must say): wrong types, ranges, unknown keys and choices,
#: negative counts, rules across keys, and a missing data folder.
BAD_OVERRIDES = [
    ("finetune.epochs=abc", r"finetune.epochs='abc' is not allowed: expected an integer"),
    ("finetune.epochs=-1", r"finetune.epochs=-1 is not allowed: expected a value >= 1"),
    ("prompt.epochs=0", r"prompt.epochs=0 is not allowed: expected a value >= 1"),
    ("finetune.num_instances=-4", r"finetune.num_instances=-4 .*>= 2"),
    ("prompt.batch_size=0", r"prompt.batch_size=0 .*>= 1"),
    ("finetune.lr=0", r"finetune.lr=0 is not allowed: expected a value > 0"),
    ("prompt.lr=-1e-3", r"prompt.lr=-0.001 .*> 0"),
    ("device=gpu", r"device='gpu' is not allowed: expected one of 'auto', 'cpu', 'cuda'"),
    ("model.arch=vgg", r"model.arch='vgg' is not allowed: expected one of 'vit', 'resnet'"),
    ("+finetune.epochz=3", r"unknown key 'finetune.epochz'; finetune allows"),
    ("+extra=1", r"unknown key 'extra'; params.yaml allows"),
    ("finetune.epoch=3", r"unknown key 'finetune.epoch'; finetune allows \['epochs'"),
    ("~finetune.epochs", r"~finetune.epochs: deleting a key is not allowed"),
    ("finetune.epochs=null", r"finetune.epochs=null is not allowed: expected an integer"),
    ("seed=4294967296", r"seed=4294967296 is not allowed: expected a value <= 4294967295"),
    ("model=vit_b16 model.weights=/nowhere/ViT-B-16.pt",
     r"model.weights='/nowhere/ViT-B-16.pt': no such file"),
    ("finetune.amp=maybe", r"finetune.amp='maybe' .*'auto', 'bf16', 'fp16', 'off'"),
    ("prompt.amp=true", r"prompt.amp=.*'auto', 'bf16', 'fp16', 'off'"),
    ("finetune.augmentation.flip_p=1.5", r"flip_p=1.5 .*<= 1"),
    ("model.input_size=[128]", r"model.input_size=\[128\] must be \[height, width\]"),
    ("model.stride=32", r"model.stride=32 must be <= the patch size 16"),
    ("num_workers=-2", r"num_workers=-2 .*>= 0"),
    ("evaluation.max_rank=5", r"evaluation.max_rank=5 .*>= 10"),
    ("evaluation.distance=l1", r"evaluation.distance='l1' .*'euclidean', 'cosine'"),
    ("validation.severity.file_exists=ignore", r"severity.file_exists='ignore' .*'error', 'warn'"),
    ("finetune.milestones=[30,10]", r"finetune.milestones=\[30, 10\] must be epochs >= 1 in "
                                    r"increasing order"),
    ("dataset.synthetic.num_cameras=7", r"dataset.synthetic.num_cameras=7 differs from "
                                        r"dataset.num_cameras=6"),
    ("model=rn_tiny model.sie.enabled=true", r"SIE is defined for ViT backbones only"),
    ("model.weights=/w.pt", r"model.weights='/w.pt' is set but model.clip_name is null"),
    ("dataset=market1501 dataset.root=/nowhere/market",
     r"dataset.root='/nowhere/market': no such folder for dataset=market1501"),
]


def test_the_committed_params_parse_and_round_trip():
    raw = read_params_file(ROOT / "params.yaml")
    assert as_dict(parse_params(raw)) == raw  # parsing changes no value


@pytest.mark.parametrize("override, message", BAD_OVERRIDES,
                         ids=[o for o, _ in BAD_OVERRIDES])
def test_compose_refuses_a_bad_override(override, message):
    with pytest.raises(ConfigError, match=message):
        compose(ROOT / "conf", override.split())


def test_clipreid_compose_refuses_and_writes_nothing(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    params = tmp_path / "params.yaml"
    params.write_text("untouched\n")
    kept = (tmp_path / "conf" / "kept" / "overrides.yaml").read_text()
    monkeypatch.chdir(tmp_path)
    assert main(["--params", str(params), "compose", "finetune.epochs=abc"]) == 2
    err = capsys.readouterr().err
    assert "finetune.epochs='abc' is not allowed: expected an integer" in err
    assert params.read_text() == "untouched\n"
    assert (tmp_path / "conf" / "kept" / "overrides.yaml").read_text() == kept


@pytest.mark.parametrize("stage", ["prepare", "validate", "prompt", "finetune", "evaluate",
                                   "export"])
def test_every_stage_checks_the_whole_file_first(stage, tmp_path, monkeypatch, capsys):
    """A bad value in any group stops any stage before it reads or writes a file."""
    raw = read_params_file(ROOT / "params.yaml")
    raw["export"]["opset"] = "eighteen"  # a group most stages never read
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    assert main([stage]) == 2
    assert "export.opset='eighteen' is not allowed: expected an integer" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_missing_key_is_named():
    raw = read_params_file(ROOT / "params.yaml")
    del raw["finetune"]["gamma"]
    with pytest.raises(ConfigError, match="finetune.gamma is missing"):
        parse_params(raw)


def test_severity_keys_are_the_check_catalogue():
    assert as_dict(SeverityConfig()) == default_severities()


def test_published_models_need_their_weights_tracked(tmp_path):
    weights = tmp_path / "ViT-B-16.pt"
    weights.write_bytes(b"weights")
    params = compose(ROOT / "conf", ["model=vit_b16", f"model.weights={weights}"])
    assert params["model"]["source"] == str(weights)  # DVC tracks the file through it
    assert params["model"]["clip_name"] in CLIP_NAMES
    with pytest.raises(ConfigError, match="model.source=.* must equal model.weights"):
        compose(ROOT / "conf", ["model=vit_b16", f"model.weights={weights}",
                                "model.source=other.pt"])


def test_library_configs_take_the_defaults():
    assert from_dict(Params, {}) == Params()
    assert dataclasses.replace(Params(), seed=3).seed == 3


# --- one source of truth ----------------------------------------------------------------
def test_compose_keeps_overrides_in_conf(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    monkeypatch.chdir(tmp_path)
    assert main(["compose", "finetune.epochs=7", "model=rn_tiny"]) == 0
    kept = (tmp_path / "conf" / "kept" / "overrides.yaml").read_text()
    assert "epochs: 7" in kept and "rn_tiny" in kept
    # what `dvc exp run` composes (conf/ plus its own -S) starts from the kept values
    composed = compose(tmp_path / "conf", ["seed=5"])
    assert (composed["finetune"]["epochs"], composed["model"]["name"], composed["seed"]) == \
        (7, "rn_tiny", 5)
    assert (tmp_path / "params.yaml").read_text() == compose_text(tmp_path / "conf")
    assert main(["compose", "finetune.epochs=9"]) == 0  # adds to what is kept
    assert compose(tmp_path / "conf")["model"]["name"] == "rn_tiny"
    assert compose(tmp_path / "conf")["finetune"]["epochs"] == 9


def test_a_params_file_conf_does_not_reproduce_is_named(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    raw = read_params_file(ROOT / "params.yaml")
    raw["finetune"]["epochs"] = 60
    raw["seed"] = 4
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    assert main(["prepare"]) == 2
    err = capsys.readouterr().err
    assert "finetune.epochs: params.yaml has 60, conf/ gives 40" in err
    assert "seed: params.yaml has 4, conf/ gives 0" in err
    assert "clipreid compose" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf", "params.yaml"]
    assert params_drift(raw, tmp_path / "conf") == [
        "finetune.epochs: params.yaml has 60, conf/ gives 40",
        "seed: params.yaml has 4, conf/ gives 0"]


def test_kept_overrides_refuse_bad_values(tmp_path):
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    kept = (tmp_path / "conf" / "kept" / "overrides.yaml").read_text()
    with pytest.raises(ConfigError, match="finetune.epochs=0"):
        keep_overrides(tmp_path / "conf", ["finetune.epochs=0"])
    assert (tmp_path / "conf" / "kept" / "overrides.yaml").read_text() == kept


def test_kept_group_choices_apply_before_values(tmp_path, monkeypatch, capsys):
    """As in Hydra: a value given with a group switch is kept whatever the order; values
    kept for a group's old option are dropped when it changes, and the command says so."""
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    monkeypatch.chdir(tmp_path)
    assert main(["compose", "finetune.epochs=3", "finetune=published"]) == 0
    assert compose(tmp_path / "conf")["finetune"]["epochs"] == 3
    assert compose(tmp_path / "conf")["finetune"]["lr"] == 5e-6  # the published recipe
    capsys.readouterr()
    assert main(["compose", "finetune=embedded"]) == 0
    out = capsys.readouterr().out
    assert "no longer kept" in out and "finetune.epochs=3" in out
    assert compose(tmp_path / "conf")["finetune"]["epochs"] == 40
    assert main(["compose", "finetune.epochs=5"]) == 0
    assert main(["compose", "finetune=embedded"]) == 0  # the same option: nothing dropped
    assert compose(tmp_path / "conf")["finetune"]["epochs"] == 5
