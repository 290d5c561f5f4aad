"""Decoded-image cache: every image of a split decoded and resized once, its pixels kept in one file.

No paper equation is implemented here; it makes the paper profile's data as fast as a GPU consumes it
(issue 20). Decoding a ~500 x 375 JPEG and resizing it to 448 px costs a CPU core a few milliseconds per
image, every epoch; a run on one GPU then waits for its loader. :class:`DecodedImages` decodes each image of a
reader once with the transform's own resize step, stores the resized ``uint8`` RGB pixels one after the
other in ``<cache>/decoded/<key>.u8`` (a memory-mapped file: the page cache shares it between worker
processes and runs) with their shapes in ``<key>.json``, and :class:`DecodedDataset` serves those pixels to the
rest of the pipeline (random crop, flip, tensor, normalisation). The result is bit-identical to decoding
(a test checks it): the resize is deterministic, and the steps after it see the same ``PIL.Image``.

The key hashes the reader's class and settings (root, split, options), every image's path, size and
modification time, the resize step and the versions of Pillow and torchvision, so a changed file or another image size builds another cache. Building is locked (two runs
asking for the same cache: the second waits and reads the first's) and atomic (a killed build leaves none).
Readers that crop to a region or add a mask channel (``crop``, ``mask``) keep decoding: their images are
not the file's pixels resized.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..atomic import atomic_write_text, write_atomically
from ..locks import exclusive

__all__ = ["DecodedImages", "DecodedDataset", "can_cache"]


def can_cache(reader) -> bool:
    """Whether ``reader``'s images are its files' pixels (no region crop, no mask channel)."""
    return getattr(reader, "crop", None) is None and getattr(reader, "mask", None) is None


class _Resized(Dataset):
    """Image ``i`` of ``reader`` resized, as a ``uint8`` array (what the cache stores)."""

    def __init__(self, reader, resize) -> None:
        self.reader, self.resize = reader, resize

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(self.resize(self.reader.load_image(index)), dtype=np.uint8))


class DecodedImages:
    """The resized pixels of every image of ``reader`` (built on first use into ``folder``)."""

    def __init__(self, reader, resize, folder: os.PathLike, workers: int = 0) -> None:
        if not can_cache(reader):
            raise ValueError("a reader that crops to a region or adds a mask channel cannot use the decoded-image "
                             "cache: its images are not the files' pixels")
        self.key = cache_key(reader, resize)
        folder = Path(folder)
        self.pixels_path, self.index_path = folder / f"{self.key}.u8", folder / f"{self.key}.json"
        with exclusive(folder / f"{self.key}.lock"):
            if not self.index_path.is_file():
                for stale in folder.glob(f".{self.key}.*.tmp"):   # a build killed before its end (we hold the lock)
                    stale.unlink(missing_ok=True)
                _build(_Resized(reader, resize), self.pixels_path, self.index_path, workers)
        index = json.loads(self.index_path.read_text())
        self.shapes: List[Tuple[int, int]] = [tuple(s) for s in index["shapes"]]
        self.offsets = np.concatenate([[0], np.cumsum([h * w * 3 for h, w in self.shapes])]).astype(np.int64)
        if len(self.shapes) != len(reader) or self.pixels_path.stat().st_size != int(self.offsets[-1]):
            raise RuntimeError(f"decoded-image cache {self.pixels_path} does not match its index; delete "
                               f"{self.pixels_path} and {self.index_path} to rebuild it")
        self._pixels: Optional[np.memmap] = None   # opened in each process that reads (not pickled)

    def __len__(self) -> int:
        return len(self.shapes)

    def image(self, index: int) -> Image.Image:
        """Image ``index`` as its resized RGB ``PIL.Image``."""
        if self._pixels is None:
            self._pixels = np.memmap(self.pixels_path, dtype=np.uint8, mode="r")
        height, width = self.shapes[index]
        pixels = np.array(self._pixels[self.offsets[index]:self.offsets[index + 1]]).reshape(height, width, 3)
        return Image.fromarray(pixels, mode="RGB")

    def __getstate__(self):
        return {**self.__dict__, "_pixels": None}


def cache_key(reader, resize) -> str:
    """A hash of what the cached pixels depend on (module docstring)."""
    import PIL
    import torchvision

    files = []
    for path, _ in reader.samples:
        stat = os.stat(path)
        files.append((str(path), stat.st_size, stat.st_mtime_ns))
    # the reader's own settings (root, split, and options such as FGVC-Aircraft's crop_banner, which changes
    # what load_image returns), and the versions of the libraries that decode and resize
    settings = {name: value for name, value in sorted(vars(reader).items()) if not name.startswith("_")
                and isinstance(value, (str, int, float, bool, type(None)))}
    blob = json.dumps({"reader": type(reader).__qualname__, "root": str(getattr(reader, "root", "")),
                       "settings": settings, "files": files, "resize": repr(resize),
                       "versions": [PIL.__version__, torchvision.__version__]}, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _as_is(item):
    return item


def _build(resized: _Resized, pixels_path: Path, index_path: Path, workers: int) -> None:
    from tqdm import tqdm

    shapes: List[Tuple[int, int]] = []
    loader = DataLoader(resized, batch_size=None, shuffle=False, num_workers=workers, collate_fn=_as_is)

    def write(handle) -> None:
        for array in tqdm(loader, total=len(resized), desc=f"decoding {len(resized)} images once", mininterval=5.0):
            array = np.asarray(array, dtype=np.uint8)
            shapes.append(array.shape[:2])
            handle.write(array.tobytes())

    write_atomically(pixels_path, write, binary=True)
    atomic_write_text(index_path, json.dumps({"shapes": [list(map(int, s)) for s in shapes]}))


class DecodedDataset(Dataset):
    """``reader`` served from its :class:`DecodedImages`: ``(transform(resized image), label)``, where ``transform``
    is the reader's pipeline less its first (resize) step. Everything else of the reader is the reader's."""

    def __init__(self, reader, images: DecodedImages, transform) -> None:
        self.reader, self.images, self.transform = reader, images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = self.images.image(int(index))
        return (image if self.transform is None else self.transform(image)), self.reader.targets[int(index)]

    def __getattr__(self, name):
        if name in ("reader", "images", "transform"):
            raise AttributeError(name)
        return getattr(self.reader, name)
