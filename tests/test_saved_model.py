"""models/reid.pt describes itself: `clipreid.load_model` rebuilds the model from the file
alone (no params.yaml), the stages refuse a file built with another config, naming the
keys, and files of another format are named with what to do."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import clipreid
from clipreid.config.schema import (ModelConfig, Params, PreprocessConfig, SieConfig,
                                    as_dict)
from clipreid.errors import WeightsError
from clipreid.model import build_reid_model
from clipreid.model.saved import load_card, load_reid_model, save_reid_model

SIE = ModelConfig(input_size=[64, 32], stride=12, sie=SieConfig(enabled=True, coefficient=2.0),
                  preprocess=PreprocessConfig(mean=[0.4, 0.5, 0.6], std=[0.2, 0.3, 0.4]))


def params(model=SIE, cameras=4, object_noun="person") -> Params:
    base = Params()
    return dataclasses.replace(base, model=model, dataset=dataclasses.replace(
        base.dataset, num_cameras=cameras, object=object_noun))


@pytest.fixture()
def saved(tmp_path):
    model = build_reid_model(SIE, 7, "person", 4)
    with torch.no_grad():
        model.classifier.weight.normal_()
    path = tmp_path / "reid.pt"
    save_reid_model(path, model, params(), 7)
    return path, model.eval()


def test_the_model_loads_from_the_file_alone(saved, tmp_path, monkeypatch):
    path, trained = saved
    monkeypatch.chdir(tmp_path)  # no params.yaml, no conf/ here
    model = clipreid.load_model(path)
    assert not model.training
    images, camids = torch.randn(2, 3, 64, 32), torch.tensor([0, 3])
    with torch.no_grad():
        assert torch.equal(model.test_features(images, camids),
                           trained.test_features(images, camids))
    card = load_card(path)
    assert as_dict(card.model) == as_dict(SIE)
    assert (card.object, card.num_cameras, card.num_classes, card.method) == (
        "person", 4, 7, "clipreid")
    assert card.feature_dim == 128 + 128
    assert card.model.preprocess.mean == [0.4, 0.5, 0.6]


def test_a_stage_refuses_a_file_of_another_config(saved):
    path, _ = saved
    assert load_reid_model(path, params()) is not None
    moved = dataclasses.replace(SIE, weights=None, name="renamed")  # provenance only: fine
    assert load_reid_model(path, params(moved)) is not None
    other = dataclasses.replace(SIE, stride=16, preprocess=PreprocessConfig())
    with pytest.raises(WeightsError) as info:
        load_reid_model(path, params(other, cameras=5, object_noun="vehicle"))
    text = str(info.value)
    for key in ("model.stride: 12 in the file, 16 in params", "model.preprocess",
                "dataset.object", "dataset.num_cameras: 4 in the file, 5 in params"):
        assert key in text, text


def test_a_file_of_another_format_is_named(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": {}}, other)
    with pytest.raises(WeightsError, match="not a self-describing model file.*import-official"):
        clipreid.load_model(other)
    with pytest.raises(WeightsError, match="not a self-describing model file"):
        load_reid_model(other, params())


def test_a_file_of_the_earlier_format_loads_in_a_stage_from_params(saved, tmp_path):
    """Weights and num_classes only (the format before files carried their config): a
    stage, which has params.yaml, still loads it (the retraining flow re-scores champion
    models of older commits); load_model, which has no params, names the problem."""
    path, trained = saved
    old = tmp_path / "old.pt"
    torch.save({"model": trained.state_dict(), "num_classes": 7}, old)
    with pytest.raises(WeightsError, match="trained with mean = std = 0.5"):
        load_reid_model(old, params())  # SIE's preprocess is not the earlier normalisation
    model = load_reid_model(old, params(dataclasses.replace(SIE, preprocess=PreprocessConfig())))
    images, camids = torch.randn(2, 3, 64, 32), torch.tensor([1, 2])
    with torch.no_grad():
        assert torch.equal(model.test_features(images, camids),
                           trained.test_features(images, camids))
    with pytest.raises(WeightsError, match="not a self-describing model file"):
        clipreid.load_model(old)
