"""The catalogue of data checks: one name per rule, the config key of its severity.

Each check is carried out by one or more Great Expectations expectations (see
``suites.py``); its severity decides what a failure does:

- ``error``: the data would corrupt training or the metrics; the stage fails;
- ``warn``: worth knowing, reported only.

Nothing here imports Great Expectations or pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARN = "warn"
SEVERITIES = (ERROR, WARN)


@dataclass(frozen=True)
class Check:
    """One data rule: its config name, group, default severity and what it means."""

    name: str
    group: str
    default: str
    description: str


# fmt: off
CHECKS: tuple[Check, ...] = (
    # schema: the manifest table itself
    Check("columns_present", "schema", ERROR,
          "the manifest has the columns path, pid, camid, split, label"),
    Check("no_nulls", "schema", ERROR, "no cell of the manifest is empty"),
    Check("integer_ids", "schema", ERROR, "pid, camid and label are integers"),
    Check("split_values", "schema", ERROR, "split is one of train, query, gallery, test"),
    Check("unique_paths", "schema", ERROR, "each image path appears once"),
    Check("pid_non_negative", "schema", ERROR,
          "no junk identity (pid < 0) is left in the manifest"),
    # cameras
    Check("camera_range", "cameras", ERROR, "camid lies in [0, num_cameras) in every split"),
    Check("camera_coverage", "cameras", WARN,
          "each split sees every camera (its camera set is reported)"),
    # identities
    Check("empty_split", "identities", ERROR, "each split the protocol needs has images"),
    Check("identity_overlap", "identities", ERROR,
          "train and test identities are disjoint (distractors aside)"),
    Check("train_labels", "identities", ERROR,
          "train labels are 0..N-1 in order of pid; -1 outside train"),
    Check("cross_camera_match", "identities", ERROR,
          "every query has a gallery image of its identity from another camera"),
    Check("test_identity_images", "identities", ERROR,
          "every test identity has at least 2 images (data sets with a `test` split)"),
    Check("single_image_train_identity", "identities", WARN,
          "train identities with a single image"),
    # files
    Check("file_exists", "files", ERROR, "every image file exists"),
    Check("file_decodes", "files", ERROR, "every image file is non-empty and decodes in full"),
    Check("image_min_size", "files", ERROR,
          "every image is at least `min_image_side` pixels a side"),
    Check("image_max_size", "files", ERROR,
          "every image is at most `max_image_side` pixels a side (larger ones would be "
          "decoded whole at every epoch)"),
    Check("train_test_duplicates", "files", ERROR,
          "no byte-identical image is in both train and a test split"),
)
# fmt: on

CHECKS_BY_NAME: dict[str, Check] = {check.name: check for check in CHECKS}


def default_severities() -> dict[str, str]:
    """Return ``{check name: default severity}`` for every check."""
    return {check.name: check.default for check in CHECKS}
