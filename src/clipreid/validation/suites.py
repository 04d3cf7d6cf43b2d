"""The expectation suites: which Great Expectations expectations carry out each check,
and over which frame.

:func:`build_plan` returns one :class:`Suite` per frame (one checkpoint each, as a
checkpoint hands the same frame to all its validation definitions) and the checks that
do not apply to this data set, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from clipreid.dataset.manifest import COLUMNS, SPLITS
from clipreid.validation import frames as fr
from clipreid.validation._gx import gxe
from clipreid.validation.checks import CHECKS_BY_NAME
from clipreid.validation.settings import ValidationSettings, resolve_required_splits

# The checks of the schema suite: the only ones that run when manifest columns are missing.
_SCHEMA_CHECKS = ("columns_present", "no_nulls", "integer_ids", "split_values", "unique_paths")


@dataclass
class Spec:
    """One expectation and the check it belongs to."""

    check: str
    expectation: gxe.Expectation


@dataclass
class Suite:
    """A frame and the expectations run over it."""

    frame: fr.Frame
    specs: list[Spec]


def _spec(check: str, cls, **kwargs) -> Spec:
    return Spec(check, cls(notes=f"**{check}**: {CHECKS_BY_NAME[check].description}", **kwargs))


def schema_suite(raw: pd.DataFrame) -> Suite:
    """Column presence, nulls, integer ids, split values and unique paths, row by row."""
    present = [c for c in COLUMNS if c in raw.columns]
    specs = [_spec("columns_present", gxe.ExpectColumnToExist, column=c) for c in COLUMNS]
    specs += [_spec("no_nulls", gxe.ExpectColumnValuesToNotBeNull, column=c) for c in present]
    specs += [
        _spec("integer_ids", gxe.ExpectColumnValuesToMatchRegex, column=c, regex=fr.INT_PATTERN)
        for c in fr.INT_COLUMNS
        if c in present
    ]
    if "split" in present:
        specs.append(
            _spec(
                "split_values",
                gxe.ExpectColumnValuesToBeInSet,
                column="split",
                value_set=list(SPLITS),
            )
        )
    if "path" in present:
        specs.append(_spec("unique_paths", gxe.ExpectColumnValuesToBeUnique, column="path"))
    index = ["line", "path"] if "path" in present else ["line"]
    frame = fr.Frame("manifest_schema", raw, index, "the manifest as read, one row per CSV line")
    return Suite(frame, specs)


def rows_suite(rows: pd.DataFrame, num_cameras: int) -> Suite:
    """Per-row rules over the rows with readable ids: pid, camera range, train labels."""
    specs = [
        _spec("pid_non_negative", gxe.ExpectColumnValuesToBeBetween, column="pid", min_value=0),
        _spec(
            "camera_range",
            gxe.ExpectColumnValuesToBeBetween,
            column="camid",
            min_value=0,
            max_value=num_cameras - 1,
        ),
        _spec(
            "train_labels",
            gxe.ExpectColumnPairValuesToBeEqual,
            column_A="label",
            column_B="expected_label",
        ),
    ]
    frame = fr.Frame(
        "manifest_rows", rows, ["line", "path", "split", "pid"], "manifest rows with integer ids"
    )
    return Suite(frame, specs)


def split_suite(splits: pd.DataFrame) -> Suite:
    """One row per split: no required split is empty; every split sees every camera."""
    naming = ["split", "images", "cameras", "missing_cameras"]
    empty = _spec("empty_split", gxe.ExpectColumnValuesToBeBetween, column="images", min_value=1)
    coverage = _spec(
        "camera_coverage", gxe.ExpectColumnValuesToBeInSet, column="missing_cameras", value_set=[""]
    )
    return Suite(fr.Frame("split_summary", splits, naming, "one row per split"), [empty, coverage])


def identity_suites(rows: pd.DataFrame) -> list[Suite]:
    """Train/test identity overlap (one row per identity); single-image train identities."""
    roles = fr.Frame(
        "identity_roles",
        fr.identity_roles(rows),
        ["pid", "train_example", "test_example"],
        "one row per identity (pid > 0): train and test image counts",
    )
    overlap = _spec(
        "identity_overlap", gxe.ExpectColumnValuesToNotBeInSet, column="role", value_set=["both"]
    )
    train = fr.Frame(
        "train_identities",
        fr.identities_of(rows, "train", skip_distractors=False),
        ["pid", "example"],
        "one row per train identity",
    )
    single = _spec(
        "single_image_train_identity",
        gxe.ExpectColumnValuesToBeBetween,
        column="images",
        min_value=2,
    )
    return [Suite(roles, [overlap]), Suite(train, [single])]


def query_suite(rows: pd.DataFrame) -> Suite:
    """One row per query image: it has a gallery match on another camera."""
    frame = fr.Frame(
        "query_matches",
        fr.query_matches(rows),
        ["line", "path", "pid", "camid"],
        "one row per query",
    )
    match = _spec(
        "cross_camera_match",
        gxe.ExpectColumnValuesToBeBetween,
        column="cross_camera_gallery",
        min_value=1,
    )
    return Suite(frame, [match])


def identity_images_suite(rows: pd.DataFrame) -> Suite:
    """One row per `test` identity: it has two images at least (a query and a match)."""
    frame = fr.Frame(
        "test_identities",
        fr.identities_of(rows, "test", skip_distractors=True),
        ["pid", "example"],
        "one row per test identity (pid > 0)",
    )
    two = _spec(
        "test_identity_images", gxe.ExpectColumnValuesToBeBetween, column="images", min_value=2
    )
    return Suite(frame, [two])


def file_suites(raw: pd.DataFrame, info: pd.DataFrame, min_side: int,
                max_side: int) -> list[Suite]:
    """Per manifest row, its file exists, decodes and is large enough; per file content,
    it is not in train and in a test split at once."""
    files = fr.image_files(raw, info)
    frame = fr.Frame("image_files", files, ["line", "path", "error"], "one row per manifest row")
    specs = [
        _spec("file_exists", gxe.ExpectColumnValuesToBeInSet, column="exists", value_set=[True]),
        _spec("file_decodes", gxe.ExpectColumnValuesToBeInSet, column="decodes", value_set=[True]),
        _spec(
            "image_min_size",
            gxe.ExpectColumnValuesToBeBetween,
            column="min_side",
            min_value=min_side,
        ),
        _spec(
            "image_max_size",
            gxe.ExpectColumnValuesToBeBetween,
            column="max_side",
            max_value=max_side,
        ),
    ]
    duplicates = fr.Frame(
        "image_duplicates",
        fr.image_duplicates(files),
        ["sha256", "train_example", "test_example"],
        "one row per distinct file content (SHA-256)",
    )
    leak = _spec(
        "train_test_duplicates",
        gxe.ExpectColumnValuesToNotBeInSet,
        column="role",
        value_set=["both"],
    )
    return [Suite(frame, specs), Suite(duplicates, [leak])]


def _split_report(splits: pd.DataFrame) -> dict:
    return {
        r.split: {
            "images": int(r.images),
            "identities": int(r.identities),
            "cameras": [int(c) for c in r.cameras.split()],
        }
        for r in splits.itertuples()
    }


def build_plan(
    raw: pd.DataFrame, info: pd.DataFrame | None, settings: ValidationSettings
) -> tuple[list[Suite], dict[str, str], dict]:
    """Frames and their suites for this manifest.

    ``info`` is the image inspection frame (``frames.inspections_frame``; None only when
    the manifest has no ``path`` column). Returns the suites, ``{check: reason}`` for the
    checks that do not apply here, and a summary (protocol; per split: images,
    identities, camera set)."""
    missing = fr.missing_columns(raw)
    if missing:
        reason = f"the manifest lacks column(s) {missing}"
        skipped = {name: reason for name in CHECKS_BY_NAME if name not in _SCHEMA_CHECKS}
        return [schema_suite(raw)], skipped, {"protocol": None, "splits": {}}

    rows = fr.typed_rows(raw)
    required = resolve_required_splits(settings, rows["split"])
    splits = fr.split_summary(rows, required, settings.num_cameras)
    plan = [schema_suite(raw), rows_suite(rows, settings.num_cameras), split_suite(splits)]
    plan += identity_suites(rows)
    if "test" in required:
        protocol = "test"
        plan.append(identity_images_suite(rows))
        skipped = {"cross_camera_match": "the data set has a `test` split, no query/gallery"}
    else:
        protocol = "query_gallery"
        plan.append(query_suite(rows))
        skipped = {"test_identity_images": "the data set has query/gallery splits, no `test`"}
    plan += file_suites(raw, info, settings.min_image_side, settings.max_image_side)
    summary = {
        "protocol": protocol,
        "required_splits": list(required),
        "splits": _split_report(splits),
    }
    return plan, skipped, summary
