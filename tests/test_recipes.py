"""Every named recipe (conf/experiment/<name>.yaml) against a table written here from the
official configuration files (Syliz517/CLIP-ReID @ 4c0eb208, configs/**.yml over
config/defaults.py; docs/official-recipes.md cites each value's file and line), so that no
recipe drifts silently. Each recipe is composed as a user runs it and every value below is
compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipreid.config.compose import compose
from clipreid.config.schema import parse_params

ROOT = Path(__file__).resolve().parents[1]
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
HALF = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])

# Stage-1 values of the CLIP-ReID configs (SOLVER.STAGE1.*): MAX_EPOCHS, IMS_PER_BATCH,
# BASE_LR, WEIGHT_DECAY, WARMUP_EPOCHS, WARMUP_LR_INIT, LR_MIN.
STAGE1 = {
    "person/vit_clipreid": (120, 64, 3.5e-4, 1e-4, 5, 1e-5, 1e-6),
    "person/cnn_clipreid": (60, 64, 3.5e-4, 1e-4, 5, 1e-5, 1e-6),
    "veri/vit_prom": (60, 64, 3.5e-4, 1e-4, 5, 1e-5, 1e-6),
    "veri/cnn_prom": (60, 64, 3.5e-4, 1e-4, 5, 1e-5, 1e-6),
    "VehicleID/vit_clipreid": (60, 256, 3.5e-4, 1e-4, 5, 1e-5, 1e-6),
    "VehicleID/cnn_clipreid": (60, 256, 3.5e-4, 1e-4, 5, 1e-5, 1e-6),
}
# Stage-2 (baselines: SOLVER.*) and model values: backbone, INPUT.SIZE_TRAIN, PIXEL_MEAN/STD,
# STRIDE_SIZE, BASE_LR, MAX_EPOCHS, STEPS, GAMMA, WARMUP_ITERS (epochs), WARMUP_FACTOR,
# WEIGHT_DECAY, WEIGHT_DECAY_BIAS, BIAS_LR_FACTOR, ID_LOSS_WEIGHT, TRIPLET_LOSS_WEIGHT,
# I2T_LOSS_WEIGHT, IF_LABELSMOOTH, MARGIN, PROB, PADDING, RE_PROB; P x K = IMS_PER_BATCH /
# NUM_INSTANCE x NUM_INSTANCE = 16 x 4 everywhere.
VIT, RN50 = "vit_b16", "rn50"
P128, P256 = [256, 128], [256, 256]
STAGE2 = {
    "person/vit_clipreid": (VIT, P128, HALF, 16, 5e-6, 60, [30, 50], 0.1, 10, 0.1, 1e-4, 1e-4,
                            2.0, 0.25, 1.0, 1.0, True, 0.3, 0.5, 10, 0.5),
    "person/cnn_clipreid": (RN50, P128, IMAGENET, 16, 3.5e-4, 120, [40, 70], 0.1, 10, 0.01,
                            5e-4, 5e-4, 2.0, 1.0, 1.0, 1.0, True, 0.3, 0.5, 10, 0.5),
    "person/vit_base": (VIT, P128, HALF, 16, 5e-6, 60, [30, 50], 0.1, 10, 0.1, 1e-4, 1e-4,
                        2.0, 1.0, 1.0, 1.0, True, 0.3, 0.5, 10, 0.5),
    "person/cnn_base": (RN50, P128, IMAGENET, 16, 3.5e-4, 120, [40, 70], 0.1, 10, 0.01, 5e-4,
                        5e-4, 2.0, 1.0, 1.0, 1.0, True, 0.3, 0.5, 10, 0.5),
    "veri/vit_prom": (VIT, P256, HALF, 16, 5e-6, 60, [30, 50], 0.1, 10, 0.1, 1e-4, 1e-4, 2.0,
                      0.25, 1.0, 1.0, True, 0.3, 0.5, 10, 0.5),
    "veri/cnn_prom": (RN50, P256, IMAGENET, 16, 3.5e-4, 120, [40, 70], 0.1, 10, 0.01, 5e-4,
                      5e-4, 2.0, 1.0, 1.0, 1.0, True, 0.3, 0.5, 10, 0.5),
    "veri/vit_base": (VIT, P256, HALF, 16, 5e-6, 60, [30, 50], 0.1, 10, 0.1, 1e-4, 1e-4, 2.0,
                      1.0, 1.0, 1.0, True, 0.3, 0.5, 10, 0.5),
    "veri/cnn_base": (RN50, P256, IMAGENET, 16, 3.5e-4, 120, [40, 70], 0.1, 10, 0.01, 5e-4,
                      5e-4, 2.0, 1.0, 1.0, 1.0, True, 0.3, 0.5, 10, 0.5),
    "VehicleID/vit_clipreid": (VIT, P256, HALF, 16, 5e-5, 60, [30, 50], 0.1, 10, 0.1, 1e-4,
                               1e-4, 2.0, 0.25, 1.0, 1.0, True, 0.3, 0.5, 10, 0.5),
    "VehicleID/cnn_clipreid": (RN50, P256, IMAGENET, 16, 3.5e-4, 120, [40, 70], 0.1, 10, 0.01,
                               5e-4, 5e-4, 2.0, 1.0, 1.0, 1.0, False, 0.3, 0.5, 10, 0.5),
    "VehicleID/vit_base": (VIT, P256, HALF, 16, 5e-5, 60, [30, 50], 0.1, 10, 0.1, 1e-4, 1e-4,
                           2.0, 1.0, 1.0, 1.0, False, 0.3, 0.5, 10, 0.5),
    "VehicleID/cnn_base": (RN50, P256, IMAGENET, 16, 3.5e-4, 120, [40, 70], 0.1, 10, 0.01,
                           5e-4, 5e-4, 2.0, 1.0, 1.0, 1.0, False, 0.3, 0.5, 10, 0.5),
}
# The paper's numbers we hold (method.md, "Published results": ViT-B/16, no re-ranking).
PUBLISHED = {
    ("vit_clipreid", "msmt17"): (0.734, 0.887), ("vit_clipreid", "market1501"): (0.896, 0.955),
    ("vit_clipreid", "dukemtmc"): (0.825, 0.900),
    ("vit_clipreid", "occluded_duke"): (0.595, 0.671),
    ("vit_clipreid", "veri776"): (0.833, 0.974),
    ("vit_clipreid_sie_olp", "msmt17"): (0.758, 0.897),
    ("vit_clipreid_sie_olp", "market1501"): (0.905, 0.954),
    ("vit_clipreid_sie_olp", "dukemtmc"): (0.831, 0.908),
    ("vit_clipreid_sie_olp", "occluded_duke"): (0.603, 0.672),
}
PERSON = ("market1501", "dukemtmc", "occluded_duke", "msmt17")
VEHICLE = {"veri776": "veri", "vehicleid": "VehicleID"}
ROWS = {  # our row name -> (official config name within its folder, method)
    "vit_clipreid": ("vit_clipreid", "clipreid"),
    "vit_clipreid_sie_olp": ("vit_clipreid", "clipreid"),
    "rn50_clipreid": ("cnn_clipreid", "clipreid"),
    "vit_baseline": ("vit_base", "baseline"),
    "rn50_baseline": ("cnn_base", "baseline"),
}


def official_file(row: str, dataset: str) -> str:
    name, _ = ROWS[row]
    if dataset in VEHICLE:
        folder = VEHICLE[dataset]
        if folder == "veri" and name == "vit_clipreid":
            name = "vit_prom"
        if folder == "veri" and name == "cnn_clipreid":
            name = "cnn_prom"
        return f"{folder}/{name}"
    return f"person/{name}"


RECIPES = {f"{row}_{ds}": (row, ds) for ds in PERSON for row in ROWS}
RECIPES.update({f"{row}_{ds}": (row, ds) for ds in VEHICLE for row in ROWS
                if row != "vit_clipreid_sie_olp"})


def test_every_recipe_file_is_in_the_table():
    files = {p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")}
    assert files == set(RECIPES)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    weights = root / "weights.pt"
    weights.write_bytes(b"stand-in for OpenAI's file")
    return root, weights


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_values_equal_the_official_configs(name, stand_ins):
    root, weights = stand_ins
    row, dataset = RECIPES[name]
    official = official_file(row, dataset)
    params = compose(ROOT / "conf", [f"experiment={name}", f"dataset.root={root}",
                                     f"model.weights={weights}"])
    parse_params(params)  # the whole composition passes the schema
    model, s1, s2 = params["model"], params["prompt"], params["finetune"]

    (backbone, size, (mean, std), stride, lr, epochs, steps, gamma, warmup, warmup_factor,
     wd, wd_bias, bias_factor, w_id, w_tri, w_i2t, smooth, margin, flip, pad,
     erase) = STAGE2[official]
    assert params["dataset"]["name"] == dataset
    assert params["method"] == ROWS[row][1]
    assert model["name"] == backbone
    assert model["input_size"] == size
    assert model["preprocess"] == {"mean": mean, "std": std, "train_interpolation": "bicubic",
                                   "test_interpolation": "bilinear"}
    sie_olp = row == "vit_clipreid_sie_olp"  # README.md:61: SIE_CAMERA, SIE_COE 1.0, stride 12
    assert model["stride"] == (12 if sie_olp else stride)
    assert model["sie"]["enabled"] == sie_olp
    assert model["sie"]["coefficient"] == 1.0
    assert (s2["lr"], s2["epochs"], s2["milestones"], s2["gamma"]) == (lr, epochs, steps, gamma)
    assert (s2["warmup_epochs"], s2["warmup_factor"]) == (warmup, warmup_factor)
    assert (s2["weight_decay"], s2["weight_decay_bias"], s2["bias_lr_factor"]) == (
        wd, wd_bias, bias_factor)
    assert (s2["id_loss_weight"], s2["triplet_loss_weight"], s2["i2t_loss_weight"]) == (
        w_id, w_tri, w_i2t)
    assert s2["label_smoothing"] == (0.1 if smooth else 0.0)
    assert s2["triplet_margin"] == margin
    assert s2["augmentation"] == {"flip_p": flip, "padding": pad, "erasing_p": erase}
    assert (s2["num_identities"], s2["num_instances"]) == (16, 4)
    if ROWS[row][1] == "clipreid":
        (epochs1, batch1, lr1, wd1, warmup1, warmup_lr1, min_lr1) = STAGE1[official]
        assert (s1["epochs"], s1["batch_size"], s1["lr"], s1["weight_decay"]) == (
            epochs1, batch1, lr1, wd1)
        assert (s1["warmup_epochs"], s1["warmup_lr"], s1["min_lr"]) == (
            warmup1, warmup_lr1, min_lr1)

    if dataset == "vehicleid" and ROWS[row][1] == "clipreid":
        assert s1["feature_batch_size"] == 256   # the official loader batch of the cache
    expected = params["evaluation"]["expected"]
    assert expected["recipe"] == name
    requires = {"method": ROWS[row][1], "dataset.name": dataset, "model.name": backbone}
    if sie_olp:
        requires.update({"model.stride": 12, "model.sie.enabled": True})
    assert expected["requires"] == requires
    assert (expected["mAP"], expected["rank1"]) == PUBLISHED.get((row, dataset), (None, None))


def test_model_rn50_alone_selects_the_rn50_recipe(stand_ins):
    """model=rn50 (no named recipe) trains with RN50's own recipe, not the ViT one."""
    root, weights = stand_ins
    params = compose(ROOT / "conf", ["model=rn50", "dataset=market1501",
                                     f"dataset.root={root}", f"model.weights={weights}"])
    assert (params["prompt"]["epochs"], params["finetune"]["lr"], params["finetune"]["epochs"],
            params["finetune"]["id_loss_weight"]) == (60, 3.5e-4, 120, 1.0)
    assert params["model"]["preprocess"]["mean"] == IMAGENET[0]


def test_a_recipe_is_a_group_choice_not_an_addition(stand_ins):
    from clipreid.errors import ConfigError

    with pytest.raises(ConfigError, match=r"experiment is a group of the defaults list; write "
                                          r"experiment=<option> \(without the \+\)"):
        compose(ROOT / "conf", ["+experiment=vit_clipreid_market1501"])
