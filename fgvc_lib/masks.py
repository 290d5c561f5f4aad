"""Pixel masks of annotation boxes: the one place a box becomes a mask.

Not from a paper. Used by the localization scores (a CAM's peak or energy inside the bird's box or the
discriminative parts' boxes, :mod:`fgvc_lib.cam`, :mod:`fgvc_lib.localization`) and by the
spatial-attention oracle of notebook 00, whose pooling weights are the parts' or the bird's mask
(:mod:`fgvc_lib.data.crops`, :mod:`fgvc_lib.models.mask_pooling`). numpy only, so a data-loading
worker can import it without the CAM libraries.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np


def box_mask(shape: Sequence[int], box: Sequence[float], tolerance: float = 0.0) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixels that overlap ``box=(x, y, w, h)``, clipped to the image.

    ``tolerance`` grows the box by that many pixels on every side (the pointing game's usual slack).
    """
    height, width = int(shape[0]), int(shape[1])
    if len(box) != 4:
        raise ValueError(f"a box is (x, y, w, h) in pixels, got {box!r}")
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w < 0 or h < 0:
        raise ValueError(f"box (x, y, w, h) must be finite with w, h >= 0, got {box!r}")
    x0, y0 = x - tolerance, y - tolerance
    x1, y1 = x + w + tolerance, y + h + tolerance
    c0, c1 = max(0, math.floor(x0)), min(width, math.ceil(x1))
    r0, r1 = max(0, math.floor(y0)), min(height, math.ceil(y1))
    mask = np.zeros((height, width), dtype=bool)
    if c1 > c0 and r1 > r0:
        mask[r0:r1, c0:c1] = True
    return mask


def union_mask(shape: Sequence[int], boxes: Iterable[Sequence[float]]) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixels inside any of ``boxes`` (x, y, w, h)."""
    mask = np.zeros((int(shape[0]), int(shape[1])), dtype=bool)
    for box in boxes:
        mask |= box_mask(shape, box)
    return mask
