"""Embedded synthetic fine-grained bird dataset, written in the CUB-200-2011 on-disk layout.

None of the five papers defines this data set; it is this study's own stand-in for CUB-200-2011
(Wah, Branson, Welinder, Perona & Belongie, "The Caltech-UCSD Birds-200-2011 Dataset", CNS-TR-2011-001)
so that every notebook runs end to end on a laptop without downloads. The papers' premise (e.g.
CRA-CNN, CLAN, SSANet: fine-grained classes differ in small discriminative parts that attention has
to find) is built in by construction:

* Each image holds one stylised bird drawn with ``PIL.ImageDraw``: body, head, eye (with an optional
  coloured eye ring), beak, crest, wing (with a pattern), tail and legs.
* A class is a combination of *part attributes* (beak shape, beak colour, eye ring, crest, wing
  pattern, tail shape). Classes are picked deterministically from the seed so that every class has
  near neighbours that differ from it in exactly one attribute, i.e. in one small local part.
* Everything else varies inside every class: rotation, horizontal flip, scale, position, body colour,
  and a cluttered background whose shapes reuse the colours (and, optionally, the textures) of the
  class-defining parts, so a global colour statistic cannot solve the task.

The files follow CUB-200-2011 (``images/``, ``images.txt``, ``image_class_labels.txt``,
``train_test_split.txt``, ``classes.txt``, ``bounding_boxes.txt``, ``parts/parts.txt``,
``parts/part_locs.txt``), so the CUB reader reads them unchanged, plus two extras:
``parts/part_boxes.txt`` (a tight box around each drawn part, for CAM pointing-game scores) and
``synthetic.json`` (the config and, per class, its attributes, nearest classes and the parts that
tell it apart from them: the ground truth for quantitative CAM evaluation).

Generation is deterministic (same config -> byte-identical files), fast (a few ms per image on one
core) and atomic (written into a temporary sibling folder, then renamed into place).

Command line::

    python -m fgvc_lib.data.synthetic --out DIR --num-classes 12 --seed 0 --image-size 128 \\
        --train-per-class 60 --test-per-class 30 [difficulty flags, see --help]

A folder written this way is read back with ``build_dataset("synthetic", DIR, split)``: without an
explicit config the settings come from the folder's ``synthetic.json`` (:func:`load_config`), and a
folder that holds no complete dataset of this generator version raises
:class:`SyntheticDatasetError`, whose message names the problem and the command that fixes it.
"""
from __future__ import annotations

import argparse
import colorsys
import dataclasses
import errno
import functools
import hashlib
import json
import math
import os
import random
import shlex
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from PIL import Image, ImageDraw

# Bump whenever the drawing or the file format changes: it is part of the cache key.
GENERATOR_VERSION = 2

# --------------------------------------------------------------------------------------------------
# Parts and class-defining attributes
# --------------------------------------------------------------------------------------------------

#: Annotated parts, in part_id order (1-based in parts/parts.txt).
PART_NAMES: Tuple[str, ...] = ("beak", "crown", "eye", "wing", "tail", "breast")

#: Class-defining attributes: name -> (part it lives on, possible values).
ATTRIBUTES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "beak_shape": ("beak", ("cone", "long", "hooked")),
    "beak_colour": ("beak", ("orange", "black", "yellow", "red")),
    "eye_ring": ("eye", ("none", "white", "red", "blue")),
    "crest": ("crown", ("none", "spike", "tuft")),
    "wing_pattern": ("wing", ("plain", "stripes", "spots", "bar")),
    "tail_shape": ("tail", ("fan", "fork", "point")),
}
ATTRIBUTE_NAMES: Tuple[str, ...] = tuple(ATTRIBUTES)
#: The attributes that live on the head (beak, eye, crown): the cpu and smoke profiles' classes differ in these
#: alone (fgvc_lib.profiles.CPU_RENDERING; why: fgvc_lib.calibration).
HEAD_ATTRIBUTES: Tuple[str, ...] = tuple(a for a, (part, _) in ATTRIBUTES.items() if part in ("beak", "eye", "crown"))

# Colours of the class-defining parts (RGB). The background clutter reuses them on purpose.
BEAK_COLOURS = {"orange": (240, 120, 10), "black": (30, 30, 30), "yellow": (245, 228, 50),
                "red": (205, 25, 40)}
EYE_RING_COLOURS = {"white": (245, 245, 245), "red": (225, 35, 35), "blue": (35, 90, 235)}
PATTERN_COLOUR = (240, 236, 205)  # cream wing marks
PUPIL_COLOUR = (15, 15, 15)
LEG_COLOUR = (70, 60, 50)
PART_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    tuple(BEAK_COLOURS.values()) + tuple(EYE_RING_COLOURS.values()) + (PATTERN_COLOUR,))

Colour = Tuple[int, int, int]
Point = Tuple[float, float]


# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that defines one synthetic dataset; equal configs give byte-identical files.

    Size
      num_classes, train_per_class, test_per_class, image_size (square images, pixels), seed.
    Difficulty knobs
      part_scale:       size multiplier of the class-defining part details (beak, eye ring, crest,
                        wing marks, tail). < 1 makes parts smaller and harder to see.
      min_detail_px:    lower bound (pixels) on stripe / ring / spot widths so that details never
                        shrink to a single pixel at small image sizes.
      scale_range:      bird length as a fraction of the image side, drawn uniformly per image
                        (the length of the envelope of all shape variants: longest tail tip to
                        longest beak tip; shrunk further when a rotated bird would not fit).
      rotation:         maximum absolute in-plane rotation in degrees (uniform in [-r, r]).
      flip_prob:        probability of a horizontal flip (bird facing left instead of right).
      position_jitter:  0 = bird centred, 1 = anywhere it fits inside the image.
      clutter:          number of random background shapes (ellipses, boxes, polygons, lines).
      distractor_parts: fraction of background shapes that mimic a class-defining part (a beak-like
                        triangle, a ring, a striped or spotted patch) in the part colours.
      part_colour_prob: probability that a background shape takes one of the part colours.
      colour_jitter:    per-image random change (0-255 scale) added to each part colour channel.
      class_attributes: which attributes define classes; the others are fixed to their first value.
    Rendering
      supersample:      draw at this factor and downsample (anti-aliasing); 1 disables.
      png_compress_level: zlib level of the PNG files (lossless either way).
    """

    # No paper defines these values (the data set is this study's own; no paper symbols). The
    # difficulty defaults were calibrated so that a slim VGG-16 (width 0.125) trained from scratch
    # for ~2 CPU-minutes at 96 px lands between chance and saturation (~55-65 % on 12 classes)
    # while a colour-histogram classifier stays at chance (~8 %).
    num_classes: int = 12
    train_per_class: int = 60
    test_per_class: int = 30
    image_size: int = 128
    seed: int = 0
    part_scale: float = 1.5
    min_detail_px: float = 2.0
    scale_range: Tuple[float, float] = (0.7, 0.95)
    rotation: float = 20.0
    flip_prob: float = 0.5
    position_jitter: float = 1.0
    clutter: int = 8
    distractor_parts: float = 0.2
    part_colour_prob: float = 0.5
    colour_jitter: float = 20.0
    class_attributes: Tuple[str, ...] = ATTRIBUTE_NAMES
    supersample: int = 2
    png_compress_level: int = 1

    def __post_init__(self):
        # Normalise list-valued fields to tuples so that configs loaded from JSON compare equal.
        object.__setattr__(self, "scale_range", tuple(float(v) for v in self.scale_range))
        object.__setattr__(self, "class_attributes", tuple(self.class_attributes))
        self.validate()

    # -- checks -------------------------------------------------------------------------------
    def validate(self) -> None:
        def bad(msg: str):
            raise ValueError(f"SyntheticConfig: {msg}")

        for name in ("num_classes", "train_per_class", "test_per_class", "image_size", "seed",
                     "clutter", "supersample", "png_compress_level"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                bad(f"{name} must be an integer, got {value!r}")
        if self.num_classes < 2:
            bad(f"num_classes={self.num_classes} but a classification problem needs at least 2 classes")
        if self.image_size < 32:
            bad(f"image_size={self.image_size} is too small for the parts to be visible; use >= 32")
        if self.train_per_class < 0 or self.test_per_class < 0:
            bad(f"train_per_class={self.train_per_class} and test_per_class={self.test_per_class} "
                "must be >= 0")
        if self.train_per_class + self.test_per_class < 1:
            bad("train_per_class + test_per_class must be >= 1 (no images would be generated)")
        if self.seed < 0:
            bad(f"seed={self.seed} must be >= 0")
        if self.clutter < 0:
            bad(f"clutter={self.clutter} must be >= 0 (number of background shapes)")
        if not 1 <= self.supersample <= 4:
            bad(f"supersample={self.supersample} must be in 1..4")
        if not 0 <= self.png_compress_level <= 9:
            bad(f"png_compress_level={self.png_compress_level} must be in 0..9")
        if not self.part_scale > 0:
            bad(f"part_scale={self.part_scale} must be > 0")
        if self.min_detail_px < 0:
            bad(f"min_detail_px={self.min_detail_px} must be >= 0")
        if len(self.scale_range) != 2 or not 0.1 <= self.scale_range[0] <= self.scale_range[1] <= 1.0:
            bad(f"scale_range={self.scale_range} must be (lo, hi) with 0.1 <= lo <= hi <= 1.0 "
                "(bird length as a fraction of the image side)")
        if not 0 <= self.rotation <= 180:
            bad(f"rotation={self.rotation} must be in [0, 180] degrees")
        for name in ("flip_prob", "position_jitter", "distractor_parts", "part_colour_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                bad(f"{name}={value} must be in [0, 1]")
        if not 0 <= self.colour_jitter <= 128:
            bad(f"colour_jitter={self.colour_jitter} must be in [0, 128]")
        unknown = [a for a in self.class_attributes if a not in ATTRIBUTES]
        if unknown or not self.class_attributes:
            bad(f"class_attributes={self.class_attributes} must be a non-empty subset of {ATTRIBUTE_NAMES}")
        if len(set(self.class_attributes)) != len(self.class_attributes):
            bad(f"class_attributes={self.class_attributes} has duplicates")
        combos = self.num_combinations()
        if self.num_classes > combos:
            hint = ("lower num_classes" if len(self.class_attributes) == len(ATTRIBUTES)
                    else "lower num_classes or add attributes to class_attributes")
            bad(f"num_classes={self.num_classes} exceeds the {combos} attribute combinations of "
                f"class_attributes={self.class_attributes}; {hint}")

    def num_combinations(self) -> int:
        return math.prod(len(ATTRIBUTES[a][1]) for a in self.class_attributes)

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["scale_range"] = list(self.scale_range)
        d["class_attributes"] = list(self.class_attributes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SyntheticConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"SyntheticConfig: unknown fields {unknown}; known fields: {sorted(names)}")
        return cls(**d)

    def replace(self, **changes) -> "SyntheticConfig":
        return dataclasses.replace(self, **changes)

    def short_hash(self) -> str:
        """A short stable hash of the config and the generator version (the cache key)."""
        payload = json.dumps({"config": self.to_dict(), "generator_version": GENERATOR_VERSION},
                             sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    @property
    def num_images(self) -> int:
        return self.num_classes * (self.train_per_class + self.test_per_class)


# --------------------------------------------------------------------------------------------------
# Classes: attribute combinations with one-part neighbours
# --------------------------------------------------------------------------------------------------

def choose_classes(config: SyntheticConfig) -> List[Dict[str, str]]:
    """Pick ``num_classes`` distinct attribute combinations, deterministically from the seed.

    The first class is random; each further class copies a random earlier class and changes exactly
    one of its class attributes (to a combination not used yet). So every class has at least one
    neighbour that differs from it in a single part. Class k does not depend on num_classes (> k).
    """
    rng = random.Random(_mix(config.seed, 0xC1A55))
    varying = config.class_attributes
    fixed = {a: ATTRIBUTES[a][1][0] for a in ATTRIBUTE_NAMES if a not in varying}

    def key(attrs):
        return tuple(attrs[a] for a in ATTRIBUTE_NAMES)

    first = dict(fixed)
    for a in varying:
        first[a] = rng.choice(ATTRIBUTES[a][1])
    classes = [first]
    used = {key(first)}
    changed = {a: 0 for a in varying}  # how often each attribute was the one-step change
    while len(classes) < config.num_classes:
        # All unused one-step mutations of existing classes; prefer the attribute changed least
        # often so far (so every part ends up telling some classes apart), ties broken at random.
        candidates = []
        for p, parent in enumerate(classes):
            for a in varying:
                for v in ATTRIBUTES[a][1]:
                    if v != parent[a]:
                        child = dict(parent)
                        child[a] = v
                        if key(child) not in used:
                            candidates.append((changed[a], p, a, v, child))
        if not candidates:  # cannot happen while num_classes <= num_combinations (space is connected)
            raise RuntimeError("could not find a new attribute combination")
        fewest = min(c[0] for c in candidates)
        _, _, a, _, child = rng.choice([c for c in candidates if c[0] == fewest])
        changed[a] += 1
        classes.append(child)
        used.add(key(child))
    return classes


def class_name(attrs: Dict[str, str]) -> str:
    """A readable CUB-style class name built from the attributes, e.g. Orange_Cone_Redring_..."""
    words = [
        f"{attrs['beak_colour'].capitalize()}{attrs['beak_shape'].capitalize()}beak",
        {"none": "Plaineye"}.get(attrs["eye_ring"], f"{attrs['eye_ring'].capitalize()}ringed"),
        {"none": "Bare"}.get(attrs["crest"], f"{attrs['crest'].capitalize()}crested"),
        f"{attrs['wing_pattern'].capitalize()}wing",
        f"{attrs['tail_shape'].capitalize()}tail",
    ]
    return "_".join(words)


def class_relations(classes: List[Dict[str, str]]) -> List[dict]:
    """For each class: its nearest classes (min number of differing attributes) and the parts."""
    out = []
    for i, ci in enumerate(classes):
        dists = []
        for j, cj in enumerate(classes):
            if i != j:
                diff = [a for a in ATTRIBUTE_NAMES if ci[a] != cj[a]]
                dists.append((len(diff), j, diff))
        dmin = min(d for d, _, _ in dists)
        nearest = []
        parts: List[str] = []
        for d, j, diff in dists:
            if d == dmin:
                diff_parts = sorted({ATTRIBUTES[a][0] for a in diff}, key=PART_NAMES.index)
                nearest.append({"class_id": j + 1, "differing_attributes": diff,
                                "differing_parts": diff_parts})
                parts.extend(p for p in diff_parts if p not in parts)
        out.append({"distance": dmin, "nearest": nearest,
                    "discriminative_parts": sorted(parts, key=PART_NAMES.index)})
    return out


# --------------------------------------------------------------------------------------------------
# Bird geometry, in a canonical frame: body centre at the origin, facing +x, y pointing down.
# One unit is half the body length.
# --------------------------------------------------------------------------------------------------

BODY = (0.0, 0.0, 1.0, 0.56)          # centre x, y, semi-axes
HEAD = (0.98, -0.52, 0.42)            # centre x, y, radius
EYE = (1.10, -0.60)
WING = (-0.12, -0.08, 0.78, 0.36, -0.12)  # centre x, y, semi-axes, angle (rad)


def _ellipse_pts(cx, cy, a, b, angle=0.0, n=28) -> List[Point]:
    ca, sa = math.cos(angle), math.sin(angle)
    pts = []
    for k in range(n):
        t = 2 * math.pi * k / n
        x, y = a * math.cos(t), b * math.sin(t)
        pts.append((cx + ca * x - sa * y, cy + sa * x + ca * y))
    return pts


def _beak_polygon(shape: str, s: float) -> List[Point]:
    """Beak polygon attached to the front of the head; s = part scale."""
    hx, hy, hr = HEAD
    bx, by = hx + hr * 0.92, hy + 0.06  # base centre on the head outline
    if shape == "cone":       # short and deep
        length, half = 0.58 * s, 0.23 * s
        return [(bx - 0.05, by - half), (bx + length, by + 0.02), (bx - 0.05, by + half)]
    if shape == "long":       # long and thin
        length, half = 1.0 * s, 0.12 * s
        return [(bx - 0.05, by - half), (bx + length, by + 0.04), (bx + length, by + 0.08),
                (bx - 0.05, by + half)]
    if shape == "hooked":     # deep, curving down to a hook
        L, h = 0.62 * s, 0.23 * s
        return [(bx - 0.05, by - h), (bx + 0.45 * L, by - 0.9 * h), (bx + 0.85 * L, by - 0.45 * h),
                (bx + L, by + 0.15 * h), (bx + 0.92 * L, by + 0.95 * h), (bx + 0.75 * L, by + 0.35 * h),
                (bx + 0.45 * L, by + 0.55 * h), (bx - 0.05, by + h)]
    raise ValueError(shape)


def _crest_polygons(kind: str, s: float) -> List[List[Point]]:
    hx, hy, hr = HEAD
    top = hy - hr
    if kind == "none":
        return []
    if kind == "spike":       # one tall swept-back spike
        return [[(hx + 0.22, top + 0.10), (hx - 0.05 - 0.55 * s, top - 0.62 * s),
                 (hx - 0.22, top + 0.12)]]
    if kind == "tuft":        # three short upright feathers
        polys = []
        for dx in (-0.18, 0.0, 0.18):
            x0 = hx + dx
            polys.append([(x0 - 0.11 * s, top + 0.08), (x0 + dx * 0.6, top - 0.48 * s),
                          (x0 + 0.11 * s, top + 0.08)])
        return polys
    raise ValueError(kind)


def _tail_polygon(shape: str, s: float) -> List[Point]:
    x0 = -0.86  # where the tail leaves the body
    if shape == "fan":        # widening, square end
        L = 0.95 * s
        return [(x0 + 0.1, -0.16), (x0 - L, -0.50 * s), (x0 - L, 0.38 * s), (x0 + 0.1, 0.12)]
    if shape == "fork":       # deep V notch
        L = 1.05 * s
        return [(x0 + 0.1, -0.16), (x0 - L, -0.50 * s), (x0 - 0.45 * L, -0.04),
                (x0 - L, 0.42 * s), (x0 + 0.1, 0.12)]
    if shape == "point":      # long narrow wedge
        L = 1.15 * s
        return [(x0 + 0.1, -0.17), (x0 - L, -0.02), (x0 + 0.1, 0.13)]
    raise ValueError(shape)


def _wing_marks(pattern: str, s: float, unit_px: float, min_px: float):
    """Wing marks in the canonical frame: list of ("poly", pts) / ("circle", (x, y, r))."""
    cx, cy, a, b, ang = WING
    ca, sa = math.cos(ang), math.sin(ang)

    def to_canon(u, v):  # wing-local (u along the wing, v across) -> canonical
        return (cx + ca * u - sa * v, cy + sa * u + ca * v)

    min_u = min_px / unit_px  # minimum detail width, in canonical units
    marks = []
    if pattern == "plain":
        return marks
    if pattern == "stripes":  # three bars across the wing
        half_w = max(0.085 * s, 0.5 * min_u)
        for u in (-0.40, 0.02, 0.44):
            h = b * math.sqrt(max(0.0, 1 - (u / a) ** 2)) * 0.88
            marks.append(("poly", [to_canon(u - half_w, -h), to_canon(u + half_w, -h),
                                   to_canon(u + half_w, h), to_canon(u - half_w, h)]))
    elif pattern == "spots":  # five round spots
        r = max(0.10 * s, 0.6 * min_u)
        for u, v in ((-0.45, -0.08), (-0.15, 0.12), (0.1, -0.12), (0.35, 0.10), (0.55, -0.05)):
            x, y = to_canon(u, v)
            marks.append(("circle", (x, y, r)))
    elif pattern == "bar":    # one thick band along the wing
        half_h = max(0.11 * s, 0.5 * min_u)
        marks.append(("poly", [to_canon(-0.62, -half_h + 0.05), to_canon(0.58, -half_h + 0.05),
                               to_canon(0.58, half_h + 0.05), to_canon(-0.62, half_h + 0.05)]))
    else:
        raise ValueError(pattern)
    return marks


LEGS = [[(0.15, 0.5), (0.25, 1.05)], [(-0.2, 0.5), (-0.15, 1.05)]]


@functools.lru_cache(maxsize=16)
def _envelope(s: float) -> Tuple[Point, ...]:
    """Outline points of every shape variant at part scale ``s`` (class-independent extent)."""
    pts = list(_ellipse_pts(*BODY[:2], BODY[2], BODY[3], n=16))
    pts += _ellipse_pts(HEAD[0], HEAD[1], HEAD[2], HEAD[2], n=12) + LEGS[0] + LEGS[1]
    for shape in ATTRIBUTES["beak_shape"][1]:
        pts += _beak_polygon(shape, s)
    for kind in ATTRIBUTES["crest"][1]:
        for poly in _crest_polygons(kind, s):
            pts += poly
    for shape in ATTRIBUTES["tail_shape"][1]:
        pts += _tail_polygon(shape, s)
    return tuple(pts)


def _box_of(pts: Sequence[Point]) -> Tuple[float, float, float, float]:
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def _jitter(colour: Colour, rng: random.Random, amount: float) -> Colour:
    if amount <= 0:
        return colour
    return tuple(min(255, max(0, int(round(c + rng.uniform(-amount, amount))))) for c in colour)


def _random_colour(rng: random.Random) -> Colour:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _distance(a: Colour, b: Colour) -> int:
    return sum(abs(x - y) for x, y in zip(a, b))


def _shade(colour: Colour, f: float) -> Colour:
    return tuple(min(255, max(0, int(c * f))) for c in colour)


def _mix(*values: int) -> int:
    """Deterministic 64-bit mix of integers (independent of PYTHONHASHSEED)."""
    h = hashlib.blake2b(b",".join(str(v).encode() for v in values), digest_size=8)
    return int.from_bytes(h.digest(), "little")


# --------------------------------------------------------------------------------------------------
# Rendering one image
# --------------------------------------------------------------------------------------------------

def _draw_clutter(draw: ImageDraw.ImageDraw, rng: random.Random, cfg: SyntheticConfig, size: int,
                  k: int) -> None:
    """Background shapes; some mimic part shapes/textures, many reuse part colours."""
    for _ in range(cfg.clutter):
        if rng.random() < cfg.part_colour_prob:
            colour = _jitter(rng.choice(PART_PALETTE), rng, cfg.colour_jitter)
        else:
            colour = _random_colour(rng)
        cx, cy = rng.uniform(0, size), rng.uniform(0, size)
        r = rng.uniform(0.03, 0.16) * size
        if rng.random() < cfg.distractor_parts:
            kind = rng.randrange(4)
            u = size * rng.uniform(0.025, 0.05) * cfg.part_scale  # about a bird unit
            if kind == 0:    # beak-like triangle
                ang = rng.uniform(0, 2 * math.pi)
                L, h = u * rng.uniform(0.5, 1.0), u * 0.2
                ca, sa = math.cos(ang), math.sin(ang)
                draw.polygon([(cx - sa * h, cy + ca * h), (cx + ca * L, cy + sa * L),
                              (cx + sa * h, cy - ca * h)], fill=colour)
            elif kind == 1:  # ring with a dark centre
                rr = max(0.22 * u, 0.5 * cfg.min_detail_px * k + 0.1 * u)
                draw.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=colour)
                rp = 0.09 * u
                draw.ellipse([cx - rp, cy - rp, cx + rp, cy + rp], fill=PUPIL_COLOUR)
            elif kind == 2:  # striped patch
                base = _random_colour(rng)
                w = r
                draw.rectangle([cx - w, cy - w * 0.5, cx + w, cy + w * 0.5], fill=base)
                sw = max(0.17 * u, cfg.min_detail_px * k)
                x = cx - w + sw
                while x < cx + w - sw:
                    draw.rectangle([x, cy - w * 0.5, x + sw, cy + w * 0.5], fill=PATTERN_COLOUR)
                    x += 3 * sw
            else:            # spotted patch
                base = _random_colour(rng)
                draw.ellipse([cx - r, cy - r * 0.6, cx + r, cy + r * 0.6], fill=base)
                rs = max(0.1 * u, 0.6 * cfg.min_detail_px * k)
                for _ in range(4):
                    sx, sy = cx + rng.uniform(-0.6, 0.6) * r, cy + rng.uniform(-0.3, 0.3) * r
                    draw.ellipse([sx - rs, sy - rs, sx + rs, sy + rs], fill=PATTERN_COLOUR)
            continue
        kind = rng.randrange(4)
        if kind == 0:
            draw.ellipse([cx - r, cy - r * rng.uniform(0.3, 1.0), cx + r, cy + r * rng.uniform(0.3, 1.0)],
                         fill=colour)
        elif kind == 1:
            draw.rectangle([cx - r, cy - r * rng.uniform(0.2, 1.0), cx + r * rng.uniform(0.2, 1.0), cy + r],
                           fill=colour)
        elif kind == 2:
            n = rng.randrange(3, 6)
            draw.polygon([(cx + r * rng.uniform(-1, 1), cy + r * rng.uniform(-1, 1)) for _ in range(n)],
                         fill=colour)
        else:
            x2, y2 = cx + rng.uniform(-2, 2) * r, cy + rng.uniform(-2, 2) * r
            draw.line([(cx, cy), (x2, y2)], fill=colour, width=max(1, int(rng.uniform(1, 4) * k)))


def render_image(cfg: SyntheticConfig, attrs: Dict[str, str], image_seed: int):
    """Draw one image. Returns (PIL image, bird box (x, y, w, h), {part: (cx, cy)},
    {part: (x, y, w, h)}) in pixel coordinates of the final image."""
    rng = random.Random(image_seed)
    k = cfg.supersample
    size = cfg.image_size * k
    ps = cfg.part_scale

    # Colours (body colour is random in every class, so it carries no label information).
    h, s_, v = rng.random(), rng.uniform(0.25, 0.85), rng.uniform(0.45, 0.9)
    body = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(h, s_, v))
    wing_c = _shade(body, 0.62)
    outline = _shade(body, 0.4)

    # Background: a base colour that keeps the bird's outline visible, then clutter.
    for _ in range(20):
        bg = _random_colour(rng)
        if min(_distance(bg, body), _distance(bg, wing_c)) >= 90:
            break
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    _draw_clutter(draw, rng, cfg, size, k)

    # Pose.
    # The bird's size and placement use the envelope of every shape variant (longest beak, tallest
    # crest, longest tail), so pose and position do not depend on the class: two classes rendered
    # from the same image seed differ only inside their parts.
    envelope = _envelope(ps)
    ex0, _, ex1, _ = _box_of(envelope)
    length_px = rng.uniform(*cfg.scale_range) * size
    unit = length_px / (ex1 - ex0)                       # pixels per canonical unit
    theta = math.radians(rng.uniform(-cfg.rotation, cfg.rotation))
    flip = rng.random() < cfg.flip_prob
    fx = -1.0 if flip else 1.0
    ct, st = math.cos(theta) * unit, math.sin(theta) * unit
    rel = [(ct * fx * x - st * y, st * fx * x + ct * y) for x, y in envelope]
    x0, y0, x1, y1 = _box_of(rel)
    margin = 0.02 * size
    fit = min(1.0, (size - 2 * margin) / (x1 - x0), (size - 2 * margin) / (y1 - y0))
    if fit < 1.0:  # a rotated bird would not fit: shrink it (the envelope scales about the origin)
        unit, ct, st = unit * fit, ct * fit, st * fit
        x0, y0, x1, y1 = x0 * fit, y0 * fit, x1 * fit, y1 * fit

    # Part colours: fixed per attribute value, with a little per-image jitter.
    beak_c = _jitter(BEAK_COLOURS[attrs["beak_colour"]], rng, cfg.colour_jitter)
    ring_c = _jitter(EYE_RING_COLOURS.get(attrs["eye_ring"], (0, 0, 0)), rng, cfg.colour_jitter)
    if attrs["eye_ring"] == "none":
        ring_c = None
    mark_c = _jitter(PATTERN_COLOUR, rng, cfg.colour_jitter * 0.5)
    breast_c = _shade(body, 1.12)

    # Canonical geometry. Detail widths get a pixel floor (min_detail_px) at the final resolution.
    min_px = cfg.min_detail_px * k
    body_pts = _ellipse_pts(*BODY[:2], BODY[2], BODY[3])
    breast_pts = _ellipse_pts(0.5, 0.18, 0.42, 0.28, 0.3, n=16)
    hx, hy, hr = HEAD
    wing_pts = _ellipse_pts(WING[0], WING[1], WING[2], WING[3], WING[4])
    beak_pts = _beak_polygon(attrs["beak_shape"], ps)
    crest_polys = _crest_polygons(attrs["crest"], ps)
    tail_pts = _tail_polygon(attrs["tail_shape"], ps)
    marks = _wing_marks(attrs["wing_pattern"], ps, unit, min_px)
    ex, ey = EYE
    r_pupil = max(0.075 * ps, 0.5 * min_px / unit)
    r_ring = r_pupil + max(0.12 * ps, min_px / unit)
    legs = LEGS

    # Translation: place the envelope inside the image (position_jitter of the slack).
    lo_x, hi_x = margin - x0, size - margin - x1
    lo_y, hi_y = margin - y0, size - margin - y1
    mx, my = (lo_x + hi_x) / 2, (lo_y + hi_y) / 2
    j = cfg.position_jitter
    tx = mx + j * rng.uniform(lo_x - mx, hi_x - mx)
    ty = my + j * rng.uniform(lo_y - my, hi_y - my)

    def T(pts):
        return [(ct * fx * x - st * y + tx, st * fx * x + ct * y + ty) for x, y in pts]

    def Tc(x, y, r):  # circle -> bbox in pixels (uniform scale keeps circles round)
        X, Y = T([(x, y)])[0]
        R = r * unit
        return [X - R, Y - R, X + R, Y + R]

    # Draw, back to front.
    lw = max(1, int(round(0.5 * k)))
    for leg in legs:
        draw.line(T(leg), fill=LEG_COLOUR, width=max(1, int(round(0.06 * unit))))
    tail_px = T(tail_pts)
    draw.polygon(tail_px, fill=wing_c, outline=outline)
    body_px = T(body_pts)
    draw.polygon(body_px, fill=body, outline=outline)
    breast_px = T(breast_pts)
    draw.polygon(breast_px, fill=breast_c)
    crest_px = [T(p) for p in crest_polys]
    for p in crest_px:
        draw.polygon(p, fill=wing_c, outline=outline)
    draw.ellipse(Tc(hx, hy, hr), fill=body, outline=outline, width=lw)
    wing_px = T(wing_pts)
    draw.polygon(wing_px, fill=wing_c, outline=outline)
    for kind, geom in marks:
        if kind == "poly":
            draw.polygon(T(geom), fill=mark_c)
        else:
            draw.ellipse(Tc(*geom), fill=mark_c)
    beak_px = T(beak_pts)
    draw.polygon(beak_px, fill=beak_c, outline=_shade(beak_c, 0.5))
    ring_box = Tc(ex, ey, r_ring)
    if ring_c is not None:
        draw.ellipse(ring_box, fill=ring_c)
    draw.ellipse(Tc(ex, ey, r_pupil), fill=PUPIL_COLOUR)

    if k > 1:
        img = img.reduce(k)

    # Annotations, in final-image pixels.
    inv = 1.0 / k
    crown_ref = [(hx - 0.3, hy - hr - 0.02), (hx + 0.3, hy - hr - 0.02), (hx - 0.3, hy - hr * 0.55),
                 (hx + 0.3, hy - hr * 0.55)]
    boxes_px = {
        "beak": beak_px,
        "crown": T(crown_ref) + [q for p in crest_px for q in p],
        "eye": [(ring_box[0], ring_box[1]), (ring_box[2], ring_box[3])],
        "wing": wing_px,
        "tail": tail_px,
        "breast": breast_px,
    }
    centres_canon = {
        "beak": None, "crown": (hx, hy - hr), "eye": (ex, ey), "wing": WING[:2], "tail": None,
        "breast": (0.5, 0.18),
    }
    part_boxes, part_locs = {}, {}
    for name in PART_NAMES:
        bx0, by0, bx1, by1 = _box_of(boxes_px[name])
        part_boxes[name] = (bx0 * inv, by0 * inv, (bx1 - bx0) * inv, (by1 - by0) * inv)
        c = centres_canon[name]
        if c is None:
            part_locs[name] = ((bx0 + bx1) * 0.5 * inv, (by0 + by1) * 0.5 * inv)
        else:
            X, Y = T([c])[0]
            part_locs[name] = (X * inv, Y * inv)
    all_px = T(body_pts + tail_pts + beak_pts + [q for poly in crest_polys for q in poly]
               + _ellipse_pts(hx, hy, hr, hr, n=16) + legs[0] + legs[1])
    bx0, by0, bx1, by1 = _box_of(all_px)
    bx0, by0 = max(0.0, bx0), max(0.0, by0)
    bx1, by1 = min(float(size), bx1), min(float(size), by1)
    bird_box = (bx0 * inv, by0 * inv, (bx1 - bx0) * inv, (by1 - by0) * inv)
    return img, bird_box, part_locs, part_boxes


# --------------------------------------------------------------------------------------------------
# Writing a dataset
# --------------------------------------------------------------------------------------------------

def _fmt(v: float) -> str:
    return f"{v:.1f}"


def _write_dataset(out: Path, cfg: SyntheticConfig) -> None:
    classes = choose_classes(cfg)
    relations = class_relations(classes)
    names = [f"{i + 1:03d}.{class_name(a)}" for i, a in enumerate(classes)]
    (out / "images").mkdir(parents=True)
    (out / "parts").mkdir()
    images_lines, label_lines, split_lines, box_lines, loc_lines, pbox_lines = [], [], [], [], [], []
    per_class = cfg.train_per_class + cfg.test_per_class
    image_id = 0
    for c, attrs in enumerate(classes):
        cdir = out / "images" / names[c]
        cdir.mkdir()
        short = names[c].split(".", 1)[1]
        for i in range(per_class):
            image_id += 1
            img, box, locs, pboxes = render_image(cfg, attrs, _mix(cfg.seed, c, i))
            rel = f"{names[c]}/{short}_{i + 1:04d}.png"
            img.save(out / "images" / rel, format="PNG", compress_level=cfg.png_compress_level)
            images_lines.append(f"{image_id} {rel}\n")
            label_lines.append(f"{image_id} {c + 1}\n")
            split_lines.append(f"{image_id} {1 if i < cfg.train_per_class else 0}\n")
            box_lines.append(f"{image_id} {' '.join(_fmt(v) for v in box)}\n")
            for pid, pname in enumerate(PART_NAMES, start=1):
                x, y = locs[pname]
                loc_lines.append(f"{image_id} {pid} {_fmt(x)} {_fmt(y)} 1\n")
                pbox_lines.append(f"{image_id} {pid} {' '.join(_fmt(v) for v in pboxes[pname])}\n")

    def write(rel_path: str, lines: Sequence[str]):
        with open(out / rel_path, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)

    write("images.txt", images_lines)
    write("image_class_labels.txt", label_lines)
    write("train_test_split.txt", split_lines)
    write("bounding_boxes.txt", box_lines)
    write("classes.txt", [f"{i + 1} {n}\n" for i, n in enumerate(names)])
    write("parts/parts.txt", [f"{i} {p}\n" for i, p in enumerate(PART_NAMES, start=1)])
    write("parts/part_locs.txt", loc_lines)
    write("parts/part_boxes.txt", pbox_lines)

    meta = {
        "generator": "fgvc_lib.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "config": cfg.to_dict(),
        "config_hash": cfg.short_hash(),
        "num_images": image_id,
        "parts": list(PART_NAMES),
        "attributes": {a: {"part": p, "values": list(vals)} for a, (p, vals) in ATTRIBUTES.items()},
        "classes": [
            {"class_id": i + 1, "name": names[i], "attributes": classes[i],
             "nearest_distance": relations[i]["distance"],
             "nearest_classes": relations[i]["nearest"],
             "discriminative_parts": relations[i]["discriminative_parts"]}
            for i in range(len(classes))
        ],
    }
    # synthetic.json is written last: its presence marks a complete dataset.
    with open(out / "synthetic.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


def _temp_sibling(target: Path) -> Path:
    return target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


class SyntheticDatasetError(FileNotFoundError):
    """A folder passed as a synthetic dataset does not hold a complete one that this code can read.

    The message says what is wrong (no or unreadable ``synthetic.json``, another generator version,
    missing files) and how to fix it, usually the command line that regenerates the folder.
    """


#: Index files every complete dataset has (synthetic.json aside, which is checked on its own).
_REQUIRED_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt",
                   "bounding_boxes.txt", "parts/parts.txt", "parts/part_locs.txt", "parts/part_boxes.txt")


def read_meta(root: Union[str, Path]) -> Optional[dict]:
    """synthetic.json of a folder, or None if absent or unreadable."""
    try:
        with open(Path(root) / "synthetic.json", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _files_problem(root: Path, config: SyntheticConfig, check_files: bool = True) -> Optional[str]:
    """Why the files under ``root`` are not the complete dataset of ``config`` (None if they are).

    Only the files are looked at; synthetic.json is the caller's business. ``check_files=False``
    skips reading images.txt and looking for every image.
    """
    missing = [r for r in _REQUIRED_FILES if not (root / r).is_file()]
    if missing:
        return f"it lacks {', '.join(missing)}"
    if not check_files:
        return None
    try:
        with open(root / "images.txt", encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        return f"images.txt cannot be read ({err})"
    rels = []
    for line in lines:
        fields = line.split(maxsplit=1)
        if len(fields) != 2:
            return f"images.txt has a malformed line {line.strip()!r}"
        rels.append(fields[1].strip())
    if len(rels) != config.num_images:
        return f"images.txt lists {len(rels)} images where its config makes {config.num_images}"
    absent = [r for r in rels if not (root / "images" / r).is_file()]
    if absent:
        return f"{len(absent)} of the {len(rels)} images it lists are missing (e.g. images/{absent[0]})"
    return None


def is_complete(root: Union[str, Path], config: SyntheticConfig, check_files: bool = True) -> bool:
    """True if ``root`` holds a complete dataset generated from exactly ``config``."""
    root = Path(root)
    meta = read_meta(root)
    if not isinstance(meta, dict) or meta.get("generator_version") != GENERATOR_VERSION:
        return False
    try:
        if SyntheticConfig.from_dict(meta["config"]) != config:
            return False
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return _files_problem(root, config, check_files) is None


def cli_command(out_dir: Union[str, Path], config: SyntheticConfig, overwrite: bool = False) -> str:
    """The shell command of this module that writes ``config``'s dataset to ``out_dir``.

    Size and seed are always spelled out; the other settings only where they differ from the
    defaults, so the command stays short and still reproduces ``config`` exactly.
    """
    default = SyntheticConfig()
    words = ["python", "-m", __name__, "--out", str(out_dir)]
    for field in dataclasses.fields(SyntheticConfig):
        value, base = getattr(config, field.name), getattr(default, field.name)
        always = field.name in ("num_classes", "seed", "image_size", "train_per_class", "test_per_class")
        if value == base and not always:
            continue
        if field.name == "scale_range":
            words += ["--scale-min", repr(value[0]), "--scale-max", repr(value[1])]
        elif field.name == "class_attributes":
            words += ["--class-attributes", ",".join(value)]
        else:
            words += ["--" + field.name.replace("_", "-"), repr(value)]
    if overwrite:
        words.append("--overwrite")
    return " ".join(shlex.quote(w) for w in words)


def load_config(root: Union[str, Path]) -> SyntheticConfig:
    """The config of the synthetic dataset at ``root``, read from its ``synthetic.json``.

    This is how a folder written by the command line (with any settings) is read without the caller
    having to repeat them. The folder must hold a complete dataset of the current
    :data:`GENERATOR_VERSION`; anything else raises :class:`SyntheticDatasetError` saying what is
    wrong and how to fix it.
    """
    root = Path(root).expanduser().absolute()
    config: Optional[SyntheticConfig] = None

    def fail(problem: str):
        if config is not None:
            fix = f"Regenerate it with `{cli_command(root, config, overwrite=True)}`."
        elif (root / "synthetic.json").is_file():
            fix = (f"Regenerate it with `{cli_command(root, SyntheticConfig(), overwrite=True)}` "
                   "(change the settings to the ones you want).")
        else:
            fix = (f"Write a dataset into a new or empty folder with `{cli_command(root, SyntheticConfig())}` "
                   "(change the settings to the ones you want), pass config=SyntheticConfig(...) to "
                   "build_dataset to generate one there, or pass root=None to use the cached default.")
            if (root / "images.txt").is_file():
                fix += " If the folder holds CUB-200-2011, read it as dataset 'cub'."
        raise SyntheticDatasetError(f"{root} does not hold a usable synthetic dataset: {problem}. {fix}")

    if not root.exists():
        fail("the folder does not exist")
    if not root.is_dir():
        fail("it is not a folder")
    meta_path = root / "synthetic.json"
    if not meta_path.is_file():
        fail("it has no synthetic.json, the metadata file the generator writes last")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        fail(f"its synthetic.json cannot be read as JSON ({err})")
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        fail("its synthetic.json has no 'config' object")
    try:
        parsed = SyntheticConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as err:
        parsed, config_error = None, err
    version = meta.get("generator_version")
    if version != GENERATOR_VERSION:
        config = parsed
        fail(f"it was written by generator version {version!r} and this code reads version {GENERATOR_VERSION}")
    if parsed is None:
        fail(f"the config in its synthetic.json is invalid ({config_error})")
    config = parsed
    problem = _files_problem(root, config)
    if problem is not None:
        fail(f"it is incomplete: {problem}")
    return config


def generate_synthetic(out_dir: Union[str, Path], config: Optional[SyntheticConfig] = None,
                       overwrite: bool = False, verbose: bool = False) -> Path:
    """Generate the dataset for ``config`` at ``out_dir`` (atomically) and return its path.

    The files are first written into a hidden temporary folder next to ``out_dir`` and then renamed
    into place, so an interrupted run never leaves a partial dataset at ``out_dir``. ``out_dir``
    must not exist or be an empty folder, unless ``overwrite=True`` (then an existing folder is
    replaced; it must look like a synthetic dataset, i.e. contain synthetic.json, as a guard
    against deleting unrelated data). If another process finishes the same dataset first, its
    result is kept and returned.
    """
    config = config or SyntheticConfig()
    if not isinstance(config, SyntheticConfig):
        raise TypeError(f"config must be a SyntheticConfig, got {type(config).__name__}")
    target = Path(out_dir).expanduser().absolute()
    if target.exists() and not _is_empty_dir(target):
        if not target.is_dir():
            raise FileExistsError(f"{target} exists and is not a folder; choose another output path")
        if not overwrite:
            raise FileExistsError(
                f"{target} already exists and is not empty; pass overwrite=True (--overwrite) to "
                "replace it, use ensure_synthetic() to reuse a complete dataset, or choose another path")
        if read_meta(target) is None and not (target / "synthetic.json").exists():
            raise FileExistsError(
                f"refusing to overwrite {target}: it has no synthetic.json, so it does not look like a "
                "synthetic dataset; delete it yourself or choose another path")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(target)
    t0 = time.perf_counter()
    try:
        _write_dataset(tmp, config)
        if overwrite and target.exists() and not _is_empty_dir(target):
            old = _temp_sibling(target)
            os.rename(target, old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST) and is_complete(target, config):
                shutil.rmtree(tmp, ignore_errors=True)  # a concurrent generator won the race
            else:
                raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if verbose:
        dt = time.perf_counter() - t0
        print(f"wrote {config.num_images} images to {target} in {dt:.1f} s "
              f"({config.num_images / max(dt, 1e-9):.0f} images/s)")
    return target


def default_cache_root() -> Path:
    """``$FGVC_CACHE_DIR`` if set, else ``~/.cache/fgvc_lib``; synthetic sets live under synthetic/."""
    from fgvc_lib.paths import cache_dir

    return cache_dir()


def cache_path(config: SyntheticConfig) -> Path:
    return default_cache_root() / "synthetic" / config.short_hash()


def ensure_synthetic(root: Union[str, Path, None] = None, config: Optional[SyntheticConfig] = None,
                     verbose: bool = False) -> Path:
    """Return a folder holding the complete dataset for ``config``, generating it if needed.

    ``root=None`` uses the cache folder ``$FGVC_CACHE_DIR/synthetic/<config hash>`` (default
    ``~/.cache/fgvc_lib/synthetic/<config hash>``). An explicit ``root`` that holds something else
    (another config, or unrelated files) is an error rather than being overwritten.
    """
    config = config or SyntheticConfig()
    if not isinstance(config, SyntheticConfig):
        raise TypeError(f"config must be a SyntheticConfig, got {type(config).__name__}")
    in_cache = root is None
    target = cache_path(config) if in_cache else Path(root).expanduser().absolute()
    if is_complete(target, config):
        return target
    if target.exists() and not _is_empty_dir(target):
        if in_cache:  # our own cache entry, but broken (e.g. files deleted by hand): rebuild it
            if (target / "synthetic.json").exists():
                return generate_synthetic(target, config, overwrite=True, verbose=verbose)
            shutil.rmtree(target)
        else:
            meta = read_meta(target)
            what = ("a synthetic dataset with a different config" if meta is not None
                    else "files that are not a complete synthetic dataset")
            raise FileExistsError(
                f"{target} holds {what}; delete it, pass another root, or pass root=None to use the "
                "cache folder")
    try:
        return generate_synthetic(target, config, verbose=verbose)
    except FileExistsError:
        if is_complete(target, config):  # a concurrent generator finished first
            return target
        raise


# --------------------------------------------------------------------------------------------------
# Reader (a CUB-200-2011 reader with the synthetic metadata on top)
# --------------------------------------------------------------------------------------------------

def _make_reader_class():
    from fgvc_lib.data.cub import CUB200  # imported lazily: the generator itself needs no torch

    class SyntheticFGVC(CUB200):
        """The CUB-200-2011 reader applied to a generated folder, plus the synthetic ground truth.

        ``.meta`` is the content of synthetic.json; ``discriminative_parts(label)`` lists the part
        names that tell class ``label`` (0-based, as yielded by the dataset) apart from its nearest
        classes.
        """

        def __init__(self, root, split: str = "train", transform=None, **kwargs):
            meta = read_meta(root)
            if meta is None:
                raise FileNotFoundError(
                    f"{root} has no readable synthetic.json; generate the dataset with "
                    "fgvc_lib.data.synthetic.ensure_synthetic(root, SyntheticConfig(...)) or "
                    "`python -m fgvc_lib.data.synthetic --out ROOT`")
            super().__init__(root, split, transform=transform, **kwargs)
            self.meta = meta
            self.config = SyntheticConfig.from_dict(meta["config"])

        def _class_meta(self, label: int) -> dict:
            n = len(self.meta["classes"])
            if not 0 <= int(label) < n:
                raise IndexError(f"label {label} out of range: this dataset has {n} classes (0..{n - 1})")
            return self.meta["classes"][int(label)]

        def discriminative_parts(self, label: int) -> List[str]:
            return list(self._class_meta(label)["discriminative_parts"])

        def class_attributes(self, label: int) -> Dict[str, str]:
            return dict(self._class_meta(label)["attributes"])

        def nearest_classes(self, label: int) -> List[int]:
            """0-based labels of the nearest classes of ``label``."""
            return [c["class_id"] - 1 for c in self._class_meta(label)["nearest_classes"]]

    SyntheticFGVC.__module__ = __name__
    SyntheticFGVC.__qualname__ = "SyntheticFGVC"
    return SyntheticFGVC


def __getattr__(name):  # PEP 562: build the reader class on first use
    if name == "SyntheticFGVC":
        cls = _make_reader_class()
        globals()["SyntheticFGVC"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    d = SyntheticConfig()
    p = argparse.ArgumentParser(
        prog="python -m fgvc_lib.data.synthetic",
        description="Generate the synthetic fine-grained bird dataset in the CUB-200-2011 layout.")
    p.add_argument("--out", required=True, help="output folder (reused if it already holds this config)")
    p.add_argument("--num-classes", type=int, default=d.num_classes)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--image-size", type=int, default=d.image_size, help="image side in pixels")
    p.add_argument("--train-per-class", type=int, default=d.train_per_class)
    p.add_argument("--test-per-class", type=int, default=d.test_per_class)
    g = p.add_argument_group("difficulty")
    g.add_argument("--part-scale", type=float, default=d.part_scale, help="size of part details")
    g.add_argument("--min-detail-px", type=float, default=d.min_detail_px,
                   help="minimum width in pixels of stripes, rings, spots")
    g.add_argument("--scale-min", type=float, default=d.scale_range[0],
                   help="smallest bird length as a fraction of the image side")
    g.add_argument("--scale-max", type=float, default=d.scale_range[1], help="largest bird length")
    g.add_argument("--rotation", type=float, default=d.rotation, help="max rotation in degrees")
    g.add_argument("--flip-prob", type=float, default=d.flip_prob)
    g.add_argument("--position-jitter", type=float, default=d.position_jitter,
                   help="0 = centred, 1 = anywhere it fits")
    g.add_argument("--clutter", type=int, default=d.clutter, help="number of background shapes")
    g.add_argument("--distractor-parts", type=float, default=d.distractor_parts,
                   help="fraction of background shapes that mimic a part")
    g.add_argument("--part-colour-prob", type=float, default=d.part_colour_prob,
                   help="probability that a background shape uses a part colour")
    g.add_argument("--colour-jitter", type=float, default=d.colour_jitter)
    g.add_argument("--class-attributes", default=",".join(d.class_attributes),
                   help=f"comma-separated subset of {','.join(ATTRIBUTE_NAMES)}")
    r = p.add_argument_group("rendering")
    r.add_argument("--supersample", type=int, default=d.supersample)
    r.add_argument("--png-compress-level", type=int, default=d.png_compress_level)
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = SyntheticConfig(
            num_classes=args.num_classes, train_per_class=args.train_per_class,
            test_per_class=args.test_per_class, image_size=args.image_size, seed=args.seed,
            part_scale=args.part_scale, min_detail_px=args.min_detail_px,
            scale_range=(args.scale_min, args.scale_max), rotation=args.rotation,
            flip_prob=args.flip_prob, position_jitter=args.position_jitter, clutter=args.clutter,
            distractor_parts=args.distractor_parts, part_colour_prob=args.part_colour_prob,
            colour_jitter=args.colour_jitter,
            class_attributes=tuple(a.strip() for a in args.class_attributes.split(",") if a.strip()),
            supersample=args.supersample, png_compress_level=args.png_compress_level)
        if args.overwrite:
            path = generate_synthetic(args.out, config, overwrite=True, verbose=not args.quiet)
        else:
            existed = is_complete(args.out, config)
            path = ensure_synthetic(args.out, config, verbose=not args.quiet)
            if existed and not args.quiet:
                print(f"{path} already holds this dataset; nothing to do")
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
