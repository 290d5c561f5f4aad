"""Reader for Stanford Cars: torchvision's ``StanfordCars`` behind the study's common dataset API.

Dataset: J. Krause, M. Stark, J. Deng, L. Fei-Fei, "3D Object Representations for Fine-Grained
Categorization", 3dRR workshop, ICCV 2013. 196 classes, 8,144 train / 8,041 test images; used by
the CRA/SMRA paper (Sec. 4.1, Table 1) and CLAN (Sec. 4, "Datasets", Table 6). No paper equation is
implemented here.

torchvision (checked against 0.29.1) reads this layout under ``root``::

    stanford_cars/devkit/cars_meta.mat              class_names (196 strings)
    stanford_cars/devkit/cars_train_annos.mat        annotations: bbox_x1, bbox_y1, bbox_x2, bbox_y2,
                                                     class (1-based), fname
    stanford_cars/cars_test_annos_withlabels.mat     the same fields for the test images
    stanford_cars/cars_train/<fname>.jpg
    stanford_cars/cars_test/<fname>.jpg

``root`` may be the folder containing ``stanford_cars/`` or ``stanford_cars/`` itself. The layout
is checked here first, so a missing file is reported by name instead of torchvision's generic
"Dataset not found". Nothing is ever downloaded.

Boxes come from the same annotation .mat, converted from corners to ``(x, y, w, h)`` with
``x = bbox_x1, y = bbox_y1, w = bbox_x2 - bbox_x1, h = bbox_y2 - bbox_y1``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .images import DatasetLayoutError, ImageListDataset, load_rgb, require_path, resolve_torchvision_root

__all__ = ["StanfordCars", "CARS_LAYOUT", "CARS_SPLITS"]

CARS_SPLITS = ("train", "test")

CARS_LAYOUT = """\
  <root>/                                   (or pass <root>/stanford_cars itself)
    stanford_cars/devkit/cars_meta.mat            class_names
    stanford_cars/devkit/cars_train_annos.mat     annotations(bbox_x1, bbox_y1, bbox_x2, bbox_y2, class, fname)
    stanford_cars/cars_test_annos_withlabels.mat  same fields, test split (note: NOT inside devkit/)
    stanford_cars/cars_train/<fname>.jpg
    stanford_cars/cars_test/<fname>.jpg
The original download site is offline; torchvision's StanfordCars documentation lists mirrors
(e.g. the Kaggle copy). Arrange the files as above (torchvision >= 0.16 layout)."""

_FOLDER = "stanford_cars"


class StanfordCars(ImageListDataset):
    """Stanford Cars via ``torchvision.datasets.StanfordCars``, ``split`` in ``("train", "test")``."""

    dataset_name = "Stanford Cars"
    layout = CARS_LAYOUT

    def __init__(self, root, split: str = "train", transform=None) -> None:
        if split not in CARS_SPLITS:
            raise ValueError(f"unknown split {split!r} for {self.dataset_name}; valid splits: {list(CARS_SPLITS)}")
        parent = self.resolve_root(root)
        base = parent / _FOLDER
        super().__init__(base, split, transform)
        devkit = base / "devkit"
        require_path(devkit / "cars_meta.mat", parent, self.dataset_name, self.layout)
        if split == "train":
            annos, images_dir = devkit / "cars_train_annos.mat", base / "cars_train"
        else:
            annos, images_dir = base / "cars_test_annos_withlabels.mat", base / "cars_test"
            misplaced = devkit / "cars_test_annos_withlabels.mat"
            if not annos.is_file() and misplaced.is_file():
                raise DatasetLayoutError(
                    f"{self.dataset_name}: found {str(misplaced)!r} but torchvision reads it from "
                    f"{str(annos)!r}; move (or symlink) it one folder up.\nExpected layout:\n{self.layout}"
                )
        require_path(annos, parent, self.dataset_name, self.layout)
        require_path(images_dir, parent, self.dataset_name, self.layout, kind="folder")

        from torchvision.datasets import StanfordCars as _TorchvisionCars

        try:
            tv = _TorchvisionCars(str(parent), split=split, download=False, loader=load_rgb)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{self.dataset_name}: torchvision could not read the devkit .mat files under {base} "
                f"({type(exc).__name__}: {exc}); they do not have the official structure.\n{self.layout}"
            ) from exc
        self.classes = [str(c) for c in tv.classes]
        self.samples = [(str(path), int(label)) for path, label in tv._samples]
        self.targets = [label for _, label in self.samples]
        bad = [label for label in self.targets if not 0 <= label < len(self.classes)]
        if bad:
            raise ValueError(
                f"{annos}: class {bad[0] + 1} is outside 1..{len(self.classes)} (cars_meta.mat lists "
                f"{len(self.classes)} classes)"
            )
        self._boxes = self._read_boxes(annos, [Path(p).name for p, _ in self.samples])
        if self.samples:
            require_path(Path(self.samples[0][0]), parent, self.dataset_name,
                         self.layout + "\n(the annotation file lists this image but it is not on disk)")

    @classmethod
    def resolve_root(cls, root) -> Path:
        """Return the folder that contains ``stanford_cars/`` (what torchvision takes as root)."""
        return resolve_torchvision_root(root, _FOLDER, "devkit", cls.dataset_name, cls.layout)

    @staticmethod
    def _read_boxes(annos: Path, fnames: list[str]) -> list[tuple[float, float, float, float] | None]:
        import scipy.io as sio

        records = np.atleast_1d(sio.loadmat(str(annos), squeeze_me=True)["annotations"]).ravel()
        fields = records.dtype.names or ()
        if not all(k in fields for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")):
            return [None] * len(fnames)
        if len(records) != len(fnames):
            raise ValueError(f"{annos}: {len(records)} annotations but torchvision read {len(fnames)} samples")
        boxes = []
        for record, fname in zip(records, fnames):
            if Path(str(record["fname"])).name != fname:
                raise ValueError(f"{annos}: annotation order differs from torchvision's ({record['fname']} vs {fname})")
            x1, y1, x2, y2 = (float(record[k]) for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"))
            boxes.append((x1, y1, x2 - x1, y2 - y1))
        return boxes

    def annotation(self, index: int) -> dict:
        """``image_size`` (w, h) and ``box`` (x, y, w, h) from the annotation .mat."""
        index = self._check_index(index)
        result = super().annotation(index)
        if self._boxes[index] is not None:
            result["box"] = self._boxes[index]
        return result
