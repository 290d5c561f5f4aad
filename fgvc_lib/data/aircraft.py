"""Reader for FGVC-Aircraft: torchvision's ``FGVCAircraft`` behind the study's common dataset API.

Dataset: S. Maji, E. Rahtu, J. Kannala, M. Blaschko, A. Vedaldi, "Fine-Grained Visual
Classification of Aircraft", arXiv:1306.5151, 2013 (release fgvc-aircraft-2013b). 10,000 images of
100 variants; used by the CRA/SMRA paper (Sec. 4.1, Table 1) and CLAN (Sec. 4, "Datasets": "6k
training images", i.e. the official ``trainval`` list of 6,667 images, Table 6). No paper equation
is implemented here.

Split convention: this class takes torchvision's four official splits (``train`` 3,334, ``val``
3,333, ``trainval`` 6,667, ``test`` 3,333) literally. :func:`fgvc_lib.data.build_dataset` maps the
study-wide ``"train"`` to ``"trainval"``, as the papers do, unless asked otherwise.

torchvision (checked against 0.29.1) reads this layout under ``root``::

    fgvc-aircraft-2013b/data/variants.txt                  one class name per line (also families.txt,
                                                           manufacturers.txt for the coarser levels)
    fgvc-aircraft-2013b/data/images_variant_<split>.txt    <image_name> <class name with spaces>
    fgvc-aircraft-2013b/data/images_box.txt                <image_name> xmin ymin xmax ymax (optional)
    fgvc-aircraft-2013b/data/images/<image_name>.jpg

``root`` may be the folder containing ``fgvc-aircraft-2013b/`` or that folder itself.

Copyright banner: every FGVC-Aircraft image carries a 20-pixel copyright strip along its bottom
edge. Many FGVC papers crop it away before resizing; set ``crop_banner=True`` to do so (the
reported ``image_size`` and the box then refer to the cropped image). The default keeps the full
image, which is what torchvision returns.

Boxes are converted from corners to ``(x, y, w, h)`` with ``x = xmin, y = ymin, w = xmax - xmin,
h = ymax - ymin``.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from .images import ImageListDataset, load_rgb, require_path, resolve_torchvision_root

__all__ = ["FGVCAircraft", "AIRCRAFT_LAYOUT", "AIRCRAFT_SPLITS", "AIRCRAFT_LEVELS", "BANNER_HEIGHT"]

AIRCRAFT_SPLITS = ("train", "val", "trainval", "test")
AIRCRAFT_LEVELS = ("variant", "family", "manufacturer")
#: height in pixels of the copyright strip at the bottom of every FGVC-Aircraft image
BANNER_HEIGHT = 20

_FOLDER = "fgvc-aircraft-2013b"
_CLASS_FILE = {"variant": "variants.txt", "family": "families.txt", "manufacturer": "manufacturers.txt"}

AIRCRAFT_LAYOUT = """\
  <root>/                                         (or pass <root>/fgvc-aircraft-2013b itself)
    fgvc-aircraft-2013b/data/variants.txt              class names, one per line
    fgvc-aircraft-2013b/data/images_variant_train.txt  <image_name> <class name>  (also _val,
                                                       _trainval, _test; family/manufacturer too)
    fgvc-aircraft-2013b/data/images_box.txt            <image_name> xmin ymin xmax ymax (optional)
    fgvc-aircraft-2013b/data/images/<image_name>.jpg
Get fgvc-aircraft-2013b.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ and
extract it under your data root."""


class FGVCAircraft(ImageListDataset):
    """FGVC-Aircraft via ``torchvision.datasets.FGVCAircraft``.

    ``split`` in ``("train", "val", "trainval", "test")`` (taken literally, see the module note),
    ``annotation_level`` in ``("variant", "family", "manufacturer")`` (100 / 70 / 30 classes),
    ``crop_banner`` removes the 20-pixel copyright strip at the bottom of each image.
    """

    dataset_name = "FGVC-Aircraft"
    layout = AIRCRAFT_LAYOUT

    def __init__(self, root, split: str = "trainval", transform=None, annotation_level: str = "variant",
                 crop_banner: bool = False) -> None:
        if split not in AIRCRAFT_SPLITS:
            raise ValueError(f"unknown split {split!r} for {self.dataset_name}; valid splits: {list(AIRCRAFT_SPLITS)}")
        if annotation_level not in AIRCRAFT_LEVELS:
            raise ValueError(
                f"unknown annotation_level {annotation_level!r} for {self.dataset_name}; "
                f"valid levels: {list(AIRCRAFT_LEVELS)}"
            )
        parent = self.resolve_root(root)
        base = parent / _FOLDER
        super().__init__(base, split, transform)
        self.annotation_level = annotation_level
        self.crop_banner = bool(crop_banner)
        data = base / "data"
        require_path(data, parent, self.dataset_name, self.layout, kind="folder")
        require_path(data / _CLASS_FILE[annotation_level], parent, self.dataset_name, self.layout)
        labels_file = require_path(data / f"images_{annotation_level}_{split}.txt", parent,
                                   self.dataset_name, self.layout)
        require_path(data / "images", parent, self.dataset_name, self.layout, kind="folder")

        from torchvision.datasets import FGVCAircraft as _TorchvisionAircraft

        try:
            tv = _TorchvisionAircraft(str(parent), split=split, annotation_level=annotation_level,
                                      download=False, loader=load_rgb)
        except KeyError as exc:
            raise ValueError(
                f"{labels_file} names class {exc.args[0]!r}, which {data / _CLASS_FILE[annotation_level]} "
                "does not list"
            ) from exc
        except ValueError as exc:
            raise ValueError(f"{labels_file}: a line is not '<image_name> <class name>' ({exc})") from exc
        self.classes = list(tv.classes)
        self.samples = [(str(path), int(label)) for path, label in zip(tv._image_files, tv._labels)]
        self.targets = [label for _, label in self.samples]
        if self.samples:
            require_path(Path(self.samples[0][0]), parent, self.dataset_name,
                         self.layout + f"\n({labels_file.name} lists this image but data/images/ does not hold it)")
        self._boxes = self._read_boxes(data / "images_box.txt")

    @classmethod
    def resolve_root(cls, root) -> Path:
        """Return the folder that contains ``fgvc-aircraft-2013b/`` (what torchvision takes as root)."""
        return resolve_torchvision_root(root, _FOLDER, "data/variants.txt", cls.dataset_name, cls.layout)

    @staticmethod
    def _read_boxes(path: Path) -> dict[str, tuple[float, float, float, float]]:
        boxes: dict[str, tuple[float, float, float, float]] = {}
        if not path.is_file():
            return boxes
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 5:
                    raise ValueError(f"{path}: line {line_no} should be '<image_name> xmin ymin xmax ymax': {line!r}")
                try:
                    xmin, ymin, xmax, ymax = (float(v) for v in fields[1:])
                except ValueError:
                    raise ValueError(f"{path}: line {line_no} has non-numeric box coordinates: {line!r}") from None
                boxes[fields[0]] = (xmin, ymin, xmax - xmin, ymax - ymin)
        return boxes

    @property
    def has_boxes(self) -> bool:
        return bool(self._boxes)

    def load_image(self, index: int) -> Image.Image:
        """The ``index``-th image in RGB, without its bottom banner when ``crop_banner`` is set."""
        image = super().load_image(index)
        if self.crop_banner:
            width, height = image.size
            if height > BANNER_HEIGHT:
                image = image.crop((0, 0, width, height - BANNER_HEIGHT))
        return image

    def annotation(self, index: int) -> dict:
        """``image_size`` (w, h) and, when data/images_box.txt exists, ``box`` (x, y, w, h)."""
        index = self._check_index(index)
        result = super().annotation(index)
        width, height = result["image_size"]
        if self.crop_banner and height > BANNER_HEIGHT:
            height -= BANNER_HEIGHT
            result["image_size"] = (width, height)
        box = self._boxes.get(Path(self.samples[index][0]).stem)
        if box is not None:
            if self.crop_banner:
                x, y, w, h = box
                y = min(y, float(height))
                box = (x, y, w, max(0.0, min(y + h, float(height)) - y))
            result["box"] = box
        return result
