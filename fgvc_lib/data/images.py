"""Safe RGB image loading, the errors every dataset reader raises, and the readers' common base.

Not tied to any paper equation: this is the common plumbing behind the dataset readers used in all
five studies (CUB-200-2011, Stanford Cars, FGVC-Aircraft, Stanford Dogs, and the synthetic set).

Real FGVC datasets are not uniformly RGB. CUB-200-2011 holds a few grayscale JPEGs, Stanford Cars a
few CMYK ones, web-crawled sets carry palette or RGBA PNGs. Every reader calls :func:`load_rgb`, which
always returns a fully decoded 3-channel ``PIL.Image`` in mode ``"RGB"`` and turns any failure into
an error that names the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

__all__ = [
    "DatasetLayoutError",
    "ImageLoadError",
    "CorruptImageError",
    "MissingImageError",
    "load_rgb",
    "image_size",
    "require_path",
    "require_root",
    "ImageListDataset",
]


class DatasetLayoutError(FileNotFoundError):
    """A dataset root is missing, or lacks a file or folder its official layout requires."""


class ImageLoadError(OSError):
    """Base class: an image of a dataset could not be turned into an RGB picture."""


class CorruptImageError(ImageLoadError):
    """The file exists but is not a decodable image (truncated, corrupt, or not an image at all)."""


class MissingImageError(ImageLoadError, FileNotFoundError):
    """An image listed by the dataset's index files is not on disk."""


# Pixels under a fully transparent alpha are composited onto this background colour.
_ALPHA_BACKGROUND = (255, 255, 255)


def _open_checked(path: str) -> Image.Image:
    if not os.path.isfile(path):
        raise MissingImageError(
            f"image file not found: {path!r}. The dataset's index lists it, so the image folder is "
            "incomplete; re-extract the dataset archive."
        )
    try:
        image = Image.open(path)
        image.load()  # force full decoding now, so truncated files fail here and not in a worker
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptImageError(
            f"cannot decode image {path!r}: expected a readable JPEG/PNG image file "
            f"({type(exc).__name__}: {exc}). The file is corrupt or truncated; re-extract or "
            "re-download it."
        ) from exc
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _ALPHA_BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit / 32-bit single-channel images: rescale to 8 bits before replicating to 3 channels.
        array = np.asarray(image, dtype=np.float64)
        top = float(array.max()) if array.size else 0.0
        if top > 255.0:
            array = array * (255.0 / (65535.0 if top <= 65535.0 else top))
        gray = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode="L")
        return gray.convert("RGB")
    # "L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV": PIL knows the colour conversion.
    return image.convert("RGB")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Load ``path`` as a decoded ``PIL.Image`` in mode ``"RGB"``.

    Grayscale, 1-bit, palette, RGBA (composited on white), 16-bit and CMYK (including Adobe inverted
    CMYK JPEGs, which Pillow handles) images are converted. A missing file raises
    :class:`MissingImageError`; a file that cannot be decoded raises :class:`CorruptImageError`.
    Both subclass ``OSError`` and name the path.
    """
    path = os.fspath(path)
    image = _open_checked(path)
    try:
        rgb = _to_rgb(image)
    except (OSError, ValueError) as exc:
        raise CorruptImageError(
            f"cannot convert image {path!r} (mode {image.mode!r}) to RGB: {exc}"
        ) from exc
    if rgb is image:
        return rgb
    image.close()
    return rgb


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """Return ``(width, height)`` of an image by reading only its header."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingImageError(f"image file not found: {path!r}")
    try:
        with Image.open(path) as image:
            return tuple(image.size)  # type: ignore[return-value]
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptImageError(
            f"cannot read the header of image {path!r}: expected a readable image file ({exc})"
        ) from exc


def require_path(path: Path, root: Path, what: str, layout: str, kind: str = "file") -> Path:
    """Raise :class:`DatasetLayoutError` if ``path`` (a file or folder) does not exist.

    ``what`` names the dataset, ``layout`` describes its official layout and where to get it; both
    go into the message so the user knows how to fix the data root.
    """
    exists = path.is_dir() if kind == "folder" else path.is_file()
    if not exists:
        raise DatasetLayoutError(
            f"{what}: missing {kind} {str(path)!r} under dataset root {str(root)!r}.\n"
            f"Expected layout:\n{layout}"
        )
    return path


def require_root(root: Path, what: str, layout: str) -> Path:
    """Raise :class:`DatasetLayoutError` if the dataset root folder itself does not exist."""
    if not root.is_dir():
        raise DatasetLayoutError(
            f"{what}: dataset root {str(root)!r} does not exist or is not a folder.\n"
            f"Expected layout:\n{layout}"
        )
    return root


class ImageListDataset(Dataset):
    """Common behaviour of every reader: a list of ``(path, label)`` samples read with :func:`load_rgb`.

    Subclasses fill ``classes``, ``samples`` and ``targets`` and may override :meth:`load_image` and
    :meth:`annotation`. Indexing yields ``(transform(image), label)``; without a transform the image
    is the ``PIL.Image`` itself.
    """

    #: human-readable dataset name used in messages
    dataset_name = "dataset"

    def __init__(self, root, split: str, transform=None) -> None:
        self.root = Path(root)
        self.split = split
        self.transform = transform
        self.classes: list[str] = []
        self.samples: list[tuple[str, int]] = []
        self.targets: list[int] = []

    # -- torch Dataset protocol -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        index = self._check_index(index)
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    # -- common API ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def load_image(self, index: int) -> Image.Image:
        """The ``index``-th image as a decoded RGB ``PIL.Image`` (no transform applied)."""
        return load_rgb(self.samples[self._check_index(index)][0])

    def annotation(self, index: int) -> dict:
        """Annotations of the ``index``-th image; the base class knows only ``image_size`` (w, h)."""
        return {"image_size": image_size(self.samples[self._check_index(index)][0])}

    def _check_index(self, index: int) -> int:
        n = len(self.samples)
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"{self.dataset_name} index must be an int, got {type(index).__name__}")
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"{self.dataset_name} index {index} out of range for {n} samples")
        return index

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
            f"samples={len(self)}, classes={len(self.classes)})"
        )


def resolve_torchvision_root(root, folder: str, marker: str, what: str, layout: str) -> Path:
    """The parent of ``folder`` (what torchvision's dataset classes take as root).

    Accepts the parent itself or the dataset folder (recognised by ``marker``, a path inside it)
    when it carries torchvision's expected name; a renamed dataset folder gets a rename hint."""
    root = Path(root).expanduser()
    require_root(root, what, layout)
    if (root / folder).is_dir():
        return root
    if (root / marker).exists():
        if root.name == folder:
            return root.parent
        raise DatasetLayoutError(
            f"{what}: {str(root)!r} looks like the dataset folder itself but torchvision requires it "
            f"to be named {folder!r}; rename it or symlink it as {str(root.parent / folder)!r}.\n"
            f"Expected layout:\n{layout}")
    require_path(root / folder, root, what, layout, kind="folder")
    return root  # unreachable: require_path raised

