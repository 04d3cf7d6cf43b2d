"""The untrained baseline of the README: evaluate the randomly initialised model (the one
stage 1 starts from, same architecture and init seed) on the prepared test split, with
the evaluate stage's own code, and print its metrics beside the trained model's.

Run from the project root after `dvc repro` (or `make repro`):
    python benchmarks/untrained_baseline.py
"""

import json
import sys
import tempfile
from pathlib import Path

from clipreid.config.params import load_params
from clipreid.dataset.manifest import load_manifest
from clipreid.model.saved import save_reid_model
from clipreid.stages import evaluate
from clipreid.stages.common import new_model, num_classes_of
from clipreid.stages.layout import EVALUATION_METRICS, REID_MODEL, VALIDATED_MANIFEST


def main() -> int:
    params = load_params()
    num_classes = num_classes_of(load_manifest(VALIDATED_MANIFEST))
    untrained = new_model(params, num_classes)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "untrained.pt"
        save_reid_model(weights, untrained, params, num_classes)
        baseline = evaluate.run(params, model_path=weights,
                                metrics_path=Path(tmp) / "metrics.json",
                                report_path=Path(tmp) / "report.json",
                                plots_dir=Path(tmp) / "plots")
    keys = ("mAP", "rank1", "rank5", "rank10", "mINP")
    print("untrained:", json.dumps({k: round(baseline[k], 4) for k in keys}))
    if Path(EVALUATION_METRICS).is_file() and Path(REID_MODEL).is_file():
        trained = json.loads(Path(EVALUATION_METRICS).read_text())
        print("trained:  ", json.dumps({k: round(trained[k], 4) for k in keys}))
        print(f"mAP ratio trained / untrained: {trained['mAP'] / baseline['mAP']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
