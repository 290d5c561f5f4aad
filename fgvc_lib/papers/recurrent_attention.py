"""Recurrently refined attention's printed numbers and claims ("Focus Longer to See Better: Recursively
Refined Attention for Fine-Grained Image Classification", Shroff, Chen, Wei & Wang, CVPR-W 2020, and the
thesis that extends it; ../shared/papers/04_recurrent_attention.txt).

Top-1 accuracy in %, VGG-19 for both streams, as printed:

* Tables 5.1 (CUB-200-2011) and 5.2 (Stanford Dogs): the VGG-19 baseline and the baseline with the local
  stream;
* Table 6.1 (CUB): the local stream's components (CNN only, + LSTM, + attention);
* Table 6.2 (CUB): predicting from the sum of the step features 1..k, k = 1..10, against attention;
* Figure 6.1 (CUB): accuracy from one step's feature alone, t = 1..10: a bar chart without numbers in
  the text (the text says only "no dominant feature" and that steps 4 and 6 differ negligibly);
* chapter 7 (the self-attention extension): Figure 7.3 shows maps, no accuracy is printed.

Every paper effect is computed from these numbers. The model is :mod:`fgvc_lib.models.recurrent_attention`.
"""
from __future__ import annotations

from typing import Dict, Tuple

PAPER = {
    "key": "recurrent_attention",
    "title": "Focus Longer to See Better: Recursively Refined Attention for Fine-Grained Image Classification",
    "authors": "P. Shroff, T. Chen, Y. Wei, Z. Wang",
    "venue": "CVPR Workshops 2020 (and the first author's thesis)",
}
DATASET_LABELS = {"cub": "CUB-200-2011", "dogs": "Stanford Dogs"}

# Tables 5.1 and 5.2: dataset -> (VGG-19, VGG-19 + local stream)
TABLE5: Dict[str, Tuple[float, float]] = {"cub": (77.8, 79.8), "dogs": (77.2, 78.7)}

# Table 6.1 (CUB): the component ablation, in the printed order.
TABLE6_1: Dict[str, float] = {"baseline": 77.80, "cnn": 77.79, "lstm": 78.20, "attention": 79.60}
TABLE6_1_ROWS = {"baseline": "VGG19", "cnn": "VGG19 + local-stream (CNN only)",
                 "lstm": "VGG19 + local-stream (CNN + LSTM)", "attention": "VGG19 + local-stream (CNN + LSTM + attention)"}

# Table 6.2 (CUB): the sum of the step features 1..k (k = 1..10), then attention.
TABLE6_2_SUMS: Tuple[float, ...] = (78.90, 78.78, 79.18, 78.75, 77.04, 75.32, 72.97, 71.01, 69.21, 67.64)
TABLE6_2_ATTENTION = 79.60
TIME_STEPS = 10     # T (thesis 3.1.3.2)


def local_stream_gain(dataset: str) -> float:
    """Tables 5.1-5.2: baseline + local stream minus baseline, points."""
    baseline, with_local = TABLE5[dataset]
    return round(with_local - baseline, 6)


def component_gain(before: str, after: str) -> float:
    """Table 6.1: the row ``after`` minus the row ``before``, points."""
    return round(TABLE6_1[after] - TABLE6_1[before], 6)


def attention_over_sum(k: int) -> float:
    """Table 6.2: attention minus the sum of steps 1..k, points."""
    return round(TABLE6_2_ATTENTION - TABLE6_2_SUMS[k - 1], 6)
