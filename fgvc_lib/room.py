"""Room for an attention mechanism: how many cells of each attended feature map a discriminative part covers.

Not from a paper: a check of this study's design (docs/DESIGN.md, "Results"). An attention module that
weights the cells of a feature map can only single out a part that covers at least about one cell;
on a map where a part is a fraction of a cell the mechanism has nothing to select, and a null result
there says nothing about the paper. For every attention site a paper declares (``{site: stride}``, the
map's stride in input pixels, or ``{site: (stride, side)}`` for a map that does not cover the whole input,
such as a patch's), :func:`room_table` gives the map's size at the run's input size and the
median (and 10th percentile) over the test set of the number of map cells a discriminative part's box
covers (its area over a cell's area), for every (image, discriminative part) pair.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from .data.transforms import scale_box

ROOM_COLUMNS = ["site", "stride", "map", "part_cells_median", "part_cells_p10", "parts_scored", "room"]
MIN_CELLS = 1.0      # a part must cover at least this many cells (median) for the site to have room


def part_areas(dataset, image_size: int) -> np.ndarray:
    """Areas (pixels at ``image_size``) of the discriminative parts' boxes of every image of ``dataset``."""
    if not hasattr(dataset, "discriminative_parts"):
        return np.zeros(0)
    areas = []
    for index, label in enumerate(dataset.targets):
        note = dataset.annotation(index)
        boxes = note.get("part_boxes", {})
        for part in dataset.discriminative_parts(label):
            if part in boxes:
                _, _, w, h = scale_box(boxes[part], note["image_size"], image_size)
                areas.append(w * h)
    return np.asarray(areas, dtype=np.float64)


def room_table(sites: Mapping[str, int], dataset, image_size: int) -> pd.DataFrame:
    """One row per attention site (:data:`ROOM_COLUMNS`); ``room`` is "yes" when the median part covers
    at least :data:`MIN_CELLS` cells, "no" otherwise, "unknown" without part boxes."""
    areas = part_areas(dataset, image_size)
    rows = []
    for site, declared in sites.items():
        stride, side = declared if isinstance(declared, tuple) else (declared, None)
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"attention site {site!r}: the stride must be a positive integer; got {stride!r}")
        side = side or math.ceil(image_size / stride)
        cells = areas / float(stride * stride)
        known = cells.size > 0
        median = float(np.median(cells)) if known else float("nan")
        rows.append({"site": site, "stride": stride, "map": f"{side} x {side}",
                     "part_cells_median": median,
                     "part_cells_p10": float(np.percentile(cells, 10)) if known else float("nan"),
                     "parts_scored": int(cells.size),
                     "room": ("yes" if median >= MIN_CELLS else "no") if known else "unknown"})
    return pd.DataFrame(rows, columns=ROOM_COLUMNS)


class ZeroGradient(ValueError):
    """The centre cell's input gradient is zero everywhere (a dead cell): there is no reach to measure."""


def centre_cell_reach(features, image_size: int, square: float, images=None) -> dict:
    """How much of the input one cell of a feature map sees: the input gradient of the map's centre cell (summed
    over channels) on ``images`` (``(N, C, H, W)`` at ``image_size``; default one grey image), summed over images
    and colour channels.

    ``features``: a callable from images to the map ``(N, K, h, w)`` (e.g. a trained backbone's top stage, in
    eval mode). Returns the side (pixels) of the smallest square around the cell's centre that holds every pixel
    of nonzero gradient (``support_side``: the theoretical receptive field, clipped to the image), that square's
    share of the image (``support_share``), and the share of the gradient's mass inside the square of ``square``
    pixels centred on the cell (``mass_in_square``; a part's size, e.g. a keypoint square). A small
    ``mass_in_square`` says that the cell's value depends mostly on what lies around that square, so weighting the
    map's cells weights mostly their surroundings too. It describes the network; by itself it does not say whether
    a spatial attention pays (issue 19, the spatial oracle)."""
    import torch

    if not 0 < square <= image_size:
        raise ValueError(f"square={square} must be in (0, image_size={image_size}]")
    if images is None:
        images = torch.zeros(1, 3, image_size, image_size)
    if tuple(images.shape[-2:]) != (image_size, image_size):
        raise ValueError(f"images of shape {tuple(images.shape)} are not {image_size} x {image_size}")
    images = images.detach().clone().requires_grad_(True)
    grid = features(images)
    h, w = grid.shape[-2:]
    row, col = h // 2, w // 2
    grid[:, :, row, col].sum().backward()
    mass = images.grad.abs().sum(dim=(0, 1)).double()
    # the cell's centre in input pixels (pixel k spans [k, k + 1)): on an even map the centre cell sits off the
    # image's centre, and the square is centred on the cell
    centre_y, centre_x = (row + 0.5) * image_size / h, (col + 0.5) * image_size / w
    rows, cols = torch.nonzero(mass > 0, as_tuple=True)
    if rows.numel() == 0:
        raise ZeroGradient("the centre cell's gradient is zero everywhere: nothing to measure")
    reach = float(torch.max(torch.stack([(rows + 0.5 - centre_y).abs().max(), (cols + 0.5 - centre_x).abs().max()])))
    side = min(float(image_size), 2.0 * reach + 1.0)
    top, left = int(round(centre_y - square / 2.0)), int(round(centre_x - square / 2.0))
    inside = float(mass[max(0, top):top + int(round(square)), max(0, left):left + int(round(square))].sum() / mass.sum())
    return {"support_side": side, "support_share": (side / image_size) ** 2, "mass_in_square": inside}
