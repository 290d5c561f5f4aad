"""Notebook 04's views of the recurrent local stream: per-step Grad-CAM maps, their scores, the patches.

Chapter 5 of the thesis runs Grad-CAM "on the output of the local stream" for each time step's hidden
representation and says the maps grow finer with the steps (Figures 5.1-5.2); Figure 6.2 marks which
steps classify an image correctly; Figure 7.3 compares the maps with and without self-attention. Here:

* step t's map: Grad-CAM (the grad-cam package, :func:`fgvc_lib.cam.compute_cams`) of the true class's
  score of the local classifier on ``phi_t`` alone (:class:`StepClassifier`), read at the patch CNN's
  last feature map, on the patch the model uses for the image (its deterministic test patch);
* ``map area``: the share of the patch (percent) that holds half of the map's mass, smallest pixels
  last: small for a concentrated map, 50 for a flat one (an all-zero map counts as flat);
* ``map on parts``: the share of the map's mass (percent) inside the discriminative parts' boxes, moved
  into the patch's pixels (a flat map scores the parts' share of the patch);
* ``patch covers a part``: whether the chosen box contains the centre of a discriminative part
  (percent), beside ``centre box covers a part``, a box of the same size in the image's centre, and
  ``parts' share of the patch``: the share of the patch the parts cover (percent), what a flat map
  scores as ``map on parts``.

The model runs on its own device (:func:`fgvc_lib.cam.model_device`), ``batch_size`` images at a time
(:func:`fgvc_lib.cam.view_batch_size`: by default the whole sample on the CPU, as before); patches, boxes
and maps come back to the CPU.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..cam import compute_cams, model_device, view_batch_size
from ..masks import union_mask
from . import recurrent_attention as paper


class StepClassifier(nn.Module):
    """The local stream's prediction from step ``step``'s hidden state alone (1-based), on a patch."""

    def __init__(self, model: nn.Module, step: int):
        super().__init__()
        if not 1 <= step <= model.steps:
            raise ValueError(f"step must be in 1..{model.steps}; got {step}")
        self.model, self.step = model, step

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.model.local_stream(patches)["step_logits"][:, self.step - 1]


@torch.no_grad()
def _evaluated(model, call):
    """``call()`` with ``model`` in evaluation mode, its mode restored afterwards."""
    training = model.training
    model.eval()
    try:
        return call()
    finally:
        model.train(training)


def evaluation_patches(model, images: torch.Tensor, batch_size: Optional[int] = None):
    """(patches, boxes (B, 4) x1 y1 x2 y2) as the model picks them in evaluation, on the CPU (computed on
    the model's device, ``batch_size`` images at a time)."""
    device = model_device(model)
    chunk = view_batch_size(batch_size, len(images), device)
    parts = [_evaluated(model, lambda x=images[start:start + chunk].to(device): model.patches(x))
             for start in range(0, len(images), chunk)]
    if len(parts) == 1:
        return tuple(t.cpu() for t in parts[0])
    return torch.cat([p.cpu() for p, _ in parts]), torch.cat([b.cpu() for _, b in parts])


def step_cams(model, patches: torch.Tensor, labels: torch.Tensor, steps: Optional[Sequence[int]] = None,
              batch_size: Optional[int] = None) -> np.ndarray:
    """(len(steps), B, p, p): each step's Grad-CAM map of the true class on the patches, in [0, 1]
    (on the model's device, ``batch_size`` patches at a time)."""
    steps = list(steps or range(1, model.steps + 1))
    return np.stack([compute_cams(StepClassifier(model, t), patches, target_layers=model.patch_target_layers(),
                                  targets=labels, batch_size=batch_size) for t in steps])


def half_mass_area(cam: np.ndarray) -> float:
    """Percent of the map's pixels that hold half of its mass (largest first); 50 for a flat map."""
    values = np.sort(np.clip(cam.ravel().astype(np.float64), 0.0, None))[::-1]
    total = values.sum()
    if total <= 0:
        values, total = np.ones_like(values), float(values.size)
    needed = int(np.searchsorted(np.cumsum(values), 0.5 * total - 1e-12) + 1)
    return 100.0 * needed / values.size


def parts_in_patch(part_boxes: Sequence[Sequence[float]], box: Sequence[float], patch_size: int) -> List[List[float]]:
    """Part boxes (x, y, w, h in image pixels) moved into the pixels of the patch cut from ``box`` (x1 y1 x2 y2)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    sx, sy = patch_size / (x2 - x1), patch_size / (y2 - y1)
    return [[(x - x1) * sx, (y - y1) * sy, w * sx, h * sy] for x, y, w, h in part_boxes]


def mass_on_parts(cam: np.ndarray, part_boxes: Sequence[Sequence[float]]) -> float:
    """Percent of the map's mass inside the union of ``part_boxes`` (patch pixels)."""
    cam = np.clip(cam.astype(np.float64), 0.0, None)
    if cam.sum() <= 0:
        cam = np.ones_like(cam)
    return 100.0 * float(cam[union_mask(cam.shape, part_boxes)].sum() / cam.sum())


def covers_a_part(box: Sequence[float], part_boxes: Sequence[Sequence[float]]) -> float:
    """100 when the box (x1 y1 x2 y2) holds the centre of one of ``part_boxes`` (x, y, w, h), else 0."""
    x1, y1, x2, y2 = box
    return 100.0 * any(x1 <= x + w / 2 <= x2 and y1 <= y + h / 2 <= y2 for x, y, w, h in part_boxes)


def centre_box(image_size: Sequence[int], side: float) -> List[float]:
    height, width = image_size
    return [(width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2]


def step_map_scores(model, sample, steps: Optional[Sequence[int]] = None,
                    batch_size: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Per image of ``sample`` (:class:`fgvc_lib.localization.CamSample`): ``"step <t>: map area"`` for
    every step, and, when the sample has part boxes, ``"step <t>: map on parts"`` (module docstring)."""
    steps = list(steps or range(1, model.steps + 1))
    patches, boxes = evaluation_patches(model, sample.images, batch_size)
    cams = step_cams(model, patches, sample.labels, steps, batch_size)
    size = patches.shape[-1]
    scores = {f"step {t}: {paper.MAP_AREA}": np.array([half_mass_area(c) for c in cams[k]])
              for k, t in enumerate(steps)}
    if sample.has_parts:
        moved = [parts_in_patch(parts, box.tolist(), size) for parts, box in zip(sample.part_boxes, boxes)]
        for k, t in enumerate(steps):
            scores[f"step {t}: {paper.MAP_ON_PARTS}"] = np.array([mass_on_parts(c, m) for c, m in zip(cams[k], moved)])
    return scores


def patch_scores(model, sample, batch_size: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Per image: does the model's test box, and a centred box of the same size, cover a part, and how much
    of the patch the parts cover (percent)."""
    patches, boxes = evaluation_patches(model, sample.images, batch_size)
    side = float(boxes[0, 2] - boxes[0, 0])
    centre = centre_box(sample.images.shape[-2:], side)
    size = patches.shape[-1]
    flat = np.ones((size, size))
    return {paper.PATCH_ON_PART: np.array([covers_a_part(b.tolist(), p) for b, p in zip(boxes, sample.part_boxes)]),
            paper.CENTRE_BOX_ON_PART: np.array([covers_a_part(centre, p) for p in sample.part_boxes]),
            paper.PART_SHARE: np.array([mass_on_parts(flat, parts_in_patch(p, b.tolist(), size))
                                        for b, p in zip(boxes, sample.part_boxes)])}


# ----------------------------------------------------------------------------- figures
def step_map_figure(models: Mapping[str, object], sample, denormalize, count: int = 3,
                    steps: Optional[Sequence[int]] = None):
    """Figures 5.1-5.2, 6.2 and 7.3: per image and model, the image with the patch's box (yellow) and the
    discriminative parts' boxes (white, where the dataset has them), the patch with the parts, and each
    step's Grad-CAM map on the patch, titled with whether step t's joint prediction is right (Figure 6.2's
    marks)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    first = next(iter(models.values()))
    steps = list(steps or range(1, first.steps + 1))
    images, labels = sample.images[:count], sample.labels[:count]
    rows = [(label, model, index) for index in range(len(images)) for label, model in models.items()]
    columns = 2 + len(steps)
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.15 * columns, 1.25 * len(rows) + 0.3), squeeze=False)
    cache = {}
    for label, model in models.items():
        patches, boxes = evaluation_patches(model, images)
        branches = _evaluated(model, lambda: model(images.to(model_device(model))).extras["branch_logits"])
        correct = np.stack([(branches[f"step{t}"].argmax(1).cpu() == labels).numpy() for t in steps])
        cache[label] = (patches, boxes, step_cams(model, patches, labels, steps), correct)
    for row, (label, model, index) in enumerate(rows):
        patches, boxes, cams, correct = cache[label]
        picture = denormalize(images[index]).permute(1, 2, 0).numpy()
        patch = denormalize(patches[index]).permute(1, 2, 0).numpy()
        axes[row, 0].imshow(picture)
        x1, y1, x2, y2 = boxes[index].tolist()
        axes[row, 0].add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="yellow", linewidth=1))
        axes[row, 0].set_ylabel(f"{label}\n{sample.titles[index].splitlines()[0][:14]}", fontsize=6)
        axes[row, 1].imshow(patch)
        parts = sample.part_boxes[index]
        for ax, shown in ((axes[row, 0], parts), (axes[row, 1], parts_in_patch(parts, [x1, y1, x2, y2], patch.shape[0]))):
            for x, y, w, h in shown:
                ax.add_patch(Rectangle((x, y), w, h, fill=False, color="white", linewidth=0.8))
        if row == 0:
            axes[row, 0].set_title("image, box", fontsize=7)
            axes[row, 1].set_title("patch", fontsize=7)
        for k, t in enumerate(steps):
            ax = axes[row, 2 + k]
            ax.imshow(patch)
            ax.imshow(cams[k, index], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            ok = bool(correct[k, index])
            ax.set_title(f"t={t} {'right' if ok else 'wrong'}", fontsize=6, color="green" if ok else "red")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    return figure


def by_step_figure(table, metrics: Sequence[str], models: Sequence[str]):
    """Mean over seeds (with the seeds' spread) of each step's map score, one panel per metric; ``table`` is
    :meth:`fgvc_lib.study.Study.scores_table` of rows ``"<model> step <t>"``."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for model in models:
            part = table[(table["metric"] == metric) & table["row"].str.startswith(f"{model} step ")]
            if part.empty:
                continue
            steps = part["row"].str.rsplit(" ", n=1).str[-1].astype(int)
            ax.errorbar(steps, part["reproduced"], yerr=part["std"], marker="o", capsize=2, label=model)
        ax.set_xlabel("time step t")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(metric, fontsize=9)
        ax.legend(fontsize=7)
    figure.tight_layout()
    return figure


def accuracy_by_row_figure(table, title: str, xlabel: str):
    """Table 6.2 and Figure 6.1 as bars: ours (mean over seeds, the seeds' spread) beside the paper's,
    where it prints a number."""
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(table) + 1.5), 3.0))
    positions = np.arange(len(table))
    has_paper = table["paper"].notna().any()
    width = 0.4 if has_paper else 0.7
    ax.bar(positions - (width / 2 if has_paper else 0), table["reproduced"], width, yerr=table["std"].fillna(0),
           capsize=2, label="ours")
    if has_paper:
        ax.bar(positions + width / 2, table["paper"], width, label="paper", color="lightgray")
    ax.set_xticks(positions)
    ax.set_xticklabels(table["row"], rotation=45, ha="right", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    figure.tight_layout()
    return figure
