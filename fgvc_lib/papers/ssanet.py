"""The numbers SSANet prints, as data: Table 2's SSANet rows, Table 3, and the paper's claims.

Source: Baffour et al., "Spatial self-attention network with self-attention distillation for
fine-grained image recognition", JVCIR 81 (2021) 103368. Top-1 accuracy in percent, VGG-16 feature
extractor, 448x448 images. Table 2 lists the five SSANet rows (no-attention, no-alpha, alpha,
multiply, plus) on CUB-Birds, Stanford Cars and Stanford Dogs; the ablation text of section 4.5
repeats them. Table 3 compares plain cross-entropy on both heads ("ce") with the self-attention
distillation loss of Eq. 5 ("ad") on CUB-Birds. The other methods of Table 2 are
published baselines from other papers and are not reproduced here.

Each claim's ``paper_effect`` is computed from the tables (percentage points, last row minus first
row of ``rows``), never typed in by hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

PAPER = {
    "key": "ssanet",
    "title": "Spatial self-attention network with self-attention distillation for fine-grained image recognition",
    "authors": "A. A. Baffour, Z. Qin, Y. Wang, Z. Qin, K.-K. R. Choo",
    "venue": "Journal of Visual Communication and Image Representation 81 (2021) 103368",
    "doi": "10.1016/j.jvcir.2021.103368",
}
BACKBONE = "vgg16"
METRIC = "top1_accuracy"  # percent
DATASETS = ("cub", "cars", "dogs")
DATASET_LABELS = {"cub": "CUB-Birds", "cars": "Stanford Cars", "dogs": "Stanford Dogs"}
VARIANTS = ("no-attention", "no-alpha", "alpha", "multiply", "plus")  # Table 2's order
VARIANT_LABELS = {v: f"SSANet_{v}" for v in VARIANTS}

# Table 2, SSANet rows (variant -> dataset -> top-1 %).
TABLE2: Dict[str, Dict[str, float]] = {
    "no-attention": {"cub": 75.0, "cars": 82.9, "dogs": 77.9},
    "no-alpha": {"cub": 82.3, "cars": 91.5, "dogs": 87.0},
    "alpha": {"cub": 82.7, "cars": 92.0, "dogs": 88.1},
    "multiply": {"cub": 86.5, "cars": 93.0, "dogs": 90.4},
    "plus": {"cub": 88.4, "cars": 94.2, "dogs": 92.2},
}

# Table 3, CUB-Birds only (loss -> variant -> top-1 %). "ad" equals Table 2's CUB column.
TABLE3_DATASET = "cub"
TABLE3_VARIANTS = ("alpha", "multiply", "plus")
LOSS_LABELS = {"ce": "L_CE", "ad": "L_AD"}
TABLE3: Dict[str, Dict[str, float]] = {
    "ce": {"alpha": 81.4, "multiply": 85.6, "plus": 87.1},
    "ad": {"alpha": 82.7, "multiply": 86.5, "plus": 88.4},
}

TABLES = {"table2": TABLE2, "table3": TABLE3}


def paper_value(table: str, row: str, column: str) -> float:
    """One printed number: ``table`` "table2" (row = variant, column = dataset) or "table3"
    (row = loss "ce"/"ad", column = variant)."""
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; valid tables: {', '.join(TABLES)}")
    rows = TABLES[table]
    if row not in rows or column not in rows[row]:
        raise KeyError(f"{table} has no entry ({row!r}, {column!r}); rows: {', '.join(rows)}, "
                       f"columns: {', '.join(next(iter(rows.values())))}")
    return rows[row][column]


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: in ``table``, the ``rows`` are in increasing order of accuracy in every
    one of ``columns``. Two rows make a "B beats A" claim (A first)."""

    id: str
    text: str
    table: str
    rows: Tuple[str, ...]
    columns: Tuple[str, ...]
    section: str
    paper_effect: Dict[str, float] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        effect = {c: round(paper_value(self.table, self.rows[-1], c) - paper_value(self.table, self.rows[0], c), 2)
                  for c in self.columns}
        object.__setattr__(self, "paper_effect", effect)

    @property
    def holds_in_paper(self) -> bool:
        return all(paper_value(self.table, a, c) < paper_value(self.table, b, c)
                   for c in self.columns for a, b in zip(self.rows, self.rows[1:]))


CLAIMS: List[Claim] = [
    Claim("ssa_beats_no_attention",
          "Adding the SSA module (its simplest form, no-alpha) beats the feature extractor with its "
          "classifier alone (no-attention) on every dataset.",
          "table2", ("no-attention", "no-alpha"), DATASETS, "4.5, Table 2"),
    Claim("alpha_beats_no_alpha",
          "A learnable alpha (alpha) beats the SSA module without it (no-alpha) on every dataset, "
          "by a small margin.",
          "table2", ("no-alpha", "alpha"), DATASETS, "4.5, Table 2"),
    Claim("plus_beats_multiply",
          "Aggregating attention and primary features by addition (Eq. 1, plus) beats element-wise "
          "multiplication (Eq. 2, multiply) on every dataset.",
          "table2", ("multiply", "plus"), DATASETS, "4.5, Table 2"),
    Claim("self_ad_beats_ce",
          "Training with self-attention distillation (L_AD, Eq. 5) beats plain cross-entropy on both "
          "heads (L_CE) for the alpha, multiply and plus models on CUB-Birds.",
          "table3", ("ce", "ad"), TABLE3_VARIANTS, "4.5, Table 3"),
    Claim("rows_ordered",
          "Table 2's rows improve in order: no-attention < no-alpha < alpha < multiply < plus, on "
          "every dataset (effect: plus minus no-attention).",
          "table2", VARIANTS, DATASETS, "4.2-4.5, Table 2"),
]
CLAIMS_BY_ID = {c.id: c for c in CLAIMS}


def paper_records() -> List[Dict[str, object]]:
    """Every printed SSANet number as a record of the results schema (without reproduced values).

    Table 2 rows are variant names; Table 3 rows are ``"<variant>/<loss>"`` (e.g. ``"plus/ad"``).
    """
    records = [{"table": "table2", "row": v, "dataset": d, "backbone": BACKBONE, "metric": METRIC,
                "paper": TABLE2[v][d]} for v in VARIANTS for d in DATASETS]
    records += [{"table": "table3", "row": f"{v}/{loss}", "dataset": TABLE3_DATASET, "backbone": BACKBONE,
                 "metric": METRIC, "paper": TABLE3[loss][v]} for v in TABLE3_VARIANTS for loss in ("ce", "ad")]
    return records
