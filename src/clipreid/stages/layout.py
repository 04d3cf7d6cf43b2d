"""Where the pipeline's files live: the one home of every stage's paths.

dvc.yaml declares the same paths as each stage's dependencies and outputs
(tests/test_layout.py keeps the two in step); the stage modules take these as their
defaults, and nothing else names a path.
"""

MANIFEST = "data/prepared/manifest.csv"
PREPARED = "data/prepared"
SYNTHETIC = "data/prepared/synthetic"  # where conf/dataset/synthetic.yaml writes the set
VALIDATED_MANIFEST = "data/validated/manifest.csv"  # what the stages after `validate` read
VALIDATION_REPORT = "reports/validation.json"
DATA_DOCS = "reports/data_docs"   # a page for people, not a DVC output (it holds run times)
PROMPTS = "models/prompts.pt"
REID_MODEL = "models/reid.pt"
ONNX_MODEL = "models/reid.onnx"
ONNX_FP16_MODEL = "models/reid.fp16.onnx"
ONNX_INT8_MODEL = "models/reid.int8.onnx"
MODEL_CARD = "models/MODEL_CARD.md"
EVALUATION_METRICS = "metrics/evaluation.json"
EVALUATION_REPORT = "reports/evaluation.json"
EVALUATION_PLOTS = "plots/evaluation"
EXPORT_METRICS = "metrics/export.json"
EXPORT_REPORT = "reports/export.json"


def checkpoints(stage: str) -> str:
    """A training stage's per-epoch checkpoints: resume state, not a product, so not a DVC
    output (git-ignored; a checkpoint resumes only the very same run)."""
    return f"checkpoints/{stage}"


#: Stage 2's training images, decoded and resized once (clipreid.loader.decoded): a cache
#: keyed by its inputs, not a DVC output (git-ignored).
DECODED_CACHE = "cache/decoded"


def live(stage: str) -> str:
    """A training stage's dvclive curves."""
    return f"dvclive/{stage}"


#: What each stage writes: dvc.yaml's outs, metrics and plots of the stage.
OUTPUTS: dict[str, tuple[str, ...]] = {
    "prepare": (PREPARED,),
    "validate": (VALIDATION_REPORT, VALIDATED_MANIFEST),
    "prompt": (PROMPTS, live("prompt")),
    "finetune": (REID_MODEL, live("finetune")),
    "evaluate": (EVALUATION_METRICS, EVALUATION_REPORT, EVALUATION_PLOTS),
    "export": (ONNX_MODEL, ONNX_FP16_MODEL, ONNX_INT8_MODEL, MODEL_CARD, EXPORT_METRICS,
               EXPORT_REPORT),
}

#: What each stage reads besides code and params (files of other stages, or the data set).
INPUTS: dict[str, tuple[str, ...]] = {
    "prepare": ("${dataset.source}",),
    "validate": (PREPARED, "${dataset.source}"),
    "prompt": (VALIDATED_MANIFEST, "${model.source}"),
    "finetune": (VALIDATED_MANIFEST, PROMPTS, "${model.source}"),
    "evaluate": (VALIDATED_MANIFEST, REID_MODEL),
    "export": (VALIDATED_MANIFEST, REID_MODEL, EVALUATION_METRICS, EVALUATION_REPORT),
}
