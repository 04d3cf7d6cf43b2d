"""The pipeline's stages as library functions: each takes its params (the view that
dvc.yaml declares) and its input and output paths, and writes its outputs atomically.
The CLI maps DVC's paths onto these; Prefect flows call DVC, which calls the CLI."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
import pandas as pd

from clipreid.data.manifest import load_manifest, require_splits, save_manifest
from clipreid.io import atomic_path, load_torch, save_torch

if TYPE_CHECKING:
    from clipreid.model import ClipReID
    from clipreid.train.runtime import RunSettings

# Each stage imports what it alone runs, inside its function: dvc.yaml declares those
# modules as the stage's dependencies (tests/test_stage_dependencies.py checks it).

log = logging.getLogger(__name__)


# --- shared helpers -------------------------------------------------------------------
def train_rows(manifest: pd.DataFrame, source: str) -> pd.DataFrame:
    require_splits(manifest, ["train"], source=source)
    return manifest[manifest["split"] == "train"].reset_index(drop=True)


def num_classes_of(manifest: pd.DataFrame) -> int:
    return int(manifest.loc[manifest["split"] == "train", "label"].max()) + 1


def new_model(params: Mapping, num_classes: int, load_weights: bool = True) -> ClipReID:
    from clipreid.model import build_reid_model

    return build_reid_model(params["model"], num_classes, params["dataset"]["object"],
                            params["dataset"]["num_cameras"], load_weights=load_weights)


def load_trained_model(params: Mapping, model_path: str | Path) -> ClipReID:
    """The stage-2 model of ``model_path`` (architecture from params, weights from file)."""
    saved = load_torch(model_path)
    model = new_model(params, int(saved["num_classes"]), load_weights=False)
    model.load_state_dict(saved["model"])
    return model.eval()


def run_settings(params: Mapping, checkpoint_dir, live_dir, inputs) -> RunSettings:
    """How a training stage runs: its checkpoint is tied to its params and input files."""
    from clipreid.train.checkpoint import fingerprint
    from clipreid.train.runtime import RunSettings, resolve_device

    return RunSettings(input_size=params["model"]["input_size"],
                       device=resolve_device(params["device"]), seed=params["seed"],
                       checkpoint_dir=str(checkpoint_dir), live_dir=str(live_dir),
                       fingerprint=fingerprint(params, inputs),
                       num_workers=params["num_workers"])


def test_partitions(manifest: pd.DataFrame, dataset: Mapping, source: str):
    """(test rows, [(query index, gallery index), ...]) of the evaluation protocol."""
    if (manifest["split"] == "test").any():
        from clipreid.data.readers.vehicleid import seeded_trials

        test = manifest[manifest["split"] == "test"].reset_index(drop=True)
        return test, seeded_trials(test, dataset)
    require_splits(manifest, ["query", "gallery"], source=source)
    test = pd.concat([manifest[manifest["split"] == "query"],
                      manifest[manifest["split"] == "gallery"]]).reset_index(drop=True)
    is_query = (test["split"] == "query").to_numpy()
    return test, [(np.flatnonzero(is_query), np.flatnonzero(~is_query))]


# --- the stages -----------------------------------------------------------------------
def prepare(params: Mapping, manifest_path: str | Path) -> pd.DataFrame:
    """Generate the synthetic data set when configured, parse the data set, write the
    manifest."""
    from clipreid.data.prepare import prepare_manifest

    manifest = prepare_manifest(params["dataset"])
    save_manifest(manifest, manifest_path)
    counts = manifest.groupby("split").agg(images=("path", "size"), ids=("pid", "nunique"))
    log.info("manifest %s:\n%s", manifest_path, counts.to_string())
    return manifest


def validate(params: Mapping, manifest_path, report_path, docs_dir, validated_path):
    """Great Expectations checks of the manifest and its images; writes the report and
    Data Docs, and, only when every error-severity check passes, the validated manifest
    that the training stages read."""
    from clipreid.validation import run_validation

    outcome = run_validation(manifest_path, params["dataset"], params["validation"],
                             report_path, docs_dir)
    print(outcome.summary())
    if outcome.ok:
        with atomic_path(validated_path) as tmp:
            shutil.copyfile(manifest_path, tmp)
    return outcome


def prompt(params: Mapping, manifest_path, prompts_path, checkpoint_dir, live_dir) -> None:
    """Stage 1: learn the identity prompts; write them with every identity's text feature."""
    from clipreid.train.prompt_learning import learn_prompts
    from clipreid.train.runtime import seed_everything

    seed_everything(params["seed"])
    manifest = load_manifest(manifest_path)
    train = train_rows(manifest, str(manifest_path))
    num_classes = num_classes_of(manifest)
    model = new_model(params, num_classes)
    run = run_settings(params, checkpoint_dir, live_dir, [manifest_path])
    result = learn_prompts(model, train["path"].tolist(), train["label"].tolist(),
                           train["camid"].tolist(), params["stage1"], run)
    save_torch(prompts_path, {
        "prompt_learner": result.prompt_state,
        "text_features": result.text_features,
        "num_classes": num_classes,
    })


def finetune(params: Mapping, manifest_path, prompts_path, model_path, checkpoint_dir,
             live_dir) -> None:
    """Stage 2: fine-tune the image encoder against the stage-1 text features."""
    from clipreid.train.fine_tuning import fine_tune
    from clipreid.train.runtime import seed_everything

    seed_everything(params["seed"])
    manifest = load_manifest(manifest_path)
    train = train_rows(manifest, str(manifest_path))
    prompts = load_torch(prompts_path)
    num_classes = num_classes_of(manifest)
    if int(prompts["num_classes"]) != num_classes:
        raise ValueError(f"{prompts_path} has prompts for {prompts['num_classes']} identities "
                         f"but {manifest_path} has {num_classes}; re-run the prompt stage")
    model = new_model(params, num_classes)
    model.prompt_learner.load_state_dict(prompts["prompt_learner"])
    run = run_settings(params, checkpoint_dir, live_dir, [manifest_path, prompts_path])
    fine_tune(model, prompts["text_features"], train["path"].tolist(),
              train["label"].tolist(), train["camid"].tolist(), params["stage2"], run)
    save_torch(model_path, {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "num_classes": num_classes,
    })


def evaluate(params: Mapping, manifest_path, model_path, metrics_path, plots_dir) -> dict:
    """Test features of the fine-tuned model; Market-protocol metrics and pictures."""
    from clipreid.evaluation import run_evaluation
    from clipreid.features import test_features
    from clipreid.train.runtime import resolve_device

    manifest = load_manifest(manifest_path)
    test, partitions = test_partitions(manifest, params["dataset"], str(manifest_path))
    model = load_trained_model(params, model_path)
    device = resolve_device(params["device"])
    feats = test_features(model.to(device), test["path"].tolist(), test["camid"].tolist(),
                          params["model"]["input_size"], params["evaluation"]["batch_size"],
                          device, params["num_workers"])
    settings = dict(params["evaluation"])
    # Data sets without camera labels (VehicleID: camid 0 throughout) keep same-camera
    # matches, or no match would be left.
    settings["remove_same_camera"] = bool(settings["remove_same_camera"]
                                          and params["dataset"]["num_cameras"] > 1)
    metrics = run_evaluation(feats, test["pid"].to_numpy(), test["camid"].to_numpy(),
                             test["path"].tolist(), partitions, settings,
                             metrics_path, plots_dir)
    log.info("evaluation: %s", {k: v for k, v in metrics.items() if not isinstance(v, dict)})
    return metrics


def export(params: Mapping, manifest_path, model_path, onnx_path, metrics_path) -> dict:
    """Export the test-time image encoder to ONNX and check it against PyTorch."""
    from clipreid.export import export_onnx

    manifest = load_manifest(manifest_path)
    test = manifest[manifest["split"] != "train"]
    model = load_trained_model(params, model_path)
    return export_onnx(model, test["path"].tolist(), test["camid"].tolist(),
                       params["model"]["input_size"], params["export"], onnx_path,
                       metrics_path)
