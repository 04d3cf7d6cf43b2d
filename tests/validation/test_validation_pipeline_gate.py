"""Under `dvc repro`, a broken data set stops the pipeline at `prepare` or `validate` with
a message naming the culprit, and no output of a later stage is written or modified."""

import hashlib

import pytest
from project_support import copy_project, run
from validation_datasets import CASES, NUM_CAMERAS, build_market_dataset

# Outputs of the stages after `validate`, as the good run of the micro project left them.
LATER_OUTPUTS = ("models", "metrics", "plots", "dvclive", "checkpoints")

PIPELINE_CASES = {
    # name: (how to build the folder, the text the failure must name)
    **{case: (case, CASES[case].culprit.split("/")[-1]) for case in (
        "identity_overlap", "no_cross_camera_match", "camera_out_of_range", "truncated_jpeg",
        "zero_byte_file", "text_named_jpg", "duplicate_across_splits")},
    "empty_query_split": ("empty_query_split", "query"),
    "unparseable_file_name": ("clean", "holiday-photo.jpg"),
    "missing_folder": (None, "no-such-market"),
}


def digests(root):
    out = {}
    for name in LATER_OUTPUTS:
        for path in sorted((root / name).rglob("*")):
            if path.is_file():
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("case", sorted(PIPELINE_CASES))
def test_broken_data_stops_the_pipeline_before_training(case, micro_project, tmp_path):
    build, culprit = PIPELINE_CASES[case]
    root = copy_project(micro_project[0], tmp_path / "project")
    before = digests(root)
    assert any(k.startswith("models/") for k in before)
    if build is None:
        data_root = tmp_path / "no-such-market"
    else:
        data_root = build_market_dataset(tmp_path / "data", build, manifest=False).image_root
        if case == "unparseable_file_name":
            (data_root / "bounding_box_test" / "holiday-photo.jpg").write_bytes(
                (data_root / "bounding_box_test" / "0020_c2s1_000001_00.jpg").read_bytes())
    proc = run(["clipreid", "compose", "dataset=market1501", f"dataset.root={data_root}",
                f"dataset.num_cameras={NUM_CAMERAS}"], root, check=False)
    if proc.returncode == 0:  # else the params check refused the folder already
        proc = run(["dvc", "repro"], root, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert culprit in output, output
    for later in ("prompt", "finetune", "evaluate", "export"):
        assert f"Running stage '{later}'" not in output
    if "Running stage 'validate'" in output:  # else `prepare` refused the folder first
        assert not (root / "data/validated/manifest.csv").exists()
    assert digests(root) == before


def test_a_validation_stopped_by_sigterm_leaves_no_scratch_folder(micro_project, tmp_path):
    """`kill` (SIGTERM) while the Great Expectations suites run: the stage exits and its
    scratch folder in the temporary directory goes with it."""
    import os
    import signal
    import subprocess
    import time

    from project_support import BIN, copy_project

    root = copy_project(micro_project[0], tmp_path / "project")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen([str(BIN / "clipreid"), "validate"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list(scratch.glob("clipreid-gx-*")):  # until the suites run (no time limit)
        assert proc.poll() is None, "validation ended before its scratch folder was seen"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 128 + signal.SIGTERM
    assert list(scratch.glob("clipreid-gx-*")) == []
