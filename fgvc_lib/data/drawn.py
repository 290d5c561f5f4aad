"""Training batches that do not depend on how many worker processes read them.

No paper equation is implemented here; this is the data pipeline's determinism contract (docs/DESIGN.md).
A torchvision pipeline draws its random crop and flip from torch's global generator when an image is
transformed. In the main process that is one image after the other, in the sampler's order; in worker
processes it would be each worker's own generator, so the batches would change with the worker count.
Here the main process makes every draw instead: :class:`DrawingSampler` yields ``(index, draw)`` pairs,
the draws taken from the global generator in the order the sampler yields the images, at the epoch's
first batch (the engine seeds that generator from the run's seed and the epoch), and :class:`DrawnDataset`
transforms image ``index`` with its ``draw`` wherever it runs. The images of an epoch get the crops and
flips they got when the main process transformed them one by one, for 0 workers or any other count.
(A model that draws from the global generator while it trains, such as a random patch choice, now
draws after the epoch's augmentations rather than between batches.)
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import torch
from torch.utils.data import Dataset, RandomSampler, Sampler

from .transforms import TrainTransform

__all__ = ["DrawingSampler", "DrawnDataset"]


class DrawingSampler(Sampler):
    """A shuffle of ``num_images`` images drawn from ``generator``, each index paired with its image's draw
    from ``transform`` (a :class:`TrainTransform`).

    Before each epoch's permutation the generator gives away one number: torch's DataLoader used to take
    it for its workers' base seed when the shuffle shared the loader's generator, and keeping it keeps
    every run's order the one it always had (the loader now gets a generator of its own, which persistent
    workers would not re-draw from every epoch)."""

    def __init__(self, num_images: int, generator: torch.Generator, transform: TrainTransform) -> None:
        self.num_images, self.generator, self.transform = int(num_images), generator, transform

    def __len__(self) -> int:
        return self.num_images

    def __iter__(self) -> Iterator[Tuple[int, Optional[bytes]]]:
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        order = list(RandomSampler(range(self.num_images), generator=self.generator))
        draws = [self.transform.draw() for _ in order]   # all at once: before any batch runs through a model
        return iter(zip(order, draws))


class DrawnDataset(Dataset):
    """``dataset`` read at ``(index, draw)`` pairs: image ``index`` transformed with ``draw``.

    ``transform`` is the dataset's own training transform (the object its readers call). An int index
    reads the image as the dataset would, drawing on the spot. Everything else of the reader
    (``classes``, ``targets``, ``samples``, ``annotation``, ...) is the dataset's."""

    def __init__(self, dataset, transform: TrainTransform) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        if isinstance(item, tuple):
            index, draw = item
            with self.transform.preset(draw):
                return self.dataset[index]
        return self.dataset[item]

    def __getattr__(self, name):
        if name in ("dataset", "transform"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"DrawnDataset({self.dataset!r})"
