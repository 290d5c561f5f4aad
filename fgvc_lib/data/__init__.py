"""Datasets by name: :func:`build_dataset` and :func:`build_loaders`.

The benchmarks of the five papers (CUB-200-2011 in all of them; Stanford Cars and FGVC-Aircraft in
CRA/SMRA Table 1 and CLAN Table 6; Stanford Dogs in CRA/SMRA Table 1) plus the embedded synthetic
set, each read from its official on-disk layout. No paper equation is implemented here.

Every dataset returned has the same API: indexing yields ``(image, label)`` (``image`` is whatever
``transform`` makes of an RGB ``PIL.Image``), and it exposes ``classes``, ``targets``, ``samples``
(``[(path, label)]``), ``load_image(i)`` (RGB ``PIL.Image``) and ``annotation(i)`` (a dict with
``image_size`` (w, h) and, where the dataset has them, ``box`` (x, y, w, h), ``parts``
{name: (x, y)} of visible parts and ``part_boxes`` {name: (x, y, w, h)}).

Split names: ``"train"`` and ``"test"`` everywhere. FGVC-Aircraft also accepts ``"val"`` and
``"trainval"``, and its ``"train"`` means the official ``trainval`` list (6,667 images) as in the
papers (CLAN Sec. 4: "6k training images"); pass ``paper_split=False`` to get the official
3,334-image ``train`` list instead.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.data import default_collate

from .aircraft import FGVCAircraft
from .cars import StanfordCars
from .cub import CUB200
from .dogs import StanfordDogs
from .drawn import DrawingSampler, DrawnDataset
from .images import (
    CorruptImageError,
    DatasetLayoutError,
    ImageListDataset,
    ImageLoadError,
    MissingImageError,
    load_rgb,
)
from .transforms import build_transforms, check_image_size, denormalize, scale_box
from .validation import DatasetPart, validation_indices

__all__ = [
    "DATASET_NAMES",
    "DATASET_LABELS",
    "DATASET_SPLITS",
    "DATASET_OPTIONS",
    "build_dataset",
    "build_loaders",
    "build_test_loader",
    "loader_options",
    "CUB200",
    "StanfordCars",
    "StanfordDogs",
    "FGVCAircraft",
    "ImageListDataset",
    "DatasetLayoutError",
    "ImageLoadError",
    "CorruptImageError",
    "MissingImageError",
    "load_rgb",
    "build_transforms",
    "denormalize",
    "scale_box",
    "check_image_size",
]

DATASET_NAMES = ("cub", "cars", "aircraft", "dogs", "synthetic")
#: the benchmarks' display names, as the papers print them in their tables' headers (a paper that spells one
#: differently keeps its own spelling, e.g. SSANet's "CUB-Birds")
DATASET_LABELS = {"cub": CUB200.dataset_name, "cars": StanfordCars.dataset_name,
                  "aircraft": FGVCAircraft.dataset_name, "dogs": StanfordDogs.dataset_name}

DATASET_SPLITS = {
    "cub": ("train", "test"),
    "cars": ("train", "test"),
    "aircraft": ("train", "test", "val", "trainval"),
    "dogs": ("train", "test"),
    "synthetic": ("train", "test"),
}

#: keyword options each dataset accepts in build_dataset (options whose value is None are ignored)
DATASET_OPTIONS = {
    "cub": ("crop", "crop_input_size", "mask"),
    "cars": (),
    "aircraft": ("annotation_level", "crop_banner", "paper_split"),
    "dogs": (),
    "synthetic": ("config", "crop", "crop_input_size", "mask"),
}


def build_dataset(name: str, root, split: str, transform=None, **options):
    """Build dataset ``name`` (one of :data:`DATASET_NAMES`) from ``root`` for ``split``.

    Options: aircraft ``annotation_level`` ("variant", 100 classes, default), ``crop_banner``
    (False), ``paper_split`` (True: "train" means trainval); synthetic ``config`` (a
    ``SyntheticConfig``); cub and synthetic ``crop`` ("object" | "parts": images cropped to the
    annotated region, :mod:`fgvc_lib.data.crops`), ``crop_input_size`` (the crop cut from the image
    first squashed to that many pixels: a zoom of the network's input) and ``mask`` ("object" |
    "parts": the region's mask as the image's fourth channel). Unknown names, splits or options raise with the valid choices listed.
    Nothing is ever downloaded.

    Synthetic data, by ``root`` and ``config``:

    * a folder and no ``config``: the dataset already in that folder (written by
      ``python -m fgvc_lib.data.synthetic --out ROOT ...`` or by an earlier call), read with the
      settings recorded in its ``synthetic.json``; a folder without a complete dataset of the
      current generator version raises ``fgvc_lib.data.synthetic.SyntheticDatasetError`` (a
      ``FileNotFoundError``) that says what is wrong and how to regenerate it;
    * a folder and a ``config``: that config's dataset, generated into the folder if it is missing
      or empty; a folder holding anything else (another config included) is an error;
    * ``root=None``: the dataset of ``config`` (default ``SyntheticConfig()``) in the cache folder,
      generated on first use.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in DATASET_SPLITS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {list(DATASET_NAMES)}")
    if split not in DATASET_SPLITS[key]:
        raise ValueError(f"unknown split {split!r} for dataset {key!r}; valid splits: {list(DATASET_SPLITS[key])}")
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(DATASET_OPTIONS[key]))
    if unknown:
        raise TypeError(
            f"dataset {key!r} does not take option(s) {unknown}; it accepts {list(DATASET_OPTIONS[key]) or 'none'}"
        )
    if key == "synthetic":
        from .synthetic import SyntheticConfig, SyntheticFGVC, ensure_synthetic, load_config

        config = options.get("config")
        if config is None and root is not None:
            # A folder given without a config is read with the settings it was written with (its
            # synthetic.json); one that holds no complete dataset raises SyntheticDatasetError.
            data_root = Path(root).expanduser().absolute()
            load_config(data_root)
        else:
            data_root = ensure_synthetic(root, config or SyntheticConfig())
        return SyntheticFGVC(data_root, split, transform, crop=options.get("crop"),
                             crop_input_size=options.get("crop_input_size"), mask=options.get("mask"))
    if root is None:
        raise ValueError(f"dataset {key!r} needs a data root (the folder holding the dataset); got None")
    if key == "cub":
        return CUB200(root, split, transform, crop=options.get("crop"),
                      crop_input_size=options.get("crop_input_size"), mask=options.get("mask"))
    if key == "cars":
        return StanfordCars(root, split, transform)
    if key == "dogs":
        return StanfordDogs(root, split, transform)
    paper_split = options.pop("paper_split", True)
    if split == "train" and paper_split:
        split = "trainval"
    return FGVCAircraft(root, split, transform, **options)


def _collate_contiguous(batch):
    """default_collate, then force contiguous NCHW images (see the channels_last hazard in the docs)."""
    images, targets = default_collate(batch)
    if isinstance(images, torch.Tensor):
        images = images.contiguous()
    return images, targets


def loader_options(num_workers: int = 0, pin_memory: bool = False) -> dict:
    """DataLoader keywords for ``num_workers`` worker processes: they stay alive from epoch to epoch
    and keep a few batches ready; ``pin_memory`` pins each batch for a fast, asynchronous copy to a GPU."""
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    options = {"num_workers": num_workers, "pin_memory": bool(pin_memory)}
    if num_workers > 0:   # torch's default prefetch (2 batches a worker): the batches wait in shared memory
        options.update(persistent_workers=True, prefetch_factor=2)
    return options


def build_loaders(dataset_name: str, root, image_size, batch_size: int, num_workers: int = 0, seed: int = 0,
                  pin_memory: bool = False, decoded_cache: bool = False, **options) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)`` for ``dataset_name`` with :func:`build_transforms` applied.

    The train loader shuffles with a generator seeded by ``seed`` (so two runs see the same order)
    and drops a last batch of a single image (it would break batch norm); the test loader keeps
    the dataset order. The random crops and flips are drawn in this process in the shuffled order
    (:mod:`fgvc_lib.data.drawn`), so the batches are the same for any ``num_workers``; ``pin_memory``
    and the worker options are :func:`loader_options`'. ``decoded_cache`` serves both splits from the
    decoded-image cache (:mod:`fgvc_lib.data.decoded_cache`; bit-identical images, decoded once) where the
    reader allows it. Transform options ``flip`` and ``resize_mode`` and loader option
    ``test_batch_size`` are taken from ``options``; the rest go to :func:`build_dataset`.
    ``validation`` (a share in (0, 1)) carves a validation split out of the training split
    (:mod:`fgvc_lib.data.validation`): the train loader reads the rest and the "test" loader the
    held-out images, so the test split is never read.
    """
    _check_batch_size(batch_size)
    flip = options.pop("flip", True)
    resize_mode = options.pop("resize_mode", "resize")
    test_batch_size = options.pop("test_batch_size", None) or batch_size
    validation = options.get("validation")
    dataset_options = {k: v for k, v in options.items() if k != "validation"}
    transform = build_transforms(image_size, train=True, flip=flip, resize_mode=resize_mode)
    train_set = build_dataset(dataset_name, root, "train", transform, **dataset_options)
    if len(train_set) == 0:
        raise ValueError(f"dataset {dataset_name!r} at {root!r} has no training images")
    if decoded_cache:
        train_set, transform = _from_decoded_cache(train_set, transform, num_workers)
    if validation is not None:
        train_set = DatasetPart(train_set, validation_indices(train_set.targets, validation)[0])
    shuffle, workers_seed = torch.Generator(), torch.Generator()   # the loader draws its workers' seed apart
    shuffle.manual_seed(int(seed))
    workers_seed.manual_seed(int(seed))
    workers = loader_options(num_workers, pin_memory)
    train_loader = DataLoader(
        DrawnDataset(train_set, transform), batch_size=batch_size,
        sampler=DrawingSampler(len(train_set), shuffle, transform), generator=workers_seed,
        drop_last=len(train_set) % batch_size == 1 and len(train_set) > 1, collate_fn=_collate_contiguous,
        **workers)
    test_loader = build_test_loader(dataset_name, root, image_size, test_batch_size, num_workers,
                                    resize_mode=resize_mode, pin_memory=pin_memory, decoded_cache=decoded_cache,
                                    **options)
    return train_loader, test_loader


def build_test_loader(dataset_name: str, root, image_size, batch_size: int, num_workers: int = 0,
                      view: str | None = None, pin_memory: bool = False, decoded_cache: bool = False,
                      **options) -> DataLoader:
    """The test split of ``dataset_name`` in dataset order, as :func:`build_loaders` reads it, or
    in another test ``view`` of its ``resize_mode`` (:data:`~fgvc_lib.data.transforms.TEST_VIEWS`).

    An uncropped view of a real dataset keeps each photograph's aspect ratio, so its images differ
    in size: they are read one at a time. The synthetic images are all square and keep ``batch_size``.
    """
    _check_batch_size(batch_size)
    options.pop("flip", None)
    options.pop("test_batch_size", None)
    resize_mode = options.pop("resize_mode", "resize")
    validation = options.pop("validation", None)
    transform = build_transforms(image_size, train=False, resize_mode=resize_mode, view=view)
    if validation is None:
        test_set = build_dataset(dataset_name, root, "test", transform, **options)
    else:   # the held-out part of the training split, seen as test images are
        test_set = build_dataset(dataset_name, root, "train", transform, **options)
    if decoded_cache:
        test_set, transform = _from_decoded_cache(test_set, transform, num_workers)
    if validation is not None:
        test_set = DatasetPart(test_set, validation_indices(test_set.targets, validation)[1])
    if view is not None and str(dataset_name).lower() != "synthetic":
        batch_size = 1
    return DataLoader(test_set, batch_size=batch_size, shuffle=False, collate_fn=_collate_contiguous,
                      **loader_options(num_workers, pin_memory))


def _from_decoded_cache(reader, transform, num_workers: int):
    """``(dataset, transform)``: ``reader`` served from the decoded-image cache, with the pipeline after its
    resize step; the reader as it is where its images cannot be cached (a region crop, a mask channel)."""
    from ..paths import cache_dir
    from .decoded_cache import DecodedDataset, DecodedImages, can_cache
    from .transforms import TrainTransform

    if not can_cache(reader):
        return reader, transform
    resize, rest = transform.transforms[0], transform.transforms[1:]
    rest = TrainTransform(rest) if isinstance(transform, TrainTransform) else type(transform)(rest)
    images = DecodedImages(reader, resize, cache_dir() / "decoded", workers=num_workers)
    return DecodedDataset(reader, images, rest), rest


def _check_batch_size(batch_size) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
