"""MSMT17 (persons, 15 cameras), versions V1 and V2.

The root is the folder that holds the list files (``MSMT17_V1/`` or ``MSMT17_V2/``)::

    MSMT17_V1/                         MSMT17_V2/
      train/0000/0000_000_01_....jpg     mask_train_v2/0000/0000_000_01_....jpg
      test/0000/0000_000_01_....jpg      mask_test_v2/0000/...
      list_train.txt                     list_train.txt
      list_val.txt                       list_val.txt
      list_query.txt                     list_query.txt
      list_gallery.txt                   list_gallery.txt

V2 is V1 with faces masked: the same images, names and lists, only the image folders
differ. Each list line is ``<path inside the image folder> <label>``, e.g.
``0000/0000_000_01_0303morning_0015_0.jpg 0``; train and val lines point into the train
folder and are merged for training (as the published protocol does), query and gallery
lines point into the test folder. The identity is the list label; the camera is the
third ``_`` field of the file name (1-based, ``01``..``15``). The test labels restart at
0, so query/gallery pids overlap train pids numerically; they are only compared among
themselves. Only the list files are read; images are not opened or checked here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from clipreid.dataset.manifest import make_manifest, require_splits
from clipreid.dataset.readers._common import (
    check_camera,
    read_list_file,
    require_dir,
    require_file,
)
from clipreid.errors import ConfigError, DatasetError

NUM_CAMERAS = 15
IMAGE_FOLDERS = {"v1": ("train", "test"), "v2": ("mask_train_v2", "mask_test_v2")}
LISTS = (  # list file, split, which image folder (0 train, 1 test)
    ("list_train.txt", "train", 0),
    ("list_val.txt", "train", 0),
    ("list_query.txt", "query", 1),
    ("list_gallery.txt", "gallery", 1),
)


def _camera(relpath: str, *, where) -> int:
    """The 1-based camera number of an MSMT17 file name (third ``_`` field)."""
    fields = relpath.rsplit("/", 1)[-1].split("_")
    if len(fields) < 4 or not fields[2].isdigit():
        raise DatasetError(
            f"{where}: file name {relpath!r} does not parse (expected "
            f"'<pid>_<index>_<camera>_<date>_<frame>_<n>.jpg'); the list file is damaged"
        )
    return int(fields[2])


def read_msmt17(root: str | os.PathLike, *, version: str = "v1") -> pd.DataFrame:
    """Read MSMT17 at ``root`` (the folder holding ``list_*.txt``) into a manifest."""
    version = str(version).lower()
    if version not in IMAGE_FOLDERS:
        raise ConfigError(f"dataset.version={version!r} unknown; use v1 or v2")
    root = Path(root)
    for child in ("MSMT17_V1", "MSMT17_V2"):
        if not (root / "list_train.txt").exists() and (root / child).is_dir():
            raise DatasetError(
                f"msmt17: {root} holds {child}/ but no list_train.txt; set "
                f"dataset.root to {root / child}"
            )
    require_dir(root, what="msmt17 root")
    folders = IMAGE_FOLDERS[version]
    for folder in folders:
        require_dir(root / folder, what=f"msmt17 {version} images")
    rows = []
    for list_name, split, which in LISTS:
        list_path = require_file(root / list_name, what=f"msmt17 {split} list")
        prefix = str(root / folders[which]) + os.sep  # prefix + relpath: the image's path
        for number, relpath, pid in read_list_file(list_path):
            cam = _camera(relpath, where=f"{list_path}, line {number}")
            if not 1 <= cam <= NUM_CAMERAS:
                check_camera(cam, NUM_CAMERAS, where=f"{list_path}, line {number}")
            rows.append((prefix + relpath, pid, cam - 1, split))
    df = make_manifest(rows, source=f"msmt17 ({root})")
    require_splits(df, ["train", "query", "gallery"], source=f"msmt17 lists in {root}")
    return df
