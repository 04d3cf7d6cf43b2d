"""What the two training stages (prompt, finetune) share: their rows, their model, and
how they run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from clipreid import distributed
from clipreid.config.params import stage_params
from clipreid.config.schema import Params
from clipreid.dataset.manifest import require_splits
from clipreid.model import ClipReID, build_reid_model
from clipreid.runtime import resolve_device
from clipreid.stages import layout
from clipreid.training.checkpoint import fingerprint
from clipreid.training.run import RunSettings


def train_rows(manifest: pd.DataFrame, source: str) -> pd.DataFrame:
    require_splits(manifest, ["train"], source=source)
    return manifest[manifest["split"] == "train"].reset_index(drop=True)


def num_classes_of(manifest: pd.DataFrame) -> int:
    return int(manifest.loc[manifest["split"] == "train", "label"].max()) + 1


def new_model(params: Params, num_classes: int) -> ClipReID:
    """The model to train: CLIP of ``model`` (OpenAI's weights, or random) with a fresh head."""
    return build_reid_model(params.model, num_classes, params.dataset.object,
                            params.dataset.num_cameras)


def code_files(stage: str, dvc_yaml: str | Path = "dvc.yaml") -> list[Path]:
    """The code dvc.yaml lists for ``stage`` (folders expanded to their files), sorted;
    none when there is no dvc.yaml (the library used outside the project)."""
    dvc_yaml = Path(dvc_yaml)
    if not dvc_yaml.is_file():
        return []
    deps = yaml.safe_load(dvc_yaml.read_text())["stages"][stage].get("deps", [])
    files = set()
    for dep in (d if isinstance(d, str) else next(iter(d)) for d in deps):
        path = dvc_yaml.parent / dep
        if dep.startswith("src/") and path.is_dir():
            files |= {p for p in path.rglob("*.py")}
        elif dep.startswith("src/") and path.is_file():
            files.add(path)
    return sorted(files)


def run_settings(params: Params, stage: str, checkpoint_dir: str | Path,
                 live_dir: str | Path, inputs) -> RunSettings:
    """How a training stage runs: its checkpoint is tied to the params it declares, its
    input files and its code (the files dvc.yaml lists for it), so a checkpoint resumes
    only the very same run. Under torchrun this joins the process group."""
    inputs = [*inputs, *code_files(stage)]
    process, device = distributed.init(resolve_device(params.device), params.launch.backend)
    return RunSettings(input_size=params.model.input_size,
                       preprocess=params.model.preprocess,
                       device=device, seed=params.seed, process=process,
                       checkpoint_dir=str(checkpoint_dir), live_dir=str(live_dir),
                       fingerprint=fingerprint(stage_params(params, stage), inputs),
                       num_workers=params.num_workers, decoded_dir=layout.DECODED_CACHE)
