"""Reader for data sets stored as one folder per split, identity and camera in each file
name (Market-1501 style). The Market-1501 and VeRi-776 readers are thin layers over it."""

from __future__ import annotations

import os
import re
from typing import Mapping

import pandas as pd

from clipreid.dataset.manifest import make_manifest, require_splits
from clipreid.dataset.readers._common import (
    check_camera,
    image_names,
    parse_pid_cam,
    require_dir,
)
from clipreid.errors import DatasetError

JUNK_PID = -1


def read_split_folders(
    root: str | os.PathLike,
    folders: Mapping[str, str],
    *,
    pattern: re.Pattern,
    expected: str,
    num_cameras: int,
    source: str,
) -> pd.DataFrame:
    """Read ``{split: folder}`` under ``root`` into a manifest.

    Each image name must match ``pattern`` (named groups ``pid`` and 1-based ``cam``;
    ``expected`` describes the form for error messages). Junk images (pid -1) are
    dropped; distractors (pid 0) are kept. Every split must keep at least one image."""
    root = require_dir(root, what=f"{source} root")
    rows = []
    for split, folder in folders.items():
        directory = require_dir(root / folder, what=f"{source} {split} split")
        prefix = str(root / folder) + os.sep  # prefix + name == str(root / folder / name)
        kept = 0
        for name in image_names(directory):
            pid, cam = parse_pid_cam(name, pattern, where=directory, expected=expected)
            if not 1 <= cam <= num_cameras:
                check_camera(cam, num_cameras, where=prefix + name)
            if pid == JUNK_PID:
                continue
            rows.append((prefix + name, pid, cam - 1, split))
            kept += 1
        if kept == 0:
            raise DatasetError(
                f"{source}: folder {directory} holds no usable images (junk excluded), so "
                f"the '{split}' split is empty; check that the data set was fully extracted"
            )
    df = make_manifest(rows, source=f"{source} ({root})")
    require_splits(df, list(folders), source=f"{source} ({root})")
    return df
