"""`clipreid <stage>`: read params.yaml, call one library function, write the outputs.

This is the only place that knows the pipeline's file layout (the paths dvc.yaml
declares). Errors the project anticipates are printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from clipreid.errors import ClipReidError

MANIFEST = "data/prepared/manifest.csv"
VALIDATED_MANIFEST = "data/validated/manifest.csv"  # what the training stages read
VALIDATION_REPORT = "reports/validation.json"
DATA_DOCS = "reports/data_docs"
PROMPTS = "models/prompts.pt"
REID_MODEL = "models/reid.pt"
ONNX_MODEL = "models/reid.onnx"
CHECKPOINTS = "checkpoints"
LIVE = "dvclive"
EVALUATION_METRICS = "metrics/evaluation.json"
EVALUATION_PLOTS = "plots/evaluation"
EXPORT_METRICS = "metrics/export.json"


def _stage_params(args, stage):
    from clipreid.params import load_params, stage_params

    return stage_params(load_params(args.params), stage)


def cmd_synth(args) -> None:
    from clipreid.data.synthetic import write_synthetic
    from clipreid.params import load_params

    spec = dict(load_params(args.params)["dataset"].get("synthetic") or {})
    if args.seed is not None:
        spec["seed"] = args.seed
    summary = write_synthetic(args.out, **spec)
    print(f"wrote a synthetic data set to {args.out}: {summary}")


def cmd_compose(args) -> None:
    from clipreid.config import write_params

    write_params(args.params, "conf", args.overrides)
    print(f"wrote {args.params} from conf/ with overrides {args.overrides}")


def cmd_prepare(args) -> None:
    from clipreid import stages

    stages.prepare(_stage_params(args, "prepare"), MANIFEST)


def cmd_validate(args) -> int:
    from clipreid import stages

    outcome = stages.validate(_stage_params(args, "validate"), MANIFEST, VALIDATION_REPORT,
                              DATA_DOCS, VALIDATED_MANIFEST)
    return 0 if outcome.ok else 1


def cmd_prompt(args) -> None:
    from clipreid import stages

    stages.prompt(_stage_params(args, "prompt"), VALIDATED_MANIFEST, PROMPTS,
                  f"{CHECKPOINTS}/prompt", f"{LIVE}/prompt")


def cmd_finetune(args) -> None:
    from clipreid import stages

    stages.finetune(_stage_params(args, "finetune"), VALIDATED_MANIFEST, PROMPTS, REID_MODEL,
                    f"{CHECKPOINTS}/finetune", f"{LIVE}/finetune")


def cmd_evaluate(args) -> None:
    from clipreid import stages

    stages.evaluate(_stage_params(args, "evaluate"), VALIDATED_MANIFEST, REID_MODEL,
                    EVALUATION_METRICS, EVALUATION_PLOTS)


def cmd_export(args) -> None:
    from clipreid import stages

    stages.export(_stage_params(args, "export"), VALIDATED_MANIFEST, REID_MODEL, ONNX_MODEL,
                  EXPORT_METRICS)


COMMANDS = {
    "compose": (cmd_compose, "recompose params.yaml from conf/ (as `dvc exp run` does)"),
    "synth": (cmd_synth, "write the synthetic data set (Market-1501 layout) to --out"),
    "prepare": (cmd_prepare, "data set -> manifest (generates the synthetic set if chosen)"),
    "validate": (cmd_validate, "Great Expectations checks of the identity and camera splits"),
    "prompt": (cmd_prompt, "stage 1: learn identity prompts against the frozen CLIP"),
    "finetune": (cmd_finetune, "stage 2: fine-tune the image encoder"),
    "evaluate": (cmd_evaluate, "mAP / CMC / mINP of the fine-tuned model on the test split"),
    "export": (cmd_export, "export the image encoder to ONNX and check it in onnxruntime"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipreid", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (params.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == "synth":
            p.add_argument("--out", required=True, help="folder to write")
            p.add_argument("--seed", type=int, default=None, help="override dataset.synthetic.seed")
        if name == "compose":
            p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=vit_b16")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    try:
        return COMMANDS[args.command][0](args) or 0
    except ClipReidError as exc:
        print(f"clipreid {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
