"""Notebook 02's views of CRA-SMRA's stage maps (Figures 4-6) and the scores of Figure 4's claim.

Figure 4 of the paper draws, for each of the three stages CRAM follows, "the activation map obtained by
averaging the activation values of the channel dimension" of the stage's output ``X_e``
(:func:`fgvc_lib.models.cra_smra.stage_activation_maps`), and says that with SMRAM the three stages
"focus on multiple distinct discriminative parts". With the synthetic ground truth this is scored per
image (:func:`stage_map_scores`):

* ``distinct parts``: the three maps' peaks (at image resolution) fall in how many different
  discriminative parts, as a share of the most they could (the number of the class's discriminative
  parts, at most 3), in percent;
* ``stage maps overlap``: each map made a distribution over the image (shifted to a minimum of 0,
  summed to 1), then the overlap measure of L_div (:func:`fgvc_lib.models.cra_smra.diversity_loss`,
  unit form): 0 for maps on disjoint regions, 100 for identical maps;
* ``stage<k> part pointing``: whether stage k's peak lies on a discriminative part, in percent.

CRAM's suppression mask (eq. 5, our reading in :mod:`fgvc_lib.models.cra_smra`) is measured post hoc
on trained models (:func:`suppressed_channel_shares`, :func:`suppression_table`): per site and test
image, the share of channels the mask suppresses at the model's own delta, and the spread of the channel
importance ``I`` (a channel is suppressed when its ``I`` lies within ``-ln(delta)`` of the top one).
"""
from __future__ import annotations

from typing import Dict, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..masks import box_mask


@torch.no_grad()
def upsampled_stage_maps(model, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """(B, stages, H, W): each stage's channel-mean map of ``X_e``, bilinearly resized to the image;
    computed on the model's device, ``batch_size`` images at a time, and returned on the CPU."""
    from ..cam import model_device
    from ..models.cra_smra import stage_activation_maps

    device = model_device(model)
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size].to(device)
        maps = stage_activation_maps(model, chunk)
        out.append(torch.stack([F.interpolate(m[:, None], size=chunk.shape[-2:], mode="bilinear",
                                              align_corners=False)[:, 0] for m in maps.values()], dim=1).cpu())
    return torch.cat(out)


def stage_map_scores(model, sample) -> Dict[str, np.ndarray]:
    """Per image of ``sample`` (:class:`fgvc_lib.localization.CamSample`): the scores of the module
    docstring, in percent (the overlap alone when the sample has no discriminative part boxes)."""
    from ..models.cra_smra import diversity_loss

    maps = upsampled_stage_maps(model, sample.images)
    batch, stages, height, width = maps.shape
    shifted = maps - maps.flatten(2).amin(dim=2)[..., None, None]
    distributions = shifted.flatten(2) / shifted.flatten(2).sum(dim=2, keepdim=True).clamp_min(1e-12)
    overlap = torch.stack([diversity_loss(distributions[i:i + 1]) for i in range(batch)]).numpy()
    scores = {"stage maps overlap": 100.0 * overlap.astype(np.float64)}
    if not sample.has_parts:   # a real dataset: no part boxes to point at
        return scores
    distinct, pointing = [], [[] for _ in range(stages)]
    for image, parts in enumerate(sample.part_boxes):
        masks = [box_mask((height, width), box) for box in parts]
        hit_parts = set()
        for stage in range(stages):
            peak = np.unravel_index(int(maps[image, stage].argmax()), (height, width))
            inside = [k for k, mask in enumerate(masks) if mask[peak]]
            hit_parts.update(inside[:1])
            pointing[stage].append(100.0 * bool(inside))
        distinct.append(100.0 * len(hit_parts) / max(1, min(stages, len(parts))))
    scores["distinct parts"] = np.asarray(distinct, dtype=np.float64)
    for stage, values in enumerate(pointing):
        scores[f"stage{stage + 3} part pointing"] = np.asarray(values, dtype=np.float64)
    return scores


def stage_map_figure(models: Mapping[str, object], images: torch.Tensor, denormalize, titles: Sequence[str] = ()):
    """Figures 4-6: per image, the input and each model's three stage maps (rows: models)."""
    import matplotlib.pyplot as plt

    maps = {label: upsampled_stage_maps(model, images) for label, model in models.items()}
    stages = next(iter(maps.values())).shape[1]
    columns = len(images) * (1 + stages)
    figure, axes = plt.subplots(len(models), columns, figsize=(1.3 * columns, 1.4 * len(models) + 0.4),
                                squeeze=False)
    for row, (label, stack) in enumerate(maps.items()):
        for index, image in enumerate(images):
            base = index * (1 + stages)
            picture = denormalize(image).permute(1, 2, 0).numpy()
            axes[row, base].imshow(picture)
            if row == 0 and len(titles) > index:
                axes[row, base].set_title(titles[index], fontsize=6)
            for stage in range(stages):
                axes[row, base + 1 + stage].imshow(picture)
                axes[row, base + 1 + stage].imshow(stack[index, stage].numpy(), cmap="jet", alpha=0.5)
                if row == 0:
                    axes[row, base + 1 + stage].set_title(f"stage {stage + 3}", fontsize=7)
        axes[row, 0].set_ylabel(label, fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    return figure


@torch.no_grad()
def suppressed_channel_shares(model, images: torch.Tensor, batch_size: int = 64) -> Dict[str, Dict[str, np.ndarray]]:
    """Per CRAM site of ``model`` (a :class:`~fgvc_lib.models.cra_smra.CRASMRA`), per image of ``images``,
    in eval mode (the model's mode is restored): ``{site: {"suppressed": % of the site's channels the mask
    suppresses at the site's own delta, "spread": max_c I_c - min_c I_c}}``.

    The share is counted from the channel importance ``I`` the model returns (``softmax(I)_c >= delta *
    max softmax(I)``, eq. 5 as the model reads it), so it does not depend on omega (omega = 1 leaves the
    map unchanged but the channels are still the ones selected). ``{}`` for a model without CRAM.
    The model runs on its own device, ``batch_size`` images at a time; ``I`` is read on the CPU."""
    from ..cam import model_device
    from ..models.cra_smra import ChannelReAttention

    sites = {stage: site for stage, site in model.sites.items() if isinstance(site, ChannelReAttention)}
    if not sites:
        return {}
    was_training = model.training
    model.eval()
    shares: Dict[str, list] = {stage: [] for stage in sites}
    spreads: Dict[str, list] = {stage: [] for stage in sites}
    device = model_device(model)
    try:
        for start in range(0, len(images), batch_size):
            importance = model(images[start:start + batch_size].to(device)).extras["channel_importance"]
            for stage, site in sites.items():
                values = importance[stage].cpu().double()
                normalised = torch.softmax(values, dim=1)
                chosen = normalised >= site.delta * normalised.amax(dim=1, keepdim=True)
                shares[stage].append(100.0 * chosen.double().mean(dim=1))
                spreads[stage].append(values.amax(dim=1) - values.amin(dim=1))
    finally:
        model.train(was_training)
    return {stage: {"suppressed": torch.cat(shares[stage]).numpy(), "spread": torch.cat(spreads[stage]).numpy()}
            for stage in sites}


def suppression_table(models: Mapping[str, Sequence[object]], images: torch.Tensor):
    """One row per (model, CRAM site): the model's delta, the window ``-ln(delta)`` (a channel whose
    importance lies this close to the top one is suppressed), the share of suppressed channels in percent
    (mean over the models' seeds and images, and its smallest and largest per-image value) and the mean
    spread of ``I`` (largest minus smallest) per image. ``models``: ``{label: [trained models, one per
    seed]}``."""
    import pandas as pd

    from ..models.cra_smra import ChannelReAttention, suppression_window

    rows = []
    for label, runs in models.items():
        per_site: Dict[str, Dict[str, list]] = {}
        deltas = {}
        for model in runs:
            for stage, values in suppressed_channel_shares(model, images).items():
                entry = per_site.setdefault(stage, {"suppressed": [], "spread": []})
                entry["suppressed"].append(values["suppressed"])
                entry["spread"].append(values["spread"])
                site = model.sites[stage]
                if isinstance(site, ChannelReAttention):
                    deltas[stage] = site.delta
        for stage, entry in per_site.items():
            shares, spreads = np.concatenate(entry["suppressed"]), np.concatenate(entry["spread"])
            rows.append({"model": label, "site": stage, "delta": deltas[stage],
                         "window -ln(delta)": suppression_window(deltas[stage]),
                         "suppressed channels (%)": float(shares.mean()),
                         "min per image (%)": float(shares.min()), "max per image (%)": float(shares.max()),
                         "I spread (max - min)": float(spreads.mean()), "n_seeds": len(entry["suppressed"])})
    return pd.DataFrame(rows).set_index(["model", "site"])


def write_suppression(table, results_dir) -> "Path":
    """Write :func:`suppression_table` as ``<results_dir>/suppression.csv`` (one row per model and site)."""
    from pathlib import Path

    from ..reporting import write_csv

    flat = table.reset_index()
    return write_csv(flat, Path(results_dir) / "suppression.csv", list(flat.columns), what="suppression table")


def suppression_figure(table):
    """The share of suppressed channels per model (x) and CRAM site (bars), from :func:`suppression_table`."""
    import matplotlib.pyplot as plt

    shares = table["suppressed channels (%)"].unstack("site")
    shares = shares.loc[list(dict.fromkeys(table.index.get_level_values("model")))]
    figure, ax = plt.subplots(figsize=(1.2 + 1.1 * len(shares), 2.6))
    shares.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("suppressed channels (%)")
    ax.set_xlabel("")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, title="site", title_fontsize=7)
    figure.tight_layout()
    return figure


def gaps_table(printed):
    """Table 2 as the text keeps it: per dataset, CRA-SMRA's stated margin over each method (points,
    ResNet-50; negative: the method is above ours), paper only. ``printed``: the declared margins, method x
    dataset (``cra_smra.STUDY.printed_table("table2_gaps")``); a margin the text does not state is left out."""
    gaps = printed.T.stack().dropna()
    gaps.index.names = ["dataset", "method"]
    return gaps.to_frame("CRA-SMRA minus method (paper, points)")
