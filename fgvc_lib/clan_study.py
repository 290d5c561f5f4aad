"""Notebook 03's study of CLAN: the runs its tables need, and the tables, maps and claims built from them.

Huang, Wang & Yang, "Cross-layer Attention Network for Fine-grained Visual Categorization"
(arXiv 2210.08784). The model lives in :mod:`fgvc_lib.models.clan` (CLCA eq. 1-7, CLSA eq. 8-11,
one branch per map, eq. 12-14), the printed numbers and the list of models every table needs in
:mod:`fgvc_lib.papers.clan`. This module turns the notebook's parameters into a plan of training
runs, trains them through :func:`fgvc_lib.experiment.train_variants`, and turns the runs into the
paper's Tables 1-6 (results format), the maps of Figures 4-6 with their localization scores on the
synthetic ground truth, and the claims table. The notebook itself holds no logic.

The plan (:func:`resolve_study`):

* **Main models**, trained for every seed: the fine-tuned backbone (Table 6's baseline row) and
  CLAN with the notebook's ``relation`` at 2 and, on VGG-16, 3 scales. ``scales`` picks which of
  them is "the" CLAN of Table 4, the figures and the CLAN-vs-backbone claim (0 = the paper's
  choice: 3 on VGG-16, 2 on ResNets).
* **Ablation models** (VGG-16 only): the other models of Tables 1-3 (relation metrics, GAP and
  non-local mid-level modules, CLSA poolings), exactly as in the paper's experiments (dot product
  unless the row varies it). They are trained for the first ``ablation_seeds`` seeds and for
  ``ablation_epochs`` epochs (0 = the profile's :data:`ABLATION_SEEDS` / :data:`ABLATION_EPOCHS`).
  When the ablations are shorter than the main runs, the main models that Tables 1-3 need as their
  reference rows (e.g. the dot-product CLAN) are trained again at the ablation length, so every
  comparison inside Tables 1-3 is between runs of the same length and seed
  (:meth:`Study.ablation_key`).
* Tables 1-3 are VGG-16 experiments in the paper (2 and 3 scales, and 3 scales do not exist on
  ResNets), so with a ResNet backbone they are skipped with a note; Table 4 is then computed from
  the 2-scale ResNet CLAN without paper numbers, Table 5 adds the ResNet rows to the paper's
  VGG-16 rows, and Table 6 compares the ResNet CLAN with the ResNet baseline.

Accuracies are top-1 in percent, beside the paper's percent numbers. On the synthetic data the
paper column holds the paper's CUB-200-2011 numbers (:data:`PAPER_COLUMN`); those rows are marked
not comparable by :func:`fgvc_lib.reporting.paper_vs_reproduced`.
"""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from .engine import TrainConfig, accuracy
from .profiles import limit_threads  # noqa: F401  (re-exported for the notebook)
from .experiment import Run, Settings, Variant, profile_backbone, resolve_settings, train_variants
from .models.baseline import BaselineNet, cross_entropy_loss
from .models.clan import (CLAN, CLAN_STAGES, PAPER_SCALES, CLANConfig, build_clan, clan_loss,
                          combine_branches)
from .models.clan_modules import RELATIONS, check_choice
from .papers import clan as paper
from .reporting import claim_from_seeds, paper_vs_reproduced, result_rows, write_table

METRIC = paper.METRIC                      # top-1 accuracy in percent
BACKBONES = ("vgg16", "resnet50", "resnet101")
BACKBONE_LABELS = {"vgg16": "VGG-16", "resnet50": "ResNet-50", "resnet101": "ResNet-101"}
VGG_ONLY_TABLES = ("table1", "table2", "table3")

# Which paper column a dataset's rows are printed beside: the synthetic birds get CUB-200-2011's
# numbers (marked not comparable); Stanford Dogs is not in the paper.
PAPER_COLUMN = {"cub": "cub", "cars": "cars", "aircraft": "aircraft", "synthetic": "cub"}

# Seeds of the ablation models (Tables 1-3) when the notebook's ablation_seeds is 0: the first n
# seeds (0 = every seed). The cpu profile cannot train 13 models for two seeds in its 10 minutes:
# the ablations get one seed there (see the notebook's Deviations).
ABLATION_SEEDS: Dict[str, int] = {"smoke": 0, "cpu": 1, "paper": 0}

# Epochs of the ablation models when the notebook's ablation_epochs is 0, as a fraction of the run's
# epochs (at least 1). cpu: a quarter (2 of 8 epochs), with the reference rows retrained at that length.
ABLATION_EPOCHS: Dict[str, float] = {"smoke": 1.0, "cpu": 0.25, "paper": 1.0}


# Test images per class scored for the localization table (Figures 4-6).
LOCALIZATION_PER_CLASS = 8


# --------------------------------------------------------------------------- parameters


def resolve_scales(scales, backbone: str) -> int:
    """The number of scales N of the main CLAN: ``0`` = the paper's choice for ``backbone``."""
    if isinstance(scales, bool) or not isinstance(scales, int) or scales not in (0, 2, 3):
        raise ValueError(f"scales must be 2, 3 or 0 (the paper's choice: 3 on VGG-16, 2 on ResNets); "
                         f"got {scales!r}")
    if scales == 0:
        return PAPER_SCALES[backbone]
    mids = CLAN_STAGES[backbone][1]
    if scales - 1 > len(mids):
        raise ValueError(f"scales={scales} is not defined on {backbone}: CLAN uses its top map "
                         f"{CLAN_STAGES[backbone][0]} and the mid map {', '.join(mids)} only (section 4.1; "
                         f"3 scales add VGG-16's conv4_3). Use scales=2 (or 0 for the paper's choice) with "
                         f"{backbone}, or backbone='vgg16' for 3 scales.")
    return scales


def resolve_relation(relation) -> str:
    """CLCA's relation metric f (eq. 5-7) of the main CLAN models."""
    check_choice("relation metric", relation, RELATIONS)
    return relation


def resolve_ablation_seeds(ablation_seeds, seeds: Sequence[int], profile_name: str) -> List[int]:
    """The seeds of the ablation models: the first ``n`` of ``seeds`` (0 = the profile's default)."""
    if isinstance(ablation_seeds, bool) or not isinstance(ablation_seeds, int) or ablation_seeds < 0:
        raise ValueError(f"ablation_seeds must be an integer >= 0 (0 = the profile's choice, n = the first n "
                         f"seeds); got {ablation_seeds!r}")
    n = ablation_seeds or ABLATION_SEEDS.get(profile_name, 0) or len(seeds)
    return list(seeds)[:n]


def resolve_ablation_epochs(ablation_epochs, epochs: int, profile_name: str) -> int:
    """Epochs of the ablation models: ``ablation_epochs``, or the profile's fraction of ``epochs``."""
    if isinstance(ablation_epochs, bool) or not isinstance(ablation_epochs, int) or ablation_epochs < 0:
        raise ValueError(f"ablation_epochs must be an integer >= 0 (0 = the profile's choice); got {ablation_epochs!r}")
    if ablation_epochs:
        return ablation_epochs
    return max(1, int(round(epochs * ABLATION_EPOCHS.get(profile_name, 1.0))))


def paper_column(dataset: str) -> Optional[str]:
    """The paper's column printed beside ``dataset`` (None: the paper has no numbers for it)."""
    return PAPER_COLUMN.get(dataset)


# --------------------------------------------------------------------------- the plan of runs


@dataclass(frozen=True)
class ModelSpec:
    key: str
    kind: str                  # "clan" | "baseline"
    backbone: str
    config: Tuple[Tuple[str, object], ...]   # CLANConfig overrides, sorted (hashable)
    tier: str                  # "main" | "ablation"
    epochs: int

    @property
    def overrides(self) -> Dict[str, object]:
        return dict(self.config)


def clan_key(backbone: str, scales: int, relation: str = "dot_product") -> str:
    """Model key of CLAN at ``scales`` with ``relation`` (the keys of :func:`paper.experiment_plan`)."""
    return f"clan_{backbone}_{scales}s" + ("" if relation == "dot_product" else f"_{relation}")


@dataclass
class Study:
    """The resolved parameters of notebook 03 and the runs they call for."""

    settings: Settings
    scales: int                       # N of the main CLAN (Table 4, figures, CLAN-vs-backbone claim)
    relation: str                     # CLCA metric of the main CLAN models
    ablation_seeds: List[int]
    ablation_epochs: int
    models: "OrderedDict[str, ModelSpec]"
    skipped: Dict[str, str]           # table -> why it is not rebuilt for this backbone

    # ------------------------------------------------------------------ names
    @property
    def profile(self):
        return self.settings.profile

    @property
    def backbone(self) -> str:
        return self.settings.backbone

    @property
    def is_vgg(self) -> bool:
        return self.backbone == "vgg16"

    @property
    def baseline_key(self) -> str:
        return f"{self.backbone}_baseline"

    def clan_key(self, scales: Optional[int] = None) -> str:
        """The main CLAN at ``scales`` (default: the notebook's ``scales``)."""
        return clan_key(self.backbone, self.scales if scales is None else scales, self.relation)

    @property
    def main_scales(self) -> Tuple[int, ...]:
        return (2, 3) if self.is_vgg else (2,)

    @property
    def nonlocal_key(self) -> Optional[str]:
        return "clan_vgg16_3s_nonlocal" if self.is_vgg else None

    def seeds_of(self, key: str) -> List[int]:
        return list(self.settings.seeds) if self.models[key].tier == "main" else list(self.ablation_seeds)

    def ablation_key(self, key: str) -> str:
        """The model a Table 1-3 cell reads: ``key`` itself, or its copy trained at the ablation
        length when ``key`` is a main model and the ablations are shorter."""
        spec = self.models[key]
        if spec.tier == "ablation" or spec.epochs == self.ablation_epochs:
            return key
        return f"{key}_e{self.ablation_epochs}"

    # ------------------------------------------------------------------ models
    def clan_config(self, key: str) -> CLANConfig:
        spec = self.models[key]
        if spec.kind != "clan":
            raise ValueError(f"{key!r} is not a CLAN model")
        config = CLANConfig(**spec.overrides)
        config.validate()
        return config

    def train_config(self, key: str) -> TrainConfig:
        """The paper's recipe (section 4.1) for every model, the baseline included, at its epochs."""
        return CLANConfig().train_config(self.backbone, epochs=self.models[key].epochs)

    def build(self, key: str, num_classes: int, pretrained: Optional[str] = "profile"):
        spec = self.models[key]
        backbone = profile_backbone(self.profile, spec.backbone, self.settings.image_size, pretrained=pretrained)
        if spec.kind == "baseline":
            return BaselineNet(backbone, num_classes)
        return build_clan(backbone, num_classes, self.clan_config(key))

    def fingerprint(self, key: str) -> str:
        """Everything that identifies a model and its recipe (folded into its checkpoint path)."""
        spec = self.models[key]
        profile = {k: v for k, v in asdict(self.profile).items()   # everything that shapes the data and net
                   if k not in ("name", "description", "cam_images", "seeds", "epochs", "batch_size")}
        blob = json.dumps({"kind": spec.kind, "backbone": spec.backbone, "epochs": spec.epochs,
                           "config": asdict(self.clan_config(key)) if spec.kind == "clan" else {},
                           "train": self.train_config(key).fingerprint(), "profile": profile},
                          sort_keys=True, default=str)
        return f"clan-{key}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"

    def variants(self, num_classes: int, tier: str) -> List[Variant]:
        return [Variant(name=key, build=lambda key=key: self.build(key, num_classes),
                        loss=cross_entropy_loss if spec.kind == "baseline" else clan_loss,
                        train=self.train_config(key), key=self.fingerprint(key))
                for key, spec in self.models.items() if spec.tier == tier]

    def train(self, data, run_root=None) -> Dict[str, List[Run]]:
        """Train (or load from checkpoints) the main models for every seed, then the ablation models
        for the ablation seeds: ``{model key: [Run per seed]}``."""
        runs: Dict[str, List[Run]] = {}
        for tier, seeds in (("main", self.settings.seeds), ("ablation", self.ablation_seeds)):
            variants = self.variants(data.num_classes, tier)
            if variants:
                runs.update(train_variants(variants, data, seeds, run_root))
        return runs

    # ------------------------------------------------------------------ descriptions
    def describe(self) -> str:
        train = self.train_config(self.clan_key())
        lines = [self.settings.describe(),
                 f"CLAN: scales={self.scales} relation={self.relation} (Table 4, figures: {self.clan_key()})",
                 f"recipe: SGD lr={train.lr:g} momentum={train.momentum:g} weight_decay={train.weight_decay:g}, "
                 f"lr x{train.gamma:g} every {train.step_size} epoch(s), {train.epochs} epochs",
                 f"main models (seeds {self.settings.seeds}): "
                 + ", ".join(k for k, s in self.models.items() if s.tier == "main")]
        ablations = [k for k, s in self.models.items() if s.tier == "ablation"]
        if ablations:
            lines.append(f"ablation models (seeds {self.ablation_seeds}, {self.ablation_epochs} epochs): "
                         f"{', '.join(ablations)}")
        for table, reason in self.skipped.items():
            lines.append(f"{table}: skipped - {reason}")
        return "\n".join(lines)

    def plan_table(self) -> pd.DataFrame:
        """One line per model: what it is, the seeds and epochs it gets and the tables it feeds."""
        feeds = self._tables_per_model()
        rows = []
        for key, spec in self.models.items():
            if spec.kind == "baseline":
                what = dict(scales="-", mid_module="-", relation="-", clsa="-")
            else:
                c = self.clan_config(key)
                n = c.scales or PAPER_SCALES[spec.backbone]
                what = dict(scales=n, mid_module=c.mid_module, relation=c.relation if c.mid_module != "gap" else "-",
                            clsa=c.clsa_pooling if c.use_clsa else "off")
            rows.append({"model": key, "backbone": spec.backbone, **what, "tier": spec.tier,
                         "seeds": ",".join(map(str, self.seeds_of(key))), "epochs": spec.epochs,
                         "tables": ", ".join(feeds.get(key, []))})
        return pd.DataFrame(rows).set_index("model")

    def _tables_per_model(self) -> Dict[str, List[str]]:
        feeds: Dict[str, List[str]] = {}

        def add(key, table):
            if key in self.models and table not in feeds.setdefault(key, []):
                feeds[key].append(table)
        if self.is_vgg:
            _, cells = paper.experiment_plan()
            for cell in cells:
                if cell["table"] in VGG_ONLY_TABLES:
                    add(self.ablation_key(cell["model"]), cell["table"])
        add(self.clan_key(), "table4")
        add(self.baseline_key, "table6")
        for n in self.main_scales:
            add(self.clan_key(n), "table6")
        for key in figure_models(self).values():
            add(key, "figures")
        return feeds


def resolve_study(profile=None, dataset: str = "", data_root: str = "", backbone: str = "vgg16",
                  scales: int = 0, relation: str = "dot_product", seeds="", epochs: int = 0,
                  image_size: int = 0, batch_size: int = 0, ablation_seeds: int = 0,
                  ablation_epochs: int = 0) -> Study:
    """Check notebook 03's parameters (clear errors before any training) and plan its runs."""
    defaults = CLANConfig()
    settings = resolve_settings(profile, dataset, data_root, backbone, seeds, epochs, image_size, batch_size,
                                backbones=BACKBONES, paper_epochs=defaults.epochs,
                                paper_batch_size=defaults.batch_size)
    n_scales = resolve_scales(scales, backbone)
    relation = resolve_relation(relation)
    ablation = resolve_ablation_seeds(ablation_seeds, settings.seeds, settings.profile.name)
    short = resolve_ablation_epochs(ablation_epochs, settings.epochs, settings.profile.name)

    models: "OrderedDict[str, ModelSpec]" = OrderedDict()

    def add(key, kind, config, tier):
        if key not in models:
            epochs = settings.epochs if tier == "main" else short
            models[key] = ModelSpec(key, kind, backbone, tuple(sorted(config.items())), tier, epochs)

    add(f"{backbone}_baseline", "baseline", {}, "main")
    main_scales = (2, 3) if backbone == "vgg16" else (2,)
    for n in main_scales:
        config = {"scales": n} if relation == "dot_product" else {"scales": n, "relation": relation}
        add(clan_key(backbone, n, relation), "clan", config, "main")
    skipped: Dict[str, str] = {}
    if backbone == "vgg16":
        plan, cells = paper.experiment_plan()
        for key, spec in plan.items():
            if spec["backbone"] == "vgg16" and spec["kind"] == "clan":
                add(key, "clan", dict(spec["config"]), "ablation")
        if short != settings.epochs:  # Tables 1-3's reference rows, retrained at the ablation length
            for cell in cells:
                key = cell["model"]
                if cell["table"] in VGG_ONLY_TABLES and models[key].tier == "main":
                    add(f"{key}_e{short}", "clan", models[key].overrides, "ablation")
    else:
        for table in VGG_ONLY_TABLES:
            skipped[table] = (f"a VGG-16 ablation in the paper (2 and 3 scales; 3 scales do not exist on "
                              f"{backbone}); run the notebook with backbone='vgg16' to rebuild it")
    study = Study(settings, n_scales, relation, ablation, short, models, skipped)
    for key in models:  # every configuration must be valid before any training starts
        if models[key].kind == "clan":
            study.clan_config(key)
    return study


# --------------------------------------------------------------------------- accuracies


def cell_accuracy(run: Run, branches: Optional[Sequence[str]] = None, mode: str = "prob") -> float:
    """Top-1 accuracy (percent) of a run's stored test logits: the final prediction, or the
    combination of ``branches`` (:func:`~fgvc_lib.models.clan.combine_branches`, no retraining)."""
    targets = run.outputs["targets"]
    if branches is None:
        return 100.0 * accuracy(run.outputs["final"], targets)
    logits = combine_branches({b: run.outputs[b] for b in branches}, branches, mode)
    return 100.0 * accuracy(logits, targets)


def _combine_mode(study: Study, key: str) -> str:
    return study.clan_config(key).combine if study.models[key].kind == "clan" else "prob"


def cell_values(study: Study, runs: Mapping[str, List[Run]], key: str,
                branches: Optional[Sequence[str]] = None, seeds: Optional[Sequence[int]] = None) -> Dict[int, float]:
    """``{seed: accuracy}`` of one table cell (only ``seeds`` when given)."""
    mode = _combine_mode(study, key)
    return {run.seed: cell_accuracy(run, branches, mode) for run in runs[key] if seeds is None or run.seed in seeds}


def runs_summary(study: Study, runs: Mapping[str, List[Run]]) -> pd.DataFrame:
    """One line per run: test accuracy of the final prediction and of each branch, training time."""
    rows = []
    for key, per_seed in runs.items():
        for run in per_seed:
            line = {"model": key, "seed": run.seed, "final": 100.0 * run.metrics["acc"]}
            line.update({b: 100.0 * v for b, v in ((k.split("/", 1)[1], v) for k, v in run.metrics.items()
                                                    if k.startswith("acc/"))})
            seconds = [e.get("seconds", float("nan")) for e in run.history.epochs] if run.history else []
            line["train_loss"] = run.history.last.get("train_loss", float("nan")) if run.history else float("nan")
            line["train_s"] = float(np.nansum(seconds)) if seconds else float("nan")
            rows.append(line)
    columns = ["model", "seed", "final", "G", "P", "A", "CLSA", "train_loss", "train_s"]
    df = pd.DataFrame(rows)
    return df[[c for c in columns if c in df.columns]].set_index(["model", "seed"]).round(2)


def _rows(study: Study, table: str, entries: List[dict]) -> pd.DataFrame:
    return result_rows(entries, table=table, dataset=study.settings.dataset, backbone=study.backbone,
                       metric=METRIC, profile=study.profile.name)


def _entry(row: str, values: Mapping[int, float], printed: Optional[float]) -> dict:
    return {"row": row, "values": [values[s] for s in sorted(values)], "paper": printed}


def _plan_cells(table: str) -> List[dict]:
    _, cells = paper.experiment_plan()
    return [c for c in cells if c["table"] == table]


def table1(study: Study, runs: Mapping[str, List[Run]]) -> Optional[pd.DataFrame]:
    """Table 1: CLCA's relation metric x {2, 3} scales; the top and mid-level branches combined
    (our reading of Tables 1-2, see :mod:`fgvc_lib.papers.clan`). None when skipped.

    Tables 1-3 show every row on the ablation seeds, so the rows of a table share their seeds."""
    if "table1" in study.skipped:
        return None
    cub = paper_column(study.settings.dataset) == "cub"
    return _rows(study, "table1", [
        _entry(f"{c['row']} [{c['column']}]", cell_values(study, runs, study.ablation_key(c["model"]), c["branches"], study.ablation_seeds),
               paper.TABLE1[c["row"]][c["column"]] if cub else None) for c in _plan_cells("table1")])


def table2(study: Study, runs: Mapping[str, List[Run]]) -> Optional[pd.DataFrame]:
    """Table 2: GAP / non-local / CLCA on the mid-level maps of 3-scale VGG-16 (top + mid branches)."""
    if "table2" in study.skipped:
        return None
    column = paper_column(study.settings.dataset)
    cells = [c for c in _plan_cells("table2") if c["column"] == "cub"]  # one model per row
    return _rows(study, "table2", [
        _entry(c["row"], cell_values(study, runs, study.ablation_key(c["model"]), c["branches"], study.ablation_seeds),
               paper.TABLE2[c["row"]][column] if column else None) for c in cells])


def table3(study: Study, runs: Mapping[str, List[Run]]) -> Optional[pd.DataFrame]:
    """Table 3: CLSA's channel pooling x {2, 3} scales, the full model's final prediction."""
    if "table3" in study.skipped:
        return None
    cub = paper_column(study.settings.dataset) == "cub"
    return _rows(study, "table3", [
        _entry(f"{c['row']} [{c['column']}]", cell_values(study, runs, study.ablation_key(c["model"]), None, study.ablation_seeds),
               paper.TABLE3[c["row"]][c["column"]] if cub else None) for c in _plan_cells("table3")])


def table4_rows(model_scales: int) -> "OrderedDict[str, Tuple[str, ...]]":
    """Table 4's rows (branches combined at test time) that a CLAN with ``model_scales`` has."""
    if model_scales >= 3:
        return OrderedDict(paper.TABLE4_BRANCHES)
    rows = OrderedDict((r, b) for r, b in paper.TABLE4_BRANCHES.items() if "A" not in b)
    rows["G + P + CLSA"] = ("G", "P", "CLSA")  # the full 2-scale prediction (not a row of the paper)
    return rows


def table4(study: Study, runs: Mapping[str, List[Run]]) -> pd.DataFrame:
    """Table 4: the main CLAN's branches alone and combined, from its stored test logits (one trained
    model per seed, no retraining). Paper numbers only beside the paper's 3-scale VGG-16 model."""
    key = study.clan_key()
    column = paper_column(study.settings.dataset)
    printed = study.is_vgg and study.scales == 3 and column is not None and study.relation == "dot_product"
    return _rows(study, "table4", [
        _entry(row, cell_values(study, runs, key, branches),
               paper.TABLE4[row][column] if printed and row in paper.TABLE4 else None)
        for row, branches in table4_rows(study.scales).items()])


def table6_rows(study: Study) -> "OrderedDict[str, str]":
    """Table 6's reproduced rows for the run's backbone: ``{paper row: model key}``."""
    label = BACKBONE_LABELS[study.backbone]
    rows = OrderedDict([(f"{label} ({label})", study.baseline_key)])
    for n in study.main_scales:
        rows[f"CLAN({n}-scale) ({label})"] = study.clan_key(n)
    return rows


def table6(study: Study, runs: Mapping[str, List[Run]]) -> pd.DataFrame:
    """Table 6: CLAN against the fine-tuned baseline of the same backbone (final predictions)."""
    column = paper_column(study.settings.dataset)
    entries = []
    for row, key in table6_rows(study).items():
        printed = paper.TABLE6[row][column] if column else None
        if study.models[key].kind == "clan" and study.relation != "dot_product":
            row, printed = f"{row} [{study.relation}]", None  # the paper's CLAN uses the dot product
        entries.append(_entry(row, cell_values(study, runs, key), printed))
    return _rows(study, "table6", entries)


def report(df: Optional[pd.DataFrame], path: Path, study: Study, table: str, decimals: int = 2):
    """Write a rebuilt table (results format) and return it arranged for reading; for a table
    skipped on this backbone, print why and return None."""
    if df is None:
        print(f"{table} not rebuilt: {study.skipped.get(table, 'no runs')}")
        return None
    write_table(df, path)
    return paper_vs_reproduced(df, decimals=decimals)


# --------------------------------------------------------------------------- Table 5 (complexity)


def _full_width_model(backbone: str, kind: str, scales: int = 2, num_classes: int = paper.TABLE5_NUM_CLASSES,
                      **overrides):
    """The paper-size model (width 1, random weights) on the meta device: shapes only, no memory."""
    from .backbones import build_backbone
    with torch.device("meta"):
        net = build_backbone(backbone)
        if kind == "baseline":
            return BaselineNet(net, num_classes)
        return build_clan(net, num_classes, CLANConfig(scales=scales, **overrides))


def table5_models(study: Study) -> "OrderedDict[str, object]":
    """Table 5's rows: the paper's three VGG-16 models (dot-product CLCA, avg&max CLSA), plus the run's
    ResNet baseline and 2-scale CLAN when the backbone is a ResNet (no paper numbers)."""
    models = OrderedDict([("VGG-16", _full_width_model("vgg16", "baseline")),
                          ("2-scale CLAN", _full_width_model("vgg16", "clan", 2)),
                          ("3-scale CLAN", _full_width_model("vgg16", "clan", 3))])
    if not study.is_vgg:
        label = BACKBONE_LABELS[study.backbone]
        models[label] = _full_width_model(study.backbone, "baseline")
        models[f"2-scale CLAN ({label})"] = _full_width_model(study.backbone, "clan", 2)
    return models


def table5(study: Study) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Table 5 at the paper's size (448 x 448, 200 classes, full width) in every profile.

    Returns ``(table, breakdown)``: the results-format table (metrics ``params_m`` in millions and
    ``macs_g`` in billions of multiply-adds, :func:`fgvc_lib.complexity.model_complexity`) and the
    multiply-adds per operator (:func:`fgvc_lib.complexity.macs_by_operator`), with an extra row for
    the 3-scale CLAN evaluated literally (the ``n x n`` relation matrix of eq. 2 formed, ``W_g``
    applied after the upsampling) to show where a count above the paper's would come from."""
    from .complexity import count_parameters, macs_by_operator

    entries, breakdown = [], []
    models = table5_models(study)
    models["3-scale CLAN, eq. 2 literal"] = _full_width_model(
        "vgg16", "clan", 3, project_top_first=False, efficient_dot_product=False)
    for row, model in models.items():
        by_op = macs_by_operator(model, paper.TABLE5_IMAGE_SIZE)
        params, macs = count_parameters(model), sum(by_op.values())
        printed = paper.TABLE5.get(row, {})
        if row != "3-scale CLAN, eq. 2 literal":
            entries.append({"row": row, "metric": "params_m", "values": [params / 1e6],
                            "paper": printed.get("params_m")})
            entries.append({"row": row, "metric": "macs_g", "values": [macs / 1e9], "paper": printed.get("macs_g")})
        line = {"model": row, "params (M)": params / 1e6, "MACs (G)": macs / 1e9}
        line.update({f"{op} (G)": v / 1e9 for op, v in by_op.items()})
        breakdown.append(line)
    table = result_rows(entries, table="table5", dataset=f"{paper_column('cub')} (200 classes, 448 px)",
                        backbone="vgg16" if study.is_vgg else f"vgg16+{study.backbone}", profile=study.profile.name)
    return table, pd.DataFrame(breakdown).set_index("model").fillna(0.0).round(3)


def table5_view(df: pd.DataFrame) -> pd.DataFrame:
    """Table 5 side by side: paper and ours for parameters and MACs, with the relative gap in percent.

    These counts do not depend on the data or the profile (full width, 448 px, 200 classes), so
    unlike the accuracies they are comparable with the paper's."""
    out = []
    for row, group in df.groupby("row", sort=False):
        values = {m: (r["paper"], r["reproduced"]) for m, r in zip(group["metric"], group.to_dict("records"))}
        line = {"row": row}
        for metric, label in (("params_m", "params (M)"), ("macs_g", "MACs (G)")):
            printed, ours = values[metric]
            line[f"paper {label}"] = printed
            line[f"ours {label}"] = round(ours, 2)
            line[f"gap {metric[:-2]} %"] = round(100.0 * (ours / printed - 1), 2) if pd.notna(printed) else float("nan")
        out.append(line)
    return pd.DataFrame(out).set_index("row")


# --------------------------------------------------------------------------- maps (Figures 4-6)


def figure_models(study: Study) -> "OrderedDict[str, str]":
    """The models whose maps are drawn and scored: the baseline, the 3-scale non-local model (VGG-16)
    and the main CLAN."""
    models = OrderedDict([("baseline", study.baseline_key)])
    if study.nonlocal_key:
        models["non-local"] = study.nonlocal_key
    models["CLAN"] = study.clan_key()
    return models


def figure_stages(study: Study) -> Tuple[str, ...]:
    """The layers of Figures 4-5: the top map then the mid maps (VGG-16: conv5_3, conv5_2, conv4_3)."""
    top, mids = CLAN_STAGES[study.backbone]
    return (top,) + tuple(mids)


def stage_layer(model, stage: str):
    """The module whose output is ``stage``'s map: CLAN's refined map where CLAN refines that stage
    (the CLCA/non-local output), else the backbone's own stage."""
    if isinstance(model, CLAN):
        layers = model.cam_layers()
        if stage in layers:
            return layers[stage]
    return model.backbone.stage_module(stage)


@torch.no_grad()
def _stage_maps(model, images: torch.Tensor, stages: Sequence[str]) -> Dict[str, torch.Tensor]:
    """Each stage's feature map as the model uses it (CLAN: refined mid maps; else the backbone's)."""
    was_training = model.training
    model.eval()
    try:
        found: Dict[str, torch.Tensor] = {}
        if isinstance(model, CLAN):
            found.update(model(images.contiguous()).extras["features"])
        missing = [s for s in stages if s not in found]
        if missing:
            found.update(model.backbone(images.contiguous(), missing))
    finally:
        model.train(was_training)
    return {s: found[s] for s in stages}


def activation_maps(model, images: torch.Tensor, stages: Sequence[str]) -> Dict[str, np.ndarray]:
    """Channel-mean activation of each stage's map at image size, scaled to [0, 1] (Figure 4)."""
    from .cam import feature_activation_map
    size = tuple(images.shape[-2:])
    return {s: feature_activation_map(m, size) for s, m in _stage_maps(model, images, stages).items()}


def gradcam_maps(model, images: torch.Tensor, labels: torch.Tensor, stages: Sequence[str]) -> Dict[str, np.ndarray]:
    """Grad-CAM of the final prediction for the true class at each stage (Figure 5)."""
    from .cam import compute_cams
    return {s: compute_cams(model, images, target_layers=[stage_layer(model, s)], targets=labels) for s in stages}


@torch.no_grad()
def clsa_maps(model, images: torch.Tensor) -> Dict[str, np.ndarray]:
    """CLSA's attention maps ``M^s`` (eq. 8) of each mid stage, upsampled to image size and scaled to
    [0, 1] (Figure 6). Empty for a model without CLSA."""
    from .cam import feature_activation_map
    if not isinstance(model, CLAN) or not model.config.use_clsa:
        return {}
    was_training = model.training
    model.eval()
    try:
        attention = model(images.contiguous()).extras["clsa_attention"]
    finally:
        model.train(was_training)
    size = tuple(images.shape[-2:])
    return {stage: feature_activation_map(m, size) for stage, m in attention.items()}


def model_maps(model, images: torch.Tensor, labels: torch.Tensor, stages: Sequence[str]) -> Dict[str, np.ndarray]:
    """Every map of one model on a batch: ``"<stage> activation"``, ``"<stage> Grad-CAM"`` and
    ``"CLSA <stage>"`` -> ``(B, H, W)`` in [0, 1]."""
    maps = {f"{s} activation": m for s, m in activation_maps(model, images, stages).items()}
    maps.update({f"{s} Grad-CAM": m for s, m in gradcam_maps(model, images, labels, stages).items()})
    maps.update({f"CLSA {s}": m for s, m in clsa_maps(model, images).items()})
    return maps


@dataclass
class MapScores:
    """Localization scores of every map of every figure model and seed (:func:`score_maps`)."""

    scores: Dict[str, Dict[str, List[Dict[str, float]]]]  # model label -> map name -> one dict per seed
    seeds: Dict[str, List[int]]                             # model label -> its seeds, in that order
    correlations: Dict[str, Dict[int, float]]               # model label -> seed -> top/mid Grad-CAM corr.

    def per_seed(self, label: str, name: str, metric: str) -> Dict[int, float]:
        """``{seed: 100 * score}`` of one map and metric (empty when not measured)."""
        return {s: 100.0 * v[metric] for s, v in zip(self.seeds.get(label, []),
                                                     self.scores.get(label, {}).get(name, [])) if metric in v}


def score_maps(study: Study, runs: Mapping[str, List[Run]], sample) -> MapScores:
    """Score every map (:func:`model_maps`) of every figure model and seed against the sample's
    ground truth (:func:`fgvc_lib.localization.score_cams`), and correlate the Grad-CAM maps of the
    top and the first mid stage (section 4.4: the baseline's conv5_2 repeats conv5_3, CLAN's not)."""
    from .localization import score_cams
    stages = figure_stages(study)
    top, mid = stages[:2]
    scores: Dict[str, Dict[str, List[Dict[str, float]]]] = OrderedDict()
    seeds: Dict[str, List[int]] = OrderedDict()
    correlations: Dict[str, Dict[int, float]] = OrderedDict()
    for label, key in figure_models(study).items():
        per_map: Dict[str, List[Dict[str, float]]] = OrderedDict()
        seeds[label], correlations[label] = [], {}
        for run in runs.get(key, []):
            maps = model_maps(run.model, sample.images, sample.labels, stages)
            for name, m in maps.items():
                per_map.setdefault(name, []).append(score_cams(m, sample))
            seeds[label].append(run.seed)
            correlations[label][run.seed] = map_correlation(maps[f"{top} Grad-CAM"], maps[f"{mid} Grad-CAM"])
        scores[label] = per_map
    return MapScores(scores, seeds, correlations)


def localization_table(study: Study, scores: MapScores) -> pd.DataFrame:
    """The scores in the results format (percent), one row per model and map, one metric per score."""
    entries = []
    for label, per_map in scores.scores.items():
        for name, per_seed in per_map.items():
            for metric in per_seed[0]:
                entries.append({"row": f"{label}: {name}", "metric": metric,
                                "values": [100.0 * s[metric] for s in per_seed]})
    return result_rows(entries, table="localization", dataset=study.settings.dataset, backbone=study.backbone,
                       profile=study.profile.name)


def localization_view(df: pd.DataFrame) -> pd.DataFrame:
    """The localization table read side by side: one line per map, the pointing games and energy
    shares (mean over seeds, percent) and their chance levels."""
    wide = df.pivot_table(index="row", columns="metric", values="reproduced", sort=False).round(1)
    seeds = df.groupby("row", sort=False)["n_seeds"].first()
    order = [c for c in ("part_pointing", "part_chance", "part_energy", "object_pointing", "object_chance",
                         "object_energy") if c in wide.columns]
    wide = wide[order]
    wide["n_seeds"] = seeds
    return wide


def map_figure(study: Study, runs: Mapping[str, List[Run]], sample, kind: str):
    """Figure 4 (``kind="activation"``), 5 (``"Grad-CAM"``) or 6 (``"CLSA"``) for the first seed:
    one row per image, one column per model and layer."""
    from .cam import cam_grid
    from .data.transforms import denormalize
    if kind not in ("activation", "Grad-CAM", "CLSA"):
        raise ValueError(f"kind must be 'activation', 'Grad-CAM' or 'CLSA'; got {kind!r}")
    models = figure_models(study)
    if kind == "Grad-CAM":   # the paper's Figure 5: baseline and CLAN
        models = OrderedDict((k, v) for k, v in models.items() if k != "non-local")
    if kind == "CLSA":       # Figure 6: the main CLAN's attention maps
        models = OrderedDict([("CLAN", models["CLAN"])])
    stages = figure_stages(study)
    columns = OrderedDict()
    for label, key in models.items():
        model = runs[key][0].model
        if kind == "activation":
            maps = activation_maps(model, sample.images, stages)
        elif kind == "Grad-CAM":
            maps = gradcam_maps(model, sample.images, sample.labels, stages)
        else:
            maps = clsa_maps(model, sample.images)
        for stage, m in maps.items():
            columns[f"{label}{' CLSA' if kind == 'CLSA' else ''}\n{stage}"] = m
    return cam_grid(sample.images, columns, titles=sample.titles, boxes=sample.first_part_boxes(),
                    denormalize=denormalize)


def map_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over images of the Pearson correlation between two ``(B, H, W)`` stacks of maps."""
    values = []
    for x, y in zip(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)):
        x, y = x.ravel() - x.mean(), y.ravel() - y.mean()
        denominator = np.sqrt((x * x).sum() * (y * y).sum())
        values.append(float((x * y).sum() / denominator) if denominator > 0 else 0.0)
    return float(np.mean(values))


# --------------------------------------------------------------------------- claims


def _paired(a: Mapping[int, float], b: Mapping[int, float]) -> Tuple[List[float], List[float]]:
    seeds = sorted(set(a) & set(b))
    return [a[s] for s in seeds], [b[s] for s in seeds]


def _mean_gap(study: Study, runs, pairs: Sequence[Tuple[Tuple[str, Optional[tuple]], Tuple[str, Optional[tuple]]]]):
    """Per seed: the mean over ``pairs`` of ``better - worse`` (cells as ``(model key, branches)``)."""
    per_pair = []
    for (better, b_branches), (worse, w_branches) in pairs:
        hi, lo = cell_values(study, runs, better, b_branches), cell_values(study, runs, worse, w_branches)
        per_pair.append({s: hi[s] - lo[s] for s in set(hi) & set(lo)})
    seeds = sorted(set.intersection(*(set(p) for p in per_pair)))
    return [float(np.mean([p[s] for p in per_pair])) for s in seeds]


def _cell(study: Study, table: str, row: str, column: str) -> Tuple[str, Optional[tuple]]:
    """``(model key, branches)`` of a printed Table 1-3 cell, at the ablation length."""
    for c in _plan_cells(table):
        if c["row"] == row and c["column"] == column:
            return study.ablation_key(c["model"]), c["branches"]
    raise KeyError((table, row, column))


def claims(study: Study, runs: Mapping[str, List[Run]]) -> Tuple[List[dict], List[str]]:
    """Claims-table entries (:func:`fgvc_lib.reporting.claims_table`) from the accuracies, and the
    claims not measured on this backbone. Effects are in percentage points, paired by seed."""
    entries: List[dict] = []
    skipped: List[str] = []
    column = paper_column(study.settings.dataset)
    cub = column == "cub"
    if study.is_vgg:
        relation_pairs = [(_cell(study, "table1", better, s), _cell(study, "table1", "Gaussian", s))
                          for better in ("Dot Product", "Embedded Gaussian") for s in paper.SCALES]
        entries.append({"claim": "Table 1: dot product and embedded Gaussian beat Gaussian (mean of 4 gaps)",
                        "paper_effect": paper.CLAIMS_BY_ID["gaussian_worst"].mean_paper_effect if cub else None, "direction": 1,
                        "values": _mean_gap(study, runs, relation_pairs)})
        for claim_id, text, better, worse in (
                ("clca_beats_nonlocal", "Table 2: CLCA beats non-local", "CLCA", "Non-local"),
                ("nonlocal_beats_gap", "Table 2: non-local beats GAP", "Non-local", "GAP")):
            effect = paper.CLAIMS_BY_ID[claim_id].paper_effect.get(
                f"table2:{better}[{column}] vs table2:{worse}[{column}]") if column else None
            entries.append({"claim": text, "paper_effect": effect, "direction": 1,
                            "values": _mean_gap(study, runs, [(_cell(study, "table2", better, "cub"),
                                                               _cell(study, "table2", worse, "cub"))])})
        pooling_pairs = [(_cell(study, "table3", "CLCA + CLSA(Avg&Max)", s), _cell(study, "table3", other, s))
                         for other in ("CLCA + CLSA(Avg)", "CLCA + CLSA(Max)") for s in paper.SCALES]
        entries.append({"claim": "Table 3: avg&max pooling in CLSA beats avg and max (mean of 4 gaps)",
                        "paper_effect": paper.CLAIMS_BY_ID["avgmax_pooling_best"].mean_paper_effect if cub else None, "direction": 1,
                        "values": _mean_gap(study, runs, pooling_pairs)})
        three, two = cell_values(study, runs, study.clan_key(3)), cell_values(study, runs, study.clan_key(2))
        effect = None
        if column and study.relation == "dot_product":
            effect = round(paper.TABLE6["CLAN(3-scale) (VGG-16)"][column] - paper.TABLE6["CLAN(2-scale) (VGG-16)"][column], 2)
        entries.append(claim_from_seeds("Table 6: 3-scale CLAN beats 2-scale CLAN", effect, *_paired(two, three),
                                        direction=1))
    else:
        skipped += ["Table 1-3 claims (relation metric, mid-level module, CLSA pooling) and 3-scale vs 2-scale: "
                    f"VGG-16 experiments, not run with {study.backbone}"]
    key = study.clan_key()
    printed = study.is_vgg and study.scales == 3 and column is not None and study.relation == "dot_product"
    steps = [("mid_branch_helps", "G + P", "G-Branch")]
    if study.scales >= 3:
        steps += [("second_mid_branch_helps", "G + P + A", "G + P"), ("clsa_branch_helps", "G + P + A + CLSA", "G + P + A")]
    else:
        steps += [(None, "G + P + CLSA", "G + P")]
    steps += [("clsa_refines_top", "CLSA-Branch", "G-Branch")]
    rows = table4_rows(study.scales)
    for claim_id, better, worse in steps:
        effect = None
        if printed and claim_id:
            effect = round(paper.TABLE4[better][column] - paper.TABLE4[worse][column], 2)
        hi, lo = cell_values(study, runs, key, rows[better]), cell_values(study, runs, key, rows[worse])
        entries.append(claim_from_seeds(f"Table 4: {better} beats {worse} ({key})", effect, *_paired(lo, hi),
                                        direction=1))
    label = BACKBONE_LABELS[study.backbone]
    baseline = cell_values(study, runs, study.baseline_key)
    clan = cell_values(study, runs, key)
    row = f"CLAN({study.scales}-scale) ({label})"
    effect = None
    if column and study.relation == "dot_product":
        effect = round(paper.TABLE6[row][column] - paper.TABLE6[f"{label} ({label})"][column], 2)
    entries.append(claim_from_seeds(f"Table 6: CLAN ({study.scales}-scale) beats the fine-tuned {label}", effect,
                                    *_paired(baseline, clan), direction=1))
    return entries, skipped


def figure_claims(study: Study, scores: MapScores) -> Tuple[List[dict], List[str]]:
    """Claims of Figures 4-6 tested on the synthetic ground truth (direction only: the paper shows
    maps, no numbers), in points paired by seed, and the claims not measured."""
    entries: List[dict] = []
    skipped: List[str] = []
    top, mids = figure_stages(study)[0], figure_stages(study)[1:]
    if "non-local" in scores.scores and study.scales == 3:
        energy = {label: {} for label in ("CLAN", "non-local")}
        for label, per_seed in energy.items():  # mean over the mid-level maps, per seed
            for stage in mids:
                for seed, v in scores.per_seed(label, f"{stage} activation", "object_energy").items():
                    per_seed.setdefault(seed, []).append(v)
        a, b = _paired({s: float(np.mean(v)) for s, v in energy["non-local"].items()},
                       {s: float(np.mean(v)) for s, v in energy["CLAN"].items()})
        entries.append(claim_from_seeds(
            "Figure 4: CLCA's mid-level maps put more activation on the bird than non-local's (object energy)",
            None, a, b, direction=1))
    else:
        skipped.append("Figure 4 claim (CLCA vs non-local maps): needs the 3-scale VGG-16 CLAN and the non-local model")
    clan, base = _paired(scores.correlations.get("CLAN", {}), scores.correlations.get("baseline", {}))
    if clan:
        entries.append(claim_from_seeds(
            f"Figure 5: CLAN's {mids[0]} Grad-CAM repeats {top} less than the baseline's (correlation x100)",
            None, [100.0 * v for v in clan], [100.0 * v for v in base], direction=1))
    pointing = scores.per_seed("CLAN", f"CLSA {mids[0]}", "part_pointing")
    chance = scores.per_seed("CLAN", f"CLSA {mids[0]}", "part_chance")
    if pointing and chance:
        entries.append({"claim": f"Figure 6: CLSA's {mids[0]} attention peaks on the discriminative part more "
                                 f"often than chance", "paper_effect": None, "direction": 1,
                        "values": [pointing[s] - chance[s] for s in sorted(pointing)]})
    else:
        skipped.append("Figure 6 claim: no part ground truth on this dataset")
    return entries, skipped
