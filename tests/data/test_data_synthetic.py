"""The synthetic data set: determinism, Market-1501 layout read back by the Market reader,
the query/gallery protocol, atomic rewrite, settings checks."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipreid.dataset.readers import read_market1501
from clipreid.dataset.synthetic import synthetic_summary, write_synthetic
from clipreid.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
SMALL = dict(num_train_ids=6, num_test_ids=5, num_distractors=4, num_junk=3)
NAME = re.compile(r"(?P<pid>\d{4}|-1)_c(?P<cam>[1-9])s1_\d{6}_\d{2}\.jpg")


def files(root: Path) -> dict:
    """``{path inside root: bytes}`` of every file under ``root``."""
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in paths}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    first = write_synthetic(tmp_path / "a", seed=1, **SMALL)
    second = write_synthetic(tmp_path / "b", seed=1, **SMALL)
    assert first == second
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert a == b and len(a) == first["files"] + 1  # + synthetic.json
    write_synthetic(tmp_path / "c", seed=2, **SMALL)
    c = files(tmp_path / "c")
    images_a = {k: v for k, v in a.items() if k.endswith(".jpg")}
    images_c = {k: v for k, v in c.items() if k.endswith(".jpg")}
    assert images_a != images_c
    assert set(images_a.values()).isdisjoint(images_c.values())


def test_layout_names_and_reader_round_trip(tmp_path):
    root = tmp_path / "synthetic"
    summary = write_synthetic(root, seed=0, height=96, width=48, **SMALL)
    assert sorted(p.name for p in root.iterdir()) == [
        "bounding_box_test", "bounding_box_train", "query", "synthetic.json",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]  # no temporary leftovers
    for path in root.rglob("*.jpg"):
        assert NAME.fullmatch(path.name), path.name
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (48, 96) and image.mode == "RGB"
    df = read_market1501(root, num_cameras=6)
    counts = {split: (df[df.split == split].pid.nunique(), int((df.split == split).sum()))
              for split in ("train", "query", "gallery")}
    assert counts == {
        "train": (summary["train_ids"], summary["train_images"]),
        "query": (summary["query_ids"], summary["query_images"]),
        "gallery": (summary["gallery_ids"] + 1, summary["gallery_images"]),  # + pid 0
    }
    gallery_files = list((root / "bounding_box_test").iterdir())
    assert len(gallery_files) == summary["gallery_images"] + summary["junk_images"]
    assert sum(p.name.startswith("-1_") for p in gallery_files) == SMALL["num_junk"]
    assert (df.pid == 0).sum() == summary["distractor_images"] == SMALL["num_distractors"]
    assert summary["files"] == len(list(root.rglob("*.jpg")))
    assert summary == synthetic_summary(seed=0, height=96, width=48, **SMALL)
    description = json.loads((root / "synthetic.json").read_text())
    assert description["counts"] == summary
    assert description["settings"]["num_train_ids"] == SMALL["num_train_ids"]


def test_protocol_constraints(tmp_path):
    settings = dict(num_train_ids=20, num_test_ids=20, num_distractors=10, num_junk=5)
    write_synthetic(tmp_path / "s", seed=3, **settings)
    df = read_market1501(tmp_path / "s", num_cameras=6)
    train, query, gallery = (df[df.split == s] for s in ("train", "query", "gallery"))
    # identities: train and test disjoint, distractors only in the gallery
    assert set(train.pid).isdisjoint(set(query.pid) | set(gallery.pid))
    assert set(query.pid) == set(gallery.pid) - {0}
    assert (train.pid != 0).all() and (query.pid != 0).all()
    # train: 8..12 images on 2..4 cameras per identity
    per_id = train.groupby("pid")
    assert per_id.size().between(8, 12).all()
    assert per_id.camid.nunique().between(2, 4).all()
    # query: 2..3 per identity, at most one per identity and camera
    assert not query.duplicated(["pid", "camid"]).any()
    assert query.groupby("pid").size().between(2, 3).all()
    # each query has gallery images of its identity on other cameras
    for _, row in query.iterrows():
        same = gallery[gallery.pid == row.pid]
        assert (same.camid != row.camid).any()
    assert gallery[gallery.pid > 0].groupby("pid").size().between(6, 10).all()


def test_rewrite_replaces_the_folder(tmp_path):
    root = tmp_path / "s"
    write_synthetic(root, seed=1, **SMALL)
    (root / "query" / "stale.jpg").write_bytes(b"old")
    write_synthetic(root, seed=2, **SMALL)
    write_synthetic(tmp_path / "fresh", seed=2, **SMALL)
    assert files(root) == files(tmp_path / "fresh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "s"]


@pytest.mark.parametrize("settings, message", [
    (dict(num_cameras=12), "num_cameras=12 is not allowed: expected a value <= 9"),
    (dict(train_cameras_per_id=[1, 3]), r"train_cameras_per_id=\[1, 3\] must lie within 2"),
    (dict(query_cameras_per_id=[2, 4]), r"query_cameras_per_id=\[2, 4\] must lie within 1..test_cam"),
    (dict(gallery_images_per_id=[5, 3]), r"gallery_images_per_id=\[5, 3\]"),
    (dict(num_train_ids=9000, num_test_ids=1000), "<= 9999"),
])
def test_bad_settings_name_the_setting(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        write_synthetic(tmp_path / "s", **settings)
    assert not (tmp_path / "s").exists()


def test_default_settings_counts():
    """The counts of the default set (conf/dataset/synthetic.yaml, seed 0), as reported in
    the README; the writer reports the same counts as the plan (checked on small sets
    above and below)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONF / "dataset" / "synthetic.yaml")
    summary = synthetic_summary(**cfg.synthetic)
    assert summary == {
        "train_ids": 120, "train_images": 1178,
        "query_ids": 120, "query_images": 296,
        "gallery_ids": 120, "gallery_images": 1070,
        "distractor_images": 100, "junk_images": 30,
        "num_cameras": 6, "files": 2574,
    }


@pytest.fixture(scope="module")
def medium_set(tmp_path_factory):
    """The manifest of a 40-identity test set with the default appearance settings."""
    root = tmp_path_factory.mktemp("medium") / "synthetic"
    write_synthetic(root, seed=0, num_train_ids=1, num_test_ids=40, num_distractors=40, num_junk=0)
    return read_market1501(root)


def _rank1(query_feats, gallery_feats, query, gallery) -> float:
    """Rank-1 under the Market protocol (same identity and camera removed)."""
    sims = query_feats @ gallery_feats.T
    hits = []
    for i, (pid, cam) in enumerate(zip(query.pid, query.camid)):
        keep = ~((gallery.pid.to_numpy() == pid) & (gallery.camid.to_numpy() == cam))
        best = np.argmax(np.where(keep, sims[i], -np.inf))
        hits.append(gallery.pid.to_numpy()[best] == pid)
    return float(np.mean(hits))


def _features(paths, kind: str) -> np.ndarray:
    """Raw 16x8 pixels (``pixels``) or median torso and leg colours (``body``), centred
    and L2-normalised."""
    out = []
    for path in paths:
        with Image.open(path) as image:
            image = np.asarray(image.convert("RGB"), np.float32)
        if kind == "pixels":
            small = Image.fromarray(image.astype(np.uint8)).resize((8, 16))
            f = np.asarray(small, np.float32).ravel()
        else:
            f = np.concatenate([np.median(image[30:65, 26:38].reshape(-1, 3), 0),
                                np.median(image[80:110, 26:38].reshape(-1, 3), 0)])
        f = f - f.mean()
        out.append(f / np.linalg.norm(f))
    return np.stack(out)


def test_learnable_but_not_trivial(medium_set):
    """Matching raw pixels across cameras mostly fails (background, colour cast and
    illumination dominate), while the colours of the figure still carry the identity far
    above chance (about 2% here), without solving the task."""
    df = medium_set
    query, gallery = df[df.split == "query"], df[df.split == "gallery"]
    raw = _rank1(_features(query.path, "pixels"), _features(gallery.path, "pixels"), query, gallery)
    body = _rank1(_features(query.path, "body"), _features(gallery.path, "body"), query, gallery)
    assert raw < 0.25
    assert 0.2 < body < 0.7


def test_the_synthetic_set_never_replaces_what_the_project_did_not_write(tmp_path):
    """dataset.root pointed at a user's folder, or at a file, with the synthetic data set
    selected: refused, and both survive byte for byte. An empty folder, or a set written
    before, is fine."""
    from clipreid.errors import DatasetError

    users = tmp_path / "Market-1501"
    (users / "query").mkdir(parents=True)
    (users / "query" / "0001_c1s1_000151_01.jpg").write_bytes(b"a user's image")
    (users / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="holds files this project did not write"):
        write_synthetic(users, **SMALL)
    assert (users / "query" / "0001_c1s1_000151_01.jpg").read_bytes() == b"a user's image"
    assert sorted(p.name for p in users.iterdir()) == ["notes.txt", "query"]
    a_file = tmp_path / "data.bin"
    a_file.write_bytes(b"\x00\x01 keep")
    with pytest.raises(DatasetError, match="is a file, not a folder"):
        write_synthetic(a_file, **SMALL)
    assert a_file.read_bytes() == b"\x00\x01 keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    write_synthetic(empty, **SMALL)
    write_synthetic(empty, **SMALL)  # its own set, written before: replaced
    assert (empty / "synthetic.json").is_file()
