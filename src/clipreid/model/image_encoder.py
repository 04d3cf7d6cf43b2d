"""CLIP's image tower, returning the three features CLIP-ReID uses.

ViT: class token after the next-to-last block (``last``), after the last block and
ln_post (``main``), and ``main @ proj`` (``proj``). RN50: layer3 and layer4 outputs
average-pooled (``last``, ``main``) and the attention-pool output (``proj``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class ImageFeatures(NamedTuple):
    last: torch.Tensor
    main: torch.Tensor
    proj: torch.Tensor


class ViTImageEncoder(nn.Module):
    """Wraps clip's ``VisionTransformer``; ``camera_embedding`` (B, width) is added to the
    class token before the positional embedding (SIE)."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        self.visual = visual
        self.main_dim = visual.ln_post.normalized_shape[0]
        self.proj_dim = visual.proj.shape[1]

    def forward(self, x: torch.Tensor, camera_embedding: torch.Tensor | None = None):
        v = self.visual
        x = v.conv1(x.to(v.conv1.weight.dtype))
        x = x.flatten(2).transpose(1, 2)  # B, h*w, width
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        if camera_embedding is not None:
            cls = cls + camera_embedding.to(x.dtype).unsqueeze(1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        x = v.ln_pre(x).transpose(0, 1)  # sequence first, as clip's blocks expect
        blocks = v.transformer.resblocks
        for block in blocks[:-1]:
            x = block(x)
        last = x[0]
        x = blocks[-1](x)
        main = v.ln_post(x[0])
        return ImageFeatures(last=last, main=main, proj=main @ v.proj)


class ResNetImageEncoder(nn.Module):
    """Wraps clip's ``ModifiedResNet`` (layer4 made stride 1 by the backbone adapter)."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        self.visual = visual
        self.main_dim = visual.layer4[-1].bn3.num_features
        self.proj_dim = visual.attnpool.c_proj.out_features

    def forward(self, x: torch.Tensor, camera_embedding: torch.Tensor | None = None):
        if camera_embedding is not None:
            raise ValueError("SIE camera embeddings are defined for ViT backbones only")
        v = self.visual
        x = x.to(v.conv1.weight.dtype)
        x = v.relu1(v.bn1(v.conv1(x)))
        x = v.relu2(v.bn2(v.conv2(x)))
        x = v.relu3(v.bn3(v.conv3(x)))
        x = v.avgpool(x)
        x3 = v.layer3(v.layer2(v.layer1(x)))
        x4 = v.layer4(x3)
        proj = v.attnpool(x4)
        return ImageFeatures(
            last=F.adaptive_avg_pool2d(x3, 1).flatten(1),
            main=F.adaptive_avg_pool2d(x4, 1).flatten(1),
            proj=proj,
        )
