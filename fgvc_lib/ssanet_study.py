"""Notebook 05's study of SSANet: which runs its tables need, and the tables and claims built from them.

Baffour et al., "Spatial self-attention network with self-attention distillation for fine-grained
image recognition", JVCIR 81 (2021) 103368. The notebook rebuilds Table 2 (the five SSANet rows,
sec. 4.1 and 4.5), Table 3 (plain cross-entropy against the self-attention distillation loss of
Eq. 5), Fig. 4 (Grad-CAM of the five rows) and the claims of sec. 4.5. The model and loss live in
:mod:`fgvc_lib.models.ssanet`; the printed numbers in :mod:`fgvc_lib.papers.ssanet`. This module
only turns the notebook's parameters into a plan of runs and the runs into result tables, so the
notebook itself holds no logic.

Runs. A run is a Table 2 row trained with one loss, named ``"<row>/<loss>"`` (``"plus/ad"``,
``"alpha/ce"``); ``no-attention`` has a single head trained with cross-entropy, so it has one run
named ``"no-attention"``. Table 2 uses each row with the notebook's ``loss`` (the paper: ``ad``);
Table 3 needs ``alpha``, ``multiply`` and ``plus`` with both losses, so it reuses Table 2's runs and
adds the other loss.

The notebook's parameters (papermill primitives), as this module reads them:

* ``variant``: ``"all"`` (the five rows) or a comma-separated subset such as ``"no-attention,plus"``
  to train fewer rows; claims whose rows were not trained are skipped (and listed as such).
* ``aggregation``: ``""`` keeps each row's preset (our cumulative reading of the rows, see
  :mod:`fgvc_lib.models.ssanet`); ``"plus"``, ``"multiply"`` or ``"none"`` overrides the aggregation
  of the two rows the paper leaves open, ``no-alpha`` and ``alpha`` (multiply and plus are defined
  by their aggregation and keep it).
* ``loss``: ``"ad"`` (Eq. 5) or ``"ce"``: the loss of Table 2's attention rows.
* ``freeze_backbone``: ``None`` = the profile's default (:data:`FREEZE_DEFAULT`), or True/False.
* ``lr``: ``0`` = the profile's learning rate (:data:`LR_DEFAULT`), else that value.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import pandas as pd

from .engine import TrainConfig
from .profiles import limit_threads  # noqa: F401  (re-exported for the notebook)
from .experiment import Run, Settings, Variant, profile_backbone, resolve_settings, train_variants
from .models.ssa_module import AGGREGATIONS
from .models.ssanet import LOSSES, SSANetConfig, build_ssanet, ssanet_loss
from .papers import ssanet as paper
from .reporting import claim_from_seeds, is_synthetic, result_rows

METRIC = "top1"
HEADS = ("ssa", "fe")                 # the SSA output layer and the FE output layer (sec. 3.4)
AMBIGUOUS_ROWS = ("no-alpha", "alpha")  # rows whose aggregation the paper does not state
BACKBONES = ("vgg16", "vgg19", "resnet34", "resnet50", "resnet101", "densenet161")

# Whether the feature extractor is frozen when the notebook's freeze_backbone is None. The paper keeps
# its ImageNet weights fixed (sec. 4.1). The cpu/smoke profiles start from the embedded synthetic
# pretraining of a slim VGG-16; see the notebook's Deviations for the measurement behind their value.
FREEZE_DEFAULT: Dict[str, bool] = {"paper": True, "cpu": True, "smoke": True}

# Learning rate when the notebook's lr is 0. The paper: 1e-3 (sec. 4.1).
LR_DEFAULT: Dict[str, float] = {"paper": 1e-3, "cpu": 1e-3, "smoke": 1e-3}


# Which paper column a dataset's rows are printed beside: the synthetic birds get CUB-Birds' numbers
# (the paper's bird set, and the only column of Table 3); they are marked not comparable.
PAPER_COLUMN = {"cub": "cub", "cars": "cars", "dogs": "dogs", "synthetic": "cub"}


# --------------------------------------------------------------------------- parameters


def parse_variants(variant) -> Tuple[str, ...]:
    """``"all"`` or a comma-separated subset of Table 2's rows, returned in Table 2's order."""
    if not isinstance(variant, str) or not variant.strip():
        raise ValueError(f"variant must be 'all' or a comma-separated list of {', '.join(paper.VARIANTS)}; "
                         f"got {variant!r}")
    names = [v.strip() for v in variant.split(",") if v.strip()]
    if names == ["all"]:
        return paper.VARIANTS
    unknown = [v for v in names if v not in paper.VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(map(repr, unknown))}; valid: 'all' or any of "
                         f"{', '.join(paper.VARIANTS)} (comma-separated)")
    return tuple(v for v in paper.VARIANTS if v in names)


def parse_aggregation(aggregation) -> Optional[str]:
    """``""``/None = each row's preset; else one of the SSA block's aggregations."""
    if aggregation in ("", None):
        return None
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; valid: '' (each row's preset) or "
                         f"{', '.join(AGGREGATIONS)}")
    return aggregation


def parse_list(value, name: str) -> List[str]:
    """A comma-separated papermill string as a list ("" gives [])."""
    if value in ("", None):
        return []
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string (comma-separated for several); got {value!r}")
    return [v.strip() for v in value.split(",") if v.strip()]


def resolve_freeze(freeze_backbone, profile) -> bool:
    """The extractor's freezing for ``profile``: the explicit choice, or the profile's default.

    A frozen extractor without pretrained weights is random features that never change; that is
    refused with a message (it is not the paper's method, and it learns next to nothing).
    """
    if freeze_backbone not in (None, "", True, False):
        raise ValueError(f"freeze_backbone must be True, False or None (the profile's default); "
                         f"got {freeze_backbone!r}")
    if freeze_backbone in (None, ""):
        return FREEZE_DEFAULT.get(profile.name, profile.pretrained is not None) and profile.pretrained is not None
    if freeze_backbone and profile.pretrained is None:
        raise ValueError(f"profile {profile.name!r} has no pretrained extractor; freezing random weights "
                         f"leaves only the heads to learn from fixed random features. Pass "
                         f"freeze_backbone=False (or None) with this profile.")
    return bool(freeze_backbone)


def resolve_lr(lr, profile) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr < 0 or math.isnan(lr):
        raise ValueError(f"lr must be a number >= 0 (0 = the profile's learning rate); got {lr!r}")
    return float(lr) if lr > 0 else LR_DEFAULT.get(profile.name, SSANetConfig().lr)


# --------------------------------------------------------------------------- the plan of runs


def run_name(row: str, loss: str) -> str:
    """Run name of a Table 2 row trained with ``loss`` (no-attention has one run)."""
    return row if row == "no-attention" else f"{row}/{loss}"


@dataclass
class Study:
    """The resolved parameters of notebook 05 and the runs they call for."""

    settings: List[Settings]                  # one per dataset, same profile/seeds/recipe
    variants: Tuple[str, ...]                 # Table 2 rows to train
    aggregation: Optional[str]                # override for AMBIGUOUS_ROWS (None = presets)
    loss: str                                 # loss of Table 2's attention rows
    freeze_backbone: bool
    lr: float
    base: SSANetConfig = field(default_factory=SSANetConfig)

    @property
    def profile(self):
        return self.settings[0].profile

    @property
    def datasets(self) -> List[str]:
        return [s.dataset for s in self.settings]

    @property
    def table3_variants(self) -> Tuple[str, ...]:
        return tuple(v for v in paper.TABLE3_VARIANTS if v in self.variants)

    @property
    def table2_runs(self) -> Dict[str, str]:
        """Table 2 row -> run name."""
        return {v: run_name(v, self.loss) for v in self.variants}

    @property
    def table3_runs(self) -> Dict[Tuple[str, str], str]:
        """(row, loss) -> run name, for Table 3."""
        return {(v, loss): run_name(v, loss) for v in self.table3_variants for loss in ("ce", "ad")}

    @property
    def run_names(self) -> List[str]:
        """Every run to train, Table 2's first, without repeats."""
        names = list(self.table2_runs.values()) + list(self.table3_runs.values())
        return list(dict.fromkeys(names))

    def config(self, name: str) -> SSANetConfig:
        """The SSANet configuration of run ``name``."""
        row, _, loss = name.partition("/")
        if row not in paper.VARIANTS or (row != "no-attention" and loss not in LOSSES):
            raise ValueError(f"unknown run {name!r}; runs are '<row>/<loss>' or 'no-attention'")
        changes = dict(variant=row, loss=loss or "ce", freeze_backbone=self.freeze_backbone,
                       backbone=self.settings[0].backbone, lr=self.lr)
        if row in AMBIGUOUS_ROWS and self.aggregation is not None:
            changes["aggregation"] = self.aggregation
        return self.base.replace(**changes)

    def train_config(self, name: str, settings: Settings) -> TrainConfig:
        return TrainConfig(epochs=settings.epochs, **self.config(name).train_config_kwargs())

    def build(self, name: str, settings: Settings, num_classes: int, pretrained: Optional[str] = "profile"):
        """Run ``name``'s model on the profile's backbone (``pretrained=None``: random, for counting)."""
        backbone = profile_backbone(settings.profile, settings.backbone, settings.image_size, pretrained=pretrained)
        return build_ssanet(backbone, num_classes, self.config(name))

    def key(self, name: str, settings: Settings) -> str:
        """Everything that identifies run ``name``'s model and recipe (folded into its checkpoint path)."""
        profile = {k: v for k, v in asdict(settings.profile).items() if k not in ("description", "seeds", "cam_images")}
        data = {"dataset": settings.dataset, "image_size": settings.image_size, "batch_size": settings.batch_size}
        if settings.dataset == "synthetic" and settings.data_root is None:
            from .data.synthetic import GENERATOR_VERSION, SyntheticConfig

            data["generator"] = [GENERATOR_VERSION, asdict(SyntheticConfig(**settings.profile.synthetic))]
        blob = json.dumps({"config": asdict(self.config(name)), "train": self.train_config(name, settings).fingerprint(),
                           "profile": profile, "data": data}, sort_keys=True, default=str)
        return f"ssanet-{name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"

    def variants_for(self, settings: Settings, num_classes: int) -> List[Variant]:
        """The runs as :class:`~fgvc_lib.experiment.Variant` objects for ``train_variants``."""
        return [Variant(name=name.replace("/", "-"),
                        build=lambda name=name: self.build(name, settings, num_classes),
                        loss=ssanet_loss(self.config(name)), train=self.train_config(name, settings),
                        key=self.key(name, settings))
                for name in self.run_names]

    def train(self, settings: Settings, data, run_root=None) -> Dict[str, List[Run]]:
        """Train (or load from checkpoints) every run on ``data`` for each seed: ``{run name: [Run]}``."""
        # Build the extractor once first: a cold pretraining cache trains it inside the first model's
        # build, which would move the global RNG between the seed and that model's head initialisation.
        profile_backbone(settings.profile, settings.backbone, settings.image_size)
        variants = self.variants_for(settings, data.num_classes)
        trained = train_variants(variants, data, settings.seeds, run_root)
        return {name: trained[v.name] for name, v in zip(self.run_names, variants)}

    def describe(self) -> str:
        lines = [s.describe() for s in self.settings]
        agg = self.aggregation or "each row's preset"
        lines.append(f"rows={','.join(self.variants)} aggregation of no-alpha/alpha={agg} loss={self.loss} "
                     f"freeze_backbone={self.freeze_backbone} lr={self.lr:g}")
        lines.append(f"runs per seed and dataset: {', '.join(self.run_names)}")
        return "\n".join(lines)

    def plan_table(self) -> pd.DataFrame:
        """One line per run: its SSA block, aggregation, alpha, loss and the tables it feeds."""
        rows = []
        for name in self.run_names:
            c = self.config(name)
            tables = [t for t, names in (("table2", self.table2_runs.values()),
                                         ("table3", self.table3_runs.values())) if name in names]
            rows.append({"run": name, "SSA block": "yes" if c.attention else "no",
                         "aggregation": c.resolved_aggregation or "-",
                         "alpha": {None: "-", True: "learnable (init 0)", False: "fixed 1"}[c.resolved_learnable_alpha],
                         "loss": "CE on FE head" if not c.attention else paper.LOSS_LABELS[c.loss],
                         "frozen FE": c.freeze_backbone, "tables": ", ".join(tables)})
        return pd.DataFrame(rows).set_index("run")

    def complexity_table(self, settings: Settings, num_classes: int) -> pd.DataFrame:
        """Parameters (all and trainable) and multiply-adds of each Table 2 row at the run's size."""
        from .complexity import count_parameters, model_complexity

        rows = []
        for row, name in self.table2_runs.items():
            model = self.build(name, settings, num_classes, pretrained=None)
            stats = model_complexity(model, settings.image_size)
            rows.append({"row": row, "params": stats["params"],
                         "trainable params": count_parameters(model, trainable_only=True),
                         "MACs": stats["macs"], "feature map F": f"{model.backbone.stage_channels[model.feature_stage]}"
                         f" x {settings.image_size // model.backbone.stage_strides[model.feature_stage]}^2"})
        return pd.DataFrame(rows).set_index("row")


def resolve_study(profile=None, dataset: str = "", data_root: str = "", backbone: str = "vgg16", seeds="",
                  epochs: int = 0, image_size: int = 0, batch_size: int = 0, variant: str = "all",
                  aggregation: str = "", loss: str = "ad", freeze_backbone=None, lr: float = 0.0) -> Study:
    """Check notebook 05's parameters (clear errors before any training) and plan its runs.

    ``dataset`` and ``data_root`` may list several datasets, comma-separated and in the same order
    (e.g. ``"cub,cars,dogs"`` with three folders); each gets Table 2's rows.
    """
    variants = parse_variants(variant)
    agg = parse_aggregation(aggregation)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: 'ad' (self-attention distillation, Eq. 5) or 'ce' "
                         f"(cross-entropy on both heads, Table 3)")
    names = parse_list(dataset, "dataset") or [""]
    roots = parse_list(data_root, "data_root")
    if len(names) > 1 and len(roots) not in (0, len(names)):
        raise ValueError(f"give one data_root per dataset, comma-separated in the same order: got {len(names)} "
                         f"datasets ({dataset!r}) and {len(roots)} folders ({data_root!r})")
    if len(names) == 1 and len(roots) > 1:
        raise ValueError(f"one dataset but {len(roots)} data_root folders; list the datasets too")
    if len(set(names)) != len(names):
        raise ValueError(f"dataset lists {dataset!r} with a repeat; name each dataset once")
    roots = roots or [""] * len(names)
    defaults = SSANetConfig()
    settings = [resolve_settings(profile, name, root, backbone, seeds, epochs, image_size, batch_size,
                                 backbones=BACKBONES, paper_epochs=defaults.epochs,
                                 paper_batch_size=defaults.batch_size)
                for name, root in zip(names, roots)]
    chosen = settings[0].profile
    return Study(settings, variants, agg, loss, resolve_freeze(freeze_backbone, chosen), resolve_lr(lr, chosen))


# --------------------------------------------------------------------------- tables


def paper_column(dataset: str) -> Optional[str]:
    """The paper's column printed beside ``dataset`` (None: the paper has no numbers for it)."""
    return PAPER_COLUMN.get(dataset)


def head_accuracies(run: Run) -> Dict[str, float]:
    """Top-1 accuracy in percent of each head of a run (``"ssa"``, ``"fe"``)."""
    return {h: 100.0 * run.metrics[f"acc/{h}"] for h in HEADS if f"acc/{h}" in run.metrics}


def _values(runs: Mapping[str, List[Run]], name: str, head: str) -> List[float]:
    return [head_accuracies(r)[head] for r in runs[name]]


def row_heads(row: str) -> Tuple[str, ...]:
    """The heads a Table 2 row has: SSA and FE, or FE alone for no-attention."""
    return ("fe",) if row == "no-attention" else HEADS


def _reported_head(row: str) -> str:
    """The head whose accuracy the paper prints: the SSA output (y_SSA, Eq. 3); FE when there is none."""
    return "fe" if row == "no-attention" else "ssa"


def table2(study: Study, runs_by_dataset: Mapping[str, Mapping[str, List[Run]]]) -> pd.DataFrame:
    """Table 2's SSANet rows in the results format: metric ``top1/<head>_head`` for both heads.

    The paper's number sits beside the head it reports (the SSA head; the FE head of no-attention)."""
    entries = []
    for settings in study.settings:
        runs, column = runs_by_dataset[settings.dataset], paper_column(settings.dataset)
        for row, name in study.table2_runs.items():
            for head in row_heads(row):
                printed = paper.TABLE2[row][column] if column and head == _reported_head(row) else None
                entries.append({"row": row, "dataset": settings.dataset, "metric": f"{METRIC}/{head}_head",
                                "values": _values(runs, name, head), "paper": printed})
    return result_rows(entries, table="table2", backbone=study.settings[0].backbone, profile=study.profile.name)


def table3(study: Study, runs_by_dataset: Mapping[str, Mapping[str, List[Run]]]) -> pd.DataFrame:
    """Table 3 (L_CE vs L_AD for alpha, multiply, plus) in the results format, both heads.

    The paper prints Table 3 for CUB-Birds only (the synthetic set gets those numbers)."""
    entries = []
    for settings in study.settings:
        runs, column = runs_by_dataset[settings.dataset], paper_column(settings.dataset)
        for (row, loss), name in study.table3_runs.items():
            for head in HEADS:
                printed = paper.TABLE3[loss][row] if column == paper.TABLE3_DATASET and head == "ssa" else None
                entries.append({"row": f"{row}/{paper.LOSS_LABELS[loss]}", "dataset": settings.dataset,
                                "metric": f"{METRIC}/{head}_head", "values": _values(runs, name, head),
                                "paper": printed})
    if not entries:
        raise ValueError("Table 3 needs at least one of the rows alpha, multiply, plus; add them to variant")
    return result_rows(entries, table="table3", backbone=study.settings[0].backbone, profile=study.profile.name)


def heads_view(df: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """A results table read side by side: the paper, then ``mean ± std`` of each head per row."""
    shown = []
    for (dataset, row), group in df.groupby(["dataset", "row"], sort=False):
        line = {"dataset": dataset, "row": row}
        papers = group["paper"].dropna()
        line["paper"] = float(papers.iloc[0]) if len(papers) else float("nan")
        for record in group.to_dict("records"):
            head = record["metric"].split("/", 1)[-1].replace("_head", " head")
            std = "" if pd.isna(record["std"]) else f" ± {record['std']:.{decimals}f}"
            line[f"ours, {head}"] = f"{record['reproduced']:.{decimals}f}{std}"
        line["n_seeds"] = int(group["n_seeds"].iloc[0])
        line["comparable"] = not is_synthetic(dataset, group["profile"].iloc[0])
        shown.append(line)
    heads = [f"ours, {h} head" for h in HEADS]
    columns = ["dataset", "row", "paper"] + [h for h in heads if any(h in line for line in shown)] + ["n_seeds", "comparable"]
    out = pd.DataFrame(shown, columns=columns)
    out[[c for c in columns if c.startswith("ours")]] = out[[c for c in columns if c.startswith("ours")]].fillna("")
    return out.set_index(["dataset", "row"])


def alpha_table(study: Study, runs_by_dataset: Mapping[str, Mapping[str, List[Run]]]) -> pd.DataFrame:
    """The learned alpha (sec. 3.2, starts at 0) of every run with a learnable alpha, over seeds."""
    entries = []
    for settings in study.settings:
        runs = runs_by_dataset[settings.dataset]
        for name in study.run_names:
            c = study.config(name)
            if c.resolved_learnable_alpha:
                entries.append({"row": name, "dataset": settings.dataset, "metric": "alpha",
                                "values": [float(r.model.ssa.alpha.detach()) for r in runs[name]]})
    if not entries:
        return pd.DataFrame()
    return result_rows(entries, table="alpha", backbone=study.settings[0].backbone, profile=study.profile.name)


def localization_table(study: Study, dataset: str, scores: Mapping[str, List[Dict[str, float]]]) -> pd.DataFrame:
    """Localization scores (``fgvc_lib.localization``) per run and head: ``scores[label]`` holds one
    dict per seed, ``label`` = ``"<row> (<head> head)"``."""
    entries = [{"row": label, "metric": key, "values": [s[key] for s in per_seed]}
               for label, per_seed in scores.items() for key in per_seed[0]]
    return result_rows(entries, table="localization", dataset=dataset, backbone=study.settings[0].backbone,
                       profile=study.profile.name)


LOCALIZATION_METRICS = ("part_pointing", "part_energy", "part_chance", "object_pointing", "object_energy",
                        "object_chance")


def localization_view(df: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """Localization scores side by side (``mean ± std`` over seeds), rows in Table 2's order."""
    shown = []
    for (dataset, row), group in df.groupby(["dataset", "row"], sort=False):
        line = {"dataset": dataset, "row": row}
        by_metric = {r["metric"]: r for r in group.to_dict("records")}
        for metric in [m for m in LOCALIZATION_METRICS if m in by_metric] + sorted(set(by_metric) - set(LOCALIZATION_METRICS)):
            r = by_metric[metric]
            std = "" if pd.isna(r["std"]) else f" ± {r['std']:.{decimals}f}"
            line[metric] = f"{r['reproduced']:.{decimals}f}{std}"
        shown.append(line)
    return pd.DataFrame(shown).set_index(["dataset", "row"])


# --------------------------------------------------------------------------- claims


def claims(study: Study, runs_by_dataset: Mapping[str, Mapping[str, List[Run]]]) -> Tuple[List[dict], List[str]]:
    """Claims-table entries (for :func:`fgvc_lib.reporting.claims_table`) and the claims skipped.

    Each claim compares the reported heads of two runs (percentage points, paired by seed); the paper's
    effect is taken from its tables for the paper column of the dataset (none for a dataset the paper
    did not use, then only the direction is checked).
    """
    entries: List[dict] = []
    skipped: List[str] = []
    t2 = study.table2_runs
    pairs = [("ssa_beats_no_attention", "SSA beats no attention (no-alpha vs no-attention)", "no-attention", "no-alpha"),
             ("alpha_beats_no_alpha", "alpha beats no-alpha", "no-alpha", "alpha"),
             ("plus_beats_multiply", "plus beats multiply", "multiply", "plus"),
             ("rows_ordered", "full SSANet beats no attention (plus vs no-attention)", "no-attention", "plus")]
    for settings in study.settings:
        dataset, runs, column = settings.dataset, runs_by_dataset[settings.dataset], paper_column(settings.dataset)
        for claim_id, text, a, b in pairs:
            label = f"{text} [{dataset}]"
            if a not in t2 or b not in t2:
                skipped.append(f"{label}: rows {a} and {b} were not both trained")
                continue
            effect = paper.CLAIMS_BY_ID[claim_id].paper_effect.get(column) if column else None
            entry = claim_from_seeds(label, effect, _values(runs, t2[a], _reported_head(a)),
                                     _values(runs, t2[b], _reported_head(b)), direction=None if effect else 1)
            entries.append(entry)
        for row in paper.TABLE3_VARIANTS:
            label = f"self-attention distillation beats plain CE ({row}) [{dataset}]"
            if row not in study.table3_variants:
                skipped.append(f"{label}: row {row} was not trained")
                continue
            effect = (paper.CLAIMS_BY_ID["self_ad_beats_ce"].paper_effect[row]
                      if column == paper.TABLE3_DATASET else None)
            entry = claim_from_seeds(label, effect, _values(runs, study.table3_runs[(row, "ce")], "ssa"),
                                     _values(runs, study.table3_runs[(row, "ad")], "ssa"),
                                     direction=None if effect else 1)
            entries.append(entry)
    return entries, skipped


def localization_claims(study: Study, dataset: str, scores: Mapping[str, List[Dict[str, float]]],
                        scored_images: int = 0) -> List[dict]:
    """Claims of sec. 4.2-4.5 / Fig. 4 that the synthetic ground truth can test (direction only: the
    paper shows maps, no numbers): the full model's Grad-CAM peak falls on the discriminative part
    more often than chance, and more often than the model without attention. With
    ``scored_images``, an effect of two images or less is never counted as held."""
    entries = []
    plus, base = "plus (ssa head)", "no-attention (fe head)"
    if plus in scores and "part_pointing" in scores[plus][0]:
        hits = [s["part_pointing"] - s["part_chance"] for s in scores[plus]]
        entries.append({"claim": f"plus attends to the discriminative part: pointing above chance [{dataset}]",
                        "paper_effect": None, "direction": 1, "values": [100.0 * h for h in hits]})
        if base in scores:
            entries.append(claim_from_seeds(
                f"plus localizes the discriminative part better than no-attention (pointing) [{dataset}]", None,
                [100.0 * s["part_pointing"] for s in scores[base]], [100.0 * s["part_pointing"] for s in scores[plus]],
                direction=1))
    if scored_images:
        for entry in entries:
            entry["resolution"] = 200.0 / scored_images
    return entries
