"""The CLIP-ReID model: image encoder + BNNeck head, prompt learner + text encoder.

Stage 1 trains only ``prompt_learner.ctx``; stage 2 trains the image side (encoder,
camera embeddings, BN necks, classifiers). At test time only :meth:`ClipReID.test_features`
is used: the concatenation of the ``main`` and ``proj`` features before the BN neck."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from clipreid.config.schema import ModelConfig, coerce
from clipreid.errors import ConfigError
from clipreid.model.backbone import adapt_resnet, adapt_vit, build_clip, seeded
from clipreid.model.image_encoder import ImageFeatures, ResNetImageEncoder, ViTImageEncoder
from clipreid.model.text_encoder import PromptLearner, TextEncoder


def _bn_neck(dim: int) -> nn.BatchNorm1d:
    """BatchNorm1d with its bias frozen at zero (BNNeck), kaiming-style init (weight 1)."""
    bn = nn.BatchNorm1d(dim)
    nn.init.constant_(bn.weight, 1.0)
    nn.init.constant_(bn.bias, 0.0)
    bn.bias.requires_grad_(False)
    return bn


def _classifier(dim: int, num_classes: int) -> nn.Linear:
    layer = nn.Linear(dim, num_classes, bias=False)
    nn.init.normal_(layer.weight, std=0.001)
    return layer


class ClipReID(nn.Module):
    def __init__(
        self,
        clip_model: nn.Module,
        arch: str,
        num_classes: int,
        object_noun: str,
        num_cameras: int = 0,
        sie_coefficient: float = 0.0,
    ):
        super().__init__()
        if arch == "vit":
            self.image_encoder = ViTImageEncoder(clip_model.visual)
        elif arch == "resnet":
            self.image_encoder = ResNetImageEncoder(clip_model.visual)
        else:
            raise ConfigError(f"model.arch '{arch}' must be 'vit' or 'resnet'")
        main_dim, proj_dim = self.image_encoder.main_dim, self.image_encoder.proj_dim
        self.sie_coefficient = float(sie_coefficient)
        if num_cameras > 0:
            if arch != "vit":
                raise ConfigError("model.sie.enabled: SIE is defined for ViT backbones only")
            self.camera_embedding = nn.Parameter(torch.zeros(num_cameras, main_dim))
            nn.init.trunc_normal_(self.camera_embedding, std=0.02)
        else:
            self.camera_embedding = None
        self.bottleneck = _bn_neck(main_dim)
        self.bottleneck_proj = _bn_neck(proj_dim)
        self.classifier = _classifier(main_dim, num_classes)
        self.classifier_proj = _classifier(proj_dim, num_classes)
        self.prompt_learner = PromptLearner(
            num_classes, clip_model.token_embedding, object_noun, clip_model.context_length
        )
        self.text_encoder = TextEncoder(clip_model)

    # --- parameter groups -------------------------------------------------------------
    def text_side_parameters(self):
        """Named parameters of the text side (encoder and prompt vectors)."""
        yield from (("text_encoder." + n, p) for n, p in self.text_encoder.named_parameters())
        yield from (("prompt_learner." + n, p) for n, p in self.prompt_learner.named_parameters())

    def image_side_parameters(self):
        """Named parameters of the image side (encoder, camera embeddings, head)."""
        text = {id(p) for _, p in self.text_side_parameters()}
        for name, p in self.named_parameters():
            if id(p) not in text:
                yield name, p

    # --- forward passes ---------------------------------------------------------------
    def _camera_embedding(self, camids: torch.Tensor | None) -> torch.Tensor | None:
        if self.camera_embedding is None:
            return None
        if camids is None:
            raise ValueError("this model uses SIE: pass each image's camera id")
        return self.sie_coefficient * self.camera_embedding[camids]

    def image_features(self, images: torch.Tensor, camids=None) -> ImageFeatures:
        return self.image_encoder(images, self._camera_embedding(camids))

    def text_features(self, labels: torch.Tensor) -> torch.Tensor:
        """Text features (B, proj_dim) of the prompts of ``labels``."""
        return self.text_encoder(self.prompt_learner(labels), self.prompt_learner.eot_index)

    def classify(self, feats: ImageFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """Identity logits of the two classifiers after the BN necks."""
        return (
            self.classifier(self.bottleneck(feats.main)),
            self.classifier_proj(self.bottleneck_proj(feats.proj)),
        )

    def test_features(self, images: torch.Tensor, camids=None) -> torch.Tensor:
        """The test-time descriptor: [main, proj] before the BN neck, L2-normalised."""
        feats = self.image_features(images, camids)
        return F.normalize(torch.cat([feats.main, feats.proj], dim=1).float(), dim=1)

    def forward(self, images: torch.Tensor, camids=None) -> torch.Tensor:
        return self.test_features(images, camids)


def build_reid_model(model_cfg: ModelConfig, num_classes: int, object_noun: str,
                     num_cameras: int, load_weights: bool = True) -> ClipReID:
    """CLIP from ``model_cfg`` adapted to the configured input, wrapped as ClipReID.
    ``load_weights=False`` skips OpenAI's weights (when trained weights follow)."""
    model_cfg = coerce(ModelConfig, model_cfg, "model")
    clip_model = build_clip(model_cfg, load_weights=load_weights)
    input_size = list(model_cfg.input_size)
    arch = model_cfg.arch
    if arch == "vit":
        adapt_vit(clip_model.visual, input_size, model_cfg.stride)
    elif arch == "resnet":
        adapt_resnet(clip_model.visual, input_size)
    use_sie = model_cfg.sie.enabled
    with seeded(model_cfg.init_seed + 1):  # head, SIE and prompt vectors
        model = ClipReID(
            clip_model,
            arch,
            num_classes=num_classes,
            object_noun=object_noun,
            num_cameras=num_cameras if use_sie else 0,
            sie_coefficient=float(model_cfg.sie.coefficient) if use_sie else 0.0,
        )
    return model
