"""Annotated regions as "oracle attention" inputs: the positive controls of notebook 00.

Not from a paper. A network fed the ground-truth crop of the bird (``"object"``: the bounding box) or of
the parts that tell its class apart (``"parts"``: the union of the discriminative parts' boxes, synthetic
data only) shows how much a perfect attention mechanism could gain on a dataset. Both carry label
information (the parts that tell a class apart differ between classes; a box's extent follows the part's
shape), so two nearly label-free regions stand beside them: ``"keypoints"`` (a fixed-size square around
the keypoint of every part that defines some class) and ``"head"`` (the same around the head's parts,
:data:`HEAD_PARTS`), whose geometry follows the pose and, a little, the parts' shapes (a synthetic keypoint is
its part box's centre); ``"head-box"`` is the square the head crop cuts, as one box (a mask of the whole region
the head zoom shows). A crop's region is widened
to a square around its centre (so the resize to a square input keeps the aspect ratio), grown by
:data:`CROP_MARGIN` on each side and clipped to the image.

Three controls, one per kind of mechanism (how the reader applies them: :class:`fgvc_lib.data.cub.CUB200`):

* the crop of the source image (``crop``): detail the network's own input does not carry;
* the zoom (``crop`` with ``crop_input_size``): the crop cut from the image already resized to the
  network's input and resized back, so it shows no pixel the input lacks. The ceiling of the methods
  that resample their input (CRA-CNN's ART, the recurrent attention's patches);
* the region mask (``mask``): the region's pixels as a fourth channel of the image tensor, which
  :class:`fgvc_lib.models.mask_pooling.MaskPooledNet` uses as the weights of its global pooling. The
  ceiling of the methods that re-weight feature maps (CLAN, CRA-SMRA, SSANet).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

CROP_REGIONS = ("object", "parts", "keypoints", "head", "head-box")
# "head-box": the square the "head" crop cuts (the head's keypoint squares, their union squared and grown by
# CROP_MARGIN), as one box: as a mask, the region the head zoom oracle shows, where "head" marks the squares alone
CROP_MARGIN = 0.1   # share of the region's side added on each side
# The nearly label-free regions ("keypoints", "head"; "head-box" is grown from the head's): a square of this share of the image's longer side around each
# part's keypoint (24 px of the 192-px synthetic drawing, between the eye's and the beak's median box side).
# "parts" uses the boxes of the parts that tell the image's own class apart, and the boxes' extent follows the
# parts' shapes: both carry the label (notebook 00 measures how much, with a classifier fed the region alone).
KEYPOINT_SIDE = 0.125
HEAD_PARTS = ("beak", "crown", "eye")     # the "head" region: parts whose name holds one of these words, the same
# for every class (synthetic: beak, crown, eye; CUB-200-2011: beak, crown, left eye, right eye)


def check_crop(region: Optional[str]) -> Optional[str]:
    """``region`` if it is None or one of :data:`CROP_REGIONS`, else a ValueError naming them."""
    if region is not None and region not in CROP_REGIONS:
        raise ValueError(f"unknown crop region {region!r}; valid: {', '.join(CROP_REGIONS)} (or None: the whole image)")
    return region


def zoom_factors(dataset, region: str):
    """Per image of ``dataset`` (a CUB-layout reader with boxes), how much the crop to ``region``
    magnifies the image once both are resized to the network's input: the image's longer side over
    the crop's. Near 1, the crop shows the network what the whole image shows."""
    import numpy as np

    factors = []
    for index in range(len(dataset)):
        left, top, right, bottom = dataset.crop_bounds(index, region)
        factors.append(max(dataset.annotation(index)["image_size"]) / max(right - left, bottom - top))
    return np.asarray(factors, dtype=float)


def union_box(boxes: Sequence[Sequence[float]]) -> Tuple[float, float, float, float]:
    """The smallest box ``(x, y, w, h)`` holding every box of ``boxes``."""
    if not boxes:
        raise ValueError("no box to take the union of")
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


def square_crop(box: Sequence[float], image_size: Tuple[int, int], margin: float = CROP_MARGIN):
    """PIL crop bounds ``(left, top, right, bottom)``: ``box`` squared around its centre, grown by
    ``margin`` of its side on each side, clipped to ``image_size`` (w, h)."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    width, height = image_size
    left, top = max(0.0, cx - side / 2.0), max(0.0, cy - side / 2.0)
    right, bottom = min(float(width), cx + side / 2.0), min(float(height), cy + side / 2.0)
    if right - left < 1 or bottom - top < 1:
        raise ValueError(f"box {tuple(box)} lies outside the image of size {image_size}")
    return (int(left), int(top), int(round(right)), int(round(bottom)))


def check_crop_input_size(size, crop: Optional[str]) -> Optional[int]:
    """``size`` (None, or a positive int with a crop region set), else a ValueError."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"crop_input_size must be a positive number of pixels; got {size!r}")
    if crop is None:
        raise ValueError(f"crop_input_size needs a crop region (one of {', '.join(CROP_REGIONS)}) to cut from the "
                         f"resized image")
    return size


def scale_bounds(bounds: Sequence[int], image_size: Tuple[int, int], size: int) -> Tuple[int, int, int, int]:
    """PIL crop ``bounds`` of an image of ``image_size`` (w, h), mapped into that image squashed to
    ``size`` x ``size`` (the ``"resize"`` transform's geometry), rounded outwards and kept non-empty."""
    import math

    width, height = image_size
    sx, sy = size / float(width), size / float(height)
    left, top = math.floor(bounds[0] * sx), math.floor(bounds[1] * sy)
    right, bottom = math.ceil(bounds[2] * sx), math.ceil(bounds[3] * sy)
    return (min(left, size - 1), min(top, size - 1), max(right, left + 1), max(bottom, top + 1))


def with_mask_channel(image, boxes: Sequence[Sequence[float]], transform=None):
    """``image`` (an RGB ``PIL.Image``) with the mask of ``boxes`` (x, y, w, h; 1 on their pixels,
    :func:`fgvc_lib.masks.union_mask`) as a fourth channel.

    Without ``transform``: an RGBA ``PIL.Image`` whose alpha is the mask (255 / 0). With ``transform`` (a
    pipeline of :func:`~fgvc_lib.data.transforms.build_transforms`, which ends in the ImageNet normalisation):
    the tensor ``(4, H, W)``, the colours transformed exactly as ``transform(image)`` alone would be and the
    mask (in [0, 1]) moved by the same random draws (resize, crop, flip), so it stays on the same pixels. The
    two go through the transform separately because PIL resizes an RGBA image with premultiplied alpha,
    which would blacken every pixel outside the mask."""
    import numpy as np
    import torch
    from PIL import Image

    from ..masks import union_mask
    from .transforms import IMAGENET_MEAN, IMAGENET_STD

    width, height = image.size
    mask = Image.fromarray(union_mask((height, width), boxes).astype(np.uint8) * 255, mode="L")
    if transform is None:
        rgba = image.convert("RGBA")
        rgba.putalpha(mask)
        return rgba
    state = torch.get_rng_state()
    colours = transform(image)
    torch.set_rng_state(state)                  # the mask takes the same random draws as the colours
    moved = transform(mask.convert("RGB"))[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]   # undo the normalisation
    return torch.cat([colours, moved.clamp(0.0, 1.0)[None]], dim=0)
