"""VeRi-776 (vehicles, 20 cameras).

Expected layout under the root (the ``VeRi`` folder of the archive)::

    image_train/   training images
    image_query/   query images
    image_test/    gallery images

File names ``0001_c001_00016450_0.jpg``: vehicle id, 1-based camera ``c001``..``c020``,
frame, index. The XML label files and ``name_*.txt`` lists are not needed.
"""

from __future__ import annotations

import os
import re

import pandas as pd

from clipreid.dataset.readers.folders import read_split_folders

VERI_FOLDERS = {"train": "image_train", "query": "image_query", "gallery": "image_test"}
VERI_PATTERN = re.compile(r"(?P<pid>\d+)_c(?P<cam>\d+)_\d+_\d+\.jpg", re.IGNORECASE)
VERI_EXPECTED = "'<vehicle id>_c<camera>_<frame>_<index>.jpg', e.g. '0001_c001_00016450_0.jpg'"


def read_veri776(
    root: str | os.PathLike, *, num_cameras: int = 20, source: str = "veri776"
) -> pd.DataFrame:
    """Read VeRi-776 at ``root`` into a manifest (camid 0-based)."""
    return read_split_folders(
        root,
        VERI_FOLDERS,
        pattern=VERI_PATTERN,
        expected=VERI_EXPECTED,
        num_cameras=num_cameras,
        source=source,
    )
