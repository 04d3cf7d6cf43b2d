"""The validation catches each kind of broken data set, naming the file or row at fault,
passes a clean one, and follows the severities of the config."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from PIL import Image
from validation_datasets import (
    CASES,
    Record,
    build_market_dataset,
    build_vehicle_dataset,
    write_image,
)

from clipreid.errors import ConfigError, DatasetError
from clipreid.validation import run_validation
from clipreid.validation.checks import CHECKS_BY_NAME


def _failed(report: dict) -> dict[str, list[dict]]:
    """check name -> its failed expectation entries of the JSON report."""
    out: dict[str, list[dict]] = {}
    for entry in report["expectations"]:
        if entry["status"] == "fail":
            out.setdefault(entry["check"], []).append(entry)
    return out


def _status(report: dict, check: str) -> set[str]:
    return {e["status"] for e in report["expectations"] if e["check"] == check}


def test_clean_market_set_passes_every_check(tmp_path, validate):
    outcome, report = validate(build_market_dataset(tmp_path, "clean"))
    assert outcome.ok, outcome.summary()
    assert report["ok"] is True
    assert _failed(report) == {}
    # every check ran except the one for `test`-split data sets
    for name in CHECKS_BY_NAME:
        expected = {"skipped"} if name == "test_identity_images" else {"pass"}
        assert _status(report, name) == expected, name
    assert report["splits"]["train"] == {"images": 6, "identities": 3, "cameras": [0, 1, 2]}
    assert report["splits"]["gallery"]["identities"] == 4  # 3 + the distractor
    assert report["images"]["inspected"] == 16 and report["images"]["modes"] == {
        "CMYK": 1,
        "L": 1,
        "RGB": 14,
    }
    assert "PASSED" in outcome.summary()


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_market_set_is_caught_naming_the_culprit(tmp_path, validate, case):
    dataset = build_market_dataset(tmp_path, case)
    expected = CASES[case]
    outcome, report = validate(dataset)

    assert not outcome.ok
    failed = _failed(report)
    assert set(failed) == {expected.check}, outcome.summary()
    entry = failed[expected.check][0]
    assert entry["severity"] == "error" and entry["success"] is False
    assert entry["counts"]["unexpected_count"] >= 1
    # the culprit (a file, or the empty split) is named in the report's rows and in the summary
    assert expected.culprit in str(entry["examples"])
    summary = outcome.summary()
    assert f"ERROR {expected.check}" in summary and expected.culprit in summary
    assert outcome.failed_checks("error") == [expected.check]


def test_file_faults_say_why(tmp_path, validate):
    _, report = validate(build_market_dataset(tmp_path, "zero_byte_file"))
    assert "empty file (0 bytes)" in str(_failed(report)["file_decodes"][0]["examples"])


def test_duplicate_names_both_files(tmp_path, validate):
    _, report = validate(build_market_dataset(tmp_path, "duplicate_across_splits"))
    example = _failed(report)["train_test_duplicates"][0]["examples"][0]
    assert example["train_example"].endswith("bounding_box_train/0002_c1s1_000001_00.jpg")
    assert example["test_example"].endswith("bounding_box_test/0031_c1s1_000001_00.jpg")


def test_grayscale_rgba_cmyk_and_palette_images_are_accepted(tmp_path, validate):
    dataset = build_market_dataset(tmp_path, "clean")
    manifest = pd.read_csv(dataset.manifest_path)
    extra = []
    for seq, (mode, ext) in enumerate(
        [("RGBA", "png"), ("P", "png"), ("LA", "png"), ("L", "jpg"), ("CMYK", "jpg")]
    ):
        path = dataset.image_root / "bounding_box_test" / f"0000_c1s1_{seq + 10:06d}_00.{ext}"
        write_image(path.with_suffix(".tmp.jpg"), Record("gallery", 0, 0, seq=seq + 10))
        Image.open(path.with_suffix(".tmp.jpg")).convert(mode).save(path)
        path.with_suffix(".tmp.jpg").unlink()
        extra.append({"path": str(path), "pid": 0, "camid": 0, "split": "gallery", "label": -1})
    pd.concat([manifest, pd.DataFrame(extra)]).to_csv(dataset.manifest_path, index=False)

    outcome, report = validate(dataset)
    assert outcome.ok, outcome.summary()
    assert _failed(report) == {}
    for mode in ("RGBA", "P", "LA", "L", "CMYK"):
        assert report["images"]["modes"][mode] >= 1


def test_turning_a_check_to_warn_lets_the_run_pass(tmp_path, validate):
    dataset = build_market_dataset(tmp_path, "camera_out_of_range")
    outcome, report = validate(dataset, {"severity": {"camera_range": "warn"}})
    assert outcome.ok
    entry = _failed(report)["camera_range"][0]
    assert entry["severity"] == "warn"
    assert (
        outcome.failed_checks("warn") == ["camera_range"] and outcome.failed_checks("error") == []
    )
    assert "WARN camera_range" in outcome.summary()


def test_single_image_train_identity_warns_by_default(tmp_path, validate):
    dataset = build_market_dataset(tmp_path, "clean")
    manifest = pd.read_csv(dataset.manifest_path)
    manifest = manifest[~manifest["path"].str.endswith("0011_c3s1_000001_00.jpg")]
    manifest.to_csv(dataset.manifest_path, index=False)
    outcome, report = validate(dataset)
    assert outcome.ok
    entry = _failed(report)["single_image_train_identity"][0]
    assert entry["severity"] == "warn" and entry["examples"][0]["pid"] == 11
    assert entry["examples"][0]["example"].endswith("0011_c2s1_000001_00.jpg")


def test_schema_faults_name_their_lines(tmp_path, validate):
    dataset = build_market_dataset(tmp_path, "clean")
    m = pd.read_csv(dataset.manifest_path, dtype=str)
    # data row i is CSV line i + 2; lines 2-7 train, 8-10 query, 11-17 gallery
    m.loc[1, "camid"] = ""  # line 3: null
    m.loc[2, "pid"] = "abc"  # line 4: not an integer
    m.loc[5, "label"] = "7"  # line 7: train label off (pid 11 is label 2)
    m.loc[10, "split"] = "val"  # line 12: unknown split
    m.loc[15, "pid"] = "-1"  # line 17: junk left in (was the distractor)
    m = pd.concat([m, m.iloc[[9]]])  # line 18 repeats line 11's path
    m.to_csv(dataset.manifest_path, index=False)

    outcome, report = validate(dataset, {"max_examples": 1})
    failed = _failed(report)
    assert not outcome.ok
    assert set(outcome.failed_checks("error")) == {
        "no_nulls",
        "integer_ids",
        "split_values",
        "pid_non_negative",
        "train_labels",
        "unique_paths",
    }
    assert [(e["column"], e["examples"][0]["line"]) for e in failed["no_nulls"]] == [("camid", 3)]
    assert [(e["column"], e["examples"][0]["line"]) for e in failed["integer_ids"]] == [("pid", 4)]
    assert failed["train_labels"][0]["examples"][0]["line"] == 7
    assert failed["split_values"][0]["examples"][0]["line"] == 12
    assert failed["pid_non_negative"][0]["examples"][0]["line"] == 17
    dup = failed["unique_paths"][0]
    assert dup["counts"]["unexpected_count"] == 2 and len(dup["examples"]) == 1  # max_examples
    assert dup["examples"][0]["line"] in (11, 18)
    assert "... and 1 more" in outcome.summary()


def test_missing_column_fails_and_skips_the_rest(tmp_path, validate):
    dataset = build_market_dataset(tmp_path, "clean")
    pd.read_csv(dataset.manifest_path).drop(columns="label").to_csv(
        dataset.manifest_path, index=False
    )
    outcome, report = validate(dataset, {"severity": {"columns_present": "warn"}})
    assert not outcome.ok  # nothing else could be checked, whatever the severity
    assert [e["column"] for e in _failed(report)["columns_present"]] == ["label"]
    assert _status(report, "camera_range") == {"skipped"}
    assert "column 'label' is missing" in outcome.summary()


def test_vehicle_style_test_split_uses_the_two_image_rule(tmp_path, validate):
    dataset = build_vehicle_dataset(tmp_path, single_image_test_identity=True)
    outcome, report = validate(dataset)
    assert not outcome.ok
    assert set(_failed(report)) == {"test_identity_images"}
    example = _failed(report)["test_identity_images"][0]["examples"][0]
    assert example["pid"] == 12 and example["example"].endswith("0000012_01.jpg")
    assert _status(report, "cross_camera_match") == {"skipped"}
    assert report["protocol"] == "test" and report["required_splits"] == ["train", "test"]


def test_config_mistakes_are_named(tmp_path):
    dataset = build_market_dataset(tmp_path, "clean")
    report = tmp_path / "r.json"
    cases = [
        ({"severity": {"camera_rnage": "warn"}},
         "unknown key(s) ['validation.severity.camera_rnage']"),
        (
            {"severity": {"camera_range": "fatal"}},
            "validation.severity.camera_range='fatal' is not allowed: expected one of 'error'",
        ),
        ({"min_side": 16}, "unknown key(s) ['validation.min_side']"),
        ({"required_splits": ["train", "val"]},
         "validation.required_splits[1]='val' is not allowed: expected one of 'train'"),
    ]
    for cfg, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            run_validation(dataset.manifest_path, dataset.dataset_cfg, cfg, report)
    with pytest.raises(ConfigError, match="dataset.num_cameras=0 is not allowed"):
        run_validation(dataset.manifest_path, {"name": "x", "num_cameras": 0}, {}, report)
    with pytest.raises(DatasetError, match="run the `prepare` stage"):
        run_validation(tmp_path / "nope.csv", dataset.dataset_cfg, {}, report)
    assert not report.exists()


def test_an_image_over_max_image_side_fails_the_run_naming_it(tmp_path, validate):
    """A 5000-pixel-wide PNG (a few KB) passes every other check but would be decoded whole
    at every epoch: refused by `image_max_size`, with the file named."""
    dataset = build_market_dataset(tmp_path, "clean")
    manifest = pd.read_csv(dataset.manifest_path)
    path = dataset.image_root / "bounding_box_test" / "0000_c1s1_000099_00.png"
    Image.new("RGB", (5000, 40), (90, 90, 90)).save(path)
    extra = {"path": str(path), "pid": 0, "camid": 0, "split": "gallery", "label": -1}
    pd.concat([manifest, pd.DataFrame([extra])]).to_csv(dataset.manifest_path, index=False)
    outcome, report = validate(dataset)
    assert not outcome.ok
    failed = _failed(report)
    assert set(failed) == {"image_max_size"}, failed
    assert "0000_c1s1_000099_00.png" in json.dumps(failed["image_max_size"])
    outcome, _ = validate(dataset, {"max_image_side": 5000})
    assert outcome.ok, outcome.summary()
