"""Notebook 03's views of CLAN's maps per layer (Figures 4-6 of arXiv 2210.08784) and their per-image
scores on the synthetic ground truth.

* Figure 4: the channel-mean activation of each layer's map as the model uses it (CLAN and the
  non-local model: the refined mid-level maps, ``extras["features"]``);
* Figure 5: Grad-CAM of the final prediction for the true class at each layer;
* Figure 6: CLSA's attention maps ``M^s`` (eq. 8) of the mid levels.

Every map is upsampled to the image size and scaled to [0, 1]. The models run on their own device
(:func:`fgvc_lib.cam.model_device`), ``batch_size`` images at a time (:func:`fgvc_lib.cam.view_batch_size`:
by default the whole sample on the CPU, as before); the maps come back to the CPU as numpy arrays.
:func:`score_maps` scores each map of
each model and seed against the sample's ground truth, one value per test image (so that a claim's
interval counts the test images as well as the seeds):

* the localization scores of :func:`fgvc_lib.localization.score_cams` (pointing game and energy share
  on the discriminative parts and on the object box, with the chance levels);
* ``part_diversity`` (Figure 6's "more diverse local information", :func:`part_diversity`): the share
  of the bird's annotated parts that the map's peaks fall on, in percent;
* the correlation of the top and the first mid-level Grad-CAM maps (section 4.4: the baseline's
  conv5_2 repeats conv5_3, CLAN's does not), x100.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..models.clan import CLAN
from .clan import DIVERSITY

MAP_KINDS = ("activation", "Grad-CAM", "CLSA")
# A local maximum counts as a peak of a map when it reaches half the map's maximum (the usual
# half-maximum convention); peaks closer than PEAK_RADIUS_FRACTION x the image side are one peak.
PEAK_FRACTION = 0.5
PEAK_RADIUS_FRACTION = 1 / 32
Box = Tuple[float, float, float, float]


def stage_layer(model, stage: str):
    """The module whose output is ``stage``'s map: CLAN's refined map where CLAN refines that stage
    (the CLCA/non-local output), else the backbone's own stage."""
    if isinstance(model, CLAN):
        layers = model.cam_layers()
        if stage in layers:
            return layers[stage]
    return model.backbone.stage_module(stage)


def _in_batches(model, images: torch.Tensor, batch_size: Optional[int], maps) -> Dict[str, np.ndarray]:
    """``maps(model, chunk)`` (a dict of ``(b, H, W)`` arrays) over ``images``, ``batch_size`` at a time
    (:func:`fgvc_lib.cam.view_batch_size`), concatenated; one call when one batch holds every image."""
    from ..cam import model_device, view_batch_size

    chunk = view_batch_size(batch_size, len(images), model_device(model))
    if chunk >= len(images):
        return maps(model, images)
    parts = [maps(model, images[start:start + chunk]) for start in range(0, len(images), chunk)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


@torch.no_grad()
def stage_maps(model, images: torch.Tensor, stages: Sequence[str]) -> Dict[str, torch.Tensor]:
    """Each stage's feature map as the model uses it (CLAN: refined mid maps; else the backbone's), for
    ``images`` moved to the model's device; the maps stay there."""
    from ..cam import model_device

    images = images.to(model_device(model)).contiguous()
    was_training = model.training
    model.eval()
    try:
        found: Dict[str, torch.Tensor] = {}
        if isinstance(model, CLAN):
            found.update(model(images).extras["features"])
        missing = [s for s in stages if s not in found]
        if missing:
            found.update(model.backbone(images, missing))
    finally:
        model.train(was_training)
    return {s: found[s] for s in stages}


def activation_maps(model, images: torch.Tensor, stages: Sequence[str],
                    batch_size: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Channel-mean activation of each stage's map at image size, scaled to [0, 1] (Figure 4)."""
    from ..cam import feature_activation_map

    size = tuple(images.shape[-2:])
    return _in_batches(model, images, batch_size, lambda net, chunk: {
        s: feature_activation_map(m, size) for s, m in stage_maps(net, chunk, stages).items()})


def gradcam_maps(model, images: torch.Tensor, labels: torch.Tensor, stages: Sequence[str],
                 batch_size: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Grad-CAM of the final prediction for the true class at each stage (Figure 5)."""
    from ..cam import compute_cams

    return {s: compute_cams(model, images, target_layers=[stage_layer(model, s)], targets=labels,
                            batch_size=batch_size) for s in stages}


@torch.no_grad()
def _clsa_batch(model, images: torch.Tensor) -> Dict[str, np.ndarray]:
    from ..cam import feature_activation_map, model_device

    was_training = model.training
    model.eval()
    try:
        attention = model(images.to(model_device(model)).contiguous()).extras["clsa_attention"]
    finally:
        model.train(was_training)
    size = tuple(images.shape[-2:])
    return {stage: feature_activation_map(m, size) for stage, m in attention.items()}


def clsa_maps(model, images: torch.Tensor, batch_size: Optional[int] = None) -> Dict[str, np.ndarray]:
    """CLSA's attention maps of each mid stage at image size in [0, 1] (Figure 6); empty without CLSA."""
    if not isinstance(model, CLAN) or not model.config.use_clsa:
        return {}
    return _in_batches(model, images, batch_size, _clsa_batch)


def model_maps(model, images: torch.Tensor, labels: torch.Tensor, stages: Sequence[str],
               batch_size: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Every map of one model: ``"<stage> activation"``, ``"<stage> Grad-CAM"``, ``"CLSA <stage>"``."""
    maps = {f"{s} activation": m for s, m in activation_maps(model, images, stages, batch_size).items()}
    maps.update({f"{s} Grad-CAM": m for s, m in gradcam_maps(model, images, labels, stages, batch_size).items()})
    maps.update({f"CLSA {s}": m for s, m in clsa_maps(model, images, batch_size).items()})
    return maps


# --------------------------------------------------------------------------- per-image scores
def map_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per image, the Pearson correlation between two ``(B, H, W)`` stacks of maps (0 for a flat map)."""
    values = []
    for x, y in zip(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)):
        x, y = x.ravel() - x.mean(), y.ravel() - y.mean()
        denominator = np.sqrt((x * x).sum() * (y * y).sum())
        values.append(float((x * y).sum() / denominator) if denominator > 0 else 0.0)
    return np.array(values)


def map_peaks(cam: np.ndarray, radius: Optional[int] = None) -> List[Tuple[float, float]]:
    """``(row, col)`` of each peak of one ``(H, W)`` map: local maxima over a ``(2 radius + 1)`` square
    window that reach :data:`PEAK_FRACTION` of the map's maximum. A flat top (several neighbouring
    pixels at the same maximum) is one peak, at its centre. An all-zero map has no peak.
    ``radius`` defaults to :data:`PEAK_RADIUS_FRACTION` of the image side (at least one pixel)."""
    from scipy import ndimage

    cam = np.asarray(cam, dtype=np.float64)
    if cam.ndim != 2:
        raise ValueError(f"a map must be (H, W); got shape {cam.shape}")
    top = float(cam.max()) if cam.size else 0.0
    if top <= 0:
        return []
    if radius is None:
        radius = max(1, int(round(min(cam.shape) * PEAK_RADIUS_FRACTION)))
    local_max = cam >= ndimage.maximum_filter(cam, size=2 * radius + 1, mode="nearest")
    mask = local_max & (cam >= PEAK_FRACTION * top)
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        return []
    centres = ndimage.center_of_mass(mask, labels, range(1, count + 1))
    return [(float(r), float(c)) for r, c in centres]


def _inside(point: Tuple[float, float], box: Box) -> bool:
    row, col = point
    x, y, w, h = box
    return x <= col + 0.5 <= x + w and y <= row + 0.5 <= y + h   # pixel centre inside the box


def parts_reached(cam: np.ndarray, boxes: Mapping[str, Box], radius: Optional[int] = None) -> List[str]:
    """The annotated parts that the map's peaks (:func:`map_peaks`) fall on, each named once. A peak
    inside several overlapping part boxes reaches the smallest of them only (the most specific part)."""
    reached = []
    for peak in map_peaks(cam, radius):
        holding = [(w * h, name) for name, (x, y, w, h) in boxes.items() if _inside(peak, (x, y, w, h))]
        if holding:
            name = min(holding)[1]
            if name not in reached:
                reached.append(name)
    return reached


def part_diversity(cams: np.ndarray, parts: Sequence[Mapping[str, Box]], radius: Optional[int] = None) -> np.ndarray:
    """Per image, the percentage of its annotated parts that the map's peaks fall on (0-100).

    Our measure of Figure 6's "more diverse local information": a map that picks out several distinct
    parts (beak, wing, tail, ...) scores higher than a map with one salient blob, and a flat map
    (no peak) scores 0. ``cams`` is ``(B, H, W)``; ``parts`` gives per image ``{part: (x, y, w, h)}``
    in the same pixels (:func:`part_boxes`). An image without part boxes scores NaN."""
    cams = np.asarray(cams)
    if cams.ndim != 3 or len(parts) != cams.shape[0]:
        raise ValueError(f"cams must be (B, H, W) with one part-box mapping per map; got {cams.shape} and "
                         f"{len(parts)} mappings")
    return np.array([100.0 * len(parts_reached(cam, boxes, radius)) / len(boxes) if boxes else float("nan")
                     for cam, boxes in zip(cams, parts)])


def part_boxes(dataset, sample) -> Optional[List[Dict[str, Box]]]:
    """Every annotated part box (not only the discriminative ones) of each image of ``sample``, in the
    sample's pixels; ``None`` when the dataset has no part boxes (only the synthetic set writes them)."""
    from ..data.transforms import scale_box

    size = (int(sample.images.shape[-1]), int(sample.images.shape[-2]))
    boxes = []
    for index in sample.indices:
        note = dataset.annotation(index)
        found = note.get("part_boxes")
        if not found:
            return None
        boxes.append({name: scale_box(box, note["image_size"], size) for name, box in found.items()})
    return boxes


def score_maps(models: Mapping[str, List], stages: Sequence[str], sample,
               parts: Optional[Sequence[Mapping[str, Box]]] = None,
               batch_size: Optional[int] = None) -> Dict[str, Dict[int, np.ndarray]]:
    """Per-image scores of every map of every model and seed, in percent: ``{"<model>: <map>: <metric>":
    {seed: (B,) array}}`` (the images of ``sample``, in its order, for every seed), plus ``"<model>:
    top/mid Grad-CAM correlation"`` (x100). ``models`` maps a label to its runs (objects with ``.seed``
    and ``.model``). With ``parts`` (:func:`part_boxes`) every map also gets ``part_diversity``. Each
    model's maps are computed on its device, ``batch_size`` images at a time (module docstring)."""
    from ..localization import score_cams

    top, mid = stages[:2]
    scores: Dict[str, Dict[int, np.ndarray]] = {}
    for label, runs in models.items():
        for run in runs:
            maps = model_maps(run.model, sample.images, sample.labels, stages, batch_size)
            for name, m in maps.items():
                metrics = {k: 100.0 * v for k, v in score_cams(m, sample, per_image=True).items()}
                if parts is not None:
                    metrics[DIVERSITY] = part_diversity(m, parts)
                for metric, values in metrics.items():
                    scores.setdefault(f"{label}: {name}: {metric}", {})[run.seed] = values
            scores.setdefault(f"{label}: top/mid Grad-CAM correlation", {})[run.seed] = \
                100.0 * map_correlation(maps[f"{top} Grad-CAM"], maps[f"{mid} Grad-CAM"])
    return scores


def map_figure(models: Mapping[str, object], stages: Sequence[str], sample, kind: str,
               batch_size: Optional[int] = None):
    """Figure 4 (``kind="activation"``), 5 (``"Grad-CAM"``) or 6 (``"CLSA"``): one row per image,
    one column per model and layer. ``models`` maps a label to one trained model (maps computed on its
    device, ``batch_size`` images at a time)."""
    from ..cam import cam_grid
    from ..data.transforms import denormalize

    if kind not in MAP_KINDS:
        raise ValueError(f"kind must be one of {', '.join(MAP_KINDS)}; got {kind!r}")
    columns = {}
    for label, model in models.items():
        if kind == "activation":
            maps = activation_maps(model, sample.images, stages, batch_size)
        elif kind == "Grad-CAM":
            maps = gradcam_maps(model, sample.images, sample.labels, stages, batch_size)
        else:
            maps = clsa_maps(model, sample.images, batch_size)
        for stage, m in maps.items():
            columns[f"{label}{' CLSA' if kind == 'CLSA' else ''}\n{stage}"] = m
    return cam_grid(sample.images, columns, titles=sample.titles, boxes=sample.first_part_boxes(),
                    denormalize=denormalize)


def diversity_view(df, decimals: int = 1):
    """The ``part_diversity`` rows of a scores table (results format) read side by side: one line per
    map, the mean over seeds of the per-image percentages, their std over seeds and the seeds."""
    rows = df[df["metric"] == DIVERSITY].set_index("row")[["reproduced", "std", "n_seeds"]]
    return rows.rename(columns={"reproduced": f"{DIVERSITY} %", "std": "std over seeds"}).round(decimals)
