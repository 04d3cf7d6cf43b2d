"""End to end: `dvc repro` of a micro configuration in a fresh git + DVC project, a no-op
second repro, experiments that `dvc exp show` lists with their metrics, bad overrides
refused before anything runs, and tracked weights."""

import json

from project_support import copy_project, run

HEADLINE = ("mAP", "rank1", "rank5", "rank10", "mINP", "tmr_at_fmr_1e-2", "tmr_at_fmr_1e-3")


def test_repro_runs_every_stage_and_writes_its_outputs(micro_project):
    root, proc = micro_project
    for stage in ("prepare", "validate", "prompt", "finetune", "evaluate", "export"):
        assert f"Running stage '{stage}'" in proc.stdout
    for path in ("data/prepared/manifest.csv", "models/prompts.pt", "models/reid.pt",
                 "models/reid.onnx", "dvclive/prompt/metrics.json", "reports/validation.json",
                 "reports/data_docs/index.html", "data/validated/manifest.csv",
                 "dvclive/finetune/plots/metrics/loss.tsv", "plots/evaluation/cmc.csv",
                 "reports/evaluation.json", "reports/export.json"):
        assert (root / path).is_file(), path
    metrics = json.loads((root / "metrics/evaluation.json").read_text())
    assert list(metrics) == list(HEADLINE)  # flat headline numbers only
    for key in HEADLINE:
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["rank1"] <= metrics["rank5"] <= metrics["rank10"]
    export = json.loads((root / "metrics/export.json").read_text())
    assert list(export) == ["max_abs_diff", "min_cosine", "mAP_fp32", "rank1_fp32", "mAP_fp16",
                            "rank1_fp16", "mAP_int8", "rank1_int8"]
    assert export["max_abs_diff"] <= 1e-4 and export["min_cosine"] >= 0.9999
    assert abs(export["mAP_fp32"] - metrics["mAP"]) < 1e-3  # onnxruntime vs PyTorch features
    for path in ("models/reid.fp16.onnx", "models/reid.int8.onnx", "models/MODEL_CARD.md"):
        assert (root / path).is_file(), path
    card = (root / "models/MODEL_CARD.md").read_text()
    for section in ("## Training data", "## Recipe", "## Metrics (test split)",
                    "## Match thresholds", "## Preprocessing", "## Intended use and limits",
                    "## Reproduce"):
        assert section in card, section
    from clipreid.export import read_onnx_metadata

    meta = read_onnx_metadata(root / "models/reid.int8.onnx")
    assert meta["metrics"] == metrics and meta["thresholds"]
    assert meta["input_size"] == [64, 32]  # the micro configuration's
    lock = (root / "dvc.lock").read_text()
    assert "models/reid.pt" in lock and "md5" in lock


def test_second_repro_reruns_nothing(micro_project):
    root, _ = micro_project
    proc = run(["dvc", "repro"], root)
    assert "Running stage" not in proc.stdout
    assert "up to date" in run(["dvc", "status"], root).stdout


def test_experiment_is_listed_with_its_metrics(micro_project, tmp_path):
    root = copy_project(micro_project[0], tmp_path / "project")
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "baseline run"], root)
    proc = run(["dvc", "exp", "run", "-S", "finetune.epochs=1", "-n", "one-epoch"], root)
    assert "Running stage 'finetune'" in proc.stdout
    assert "Running stage 'prompt'" not in proc.stdout  # stage 1 is unaffected
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root).stdout)
    experiments = [exp for rev in shown for exp in (rev.get("experiments") or [])]
    names = [exp.get("name") for exp in experiments]
    assert "one-epoch" in names, names
    run_data = next(e for e in experiments if e.get("name") == "one-epoch")["revs"][0]["data"]
    assert run_data["params"]["params.yaml"]["data"]["finetune"]["epochs"] == 1
    metrics = run_data["metrics"]["metrics/evaluation.json"]["data"]
    assert set(metrics) == set(HEADLINE)
    diff = json.loads(run(["dvc", "exp", "diff", "HEAD", "one-epoch", "--all", "--json"],
                          root).stdout)
    compared = diff["metrics"]["metrics/evaluation.json"]
    assert set(compared) == set(HEADLINE)  # every metric compares: no "not supported"
    assert all(isinstance(v["diff"], (int, float)) for v in compared.values()), compared


def test_plots_show_renders_one_offline_page(micro_project, tmp_path):
    """`dvc plots show` with the project's template: CMC, distances, losses and rank
    lists in one HTML page that renders with no network."""
    from browser import chromium_dom

    root, _ = micro_project
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], root)
    page = tmp_path / "plots" / "index.html"
    html = page.read_text()
    assert "cdn.jsdelivr" not in html and "vegaEmbed" in html
    for title in ("CMC", "Distances of positive and negative pairs",
                  "Match rates (ROC, cross-camera pairs)", "Training loss",
                  "Learning rate", "ranklist_best.png", "ranklist_worst.png"):
        assert title in html, title
    dom = chromium_dom(page, tmp_path / "profile")
    # each chart once: CMC, distances, match rates, training loss, learning rate; two
    # rank lists
    assert dom.count('class="vega-embed') == 5, dom.count('class="vega-embed')
    assert "<canvas" in dom or "<svg" in dom
    assert html.count('<img src="static/') == 2  # best and worst rank lists, once each


def test_dvc_exp_run_refuses_bad_overrides_before_anything_runs(micro_project, tmp_path):
    root = copy_project(micro_project[0], tmp_path / "project")
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "baseline run"], root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".git" not in
              p.parts and ".dvc" not in p.parts}
    for override, message in [("finetune.epochs=abc", "finetune.epochs='abc' is not allowed"),
                              ("finetune.epochs=-1", "finetune.epochs=-1 is not allowed"),
                              ("device=gpu", "device='gpu' is not allowed")]:
        proc = run(["dvc", "exp", "run", "-S", override], root, check=False)
        assert proc.returncode != 0
        assert message in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        assert "Running stage" not in proc.stdout
    after = {p: p.read_bytes() for p in before}
    assert [p for p in before if before[p] != after[p]] == []
    assert run(["git", "status", "--porcelain"], root).stdout == ""


def test_kept_overrides_reach_the_next_experiment(micro_project, tmp_path):
    """`clipreid compose KEY=VALUE` keeps the value in conf/: a later `dvc exp run` with no
    -S trains with it (it recomposes params.yaml from conf/)."""
    root = copy_project(micro_project[0], tmp_path / "project")
    run(["clipreid", "compose", "finetune.epochs=1"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "keep one epoch"], root)
    run(["dvc", "exp", "run", "-n", "kept"], root)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root).stdout)
    exp = next(e for rev in shown for e in (rev.get("experiments") or [])
               if e.get("name") == "kept")["revs"][0]["data"]
    assert exp["params"]["params.yaml"]["data"]["finetune"]["epochs"] == 1


def test_replacing_the_weights_file_marks_the_training_stages_stale(micro_project, tmp_path):
    root = copy_project(micro_project[0], tmp_path / "project")
    (root / "weights.pt").write_bytes(b"first")
    run(["clipreid", "compose", "model.clip_name=ViT-B/16", "model.weights=weights.pt",
         "model.source=weights.pt"], root)
    run(["dvc", "commit", "-f"], root)  # record the current state as if it had run
    assert json.loads(run(["dvc", "status", "--json"], root).stdout or "{}") == {}
    (root / "weights.pt").write_bytes(b"second")
    stale = json.loads(run(["dvc", "status", "--json"], root).stdout)
    assert set(stale) == {"prompt", "finetune"}
    assert "weights.pt" in json.dumps(stale["prompt"])


def test_a_checkpoint_resumes_only_the_same_code(micro_project, tmp_path):
    """A training stage's checkpoint fingerprint covers the code dvc.yaml lists for it: an
    unchanged rerun resumes from the last epoch, a changed loss trains anew."""
    root = copy_project(micro_project[0], tmp_path / "project")
    same = run(["clipreid", "finetune"], root)
    assert "finetune: resuming after epoch 2" in same.stderr, same.stderr
    losses = root / "src" / "clipreid" / "losses.py"
    losses.write_text(losses.read_text() + "\nLOSS_VERSION = 2  # a changed loss\n")
    changed = run(["dvc", "repro"], root)
    for stage in ("prompt", "finetune"):
        assert f"Running stage '{stage}'" in changed.stdout
    assert "resuming after epoch" not in changed.stderr + changed.stdout


def test_a_forced_rerun_gives_the_same_lock(micro_project, tmp_path):
    """Every DVC-tracked output is a function of its inputs: rerunning every stage changes
    no byte of dvc.lock (no timings or host facts in the outputs), and the checkout of the
    result succeeds."""
    root = copy_project(micro_project[0], tmp_path / "project")
    before = (root / "dvc.lock").read_text()
    run(["dvc", "repro", "--force"], root)
    assert (root / "dvc.lock").read_text() == before
    run(["dvc", "checkout"], root)


def test_the_baseline_skips_prompt_learning_and_sits_beside_clipreid(micro_project, tmp_path):
    """`-S method=baseline`: the prompt stage writes a file saying there are no prompts and
    learns nothing, the fine-tuning has no image-to-text loss, and `dvc exp show` lists the
    baseline's metrics next to CLIP-ReID's (the committed run)."""
    import torch

    root = copy_project(micro_project[0], tmp_path / "project")
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "clip-reid run"], root)
    proc = run(["dvc", "exp", "run", "-S", "method=baseline", "-n", "baseline"], root)
    for stage in ("prompt", "finetune", "evaluate", "export"):
        assert f"Running stage '{stage}'" in proc.stdout
    assert "method=baseline: no prompts to learn" in proc.stderr + proc.stdout
    prompts = torch.load(root / "models" / "prompts.pt", weights_only=True)
    assert prompts == {"method": "baseline", "num_classes": prompts["num_classes"]}
    assert not list((root / "dvclive" / "prompt").rglob("*.tsv"))  # no curves: nothing trained
    assert json.loads((root / "dvclive" / "prompt" / "metrics.json").read_text()) == {}
    finetune_log = json.loads((root / "dvclive" / "finetune" / "metrics.json").read_text())
    assert "i2t_loss" not in finetune_log and "id_loss" in finetune_log

    shown = json.loads(run(["dvc", "exp", "show", "--json"], root).stdout)
    committed = next(rev for rev in shown if rev.get("rev") != "workspace")
    data = {"clipreid": committed["data"]}
    data["baseline"] = next(e for e in committed.get("experiments") or []
                            if e.get("name") == "baseline")["revs"][0]["data"]
    for method, run_data in data.items():
        assert run_data["params"]["params.yaml"]["data"]["method"] == method
        assert set(run_data["metrics"]["metrics/evaluation.json"]["data"]) == set(HEADLINE)
    table = run(["dvc", "exp", "show", "--no-pager", "--drop", ".*", "--keep",
                 "Experiment|method|mAP$"], root).stdout
    assert "baseline" in table and "clipreid" in table, table
