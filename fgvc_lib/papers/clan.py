"""The numbers CLAN prints (Tables 1-6), its claims, and the models and cells the notebook trains.

Source: R. Huang, Y. Wang, H. Yang, "Cross-layer Attention Network for Fine-grained Visual
Categorization", arXiv 2210.08784. Accuracies are top-1 in percent at 448 x 448; Table 5 gives
millions of parameters and billions of multiply-adds (MACs) at 448 x 448 with 200 classes.

* ``TABLES``: every table as printed, ``{table: {row: {column: value}}}`` (``None`` for "-").
  Columns are dataset keys (:data:`DATASETS`) or scale labels ("2-scale", "3-scale").
* ``MODELS`` / ``CELLS``: the distinct models to train (one entry per architecture + method, so the
  default 3-scale CLAN, which appears in Tables 1, 2, 3, 4 and 6, is trained once) and, for every
  printed accuracy, which model and which branches reproduce it (:func:`experiment_plan`).
* ``CLAIMS``: what the paper concludes from its tables and figures, each with the paper's effect
  computed from the tables (never typed in) and how our results decide it; :func:`measured_claims`
  turns each into the study's claims for one configuration, or says why it is not measured there.
* ``PAPER_NOTES``: inconsistencies inside the paper, for the notebook's deviations cell.

Reading of Tables 1 and 2 (an ambiguity, see :func:`experiment_plan`): their "CLCA / dot product /
3-scale" entry (85.8 on CUB) equals Table 4's "G + P + A" entry of the full CLAN, and Table 2's CLCA
row equals Table 4's "G + P + A" row on all three datasets. So we read Tables 1-2 as full models
(CLSA included in training) whose prediction averages the top and mid-level branches only ("results
from different layers are averaged", section 4.2). ``tables_1_2_with_clsa=False`` gives the other
reading: models trained without CLSA, predicting with all their (G + mid) branches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

PAPER = {
    "key": "clan",
    "title": "Cross-layer Attention Network for Fine-grained Visual Categorization",
    "authors": "Ranran Huang, Yu Wang, Huazhong Yang",
    "venue": "arXiv:2210.08784",
}
METRIC = "top1"  # top-1 accuracy in percent, the metric name of every results table
DATASETS = ("cub", "cars", "aircraft")
DATASET_LABELS = {"cub": "CUB-200-2011", "cars": "Stanford Cars", "aircraft": "FGVC-Aircraft"}
SCALES = ("2-scale", "3-scale")
Cell = Tuple[str, str, str]  # (table, row, column)

# Table 1: relation metric f of CLCA (eq. 5-7), VGG-16, CUB-200-2011.
TABLE1 = {
    "Gaussian": {"2-scale": 84.6, "3-scale": 84.5},
    "Embedded Gaussian": {"2-scale": 85.1, "3-scale": 85.7},
    "Dot Product": {"2-scale": 85.2, "3-scale": 85.8},
}
# Table 2: what is applied to the two mid-level maps, 3-scale VGG-16.
TABLE2 = {
    "GAP": {"cub": 78.7, "cars": 90.4, "aircraft": 86.3},
    "Non-local": {"cub": 84.8, "cars": 92.5, "aircraft": 89.5},
    "CLCA": {"cub": 85.8, "cars": 92.9, "aircraft": 90.6},
}
# Table 3: channel pooling inside CLSA (eq. 8), VGG-16, CUB-200-2011.
TABLE3 = {
    "CLCA + CLSA(Avg)": {"2-scale": 85.3, "3-scale": 85.6},
    "CLCA + CLSA(Max)": {"2-scale": 85.7, "3-scale": 86.0},
    "CLCA + CLSA(Avg&Max)": {"2-scale": 86.0, "3-scale": 86.8},
}
# Table 4: branches combined at test time, one full 3-scale VGG-16 CLAN per dataset.
TABLE4 = {
    "G-Branch": {"cub": 84.1, "cars": 91.5, "aircraft": 90.1},
    "P-Branch": {"cub": 85.2, "cars": 91.8, "aircraft": 90.3},
    "A-Branch": {"cub": 83.1, "cars": 88.7, "aircraft": 88.1},
    "CLSA-Branch": {"cub": 85.8, "cars": 92.6, "aircraft": 90.4},
    "G + P": {"cub": 85.3, "cars": 92.1, "aircraft": 90.6},
    "G + P + A": {"cub": 85.8, "cars": 92.9, "aircraft": 90.6},
    "G + P + A + CLSA": {"cub": 86.8, "cars": 93.1, "aircraft": 91.0},
}
TABLE4_BRANCHES = {  # row -> branch names of fgvc_lib.models.clan
    "G-Branch": ("G",), "P-Branch": ("P",), "A-Branch": ("A",), "CLSA-Branch": ("CLSA",),
    "G + P": ("G", "P"), "G + P + A": ("G", "P", "A"), "G + P + A + CLSA": ("G", "P", "A", "CLSA"),
}
# Table 5: complexity at 448 x 448, 200 classes (CUB).
TABLE5 = {
    "VGG-16": {"params_m": 15.03, "macs_g": 61.63},
    "2-scale CLAN": {"params_m": 16.08, "macs_g": 62.30},
    "3-scale CLAN": {"params_m": 17.34, "macs_g": 64.83},
}
TABLE5_IMAGE_SIZE, TABLE5_NUM_CLASSES = 448, 200
# Table 6: comparison with the state of the art. Row label "<method> (<base model>)".
TABLE6_META = {  # row -> (method, base model, one-stage, separate init, reproduced by us)
    "VGG-16 (VGG-16)": ("VGG-16", "VGG-16", True, False, True),
    "ResNet-50 (ResNet-50)": ("ResNet-50", "ResNet-50", True, False, True),
    "ResNet-101 (ResNet-101)": ("ResNet-101", "ResNet-101", True, False, True),
    "B-CNN (VGG-16)": ("B-CNN", "VGG-16", True, False, False),
    "CBP (VGG-16)": ("CBP", "VGG-16", True, False, False),
    "LRBP (VGG-16)": ("LRBP", "VGG-16", True, False, False),
    "DBT-Net (ResNet-50)": ("DBT-Net", "ResNet-50", True, False, False),
    "DBT-Net (ResNet-101)": ("DBT-Net", "ResNet-101", True, False, False),
    "RA-CNN (VGG-19)": ("RA-CNN", "VGG-19", False, True, False),
    "MA-CNN (VGG-19)": ("MA-CNN", "VGG-19", False, False, False),
    "MAMC (ResNet-50)": ("MAMC", "ResNet-50", True, False, False),
    "MAMC (ResNet-101)": ("MAMC", "ResNet-101", True, False, False),
    "DFB-CNN (ResNet-50)": ("DFB-CNN", "ResNet-50", True, True, False),
    "TASN (ResNet-50)": ("TASN", "ResNet-50", True, False, False),
    "CLAN(2-scale) (VGG-16)": ("CLAN(2-scale)", "VGG-16", True, False, True),
    "CLAN(3-scale) (VGG-16)": ("CLAN(3-scale)", "VGG-16", True, False, True),
    "CLAN(2-scale) (ResNet-50)": ("CLAN(2-scale)", "ResNet-50", True, False, True),
    "CLAN(2-scale) (ResNet-101)": ("CLAN(2-scale)", "ResNet-101", True, False, True),
}
TABLE6 = {
    "VGG-16 (VGG-16)": {"cub": 79.1, "cars": 87.0, "aircraft": 85.1},
    "ResNet-50 (ResNet-50)": {"cub": 86.0, "cars": 92.0, "aircraft": 89.9},
    "ResNet-101 (ResNet-101)": {"cub": 86.4, "cars": 92.5, "aircraft": 90.5},
    "B-CNN (VGG-16)": {"cub": 84.1, "cars": 91.3, "aircraft": 84.1},
    "CBP (VGG-16)": {"cub": 84.0, "cars": None, "aircraft": None},
    "LRBP (VGG-16)": {"cub": 84.2, "cars": 90.9, "aircraft": 87.3},
    "DBT-Net (ResNet-50)": {"cub": 87.5, "cars": 94.1, "aircraft": 91.2},
    "DBT-Net (ResNet-101)": {"cub": 88.1, "cars": 94.5, "aircraft": 91.6},
    "RA-CNN (VGG-19)": {"cub": 85.3, "cars": 92.5, "aircraft": 88.2},
    "MA-CNN (VGG-19)": {"cub": 86.5, "cars": 92.8, "aircraft": 89.9},
    "MAMC (ResNet-50)": {"cub": 86.2, "cars": 92.8, "aircraft": None},
    "MAMC (ResNet-101)": {"cub": 86.5, "cars": 93.0, "aircraft": None},
    "DFB-CNN (ResNet-50)": {"cub": 87.4, "cars": 93.8, "aircraft": 92.0},
    "TASN (ResNet-50)": {"cub": 87.9, "cars": 93.8, "aircraft": None},
    "CLAN(2-scale) (VGG-16)": {"cub": 85.9, "cars": 92.9, "aircraft": 90.3},
    "CLAN(3-scale) (VGG-16)": {"cub": 86.8, "cars": 93.1, "aircraft": 91.0},
    "CLAN(2-scale) (ResNet-50)": {"cub": 88.1, "cars": 94.2, "aircraft": 93.2},
    "CLAN(2-scale) (ResNet-101)": {"cub": 88.7, "cars": 94.5, "aircraft": 93.3},
}

TABLES: Dict[str, Dict[str, Dict[str, Optional[float]]]] = {
    "table1": TABLE1, "table2": TABLE2, "table3": TABLE3, "table4": TABLE4, "table5": TABLE5, "table6": TABLE6,
}
TABLE_INFO = {  # table -> (caption in our words, backbone, dataset or None when columns are datasets)
    "table1": ("Relation metric of CLCA (eq. 5-7)", "vgg16", "cub"),
    "table2": ("Module applied to the mid-level maps, 3-scale", "vgg16", None),
    "table3": ("Channel pooling in CLSA (eq. 8)", "vgg16", "cub"),
    "table4": ("Branches combined at test time, 3-scale CLAN", "vgg16", None),
    "table5": ("Parameters (M) and MACs (G) at 448 px, 200 classes", "vgg16", "cub"),
    "table6": ("Comparison with the state of the art", None, None),
}

PAPER_NOTES: List[str] = [
    "Table 6 gives CLAN(2-scale) ResNet-101 on FGVC-Aircraft as 93.3, section 4.3's text as 93.2.",
    "The 2-scale VGG-16 CLAN with avg&max CLSA is 86.0 on CUB in Table 3 but 85.9 in Table 6.",
    "Table 2's GAP row on CUB (78.7, mid-level branches added) is below the plain fine-tuned VGG-16 "
    "of Table 6 (79.1).",
    "Table 2's CLCA row equals Table 4's 'G + P + A' row on all three datasets, and Table 1's 3-scale "
    "dot-product entry (85.8) equals both: Tables 1-2 appear to score the top + mid-level branches of "
    "the full model (see experiment_plan).",
    "Section 3.3 calls the objective a weighted sum of cross-entropies, but eq. 12-14 have no weights: "
    "we use unit weights (the engine's loss_weights can change them).",
    "Table 5's VGG-16 baseline (15.03 M) is 0.21 M above VGG-16's convolutions plus one 512x200 "
    "classifier (14.82 M): about two more 512x200 classifiers; the CLAN rows match our counts.",
    "Table 5's added multiply-adds match ours with pool5 as VGG-16's top-level map and the attention "
    "products (bmm) left out (clan_complexity.table5_increments); with conv5_3 they do not.",
    "The paper does not give C_int, the activation of the CLSA map, the down-sampling R, how the "
    "branches are combined, or whether W_y is followed by BatchNorm (see CLANConfig).",
]


def paper_value(table: str, row: str, column: str) -> Optional[float]:
    """One printed number (``None`` where the paper prints "-")."""
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; valid tables: {', '.join(TABLES)}")
    rows = TABLES[table]
    if row not in rows or column not in rows[row]:
        raise KeyError(f"{table} has no entry ({row!r}, {column!r}); rows: {', '.join(rows)}; "
                       f"columns: {', '.join(next(iter(rows.values())))}")
    return rows[row][column]


def paper_records() -> List[Dict[str, object]]:
    """Every printed accuracy of Tables 1-4 and 6 and every Table 5 figure, in the results schema
    (``table, row, dataset, backbone, metric, paper``; ``reproduced`` is the notebook's job)."""
    backbones = {"VGG-16": "vgg16", "VGG-19": "vgg19", "ResNet-50": "resnet50", "ResNet-101": "resnet101"}
    records = []
    for table, rows in TABLES.items():
        _, backbone, dataset = TABLE_INFO[table]
        for row, values in rows.items():
            for column, value in values.items():
                record = {"table": table, "row": row, "paper": value}
                if table == "table5":
                    record.update(dataset=dataset, backbone=backbone, metric=column)
                elif table in ("table1", "table3"):
                    record.update(row=f"{row} [{column}]", dataset=dataset, backbone=backbone, metric=METRIC)
                else:
                    base = backbones[TABLE6_META[row][1]] if table == "table6" else backbone
                    record.update(dataset=column, backbone=base, metric=METRIC)
                records.append(record)
    return records


# ---------------------------------------------------------------- what the notebook trains
def _clan(backbone: str, **config) -> Dict[str, object]:
    return {"kind": "clan", "backbone": backbone, "config": config}


def _baseline(backbone: str) -> Dict[str, object]:
    return {"kind": "baseline", "backbone": backbone, "config": {}}


def experiment_plan(tables_1_2_with_clsa: bool = True) -> Tuple[Dict[str, Dict[str, object]], List[Dict[str, object]]]:
    """``(models, cells)``.

    ``models``: ``{key: {"kind": "clan" | "baseline", "backbone": name, "config": CLANConfig
    overrides}}``, each a distinct model to train (build with ``build_clan(backbone, n,
    CLANConfig(**config))`` or ``BaselineNet``).
    ``cells``: one per printed number, ``{"table", "row", "column", "dataset", "model", "branches"}``;
    ``branches`` is the tuple of branches to combine with ``combine_branches`` (``None`` = the
    model's final prediction). Table 5 cells carry the model whose complexity is counted.

    ``tables_1_2_with_clsa`` chooses the reading of Tables 1-2 (module docstring): ``True`` (ours)
    scores the G + mid-level branches of full models; ``False`` trains them without CLSA.
    """
    models: Dict[str, Dict[str, object]] = {
        "vgg16_baseline": _baseline("vgg16"),
        "resnet50_baseline": _baseline("resnet50"),
        "resnet101_baseline": _baseline("resnet101"),
        "clan_vgg16_2s": _clan("vgg16", scales=2),
        "clan_vgg16_3s": _clan("vgg16", scales=3),
        "clan_resnet50_2s": _clan("resnet50", scales=2),
        "clan_resnet101_2s": _clan("resnet101", scales=2),
    }
    cells: List[Dict[str, object]] = []

    def add(table, row, column, model, branches=None, dataset="cub"):
        cells.append({"table": table, "row": row, "column": column, "dataset": dataset,
                      "model": model, "branches": branches})

    suffix = "" if tables_1_2_with_clsa else "_noclsa"
    extra = {} if tables_1_2_with_clsa else {"use_clsa": False}

    def mids_model(scales: int, **config) -> Tuple[str, Optional[Tuple[str, ...]]]:
        parts = [f"clan_vgg16_{scales}s"] + [str(v) for v in config.values()]
        key = "_".join(parts) + suffix
        if key in ("clan_vgg16_2s", "clan_vgg16_3s"):
            pass  # the default CLAN itself
        elif key not in models:
            models[key] = _clan("vgg16", scales=scales, **config, **extra)
        branches = ("G", "P") if scales == 2 else ("G", "P", "A")
        return key, (branches if tables_1_2_with_clsa else None)

    for row, relation in (("Gaussian", "gaussian"), ("Embedded Gaussian", "embedded_gaussian"),
                          ("Dot Product", None)):
        for scales, column in ((2, "2-scale"), (3, "3-scale")):
            key, branches = mids_model(scales, **({"relation": relation} if relation else {}))
            add("table1", row, column, key, branches)
    for row, module in (("GAP", "gap"), ("Non-local", "nonlocal"), ("CLCA", None)):
        for dataset in DATASETS:
            key, branches = mids_model(3, **({"mid_module": module} if module else {}))
            add("table2", row, dataset, key, branches, dataset)
    for row, pooling in (("CLCA + CLSA(Avg)", "avg"), ("CLCA + CLSA(Max)", "max"), ("CLCA + CLSA(Avg&Max)", None)):
        for scales, column in ((2, "2-scale"), (3, "3-scale")):
            key = f"clan_vgg16_{scales}s" + (f"_clsa_{pooling}" if pooling else "")
            if pooling and key not in models:
                models[key] = _clan("vgg16", scales=scales, clsa_pooling=pooling)
            add("table3", row, column, key)
    for row, branches in TABLE4_BRANCHES.items():
        for dataset in DATASETS:
            add("table4", row, dataset, "clan_vgg16_3s", branches, dataset)
    for row, key in (("VGG-16", "vgg16_baseline"), ("2-scale CLAN", "clan_vgg16_2s"),
                     ("3-scale CLAN", "clan_vgg16_3s")):
        for column in ("params_m", "macs_g"):
            add("table5", row, column, key)
    table6_models = {"VGG-16 (VGG-16)": "vgg16_baseline", "ResNet-50 (ResNet-50)": "resnet50_baseline",
                     "ResNet-101 (ResNet-101)": "resnet101_baseline", "CLAN(2-scale) (VGG-16)": "clan_vgg16_2s",
                     "CLAN(3-scale) (VGG-16)": "clan_vgg16_3s", "CLAN(2-scale) (ResNet-50)": "clan_resnet50_2s",
                     "CLAN(2-scale) (ResNet-101)": "clan_resnet101_2s"}
    for row, key in table6_models.items():
        for dataset in DATASETS:
            add("table6", row, dataset, key, None, dataset)
    return models, cells


MODELS, CELLS = experiment_plan()


# ---------------------------------------------------------------- claims
@dataclass(frozen=True)
class Claim:
    """A claim of the paper as pairs of printed cells ``(better, worse)``: it holds when the better
    cell beats the worse one in every pair (``kind="greater"``), beats or ties it in every pair and
    beats it in one at least (``kind="not_worse"``), when their gap stays small (``kind="similar"``),
    or it is judged from another measurement (``kind="complexity"`` / ``"qualitative"``, see
    ``evaluate``). ``paper_effect`` maps ``"<better> vs <worse>"`` to the
    printed difference in points, computed from the tables."""

    id: str
    text: str
    section: str
    kind: str
    pairs: Tuple[Tuple[Cell, Cell], ...]
    evaluate: str
    paper_effect: Dict[str, float] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        effect = {}
        for better, worse in self.pairs:
            a, b = paper_value(*better), paper_value(*worse)
            if a is not None and b is not None:
                effect[f"{_label(better)} vs {_label(worse)}"] = round(a - b, 2)
        object.__setattr__(self, "paper_effect", effect)

    @property
    def mean_paper_effect(self) -> Optional[float]:
        return round(sum(self.paper_effect.values()) / len(self.paper_effect), 2) if self.paper_effect else None

    @property
    def holds_in_paper(self) -> bool:
        if self.kind == "greater":
            return all(v > 0 for v in self.paper_effect.values())
        if self.kind == "not_worse":
            return all(v >= 0 for v in self.paper_effect.values()) and any(v > 0 for v in self.paper_effect.values())
        if self.kind == "similar":
            return all(abs(v) <= SIMILAR_POINTS for v in self.paper_effect.values())
        return True


SIMILAR_POINTS = 0.5  # "similar results": the paper's gaps are 0.1 point


def _label(cell: Cell) -> str:
    return f"{cell[0]}:{cell[1]}[{cell[2]}]"


def _pairs(table: str, better: str, worse: str, columns) -> Tuple[Tuple[Cell, Cell], ...]:
    return tuple(((table, better, c), (table, worse, c)) for c in columns)


def _table5_pairs(bigger: str, smaller: str) -> Tuple[Tuple[Cell, Cell], ...]:
    return _pairs("table5", bigger, smaller, ("params_m", "macs_g"))


_GREATER = ("holds when our mean over seeds of the better cell exceeds the worse one in every pair; "
            "report our gap with its std")
CLAIMS: List[Claim] = [
    Claim("gaussian_worst",
          "The Gaussian relation metric is worse than embedded Gaussian and dot product, at 2 and 3 scales.",
          "4.2, Table 1", "greater",
          _pairs("table1", "Dot Product", "Gaussian", SCALES) + _pairs("table1", "Embedded Gaussian", "Gaussian", SCALES),
          _GREATER),
    Claim("dot_similar_embedded",
          "Dot product and embedded Gaussian give similar accuracy.",
          "4.2, Table 1", "similar", _pairs("table1", "Dot Product", "Embedded Gaussian", SCALES),
          f"holds when |dot product - embedded Gaussian| is within {SIMILAR_POINTS} point or within "
          "two standard deviations over seeds, at both scales"),
    Claim("nonlocal_beats_gap",
          "Enriching the mid-level maps with context (non-local) greatly improves on using them as they are (GAP).",
          "4.2, Table 2", "greater", _pairs("table2", "Non-local", "GAP", DATASETS), _GREATER),
    Claim("clca_beats_gap",
          "Refining the mid-level maps with CLCA greatly improves on using them as they are (GAP).",
          "4.2, Table 2", "greater", _pairs("table2", "CLCA", "GAP", DATASETS), _GREATER),
    Claim("clca_beats_nonlocal",
          "Estimating the relations with the top-level map (CLCA) beats the mid-level map alone (non-local).",
          "4.2, Table 2", "greater", _pairs("table2", "CLCA", "Non-local", DATASETS), _GREATER),
    Claim("avgmax_pooling_best",
          "Average and max pooling together work best for CLSA, at 2 and 3 scales.",
          "4.2, Table 3", "greater",
          _pairs("table3", "CLCA + CLSA(Avg&Max)", "CLCA + CLSA(Avg)", SCALES)
          + _pairs("table3", "CLCA + CLSA(Avg&Max)", "CLCA + CLSA(Max)", SCALES), _GREATER),
    Claim("three_scales_beat_two",
          "3-scale CLAN beats 2-scale CLAN (more mid-level maps give richer local information).",
          "4.2-4.3, Tables 1, 3, 6", "greater",
          (((("table1", "Dot Product", "3-scale"), ("table1", "Dot Product", "2-scale"))),
           (("table3", "CLCA + CLSA(Avg&Max)", "3-scale"), ("table3", "CLCA + CLSA(Avg&Max)", "2-scale")))
          + tuple((("table6", "CLAN(3-scale) (VGG-16)", d), ("table6", "CLAN(2-scale) (VGG-16)", d)) for d in DATASETS),
          _GREATER),
    Claim("mid_branch_helps",
          "Combining the top-level branch with a mid-level branch (G + P) beats the top-level branch alone.",
          "4.2, Table 4", "greater", _pairs("table4", "G + P", "G-Branch", DATASETS), _GREATER),
    Claim("second_mid_branch_helps",
          "A second mid-level branch adds accuracy (G + P + A vs G + P).",
          "4.2, Table 4", "not_worse", _pairs("table4", "G + P + A", "G + P", DATASETS),
          "holds when our G + P + A is not below G + P in any pair (within one std over seeds) and "
          "above it in one at least; the paper's own Aircraft gap is 0.0"),
    Claim("clsa_branch_helps",
          "Adding the CLSA branch to G + P + A adds accuracy.",
          "4.2, Table 4", "greater", _pairs("table4", "G + P + A + CLSA", "G + P + A", DATASETS), _GREATER),
    Claim("clsa_refines_top",
          "The CLSA-refined top-level map classifies better than the top-level map itself.",
          "4.2, Table 4", "greater", _pairs("table4", "CLSA-Branch", "G-Branch", DATASETS), _GREATER),
    Claim("clan_beats_baseline",
          "CLAN beats the fine-tuned baseline of its backbone (VGG-16, ResNet-50, ResNet-101).",
          "4.3, Table 6", "greater",
          tuple((("table6", clan, d), ("table6", base, d)) for clan, base in (
              ("CLAN(2-scale) (VGG-16)", "VGG-16 (VGG-16)"), ("CLAN(3-scale) (VGG-16)", "VGG-16 (VGG-16)"),
              ("CLAN(2-scale) (ResNet-50)", "ResNet-50 (ResNet-50)"),
              ("CLAN(2-scale) (ResNet-101)", "ResNet-101 (ResNet-101)")) for d in DATASETS),
          _GREATER),
    Claim("two_scales_cost_more",
          "2-scale CLAN costs more than VGG-16 (parameters and multiply-adds).",
          "4.2, Table 5", "complexity", _table5_pairs("2-scale CLAN", "VGG-16"),
          "count parameters and MACs of the full-width models at 448 px with 200 classes "
          "(fgvc_lib.complexity): decided by the sign of the smaller of the two increments"),
    Claim("two_scales_cost_slight",
          "The increase of 2-scale CLAN over VGG-16 is only slight.",
          "4.2, Table 5", "complexity", _table5_pairs("2-scale CLAN", "VGG-16"),
          "not measured: the paper sets no threshold for 'slight'; Table 5 shows its increments beside ours"),
    Claim("three_scales_cost_more",
          "3-scale CLAN costs more than 2-scale CLAN (it processes an extra, larger mid-level map).",
          "4.2, Table 5", "complexity", _table5_pairs("3-scale CLAN", "2-scale CLAN"),
          "as two_scales_cost_more, 3-scale against 2-scale"),
    Claim("scales_trade_off",
          "Whether to use more intermediate layers is a trade-off between accuracy and complexity.",
          "4.2, Table 5", "qualitative", (),
          "not measured on its own: it restates three_scales_beat_two (accuracy) beside three_scales_cost_more "
          "(cost)"),
    Claim("more_efficient_than_bilinear",
          "CLAN is more efficient than B-CNN, its variants (CBP, LRBP) and multi-stream networks such as "
          "RA-CNN, which are costly to deploy.",
          "4.2", "qualitative", (),
          "not measured: none of those methods is built here; Table 5 counts VGG-16 and CLAN only"),
    Claim("beats_vgg_methods",
          "3-scale CLAN on VGG-16 outperforms the other VGG-based methods (B-CNN, CBP, LRBP, RA-CNN, MA-CNN).",
          "4.3, Table 6", "greater",
          tuple((("table6", "CLAN(3-scale) (VGG-16)", d), ("table6", other, d))
                for other in ("B-CNN (VGG-16)", "CBP (VGG-16)", "LRBP (VGG-16)", "RA-CNN (VGG-19)",
                              "MA-CNN (VGG-19)") for d in DATASETS),
          "not measured: the other methods' numbers are published results, none is reproduced"),
    Claim("resnet50_beats_tasn",
          "2-scale CLAN on ResNet-50 outperforms the previous ResNet-50 state of the art, TASN.",
          "4.3, Table 6", "greater",
          tuple((("table6", "CLAN(2-scale) (ResNet-50)", d), ("table6", "TASN (ResNet-50)", d)) for d in DATASETS),
          "not measured: TASN is a published result, not reproduced"),
    Claim("resnet101_beats_dbtnet",
          "2-scale CLAN on ResNet-101 is better than DBT-Net on ResNet-101.",
          "4.3, Table 6", "greater",
          tuple((("table6", "CLAN(2-scale) (ResNet-101)", d), ("table6", "DBT-Net (ResNet-101)", d))
                for d in DATASETS),
          "not measured: DBT-Net is a published result, not reproduced; in the paper's own Table 6 the two tie "
          "on Stanford Cars"),
    Claim("state_of_the_art",
          "CLAN achieves the state of the art on all three datasets and outperforms previous works by a large "
          "margin.",
          "Abstract, 4.3, Table 6", "qualitative", (),
          "not measured: the other methods of Table 6 are published results, none is reproduced; in the paper's "
          "own Table 6 the best CLAN ties DBT-Net (ResNet-101) on Stanford Cars and leads by under one point on "
          "CUB-200-2011, so 'a large margin' is not what its table shows"),
    Claim("end_to_end_simple_init",
          "Unlike MA-CNN, RA-CNN (alternating training, a pretrained attention proposal network) and DFB-CNN "
          "(a separate layer initialisation), CLAN needs only ImageNet initialisation and trains end to end.",
          "4.3, Table 6", "qualitative", (),
          "not measured: a property of the recipe, which our implementation follows by construction (one stage, "
          "one optimiser, backbone weights as the only initialisation); the other methods are not built"),
    Claim("clca_maps_on_object",
          "CLCA's mid-level maps respond less to the background than non-local's, and concentrate on the object.",
          "4.2, Figure 4", "qualitative", (),
          "channel-mean activation of the refined conv5_2/conv4_3 maps (extras['features']) of the "
          "3-scale CLCA and non-local models: per test image, the share of the map inside the object box "
          "(object_energy); holds when CLCA's is higher than non-local's"),
    Claim("layers_complement",
          "In CLAN the maps of different layers attend to different regions, whereas the baseline's "
          "conv5_2 repeats conv5_3.",
          "4.4, Figure 5", "qualitative", (),
          "Grad-CAM of conv5_3 and conv5_2 for the baseline and CLAN: per test image, the correlation of "
          "the two layers' maps; holds when it is lower for CLAN than for the baseline"),
    Claim("baseline_conv4_3_background",
          "The baseline's conv4_3 responds more to the background than CLAN's.",
          "4.4, Figure 5", "qualitative", (),
          "Grad-CAM of conv4_3 (Figure 5's maps) of the baseline and of the 3-scale CLAN (its CLCA-refined "
          "conv4_3): per test image, the share of the map inside the object box (object_energy); holds when "
          "the baseline's is lower than CLAN's"),
    Claim("top_layer_salient",
          "The top layer (conv5_3) usually picks out the most salient region of the bird, its head.",
          "4.4, Figure 5", "qualitative", (),
          "Grad-CAM of the top layer of the baseline and of CLAN: per test image, whether its peak falls on the "
          "discriminative part of the synthetic class (part_pointing) against the share of the image that part "
          "covers (part_chance); holds when the peak hits the part more often than chance. The synthetic set "
          "marks which part tells a class apart, not a head, so 'the head' itself is not scored"),
    Claim("clsa_attention_diverse",
          "CLSA's attention maps of the mid levels focus on more diverse local information.",
          "4.4, Figure 6", "qualitative", (),
          "per test image, the share of the bird's annotated parts that a map's peaks fall on "
          "(fgvc_lib.papers.clan_views.part_diversity; synthetic set only, it has a box per part). The paper "
          "names no reference, so two: CLSA's maps against the top-level map of the same CLAN (the map they "
          "re-weight), and against the baseline's channel-mean activation at the same mid level"),
]
CLAIMS_BY_ID = {c.id: c for c in CLAIMS}


# ================================================================ the study of notebook 03
# What notebook 03 trains and rebuilds, declared for the study runner (fgvc_lib.study). The plan:
#
# * Main models, trained for every seed: the fine-tuned backbone (Table 6's baseline row) and CLAN with
#   the notebook's relation at 2 and, on VGG-16, 3 scales. `scales` picks which one is "the" CLAN of
#   Table 4, the figures and the CLAN-vs-backbone claim (0 = the paper's: 3 on VGG-16, 2 on ResNets).
# * Ablation models (VGG-16 only): the other models of Tables 1-3, trained for the first
#   `ablation_seeds` seeds and `ablation_epochs` epochs (0 = the profile's ABLATION_SEEDS /
#   ABLATION_EPOCHS). When the ablations are shorter than the main runs, the main models that Tables
#   1-3 compare them with are trained again at the ablation length (key suffix `_e<epochs>`), so every
#   comparison inside Tables 1-3 is between runs of the same length and seed.
# * Tables 1-3 are VGG-16 experiments (3 scales do not exist on ResNets): with a ResNet they are not
#   rebuilt; Table 4 then reads the 2-scale ResNet CLAN without paper numbers.
import functools  # noqa: E402

from ..study import Accuracy, Cell, Fixed, Paper, Parameter, Score, Variant, recipes  # noqa: E402
from ..study import Claim as StudyClaim  # noqa: E402
from ..study.parameters import whole_number  # noqa: E402

BACKBONES = ("vgg16", "resnet50", "resnet101")
BACKBONE_LABELS = {"vgg16": "VGG-16", "resnet50": "ResNet-50", "resnet101": "ResNet-101"}
VGG_ONLY_TABLES = ("table1", "table2", "table3")
# The paper column printed beside each dataset: the synthetic birds get CUB-200-2011's numbers
# (marked not comparable); Stanford Dogs is not in the paper.
PAPER_COLUMN = {"cub": "cub", "cars": "cars", "aircraft": "aircraft", "synthetic": "cub"}
# Seeds of the ablation models when ablation_seeds is 0: the first n seeds (0 = every seed). The cpu
# profile cannot train 13 models for all 5 seeds in its budget; 3 is the least any claim gets.
ABLATION_SEEDS = {"smoke": 0, "cpu": 3, "paper": 0}   # every claim gets at least 3 paired seeds
# Epochs of the ablation models when ablation_epochs is 0, as a fraction of the run's epochs.
ABLATION_EPOCHS = {"smoke": 1.0, "cpu": 0.25, "paper": 1.0}
LOCALIZATION_PER_CLASS = 8   # test images per class whose maps are scored (Figures 4-6)
DIVERSITY = "part_diversity"  # score name of Figure 6's part diversity (clan_views.part_diversity records it)


def _scales(value):
    if isinstance(value, bool) or value not in (0, 2, 3):
        raise ValueError(f"must be 2, 3 or 0 (the paper's choice: 3 on VGG-16, 2 on ResNets); got {value!r}")
    return value


def _relation(value):
    from ..models.clan_modules import RELATIONS, check_choice

    check_choice("relation metric", value, RELATIONS)
    return value


PARAMETERS = (
    Parameter("scales", 0, "N of the CLAN of Table 4 and the figures: 2 | 3; 0: the paper's (3 on VGG-16, 2 on "
                           "ResNets)", _scales),
    Parameter("relation", "dot_product", "CLCA relation metric f (eq. 5-7): gaussian | embedded_gaussian | "
                                         "dot_product", _relation),
    Parameter("ablation_seeds", 0, "seeds of the Tables 1-3 ablation models: the first n seeds; 0: the "
                                   "profile's", whole_number()),
    Parameter("ablation_epochs", 0, "epochs of the Tables 1-3 ablation models; 0: the profile's (cpu: a quarter "
                                    "of the epochs; smoke, paper: all of them)", whole_number()),
    Parameter("output_stride", 0, "VGG-16's stride at pool5: 8 | 16 | 32 (as published); 0: the profile's "
                                  "(OUTPUT_STRIDES)", whole_number()),
    recipes.selection_parameter("CLAN's and its baseline's (the ablations share CLAN's)"),
)
# VGG-16's total stride per profile where it is not the published 32 (fgvc_lib.backbones.set_output_stride).
# At the cpu profile's 96-px input the published network leaves pool5 a 3 x 3 map, on which a
# discriminative part covers a sixth of a cell and CLSA has nothing to select; at stride 8 (pool4 and
# pool5 keep the resolution, conv5 dilated by 2, no new parameters) every CLAN site is 12 x 12, close to
# the paper's 14 x 14 pool5 at 448 px, and a part covers about 2.4 cells (room.csv).
OUTPUT_STRIDES = {"cpu": 8}


def finalize(settings) -> None:
    """Resolve ``scales`` (0 = the paper's), the ablation seeds and epochs; refuse 3 scales on a ResNet."""
    from ..models.clan import CLAN_STAGES, PAPER_SCALES

    backbone, scales = settings.backbone, settings.options["scales"]
    if scales == 0:
        scales = PAPER_SCALES[backbone]
    elif scales - 1 > len(CLAN_STAGES[backbone][1]):
        raise ValueError(f"parameter scales: scales={scales} is not defined on {backbone}: CLAN uses its top map "
                         f"{CLAN_STAGES[backbone][0]} and the mid map {', '.join(CLAN_STAGES[backbone][1])} only "
                         f"(section 4.1; 3 scales add VGG-16's conv4_3). Use scales=2 (or 0) with {backbone}, or "
                         f"backbone='vgg16' for 3 scales.")
    name = settings.profile.name
    n = settings.options["ablation_seeds"] or ABLATION_SEEDS.get(name, 0) or len(settings.seeds)
    epochs = settings.options["ablation_epochs"] or max(1, int(round(settings.epochs * ABLATION_EPOCHS.get(name, 1.0))))
    settings.options.update(scales=scales, ablation_seeds=list(settings.seeds)[:n], ablation_epochs=epochs)


def clan_key(backbone: str, scales: int, relation: str = "dot_product") -> str:
    """Model key of CLAN at ``scales`` with ``relation`` (the keys of :func:`experiment_plan`)."""
    return f"clan_{backbone}_{scales}s" + ("" if relation == "dot_product" else f"_{relation}")


def main_key(settings, scales: Optional[int] = None) -> str:
    """The main CLAN at ``scales`` (default: the notebook's ``scales``)."""
    return clan_key(settings.backbone, settings.scales if scales is None else scales, settings.relation)


def main_scales(settings) -> Tuple[int, ...]:
    return (2, 3) if settings.backbone == "vgg16" else (2,)


def _models(settings) -> Dict[str, Dict[str, object]]:
    """``{key: {"kind", "config", "tier", "epochs"}}`` of every model the notebook trains, main first."""
    backbone, short = settings.backbone, settings.ablation_epochs
    models: Dict[str, Dict[str, object]] = {}

    def add(key, kind, config, tier):
        if key not in models:
            models[key] = {"kind": kind, "config": dict(config), "tier": tier,
                           "epochs": settings.epochs if tier == "main" else short}

    add(f"{backbone}_baseline", "baseline", {}, "main")
    for n in main_scales(settings):
        add(clan_key(backbone, n, settings.relation), "clan",
            {"scales": n, **({} if settings.relation == "dot_product" else {"relation": settings.relation})}, "main")
    if backbone == "vgg16":
        for key, spec in MODELS.items():
            if spec["backbone"] == "vgg16" and spec["kind"] == "clan":
                add(key, "clan", spec["config"], "ablation")
        if short != settings.epochs:
            for cell in CELLS:
                if cell["table"] in VGG_ONLY_TABLES and models[cell["model"]]["tier"] == "main":
                    add(f"{cell['model']}_e{short}", "clan", models[cell["model"]]["config"], "ablation")
    return models


def ablation_key(settings, key: str) -> str:
    """The model a Table 1-3 cell reads: ``key``, or its copy at the ablation length."""
    spec = _models(settings)[key]
    return key if spec["tier"] == "ablation" or spec["epochs"] == settings.ablation_epochs \
        else f"{key}_e{settings.ablation_epochs}"


def train_config(recipe, backbone_name: str, epochs: Optional[int] = None, **overrides):
    """An engine :class:`~fgvc_lib.engine.TrainConfig` with the recipe of ``recipe`` (a ``CLANConfig``,
    section 4.1) for ``backbone_name``.

    ``epochs`` shortens the run (profiles); the decay step is rescaled in proportion and the
    decay factor kept (:func:`fgvc_lib.profiles.scale_epochs`).
    """
    from ..engine import TrainConfig
    from ..profiles import scale_epochs

    step, gamma = recipe.lr_schedule(backbone_name)
    run_epochs = recipe.epochs if epochs is None else int(epochs)
    fields = dict(epochs=run_epochs, lr=recipe.lr, momentum=recipe.momentum,
                  weight_decay=recipe.weight_decay, optimizer="sgd", scheduler="step",
                  step_size=scale_epochs(recipe.epochs, step, run_epochs), gamma=gamma)
    fields.update(overrides)
    return TrainConfig(**fields)


def plan(settings) -> List[Variant]:
    from ..models.baseline import BaselineNet, cross_entropy_loss
    from ..models.clan import CLAN_STAGES, PAPER_SCALES, CLANConfig, build_clan, clan_loss

    recipe = CLANConfig()   # section 4.1's recipe for every model, the baseline included
    variants = []
    for key, spec in _models(settings).items():
        seeds = tuple(settings.seeds if spec["tier"] == "main" else settings.ablation_seeds)
        train = train_config(recipe, settings.backbone, epochs=spec["epochs"])
        if spec["kind"] == "baseline":   # GAP + linear on the map CLAN's G branch reads (VGG-16: pool5)
            details = dict(scales="-", mid_module="-", relation="-", clsa="-")
            model = functools.partial(BaselineNet, stage=CLAN_STAGES[settings.backbone][0])
            variants.append(Variant(key, model, cross_entropy_loss, train, seeds,
                                    tuple({**details, "tier": spec["tier"]}.items())))
            continue
        config = CLANConfig(**spec["config"])
        config.validate()
        details = dict(scales=config.scales or PAPER_SCALES[settings.backbone], mid_module=config.mid_module,
                       relation=config.relation if config.mid_module != "gap" else "-",
                       clsa=config.clsa_pooling if config.use_clsa else "off")
        variants.append(Variant(key, functools.partial(build_clan, config=config), clan_loss, train, seeds,
                                tuple({**details, "tier": spec["tier"]}.items())))
    # CLAN and its baseline choose their rates on validation; the ablations share CLAN's (fgvc_lib.study.recipes)
    return recipes.protocol(settings, variants, tuned=(f"{settings.backbone}_baseline", main_key(settings)),
                            lead=main_key(settings))


def table4_rows(scales: int) -> Dict[str, Tuple[str, ...]]:
    """Table 4's rows (branches combined at test time) that a CLAN with ``scales`` has."""
    if scales >= 3:
        return dict(TABLE4_BRANCHES)
    rows = {r: b for r, b in TABLE4_BRANCHES.items() if "A" not in b}
    rows["G + P + CLSA"] = ("G", "P", "CLSA")  # the full 2-scale prediction (not a row of the paper)
    return rows


def table6_rows(settings) -> Dict[str, str]:
    """Table 6's reproduced rows for the run's backbone: ``{paper row: model key}``."""
    label = BACKBONE_LABELS[settings.backbone]
    rows = {f"{label} ({label})": f"{settings.backbone}_baseline"}
    for n in main_scales(settings):
        rows[f"CLAN({n}-scale) ({label})"] = main_key(settings, n)
    return rows


def _printed_table4(settings, column: Optional[str]) -> bool:
    return settings.backbone == "vgg16" and settings.scales == 3 and column is not None \
        and settings.relation == "dot_product"


def _ablation_cells(settings, table: str) -> List[dict]:
    cells = [c for c in CELLS if c["table"] == table]
    return [c for c in cells if c["column"] == "cub"] if table == "table2" else cells


def cells(settings) -> List[Cell]:
    column = PAPER_COLUMN.get(settings.dataset)
    seeds = tuple(settings.ablation_seeds)
    out: List[Cell] = []
    if settings.backbone == "vgg16":  # Tables 1-3: on the ablation seeds, every row on the same seeds
        for table, printed in (("table1", TABLE1), ("table2", TABLE2), ("table3", TABLE3)):
            for c in _ablation_cells(settings, table):
                measure = Accuracy(ablation_key(settings, c["model"]), c["branches"])
                if table == "table2":
                    out.append(Cell(table, c["row"], measure, printed[c["row"]][column] if column else None,
                                    seeds=seeds))
                else:
                    out.append(Cell(table, f"{c['row']} [{c['column']}]", measure,
                                    printed[c["row"]][c["column"]] if column == "cub" else None, seeds=seeds))
    printed4 = _printed_table4(settings, column)
    for row, branches in table4_rows(settings.scales).items():
        out.append(Cell("table4", row, Accuracy(main_key(settings), branches),
                        TABLE4[row][column] if printed4 and row in TABLE4 else None))
    for row, key in table6_rows(settings).items():
        printed = TABLE6[row][column] if column else None
        if key != f"{settings.backbone}_baseline" and settings.relation != "dot_product":
            row, printed = f"{row} [{settings.relation}]", None  # the paper's CLAN uses the dot product
        out.append(Cell("table6", row, Accuracy(key), printed))
    return out


def skipped_tables(settings) -> Dict[str, str]:
    """Tables not rebuilt with this backbone, and why."""
    if settings.backbone == "vgg16":
        return {}
    return {t: f"a VGG-16 ablation in the paper (2 and 3 scales; 3 scales do not exist on {settings.backbone}); "
               f"run the notebook with backbone='vgg16' to rebuild it" for t in VGG_ONLY_TABLES}


def _cell_measure(settings, table: str, row: str, column: str) -> Accuracy:
    for c in CELLS:
        if c["table"] == table and c["row"] == row and c["column"] == column:
            return Accuracy(ablation_key(settings, c["model"]), c["branches"])
    raise KeyError((table, row, column))


# The layers Figures 4-5 show, top first: on VGG-16 the paper labels its top layer conv5_3 (our top map
# pool5 is conv5_3 max-pooled, see fgvc_lib.models.clan); on ResNets the CLAN stages themselves.
FIGURE_STAGES = {"vgg16": ("conv5_3", "conv5_2", "conv4_3")}


def figure_stages(settings) -> Tuple[str, ...]:
    """The layers of Figures 4-5: the top layer then the mid maps (VGG-16: conv5_3, conv5_2, conv4_3)."""
    from ..models.clan import CLAN_STAGES

    if settings.backbone in FIGURE_STAGES:
        return FIGURE_STAGES[settings.backbone]
    top, mids = CLAN_STAGES[settings.backbone]
    return (top,) + tuple(mids)


def figure_models(settings) -> Dict[str, str]:
    """The models whose maps are drawn and scored: baseline, the 3-scale non-local model (VGG-16), CLAN."""
    models = {"baseline": f"{settings.backbone}_baseline"}
    if settings.backbone == "vgg16":
        models["non-local"] = "clan_vgg16_3s_nonlocal"
    models["CLAN"] = main_key(settings)
    return models


def claims(settings) -> Tuple[List[StudyClaim], List[str]]:
    """Every claim of the paper (:data:`CLAIMS`) as study claims for this configuration, and, for each
    declared claim not measured here, ``"<section>: <claim> - <why>"``."""
    claims_out: List[StudyClaim] = []
    not_measured: List[str] = []
    for claim_id, entry in measured_claims(settings).items():
        if isinstance(entry, str):
            declared = CLAIMS_BY_ID[claim_id]
            not_measured.append(f"{declared.section}: {declared.text} - {entry}")
        else:
            claims_out.extend(entry)
    return claims_out, not_measured


def measured_claims(settings) -> Dict[str, object]:
    """``{CLAIMS id: [study claims measuring it] or the reason it is not measured}``, for every id of
    :data:`CLAIMS`, in their order."""
    found: Dict[str, object] = {}
    found.update(_ablation_claims(settings))
    found.update(_branch_claims(settings))
    found.update(_backbone_claims(settings))
    found.update(_complexity_claims())
    found.update(_figure_claims(settings))
    found.update(_unmeasured_claims())
    missing = [c.id for c in CLAIMS if c.id not in found]
    if missing:   # a declared claim must be measured or say why not
        raise RuntimeError(f"claims neither measured nor explained: {', '.join(missing)}")
    return {c.id: found[c.id] for c in CLAIMS}


def paper_setting(settings) -> str:
    """The paper's setting behind a printed effect when it is not this run's (the synthetic set is read
    against CUB-200-2011): ``"<dataset>, <backbone>"``, or "" when the run uses the paper's dataset.
    Every effect a claim carries is printed for the run's backbone (Tables 1-5: VGG-16; Table 6: its row)."""
    column = PAPER_COLUMN.get(settings.dataset)
    if column is None or column == settings.dataset:
        return ""
    return f"{DATASET_LABELS[column]}, {BACKBONE_LABELS[settings.backbone]}"


def ablation_note(settings) -> str:
    """The note of every Tables 1-3 claim when the ablation models are shorter than the main runs (the
    cpu profile's quarter of the epochs): both arms are at that length and on the same seeds (the
    main models these tables read are retrained at it, see :func:`_models`), so the comparison is
    fair, but a ranking after a short schedule need not be the ranking after a full one."""
    if settings.ablation_epochs >= settings.epochs:
        return ""
    return (f"ablation budget: both arms trained for {settings.ablation_epochs} of the run's {settings.epochs} "
            f"epochs on the first {len(settings.ablation_seeds)} seeds (the dot-product CLAN retrained at that "
            f"length); a ranking after the short schedule may differ from one after full training")


def _ablation_claims(settings) -> Dict[str, object]:
    """Tables 1-3 and 3-scale vs 2-scale (VGG-16 experiments)."""
    ids = ("gaussian_worst", "dot_similar_embedded", "nonlocal_beats_gap", "clca_beats_gap", "clca_beats_nonlocal",
           "avgmax_pooling_best", "three_scales_beat_two")
    if settings.backbone != "vgg16":
        return {i: f"a VGG-16 experiment at 2 and 3 scales, not run with {settings.backbone}" for i in ids}
    column = PAPER_COLUMN.get(settings.dataset)
    cub = column == "cub"
    ablation = tuple(settings.ablation_seeds)
    cell = functools.partial(_cell_measure, settings)
    short = functools.partial(StudyClaim, seeds=ablation, note=ablation_note(settings),
                              paper_setting=paper_setting(settings))
    found: Dict[str, object] = {}
    found["gaussian_worst"] = [short(
        "Table 1: dot product and embedded Gaussian beat Gaussian (mean of 4 gaps)",
        tuple((cell("table1", "Gaussian", s), cell("table1", better, s))
              for better in ("Dot Product", "Embedded Gaussian") for s in SCALES),
        CLAIMS_BY_ID["gaussian_worst"].mean_paper_effect if cub else None)]
    found["dot_similar_embedded"] = [short(
        "Table 1: dot product and embedded Gaussian are similar (no difference; mean of 2 gaps)",
        tuple((cell("table1", "Embedded Gaussian", s), cell("table1", "Dot Product", s)) for s in SCALES),
        CLAIMS_BY_ID["dot_similar_embedded"].mean_paper_effect if cub else None, kind="similar")]
    for claim_id, text, better, worse in (
            ("nonlocal_beats_gap", "Table 2: non-local beats GAP", "Non-local", "GAP"),
            ("clca_beats_gap", "Table 2: CLCA beats GAP", "CLCA", "GAP"),
            ("clca_beats_nonlocal", "Table 2: CLCA beats non-local", "CLCA", "Non-local")):
        effect = CLAIMS_BY_ID[claim_id].paper_effect.get(
            f"table2:{better}[{column}] vs table2:{worse}[{column}]") if column else None
        found[claim_id] = [short(text, ((cell("table2", worse, "cub"), cell("table2", better, "cub")),), effect)]
    found["avgmax_pooling_best"] = [short(
        "Table 3: avg&max pooling in CLSA beats avg and max (mean of 4 gaps)",
        tuple((cell("table3", other, s), cell("table3", "CLCA + CLSA(Avg&Max)", s))
              for other in ("CLCA + CLSA(Avg)", "CLCA + CLSA(Max)") for s in SCALES),
        CLAIMS_BY_ID["avgmax_pooling_best"].mean_paper_effect if cub else None)]
    effect = None
    if column and settings.relation == "dot_product":
        effect = round(TABLE6["CLAN(3-scale) (VGG-16)"][column] - TABLE6["CLAN(2-scale) (VGG-16)"][column], 2)
    found["three_scales_beat_two"] = [StudyClaim(
        "Table 6: 3-scale CLAN beats 2-scale CLAN",
        ((Accuracy(main_key(settings, 2)), Accuracy(main_key(settings, 3))),), effect,
        paper_setting=paper_setting(settings))]
    return found


def _branch_claims(settings) -> Dict[str, object]:
    """Table 4: branches of one trained CLAN combined at test time."""
    column = PAPER_COLUMN.get(settings.dataset)
    key, printed = main_key(settings), _printed_table4(settings, column)
    rows = table4_rows(settings.scales)
    steps = [("mid_branch_helps", "G + P", "G-Branch")]
    found: Dict[str, object] = {}
    if settings.scales >= 3:
        steps += [("second_mid_branch_helps", "G + P + A", "G + P"),
                  ("clsa_branch_helps", "G + P + A + CLSA", "G + P + A")]
    else:
        found["second_mid_branch_helps"] = (f"needs a second mid-level map (3-scale CLAN); this CLAN has "
                                            f"{settings.scales} scales")
        steps += [("clsa_branch_helps", "G + P + CLSA", "G + P")]    # the 2-scale analogue, no printed row
    steps += [("clsa_refines_top", "CLSA-Branch", "G-Branch")]
    for claim_id, better, worse in steps:
        effect = round(TABLE4[better][column] - TABLE4[worse][column], 2) \
            if printed and better in TABLE4 and worse in TABLE4 else None
        found[claim_id] = [StudyClaim(f"Table 4: {better} beats {worse} ({key})",
                                      ((Accuracy(key, rows[worse]), Accuracy(key, rows[better])),), effect,
                                      paper_setting=paper_setting(settings))]
    return found


def _backbone_claims(settings) -> Dict[str, object]:
    """Table 6: CLAN against the fine-tuned backbone."""
    column = PAPER_COLUMN.get(settings.dataset)
    label = BACKBONE_LABELS[settings.backbone]
    effect = None
    if column and settings.relation == "dot_product":
        effect = round(TABLE6[f"CLAN({settings.scales}-scale) ({label})"][column]
                       - TABLE6[f"{label} ({label})"][column], 2)
    return {"clan_beats_baseline": [StudyClaim(
        f"Table 6: CLAN ({settings.scales}-scale) beats the fine-tuned {label}",
        ((Accuracy(f"{settings.backbone}_baseline"), Accuracy(main_key(settings))),), effect,
        main=True, paper_setting=paper_setting(settings))]}   # the notebook's main comparison: the method against its baseline


def _smaller_increment(counts: Dict[str, Dict[str, float]], bigger: str, smaller: str) -> float:
    """The smaller of the parameter and MAC increments of ``bigger`` over ``smaller``, in % of VGG-16's."""
    return min(100.0 * (counts[bigger][m] - counts[smaller][m]) / counts["VGG-16"][m] for m in ("params_m", "macs_g"))


# ---------------------------------------------------------------- Table 5 counted at the paper's size
# The models are built at full width on the meta device (shapes only, no memory) and counted with
# fgvc_lib.complexity.macs_by_operator, in every profile: the counts depend on neither the data nor the
# profile, so unlike the accuracies they are comparable with the paper's. Besides the paper's rows, the
# operator breakdown counts two other ways of building the 3-scale model, to explain the gaps: eq. 2
# evaluated literally (the n x n relation matrix formed, W_g after the upsampling), and the reading of
# section 4.1 with conv5_3 instead of pool5 as VGG-16's top-level map (fgvc_lib.models.clan). The
# tables the notebook shows are in clan_complexity.
LITERAL_ROW = "3-scale CLAN, eq. 2 literal"
CONV5_3_ROWS = {"2-scale CLAN": "2-scale CLAN, conv5_3 top", "3-scale CLAN": "3-scale CLAN, conv5_3 top"}
EXTRA_ROWS = (LITERAL_ROW,) + tuple(CONV5_3_ROWS.values())   # in the breakdown, not in Table 5


def _full_width_model(backbone: str, kind: str, scales: int = 2, **overrides):
    import torch

    from ..backbones import build_backbone, is_vgg
    from ..models.baseline import BaselineNet
    from ..models.clan import CLANConfig, build_clan

    with torch.device("meta"):
        net = build_backbone(backbone)
        if kind == "baseline":   # GAP + linear after the last max-pooling (section 4.1)
            return BaselineNet(net, TABLE5_NUM_CLASSES, stage="pool5" if is_vgg(backbone) else None)
        return build_clan(net, TABLE5_NUM_CLASSES, CLANConfig(scales=scales, **overrides))


def table5_models(backbone: str) -> Dict[str, object]:
    """Table 5's rows: the paper's three VGG-16 models (dot-product CLCA, avg&max CLSA), plus the
    run's ResNet baseline and 2-scale CLAN when ``backbone`` is a ResNet (no paper numbers), plus
    :data:`EXTRA_ROWS`: the 3-scale CLAN evaluated literally (the n x n relation matrix of eq. 2
    formed, W_g after upsampling) and both CLANs with conv5_3 as the top-level map."""
    models = {"VGG-16": _full_width_model("vgg16", "baseline"),
              "2-scale CLAN": _full_width_model("vgg16", "clan", 2),
              "3-scale CLAN": _full_width_model("vgg16", "clan", 3)}
    if backbone != "vgg16":
        label = BACKBONE_LABELS[backbone]
        models[label] = _full_width_model(backbone, "baseline")
        models[f"2-scale CLAN ({label})"] = _full_width_model(backbone, "clan", 2)
    models[LITERAL_ROW] = _full_width_model("vgg16", "clan", 3, project_top_first=False, efficient_dot_product=False)
    for row, other in CONV5_3_ROWS.items():
        models[other] = _full_width_model("vgg16", "clan", int(row[0]), top_stage="conv5_3")
    return models


@functools.lru_cache(maxsize=None)
def table5_operator_counts(backbone: str) -> Tuple[Tuple[str, Dict[str, float], Dict[str, float]], ...]:
    """``((row, {"params_m", "macs_g"}, {operator: G MACs}), ...)`` of every :func:`table5_models`
    row (counted once per process)."""
    from ..complexity import count_parameters, macs_by_operator

    rows = []
    for row, model in table5_models(backbone).items():
        by_op = macs_by_operator(model, TABLE5_IMAGE_SIZE)
        rows.append((row, {"params_m": count_parameters(model) / 1e6, "macs_g": sum(by_op.values()) / 1e9},
                     {op: v / 1e9 for op, v in by_op.items()}))
    return tuple(rows)


def table5_counts(backbone: str = "vgg16") -> Dict[str, Dict[str, float]]:
    """``{row: {"params_m", "macs_g"}}`` of every Table 5 model (counted once per process)."""
    return {row: dict(totals) for row, totals, _ in table5_operator_counts(backbone)}


def _complexity_claims() -> Dict[str, object]:
    """Table 5 from our counts at the paper's size: deterministic numbers, decided by their ordering."""
    counts = table5_counts()
    found: Dict[str, object] = {}
    for claim_id, bigger, smaller in (("two_scales_cost_more", "2-scale CLAN", "VGG-16"),
                                      ("three_scales_cost_more", "3-scale CLAN", "2-scale CLAN")):
        ours = _smaller_increment(counts, bigger, smaller)
        found[claim_id] = [StudyClaim(
            f"Table 5: {bigger} costs more than {smaller} (effect: the smaller of its parameter and MAC increments, "
            f"% of VGG-16's; counted at 448 px)",
            ((Fixed(f"{smaller}: parameters and MACs", 0.0), Fixed(f"{bigger}: smaller increment", ours)),),
            round(_smaller_increment(TABLE5, bigger, smaller), 2),
            note="a count, not a sample: decided by its sign (more parameters and more MACs)")]
    found["two_scales_cost_slight"] = ("the paper sets no threshold for 'slight'; Table 5 shows the paper's "
                                       "increments beside ours")
    return found


def _figure_claims(settings) -> Dict[str, object]:
    """Figures 4-6 tested with per-image scores that fgvc_lib.papers.clan_views.score_maps records."""
    stages = figure_stages(settings)
    top, mids = stages[0], stages[1:]
    found: Dict[str, object] = {}
    if settings.backbone == "vgg16" and settings.scales == 3:
        found["clca_maps_on_object"] = [StudyClaim(
            "Figure 4: CLCA's mid-level maps put more activation on the bird than non-local's (object energy)",
            tuple((Score(f"non-local: {s} activation: object_energy"), Score(f"CLAN: {s} activation: object_energy"))
                  for s in mids))]
        found["baseline_conv4_3_background"] = [StudyClaim(
            "Figure 5: the baseline's conv4_3 Grad-CAM puts less of its mass on the bird than CLAN's (object energy)",
            ((Score("baseline: conv4_3 Grad-CAM: object_energy"), Score("CLAN: conv4_3 Grad-CAM: object_energy")),))]
    else:
        reason = "the paper draws the 3-scale VGG-16 CLAN; this run's CLAN is " \
                 f"{settings.scales}-scale {BACKBONE_LABELS[settings.backbone]}"
        found["clca_maps_on_object"] = reason + " (and the non-local model is a VGG-16 ablation)"
        found["baseline_conv4_3_background"] = reason + " (conv4_3 is CLCA-refined only at 3 scales)"
    found["layers_complement"] = [StudyClaim(
        f"Figure 5: CLAN's {mids[0]} Grad-CAM repeats {top} less than the baseline's (correlation x100, "
        f"CLAN minus baseline)",
        ((Score("baseline: top/mid Grad-CAM correlation"), Score("CLAN: top/mid Grad-CAM correlation")),),
        direction=-1)]   # a claim of a decrease: the paper's side is below 0
    if settings.dataset != "synthetic":
        found["top_layer_salient"] = (f"{settings.dataset} has no box of the discriminative part (only the "
                                      f"synthetic set writes them), so where the top layer's peak falls is unknown")
    else:
        found["top_layer_salient"] = [StudyClaim(
            f"Figure 5: the top layer's ({top}) Grad-CAM peaks on the discriminative part more often than chance "
            f"(baseline and CLAN; pointing, %)",
            tuple((Score(f"{model}: {top} Grad-CAM: part_chance"), Score(f"{model}: {top} Grad-CAM: part_pointing"))
                  for model in ("baseline", "CLAN")),
            note="the paper names the bird's head; the synthetic set marks the part that tells a class apart")]
    if settings.dataset != "synthetic":
        found["clsa_attention_diverse"] = (f"{settings.dataset} has no box per part (only the synthetic set "
                                           f"writes them), so the parts a map reaches are unknown")
        return found
    clsa = [(s, f"CLAN: CLSA {s}: {DIVERSITY}") for s in _clan_mids(settings)]
    found["clsa_attention_diverse"] = [
        StudyClaim(f"Figure 6: CLSA's maps reach more distinct parts than CLAN's top-level map ({top} activation; "
                   f"% of the parts)",
                   tuple((Score(f"CLAN: {top} activation: {DIVERSITY}"), Score(name)) for _, name in clsa)),
        StudyClaim("Figure 6: CLSA's maps reach more distinct parts than the baseline's activation at the same "
                   "level (% of the parts)",
                   tuple((Score(f"baseline: {s} activation: {DIVERSITY}"), Score(name)) for s, name in clsa)),
    ]
    return found


UNMEASURED = ("scales_trade_off", "more_efficient_than_bilinear", "beats_vgg_methods", "resnet50_beats_tasn",
              "resnet101_beats_dbtnet", "state_of_the_art", "end_to_end_simple_init")


def _unmeasured_claims() -> Dict[str, str]:
    """Claims of the paper that no configuration measures: their reason is the declared ``evaluate``."""
    return {cid: CLAIMS_BY_ID[cid].evaluate.replace("not measured: ", "", 1) for cid in UNMEASURED}


def _clan_mids(settings) -> Tuple[str, ...]:
    """The mid-level stages the run's main CLAN refines (its CLSA maps)."""
    from ..models.clan import CLAN_STAGES

    return tuple(CLAN_STAGES[settings.backbone][1][:settings.scales - 1])


def combine(branch_logits, names):
    """Section 3.3's combination of branches (mean of softmax probabilities), for Tables 1, 2 and 4."""
    from ..models.clan import combine_branches

    return combine_branches(branch_logits, names, "prob")


def attention_sites(settings, output_stride: Optional[int] = None):
    """Where CLAN's attention acts, with each map's stride (read off the backbone, randomly initialised):
    CLCA refines each mid map against the top map (eq. 1-7), CLSA weighs the top map's cells with a
    map computed on the refined mid maps (eq. 8-11). ``output_stride`` overrides the run's (32: the
    published network)."""
    from ..backbones import build_backbone
    from ..models.clan import CLAN_STAGES

    strides = build_backbone(settings.backbone, width=settings.profile.width,
                             output_stride=output_stride or settings.output_stride,
                             batch_norm=settings.profile.uses_batch_norm(settings.backbone)).stage_strides
    top, mids = CLAN_STAGES[settings.backbone][0], _clan_mids(settings)
    sites = {f"{mid} (CLCA refines it; CLSA's attention is computed on it)": strides[mid] for mid in mids}
    sites[f"{top} (top map: CLSA weighs its cells)"] = strides[top]
    return sites


STUDY = Paper(key="clan", notebook="03_clan", title=PAPER["title"], backbones=BACKBONES, plan=plan, cells=cells,
              claims=claims, skipped=skipped_tables, parameters=PARAMETERS, recipe_epochs=120, recipe_batch_size=36,
              finalize=finalize, paper_column=PAPER_COLUMN, combine=combine, attention_sites=attention_sites,
              output_strides=OUTPUT_STRIDES)
