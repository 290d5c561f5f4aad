"""Which classes does a model confuse, and do the confused classes share most of their parts?

On the embedded synthetic dataset every class is a combination of part attributes
(:mod:`fgvc_lib.data.synthetic`), so a confusion can be explained: a fine-grained problem should
make a model confuse classes that differ in one small part far more often than classes that differ
in many.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from .reporting import new_figure


def confusion_matrix(logits: torch.Tensor, targets: torch.Tensor, num_classes: int) -> np.ndarray:
    """Counts ``cm[true, predicted]``."""
    predicted = logits.argmax(1).cpu().numpy()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (targets.cpu().numpy(), predicted), 1)
    return cm


def attribute_distance(dataset, a: int, b: int) -> int:
    """Number of part attributes in which classes ``a`` and ``b`` differ."""
    attrs_a, attrs_b = dataset.class_attributes(a), dataset.class_attributes(b)
    return sum(attrs_a[k] != attrs_b[k] for k in attrs_a)


def errors_by_distance(cm: np.ndarray, dataset) -> pd.DataFrame:
    """Errors grouped by how many attributes separate the true and the predicted class.

    ``expected_share`` is the share a model confusing classes at random would give each distance
    (the share of ordered class pairs at that distance), ``error_share`` the model's."""
    k = cm.shape[0]
    rows: Dict[int, Dict[str, float]] = {}
    for a in range(k):
        for b in range(k):
            if a == b:
                continue
            d = attribute_distance(dataset, a, b)
            row = rows.setdefault(d, {"pairs": 0, "errors": 0})
            row["pairs"] += 1
            row["errors"] += int(cm[a, b])
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    table.index.name = "attributes_differing"
    table["expected_share"] = table["pairs"] / table["pairs"].sum()
    total = table["errors"].sum()
    table["error_share"] = table["errors"] / total if total else 0.0
    return table


def most_confused_pairs(cm: np.ndarray, dataset, top: int = 8) -> pd.DataFrame:
    """The largest off-diagonal counts with the attributes that tell the two classes apart."""
    k = cm.shape[0]
    pairs = [(cm[a, b], a, b) for a in range(k) for b in range(k) if a != b and cm[a, b] > 0]
    rows = []
    for count, a, b in sorted(pairs, key=lambda t: (-t[0], t[1], t[2]))[:top]:
        attrs_a, attrs_b = dataset.class_attributes(a), dataset.class_attributes(b)
        differing = [f"{key}: {attrs_a[key]}/{attrs_b[key]}" for key in attrs_a if attrs_a[key] != attrs_b[key]]
        rows.append({"true": dataset.classes[a], "predicted": dataset.classes[b], "count": int(count),
                     "attributes_differing": len(differing), "differences": "; ".join(differing)})
    return pd.DataFrame(rows)


def confusion_figure(cm: np.ndarray, title: str = "") -> Figure:
    """Row-normalised confusion matrix as a heat map (rows: true class, columns: predicted)."""
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = cm.shape[0]
    fig = new_figure(figsize=(4.2, 3.6))
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="viridis", vmin=0, vmax=1)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ticks = range(0, k, max(1, k // 12))
    ax.set_xticks(list(ticks))
    ax.set_yticks(list(ticks))
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
