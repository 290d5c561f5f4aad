"""The spatial-attention oracle of notebook 00: the baseline's last map pooled with the ground-truth region's mask.

Not from a paper: the positive control of the methods that re-weight feature maps (CLAN, CRA-SMRA,
SSANet). The baseline (:class:`fgvc_lib.models.baseline.BaselineNet`) averages its top map over every
cell; this model weights each cell by the share of its pixels inside the annotated region (the
discriminative parts' boxes or the bird's box, given as the image's fourth channel by
:func:`fgvc_lib.data.crops.with_mask_channel`):

    pooled_c = sum_ij w_ij F_cij / sum_ij w_ij,   w_ij = share of cell (i, j)'s pixels inside the region,

the attention a perfect spatial mechanism would compute. An image whose region covers no cell falls
back to the plain average. The map runs at the output stride the attention notebooks use
(:func:`fgvc_lib.backbones.set_output_stride`; 8 in the cpu profile: a 12 x 12 map at 96 px), and the
paired reference is the baseline at the same stride (:func:`strided_baseline`), so the comparison
isolates the pooling.
"""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..backbones import FeatureBackbone, is_vgg, set_output_stride
from .baseline import BaselineNet
from .output import ModelOutput


def _at_stride(backbone: FeatureBackbone, output_stride: Optional[int]) -> FeatureBackbone:
    """``backbone`` at ``output_stride`` (VGG only; other backbones keep their published stride)."""
    if output_stride and is_vgg(backbone.name):
        set_output_stride(backbone, output_stride)
    return backbone


def strided_baseline(backbone: FeatureBackbone, num_classes: int, output_stride: Optional[int] = None) -> BaselineNet:
    """The plain baseline (average pooling) at ``output_stride``: the reference of :class:`MaskPooledNet`."""
    return BaselineNet(_at_stride(backbone, output_stride), num_classes)


class MaskPooledNet(nn.Module):
    """``backbone -> top map -> pooling weighted by the region mask -> Linear``.

    Input: ``(N, 4, H, W)``, three normalised colour channels and the region mask in [0, 1]. Extras hold
    the top map (``features``) and the pooling weights at its resolution (``pool_weights``)."""

    branch_names = ()

    def __init__(self, backbone: FeatureBackbone, num_classes: int, output_stride: Optional[int] = None):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2; got {num_classes}")
        self.backbone = _at_stride(backbone, output_stride)
        self.stage = backbone.top_stage
        self.classifier = nn.Linear(backbone.stage_channels[self.stage], num_classes)
        self._cam_layer = backbone.stage_module(self.stage)

    def forward(self, images: torch.Tensor) -> ModelOutput:
        if images.dim() != 4 or images.shape[1] != 4:
            raise ValueError(f"MaskPooledNet takes (N, 4, H, W): RGB and the region mask (data option 'mask'); "
                             f"got shape {tuple(images.shape)}")
        features = self.backbone(images[:, :3], (self.stage,))[self.stage]
        weights = F.adaptive_avg_pool2d(images[:, 3:4].to(features.dtype), features.shape[-2:])
        total = weights.sum(dim=(2, 3), keepdim=True)
        uniform = torch.full_like(weights, 1.0 / (weights.shape[-1] * weights.shape[-2]))
        weights = torch.where(total > 0, weights / total.clamp_min(1e-12), uniform)
        logits = self.classifier((features * weights).sum(dim=(2, 3)))
        return ModelOutput(logits, {"features": {self.stage: features}, "pool_weights": weights})

    def cam_target_layers(self) -> List[nn.Module]:
        return [self._cam_layer]
