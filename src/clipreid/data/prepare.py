"""The prepare step: (re)generate the synthetic set when it is selected, then read the
data set into a manifest and check that its splits are filled."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from clipreid.data.manifest import expected_splits, require_splits
from clipreid.data.readers import read_dataset
from clipreid.data.synthetic import write_synthetic
from clipreid.errors import ConfigError


def prepare_manifest(dataset_cfg: Mapping) -> pd.DataFrame:
    """Return the manifest of the ``dataset`` config group.

    For ``name: synthetic`` the set is first written at ``root`` from the ``synthetic``
    block (deterministic: the same settings give the same files). The result must have
    train, query and gallery images (train and test for VehicleID-style sets)."""
    name = str(dataset_cfg.get("name", ""))
    if name == "synthetic":
        settings = dataset_cfg.get("synthetic")
        if settings is None:
            raise ConfigError(
                "dataset.synthetic is not set; conf/dataset/synthetic.yaml must hold the "
                "generator's arguments under `synthetic:`"
            )
        root = dataset_cfg.get("root")
        if not root:
            raise ConfigError("dataset.root is not set; conf/dataset/synthetic.yaml names it")
        write_synthetic(root, **{str(k): v for k, v in settings.items()})
    df = read_dataset(dataset_cfg)
    source = f"data set '{name or dataset_cfg.get('format')}' at {dataset_cfg.get('root')}"
    if dataset_cfg.get("format") == "vehicleid":
        splits = ["train", "test"]
    else:
        splits = expected_splits(df, source=source)
    require_splits(df, splits, source=source)
    return df
