"""How much an oracle's region alone says about the class: a linear probe on the region's mask.

Not from a paper: a check of notebook 00's positive controls. An oracle that crops to, or pools over, a
ground-truth region helps a network twice: it shows where the parts are, and, when the region's placement
or shape depends on the class, it tells the class outright. The discriminative parts differ between
classes and a part's box follows its shape, so the ``"parts"`` region carries the label; the
``"keypoints"`` and ``"head"`` regions (fixed squares around keypoints, :mod:`fgvc_lib.data.crops`) and the
``"head-box"`` (the square the head crop cuts from them) should not. The probe: each image's region mask, averaged over the cells of a ``grid`` x ``grid`` map (the map the
spatial oracle pools, :mod:`fgvc_lib.models.mask_pooling`), fed to logistic regression
(:func:`fgvc_lib.linear_probe.linear_probe`) trained on the training split and scored on the test split.
Near chance, the region tells where to look and not what to answer.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F

from .linear_probe import linear_probe
from .masks import union_mask


def region_masks(dataset, region: str, grid: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, labels)``: per image of ``dataset`` (a reader with :meth:`region_boxes`), the share of
    each cell of a ``grid`` x ``grid`` map covered by ``region``, flattened."""
    features = []
    for index in range(len(dataset)):
        width, height = dataset.annotation(index)["image_size"]
        mask = torch.from_numpy(union_mask((height, width), dataset.region_boxes(index, region)).astype(np.float32))
        features.append(F.adaptive_avg_pool2d(mask[None, None], (grid, grid)).flatten())
    return torch.stack(features), torch.tensor(list(dataset.targets))


def region_probe_accuracy(train_set, test_set, region: str, grid: int = 12, seed: int = 0) -> Dict[str, object]:
    """:func:`~fgvc_lib.linear_probe.linear_probe` on :func:`region_masks` of both splits."""
    x_train, y_train = region_masks(train_set, region, grid)
    x_test, y_test = region_masks(test_set, region, grid)
    return linear_probe(x_train, y_train, x_test, y_test, len(train_set.classes), seed=seed)
