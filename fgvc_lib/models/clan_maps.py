"""CLAN's maps per layer (Figures 4-6 of arXiv 2210.08784) and their scores on the synthetic ground truth.

* Figure 4: the channel-mean activation of each layer's map as the model uses it (CLAN and the
  non-local model: the refined mid-level maps, ``extras["features"]``);
* Figure 5: Grad-CAM of the final prediction for the true class at each layer;
* Figure 6: CLSA's attention maps ``M^s`` (eq. 8) of the mid levels.

Every map is upsampled to the image size and scaled to [0, 1]. :func:`score_maps` scores each map of
each model and seed against the sample's ground truth (:func:`fgvc_lib.localization.score_cams`) and
correlates the top and first mid Grad-CAM maps (section 4.4: the baseline's conv5_2 repeats
conv5_3, CLAN's does not).
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import numpy as np
import torch

from .clan import CLAN

MAP_KINDS = ("activation", "Grad-CAM", "CLSA")


def stage_layer(model, stage: str):
    """The module whose output is ``stage``'s map: CLAN's refined map where CLAN refines that stage
    (the CLCA/non-local output), else the backbone's own stage."""
    if isinstance(model, CLAN):
        layers = model.cam_layers()
        if stage in layers:
            return layers[stage]
    return model.backbone.stage_module(stage)


@torch.no_grad()
def stage_maps(model, images: torch.Tensor, stages: Sequence[str]) -> Dict[str, torch.Tensor]:
    """Each stage's feature map as the model uses it (CLAN: refined mid maps; else the backbone's)."""
    was_training = model.training
    model.eval()
    try:
        found: Dict[str, torch.Tensor] = {}
        if isinstance(model, CLAN):
            found.update(model(images.contiguous()).extras["features"])
        missing = [s for s in stages if s not in found]
        if missing:
            found.update(model.backbone(images.contiguous(), missing))
    finally:
        model.train(was_training)
    return {s: found[s] for s in stages}


def activation_maps(model, images: torch.Tensor, stages: Sequence[str]) -> Dict[str, np.ndarray]:
    """Channel-mean activation of each stage's map at image size, scaled to [0, 1] (Figure 4)."""
    from ..cam import feature_activation_map

    size = tuple(images.shape[-2:])
    return {s: feature_activation_map(m, size) for s, m in stage_maps(model, images, stages).items()}


def gradcam_maps(model, images: torch.Tensor, labels: torch.Tensor, stages: Sequence[str]) -> Dict[str, np.ndarray]:
    """Grad-CAM of the final prediction for the true class at each stage (Figure 5)."""
    from ..cam import compute_cams

    return {s: compute_cams(model, images, target_layers=[stage_layer(model, s)], targets=labels) for s in stages}


@torch.no_grad()
def clsa_maps(model, images: torch.Tensor) -> Dict[str, np.ndarray]:
    """CLSA's attention maps of each mid stage at image size in [0, 1] (Figure 6); empty without CLSA."""
    from ..cam import feature_activation_map

    if not isinstance(model, CLAN) or not model.config.use_clsa:
        return {}
    was_training = model.training
    model.eval()
    try:
        attention = model(images.contiguous()).extras["clsa_attention"]
    finally:
        model.train(was_training)
    size = tuple(images.shape[-2:])
    return {stage: feature_activation_map(m, size) for stage, m in attention.items()}


def model_maps(model, images: torch.Tensor, labels: torch.Tensor, stages: Sequence[str]) -> Dict[str, np.ndarray]:
    """Every map of one model: ``"<stage> activation"``, ``"<stage> Grad-CAM"``, ``"CLSA <stage>"``."""
    maps = {f"{s} activation": m for s, m in activation_maps(model, images, stages).items()}
    maps.update({f"{s} Grad-CAM": m for s, m in gradcam_maps(model, images, labels, stages).items()})
    maps.update({f"CLSA {s}": m for s, m in clsa_maps(model, images).items()})
    return maps


def map_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over images of the Pearson correlation between two ``(B, H, W)`` stacks of maps."""
    values = []
    for x, y in zip(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)):
        x, y = x.ravel() - x.mean(), y.ravel() - y.mean()
        denominator = np.sqrt((x * x).sum() * (y * y).sum())
        values.append(float((x * y).sum() / denominator) if denominator > 0 else 0.0)
    return float(np.mean(values))


def score_maps(models: Mapping[str, List], stages: Sequence[str], sample) -> Dict[str, Dict[int, float]]:
    """Scores of every map of every model and seed, in percent: ``{"<model>: <map>: <metric>": {seed:
    value}}``, plus ``"<model>: top/mid Grad-CAM correlation"`` (x100). ``models`` maps a label to its
    runs (objects with ``.seed`` and ``.model``)."""
    from ..localization import score_cams

    top, mid = stages[:2]
    scores: Dict[str, Dict[int, float]] = {}
    for label, runs in models.items():
        for run in runs:
            maps = model_maps(run.model, sample.images, sample.labels, stages)
            for name, m in maps.items():
                for metric, value in score_cams(m, sample).items():
                    scores.setdefault(f"{label}: {name}: {metric}", {})[run.seed] = 100.0 * value
            scores.setdefault(f"{label}: top/mid Grad-CAM correlation", {})[run.seed] = \
                100.0 * map_correlation(maps[f"{top} Grad-CAM"], maps[f"{mid} Grad-CAM"])
    return scores


def map_figure(models: Mapping[str, object], stages: Sequence[str], sample, kind: str):
    """Figure 4 (``kind="activation"``), 5 (``"Grad-CAM"``) or 6 (``"CLSA"``): one row per image,
    one column per model and layer. ``models`` maps a label to one trained model."""
    from ..cam import cam_grid
    from ..data.transforms import denormalize

    if kind not in MAP_KINDS:
        raise ValueError(f"kind must be one of {', '.join(MAP_KINDS)}; got {kind!r}")
    columns = {}
    for label, model in models.items():
        if kind == "activation":
            maps = activation_maps(model, sample.images, stages)
        elif kind == "Grad-CAM":
            maps = gradcam_maps(model, sample.images, sample.labels, stages)
        else:
            maps = clsa_maps(model, sample.images)
        for stage, m in maps.items():
            columns[f"{label}{' CLSA' if kind == 'CLSA' else ''}\n{stage}"] = m
    return cam_grid(sample.images, columns, titles=sample.titles, boxes=sample.first_part_boxes(),
                    denormalize=denormalize)
