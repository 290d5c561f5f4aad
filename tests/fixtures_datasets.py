"""Builders of tiny dataset folders in each official on-disk layout, for tests/test_datasets.py.

Each ``make_*`` function writes a few 8x8..32x32 images plus the index/annotation files under a
given folder and returns a dict of the facts the tests check against (expected classes, labels,
boxes, ...). ``make_cub_photos`` writes larger (64-96 px) images a network can train on, for the
paper-profile end-to-end test (tests/test_paper_profile.py). Nothing here is a pytest fixture, so
the module needs no conftest.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

RED, GREEN, BLUE = (220, 20, 20), (20, 200, 20), (20, 20, 220)


def save_image(path: Path, size=(16, 12), colour=RED, mode: str = "RGB", fmt: str | None = None) -> Path:
    """Write a solid-colour image of ``size`` (w, h) in ``mode`` (RGB, L, CMYK, P, RGBA)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    if mode == "L":
        image = image.convert("L")
    elif mode == "CMYK":
        image = image.convert("CMYK")
    elif mode == "P":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    elif mode == "RGBA":
        image = image.convert("RGBA")
    image.save(path, format=fmt or ("PNG" if path.suffix.lower() == ".png" else "JPEG"), quality=95)
    return path


def _write(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# CUB-200-2011
# ------------------------------------------------------------------------------------------------

def make_cub(parent: Path, with_part_boxes: bool = True) -> dict:
    """CUB_200_2011/ under ``parent`` with 3 classes and 7 images (4 train, 3 test).

    Class ids in classes.txt are written out of order (3, 1, 2) to check the 0-based label mapping.
    Image 2 is a grayscale JPEG, image 5 a CMYK JPEG, image 7 a palette PNG.
    """
    root = parent / "CUB_200_2011"
    classes = {1: "001.Black_footed_Albatross", 2: "002.Laysan_Albatross", 3: "003.Sooty_Albatross"}
    # image_id: (class_id, is_train, size, mode, colour, ext)
    images = {
        1: (1, 1, (16, 12), "RGB", RED, ".jpg"),
        2: (1, 0, (12, 16), "L", GREEN, ".jpg"),
        3: (2, 1, (20, 20), "RGB", BLUE, ".jpg"),
        4: (2, 1, (8, 8), "RGB", GREEN, ".jpg"),
        5: (3, 0, (24, 16), "CMYK", RED, ".jpg"),
        6: (3, 1, (32, 32), "RGB", BLUE, ".jpg"),
        7: (2, 0, (16, 16), "P", GREEN, ".png"),
    }
    rel = {}
    for image_id, (cid, _, size, mode, colour, ext) in images.items():
        rel[image_id] = f"{classes[cid]}/{classes[cid].split('.', 1)[1]}_{image_id:04d}{ext}"
        save_image(root / "images" / rel[image_id], size=size, colour=colour, mode=mode)
    _write(root / "images.txt", [f"{i} {rel[i]}" for i in images])
    _write(root / "image_class_labels.txt", [f"{i} {v[0]}" for i, v in images.items()])
    _write(root / "train_test_split.txt", [f"{i} {v[1]}" for i, v in images.items()])
    _write(root / "classes.txt", [f"{c} {classes[c]}" for c in (3, 1, 2)])
    boxes = {i: (1.0 + i, 2.0, 5.0, 4.0 + i) for i in images}
    _write(root / "bounding_boxes.txt", [f"{i} {' '.join(str(v) for v in b)}" for i, b in boxes.items()])
    part_names = {1: "back", 2: "left eye", 3: "beak"}  # "left eye" has a space, as in real CUB
    _write(root / "parts" / "parts.txt", [f"{p} {n}" for p, n in part_names.items()])
    locs, visible = [], {}
    for i in images:
        visible[i] = {}
        for p, name in part_names.items():
            vis = 0 if (p == 2 and i % 2 == 0) else 1  # left eye hidden on even ids
            x, y = (float(i + p), float(p)) if vis else (0.0, 0.0)
            locs.append(f"{i} {p} {x} {y} {vis}")
            if vis:
                visible[i][name] = (x, y)
    _write(root / "parts" / "part_locs.txt", locs)
    part_boxes = {}
    if with_part_boxes:
        lines = []
        for i in images:
            part_boxes[i] = {}
            for p, name in part_names.items():
                b = (float(i), float(p), 2.0, 3.0)
                lines.append(f"{i} {p} {' '.join(str(v) for v in b)}")
                part_boxes[i][name] = b
        _write(root / "parts" / "part_boxes.txt", lines)
    label_of_class = {1: 0, 2: 1, 3: 2}  # sorted class ids -> 0-based labels
    return {
        "root": root,
        "classes": [classes[c] for c in sorted(classes)],
        "train_ids": [i for i, v in images.items() if v[1] == 1],
        "test_ids": [i for i, v in images.items() if v[1] == 0],
        "label": {i: label_of_class[v[0]] for i, v in images.items()},
        "size": {i: v[2] for i, v in images.items()},
        "colour": {i: v[4] for i, v in images.items()},
        "mode": {i: v[3] for i, v in images.items()},
        "path": {i: root / "images" / rel[i] for i in images},
        "boxes": boxes,
        "parts": visible,
        "part_boxes": part_boxes,
        "part_names": [part_names[p] for p in sorted(part_names)],
    }


# The 15 parts of the official parts/parts.txt, by part id.
CUB_PART_NAMES = ("back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg",
                  "left wing", "nape", "right eye", "right leg", "right wing", "tail", "throat")


def make_cub_photos(parent: Path, num_classes: int = 3, train_per_class: int = 4, test_per_class: int = 2,
                    sizes=(64, 96), seed: int = 0) -> dict:
    """CUB_200_2011/ under ``parent`` with images a network can train on (unlike :func:`make_cub`).

    Every image is an RGB JPEG whose sides are drawn in ``sizes`` (inclusive): a noisy background
    with a filled ellipse (the "bird", in a colour of its class) and a triangle "beak". The files
    follow the official release: ids numbered class after class, train and test images interleaved
    inside a class, ``bounding_boxes.txt`` around the ellipse, all 15 parts in ``parts/parts.txt``
    with ``parts/part_locs.txt`` (a few parts not visible), and no ``parts/part_boxes.txt`` (not in
    the official release). Deterministic in ``seed``.
    """
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    root = parent / "CUB_200_2011"
    names = ["Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross", "Groove_billed_Ani",
             "Crested_Auklet", "Least_Auklet", "Parakeet_Auklet", "Rhinoceros_Auklet"]
    classes = {c: f"{c:03d}.{names[(c - 1) % len(names)]}" for c in range(1, num_classes + 1)}
    image_lines, label_lines, split_lines, box_lines, loc_lines = [], [], [], [], []
    facts = {"train_ids": [], "test_ids": [], "label": {}, "size": {}, "boxes": {}, "path": {}}
    image_id = 0
    for class_id, folder in classes.items():
        colour = np.array([60 + 60 * (class_id % 3), 60 + 50 * (class_id % 4), 220 - 40 * (class_id % 5)])
        splits = [1] * train_per_class + [0] * test_per_class
        order = rng.permutation(len(splits))  # interleave train and test inside the class
        for rank, k in enumerate(order, start=1):
            image_id += 1
            is_train = splits[k]
            w, h = (int(v) for v in rng.integers(sizes[0], sizes[1] + 1, size=2))
            background = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            image = Image.fromarray(background, "RGB")
            draw = ImageDraw.Draw(image)
            bw, bh = int(w * rng.uniform(0.45, 0.7)), int(h * rng.uniform(0.35, 0.55))
            x0, y0 = int(rng.integers(2, w - bw - 8)), int(rng.integers(2, h - bh - 2))
            fill = tuple(int(v) for v in np.clip(colour + rng.integers(-20, 21, size=3), 0, 255))
            draw.ellipse((x0, y0, x0 + bw, y0 + bh), fill=fill)
            tip = (x0 + bw + 6, y0 + bh // 3)
            draw.polygon([(x0 + bw - 2, y0 + bh // 3 - 3), (x0 + bw - 2, y0 + bh // 3 + 3), tip],
                         fill=(240, 200, 30))
            stem = f"{folder.split('.', 1)[1]}_{rank:04d}_{100000 + image_id}"
            rel = f"{folder}/{stem}.jpg"
            path = root / "images" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path, format="JPEG", quality=90)
            box = (float(x0), float(y0), float(bw + 6), float(bh))
            image_lines.append(f"{image_id} {rel}")
            label_lines.append(f"{image_id} {class_id}")
            split_lines.append(f"{image_id} {is_train}")
            box_lines.append(f"{image_id} {' '.join(str(v) for v in box)}")
            for part_id, _ in enumerate(CUB_PART_NAMES, start=1):
                if part_id == 2:  # the beak: the triangle's tip
                    x, y, visible = float(tip[0]), float(tip[1]), 1
                elif (part_id + image_id) % 4 == 0:  # hidden parts are written as 0 0 0, as in CUB
                    x, y, visible = 0.0, 0.0, 0
                else:
                    x = float(x0 + bw * rng.uniform(0.1, 0.9))
                    y = float(y0 + bh * rng.uniform(0.1, 0.9))
                    visible = 1
                loc_lines.append(f"{image_id} {part_id} {x:.1f} {y:.1f} {visible}")
            facts["train_ids" if is_train else "test_ids"].append(image_id)
            facts["label"][image_id] = class_id - 1
            facts["size"][image_id] = (w, h)
            facts["boxes"][image_id] = box
            facts["path"][image_id] = path
    _write(root / "images.txt", image_lines)
    _write(root / "image_class_labels.txt", label_lines)
    _write(root / "train_test_split.txt", split_lines)
    _write(root / "classes.txt", [f"{c} {name}" for c, name in classes.items()])
    _write(root / "bounding_boxes.txt", box_lines)
    _write(root / "parts" / "parts.txt", [f"{p} {n}" for p, n in enumerate(CUB_PART_NAMES, start=1)])
    _write(root / "parts" / "part_locs.txt", loc_lines)
    return {"root": root, "classes": list(classes.values()), **facts}


# ------------------------------------------------------------------------------------------------
# Stanford Cars (torchvision layout)
# ------------------------------------------------------------------------------------------------

def _cell_row(strings) -> np.ndarray:
    """A MATLAB 1xN cell array of strings."""
    cell = np.empty((1, len(strings)), dtype=object)
    for i, s in enumerate(strings):
        cell[0, i] = s
    return cell


def _cars_annotations(rows) -> np.ndarray:
    """A MATLAB 1xN struct array with the fields of cars_*_annos.mat."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    struct = np.empty((1, len(rows)), dtype=[(f, object) for f in fields])
    for i, (x1, y1, x2, y2, cls, fname) in enumerate(rows):
        struct[0, i] = (np.array([[x1]], dtype=np.uint16), np.array([[y1]], dtype=np.uint16),
                        np.array([[x2]], dtype=np.uint16), np.array([[y2]], dtype=np.uint16),
                        np.array([[cls]], dtype=np.uint8), fname)
    return struct


def make_cars(parent: Path) -> dict:
    """stanford_cars/ under ``parent``: 3 classes, 4 train and 3 test images (one CMYK JPEG)."""
    import scipy.io as sio

    base = parent / "stanford_cars"
    classes = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi TTS Coupe 2012"]
    train = [(2, 3, 14, 10, 1, "00001.jpg"), (1, 1, 8, 8, 3, "00002.jpg"),
             (4, 2, 20, 12, 2, "00003.jpg"), (3, 3, 9, 9, 1, "00004.jpg")]
    test = [(1, 2, 10, 11, 2, "00001.jpg"), (5, 5, 15, 15, 3, "00002.jpg"), (2, 2, 6, 7, 1, "00003.jpg")]
    for folder, rows in (("cars_train", train), ("cars_test", test)):
        for k, row in enumerate(rows):
            mode = "CMYK" if (folder == "cars_test" and k == 1) else "RGB"
            save_image(base / folder / row[5], size=(24, 16), colour=(RED, GREEN, BLUE)[row[4] - 1], mode=mode)
    (base / "devkit").mkdir(parents=True, exist_ok=True)
    sio.savemat(str(base / "devkit" / "cars_meta.mat"), {"class_names": _cell_row(classes)})
    sio.savemat(str(base / "devkit" / "cars_train_annos.mat"), {"annotations": _cars_annotations(train)})
    sio.savemat(str(base / "cars_test_annos_withlabels.mat"), {"annotations": _cars_annotations(test)})

    def facts(rows, folder):
        return {
            "labels": [r[4] - 1 for r in rows],
            "boxes": [(float(r[0]), float(r[1]), float(r[2] - r[0]), float(r[3] - r[1])) for r in rows],
            "paths": [base / folder / r[5] for r in rows],
        }

    return {"root": parent, "base": base, "classes": classes,
            "train": facts(train, "cars_train"), "test": facts(test, "cars_test")}


# ------------------------------------------------------------------------------------------------
# FGVC-Aircraft (torchvision layout)
# ------------------------------------------------------------------------------------------------

def make_aircraft(parent: Path, with_boxes: bool = True) -> dict:
    """fgvc-aircraft-2013b/ under ``parent``: 3 variants, official splits train/val/trainval/test.

    Images are 24 wide and 32 high so that cropping the 20-pixel banner leaves 12 rows.
    """
    data = parent / "fgvc-aircraft-2013b" / "data"
    classes = ["707-320", "A300B4", "Cessna 172"]  # names with spaces occur in the real data
    split_rows = {
        "train": [("0000001", "707-320"), ("0000002", "Cessna 172"), ("0000003", "A300B4")],
        "val": [("0000004", "A300B4"), ("0000005", "707-320")],
        "test": [("0000006", "Cessna 172"), ("0000007", "707-320"), ("0000008", "A300B4")],
    }
    split_rows["trainval"] = split_rows["train"] + split_rows["val"]
    _write(data / "variants.txt", classes)
    for split, rows in split_rows.items():
        _write(data / f"images_variant_{split}.txt", [f"{name} {cls}" for name, cls in rows])
    boxes = {}
    for k, (name, cls) in enumerate(r for s in ("train", "val", "test") for r in split_rows[s]):
        save_image(data / "images" / f"{name}.jpg", size=(24, 32), colour=(RED, GREEN, BLUE)[classes.index(cls)])
        boxes[name] = (1.0 + k, 2.0, 10.0, 25.0)  # as (x, y, w, h); reaches row 27, past the banner line
    if with_boxes:
        _write(data / "images_box.txt",
               [f"{n} {int(x)} {int(y)} {int(x + w)} {int(y + h)}" for n, (x, y, w, h) in boxes.items()])
    return {
        "root": parent,
        "classes": classes,
        "splits": {s: [(n, classes.index(c)) for n, c in rows] for s, rows in split_rows.items()},
        "boxes": boxes,
        "data": data,
    }


# ------------------------------------------------------------------------------------------------
# Stanford Dogs
# ------------------------------------------------------------------------------------------------

_DOG_XML = """<annotation>
\t<folder>{folder}</folder>
\t<filename>{stem}</filename>
\t<source><database>ImageNet database</database></source>
\t<size><width>{w}</width><height>{h}</height><depth>3</depth></size>
\t<segment>0</segment>
\t<object>
\t\t<name>{breed}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>
\t\t<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>
\t</object>
{extra}</annotation>
"""


def _cell_column(strings) -> np.ndarray:
    """A MATLAB Nx1 cell array of strings (how the Stanford Dogs lists store paths)."""
    cell = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        cell[i, 0] = s
    return cell


def make_dogs(parent: Path, lists_folder: bool = True) -> dict:
    """Stanford Dogs under ``parent``: 3 breeds, 4 train and 2 test images, one grayscale JPEG.

    The second image's XML holds two objects; the reader must use the first.
    """
    import scipy.io as sio

    folders = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02085936-Maltese_dog"]
    rows = {  # (folder index, image number, is_train, box corners)
        "train": [(0, 1, (1, 2, 9, 10)), (0, 2, (2, 2, 12, 8)), (1, 3, (0, 0, 15, 11)), (2, 4, (3, 1, 7, 9))],
        "test": [(1, 5, (4, 4, 14, 10)), (2, 6, (1, 3, 5, 11))],
    }
    facts = {}
    for split, entries in rows.items():
        files, anns, labels, boxes, paths = [], [], [], [], []
        for k, (f, n, (x1, y1, x2, y2)) in enumerate(entries):
            folder = folders[f]
            stem = f"{folder.split('-')[0]}_{n}"
            mode = "L" if (split == "train" and k == 3) else "RGB"
            paths.append(save_image(parent / "Images" / folder / f"{stem}.jpg", size=(16, 12),
                                    colour=(RED, GREEN, BLUE)[f], mode=mode))
            extra = ""
            if (split, k) == ("train", 1):
                extra = ("\t<object><name>x</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>1</xmax>"
                         "<ymax>1</ymax></bndbox></object>\n")
            xml = _DOG_XML.format(folder=folder.split("-")[0], stem=stem, w=16, h=12,
                                  breed=folder.split("-", 1)[1], x1=x1, y1=y1, x2=x2, y2=y2, extra=extra)
            (parent / "Annotation" / folder).mkdir(parents=True, exist_ok=True)
            (parent / "Annotation" / folder / stem).write_text(xml, encoding="utf-8")
            files.append(f"{folder}/{stem}.jpg")
            anns.append(f"{folder}/{stem}")
            labels.append(f + 1)
            boxes.append((float(x1), float(y1), float(x2 - x1), float(y2 - y1)))
        list_dir = parent / "lists" if lists_folder else parent
        list_dir.mkdir(parents=True, exist_ok=True)
        sio.savemat(str(list_dir / f"{split}_list.mat"), {
            "file_list": _cell_column(files),
            "annotation_list": _cell_column(anns),
            "labels": np.array(labels, dtype=np.float64).reshape(-1, 1),
        })
        facts[split] = {"labels": [l - 1 for l in labels], "boxes": boxes, "paths": paths}
    return {"root": parent, "folders": folders,
            "classes": ["Chihuahua", "Japanese_spaniel", "Maltese_dog"], **facts}
