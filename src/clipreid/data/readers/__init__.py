"""Data-set readers, one module per on-disk format, and the dispatcher ``read_dataset``.

Every reader returns the manifest of :mod:`clipreid.data.manifest`. ``read_dataset`` picks
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
from typing import Mapping

import pandas as pd

from clipreid.data.readers.custom import read_csv_dataset
from clipreid.data.readers.market import read_market1501
from clipreid.data.readers.msmt17 import read_msmt17
from clipreid.data.readers.vehicleid import (
    draw_trial,
    draw_trials,
    read_vehicleid,
    seeded_trials,
)
from clipreid.data.readers.veri import read_veri776
from clipreid.errors import ConfigError

FORMATS = ("market1501", "msmt17", "veri776", "vehicleid", "csv")

__all__ = [
    "FORMATS",
    "read_dataset",
    "read_market1501",
    "read_msmt17",
    "read_veri776",
    "read_vehicleid",
    "read_csv_dataset",
    "draw_trial",
    "draw_trials",
    "seeded_trials",
]


def _get(cfg: Mapping, key: str):
    """``cfg[key]``, failing with the config file to fix when it is missing or empty."""
    value = cfg.get(key)
    if value is None or value == "":
        name = cfg.get("name", "<name>")
        raise ConfigError(
            f"dataset.{key} is not set; add it to conf/dataset/{name}.yaml or override it "
            f"(-S dataset.{key}=...)"
        )
    return value


def read_dataset(dataset_cfg: Mapping) -> pd.DataFrame:
    """Read the data set that the ``dataset`` config group describes into a manifest."""
    fmt = _get(dataset_cfg, "format")
    root = str(_get(dataset_cfg, "root"))
    name = str(dataset_cfg.get("name", fmt))
    if fmt == "market1501":
        num_cameras = int(_get(dataset_cfg, "num_cameras"))
        return read_market1501(root, num_cameras=num_cameras, source=name)
    if fmt == "msmt17":
        return read_msmt17(root, version=str(dataset_cfg.get("version", "v1")))
    if fmt == "veri776":
        num_cameras = int(dataset_cfg.get("num_cameras", 20))
        return read_veri776(root, num_cameras=num_cameras, source=name)
    if fmt == "vehicleid":
        return read_vehicleid(root, test_size=int(dataset_cfg.get("test_size", 800)))
    if fmt == "csv":
        csv_path = Path(root) / str(_get(dataset_cfg, "csv"))  # an absolute csv wins
        num_cameras = int(_get(dataset_cfg, "num_cameras"))
        return read_csv_dataset(csv_path, num_cameras=num_cameras)
    raise ConfigError(f"dataset.format={fmt!r} unknown; use one of {list(FORMATS)}")
