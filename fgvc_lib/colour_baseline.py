"""A global-colour classifier: the control that shows the synthetic task is fine-grained.

Each image is reduced to its joint RGB colour histogram (``bins`` levels per channel, normalised),
and a multinomial logistic regression is fitted on the training split. If classes could be told
apart by their overall colours this would score well; on the synthetic dataset the part colours are
shared with the background clutter and body colours vary within a class, so it should stay near
chance while a CNN that finds the parts does far better.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch

from .linear_probe import linear_probe


def colour_histograms(dataset, bins: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, labels)``: one normalised ``bins**3`` RGB histogram per image of ``dataset``."""
    features, labels = [], []
    for index in range(len(dataset)):
        pixels = np.asarray(dataset.load_image(index), dtype=np.int64).reshape(-1, 3) * bins // 256
        codes = (pixels[:, 0] * bins + pixels[:, 1]) * bins + pixels[:, 2]
        histogram = np.bincount(codes, minlength=bins ** 3).astype(np.float32)
        features.append(histogram / histogram.sum())
        labels.append(dataset.targets[index])
    return torch.from_numpy(np.stack(features)), torch.tensor(labels)


def colour_histogram_accuracy(train_set, test_set, bins: int = 4, steps: int = 300,
                              weight_decay: float = 1e-3, seed: int = 0) -> Dict[str, float]:
    """Train and test accuracy of logistic regression on colour histograms (:func:`fgvc_lib.linear_probe.
    linear_probe`), and ``test_correct``: per test image, 100 if it is classified right, else 0."""
    x_train, y_train = colour_histograms(train_set, bins)
    x_test, y_test = colour_histograms(test_set, bins)
    return linear_probe(x_train, y_train, x_test, y_test, len(train_set.classes), steps, weight_decay, seed)
