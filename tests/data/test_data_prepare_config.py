"""conf/dataset/*.yaml under Hydra, the read_dataset dispatcher and prepare_manifest."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from clipreid.dataset.prepare import prepare_manifest
from clipreid.dataset.readers import FORMATS, read_dataset
from clipreid.errors import ConfigError, DatasetError

CONF = Path(__file__).resolve().parents[2] / "conf"
NAMES = ["synthetic", "market1501", "dukemtmc", "occluded_duke", "msmt17", "veri776",
         "vehicleid", "custom"]
CAMERAS = {"synthetic": 6, "market1501": 6, "dukemtmc": 8, "occluded_duke": 8, "msmt17": 15,
           "veri776": 20, "vehicleid": 1}


def dataset_config(name: str, *overrides: str):
    """The ``dataset`` group ``name`` composed by Hydra, interpolations resolved."""
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(overrides=[f"+dataset={name}", *overrides])
    return OmegaConf.create(OmegaConf.to_container(cfg.dataset, resolve=True))


def test_all_dataset_groups_exist():
    assert sorted(p.stem for p in (CONF / "dataset").glob("*.yaml")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_dataset_group_schema(name):
    cfg = dataset_config(name, "dataset.root=/data/elsewhere")
    assert cfg.name == name
    assert cfg.format in FORMATS
    assert cfg.object in ("person", "vehicle")
    assert cfg.root == "/data/elsewhere"
    assert int(cfg.num_cameras) == CAMERAS.get(name, cfg.num_cameras)
    if name == "synthetic":
        assert cfg.source == "src/clipreid/dataset/synthetic.py"
        assert (CONF.parent / cfg.source).is_file()
        assert cfg.synthetic.num_cameras == cfg.num_cameras
    else:
        assert cfg.source == cfg.root  # follows a root override
    if name == "msmt17":
        assert cfg.version in ("v1", "v2")
    if name == "vehicleid":
        assert cfg.test_size in (800, 1600, 2400)
    if cfg.format == "csv":
        assert cfg.csv


def test_read_dataset_rejects_bad_config(tmp_path):
    with pytest.raises(ConfigError, match="dataset.format='lmdb' is not allowed: expected one "
                                          "of 'market1501', 'msmt17'"):
        read_dataset({"name": "x", "format": "lmdb", "root": str(tmp_path)})
    with pytest.raises(DatasetError, match="nowhere not found"):
        read_dataset({"name": "market1501", "format": "market1501",
                      "root": str(tmp_path / "nowhere")})


def test_prepare_synthetic_generates_then_reads(tmp_path):
    root = tmp_path / "prepared" / "synthetic"
    cfg = dataset_config("synthetic", f"dataset.root={root}",
                         "dataset.synthetic.num_train_ids=5", "dataset.synthetic.num_test_ids=4",
                         "dataset.synthetic.num_distractors=2", "dataset.synthetic.num_junk=1")
    df = prepare_manifest(cfg)
    assert (root / "synthetic.json").is_file()
    assert df[df.split == "train"].pid.nunique() == 5
    assert df[df.split == "query"].pid.nunique() == 4
    assert set(df.split) == {"train", "query", "gallery"}
    again = prepare_manifest(cfg)
    assert again.equals(df)


def test_prepare_real_set_only_reads(tmp_path):
    root = tmp_path / "Market"
    for folder, name in [("bounding_box_train", "0002_c1s1_000451_03.jpg"),
                         ("query", "0005_c1s1_001051_00.jpg"),
                         ("bounding_box_test", "0005_c2s1_001101_02.jpg")]:
        (root / folder).mkdir(parents=True)
        (root / folder / name).write_bytes(b"")
    df = prepare_manifest(dataset_config("market1501", f"dataset.root={root}"))
    assert sorted(df.split) == ["gallery", "query", "train"]
    folders = sorted(p.name for p in root.iterdir())
    assert folders == ["bounding_box_test", "bounding_box_train", "query"]  # nothing written
    with pytest.raises(DatasetError, match="not found"):
        prepare_manifest(dataset_config("market1501", f"dataset.root={tmp_path / 'missing'}"))


def test_prepare_rejects_unknown_synthetic_setting(tmp_path):
    cfg = {"name": "synthetic", "format": "market1501", "root": str(tmp_path / "s"),
           "num_cameras": 6, "synthetic": {"seed": 0, "num_idz": 3}}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['dataset.synthetic.num_idz'\]"):
        prepare_manifest(cfg)


def test_the_same_data_set_in_another_folder_gives_the_same_manifest(tmp_path):
    """Paths are stored relative to dataset.root: moving the data changes no byte."""
    from clipreid.dataset.manifest import image_paths, save_manifest

    names = [("bounding_box_train", "0002_c1s1_000451_03.jpg"),
             ("query", "0005_c1s1_001051_00.jpg"),
             ("bounding_box_test", "0005_c2s1_001101_02.jpg")]
    written = []
    for place in ("first", "elsewhere/second"):
        root = tmp_path / place / "Market"
        for folder, name in names:
            (root / folder).mkdir(parents=True)
            (root / folder / name).write_bytes(b"")
        df = prepare_manifest(dataset_config("market1501", f"dataset.root={root}"))
        assert sorted(df.path) == sorted(f"{folder}/{name}" for folder, name in names)
        assert all((root / p).is_file() for p in df.path)
        assert all(p.startswith(str(root)) for p in image_paths(df, root))
        save_manifest(df, tmp_path / f"{len(written)}.csv")
        written.append((tmp_path / f"{len(written)}.csv").read_bytes())
    assert written[0] == written[1]


def test_prepare_drops_only_a_synthetic_set_it_generated(tmp_path):
    """Outputs persist between runs; after a switch to a real data set, `prepare` removes
    the synthetic set an earlier run wrote into its output folder, and nothing else."""
    from clipreid.dataset.synthetic import MARKER
    from clipreid.stages.prepare import drop_stale_synthetic_set

    generated = tmp_path / "prepared" / "synthetic"
    generated.mkdir(parents=True)
    (generated / MARKER).write_text("{}")
    drop_stale_synthetic_set(generated, tmp_path / "Market")
    assert not generated.exists()
    users = tmp_path / "prepared" / "mine"
    users.mkdir()
    (users / "photo.jpg").write_bytes(b"keep")
    drop_stale_synthetic_set(users, tmp_path / "Market")
    assert (users / "photo.jpg").read_bytes() == b"keep"
    generated.mkdir()
    (generated / MARKER).write_text("{}")
    drop_stale_synthetic_set(generated, generated)  # the data set in use stays
    assert (generated / MARKER).is_file()
