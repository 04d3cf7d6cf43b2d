"""Market-1501-layout readers (Market-1501, DukeMTMC-reID, Occluded-Duke) and VeRi-776:
published counts on full-size trees of empty files, manifest contract, errors."""

import os
from pathlib import Path

import pytest

from clipreid.dataset.manifest import COLUMNS
from clipreid.dataset.readers import read_dataset, read_market1501, read_veri776
from clipreid.dataset.readers.market import MARKET_FOLDERS
from clipreid.dataset.readers.veri import VERI_FOLDERS
from clipreid.errors import DatasetError


def split_counts(df, split):
    """(identities, images) of one split."""
    rows = df[df["split"] == split]
    return rows["pid"].nunique(), len(rows)


def check_published(df, stats):
    """The manifest reproduces ``stats`` and honours the manifest contract."""
    assert list(df.columns) == COLUMNS
    for split in ("train", "query", "gallery"):
        assert split_counts(df, split) == stats[split], split
    assert sorted(df["camid"].unique()) == list(range(stats["cameras"]))
    assert (df["pid"] != -1).all()
    train = df[df["split"] == "train"]
    assert sorted(train["label"].unique()) == list(range(stats["train"][0]))
    assert (df.loc[df["split"] != "train", "label"] == -1).all()
    # a label follows the order of pids
    first = train.sort_values("pid").drop_duplicates("pid")
    assert list(first["label"]) == list(range(len(first)))


def test_market1501_published_counts(big_tmp, trees):
    stats = trees.PUBLISHED["market1501"]
    root = trees.build_market(big_tmp / "Market-1501-v15.09.15", stats)
    # the tree holds all 19,732 gallery files, junk included
    assert len(list((root / "bounding_box_test").iterdir())) == 19_732
    df = read_market1501(root, num_cameras=6)
    check_published(df, stats)
    gallery = df[df["split"] == "gallery"]
    assert (gallery["pid"] == 0).sum() == stats["distractors"]
    assert (df.loc[df["split"] != "gallery", "pid"] != 0).all()
    # query: at most one image per identity and camera
    query = df[df["split"] == "query"]
    assert not query.duplicated(["pid", "camid"]).any()
    # paths are the root joined with the file's path inside it; junk and Thumbs.db left out
    for split, folder in MARKET_FOLDERS.items():
        names = [n for n in os.listdir(root / folder)
                 if n.endswith(".jpg") and not n.startswith("-1_")]
        assert set(df.loc[df["split"] == split, "path"]) == {str(root / folder / n) for n in names}

@pytest.mark.parametrize("name", ["dukemtmc", "occluded_duke"])
def test_duke_layouts_published_counts(big_tmp, trees, name):
    stats = trees.PUBLISHED[name]
    root = trees.build_folders(big_tmp / name, stats, MARKET_FOLDERS, trees.duke_name)
    df = read_dataset({"name": name, "format": "market1501", "root": str(root), "num_cameras": 8})
    check_published(df, stats)
    # gallery-only identities (distractor identities) are kept, with their own pids
    pids = {split: set(df.loc[df["split"] == split, "pid"]) for split in ("query", "gallery")}
    gallery_only = pids["gallery"] - pids["query"]
    assert len(gallery_only) == stats["gallery"][0] - stats["query"][0]


def test_veri776_published_counts(big_tmp, trees):
    stats = trees.PUBLISHED["veri776"]
    root = trees.build_folders(big_tmp / "VeRi", stats, VERI_FOLDERS, trees.veri_name)
    cfg = {"name": "veri776", "format": "veri776", "root": str(root), "num_cameras": 20}
    df = read_dataset(cfg)
    check_published(df, stats)
    assert df["path"].str.contains("/image_test/").sum() == stats["gallery"][1]


def small_market(root: Path, trees) -> Path:
    """A small valid Market tree with tiny real JPEGs."""
    jpeg = trees.tiny_jpeg()
    files = {
        "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg"],
        "query": ["0005_c1s1_001051_00.jpg"],
        "bounding_box_test": [
            "0005_c2s1_001101_02.jpg", "0000_c1s1_000151_01.jpg", "-1_c3s1_000126_02.jpg",
        ],
    }
    for folder, names in files.items():
        (root / folder).mkdir(parents=True)
        for name in names:
            (root / folder / name).write_bytes(jpeg)
    return root


def test_market_small_tree_rows(tmp_path, trees):
    root = small_market(tmp_path / "m", trees)
    df = read_market1501(root)
    rows = sorted(zip(df["path"], df["pid"], df["camid"], df["split"], df["label"]))
    assert rows == sorted([
        (str(root / "bounding_box_train" / "0002_c1s1_000451_03.jpg"), 2, 0, "train", 0),
        (str(root / "bounding_box_train" / "0002_c2s1_000551_01.jpg"), 2, 1, "train", 0),
        (str(root / "query" / "0005_c1s1_001051_00.jpg"), 5, 0, "query", -1),
        (str(root / "bounding_box_test" / "0005_c2s1_001101_02.jpg"), 5, 1, "gallery", -1),
        (str(root / "bounding_box_test" / "0000_c1s1_000151_01.jpg"), 0, 0, "gallery", -1),
    ])


def test_relative_root_gives_relative_paths(tmp_path, trees, monkeypatch):
    small_market(tmp_path / "data" / "m", trees)
    monkeypatch.chdir(tmp_path)
    df = read_market1501("data/m")
    assert all(p.startswith("data/m/") for p in df["path"])


def test_missing_root_names_it(tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        read_market1501(tmp_path / "nowhere")


def test_missing_split_folder_names_it(tmp_path, trees):
    root = small_market(tmp_path / "m", trees)
    for f in (root / "query").iterdir():
        f.unlink()
    (root / "query").rmdir()
    with pytest.raises(DatasetError, match=r"query.*not found"):
        read_market1501(root)


def test_unparseable_file_name_names_the_file(tmp_path, trees):
    root = small_market(tmp_path / "m", trees)
    (root / "bounding_box_train" / "holiday_photo.jpg").write_bytes(trees.tiny_jpeg())
    message = r"bounding_box_train/holiday_photo\.jpg.*does not parse"
    with pytest.raises(DatasetError, match=message):
        read_market1501(root)


def test_camera_out_of_range_names_the_file(tmp_path, trees):
    root = small_market(tmp_path / "m", trees)
    (root / "query" / "0007_c7s1_000100_01.jpg").write_bytes(trees.tiny_jpeg())
    with pytest.raises(DatasetError, match=r"0007_c7s1_000100_01\.jpg: camera 7 outside 1\.\.6"):
        read_market1501(root, num_cameras=6)


@pytest.mark.parametrize("leave", [[], ["-1_c1s1_000001_01.jpg"]], ids=["empty", "junk-only"])
def test_empty_split_names_the_folder(tmp_path, trees, leave):
    root = small_market(tmp_path / "m", trees)
    for f in (root / "query").iterdir():
        f.unlink()
    trees.touch(root / "query", leave)
    with pytest.raises(DatasetError, match=r"query.*'query' split is empty"):
        read_market1501(root)


def test_veri_name_must_parse(tmp_path, trees):
    root = tmp_path / "VeRi"
    for folder in VERI_FOLDERS.values():
        trees.touch(root / folder, [trees.veri_name(1, 1, 5)])
    trees.touch(root / "image_query", ["0001_c001.jpg"])
    with pytest.raises(DatasetError, match=r"image_query/0001_c001\.jpg.*does not parse"):
        read_veri776(root)
