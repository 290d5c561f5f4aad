"""The fine-tuned backbone baseline: backbone, global average pooling, one linear classifier.

This is the "fine-tuned baseline" row of every paper's comparison table (e.g. CLAN Table 6,
VGG-16 / ResNet-50 / ResNet-101), and the model the synthetic dataset is calibrated with.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn

from ..backbones import FeatureBackbone
from .output import ModelOutput


def cross_entropy_loss(output: ModelOutput, targets: torch.Tensor):
    """Plain cross-entropy on the final logits, as a one-term loss dict."""
    return {"ce": nn.functional.cross_entropy(output.logits, targets)}


class BaselineNet(nn.Module):
    """``backbone -> top feature map -> GAP -> Linear``; extras hold the top feature map."""

    branch_names = ()

    def __init__(self, backbone: FeatureBackbone, num_classes: int, stage: str | None = None):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2; got {num_classes}")
        self.backbone = backbone
        self.stage = stage or backbone.top_stage
        backbone.check_stages([self.stage])
        self.classifier = nn.Linear(backbone.stage_channels[self.stage], num_classes)
        self._cam_layer = backbone.stage_module(self.stage)

    def forward(self, images: torch.Tensor) -> ModelOutput:
        features = self.backbone(images, (self.stage,))[self.stage]
        logits = self.classifier(features.mean(dim=(2, 3)))
        return ModelOutput(logits, {"features": {self.stage: features}})

    def cam_target_layers(self) -> List[nn.Module]:
        return [self._cam_layer]

