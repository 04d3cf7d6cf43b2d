"""Data-set readers, one module per on-disk format, and the dispatcher ``read_dataset``.

Every reader returns the manifest of :mod:`clipreid.dataset.manifest`. ``read_dataset`` picks
the reader from the ``dataset`` config group (``conf/dataset/<name>.yaml``) by its
``format`` key:

==============  =====================================================================
format          data sets
==============  =====================================================================
``market1501``  Market-1501, DukeMTMC-reID, Occluded-Duke, synthetic (folder layout)
``msmt17``      MSMT17 V1 / V2 (list files; ``version: v1|v2``)
``veri776``     VeRi-776 (folder layout)
``vehicleid``   VehicleID (list files; ``test_size: 800|1600|2400``)
``csv``         the user's own data (one CSV; ``csv: <file inside root or absolute>``)
==============  =====================================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from clipreid.config.schema import DatasetConfig, coerce
from clipreid.dataset.readers.custom import read_csv_dataset
from clipreid.dataset.readers.market import read_market1501
from clipreid.dataset.readers.msmt17 import read_msmt17
from clipreid.dataset.readers.vehicleid import read_vehicleid
from clipreid.dataset.readers.veri import read_veri776

#: ``dataset.format`` -> the reader of that layout.
READERS: dict[str, Callable[[DatasetConfig], pd.DataFrame]] = {
    "market1501": lambda d: read_market1501(d.root, num_cameras=d.num_cameras, source=d.name),
    "msmt17": lambda d: read_msmt17(d.root, version=d.version),
    "veri776": lambda d: read_veri776(d.root, num_cameras=d.num_cameras, source=d.name),
    "vehicleid": lambda d: read_vehicleid(d.root, test_size=d.test_size),
    # an absolute dataset.csv wins over the root
    "csv": lambda d: read_csv_dataset(Path(d.root) / d.csv, num_cameras=d.num_cameras),
}
FORMATS = tuple(READERS)

__all__ = [
    "FORMATS",
    "READERS",
    "read_dataset",
    "read_market1501",
    "read_msmt17",
    "read_veri776",
    "read_vehicleid",
    "read_csv_dataset",
]


def read_dataset(dataset: DatasetConfig) -> pd.DataFrame:
    """Read the data set that the ``dataset`` config group describes into a manifest."""
    dataset = coerce(DatasetConfig, dataset, "dataset")
    return READERS[dataset.format](dataset)
