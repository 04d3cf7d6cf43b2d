"""VehicleID (vehicles, no camera labels) and its query/gallery trials.

Expected layout under the root (``VehicleID_V1.0/``)::

    image/<name>.jpg
    train_test_split/train_list.txt
    train_test_split/test_list_800.txt    (small test set)
    train_test_split/test_list_1600.txt   (medium)
    train_test_split/test_list_2400.txt   (large)

Each list line is ``<image name> <vehicle id>``, e.g. ``0004488 1``; the image is
``image/<name>.jpg`` (a name that already ends in ``.jpg`` is used as is). Every image
gets camid 0. Test images have split ``test``: the protocol draws the query/gallery
partition at evaluation time, one random gallery image per vehicle and the rest as
queries, repeated over seeded trials (:mod:`clipreid.evaluation.protocols`).
Since all camids are equal, evaluation must not remove same-camera gallery matches.
Only the list files are read; images are not opened or checked here.
"""

from __future__ import annotations

import os
import pandas as pd

from clipreid.dataset.manifest import make_manifest, require_splits
from clipreid.dataset.readers._common import read_list_file, require_dir, require_file
from clipreid.errors import DatasetError

TEST_SIZES = (800, 1600, 2400)


def _image_path(prefix: str, name: str) -> str:
    """The path of a listed image: ``<prefix><name>.jpg`` unless the name has a suffix."""
    suffix = "" if name.lower().endswith((".jpg", ".jpeg", ".png")) else ".jpg"
    return prefix + name + suffix


def read_vehicleid(root: str | os.PathLike, *, test_size: int = 800) -> pd.DataFrame:
    """Read VehicleID at ``root`` into a manifest: ``train`` rows from ``train_list.txt``
    and ``test`` rows from ``test_list_<test_size>.txt``."""
    root = require_dir(root, what="vehicleid root")
    image_dir = require_dir(root / "image", what="vehicleid images")
    split_dir = require_dir(root / "train_test_split", what="vehicleid split lists")
    test_list = split_dir / f"test_list_{int(test_size)}.txt"
    if not test_list.is_file():
        found = sorted(p.name for p in split_dir.glob("test_list_*.txt"))
        raise DatasetError(
            f"vehicleid: {test_list} not found (dataset.test_size={test_size}); "
            f"available: {found or 'none'}; the standard sizes are {list(TEST_SIZES)}"
        )
    rows = []
    prefix = str(image_dir) + os.sep  # prefix + name + ".jpg" == str(image_dir / file name)
    for list_path, split in ((split_dir / "train_list.txt", "train"), (test_list, "test")):
        require_file(list_path, what=f"vehicleid {split} list")
        for _number, name, vid in read_list_file(list_path):
            rows.append((_image_path(prefix, name), vid, 0, split))
    df = make_manifest(rows, source=f"vehicleid ({root})")
    require_splits(df, ["train", "test"], source=f"vehicleid lists in {split_dir}")
    return df
