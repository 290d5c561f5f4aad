"""Notebook 01's views of CRA-CNN's attention (Figure 4 and the distribution of Gamma) and their scores.

* :func:`attention_iou`: per test image, the intersection over union of the region the ART module
  samples (the parallelogram the attention grid spans, :func:`fgvc_lib.models.cra_transform.attention_region_mask`)
  with the bird's ground-truth box: how well the attention finds the object, the measurable side of
  Figure 4's "the STN cannot capture meaningful attention".
* :func:`fixed_region_iou`: the same IoU for a region that does not depend on the image: the whole image
  (the "no crop" reference a model's attention must beat to have found the bird) or eq. 7's
  expectation E (the centred half crop CRA-CNN's Gamma starts at).
* :func:`loss_drop` / :func:`generalization_gap`: per run, how far a training loss fell (the STN's
  convergence) and the train-minus-test accuracy of each test image (overfitting).
* :func:`attention_figure`: input, attention image and redundancy image of CRA-CNN and of the STN.
* :func:`gamma_table` / :func:`gamma_figure`: the learned attention parameters (location, scale,
  angle) over the test set.
* :func:`comparison_view`: a Table 2 / 3 block, our "Ours" row above the paper's other methods.
"""
from __future__ import annotations

from typing import Dict, Mapping

import numpy as np
import pandas as pd
import torch

GAMMA_NAMES = ("x (horizontal location)", "y (vertical location)", "scale", "angle (rad)")


@torch.no_grad()
def attend(model, images: torch.Tensor, batch_size: int = 64) -> Dict[str, torch.Tensor]:
    """The ART module's output for ``images`` (eval mode, batched; model left in eval mode), computed on
    the model's device a batch at a time and returned on the CPU."""
    from ..cam import model_device

    model.eval()
    device = model_device(model)
    parts = [{key: value.cpu() for key, value in model.attend(images[i:i + batch_size].to(device)).items()}
             for i in range(0, len(images), batch_size)]
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


def box_mask(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(B, height, width) masks of the pixels whose centres lie in each ``(x, y, w, h)`` box.

    Pixel centres, the rule :func:`~fgvc_lib.models.cra_transform.attention_region_mask` applies to the
    attention region, so the IoU compares like with like; :func:`fgvc_lib.masks.box_mask` takes every
    pixel a box overlaps (a fractional edge counts), which would enlarge the bird's box."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    x, y, w, h = (np.asarray(boxes, dtype=float)[:, k, None, None] for k in range(4))
    return (xs >= x) & (xs <= x + w) & (ys >= y) & (ys <= y + h)


def attention_iou(model, sample) -> np.ndarray:
    """Per image of ``sample`` (:class:`fgvc_lib.localization.CamSample`): IoU of the attention region
    with the bird's box, in [0, 1]."""
    from ..models.cra_transform import attention_region_mask

    height, width = sample.images.shape[-2:]
    theta = attend(model, sample.images)["theta"]
    region = attention_region_mask(theta, height, width, model.config.align_corners)[:, 0].numpy() > 0.5
    return _iou(region, sample)


def _iou(region: np.ndarray, sample) -> np.ndarray:
    height, width = region.shape[-2:]
    bird = box_mask(sample.object_boxes, height, width)
    union = (region | bird).sum(axis=(1, 2))
    return np.where(union > 0, (region & bird).sum(axis=(1, 2)) / np.maximum(union, 1), 0.0)


def fixed_region_iou(sample, theta, align_corners: bool = True) -> np.ndarray:
    """Per image of ``sample``: IoU with the bird's box of the region one fixed affine matrix ``theta``
    (2 x 3) spans, the same for every image. The identity is the whole image: its IoU is the box's share
    of the image, what an attention that crops nothing scores."""
    from ..models.cra_transform import attention_region_mask

    height, width = sample.images.shape[-2:]
    theta = torch.as_tensor(theta, dtype=torch.float32).reshape(1, 2, 3).expand(len(sample.images), 2, 3)
    region = attention_region_mask(theta, height, width, align_corners)[:, 0].numpy() > 0.5
    return _iou(region, sample)


WHOLE_IMAGE_THETA = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


def expectation_theta(config) -> torch.Tensor:
    """Eq. 4's matrix at eq. 7's expectation E (the centred half crop), for :func:`fixed_region_iou`."""
    from ..models.cra_transform import attention_theta

    return attention_theta(torch.tensor([list(config.expectation)], dtype=torch.float32))[0]


def loss_drop(history, key: str) -> float:
    """How far the training loss ``key`` (e.g. ``"train_ce_ar"``) fell over a run, in % of its first
    epoch's value: ``100 (first - last) / first`` over the epochs where it is finite. A run that
    diverged before finishing one epoch has no finite value and counts as 0 (it fell nowhere)."""
    values = [v for v in history.series(key) if isinstance(v, (int, float)) and np.isfinite(v)]
    if len(values) < 1 or values[0] == 0:
        return 0.0
    return 100.0 * (values[0] - values[-1]) / values[0]


def generalization_gap(run) -> np.ndarray:
    """Per test image of ``run`` (:class:`fgvc_lib.study.runner.Run`): its last finite epoch's training
    accuracy (%, on the training crops as they were seen, running over the epoch) minus 100 if the image
    is classified right, else minus 0; the mean is the train-minus-test accuracy gap (overfitting)."""
    accuracies = [v for v in run.history.series("train_acc") if isinstance(v, (int, float)) and np.isfinite(v)]
    train = 100.0 * accuracies[-1] if accuracies else 0.0
    return train - run.correct()


def attention_figure(models: Mapping[str, object], sample, denormalize, count: int = 6):
    """Figure 4: per image, the input, then each model's attention and redundancy images."""
    from ..reporting import new_figure

    images = sample.images[:count]
    columns = [("input", denormalize(images))]
    for label, model in models.items():
        out = attend(model, images)
        columns += [(f"{label}: attention", denormalize(out["attention"])),
                    (f"{label}: redundancy", denormalize(out["redundancy"]))]
    figure = new_figure(figsize=(1.7 * len(columns), 1.7 * len(images)))
    axes = figure.subplots(len(images), len(columns), squeeze=False)
    for j, (title, batch) in enumerate(columns):
        for i in range(len(images)):
            axes[i, j].imshow(batch[i].permute(1, 2, 0).clamp(0, 1).numpy())
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(title, fontsize=8)
    figure.tight_layout()
    return figure


def gamma_table(runs, images: torch.Tensor) -> pd.DataFrame:
    """Gamma_res (eq. 6) of every seed's CRA-CNN on ``images``: one row per (seed, image)."""
    frames = []
    for run in runs:
        gamma = attend(run.model, images)["gamma"].numpy()
        frame = pd.DataFrame(gamma, columns=list(GAMMA_NAMES))
        frame.insert(0, "seed", run.seed)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def gamma_figure(table: pd.DataFrame, expectation):
    """Histograms of the four attention parameters over the test images, all seeds; the dashed line
    is eq. 7's expectation E."""
    from ..reporting import new_figure

    figure = new_figure(figsize=(3.2 * len(GAMMA_NAMES), 2.6))
    axes = figure.subplots(1, len(GAMMA_NAMES))
    for ax, name, expected in zip(axes, GAMMA_NAMES, expectation):
        values = table[name].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size:
            ax.hist(finite, bins=30, color="tab:blue", alpha=0.8)
        ax.axvline(expected, color="k", linestyle="--", linewidth=1)
        missing = values.size - finite.size   # a diverged run's Gamma is not a number: counted, not drawn
        ax.set_title(name + (f" ({missing} not finite)" if missing else ""), fontsize=9)
    axes[0].set_ylabel("test images (all seeds)")
    figure.tight_layout()
    return figure


def comparison_view(df: pd.DataFrame, others: pd.Series) -> pd.DataFrame:
    """Our rows of a Table 2 / 3 (a results table) with the paper's other methods below (``others``: row ->
    printed top-1 %, :func:`fgvc_lib.papers.cra_cnn.other_methods`), paper only."""
    from ..reporting import paper_vs_reproduced

    ours = paper_vs_reproduced(df)
    if others.empty:
        return ours
    rows = pd.DataFrame({"paper": others.astype(float)}).rename_axis("row")
    out = pd.concat([ours, rows])[list(ours.columns)]
    text = [c for c in out.columns if c != "paper"]
    out[text] = out[text].astype(object).where(out[text].notna(), "")
    return out
