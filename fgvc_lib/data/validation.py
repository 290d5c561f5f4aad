"""A validation split carved from a training split, for choosing a recipe without the test set.

No paper defines it; the protocol is Musgrave et al., "A Metric Learning Reality Check" (ECCV 2020):
hyper-parameters are chosen on data held out of the training set, with the same budget for every
method, and the test set is read once, at the end. :func:`validation_indices` holds out the same
share of every class (stratified), drawn with a fixed generator seed so that every run, arm and
process holds out the same images; :class:`DatasetPart` is one side of the split with the reader's
API (``classes``, ``targets``, ``samples``, ``load_image``, ``annotation``) re-indexed.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
from torch.utils.data import Dataset

VALIDATION_SEED = 0      # the split never depends on a run's seed: every arm is chosen on the same images


def check_share(share) -> float:
    """``share`` as a float in (0, 1), or a ValueError saying what is wrong."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 < float(share) < 1.0:
        raise ValueError(f"validation share must be a number strictly between 0 and 1; got {share!r}")
    return float(share)


def validation_indices(targets: Sequence[int], share: float, seed: int = VALIDATION_SEED) -> Tuple[List[int], List[int]]:
    """``(kept for training, held out)``: indices into ``targets``, each list ascending. Every class keeps
    at least one training image and gives ``round(share * its count)`` images (at least one when it
    has two or more) to the held-out part."""
    share = check_share(share)
    labels = np.asarray(list(targets))
    if labels.size == 0:
        raise ValueError("cannot carve a validation split out of an empty training split")
    rng = np.random.default_rng(seed)
    held: List[int] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(round(share * members.size))
        count = min(max(count, 1 if members.size > 1 else 0), members.size - 1)
        held.extend(int(i) for i in rng.permutation(members)[:count])
    held_set = set(held)
    kept = [i for i in range(labels.size) if i not in held_set]
    return kept, sorted(held)


class DatasetPart(Dataset):
    """The images ``indices`` of ``dataset``, with its reader API re-indexed (``classes`` unchanged)."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = list(indices)
        self.classes = dataset.classes
        self.targets = [dataset.targets[i] for i in self.indices]
        self.samples = [dataset.samples[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.dataset[self.indices[index]]

    def load_image(self, index: int):
        return self.dataset.load_image(self.indices[index])

    def annotation(self, index: int):
        return self.dataset.annotation(self.indices[index])

    def region_boxes(self, index: int, region: str):
        return self.dataset.region_boxes(self.indices[index], region)

    def crop_bounds(self, index: int, region=None):
        return self.dataset.crop_bounds(self.indices[index], region)

    def __getattr__(self, name):
        # anything else of the reader (e.g. the synthetic set's discriminative_parts): not per image
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
