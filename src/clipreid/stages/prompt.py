"""`prompt` (stage 1): learn the identity prompts against the frozen CLIP; write them with
every identity's text feature. The baseline (``method: baseline``) has no prompts: the
stage then writes a file that says so, and empty curves, and trains nothing."""

from __future__ import annotations

import logging

from clipreid.config.schema import Params
from clipreid.dataset.manifest import image_paths, load_manifest
from clipreid.io import save_torch
from clipreid.runtime import seed_everything
from clipreid.stages import layout
from clipreid.stages.common import new_model, num_classes_of, run_settings, train_rows
from clipreid.training.live import EpochLog
from clipreid.training.prompt import train_prompts

log = logging.getLogger(__name__)


def run(params: Params, manifest_path=layout.VALIDATED_MANIFEST, prompts_path=layout.PROMPTS,
        checkpoint_dir=layout.checkpoints("prompt"), live_dir=layout.live("prompt")) -> None:
    seed_everything(params.seed)
    manifest = load_manifest(manifest_path)
    train = train_rows(manifest, str(manifest_path))
    num_classes = num_classes_of(manifest)
    if params.method == "baseline":
        EpochLog(live_dir).close()
        save_torch(prompts_path, {"method": "baseline", "num_classes": num_classes})
        log.info("method=baseline: no prompts to learn; wrote %s saying so", prompts_path)
        return
    model = new_model(params, num_classes)
    run = run_settings(params, "prompt", checkpoint_dir, live_dir, [manifest_path])
    result = train_prompts(model, image_paths(train, params.dataset.root),
                           train["label"].tolist(), train["camid"].tolist(), params.prompt, run)
    if not run.process.is_main:
        return
    save_torch(prompts_path, {
        "method": "clipreid",
        "prompt_learner": result.prompt_state,
        "text_features": result.text_features,
        "num_classes": num_classes,
    })

