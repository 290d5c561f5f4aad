"""Reader for CUB-200-2011 in its official on-disk layout (also used by the synthetic set).

Dataset: C. Wah, S. Branson, P. Welinder, P. Perona, S. Belongie, "The Caltech-UCSD Birds-200-2011
Dataset", Caltech CNS-TR-2011-001. It is the main benchmark of all five papers in this study
(CRA-CNN, CRA/SMRA, CLAN Sec. 4 "Datasets", recurrent attention, SSANet); the standard split is
the official one in ``train_test_split.txt`` (5,994 train / 5,794 test images, 200 classes). No
paper equation is implemented here.

Layout expected under ``root`` (``root`` is the ``CUB_200_2011`` folder or its parent)::

    images.txt              <image_id> <relative/path.jpg>
    image_class_labels.txt  <image_id> <class_id>
    train_test_split.txt    <image_id> <1 for train, 0 for test>
    classes.txt             <class_id> <class_name>
    bounding_boxes.txt      <image_id> <x> <y> <width> <height>          (optional)
    parts/parts.txt         <part_id> <part name, may contain spaces>     (optional)
    parts/part_locs.txt     <image_id> <part_id> <x> <y> <visible 0/1>    (optional)
    parts/part_boxes.txt    <image_id> <part_id> <x> <y> <w> <h>          (optional extension)
    images/<class_folder>/<image>.jpg

Labels are 0-based: the ``k``-th smallest class id of ``classes.txt`` becomes label ``k``.
Coordinates are kept as written in the files (pixels of the original image, x to the right, y down).
``parts/part_boxes.txt`` is not part of the official release; the synthetic generator writes it to
give each part an extent, and it is read whenever present.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

from .images import ImageListDataset, require_path, require_root

__all__ = ["CUB200", "CUB_LAYOUT", "CUB_SPLITS"]

CUB_SPLITS = ("train", "test")

CUB_LAYOUT = """\
  <root>/                      the CUB_200_2011 folder, or a folder containing CUB_200_2011/
    images.txt                 <image_id> <relative/path.jpg>
    image_class_labels.txt     <image_id> <class_id>
    train_test_split.txt       <image_id> <1 = train, 0 = test>
    classes.txt                <class_id> <class_name>
    bounding_boxes.txt         <image_id> <x> <y> <width> <height>        (optional)
    parts/parts.txt            <part_id> <part name>                     (optional)
    parts/part_locs.txt        <image_id> <part_id> <x> <y> <visible>    (optional)
    parts/part_boxes.txt       <image_id> <part_id> <x> <y> <w> <h>      (optional extension)
    images/<class_folder>/<image>.jpg
Get CUB_200_2011.tgz from https://www.vision.caltech.edu/datasets/cub_200_2011/ and extract it
under your data root (or pass the synthetic dataset, which uses the same layout)."""

_REQUIRED_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")


def _read_rows(path: Path, min_fields: int, max_split: int | None = None) -> list[list[str]]:
    """Whitespace-separated rows of ``path``; blank lines are skipped, short rows are an error.

    ``max_split`` keeps the tail of a row in its last field (class or part names with spaces).
    """
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            fields = line.split(None, max_split) if max_split is not None else line.split()
            if len(fields) < min_fields:
                raise ValueError(
                    f"{path}: line {line_no} has {len(fields)} field(s), expected at least "
                    f"{min_fields}: {line!r}. The file is truncated or not in the CUB-200-2011 format."
                )
            rows.append(fields)
    return rows


def _number(text: str, path: Path, kind=float):
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{path}: expected a number, found {text!r}") from None


class CUB200(ImageListDataset):
    """CUB-200-2011 (official layout), ``split`` in ``("train", "test")``.

    Attributes beyond the common API: ``image_ids`` (the dataset's own 1-based ids of the samples),
    ``class_ids`` (the file's class ids, index = label), ``part_names`` (ordered by part id; empty
    when ``parts/parts.txt`` is absent), ``has_boxes``, ``has_parts``, ``has_part_boxes``.
    """

    dataset_name = "CUB-200-2011"
    layout = CUB_LAYOUT

    def __init__(self, root, split: str = "train", transform=None, crop: str | None = None,
                 crop_input_size: int | None = None, mask: str | None = None) -> None:
        from .crops import check_crop, check_crop_input_size

        self.crop = check_crop(crop)
        self.crop_input_size = check_crop_input_size(crop_input_size, self.crop)
        self.mask = check_crop(mask)
        if self.mask is not None and self.crop is not None:
            raise ValueError(f"mask={self.mask!r} marks a region of the whole image; it cannot be combined with "
                             f"crop={self.crop!r}")
        if split not in CUB_SPLITS:
            raise ValueError(f"unknown split {split!r} for {self.dataset_name}; valid splits: {list(CUB_SPLITS)}")
        base = self.resolve_root(root)
        super().__init__(base, split, transform)
        self._load_index()
        self._load_annotations()
        for option, region in (("crop", self.crop), ("mask", self.mask)):
            if region is not None and not self.has_boxes:
                raise ValueError(f"{option}={region!r} needs bounding_boxes.txt, which {base} does not have")
            if region in ("keypoints", "head", "head-box") and not self.has_parts:
                raise ValueError(f"{option}={region!r} needs the part keypoints (parts/part_locs.txt), which {base} "
                                 f"does not have")
            if region == "parts" and not hasattr(self, "discriminative_parts"):
                raise ValueError(f"{option}='parts' needs the discriminative parts of each class: synthetic data only")

    # -- layout --------------------------------------------------------------------------------
    @classmethod
    def resolve_root(cls, root) -> Path:
        """Return the folder that holds ``images.txt``: ``root`` itself or ``root/CUB_200_2011``."""
        root = Path(root).expanduser()
        require_root(root, cls.dataset_name, cls.layout)
        if (root / "images.txt").is_file():
            base = root
        elif (root / "CUB_200_2011" / "images.txt").is_file():
            base = root / "CUB_200_2011"
        else:
            base = root / "CUB_200_2011" if (root / "CUB_200_2011").is_dir() else root
        for name in _REQUIRED_FILES:
            require_path(base / name, root, cls.dataset_name, cls.layout)
        require_path(base / "images", root, cls.dataset_name, cls.layout, kind="folder")
        return base

    def _load_index(self) -> None:
        base = self.root
        paths = {int(_number(r[0], base / "images.txt", int)): r[1]
                 for r in _read_rows(base / "images.txt", 2, max_split=1)}
        labels_file = base / "image_class_labels.txt"
        class_of = {int(_number(r[0], labels_file, int)): int(_number(r[1], labels_file, int))
                    for r in _read_rows(labels_file, 2)}
        split_file = base / "train_test_split.txt"
        is_train = {int(_number(r[0], split_file, int)): int(_number(r[1], split_file, int))
                    for r in _read_rows(split_file, 2)}
        classes_file = base / "classes.txt"
        class_rows = sorted((int(_number(r[0], classes_file, int)), r[1])
                            for r in _read_rows(classes_file, 2, max_split=1))
        if not class_rows:
            raise ValueError(f"{classes_file} lists no classes")
        self.class_ids = [cid for cid, _ in class_rows]
        self.classes = [name for _, name in class_rows]
        label_of_class = {cid: k for k, cid in enumerate(self.class_ids)}

        want = 1 if self.split == "train" else 0
        self.image_ids, self.samples, self.targets = [], [], []
        for image_id in sorted(paths):
            if image_id not in class_of:
                raise ValueError(f"{labels_file} has no class for image id {image_id} ({paths[image_id]})")
            if image_id not in is_train:
                raise ValueError(f"{split_file} has no split entry for image id {image_id} ({paths[image_id]})")
            if class_of[image_id] not in label_of_class:
                raise ValueError(
                    f"{labels_file}: image id {image_id} has class id {class_of[image_id]}, "
                    f"which {classes_file} does not list"
                )
            if is_train[image_id] != want:
                continue
            label = label_of_class[class_of[image_id]]
            self.image_ids.append(image_id)
            self.samples.append((str(base / "images" / paths[image_id]), label))
            self.targets.append(label)
        if self.samples:
            first = Path(self.samples[0][0])
            require_path(first, base, self.dataset_name,
                         self.layout + "\n(images.txt lists this image but images/ does not hold it)")

    def _load_annotations(self) -> None:
        base = self.root
        wanted = set(self.image_ids)
        self._boxes: dict[int, tuple[float, float, float, float]] = {}
        self._parts: dict[int, dict[str, tuple[float, float]]] = {}
        self._part_boxes: dict[int, dict[str, tuple[float, float, float, float]]] = {}
        self.part_names: list[str] = []
        self.part_ids: list[int] = []

        box_file = base / "bounding_boxes.txt"
        self.has_boxes = box_file.is_file()
        if self.has_boxes:
            for r in _read_rows(box_file, 5):
                image_id = int(_number(r[0], box_file, int))
                if image_id in wanted:
                    self._boxes[image_id] = tuple(_number(v, box_file) for v in r[1:5])

        parts_file = base / "parts" / "parts.txt"
        if parts_file.is_file():
            part_rows = sorted((int(_number(r[0], parts_file, int)), r[1].strip())
                               for r in _read_rows(parts_file, 2, max_split=1))
            self.part_ids = [pid for pid, _ in part_rows]
            self.part_names = [name for _, name in part_rows]
        name_of_part = dict(zip(self.part_ids, self.part_names))

        locs_file = base / "parts" / "part_locs.txt"
        self.has_parts = bool(self.part_names) and locs_file.is_file()
        if self.has_parts:
            for r in _read_rows(locs_file, 5):
                image_id = int(_number(r[0], locs_file, int))
                if image_id not in wanted:
                    continue
                part = self._part_name(int(_number(r[1], locs_file, int)), name_of_part, locs_file)
                entry = self._parts.setdefault(image_id, {})
                if int(float(r[4])) != 0:  # keep visible parts only
                    entry[part] = (_number(r[2], locs_file), _number(r[3], locs_file))

        part_box_file = base / "parts" / "part_boxes.txt"
        self.has_part_boxes = bool(self.part_names) and part_box_file.is_file()
        if self.has_part_boxes:
            for r in _read_rows(part_box_file, 6):
                image_id = int(_number(r[0], part_box_file, int))
                if image_id not in wanted:
                    continue
                part = self._part_name(int(_number(r[1], part_box_file, int)), name_of_part, part_box_file)
                self._part_boxes.setdefault(image_id, {})[part] = tuple(
                    _number(v, part_box_file) for v in r[2:6])

    @staticmethod
    def _part_name(part_id: int, name_of_part: dict[int, str], path: Path) -> str:
        if part_id not in name_of_part:
            raise ValueError(f"{path}: part id {part_id} is not listed in parts/parts.txt")
        return name_of_part[part_id]

    # -- annotations ---------------------------------------------------------------------------
    def __getitem__(self, index: int):
        if self.mask is None:
            return super().__getitem__(index)
        from .crops import with_mask_channel

        index = self._check_index(index)
        image = with_mask_channel(self.load_image(index), self.region_boxes(index, self.mask), self.transform)
        return image, self.targets[index]

    def load_image(self, index: int):
        """The image, or with ``crop`` its crop to the region (:mod:`fgvc_lib.data.crops`), cut from the image
        squashed to ``crop_input_size`` when that is set; the annotations always refer to the whole image."""
        image = super().load_image(index)
        if self.crop is None:
            return image
        bounds = self.crop_bounds(index)
        if self.crop_input_size is not None:
            from PIL import Image

            from .crops import scale_bounds

            size = self.crop_input_size
            bounds = scale_bounds(bounds, image.size, size)
            image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
        return image.crop(bounds)

    def region_boxes(self, index: int, region: str) -> list:
        """The boxes (x, y, w, h) of image ``index``'s ``region`` (:mod:`fgvc_lib.data.crops`): the bird's box
        (``"object"``); the boxes of its class's discriminative parts that are visible (``"parts"``); a square of
        :data:`~fgvc_lib.data.crops.KEYPOINT_SIDE` of the image's longer side around the keypoint of every
        visible class-defining part (``"keypoints"``) or head part (``"head"``); the square the head crop cuts, as
        one box (``"head-box"``). The bird's box when the region has no visible part."""
        from .crops import CROP_REGIONS, HEAD_PARTS, KEYPOINT_SIDE, check_crop

        if check_crop(region) is None:
            raise ValueError(f"region_boxes needs a region: one of {', '.join(map(repr, CROP_REGIONS))}")
        if region == "head-box":
            left, top, right, bottom = self.crop_bounds(index, "head")
            return [(left, top, right - left, bottom - top)]
        note = self.annotation(index)
        if region == "parts":
            boxes = note.get("part_boxes", {})
            names = [p for p in self.discriminative_parts(self.targets[index]) if p in boxes]
            if names:
                return [boxes[p] for p in names]
        elif region in ("keypoints", "head"):
            points = note.get("parts", {})
            names = self.defining_parts() if region == "keypoints" else \
                [p for p in self.part_names if any(word in p for word in HEAD_PARTS)]
            side = KEYPOINT_SIDE * max(note["image_size"])
            squares = [(points[p][0] - side / 2, points[p][1] - side / 2, side, side) for p in names if p in points]
            if squares:
                return squares
        return [note["box"]]

    def defining_parts(self) -> list:
        """The parts whose appearance defines some class: every part named in a class's discriminative parts
        (synthetic data), else every annotated part."""
        if hasattr(self, "discriminative_parts"):
            named = {p for label in range(len(self.classes)) for p in self.discriminative_parts(label)}
            return [p for p in self.part_names if p in named]
        return list(self.part_names)

    def crop_bounds(self, index: int, region: Optional[str] = None) -> Tuple[int, int, int, int]:
        """PIL bounds ``(left, top, right, bottom)`` of image ``index``'s crop to ``region`` (default:
        the dataset's ``crop``): the union of :meth:`region_boxes`, squared
        (:func:`fgvc_lib.data.crops.square_crop`); ``"head-box"`` cuts the head's crop."""
        from .crops import CROP_REGIONS, square_crop, union_box

        region = region or self.crop
        if region is None:
            raise ValueError(f"crop_bounds needs a region: one of {', '.join(map(repr, CROP_REGIONS))}")
        if region == "head-box":   # already the head crop's square: not grown a second time
            region = "head"
        return square_crop(union_box(self.region_boxes(index, region)), self.annotation(index)["image_size"])

    def annotation(self, index: int) -> dict:
        """``image_size`` (w, h); ``box`` (x, y, w, h) when bounding_boxes.txt exists; ``parts``
        {name: (x, y)} of visible parts when parts files exist; ``part_boxes`` {name: (x, y, w, h)}
        when parts/part_boxes.txt exists."""
        index = self._check_index(index)
        result = super().annotation(index)
        image_id = self.image_ids[index]
        if self.has_boxes and image_id in self._boxes:
            result["box"] = self._boxes[image_id]
        if self.has_parts:
            result["parts"] = dict(self._parts.get(image_id, {}))
        if self.has_part_boxes:
            result["part_boxes"] = dict(self._part_boxes.get(image_id, {}))
        return result
