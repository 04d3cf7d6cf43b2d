"""`models/MODEL_CARD.md`: what the exported model is, what it was trained on, how well it
does, how to feed it, what it is for, and how to reproduce it."""

from __future__ import annotations

import os

import pandas as pd
import yaml

from clipreid.config.schema import Params, as_dict
from clipreid.io import atomic_path

RESEARCH_ONLY = ("Market-1501, DukeMTMC-reID (withdrawn by its authors), Occluded-Duke, MSMT17, "
                 "VeRi-776 and VehicleID are released for non-commercial research only; a "
                 "model trained on them inherits their terms.")


def _table(rows) -> str:
    return "\n".join(["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * float(value):.2f} %"


def write_model_card(path: str | os.PathLike, params: Params, manifest: pd.DataFrame,
                     evaluation: dict, evaluation_report: dict, export_metrics: dict,
                     metadata: dict) -> None:
    """Write the card from the run's params, its manifest and the evaluate and export
    results."""
    train = manifest[manifest["split"] == "train"]
    test = manifest[manifest["split"] != "train"]
    model = params.model
    recipe = params.evaluation.expected.recipe or "(no named recipe: conf/ composition)"
    backbone = model.clip_name or f"{model.name} (randomly initialised CLIP architecture)"
    thresholds = evaluation_report.get("thresholds", [])
    rerank = {k: v for k, v in evaluation.items() if k.endswith("_rerank")}
    method = ("the CLIP-ReID two-stage method (learned identity prompts, then identity, "
              "triplet and image-to-text losses)" if params.method == "clipreid" else
              "the paper's baseline (identity and triplet losses, no prompts)")
    lines = [
        "# Model card: CLIP-ReID re-identification model",
        "",
        "Written by the `export` stage (`clipreid export`); do not edit: it is rewritten "
        "with every export.",
        "",
        "## What it is",
        f"A {params.dataset.object} re-identification model: {backbone} image encoder "
        f"fine-tuned with {method}. "
        f"It maps one image to a {metadata['feature_dim']}-d L2-normalised descriptor; "
        "smaller distances mean more likely the same identity.",
        "",
        "Files: `models/reid.onnx` (fp32), `models/reid.fp16.onnx`, `models/reid.int8.onnx` "
        "(dynamic int8 quantisation), `models/reid.pt` (PyTorch, `clipreid.load_model`).",
        "",
        "## Training data",
        _table([("data set", params.dataset.name),
                ("training identities / images",
                 f"{train['pid'].nunique()} / {len(train)}"),
                ("test images (query + gallery)", f"{len(test)}"),
                ("cameras", params.dataset.num_cameras)]),
        "",
        RESEARCH_ONLY if params.dataset.name != "synthetic" else
        "The embedded synthetic data set (generated, no licence restrictions): the numbers "
        "below say nothing about real images.",
        "",
        "## Recipe",
        f"Named recipe: `{recipe}`; method `{params.method}`. The resolved values:",
        "",
        "```yaml",
        yaml.safe_dump({"method": params.method,
                        **{group: as_dict(getattr(params, group))
                           for group in ("model", "prompt", "finetune")}},
                       sort_keys=False, default_flow_style=None).rstrip(),
        "```",
        "",
        "## Metrics (test split)",
        _table([("mAP", _percent(evaluation.get("mAP"))),
                ("rank-1 / 5 / 10", " / ".join(_percent(evaluation.get(k))
                                              for k in ("rank1", "rank5", "rank10"))),
                ("mINP", _percent(evaluation.get("mINP"))),
                ("with k-reciprocal re-ranking",
                 ", ".join(f"{k}: {_percent(v)}" for k, v in rerank.items()) or
                 "not evaluated (`evaluation.rerank.enabled: false`)"),
                *[(f"mAP / rank-1, ONNX {v}", f"{_percent(export_metrics.get(f'mAP_{v}'))} / "
                   f"{_percent(export_metrics.get(f'rank1_{v}'))}")
                  for v in ("fp32", "fp16", "int8")]]),
        "",
        "## Match thresholds",
        "Distances (squared Euclidean of the normalised descriptors, the evaluator's) "
        "fitted on cross-camera test pairs; a pair within a threshold is called a match "
        "(`clipreid search --threshold auto` uses the strictest):",
        "",
        _table([(f"false match rate {t['fmr_target']:g}",
                 f"distance <= {t['distance']:.6g}: true match rate {_percent(t['tmr'])}")
                for t in thresholds] or [("none", "no cross-camera pairs to fit on")]),
        "",
        "## Preprocessing",
        _table([("input", f"{metadata['layout']}, {metadata['channel_order']}, "
                          f"{metadata['input_size'][0]} x {metadata['input_size'][1]} (H x W)"),
                ("resize", f"straight to H x W, {metadata['resize_interpolation']}"),
                ("values", f"pixel / 255, then (x - {metadata['mean']}) / {metadata['std']}"),
                ("camera ids", "required (SIE): input `camids`, 0-based" if
                 metadata["camera_input"] else "not used")]),
        "",
        "The ONNX files carry all of this as metadata (`clipreid.export.read_onnx_metadata`); "
        "`clipreid embed` reads it from there.",
        "",
        "## Intended use and limits",
        "- Ranking a gallery of cropped images of the trained object class by similarity "
        "to a query crop, with a human reviewing the results.",
        "- Not for identifying people from their faces or bodies without a legal basis, "
        "nor for automated decisions about individuals.",
        "- Accuracy holds for images like the training data (cameras, resolution, crops); "
        "thresholds fitted on one camera network do not transfer to another.",
        "",
        "## Reproduce",
        "```bash",
        "git checkout <commit> && dvc pull     # the model and data of that commit",
        "dvc exp apply <experiment>           # or an experiment's results",
        "make repro                           # or retrain: dvc repro",
        "```",
        "",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
