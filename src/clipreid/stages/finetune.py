"""`finetune` (stage 2): fine-tune the image encoder against the stage-1 text features."""

from __future__ import annotations

from clipreid.config.schema import Params
from clipreid.dataset.manifest import image_paths, load_manifest
from clipreid.errors import ClipReidError
from clipreid.io import load_torch
from clipreid.model.saved import save_reid_model
from clipreid.runtime import seed_everything
from clipreid.stages import layout
from clipreid.stages.common import new_model, num_classes_of, run_settings, train_rows
from clipreid.training.finetune import train_finetune


def run(params: Params, manifest_path=layout.VALIDATED_MANIFEST, prompts_path=layout.PROMPTS,
        model_path=layout.REID_MODEL, checkpoint_dir=layout.checkpoints("finetune"),
        live_dir=layout.live("finetune")) -> None:
    seed_everything(params.seed)
    manifest = load_manifest(manifest_path)
    train = train_rows(manifest, str(manifest_path))
    prompts = load_torch(prompts_path)
    num_classes = num_classes_of(manifest)
    written_for = prompts.get("method", "clipreid")
    if written_for != params.method:
        raise ClipReidError(f"{prompts_path} was written for method={written_for} but "
                            f"params.yaml has method={params.method}; re-run the prompt stage "
                            "(`dvc repro` does)")
    if int(prompts["num_classes"]) != num_classes:
        raise ClipReidError(f"{prompts_path} has prompts for {prompts['num_classes']} "
                            f"identities but {manifest_path} has {num_classes}; re-run the "
                            "prompt stage")
    model = new_model(params, num_classes)
    text_features = None  # the baseline: no prompts, no image-to-text loss
    if params.method == "clipreid":
        model.prompt_learner.load_state_dict(prompts["prompt_learner"])
        text_features = prompts["text_features"]
    run = run_settings(params, "finetune", checkpoint_dir, live_dir,
                       [manifest_path, prompts_path])
    train_finetune(model, text_features, image_paths(train, params.dataset.root),
                   train["label"].tolist(), train["camid"].tolist(), params.finetune, run)
    if run.process.is_main:
        save_reid_model(model_path, model, params, num_classes)
