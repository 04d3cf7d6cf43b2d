"""The broken data sets of ``validation_datasets`` are real Market-1501 folders: the
project's Market reader reads each folder into the manifest the helper writes (so the
folders can drive end-to-end runs of `prepare` -> `validate`), except the faults the
reader itself rejects first."""

from __future__ import annotations

import pandas as pd
import pytest
from validation_datasets import CASES, NUM_CAMERAS, build_market_dataset

from clipreid.dataset.readers.market import read_market1501
from clipreid.errors import DatasetError


@pytest.mark.parametrize("case", ["clean", *sorted(c for c in CASES if CASES[c].layout)])
def test_market_reader_reads_the_helper_manifest(tmp_path, case):
    dataset = build_market_dataset(tmp_path, case)
    if case != "clean" and CASES[case].reader_rejects:
        with pytest.raises(DatasetError, match=CASES[case].culprit):
            read_market1501(dataset.image_root, num_cameras=NUM_CAMERAS)
        return
    ours = pd.read_csv(dataset.manifest_path).sort_values("path", ignore_index=True)
    read = read_market1501(dataset.image_root, num_cameras=NUM_CAMERAS)
    read = read.sort_values("path", ignore_index=True)[ours.columns].astype(ours.dtypes.to_dict())
    pd.testing.assert_frame_equal(ours, read)
