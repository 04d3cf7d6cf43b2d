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

from clipreid import stages
from clipreid.cli import EVALUATION_METRICS, REID_MODEL, VALIDATED_MANIFEST
from clipreid.data.manifest import load_manifest
from clipreid.io import save_torch
from clipreid.params import load_params, stage_params


def main() -> int:
    params = stage_params(load_params(), "evaluate")
    manifest = load_manifest(VALIDATED_MANIFEST)
    num_classes = stages.num_classes_of(manifest)
    untrained = stages.new_model(params, num_classes, load_weights=True)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "untrained.pt"
        save_torch(weights, {"model": untrained.state_dict(), "num_classes": num_classes})
        baseline = stages.evaluate(params, VALIDATED_MANIFEST, weights,
                                   Path(tmp) / "metrics.json", Path(tmp) / "plots")
    keys = ("mAP", "rank1", "rank5", "rank10", "mINP")
    print("untrained:", json.dumps({k: round(baseline[k], 4) for k in keys}))
    if Path(EVALUATION_METRICS).is_file() and Path(REID_MODEL).is_file():
        trained = json.loads(Path(EVALUATION_METRICS).read_text())
        print("trained:  ", json.dumps({k: round(trained[k], 4) for k in keys}))
        print(f"mAP ratio trained / untrained: {trained['mAP'] / baseline['mAP']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
