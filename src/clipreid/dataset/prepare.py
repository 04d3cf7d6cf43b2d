"""The prepare step: (re)generate the synthetic set when it is selected, then read the
data set into a manifest (image paths relative to ``dataset.root``) and check that its
splits are filled."""

from __future__ import annotations

import pandas as pd

from clipreid.config.schema import DatasetConfig, coerce
from clipreid.dataset.manifest import expected_splits, relative_to_root, require_splits
from clipreid.dataset.readers import read_dataset
from clipreid.dataset.synthetic import write_synthetic


def prepare_manifest(dataset: DatasetConfig) -> pd.DataFrame:
    """Return the manifest of the ``dataset`` config group.

    For ``name: synthetic`` the set is first written at ``root`` from the ``synthetic``
    block (deterministic: the same settings give the same files). The result must have
    train, query and gallery images (train and test for VehicleID-style sets). Paths are
    stored relative to ``dataset.root``, so the same data set in another folder gives the
    same manifest."""
    dataset = coerce(DatasetConfig, dataset, "dataset")
    if dataset.name == "synthetic":
        write_synthetic(dataset.root, dataset.synthetic)
    df = relative_to_root(read_dataset(dataset), dataset.root)
    source = f"data set '{dataset.name}' at {dataset.root}"
    splits = ["train", "test"] if dataset.format == "vehicleid" else expected_splits(
        df, source=source)
    require_splits(df, splits, source=source)
    return df
