"""`clipreid <stage>`: check params.yaml, then run the stage's module (clipreid.stages).

Errors the project anticipates are printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading

from clipreid.errors import ClipReidError, ConfigError

STAGE_HELP = {
    "prepare": "data set -> manifest (generates the synthetic set if chosen)",
    "validate": "Great Expectations checks of the identity and camera splits",
    "prompt": "stage 1: learn identity prompts against the frozen CLIP",
    "finetune": "stage 2: fine-tune the image encoder",
    "evaluate": "mAP / CMC / mINP of the fine-tuned model on the test split",
    "export": "export the image encoder to ONNX and check it in onnxruntime",
}


def checked_params(path: str):
    """params.yaml, checked as a whole, and reproduced by conf/ (outside DVC experiments),
    before a stage changes anything."""
    from clipreid.config.compose import require_no_drift
    from clipreid.config.params import load_params, read_params_file

    params = load_params(path)
    require_no_drift(read_params_file(path), path)
    return params


TRAINING_STAGES = ("prompt", "finetune")


def cmd_stage(args) -> int:
    import importlib

    params = checked_params(args.params)
    launch = params.launch
    if (args.command in TRAINING_STAGES and launch.nproc_per_node * launch.nnodes > 1
            and not launched_by_torchrun()):
        # More than one process asked for: the stage starts itself again under torchrun.
        processes = launch.nproc_per_node * launch.nnodes
        if args.command == "finetune" and params.finetune.num_identities % processes:
            raise ConfigError(
                f"finetune.num_identities={params.finetune.num_identities} cannot be split "
                f"over {processes} processes (launch.nproc_per_node x launch.nnodes): each "
                "process takes an equal share of every batch's identities; make it a "
                "multiple")
        from clipreid.distributed import torchrun_command

        verbose = ["-v"] if args.verbose else []
        command = torchrun_command(launch, [*verbose, "--params", args.params, args.command])
        logging.getLogger("clipreid").info("starting %s", " ".join(command))
        sys.stdout.flush()
        os.execv(command[0], command)
    try:
        result = importlib.import_module(f"clipreid.stages.{args.command}").run(params)
    finally:
        leave_process_group()
    return 1 if args.command == "validate" and not result.ok else 0


def launched_by_torchrun() -> bool:
    from clipreid.distributed import launched  # torch only where a stage needs it

    return launched()


def leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def cmd_synth(args) -> None:
    from clipreid.config.params import load_params
    from clipreid.dataset.synthetic import write_synthetic

    spec = load_params(args.params, check_paths=False).dataset.synthetic
    if spec is None:
        raise ConfigError(f"{args.params} has no dataset.synthetic block: compose it with "
                          "dataset=synthetic")
    if args.seed is not None:
        spec = dataclasses.replace(spec, seed=args.seed)
    summary = write_synthetic(args.out, spec)
    print(f"wrote a synthetic data set to {args.out}: {summary}")


def cmd_compose(args) -> None:
    from clipreid.config.compose import KEPT_FILE, write_params

    dropped = write_params(args.params, "conf", args.overrides)
    kept = f"; kept {args.overrides} in conf/{KEPT_FILE}" if args.overrides else ""
    print(f"wrote {args.params} from conf/{kept}")
    if dropped:
        print(f"no longer kept (they belonged to the group option you replaced): {dropped}")


def cmd_import_official(args) -> None:
    from clipreid.config.compose import compose
    from clipreid.config.schema import parse_params
    from clipreid.official import import_official

    if any(o.lstrip("+~").split("=")[0] == "experiment" for o in args.overrides):
        raise ConfigError("import-official: give the recipe with --experiment only, not with -S")
    overrides = [f"experiment={args.experiment}", *args.overrides]
    params = parse_params(compose(args.conf, overrides, check_paths=False), check_paths=False)
    summary = import_official(args.checkpoint, params, args.out)
    print(f"imported {summary['tensors']} tensors of {args.checkpoint} as recipe "
          f"{args.experiment} ({summary['num_classes']} identities, "
          f"{summary['feature_dim']}-d features): wrote {', '.join(summary['written'])}")


def cmd_embed(args) -> None:
    from clipreid.embed import embed_command

    result = embed_command(args.src, args.out, args.backend, args.model, args.batch_size,
                           args.threads, args.on_error)
    print(f"wrote {args.out}: {len(result.paths)} images, "
          f"{result.features.shape[1]}-d features" + (
              f"; skipped {len(result.skipped)} unreadable (listed above)" if result.skipped
              else ""))


def cmd_index(args) -> None:
    from clipreid import gallery
    from clipreid.embed import DEFAULT_MODEL

    if args.action == "build":
        result = gallery.build_index(args.src, args.out, args.model or DEFAULT_MODEL[args.backend],
                                     args.backend, args.kind, args.distance, args.batch_size,
                                     args.threads, args.on_error)
        print(f"wrote index {args.out}: {result['count']} images")
    else:
        result = gallery.add_to_index(args.src, args.index, args.model, args.batch_size,
                                      args.threads, args.on_error)
        print(f"index {args.index}: added {result['added']}, now {result['count']} images")
    if result["duplicates"]:
        print(f"left out {len(result['duplicates'])} image(s) already indexed (same bytes): "
              + ", ".join(result["duplicates"][:10]) + (" ..." if len(result["duplicates"]) > 10
                                                         else ""))


def cmd_search(args) -> None:
    from clipreid import gallery

    results = gallery.search(args.query, args.index, args.out, args.top_k, args.model,
                             args.threshold, args.batch_size, args.threads, args.on_error)
    found = max((len(r["matches"]) for r in results), default=0)
    print(f"wrote {args.out}/results.json, results.csv and ranklists/: {len(results)} "
          f"queries, top {found}")


COMMANDS = {
    "compose": (cmd_compose, "write params.yaml from conf/, keeping the given overrides in "
                             "conf/kept/overrides.yaml"),
    "synth": (cmd_synth, "write the synthetic data set (Market-1501 layout) to --out"),
    "embed": (cmd_embed, "images (a folder, a glob or a CSV of paths) -> an .npz of "
                         "L2-normalised descriptors"),
    "index": (cmd_index, "a searchable gallery: `index build SRC -o DIR`, `index add SRC "
                         "--index DIR`"),
    "search": (cmd_search, "the nearest gallery images of each query image"),
    "import-official": (cmd_import_official, "convert a checkpoint of the official CLIP-ReID "
                                             "code into reid.pt (and prompts.pt)"),
    **{stage: (cmd_stage, text) for stage, text in STAGE_HELP.items()},
}


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be >= 1")
    return value


SOURCE_HELP = ("a folder, a quoted glob pattern, or a CSV with a path column (and camid for "
               "SIE models)")


def add_embedding_options(p, backend: bool = True) -> None:
    if backend:
        p.add_argument("--backend", choices=("onnx", "torch"), default="onnx",
                       help="onnx: the exported model in onnxruntime (default); torch: reid.pt")
    p.add_argument("--model", default=None,
                   help="model file (default models/reid.onnx, or models/reid.pt with "
                        "--backend torch; an index's own model for index add and search)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads")
    p.add_argument("--on-error", choices=("stop", "skip"), default="stop",
                   help="an unreadable image stops the run (default) or is skipped and "
                        "reported")


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
        if name == "embed":
            p.add_argument("src", help=SOURCE_HELP)
            p.add_argument("-o", "--out", required=True, help="the .npz to write")
            add_embedding_options(p)
        if name == "index":
            actions = p.add_subparsers(dest="action", required=True)
            build = actions.add_parser("build", help="embed a gallery and write an index")
            build.add_argument("src", help=SOURCE_HELP + "; a pid column is kept")
            build.add_argument("-o", "--out", required=True, help="the index folder to write")
            build.add_argument("--kind", choices=("exact", "hnsw", "ivf"), default="exact",
                               help="exact (default), or approximate for millions: hnsw "
                                    "(graph) or ivf (inverted lists)")
            build.add_argument("--distance", choices=("euclidean", "cosine"),
                               default="euclidean", help="as evaluation.distance")
            add_embedding_options(build)
            add = actions.add_parser("add", help="add new images (by content) to an index")
            add.add_argument("src", help=SOURCE_HELP)
            add.add_argument("--index", required=True, help="the index folder")
            add_embedding_options(add, backend=False)
        if name == "search":
            p.add_argument("query", help=SOURCE_HELP)
            p.add_argument("--index", required=True, help="the index folder")
            p.add_argument("--top-k", type=int, default=10)
            p.add_argument("-o", "--out", required=True, help="folder for the results")
            p.add_argument("--threshold", default=None,
                           help="a distance, or auto (the model's calibrated threshold at the "
                                "lowest false match rate): farther matches are marked as no "
                                "match")
            add_embedding_options(p, backend=False)
        if name == "import-official":
            p.add_argument("checkpoint", help="the official training script's .pth file")
            p.add_argument("--experiment", required=True,
                           help="the recipe it was trained with (conf/experiment/<name>.yaml)")
            p.add_argument("-o", "--out", required=True, help="folder to write reid.pt into")
            p.add_argument("--conf", default="conf", help="the Hydra config folder (conf)")
            p.add_argument("-S", "--set", dest="overrides", action="append", default=[],
                           metavar="KEY=VALUE",
                           help="a further override, as in dvc exp run -S (repeatable)")
        if name == "compose":
            p.add_argument("overrides", nargs="*",
                           help="Hydra overrides to keep, e.g. model=vit_b16 finetune.epochs=60")
    return parser


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM (a scheduler's or `kill`'s stop) raises SystemExit like Ctrl-C raises
    KeyboardInterrupt, so every `finally` runs: scratch folders and half-written temporary
    files go, the outputs stay as they were."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        exit_cleanly_on_sigterm()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx", "great_expectations", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    try:
        return COMMANDS[args.command][0](args) or 0
    except ClipReidError as exc:
        print(f"clipreid {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
