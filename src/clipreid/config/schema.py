"""The params schema: one typed dataclass per config group, with every allowed value.

``params.yaml`` (the composition of ``conf/``) is read into :class:`Params` by
:func:`parse_params`, which checks the whole file at once: types, ranges, choices, unknown
and missing keys, and the rules that tie keys together. Every error names the key, the
value and what is allowed. Stages receive these objects, never raw dicts.

The dataclasses' defaults are the embedded default's values, for code and tests that
build a group in Python (:func:`from_dict` fills what a mapping leaves out); params.yaml
itself must name every key (:func:`parse_params` is strict), so DVC tracks every value a
stage uses. Parsing never changes a value: ``as_dict(parse_params(p)) == p`` for a valid
``p`` (tests/config/test_schema.py), which is why this module is no DVC dependency of the
stages that import it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from clipreid.errors import ConfigError

#: Model names whose architecture and released weights this project supports.
CLIP_NAMES = ("ViT-B/16", "RN50")
#: The file that draws a randomly initialised CLIP (``model.source`` of the tiny models).
RANDOM_INIT_SOURCE = "src/clipreid/model/backbone.py"
#: Seeds go to numpy and torch, which take 32 bits (numpy's legacy seeding) at most.
MAX_SEED = 2**32 - 1
#: Set while parsing without looking at the file system (parse_params(check_paths=False)).
_SKIP_PATHS: contextvars.ContextVar[bool] = contextvars.ContextVar("skip_paths", default=False)


def spec(default=dataclasses.MISSING, *, ge=None, gt=None, le=None, optional_key=False,
         factory=None):
    """A dataclass field with bounds (``ge``, ``gt``, ``le``) checked by the parser.

    ``optional_key``: params.yaml may leave the key out (keys of one data-set format)."""
    meta = {"ge": ge, "gt": gt, "le": le, "optional_key": optional_key}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# --- the groups -----------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticConfig:
    """Arguments of the synthetic data set's generator (ranges are inclusive [low, high])."""

    seed: int = spec(0, ge=0, le=MAX_SEED)
    num_train_ids: int = spec(120, ge=1)
    num_test_ids: int = spec(120, ge=1)
    num_cameras: int = spec(6, ge=2, le=9)
    train_images_per_id: list[int] = spec(factory=lambda: [8, 12])
    train_cameras_per_id: list[int] = spec(factory=lambda: [2, 4])
    test_cameras_per_id: list[int] = spec(factory=lambda: [3, 5])
    query_cameras_per_id: list[int] = spec(factory=lambda: [2, 3])
    gallery_images_per_id: list[int] = spec(factory=lambda: [6, 10])
    num_distractors: int = spec(100, ge=0)
    num_junk: int = spec(30, ge=0)
    height: int = spec(128, ge=32)
    width: int = spec(64, ge=16)
    jpeg_quality: int = spec(90, ge=1, le=100)

    def check(self, key: str) -> None:
        problems = []
        for name in ("train_images_per_id", "train_cameras_per_id", "test_cameras_per_id",
                     "query_cameras_per_id", "gallery_images_per_id"):
            value = getattr(self, name)
            if len(value) != 2 or value[0] > value[1]:
                problems.append(f"{name}={value} must be a [low, high] pair with low <= high")
        if problems:
            raise ConfigError(f"{key}: " + "; ".join(problems))
        cams = self.num_cameras
        if self.num_train_ids + self.num_test_ids > 9999:
            problems.append("num_train_ids + num_test_ids must be <= 9999 (4-digit pids)")
        for name in ("train_cameras_per_id", "test_cameras_per_id"):
            lo, hi = getattr(self, name)
            if lo < 2 or hi > cams:
                problems.append(f"{name}={[lo, hi]} must lie within 2..num_cameras ({cams})")
        lo, hi = self.query_cameras_per_id
        if lo < 1 or hi > self.test_cameras_per_id[0]:
            problems.append(f"query_cameras_per_id={[lo, hi]} must lie within "
                            f"1..test_cameras_per_id[0] ({self.test_cameras_per_id[0]})")
        if self.train_images_per_id[0] < 2 or self.gallery_images_per_id[0] < 2:
            problems.append("train_images_per_id and gallery_images_per_id must be >= 2")
        if problems:
            raise ConfigError(f"{key}: " + "; ".join(problems))


@dataclass(frozen=True)
class DatasetConfig:
    """Which data set, where it is, and what DVC tracks of it (``source``)."""

    name: str = "synthetic"
    format: Literal["market1501", "msmt17", "veri776", "vehicleid", "csv"] = "market1501"
    root: str = "data/prepared/synthetic"
    source: str = "src/clipreid/dataset/synthetic.py"
    object: Literal["person", "vehicle"] = "person"
    num_cameras: int = spec(6, ge=1)
    synthetic: SyntheticConfig | None = spec(None, optional_key=True)
    version: Literal["v1", "v2"] | None = spec(None, optional_key=True)   # msmt17
    test_size: Literal[800, 1600, 2400] | None = spec(None, optional_key=True)  # vehicleid
    csv: str | None = spec(None, optional_key=True)               # the custom format's CSV

    def check(self, key: str) -> None:
        if self.name == "synthetic":
            if self.synthetic is None:
                raise ConfigError(f"{key}.synthetic is missing: dataset=synthetic needs the "
                                  "generator's settings (conf/dataset/synthetic.yaml)")
            if self.synthetic.num_cameras != self.num_cameras:
                raise ConfigError(
                    f"{key}.synthetic.num_cameras={self.synthetic.num_cameras} differs from "
                    f"{key}.num_cameras={self.num_cameras}; set both to the same value")
        elif not _SKIP_PATHS.get() and not Path(self.root).is_dir():
            raise ConfigError(
                f"{key}.root={self.root!r}: no such folder for dataset={self.name}; point it "
                f"at the extracted data set (-S {key}.root=/path/to/{self.name})")
        if self.format == "csv" and not self.csv:
            raise ConfigError(f"{key}.csv is missing: the csv format needs the CSV's path "
                              "(inside dataset.root, or absolute)")
        if self.format == "vehicleid" and self.test_size is None:
            raise ConfigError(f"{key}.test_size is missing: vehicleid needs 800, 1600 or 2400")
        if self.format == "msmt17" and self.version is None:
            raise ConfigError(f"{key}.version is missing: msmt17 needs v1 or v2")


Severity = Literal["error", "warn"]


@dataclass(frozen=True)
class SeverityConfig:
    """What a failed data check does: ``error`` stops the pipeline, ``warn`` only reports.
    One key per check of clipreid.validation.checks (tests keep the two in step)."""

    columns_present: Severity = "error"
    no_nulls: Severity = "error"
    integer_ids: Severity = "error"
    split_values: Severity = "error"
    unique_paths: Severity = "error"
    pid_non_negative: Severity = "error"
    camera_range: Severity = "error"
    camera_coverage: Severity = "warn"
    empty_split: Severity = "error"
    identity_overlap: Severity = "error"
    train_labels: Severity = "error"
    cross_camera_match: Severity = "error"
    test_identity_images: Severity = "error"
    single_image_train_identity: Severity = "warn"
    file_exists: Severity = "error"
    file_decodes: Severity = "error"
    image_min_size: Severity = "error"
    image_max_size: Severity = "error"
    train_test_duplicates: Severity = "error"


@dataclass(frozen=True)
class ValidationConfig:
    """What the validate stage checks and how strictly."""

    severity: SeverityConfig = spec(factory=SeverityConfig)
    min_image_side: int = spec(16, ge=1)
    max_image_side: int = spec(4096, ge=16)   # larger images are refused, never decoded
    workers: int = spec(2, ge=1)
    max_examples: int = spec(20, ge=1)
    required_splits: Literal["auto"] | list[Literal["train", "query", "gallery", "test"]] = "auto"


# Mixed precision of a stage (clipreid.runtime.amp_dtype): auto = bf16 on GPUs that have
# it, fp16 with a gradient scaler on older ones, float32 on the CPU; bf16 / fp16 / off as
# asked.
Amp = Literal["auto", "bf16", "fp16", "off"]


@dataclass(frozen=True)
class PromptConfig:
    """Stage 1, prompt learning (method.md): only the identity prompt vectors train."""

    epochs: int = spec(60, ge=1)
    batch_size: int = spec(64, ge=1)
    lr: float = spec(2e-3, gt=0)
    weight_decay: float = spec(1e-4, ge=0)
    warmup_epochs: int = spec(5, ge=0)
    warmup_lr: float = spec(1e-5, gt=0)
    min_lr: float = spec(1e-6, ge=0)
    feature_batch_size: int = spec(128, ge=1)
    amp: Amp = "auto"


@dataclass(frozen=True)
class AugmentationConfig:
    flip_p: float = spec(0.5, ge=0, le=1)
    padding: int = spec(4, ge=0)
    erasing_p: float = spec(0.5, ge=0, le=1)


@dataclass(frozen=True)
class FinetuneConfig:
    """Stage 2, fine-tuning of the image encoder (method.md)."""

    epochs: int = spec(40, ge=1)
    num_identities: int = spec(16, ge=2)   # P
    num_instances: int = spec(4, ge=2)     # K (batch = P x K)
    lr: float = spec(5e-4, gt=0)
    bias_lr_factor: float = spec(2.0, gt=0)
    weight_decay: float = spec(1e-4, ge=0)
    weight_decay_bias: float = spec(1e-4, ge=0)
    milestones: list[int] = spec(factory=lambda: [25, 35])
    gamma: float = spec(0.1, gt=0, le=1)
    warmup_epochs: int = spec(5, ge=0)
    warmup_factor: float = spec(0.1, gt=0, le=1)
    id_loss_weight: float = spec(0.25, ge=0)
    triplet_loss_weight: float = spec(1.0, ge=0)
    i2t_loss_weight: float = spec(1.0, ge=0)
    triplet_margin: float = spec(0.3, ge=0)
    label_smoothing: float = spec(0.1, ge=0, le=1)
    augmentation: AugmentationConfig = spec(factory=AugmentationConfig)
    amp: Amp = "auto"

    def check(self, key: str) -> None:
        if any(m < 1 for m in self.milestones) or list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"{key}.milestones={list(self.milestones)} must be epochs >= 1 "
                              "in increasing order")


Interpolation = Literal["bilinear", "bicubic"]


@dataclass(frozen=True)
class PreprocessConfig:
    """How an image becomes the model's input: resized to ``model.input_size`` with
    ``train_interpolation`` (training) or ``test_interpolation`` (everything else), RGB
    values scaled to [0, 1], then ``(x - mean) / std`` per channel. The official recipes:
    mean = std = 0.5 for ViT-B/16, ImageNet's for RN50; bicubic in training, torchvision's
    default (bilinear) at test."""

    mean: list[float] = spec(factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = spec(factory=lambda: [0.5, 0.5, 0.5])
    train_interpolation: Interpolation = "bicubic"
    test_interpolation: Interpolation = "bilinear"

    def check(self, key: str) -> None:
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != 3:
                raise ConfigError(f"{key}.{name}={show(value)} must hold three values (R, G, B)")
        if min(self.std) <= 0:
            raise ConfigError(f"{key}.std={show(self.std)}: every value must be > 0")


@dataclass(frozen=True)
class SieConfig:
    enabled: bool = False
    coefficient: float = spec(1.0, ge=0)


@dataclass(frozen=True)
class ArchitectureConfig:
    """CLIP's constructor arguments (clip.model.CLIP)."""

    embed_dim: int = spec(128, ge=1)
    image_resolution: int = spec(64, ge=1)
    vision_layers: int | list[int] = 4      # ViT: depth; ResNet: blocks per stage (4)
    vision_width: int = spec(128, ge=1)
    vision_patch_size: int | None = spec(16, ge=1)  # ViT only
    context_length: int = spec(77, ge=8)
    vocab_size: int = spec(49408, ge=1)
    transformer_width: int = spec(128, ge=1)
    transformer_heads: int = spec(4, ge=1)
    transformer_layers: int = spec(2, ge=1)


@dataclass(frozen=True)
class ModelConfig:
    """The CLIP backbone: OpenAI's (``clip_name`` + ``weights``) or a random one."""

    name: str = "vit_tiny"
    arch: Literal["vit", "resnet"] = "vit"
    clip_name: Literal["ViT-B/16", "RN50"] | None = None
    weights: str | None = None
    source: str = RANDOM_INIT_SOURCE
    init_seed: int = spec(0, ge=0, le=MAX_SEED)
    input_size: list[int] = spec(factory=lambda: [128, 64])
    stride: int = spec(16, ge=1)
    preprocess: PreprocessConfig = spec(factory=PreprocessConfig)
    sie: SieConfig = spec(factory=SieConfig)
    architecture: ArchitectureConfig = spec(factory=ArchitectureConfig)

    def check(self, key: str) -> None:
        arch = self.architecture
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ConfigError(f"{key}.input_size={list(self.input_size)} must be [height, width]"
                              " in pixels")
        if self.arch == "vit":
            if not isinstance(arch.vision_layers, int) or arch.vision_patch_size is None:
                raise ConfigError(f"{key}.architecture: a ViT needs an integer vision_layers "
                                  f"and a vision_patch_size (got {arch.vision_layers!r}, "
                                  f"{arch.vision_patch_size!r})")
            if min(self.input_size) < arch.vision_patch_size:
                raise ConfigError(f"{key}.input_size={list(self.input_size)} is smaller than "
                                  f"the patch size {arch.vision_patch_size}")
            if self.stride > arch.vision_patch_size:
                raise ConfigError(f"{key}.stride={self.stride} must be <= the patch size "
                                  f"{arch.vision_patch_size} (16 as published, 12 for OLP)")
        else:
            if isinstance(arch.vision_layers, int) or len(arch.vision_layers) != 4:
                raise ConfigError(f"{key}.architecture.vision_layers={arch.vision_layers!r}: a "
                                  "ResNet needs four block counts, e.g. [3, 4, 6, 3]")
            if self.input_size[0] % 16 or self.input_size[1] % 16:
                raise ConfigError(f"{key}.input_size={list(self.input_size)}: a ResNet needs "
                                  "multiples of 16")
            if self.sie.enabled:
                raise ConfigError(f"{key}.sie.enabled=true: SIE is defined for ViT backbones "
                                  "only (model=vit_tiny or vit_b16)")
        if self.clip_name is None:
            if self.weights is not None:
                raise ConfigError(f"{key}.weights={self.weights!r} is set but {key}.clip_name is "
                                  "null: weights load only into an OpenAI architecture "
                                  "(model=vit_b16 or rn50)")
            if self.source != RANDOM_INIT_SOURCE:
                raise ConfigError(f"{key}.source={self.source!r}: a randomly initialised model's "
                                  f"source is {RANDOM_INIT_SOURCE}")
        else:
            if self.weights and not _SKIP_PATHS.get() and not Path(self.weights).is_file():
                raise ConfigError(
                    f"{key}.weights={self.weights!r}: no such file. OpenAI's {self.clip_name} "
                    "weights are not downloaded here: fetch the file (its address is in the "
                    "clip package, clip/clip.py, _MODELS) and pass "
                    f"-S {key}.weights=/path/{self.clip_name.replace('/', '-')}.pt")
            if not self.weights:
                raise ConfigError(
                    f"{key}.weights is not set: model {self.clip_name} needs OpenAI's weights "
                    f"file (-S {key}.weights=/path/{self.clip_name.replace('/', '-')}.pt)")
            if self.source != self.weights:
                raise ConfigError(f"{key}.source={self.source!r} must equal {key}.weights "
                                  f"({self.weights!r}): DVC tracks the weights through it")


@dataclass(frozen=True)
class RerankConfig:
    enabled: bool = False
    k1: int = spec(20, ge=1)
    k2: int = spec(6, ge=1)
    lambda_value: float = spec(0.3, ge=0, le=1)


@dataclass(frozen=True)
class QueryExpansionConfig:
    enabled: bool = False
    top_k: int = spec(5, ge=1)
    alpha: float = spec(3.0, ge=0)


@dataclass(frozen=True)
class PlotsConfig:
    num_queries: int = spec(4, ge=1)      # rank lists of the best and of the worst queries
    top_k: int = spec(10, ge=1)           # gallery images per rank list
    histogram_bins: int = spec(100, ge=1)


@dataclass(frozen=True)
class TrialsConfig:
    """Data sets with a ``test`` split (VehicleID): query and gallery drawn per trial (one
    random gallery image per identity, the rest queries), metrics averaged over trials."""

    count: int = spec(10, ge=1)
    seed: int = spec(0, ge=0, le=MAX_SEED)   # trial t draws with seed + t


@dataclass(frozen=True)
class ThresholdsConfig:
    """Match thresholds fitted at target false match rates on the test split's
    cross-camera pairs (clipreid.evaluation.thresholds)."""

    false_match_rates: list[float] = spec(factory=lambda: [1e-2, 1e-3], gt=0, le=1)
    bins: int = spec(1_000_000, ge=100)   # distance resolution: range / bins

    def check(self, key: str) -> None:
        if not self.false_match_rates:
            raise ConfigError(f"{key}.false_match_rates is empty: give at least one rate")


@dataclass(frozen=True)
class ExpectedConfig:
    """The published result a named recipe (conf/experiment/) should reach, as fractions
    (0.896 = 89.6 %); ``evaluate`` reports the gap to it. Null where no published number
    is known (the recipe still runs)."""

    recipe: str | None = None
    mAP: float | None = spec(None, ge=0, le=1)
    rank1: float | None = spec(None, ge=0, le=1)
    tolerance: float = spec(0.01, ge=0, le=1)   # the gap still counted as reproduced
    #: What the published run used (dotted keys of ``method``, ``dataset.name`` and
    #: ``model.*``): a run that differs in any is not compared (e.g. a recipe with another
    #: backbone or data set chosen on top).
    requires: dict[str, Any] = spec(factory=dict)

    def check(self, key: str) -> None:
        allowed = ("method", "dataset.name")
        bad = [k for k in self.requires if k not in allowed and not k.startswith("model.")]
        if bad:
            raise ConfigError(f"{key}.requires: {bad} are not comparable keys; use method, "
                              "dataset.name or model.<key>")


@dataclass(frozen=True)
class EvaluationConfig:
    batch_size: int = spec(128, ge=1)
    amp: Amp = "off"
    distance: Literal["euclidean", "cosine"] = "euclidean"
    max_rank: int = spec(50, ge=10)
    block_size: int | None = spec(None, ge=1)
    remove_same_camera: bool = True
    rerank: RerankConfig = spec(factory=RerankConfig)
    query_expansion: QueryExpansionConfig = spec(factory=QueryExpansionConfig)
    plots: PlotsConfig = spec(factory=PlotsConfig)
    trials: TrialsConfig = spec(factory=TrialsConfig)
    thresholds: ThresholdsConfig = spec(factory=ThresholdsConfig)
    expected: ExpectedConfig = spec(factory=ExpectedConfig)


@dataclass(frozen=True)
class ExportConfig:
    opset: int = spec(18, ge=14)
    max_abs_diff: float = spec(1e-4, gt=0)
    min_cosine: float = spec(0.9999, ge=0, le=1)   # per image, fp32 ONNX vs PyTorch
    num_images: int = spec(64, ge=1)               # parity images: batch 1 and batch N


@dataclass(frozen=True)
class LaunchConfig:
    """How many processes the training stages (prompt, finetune) run in. More than one:
    the stage starts itself under torchrun (clipreid.distributed), one process per GPU."""

    nproc_per_node: int = spec(1, ge=1)     # processes per node (GPUs per node)
    nnodes: int = spec(1, ge=1)             # nodes; > 1: run the same command on each
    rdzv_endpoint: str = "localhost:29400"  # several nodes: host:port on the first node
    rdzv_id: str = "clipreid"               # several nodes: the job's name, the same on all
    backend: Literal["auto", "nccl", "gloo"] = "auto"   # auto: nccl on GPUs, gloo on CPU


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml."""

    dataset: DatasetConfig = spec(factory=DatasetConfig)
    validation: ValidationConfig = spec(factory=ValidationConfig)
    prompt: PromptConfig = spec(factory=PromptConfig)
    finetune: FinetuneConfig = spec(factory=FinetuneConfig)
    model: ModelConfig = spec(factory=ModelConfig)
    evaluation: EvaluationConfig = spec(factory=EvaluationConfig)
    export: ExportConfig = spec(factory=ExportConfig)
    #: clipreid: both stages (prompt learning, then fine-tuning with the image-to-text
    #: loss); baseline: the paper's baseline, the image encoder fine-tuned with identity
    #: and triplet losses only (the prompt stage writes a marker and learns nothing).
    method: Literal["clipreid", "baseline"] = "clipreid"
    seed: int = spec(0, ge=0, le=MAX_SEED)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int = spec(2, ge=0)
    launch: LaunchConfig = spec(factory=LaunchConfig)
    schema_version: Literal[1] = 1   # checked at composition (clipreid.config.compose)


# --- parsing --------------------------------------------------------------------------
def show(value) -> str:
    """A value as params.yaml writes it (null, true, 'text', [1, 2])."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return repr(value)


def _describe(hint) -> str:
    """What a type hint allows, in words."""
    origin = typing.get_origin(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if hint is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is list:
        return f"a list, each item {_describe(typing.get_args(hint)[0])}"
    if origin is dict:
        return f"a mapping of names to {_describe(typing.get_args(hint)[1])}"
    if dataclasses.is_dataclass(hint):
        return f"a mapping with keys {[f.name for f in dataclasses.fields(hint)]}"
    return str(hint)


class _Mismatch(Exception):
    """A value does not fit a type hint (caught and turned into a ConfigError)."""


def _convert(hint, value, key: str, strict: bool):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise _Mismatch
        return _parse(hint, value, key, strict)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _convert(option, value, key, strict)
            except _Mismatch:
                continue
        raise _Mismatch
    if hint is type(None):
        if value is not None:
            raise _Mismatch
        return None
    if origin is Literal:
        for allowed in typing.get_args(hint):
            if value == allowed and type(value) is type(allowed):
                return value
        raise _Mismatch
    if hint is bool:
        if not isinstance(value, bool):
            raise _Mismatch
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise _Mismatch
        return value  # an int stays an int: parsing never changes a value
    if hint is str:
        if not isinstance(value, str):
            raise _Mismatch
        return value
    if origin is list:
        if not isinstance(value, typing.Sequence) or isinstance(value, (str, bytes)):
            raise _Mismatch
        (item,) = typing.get_args(hint)
        return [_checked(item, v, f"{key}[{i}]", strict) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        _, item = typing.get_args(hint)
        return {str(k): _checked(item, v, f"{key}.{k}", strict) for k, v in value.items()}
    if hint is Any:
        return value
    raise TypeError(f"schema type {hint} of {key} is not supported")


def _checked(hint, value, key: str, strict: bool):
    try:
        return _convert(hint, value, key, strict)
    except _Mismatch:
        raise ConfigError(f"{key}={show(value)} is not allowed: expected {_describe(hint)}") \
            from None


def _bounds(f: dataclasses.Field, value, key: str) -> None:
    meta = f.metadata
    items = value if isinstance(value, list) else [value]
    for v in items:
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        for name, ok, words in (("ge", lambda b: v >= b, ">="), ("gt", lambda b: v > b, ">"),
                                ("le", lambda b: v <= b, "<=")):
            bound = meta.get(name)
            if bound is not None and not ok(bound):
                raise ConfigError(f"{key}={show(value)} is not allowed: expected a value {words} "
                                  f"{bound}")


def _parse(cls, data: Mapping, key: str, strict: bool):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        where = f"{key}." if key else ""
        raise ConfigError(f"unknown key(s) {[where + str(k) for k in unknown]}; "
                          f"{key or 'params.yaml'} allows {names}")
    values = {}
    for f in dataclasses.fields(cls):
        name = f"{key}.{f.name}" if key else f.name
        if f.name not in data:
            if strict and not f.metadata.get("optional_key"):
                raise ConfigError(f"{name} is missing; recompose params.yaml from conf/ "
                                  "(`clipreid compose`) or add the key")
            continue
        value = _checked(hints[f.name], data[f.name], name, strict)
        _bounds(f, value, name)
        values[f.name] = value
    obj = cls(**values)
    if hasattr(obj, "check"):
        obj.check(key)
    return obj


def from_dict(cls, data: Mapping | None, key: str = ""):
    """``cls`` from a mapping, checked; keys it leaves out take their defaults."""
    return _parse(cls, data or {}, key, strict=False)


@contextlib.contextmanager
def without_path_checks():
    """Within the block, parsing skips the checks that look at the file system (a data
    set folder or a weights file that must exist)."""
    token = _SKIP_PATHS.set(True)
    try:
        yield
    finally:
        _SKIP_PATHS.reset(token)


def coerce(cls, cfg, key: str = ""):
    """``cfg`` if it already is a ``cls``, else ``cls`` built from the mapping ``cfg`` (for
    library callers that hold a plain dict; the file system is left to the caller, so a
    missing data folder is the reader's error, naming what it looked for)."""
    if isinstance(cfg, cls):
        return cfg
    with without_path_checks():
        return from_dict(cls, cfg, key)


def parse_params(data: Mapping, *, check_paths: bool = True) -> Params:
    """The whole of params.yaml, checked (every key present). ``check_paths=False`` skips
    the checks that look at the file system (a data set folder that must exist)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"must be a mapping of groups, got {type(data).__name__}")
    if check_paths:
        return _parse(Params, data, "", strict=True)
    with without_path_checks():
        return _parse(Params, data, "", strict=True)


def as_dict(obj) -> dict:
    """A parsed config as plain data (keys a mapping left out stay out when None and
    optional, so a parsed params.yaml dumps back to the same mapping)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None and f.metadata.get("optional_key"):
            continue
        out[f.name] = as_dict(value) if dataclasses.is_dataclass(value) else _plain(value)
    return out


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value

