"""List-file readers: MSMT17 (V1, V2) and VehicleID, on trees whose list files have the
published sizes (the readers read only the lists, so image folders stay empty)."""

import numpy as np
import pytest

from clipreid.config.schema import DatasetConfig, TrialsConfig, from_dict
from clipreid.dataset.readers import read_dataset, read_msmt17, read_vehicleid
from clipreid.evaluation.protocols import draw_trial, draw_trials, test_partitions
from clipreid.errors import ConfigError, DatasetError


def split_counts(df, split):
    rows = df[df["split"] == split]
    return rows["pid"].nunique(), len(rows)


@pytest.mark.parametrize("version, train_dir, test_dir", [
    ("v1", "train", "test"), ("v2", "mask_train_v2", "mask_test_v2"),
])
def test_msmt17_published_counts(tmp_path, trees, version, train_dir, test_dir):
    stats = trees.PUBLISHED["msmt17"]
    root = trees.build_msmt17(tmp_path / f"MSMT17_{version.upper()}", stats, version)
    df = read_dataset({"name": "msmt17", "format": "msmt17", "root": str(root), "version": version})
    for split in ("train", "query", "gallery"):
        assert split_counts(df, split) == stats[split], split
    assert len(df) == 126_441
    assert sorted(df["camid"].unique()) == list(range(15))
    # train + val merged, labels contiguous; query/gallery pids from the lists
    train = df[df["split"] == "train"]
    assert sorted(train["label"].unique()) == list(range(1_041))
    assert train["path"].str.startswith(str(root / train_dir) + "/").all()
    test = df[df["split"] != "train"]
    assert test["path"].str.startswith(str(root / test_dir) + "/").all()
    assert set(test["pid"]) == set(range(3_060))


def small_msmt(root, trees, **lines):
    """A small MSMT17 V1 tree; ``lines`` overrides the text of a list file."""
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    text = {
        "list_train.txt": trees.msmt_line(0, 1, 0, 15) + trees.msmt_line(0, 3, 1, 16),
        "list_val.txt": trees.msmt_line(1, 2, 0, 17),
        "list_query.txt": trees.msmt_line(0, 4, 0, 18),
        "list_gallery.txt": trees.msmt_line(0, 5, 1, 19) + trees.msmt_line(1, 6, 0, 20),
    }
    text.update({f"{k}.txt": v for k, v in lines.items()})
    for name, body in text.items():
        (root / name).write_text(body)
    return root


def test_msmt17_small_rows(tmp_path, trees):
    root = small_msmt(tmp_path / "MSMT17_V1", trees)
    df = read_msmt17(root)
    got = sorted(zip(df["path"], df["pid"], df["camid"], df["split"], df["label"]))
    assert got == sorted([
        (str(root / "train/0000/0000_000_01_0303morning_0015_0.jpg"), 0, 0, "train", 0),
        (str(root / "train/0000/0000_001_03_0303morning_0016_0.jpg"), 0, 2, "train", 0),
        (str(root / "train/0001/0001_000_02_0303morning_0017_0.jpg"), 1, 1, "train", 1),
        (str(root / "test/0000/0000_000_04_0303morning_0018_0.jpg"), 0, 3, "query", -1),
        (str(root / "test/0000/0000_001_05_0303morning_0019_0.jpg"), 0, 4, "gallery", -1),
        (str(root / "test/0001/0001_000_06_0303morning_0020_0.jpg"), 1, 5, "gallery", -1),
    ])


@pytest.mark.parametrize("line", [
    "0000/0000_000_01_0303morning_0015_0.jpg\n",
    "0000/0000_000_01_0303morning_0015_0.jpg zero\n",
    "0000/0000_000_01_0303morning_0015_0.jpg 0 extra\n",
])
def test_msmt17_bad_list_line_names_file_and_line(tmp_path, trees, line):
    good = trees.msmt_line(0, 4, 0, 18)
    root = small_msmt(tmp_path / "MSMT17_V1", trees, list_query=good + "\n" + line)
    message = r"list_query\.txt, line 3: expected '<image path> <integer label>'"
    with pytest.raises(DatasetError, match=message):
        read_msmt17(root)


def test_msmt17_unparseable_camera_names_the_line(tmp_path, trees):
    root = small_msmt(tmp_path / "MSMT17_V1", trees, list_gallery="0000/0000_cam.jpg 0\n")
    message = r"list_gallery\.txt, line 1: file name '0000/0000_cam\.jpg' does not parse"
    with pytest.raises(DatasetError, match=message):
        read_msmt17(root)


def test_msmt17_camera_out_of_range(tmp_path, trees):
    root = small_msmt(tmp_path / "MSMT17_V1", trees, list_val=trees.msmt_line(1, 16, 0, 1))
    with pytest.raises(DatasetError, match=r"list_val\.txt, line 1: camera 16 outside 1\.\.15"):
        read_msmt17(root)


def test_msmt17_missing_pieces(tmp_path, trees):
    root = small_msmt(tmp_path / "MSMT17_V1", trees)
    with pytest.raises(DatasetError, match="MSMT17_V1/mask_train_v2 not found"):
        read_msmt17(root, version="v2")
    with pytest.raises(DatasetError, match=r"set dataset.root to .*MSMT17_V1"):
        read_msmt17(tmp_path)
    (root / "list_gallery.txt").unlink()
    with pytest.raises(DatasetError, match=r"list_gallery\.txt not found"):
        read_msmt17(root)
    with pytest.raises(ConfigError, match="v3"):
        read_msmt17(root, version="v3")


def test_msmt17_empty_list_is_an_empty_split(tmp_path, trees):
    root = small_msmt(tmp_path / "MSMT17_V1", trees, list_query="\n")
    with pytest.raises(DatasetError, match="'query' split is empty"):
        read_msmt17(root)


def test_vehicleid_published_counts(tmp_path, trees):
    stats = trees.PUBLISHED["vehicleid"]
    root = trees.build_vehicleid(tmp_path / "VehicleID_V1.0", stats)
    for size in (800, 1600, 2400):
        cfg = {"name": "vehicleid", "format": "vehicleid", "root": str(root), "test_size": size}
        df = read_dataset(cfg)
        assert split_counts(df, "train") == stats["train"]
        assert split_counts(df, "test") == stats["test"][size]
        assert set(df["split"]) == {"train", "test"}
        assert (df["camid"] == 0).all()
        assert df["path"].str.startswith(str(root / "image") + "/").all()
        assert df["path"].str.endswith(".jpg").all()
        # one trial: one gallery image per vehicle, the rest are queries
        test = df[df["split"] == "test"].reset_index(drop=True)
        query, gallery = draw_trial(test, seed=0)
        assert len(gallery) == stats["test"][size][0]
        assert len(query) == stats["test"][size][1] - stats["test"][size][0]


def test_vehicleid_small_rows_and_errors(tmp_path):
    root = tmp_path / "VehicleID_V1.0"
    (root / "image").mkdir(parents=True)
    lists = root / "train_test_split"
    lists.mkdir()
    (lists / "train_list.txt").write_text("0000001 1\n0000002 1\n0000003 2\n")
    (lists / "test_list_800.txt").write_text("0000004 7\n0000005 7\n")
    df = read_vehicleid(root, test_size=800)
    got = sorted(zip(df["path"], df["pid"], df["camid"], df["split"], df["label"]))
    assert got == sorted([
        (str(root / "image/0000001.jpg"), 1, 0, "train", 0),
        (str(root / "image/0000002.jpg"), 1, 0, "train", 0),
        (str(root / "image/0000003.jpg"), 2, 0, "train", 1),
        (str(root / "image/0000004.jpg"), 7, 0, "test", -1),
        (str(root / "image/0000005.jpg"), 7, 0, "test", -1),
    ])
    with pytest.raises(DatasetError, match=r"test_list_1600\.txt not found.*test_list_800\.txt"):
        read_vehicleid(root, test_size=1600)
    (lists / "train_list.txt").write_text("0000001 1\n0000002\n")
    with pytest.raises(DatasetError, match=r"train_list\.txt, line 2: expected"):
        read_vehicleid(root)
    (root / "image").rmdir()
    with pytest.raises(DatasetError, match=r"VehicleID_V1\.0/image not found"):
        read_vehicleid(root)


def make_test_df(pids):
    import pandas as pd

    return pd.DataFrame({"pid": pids, "split": "test"})


def test_draw_trial_partitions_per_identity():
    rng = np.random.default_rng(5)
    pids = rng.integers(0, 40, 300)
    test = make_test_df(pids)
    query, gallery = draw_trial(test, seed=3)
    assert np.all(np.diff(query) > 0) and np.all(np.diff(gallery) > 0)
    assert set(query).isdisjoint(gallery)
    assert len(query) + len(gallery) == len(test)
    # exactly one gallery image per identity
    assert sorted(pids[gallery]) == sorted(set(pids))
    # same seed, same trial; another seed, another trial
    again = draw_trial(test, seed=3)
    assert np.array_equal(again[0], query) and np.array_equal(again[1], gallery)
    assert not np.array_equal(draw_trial(test, seed=4)[1], gallery)


def test_draw_trials_are_seeded_and_distinct():
    test = make_test_df(np.repeat(np.arange(50), 6))
    trials = draw_trials(test, num_trials=10, seed=7)
    assert len(trials) == 10
    assert np.array_equal(trials[2][1], draw_trial(test, 9)[1])
    galleries = {tuple(g) for _, g in trials}
    assert len(galleries) == 10
    # from the evaluation.trials config group
    _, from_config = test_partitions(test.assign(split="test"), TrialsConfig(count=10, seed=7),
                                     "test")
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(from_config, trials))
    # an identity with a single image always lands in the gallery
    single = make_test_df([1, 1, 1, 2])
    for query, gallery in draw_trials(single, num_trials=5, seed=0):
        assert 3 in gallery and 3 not in query
