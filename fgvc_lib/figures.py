"""Figures a person would rather look at than read: dataset tours and training curves.

Built with matplotlib's object API (``Figure``), never pyplot, so nothing depends on a display and
no global figure state leaks between notebook cells; save with :func:`fgvc_lib.reporting.save_figure`.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
from matplotlib.figure import Figure

from .reporting import new_figure
from matplotlib.patches import Rectangle

PART_BOX_COLOUR = "lime"


def _short(name: str, width: int = 24) -> str:
    name = name.split(".", 1)[-1].replace("_", " ")
    return name if len(name) <= width else name[: width - 1] + "…"


def _show(ax, image, title: str = "", box=None) -> None:
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)
    if box is not None:
        x, y, w, h = box
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=PART_BOX_COLOUR, linewidth=1.2))


def _first_of_class(dataset, label: int, count: int) -> list:
    indices = [i for i, t in enumerate(dataset.targets) if t == label][:count]
    if not indices:
        raise ValueError(f"class {label} has no image in this split")
    return indices


def class_grid(dataset, columns: int = 6) -> Figure:
    """One image per class, titled with the class name (its defining attributes)."""
    k = len(dataset.classes)
    rows = -(-k // columns)
    fig = new_figure(figsize=(1.7 * columns, 1.9 * rows))
    for label in range(k):
        ax = fig.add_subplot(rows, columns, label + 1)
        index = _first_of_class(dataset, label, 1)[0]
        _show(ax, dataset.load_image(index), _short(dataset.classes[label]))
    fig.tight_layout()
    return fig


def within_class_grid(dataset, label: int = 0, count: int = 8) -> Figure:
    """``count`` images of one class: what varies inside a class."""
    indices = _first_of_class(dataset, label, count)
    fig = new_figure(figsize=(1.6 * len(indices), 2.0))
    fig.suptitle(f"one class, {len(indices)} images: {_short(dataset.classes[label], 60)}", fontsize=8)
    for i, index in enumerate(indices):
        _show(fig.add_subplot(1, len(indices), i + 1), dataset.load_image(index))
    fig.tight_layout()
    return fig


def nearest_pair(dataset, label: int = 0, count: int = 4) -> Figure:
    """Class ``label`` (top row) and its first nearest class (bottom row), the differing part boxed."""
    other = dataset.nearest_classes(label)[0]
    fig = new_figure(figsize=(1.7 * count, 3.9))
    for row, cls in enumerate((label, other)):
        parts = set(dataset.discriminative_parts(label)) & set(dataset.discriminative_parts(cls))
        part = sorted(parts)[0] if parts else None
        for i, index in enumerate(_first_of_class(dataset, cls, count)):
            note = dataset.annotation(index)
            box = note.get("part_boxes", {}).get(part) if part else None
            title = _short(dataset.classes[cls], 40) if i == 0 else ""
            _show(fig.add_subplot(2, count, row * count + i + 1), dataset.load_image(index), title, box)
    fig.suptitle(f"nearest classes; they differ in: {', '.join(sorted(parts)) or '?'}", fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(histories: Dict[str, object], keys: Sequence[str] = ("train_loss", "train_acc")) -> Figure:
    """One panel per history key, one line per run (e.g. per seed)."""
    fig = new_figure(figsize=(3.4 * len(keys), 2.6))
    for i, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        for name, history in histories.items():
            epochs = [e["epoch"] for e in history.epochs]
            ax.plot(epochs, history.series(key), marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def knob_plot(table, target: float) -> Figure:
    """The knob grid (:func:`fgvc_lib.study.knobs.knob_table`): per point, the paired comparison's interval
    half-width against the training images a comparison processes (log scale), the target as a dashed line;
    recipe points as dots, the seed-split points as crosses. Points without an interval (one seed) are left out,
    and said so."""
    fig = new_figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    shown = table[np.isfinite(table["half-width"].astype(float)) & (table["comparison images"].astype(float) > 0)]
    if shown.empty:
        ax.text(0.5, 0.5, "no interval to show: one seed per point", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    for _, row in shown.iterrows():
        recipe = row["kind"] == "recipe"
        ax.plot(row["comparison images"] / 1000.0, row["half-width"], "o" if recipe else "x",
                color="black" if recipe else "tab:blue")
        ax.annotate(str(row["point"]), (row["comparison images"] / 1000.0, row["half-width"]), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    ax.axhline(target, color="tab:red", linestyle="--", linewidth=1, label=f"target +-{target:g} points")
    ax.set_xscale("log")
    ax.set_xlabel("training images per comparison, thousands (both arms, every seed and epoch)")
    ax.set_ylabel("95 % interval half-width (points)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def forest_plot(effects, label: str = "claim", reference_lines: Dict[str, float] | None = None,
                xlabel: str = "effect (points)") -> Figure:
    """One row per effect of ``effects`` (a DataFrame with ``label``, ``our_effect``, ``ci_low``, ``ci_high``):
    the point and its 95 % interval; dashed vertical lines at ``reference_lines`` {name: x} and a solid one at 0."""
    rows = effects.reset_index(drop=True)
    fig = new_figure(figsize=(6.4, 0.5 * len(rows) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    y = list(range(len(rows)))[::-1]
    ax.errorbar(rows["our_effect"], y, xerr=[rows["our_effect"] - rows["ci_low"], rows["ci_high"] - rows["our_effect"]],
                fmt="o", capsize=3, color="black")
    ax.axvline(0.0, color="grey", linewidth=1)
    for (name, x), style in zip((reference_lines or {}).items(), ("--", ":", "-.")):
        ax.axvline(x, color="tab:red", linestyle=style, linewidth=1, label=name)
    ax.set_yticks(y)
    ax.set_yticklabels([v if len(v) <= 48 else v[:47] + "…" for v in map(str, rows[label])], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    if reference_lines:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
