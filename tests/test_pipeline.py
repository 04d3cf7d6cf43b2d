"""End to end: `dvc repro` of a micro configuration in a fresh git + DVC project, a no-op
second repro, and an experiment that `dvc exp show` lists with its metrics."""

import json

from project_support import copy_project, run


def test_repro_runs_every_stage_and_writes_its_outputs(micro_project):
    root, proc = micro_project
    for stage in ("prepare", "validate", "prompt", "finetune", "evaluate", "export"):
        assert f"Running stage '{stage}'" in proc.stdout
    for path in ("data/prepared/manifest.csv", "models/prompts.pt", "models/reid.pt",
                 "models/reid.onnx", "dvclive/prompt/metrics.json", "reports/validation.json",
                 "reports/data_docs/index.html", "data/validated/manifest.csv",
                 "dvclive/finetune/plots/metrics/loss.tsv", "plots/evaluation/cmc.csv"):
        assert (root / path).is_file(), path
    metrics = json.loads((root / "metrics/evaluation.json").read_text())
    for key in ("mAP", "rank1", "rank5", "rank10", "mINP"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["rank1"] <= metrics["rank5"] <= metrics["rank10"]
    export = json.loads((root / "metrics/export.json").read_text())
    assert export["max_abs_diff"] <= 1e-4
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
    proc = run(["dvc", "exp", "run", "-S", "stage2.epochs=1", "-n", "one-epoch"], root)
    assert "Running stage 'finetune'" in proc.stdout
    assert "Running stage 'prompt'" not in proc.stdout  # stage 1 is unaffected
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root).stdout)
    experiments = [exp for rev in shown for exp in (rev.get("experiments") or [])]
    names = [exp.get("name") for exp in experiments]
    assert "one-epoch" in names, names
    run_data = next(e for e in experiments if e.get("name") == "one-epoch")["revs"][0]["data"]
    assert run_data["params"]["params.yaml"]["data"]["stage2"]["epochs"] == 1
    metrics = run_data["metrics"]["metrics/evaluation.json"]["data"]
    assert set(metrics) >= {"mAP", "rank1", "mINP"}


def test_plots_show_renders_one_offline_page(micro_project, tmp_path):
    """`dvc plots show` with the project's template: CMC, distances, losses and rank
    lists in one HTML page that renders with no network."""
    from browser import chromium_dom

    root, _ = micro_project
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], root)
    page = tmp_path / "plots" / "index.html"
    html = page.read_text()
    assert "cdn.jsdelivr" not in html and "vegaEmbed" in html
    for name in ("cmc.csv", "distance_hist.csv", "loss.tsv", "ranklist_best.png"):
        assert name in html, name
    dom = chromium_dom(page, tmp_path / "profile")
    assert dom.count('class="vega-embed') >= 3  # the Vega charts were drawn
    assert "<canvas" in dom or "<svg" in dom
