"""Reader for Stanford Dogs in its official on-disk layout.

Dataset: A. Khosla, N. Jayadevaprakash, B. Yao, L. Fei-Fei, "Novel Dataset for Fine-Grained Image
Categorization", CVPR Workshop on Fine-Grained Visual Categorization, 2011. 120 breeds, 12,000
train / 8,580 test images; used by the CRA/SMRA paper (Sec. 4.1, Table 1). No paper equation is
implemented here.

Layout expected under ``root``::

    Images/<wnid>-<breed>/<wnid>_<n>.jpg
    Annotation/<wnid>-<breed>/<wnid>_<n>     PASCAL-VOC style XML, no file extension
    lists/train_list.mat, lists/test_list.mat (the archive lists.tar puts them directly under
                                              root; both places are accepted)

Each list .mat holds ``file_list`` (paths relative to Images/), ``annotation_list`` (paths relative
to Annotation/) and ``labels`` (1-based class numbers). Class ``k`` (0-based) is the ``k``-th breed
folder of ``Images/`` in sorted order; the reader checks that every listed file agrees with that.

Boxes: the ``bndbox`` of the first ``<object>`` of an image's XML, returned as ``(x, y, w, h)`` with
``x = xmin, y = ymin, w = xmax - xmin, h = ymax - ymin`` (the same rule the Cars and Aircraft
readers use for their corner boxes). XML files are parsed lazily and cached.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .images import ImageListDataset, require_path, require_root

__all__ = ["StanfordDogs", "DOGS_LAYOUT", "DOGS_SPLITS"]

DOGS_SPLITS = ("train", "test")

DOGS_LAYOUT = """\
  <root>/
    Images/<wnid>-<breed>/<image>.jpg
    Annotation/<wnid>-<breed>/<image>      (PASCAL-VOC XML without extension)
    lists/train_list.mat, lists/test_list.mat   (or directly <root>/train_list.mat, test_list.mat)
      keys: file_list, annotation_list, labels (1-based)
Get images.tar, annotation.tar and lists.tar from http://vision.stanford.edu/aditya86/ImageNetDogs/
and extract all three into the same folder."""


def _strings(array) -> list[str]:
    """Flatten a MATLAB cell array of strings as returned by ``scipy.io.loadmat``."""
    out = []
    for item in np.atleast_1d(np.asarray(array, dtype=object)).ravel():
        while isinstance(item, np.ndarray):
            item = item.ravel()[0] if item.size else ""
        out.append(str(item))
    return out


class StanfordDogs(ImageListDataset):
    """Stanford Dogs (official layout), ``split`` in ``("train", "test")``.

    ``classes`` are breed names (``"Chihuahua"``); ``wnids`` and ``folders`` give the WordNet ids
    and folder names in the same order.
    """

    dataset_name = "Stanford Dogs"
    layout = DOGS_LAYOUT

    def __init__(self, root, split: str = "train", transform=None) -> None:
        if split not in DOGS_SPLITS:
            raise ValueError(f"unknown split {split!r} for {self.dataset_name}; valid splits: {list(DOGS_SPLITS)}")
        root = Path(root).expanduser()
        require_root(root, self.dataset_name, self.layout)
        super().__init__(root, split, transform)
        images_dir = require_path(root / "Images", root, self.dataset_name, self.layout, kind="folder")
        self._annotation_dir = root / "Annotation"
        list_file = root / "lists" / f"{split}_list.mat"
        if not list_file.is_file() and (root / f"{split}_list.mat").is_file():
            list_file = root / f"{split}_list.mat"
        require_path(list_file, root, self.dataset_name, self.layout)

        self.folders = sorted(p.name for p in images_dir.iterdir() if p.is_dir())
        if not self.folders:
            raise ValueError(f"{self.dataset_name}: {images_dir} holds no breed folders")
        self.wnids = [f.split("-", 1)[0] for f in self.folders]
        self.classes = [f.split("-", 1)[1] if "-" in f else f for f in self.folders]

        files, annotations, labels = self._read_list(list_file)
        self._annotation_files = []
        for rel, ann, label in zip(files, annotations, labels):
            if not 0 <= label < len(self.folders):
                raise ValueError(
                    f"{list_file}: label {label + 1} of {rel!r} is outside 1..{len(self.folders)} "
                    f"(the number of breed folders in {images_dir})"
                )
            folder = rel.replace("\\", "/").split("/", 1)[0]
            if folder != self.folders[label]:
                raise ValueError(
                    f"{list_file}: {rel!r} has label {label + 1}, but breed folder number {label + 1} "
                    f"of {images_dir} (sorted) is {self.folders[label]!r}. Images/ is incomplete or "
                    "the list does not belong to this copy of the dataset."
                )
            self.samples.append((str(images_dir / rel), label))
            self.targets.append(label)
            self._annotation_files.append(str(self._annotation_dir / ann))
        if self.samples:
            require_path(Path(self.samples[0][0]), root, self.dataset_name,
                         self.layout + "\n(the list names this image but Images/ does not hold it)")
        self._box_cache: dict[int, tuple[float, float, float, float] | None] = {}

    @staticmethod
    def _read_list(path: Path) -> tuple[list[str], list[str], list[int]]:
        import scipy.io as sio

        try:
            mat = sio.loadmat(str(path), squeeze_me=True)
        except Exception as exc:  # scipy raises several types for a bad file
            raise ValueError(f"cannot read Stanford Dogs list {path}: {exc}") from exc
        missing = [k for k in ("file_list", "annotation_list", "labels") if k not in mat]
        if missing:
            raise ValueError(
                f"{path} lacks the key(s) {missing}; a Stanford Dogs list holds file_list, "
                "annotation_list and labels"
            )
        files = _strings(mat["file_list"])
        annotations = _strings(mat["annotation_list"])
        labels = [int(v) - 1 for v in np.atleast_1d(mat["labels"]).ravel()]
        if not len(files) == len(annotations) == len(labels):
            raise ValueError(
                f"{path}: file_list ({len(files)}), annotation_list ({len(annotations)}) and labels "
                f"({len(labels)}) differ in length"
            )
        return files, annotations, labels

    def box(self, index: int) -> tuple[float, float, float, float] | None:
        """``(x, y, w, h)`` of the first object in the image's XML, or None without an XML file."""
        index = self._check_index(index)
        if index not in self._box_cache:
            self._box_cache[index] = self._parse_box(self._annotation_files[index])
        return self._box_cache[index]

    @staticmethod
    def _parse_box(path: str) -> tuple[float, float, float, float] | None:
        if not Path(path).is_file():
            return None
        try:
            tree = ET.parse(path)
        except ET.ParseError as exc:
            raise ValueError(f"cannot parse Stanford Dogs annotation {path!r} as XML: {exc}") from exc
        box = tree.getroot().find("object/bndbox")
        if box is None:
            return None
        try:
            xmin, ymin, xmax, ymax = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path!r}: bndbox needs numeric xmin, ymin, xmax, ymax") from exc
        return (xmin, ymin, xmax - xmin, ymax - ymin)

    def annotation(self, index: int) -> dict:
        """``image_size`` (w, h) and, when the XML exists, ``box`` (x, y, w, h)."""
        result = super().annotation(index)
        box = self.box(index)
        if box is not None:
            result["box"] = box
        return result
