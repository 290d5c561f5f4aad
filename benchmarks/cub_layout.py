"""Write a CUB-200-2011-layout folder of JPEG photographs for the GPU benchmarks and checks.

The real CUB-200-2011 cannot be fetched on the benchmark machines, and its cost to read is what a
throughput figure must include, so this writes stand-ins that decode like it: JPEGs of CUB's typical
size (about 500 x 375, a few sizes mixed), quality 90, with a smooth random background, fine texture and
a filled ellipse (the "bird", coloured by class) inside the bounding box. The index files follow the
official release (``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``, ``classes.txt``,
``bounding_boxes.txt``, ``parts/parts.txt`` with CUB's 15 part names and ``parts/part_locs.txt``), as
``fgvc_lib.data.CUB200`` reads them.

A folder is reused when its ``cub_layout.json`` records the same settings; anything else in the way is an
error, never overwritten. Deterministic in ``seed``.

    python benchmarks/cub_layout.py OUT [--classes 200] [--train 7] [--test 1] [--width 500] [--height 375]

writes ``OUT/CUB_200_2011/`` and prints its path (pass ``OUT`` as the notebooks' ``data_root``).
"""
from __future__ import annotations

import argparse
import json
import os
from multiprocessing import Pool
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
from PIL import Image, ImageDraw

FOLDER = "CUB_200_2011"
SETTINGS_NAME = "cub_layout.json"
LAYOUT_VERSION = 1
PART_NAMES = ("back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg", "left wing",
              "nape", "right eye", "right leg", "right wing", "tail", "throat")


def _image_size(index: int, width: int, height: int) -> Tuple[int, int]:
    """A few sizes around (width, height), as CUB's photographs vary a little."""
    return width - 10 * (index % 5), height - 7 * (index % 4)


def _box(w: int, h: int, rng: np.random.Generator) -> Tuple[float, float, float, float]:
    bw, bh = w * rng.uniform(0.4, 0.7), h * rng.uniform(0.4, 0.7)
    return float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh)), float(bw), float(bh)


def _render(job) -> None:
    """One JPEG: upsampled random colour field + texture + the class's ellipse in ``box``."""
    path, (w, h), box, colour, seed = job
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(low, "RGB").resize((w, h), Image.BICUBIC), dtype=np.int16)
    field = field + rng.integers(-12, 13, (h, w, 3), dtype=np.int16)
    image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8), "RGB")
    x, y, bw, bh = box
    ImageDraw.Draw(image).ellipse([x, y, x + bw, y + bh], fill=tuple(int(c) for c in colour))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=90)


def _lines(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")


def write_cub_layout(out, classes: int = 200, train_per_class: int = 7, test_per_class: int = 1,
                     width: int = 500, height: int = 375, seed: int = 0,
                     processes: Optional[int] = None) -> Path:
    """Write (or reuse) ``out/CUB_200_2011`` with ``classes`` x (``train_per_class`` + ``test_per_class``)
    JPEGs; returns the ``CUB_200_2011`` folder. ``processes``: JPEG encoders at once (default: CPU count)."""
    if classes < 2 or train_per_class < 1 or test_per_class < 1:
        raise ValueError(f"need >= 2 classes and >= 1 train and test image per class; got {classes}, "
                         f"{train_per_class}, {test_per_class}")
    if width < 64 or height < 64:
        raise ValueError(f"images must be at least 64 x 64; got {width} x {height}")
    root = Path(out).expanduser().absolute() / FOLDER
    settings = {"version": LAYOUT_VERSION, "classes": classes, "train_per_class": train_per_class,
                "test_per_class": test_per_class, "width": width, "height": height, "seed": seed}
    marker = root / SETTINGS_NAME
    if marker.is_file():
        found = json.loads(marker.read_text())
        if found == settings:
            return root
        raise FileExistsError(f"{root} holds another CUB-layout folder ({found}); wanted {settings}: "
                              f"delete it or pass another folder")
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists and was not written by {__file__}; pass an empty or new folder")

    rng = np.random.default_rng(seed)
    jobs, images, labels, split, boxes, parts = [], [], [], [], [], []
    image_id = 0
    for class_id in range(1, classes + 1):
        folder = f"{class_id:03d}.Class_{class_id}"
        colour = rng.integers(30, 226, 3)
        for k in range(train_per_class + test_per_class):
            image_id += 1
            w, h = _image_size(image_id, width, height)
            box = _box(w, h, rng)
            rel = f"{folder}/Class_{class_id}_{image_id:05d}.jpg"
            jobs.append((root / "images" / rel, (w, h), box, colour, seed * 1_000_003 + image_id))
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {class_id}")
            split.append(f"{image_id} {1 if k < train_per_class else 0}")
            boxes.append(f"{image_id} " + " ".join(f"{v:.1f}" for v in box))
            x, y, bw, bh = box
            for part_id in range(1, len(PART_NAMES) + 1):   # on a ring inside the box; every 7th hidden
                angle = 2 * np.pi * part_id / len(PART_NAMES)
                visible = int((image_id + part_id) % 7 != 0)
                px, py = (x + bw * (0.5 + 0.35 * np.cos(angle)), y + bh * (0.5 + 0.35 * np.sin(angle))) \
                    if visible else (0.0, 0.0)
                parts.append(f"{image_id} {part_id} {px:.1f} {py:.1f} {visible}")
    processes = processes or os.cpu_count() or 1
    if processes > 1 and len(jobs) > 64:
        with Pool(min(processes, 32)) as pool:
            pool.map(_render, jobs, chunksize=16)
    else:
        for job in jobs:
            _render(job)
    _lines(root / "images.txt", images)
    _lines(root / "image_class_labels.txt", labels)
    _lines(root / "train_test_split.txt", split)
    _lines(root / "bounding_boxes.txt", boxes)
    _lines(root / "classes.txt", (f"{c} {c:03d}.Class_{c}" for c in range(1, classes + 1)))
    _lines(root / "parts" / "parts.txt", (f"{p} {name}" for p, name in enumerate(PART_NAMES, start=1)))
    _lines(root / "parts" / "part_locs.txt", parts)
    marker.write_text(json.dumps(settings, indent=1))   # last: the folder is complete
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="parent folder; CUB_200_2011/ is written inside it")
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--train", type=int, default=7, help="training images per class")
    parser.add_argument("--test", type=int, default=1, help="test images per class")
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=None)
    args = parser.parse_args()
    root = write_cub_layout(args.out, args.classes, args.train, args.test, args.width, args.height, args.seed,
                            args.processes)
    print(root)


if __name__ == "__main__":
    main()
