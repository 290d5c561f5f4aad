"""Does a model look at the part that tells the classes apart? CAM scores against ground truth.

None of the papers can measure this: their datasets have no label for *which* part separates two
classes. The embedded synthetic dataset records it (``discriminative_parts`` per class, a tight box
per drawn part), so a Grad-CAM map (Selvaraju et al., ICCV 2017, through :mod:`fgvc_lib.cam`) can be
scored with the pointing game (is the map's peak inside a discriminative part's box?) and the share
of the map's energy inside those boxes, beside the same scores for the whole object box and the
chance level (the share of the image the boxes cover).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .cam import compute_cams
from .data.transforms import scale_box
from .masks import union_mask


@dataclass
class CamSample:
    """A fixed batch of test images with their boxes in the transformed image's pixels."""

    indices: List[int]
    images: torch.Tensor                    # (B, 3, H, W), normalised as the model expects
    labels: torch.Tensor                    # (B,)
    object_boxes: np.ndarray                # (B, 4) x, y, w, h
    part_boxes: List[List[Sequence[float]]]  # per image: boxes of the discriminative parts (may be empty)
    titles: List[str]

    @property
    def has_parts(self) -> bool:
        return any(self.part_boxes)

    def first_part_boxes(self) -> Optional[np.ndarray]:
        """One discriminative part box per image (for drawing), or None when there is none."""
        if not all(self.part_boxes):
            return None
        return np.array([boxes[0] for boxes in self.part_boxes], dtype=np.float64)


def cam_sample(dataset, n: int, per_class: int = 1) -> CamSample:
    """``n`` test images spread over the classes (the first ``per_class`` of each class in turn)."""
    if n < 1:
        raise ValueError(f"n must be at least 1; got {n}")
    by_class: Dict[int, List[int]] = {}
    for index, label in enumerate(dataset.targets):
        by_class.setdefault(int(label), []).append(index)
    order: List[int] = []
    for rank in range(max(len(v) for v in by_class.values())):
        order.extend(v[rank] for _, v in sorted(by_class.items()) if rank < len(v))
        if rank + 1 >= per_class and len(order) >= n:
            break
    indices = order[:n]
    images, labels, objects, parts, titles = [], [], [], [], []
    for index in indices:
        image, label = dataset[index]
        size = (image.shape[-1], image.shape[-2])
        note = dataset.annotation(index)
        source = note["image_size"]
        objects.append(scale_box(note.get("box", (0, 0, *source)), source, size))
        names = dataset.discriminative_parts(label) if hasattr(dataset, "discriminative_parts") else []
        boxes = note.get("part_boxes", {})
        parts.append([scale_box(boxes[p], source, size) for p in names if p in boxes])
        title = dataset.classes[label]
        titles.append(title.split(".", 1)[-1][:22] + (f"\n({', '.join(names)})" if names else ""))
        images.append(image)
        labels.append(label)
    return CamSample(indices, torch.stack(images).contiguous(), torch.tensor(labels),
                     np.array(objects, dtype=np.float64), parts, titles)


def score_cams(cams: np.ndarray, sample: CamSample, per_image: bool = False) -> Dict[str, object]:
    """Pointing game and energy share for the discriminative parts and for the object, with chance:
    the mean over the sample's images, or with ``per_image`` an array of one score per image."""
    scores: Dict[str, List[float]] = {}
    for cam, object_box, part_boxes in zip(cams, sample.object_boxes, sample.part_boxes):
        peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
        total = float(cam.sum()) or 1.0
        regions = {"object": [object_box]}
        if sample.has_parts:
            regions["part"] = part_boxes
        for name, boxes in regions.items():
            mask = union_mask(cam.shape, boxes)
            scores.setdefault(f"{name}_pointing", []).append(float(cam.max() > 0 and mask[peak]))
            scores.setdefault(f"{name}_energy", []).append(float(cam[mask].sum()) / total)
            scores.setdefault(f"{name}_chance", []).append(float(mask.mean()))
    if per_image:
        return {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    return {k: float(np.mean(v)) for k, v in scores.items()}


def localize(model, sample: CamSample, branch: Optional[str] = None, target_layers=None,
             method: str = "gradcam", per_image: bool = False, batch_size: Optional[int] = None):
    """Grad-CAM maps of ``sample`` for the ground-truth classes, and their localization scores (means,
    or per image with ``per_image``, see :func:`score_cams`). The maps are computed on the model's
    device, ``batch_size`` images at a time (:func:`fgvc_lib.cam.view_batch_size`); the scores on the CPU."""
    cams = compute_cams(model, sample.images, target_layers=target_layers, branch=branch,
                        targets=sample.labels, method=method, batch_size=batch_size)
    return cams, score_cams(cams, sample, per_image=per_image)


# The scores of :func:`score_cams`, in the order tables show them.
LOCALIZATION_METRICS = ("part_pointing", "part_chance", "part_energy", "object_pointing", "object_chance",
                        "object_energy")


def localization_view(df, decimals: int = 1):
    """A localization results table read side by side: one line per map (and dataset), the scores'
    means over seeds (percent) in :data:`LOCALIZATION_METRICS` order, and the number of seeds."""
    keys = (["dataset"] if df["dataset"].nunique() > 1 else []) + ["row"]
    wide = df.pivot_table(index=keys, columns="metric", values="reproduced", sort=False).round(decimals)
    wide = wide[[m for m in LOCALIZATION_METRICS if m in wide.columns]]
    wide["n_seeds"] = df.groupby(keys, sort=False)["n_seeds"].first()
    return wide
