"""Market-1501 layout: Market-1501, DukeMTMC-reID, Occluded-Duke (and our synthetic set).

Expected layout under the root::

    bounding_box_train/   training images
    query/                query images
    bounding_box_test/    gallery images, with distractors (pid 0000) and junk (pid -1)

File names start with the identity and the 1-based camera:
Market-1501 ``0002_c1s1_000451_03.jpg`` (pid, camera 1 + sequence 1, frame, box index),
junk ``-1_c3s1_000126_02.jpg``; DukeMTMC-reID / Occluded-Duke ``0001_c2_f0046182.jpg``
(pid, camera, frame). Other files (e.g. ``Thumbs.db``) are ignored. Junk is dropped,
distractors stay in the gallery. Cameras: Market-1501 6, DukeMTMC-reID and Occluded-Duke 8.
"""

from __future__ import annotations

import os
import re

import pandas as pd

from clipreid.dataset.readers.folders import read_split_folders

MARKET_FOLDERS = {
    "train": "bounding_box_train",
    "query": "query",
    "gallery": "bounding_box_test",
}
MARKET_PATTERN = re.compile(
    r"(?P<pid>-1|\d+)_c(?P<cam>\d+)(?:s\d+)?_\w+\.(?:jpe?g|png)", re.IGNORECASE
)
MARKET_EXPECTED = "'<pid>_c<camera>s<seq>_<frame>_<box>.jpg' or '<pid>_c<camera>_f<frame>.jpg'"


def read_market1501(
    root: str | os.PathLike, *, num_cameras: int = 6, source: str = "market1501"
) -> pd.DataFrame:
    """Read a Market-1501-layout data set at ``root`` into a manifest (camid 0-based)."""
    return read_split_folders(
        root,
        MARKET_FOLDERS,
        pattern=MARKET_PATTERN,
        expected=MARKET_EXPECTED,
        num_cameras=num_cameras,
        source=source,
    )
