"""SSANet (Baffour et al., "Spatial self-attention network with self-attention distillation for fine-grained
image recognition", JVCIR 81 (2021) 103368; ../shared/papers/05_ssanet.txt), declared for the study runner
(:mod:`fgvc_lib.study`, :data:`STUDY`) of notebook 05.

Top-1 accuracy in percent, VGG-16 feature extractor, 448x448 images, as printed (:data:`PRINTED`):

* Table 2: the other methods the paper compares with (published results of other papers: printed beside our
  rows, paper only, none reproduced), then SSANet's five rows (no-attention, no-alpha, alpha, multiply, plus)
  on CUB-Birds, Stanford Cars and Stanford Dogs; the ablation text of sec. 4.5 repeats them;
* Table 3 (CUB-Birds): plain cross-entropy on both heads (L_CE) against the self-attention distillation
  loss of Eq. 5 (L_AD) for alpha, multiply and plus.

The runner computes every claim's paper effect from the printed cells the claim names, in the column of the
claim's dataset; none is typed by hand.

What notebook 05 trains and rebuilds:

* Runs. A Table 2 row trained with one loss is one variant, named "<row>-<loss>" ("plus-ad", "alpha-ce");
  no-attention has a single head trained with cross-entropy, so it is one variant named "no-attention".
  Table 2 reads every row the notebook's ``variant`` selects, trained with the notebook's ``loss`` (the
  paper: "ad", Eq. 5). Table 3 needs alpha, multiply and plus with both losses: it reuses Table 2's runs and
  adds the other loss. Every variant is trained for every seed.
* Heads. Every attention row has two heads (sec. 3.4): the SSA output layer, which the paper reports (Eq. 3
  calls y_SSA "the predicted label"), and the FE output layer. Every table shows both, in the one metric
  "top1": a row label names the printed head plainly ("plus", "plus/L_CE") and the other head in brackets
  ("plus [FE head]"). The paper's number stands beside the printed head only. no-attention has only the FE
  head, which is then the printed one.
* Paper columns. Each dataset is printed beside its own column of Table 2 (the synthetic birds beside
  CUB-Birds, marked not comparable); Table 3 has CUB-Birds numbers only.
* Claims: sec. 4.5's comparisons, paired by seed on each dataset's printed heads; that Self-AD helps the FE
  head it distils into (secs. 3.3, 4.5 and 5 say so, no table prints an FE-head number); and two claims on
  the synthetic ground truth (Fig. 4: the full model's Grad-CAM peaks on the discriminative part).
* Views: both heads side by side, Table 2's other methods below ours, the learned alpha of sec. 3.2, the size
  of each row.
"""
from __future__ import annotations

import functools
from typing import Dict, List, Optional, Tuple

from ..data import DATASET_LABELS as BENCHMARK_LABELS
from ..study import Accuracy, Cell, Claim, Paper, Parameter, Printed, Score, Variant, recipes
from ..study.parameters import non_negative_number, optional_flag

PAPER = {
    "key": "ssanet",
    "title": "Spatial self-attention network with self-attention distillation for fine-grained image recognition",
    "authors": "A. A. Baffour, Z. Qin, Y. Wang, Z. Qin, K.-K. R. Choo",
    "venue": "Journal of Visual Communication and Image Representation 81 (2021) 103368",
    "doi": "10.1016/j.jvcir.2021.103368",
}
BACKBONE = "vgg16"
DATASET_LABELS = {**BENCHMARK_LABELS, "cub": "CUB-Birds"}   # the paper's spelling of CUB-200-2011
VARIANTS = ("no-attention", "no-alpha", "alpha", "multiply", "plus")  # Table 2's order
TABLE3_VARIANTS = ("alpha", "multiply", "plus")                        # Table 3's columns
LOSS_LABELS = {"ce": "L_CE", "ad": "L_AD"}
AUX = " (Aux)"   # ends the label of a Table 2 method trained with boxes or part annotations (its "Aux" column)

# ---------------------------------------------------------------- the printed numbers: table -> row -> column
# A column is a dataset of Table 2 (Birds "cub", Cars "cars", Dogs "dogs"); a "-" in the paper is absent.
PRINTED = {
    "table2": {
        # The other methods, in the paper's order: "method [reference]", plus AUX where the paper's Aux column
        # says "Yes" (which also tells apart FCAN's two rows). "EfficientNet-BO" is spelled as printed
        # (presumably EfficientNet-B0).
        "B-CNN [8]": {"cub": 84.1},
        "SPDA-CNN [29] (Aux)": {"cub": 85.1},
        "FCAN [9]": {"cub": 84.3, "cars": 91.3, "dogs": 84.5},
        "DB [30]": {"dogs": 87.7},
        "FCAN [9] (Aux)": {"cars": 89.1},
        "PDFR [10]": {"cub": 82.6, "dogs": 71.9},
        "RA-CNN [11]": {"cub": 85.3, "cars": 92.5, "dogs": 87.3},
        "DVAN [6]": {"cub": 79.0, "cars": 87.1, "dogs": 81.5},
        "PC-DenseNet-161 [31]": {"dogs": 83.6},
        "LTPA [32] (Aux)": {"cub": 73.1},
        "WS-DAN [33]": {"dogs": 90.0},
        "DFL-CNN [34]": {"cub": 86.5, "cars": 93.8},
        "WLHR [7]": {"cub": 83.7},
        "HDWE [35] (Aux)": {"cub": 84.3, "dogs": 76.9},
        "ACBNT [12]": {"cub": 87.6},
        "EfficientNet-BO [36]": {"dogs": 61.2},
        "HPB [13]": {"cub": 87.1, "cars": 93.7},
        "SEF [37]": {"dogs": 88.8},
        "WSCP [38] (Aux)": {"cub": 86.2},
        "NPA [39] (Aux)": {"cars": 92.8},
        "PC [14]": {"cars": 83.6, "dogs": 61.9},
        "HIHCA [40]": {"cub": 85.3, "cars": 91.7},
        "DCL-VGG [41]": {"cub": 86.9, "cars": 94.1},
        "Bilinear CNN [42]": {"cub": 84.1, "cars": 91.3},
        "OPAM [43]": {"cub": 85.8, "cars": 92.2},
        "API-Net [44]": {"dogs": 90.3},
        # SSANet's rows ("Our SSANet_{row}"), labelled as our cells of the printed head are
        "no-attention": {"cub": 75.0, "cars": 82.9, "dogs": 77.9},
        "no-alpha": {"cub": 82.3, "cars": 91.5, "dogs": 87.0},
        "alpha": {"cub": 82.7, "cars": 92.0, "dogs": 88.1},
        "multiply": {"cub": 86.5, "cars": 93.0, "dogs": 90.4},
        "plus": {"cub": 88.4, "cars": 94.2, "dogs": 92.2},
    },
    "table3": {   # CUB-Birds only; a row is "<row>/<loss>" as our cells are; the L_AD row is Table 2's CUB column
        "alpha/L_CE": {"cub": 81.4}, "multiply/L_CE": {"cub": 85.6}, "plus/L_CE": {"cub": 87.1},
        "alpha/L_AD": {"cub": 82.7}, "multiply/L_AD": {"cub": 86.5}, "plus/L_AD": {"cub": 88.4},
    },
}
# The paper column printed beside each dataset: the synthetic birds get CUB-Birds' numbers (the paper's bird set,
# and the only column of Table 3), marked not comparable.
PAPER_COLUMN = {"cub": "cub", "cars": "cars", "dogs": "dogs", "synthetic": "cub"}

# ---------------------------------------------------------------- the study of notebook 05
BACKBONES = ("vgg16", "vgg19", "resnet34", "resnet50", "resnet101", "densenet161")
HEADS = ("ssa", "fe")                       # the SSA output layer and the FE output layer (sec. 3.4)
HEAD_LABELS = {"ssa": "SSA head", "fe": "FE head"}
AMBIGUOUS_ROWS = ("no-alpha", "alpha")      # rows whose aggregation the paper does not state
LOCALIZATION_PER_CLASS = 8                  # test images per class whose Grad-CAM maps are scored

# Whether the feature extractor is frozen when the notebook's freeze_backbone is None. The paper keeps
# its ImageNet weights fixed (sec. 4.1). The cpu/smoke profiles start from the embedded synthetic
# pretraining of a slim VGG-16; see the notebook's Deviations for the measurement behind their value.
FREEZE_DEFAULT: Dict[str, bool] = {"paper": True, "cpu": True, "smoke": True}
# Learning rate when the notebook's lr is 0. The paper: 1e-3 (sec. 4.1).
LR_DEFAULT: Dict[str, float] = {"paper": 1e-3, "cpu": 1e-3, "smoke": 1e-3}


# --------------------------------------------------------------------------- parameters


def _variant(value) -> Tuple[str, ...]:
    """``"all"`` or a comma-separated subset of Table 2's rows, returned in Table 2's order."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be 'all' or a comma-separated list of {', '.join(VARIANTS)}; got {value!r}")
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["all"]:
        return VARIANTS
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(map(repr, unknown))}; valid: 'all' or any of "
                         f"{', '.join(VARIANTS)} (comma-separated)")
    return tuple(v for v in VARIANTS if v in names)


def _aggregation(value) -> Optional[str]:
    """``""`` (or None) keeps each row's preset; else one of the SSA block's aggregations (Eqs. 1-2)."""
    from ..models.ssa_module import AGGREGATIONS

    if value in ("", None):
        return None
    if value not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {value!r}; valid: '' (each row's preset) or {', '.join(AGGREGATIONS)}")
    return value


def _loss(value) -> str:
    from ..models.ssanet import LOSSES

    if value not in LOSSES:
        raise ValueError(f"unknown loss {value!r}; valid: 'ad' (self-attention distillation, Eq. 5) or 'ce' "
                         f"(cross-entropy on both heads, Table 3)")
    return value


def _gamma_ce_head(value) -> str:
    """The head Eq. 4's gamma-weighted cross-entropy supervises: ``"ssa"`` as printed, ``"fe"`` the
    other reading."""
    from ..models.ssanet import GAMMA_CE_HEADS

    if value not in GAMMA_CE_HEADS:
        raise ValueError(f"unknown gamma_ce_head {value!r}; valid: 'ssa' (Eq. 4 as printed: gamma * CE(y, y_SSA)) "
                         f"or 'fe' (the other reading: gamma * CE(y, y_FE), a label loss on the FE head)")
    return value


PARAMETERS = (
    Parameter("variant", "all", "all, or a comma-separated subset of no-attention, no-alpha, alpha, multiply, plus",
              _variant),
    Parameter("aggregation", "", "'': each row keeps its preset; plus | multiply | none for the no-alpha and "
                                 "alpha rows", _aggregation),
    Parameter("loss", "ad", "loss of the Table 2 attention rows: ad (Eq. 5) | ce", _loss),
    Parameter("gamma_ce_head", "ssa", "head of Eq. 4's gamma-weighted cross-entropy in every L_AD run: ssa (as "
                                      "printed) | fe (the other reading)", _gamma_ce_head),
    Parameter("freeze_backbone", None, "None: the profile's (frozen, sec. 4.1); True | False", optional_flag),
    Parameter("lr", 0.0, "0: the profile's learning rate (the recipe's 1e-3, sec. 4.1)", non_negative_number),
    recipes.selection_parameter("the full SSANet's and the no-attention row's (the other rows share SSANet's)"),
)


def resolve_freeze(freeze_backbone: Optional[bool], profile) -> bool:
    """The extractor's freezing in ``profile``: the explicit choice, or the profile's default.

    A frozen extractor without pretrained weights is random features that never change; that is
    refused (it is not the paper's method, and it learns next to nothing)."""
    if freeze_backbone is None:
        return FREEZE_DEFAULT.get(profile.name, profile.pretrained is not None) and profile.pretrained is not None
    if freeze_backbone and profile.pretrained is None:
        raise ValueError(f"profile {profile.name!r} has no pretrained extractor; freezing random weights "
                         f"leaves only the heads to learn from fixed random features. Pass "
                         f"freeze_backbone=False (or None) with this profile.")
    return bool(freeze_backbone)


def resolve_lr(lr: float, profile) -> float:
    """``lr``, or the profile's learning rate when it is 0."""
    from ..models.ssanet import SSANetConfig

    return float(lr) if lr > 0 else LR_DEFAULT.get(profile.name, SSANetConfig().lr)


def finalize(settings) -> None:
    """Resolve ``freeze_backbone`` and ``lr`` for the profile (refuse a frozen random extractor)."""
    try:
        freeze = resolve_freeze(settings.options["freeze_backbone"], settings.profile)
    except ValueError as err:
        raise ValueError(f"parameter freeze_backbone: {err}") from None
    settings.options.update(freeze_backbone=freeze, lr=resolve_lr(settings.options["lr"], settings.profile))


# --------------------------------------------------------------------------- the plan of runs


def variant_name(row: str, loss: str) -> str:
    """The variant of Table 2 row ``row`` trained with ``loss`` (no-attention has one, named after it)."""
    return row if row == "no-attention" else f"{row}-{loss}"


def table2_variants(settings) -> Dict[str, str]:
    """Table 2 row -> the variant it reads (trained with the notebook's ``loss``)."""
    return {row: variant_name(row, settings.loss) for row in settings.variant}


def table3_rows(settings) -> Tuple[str, ...]:
    """The rows of Table 3 (alpha, multiply, plus) that the notebook trains."""
    return tuple(row for row in TABLE3_VARIANTS if row in settings.variant)


def table3_variants(settings) -> Dict[Tuple[str, str], str]:
    """(row, loss) -> the variant of that Table 3 cell."""
    return {(row, loss): variant_name(row, loss) for row in table3_rows(settings) for loss in ("ce", "ad")}


def configs(settings) -> Dict[str, object]:
    """Every variant's :class:`~fgvc_lib.models.ssanet.SSANetConfig`, Table 2's first, no repeats."""
    from ..models.ssanet import SSANetConfig

    out: Dict[str, object] = {}
    pairs = [(row, settings.loss) for row in table2_variants(settings)] + list(table3_variants(settings))
    for row, loss in pairs:
        name = variant_name(row, loss)
        if name in out:
            continue
        changes = dict(variant=row, loss="ce" if row == "no-attention" else loss,
                       freeze_backbone=settings.freeze_backbone, backbone=settings.backbone, lr=settings.lr)
        if row in AMBIGUOUS_ROWS and settings.aggregation is not None:
            changes["aggregation"] = settings.aggregation
        if changes["loss"] == "ad":  # only L_AD has Eq. 4; the L_CE runs stay the same runs
            changes["gamma_ce_head"] = settings.gamma_ce_head
        out[name] = SSANetConfig().replace(**changes)
    return out


def _details(config) -> Tuple[Tuple[str, object], ...]:
    """What a variant is, in the paper's terms (the plan table's columns)."""
    alpha = {None: "-", True: "learnable (init 0)", False: "fixed 1"}[config.resolved_learnable_alpha]
    loss = LOSS_LABELS[config.loss] if config.attention else "CE on FE head"
    if config.attention and config.loss == "ad" and config.gamma_ce_head == "fe":
        loss += ", gamma CE on FE head"
    return (("SSA block", "yes" if config.attention else "no"),
            ("aggregation", config.resolved_aggregation or "-"), ("alpha", alpha), ("loss", loss),
            ("frozen FE", config.freeze_backbone))


def plan(settings) -> List[Variant]:
    """One variant per entry of :func:`configs`: SSANet with that configuration, its loss (Eq. 5, Table
    3's cross-entropy, or cross-entropy on the FE head), sec. 4.1's recipe for the run's epochs."""
    from ..engine import TrainConfig
    from ..models.ssanet import build_ssanet, ssanet_loss

    variants = [Variant(name, functools.partial(build_ssanet, config=config), ssanet_loss(config),
                        TrainConfig(epochs=settings.epochs, **config.train_config_kwargs()), tuple(settings.seeds),
                        _details(config))
                for name, config in configs(settings).items()]
    # the full SSANet and the no-attention row choose their rates on validation; the other rows share SSANet's
    full = variant_name("plus", settings.loss)
    return recipes.protocol(settings, variants, tuned=("no-attention", full), lead=full)


# --------------------------------------------------------------------------- printed cells


def row_heads(row: str) -> Tuple[str, ...]:
    """The heads a Table 2 row has: SSA and FE, or FE alone for no-attention."""
    return ("fe",) if row == "no-attention" else HEADS


def reported_head(row: str) -> str:
    """The head whose accuracy the paper prints: the SSA output (y_SSA, Eq. 3); FE when there is none."""
    return "fe" if row == "no-attention" else "ssa"


def head_row(label: str, row: str, head: str) -> str:
    """A table row for ``head`` of ``row``: ``label`` for the printed head, ``label [FE head]`` else."""
    return label if head == reported_head(row) else f"{label} [{HEAD_LABELS[head]}]"


def table3_row(row: str, loss: str) -> str:
    """The label of Table 3's cell of ``row`` trained with ``loss`` ("plus/L_CE")."""
    return f"{row}/{LOSS_LABELS[loss]}"


def cells(settings) -> List[Cell]:
    """Table 2 (rows x heads) and Table 3 (rows x losses x heads), per dataset; the printed head of each row
    stands beside its printed cell (the runner reads it in the dataset's column)."""
    out: List[Cell] = []
    for data in settings.datasets:
        for row, name in table2_variants(settings).items():
            for head in row_heads(row):
                printed = Printed("table2", row) if head == reported_head(row) else None
                out.append(Cell("table2", head_row(row, row, head), Accuracy(name, (head,)), dataset=data.name,
                                printed=printed))
        for (row, loss), name in table3_variants(settings).items():
            for head in HEADS:
                printed = Printed("table3", table3_row(row, loss)) if head == "ssa" else None
                out.append(Cell("table3", head_row(table3_row(row, loss), row, head), Accuracy(name, (head,)),
                                dataset=data.name, printed=printed))
    return out


def skipped_tables(settings) -> Dict[str, str]:
    """Table 3 is not rebuilt when ``variant`` trains none of its rows."""
    if table3_rows(settings):
        return {}
    return {"table3": "it needs at least one of the rows alpha, multiply, plus; add them to variant"}


def localization_models(settings) -> Dict[str, Tuple[str, str]]:
    """``{label: (variant, head)}`` of every Table 2 row and head whose Grad-CAM is scored."""
    return {head_row(row, row, head): (name, head)
            for row, name in table2_variants(settings).items() for head in row_heads(row)}


# --------------------------------------------------------------------------- claims

# Sec. 4.5's comparisons of Table 2's rows on every dataset, on the printed heads: (text, row A, row B, kind);
# "greater": B beats A, "similar": no difference. The paper's wording, by section:
TABLE2_CLAIMS = (
    # 4.5: adding the SSA module (its simplest form, no-alpha) beats the feature extractor with its classifier alone
    ("SSA beats no attention (no-alpha vs no-attention)", "no-attention", "no-alpha", "greater"),
    # 4.5: a learnable alpha "achieves slightly higher accuracy" than no-alpha on all three datasets ...
    ("alpha beats no-alpha", "no-alpha", "alpha", "greater"),
    # ... and "does not significantly affect the network" (the SSA module can rely on the local spatial attended
    # pixels): a claim of no difference between the same two rows; the paper's own Dogs gap is above one point
    ("alpha does not change accuracy (alpha vs no-alpha, no difference)", "no-alpha", "alpha", "similar"),
    # 4.1-4.5: the fully fleshed multiply model beats the alpha model (a step of Table 2's order)
    ("multiply beats alpha", "alpha", "multiply", "greater"),
    # 4.5: aggregating attention and primary features by addition (Eq. 1, plus) beats element-wise
    # multiplication (Eq. 2, multiply)
    ("plus beats multiply", "multiply", "plus", "greater"),
    # 4.2-4.5: Table 2's rows improve in order, no-attention < no-alpha < alpha < multiply < plus (the steps
    # above); the whole order's effect: plus against no-attention
    ("full SSANet beats no attention (plus vs no-attention)", "no-attention", "plus", "greater"),
)
# The notebook's main comparison (the method against its baseline): its interval should be the narrowest.
MAIN_ROWS = ("no-attention", "plus")


# Sec. 3.3 says Self-AD transfers knowledge from the SSA output layer to the FE output layer; sec. 4.5
# (under Table 3) and sec. 5 say that transfer helps. The FE head is where that knowledge lands, yet
# Table 3 prints one number per cell, equal to Table 2's SSA-head number (L_AD row = Table 2's CUB
# column): no FE-head accuracy is printed, so the claim has a direction and no paper effect.
FE_HEAD_CLAIM = "self-attention distillation helps the FE head (L_AD vs L_CE, FE head{rows})"


# Claims of the paper's text that no configuration of this notebook measures, with the reason:
# (section, claim, why not).
NOT_MEASURED: Tuple[Tuple[str, str, str], ...] = (
    ("Abstract, 1, 4.2-4.4, Table 2",
     "SSANet achieves competitive performance, better than the attention methods trained with boxes on "
     "CUB-Birds, the best of the methods without boxes on Stanford Cars, above WS-DAN and API-Net on Stanford "
     "Dogs; multiply and plus give results superior to the other methods",
     "the other methods' numbers are published results, none is reproduced (Table 2 prints them beside ours, "
     "paper only). In the paper's own Table 2 multiply is below ACBNT, HPB and DCL-VGG on CUB-Birds, and "
     "no-attention, called the lowest of all methods, is above LTPA on CUB-Birds"),
    ("Contribution 1, 4.3", "SSANet is efficient and less complex to implement than methods with localization "
                            "sub-networks",
     "the paper names no reference or threshold, and the other methods are not built; the complexity table "
     "above prints each row's parameters and multiply-adds"),
    ("Abstract", "the SSA module improves the intra-class representation and Self-AD the inter-class "
                 "representation",
     "no measure of intra- or inter-class representation is computed; only the accuracy claims test the modules"),
    ("3.2", "alpha, starting at 0, lets the network first rely on the local neighbourhood and then steadily "
            "give more weight to the attended regions",
     "alpha is not logged during training; the alpha table prints its value at the end of each run"),
    ("3.3", "other loss ratios may give more advancement", "a conjecture: gamma is not swept (the paper's 0.5)"),
    ("4.2-4.4, 4.5 (visualization)", "SSANet looks at the birds' heads, beaks and wings, the dogs' heads and "
                                     "the cars' bonnets",
     "named anatomical parts are not scored: the real datasets' part annotations are not loaded, and the "
     "synthetic set marks the part that tells a class apart instead (the localization claims)"),
    ("4.4", "the accuracy on Stanford Dogs is achieved through accurate spatial self-attention localization",
     "a causal claim: it would need an intervention on the attention, which no run makes"),
    ("Fig. 1a, 4.5", "SSANet localizes the discriminative parts of a bird at different angles",
     "the localization scores are not split by pose"),
    ("Fig. 1b, 4.5", "SSANet recognizes several dogs in one picture", "every synthetic image holds one bird"),
    ("Fig. 1c", "SSANet recognizes a dog accurately on a challenging background",
     "no image is labelled by the difficulty of its background"),
    ("Fig. 5", "SSANet's attention localization compares well with DVAN's, LTPA's and [45]'s",
     "their maps are figures copied from their papers; none of those methods is built"),
    ("Abstract, 1, 4.1", "SSANet trains end to end in one training step, with image labels only",
     "a property of the recipe, which our implementation follows by construction (one stage, no boxes); "
     "nothing to measure"),
)
# Sec. 5's claim that the modules plug into other backbones: measured only when the notebook runs on one.
OTHER_BACKBONES = ("Conclusion", "the SSANet modules can be applied to Inception, ResNet and DenseNet",
                   "this run uses VGG-16; with backbone set to a ResNet or DenseNet every claim above is measured "
                   "on it")


def paper_setting(settings, dataset: str) -> str:
    """The paper's setting behind a printed effect when it is not this run's: ``"<dataset>, VGG-16"`` when
    ``dataset`` is read against another dataset's column (the synthetic set against CUB-Birds) or the run's
    backbone is not the paper's VGG-16; "" otherwise."""
    column = STUDY.column(dataset)
    if column is None or (column == dataset and settings.backbone == BACKBONE):
        return ""
    return f"{DATASET_LABELS[column]}, VGG-16"


def _printed(settings, row: str) -> Accuracy:
    """The printed head of Table 2 row ``row``."""
    return Accuracy(table2_variants(settings)[row], (reported_head(row),))


def claims(settings) -> Tuple[List[Claim], List[str]]:
    """Sec. 4.5's claims on every dataset (the paper's effect from the printed cells, in the dataset's column;
    none for a dataset the paper did not use, then only the direction counts), then the Fig. 4 claims on the
    synthetic ground truth; and the claims not measured, with the reason."""
    out: List[Claim] = []
    skipped: List[str] = []
    rows = table2_variants(settings)
    for data in settings.datasets:
        dataset, setting = data.name, paper_setting(settings, data.name)
        for text, a, b, kind in TABLE2_CLAIMS:
            label = f"{text} [{dataset}]"
            if a not in rows or b not in rows:
                skipped.append(f"{label}: rows {a} and {b} were not both trained")
                continue
            out.append(Claim(label, ((_printed(settings, a), _printed(settings, b)),), kind=kind, dataset=dataset,
                             main=(a, b) == MAIN_ROWS, paper_setting=setting,
                             printed=((Printed("table2", a), Printed("table2", b)),)))
        for row in TABLE3_VARIANTS:   # 4.5, Table 3: L_AD (Eq. 5) beats plain cross-entropy on both heads (L_CE)
            label = f"self-attention distillation beats plain CE ({row}) [{dataset}]"
            if row not in table3_rows(settings):
                skipped.append(f"{label}: row {row} was not trained")
                continue
            ce, ad = (Printed("table3", table3_row(row, loss)) for loss in ("ce", "ad"))
            out.append(Claim(label, ((Accuracy(variant_name(row, "ce"), ("ssa",)),
                                      Accuracy(variant_name(row, "ad"), ("ssa",))),), dataset=dataset,
                             paper_setting=setting, printed=((ce, ad),)))
        fe_claim = fe_head_claim(settings, dataset)
        if isinstance(fe_claim, str):
            skipped.append(fe_claim)
        else:
            out.append(fe_claim)
    maps, not_measured = localization_claims(settings)
    text_only = [f"{section}: {claim} - {why}" for section, claim, why in NOT_MEASURED]
    if settings.backbone == BACKBONE:
        text_only.append("{}: {} - {}".format(*OTHER_BACKBONES))
    return out + maps, skipped + not_measured + text_only


def fe_head_claim(settings, dataset: str):
    """Self-AD helps the FE head: per seed, the FE head of every trained Table 3 row trained with L_AD
    against its L_CE twin (same row, same seed), averaged over the rows. No paper effect (see
    :data:`FE_HEAD_CLAIM`); returns the reason instead when no Table 3 row is trained."""
    rows = table3_rows(settings)
    if not rows:
        return (f"{FE_HEAD_CLAIM.format(rows='')} [{dataset}]: none of the rows alpha, multiply, plus was trained")
    pairs = tuple((Accuracy(variant_name(row, "ce"), ("fe",)), Accuracy(variant_name(row, "ad"), ("fe",)))
                  for row in rows)
    text = FE_HEAD_CLAIM.format(rows=", mean over " + ", ".join(rows) if len(rows) > 1 else f", {rows[0]}")
    return Claim(f"{text} [{dataset}]", pairs, direction=1, dataset=dataset)


def localization_claims(settings) -> Tuple[List[Claim], List[str]]:
    """Claims of sec. 4.2-4.5 / Fig. 4 that the synthetic ground truth can test, on the scores
    ``study.localization(localization_models(settings), ...)`` records (points of the pointing rate;
    direction only: the paper shows maps, no numbers): the full model's Grad-CAM peak falls on the
    discriminative part more often than chance, and more often than the model without attention."""
    out: List[Claim] = []
    skipped: List[str] = []
    rows = table2_variants(settings)
    plus, base = head_row("plus", "plus", "ssa"), head_row("no-attention", "no-attention", "fe")
    for data in settings.datasets:
        dataset = data.name
        texts = [f"plus attends to the discriminative part: pointing above chance [{dataset}]",
                 f"plus localizes the discriminative part better than no-attention (pointing) [{dataset}]"]
        if "plus" not in rows:
            skipped += [f"{text}: row plus was not trained" for text in texts]
            continue
        if dataset != "synthetic":
            skipped += [f"{text}: {dataset} has no boxes of the discriminative parts (only the synthetic set "
                        f"records them)" for text in texts]
            continue
        out.append(Claim(texts[0], ((Score(f"{plus}: part_chance"), Score(f"{plus}: part_pointing")),),
                              dataset=dataset))
        if "no-attention" in rows:
            out.append(Claim(texts[1], ((Score(f"{base}: part_pointing"), Score(f"{plus}: part_pointing")),),
                                  dataset=dataset))
        else:
            skipped.append(f"{texts[1]}: row no-attention was not trained")
    return out, skipped


def _recipe(field: str) -> int:
    """The paper profile's epochs or batch size (not stated in the paper: SSANetConfig's choices)."""
    from ..models.ssanet import SSANetConfig

    return getattr(SSANetConfig(), field)


def attention_sites(settings, backbone) -> Dict[str, int]:
    """Where SSANet attends: the SSA block weighs the cells of ``F`` (sec. 3.2), pool5 of VGG-16 (sec. 4.1;
    the deepest stage of another backbone), whose cells are ``stride`` input pixels apart."""
    return {"F (pool5), read by the SSA block": max(backbone.stage_strides.values())}


# The cpu profile's map F for SSANet: the SSA block weighs pool5's cells, and at the profile's 96 px VGG-16's
# published stride 32 leaves a 3 x 3 pool5 with a discriminative part a sixth of a cell. The VGG runs at output
# stride 8 instead (fgvc_lib.backbones.set_output_stride): pool5 is 12 x 12, near the paper's 14 x 14 at 448 px,
# and at the input size, stride and pretraining of every other cpu notebook and of notebook 00's spatial-attention
# oracle, so their results name one testbed (that oracle fine-tunes its whole network, where SSANet's extractor
# stays frozen: notebook 05's Deviations say what this leaves open). (Until 2026-12-05 the cpu profile fed SSANet
# 256-px images at stride 32, an 8 x 8 map, which needed a pretraining of its own at 256 px.)
OUTPUT_STRIDES = {"cpu": 8}

STUDY = Paper(key="ssanet", notebook="05_ssanet", title=PAPER["title"], backbones=BACKBONES, plan=plan, cells=cells,
              claims=claims, skipped=skipped_tables, parameters=PARAMETERS, recipe_epochs=_recipe("epochs"),
              recipe_batch_size=_recipe("batch_size"), finalize=finalize, printed=PRINTED, paper_column=PAPER_COLUMN,
              max_datasets=3, attention_sites=attention_sites, output_strides=OUTPUT_STRIDES)


# --------------------------------------------------------------------------- notebook views


def heads_view(df, decimals: int = 2):
    """A Table 2 / Table 3 results table read side by side: per row, the paper's number, then ours
    (``mean ± std`` over seeds) for the SSA and the FE head, the seeds and whether it is comparable."""
    import pandas as pd

    from ..reporting import RESULT_COLUMNS, check_columns, is_synthetic

    check_columns(df, RESULT_COLUMNS)
    suffixes = {f" [{label}]": head for head, label in HEAD_LABELS.items()}
    lines: Dict[Tuple[str, str], Dict[str, object]] = {}
    for record in df.to_dict("records"):
        label, head = record["row"], None
        for suffix, name in suffixes.items():
            if label.endswith(suffix):
                label, head = label[: -len(suffix)], name
        head = head or reported_head(label.split("/", 1)[0])
        line = lines.setdefault((record["dataset"], label), {"dataset": record["dataset"], "row": label,
                                                             "paper": float("nan")})
        if pd.notna(record["paper"]):
            line["paper"] = float(record["paper"])
        std = "" if pd.isna(record["std"]) else f" ± {record['std']:.{decimals}f}"
        line[f"ours, {HEAD_LABELS[head]}"] = f"{record['reproduced']:.{decimals}f}{std}"
        line["n_seeds"] = int(record["n_seeds"])
        line["comparable"] = not is_synthetic(record["dataset"], record["profile"])
    heads = [f"ours, {HEAD_LABELS[h]}" for h in HEADS]
    shown = list(lines.values())
    columns = ["dataset", "row", "paper"] + [h for h in heads if any(h in line for line in shown)] + \
        ["n_seeds", "comparable"]
    out = pd.DataFrame(shown, columns=columns)
    ours = [c for c in columns if c.startswith("ours")]
    out[ours] = out[ours].fillna("")
    return out.set_index(["dataset", "row"])


def other_methods(column: str):
    """The other methods of Table 2 with a number in ``column`` (a pandas Series, row -> top-1 %, in the paper's
    order): the printed table less SSANet's own rows, shown below ours, paper only."""
    return STUDY.printed_table("table2")[column].drop(list(VARIANTS)).dropna()


def table2_view(df, decimals: int = 2):
    """Table 2 as the paper prints it: our rows (:func:`heads_view`), then, paper only, the other methods
    of Table 2 (:func:`other_methods`) that have a number in each dataset's paper column; ``aux`` is the
    paper's "Aux" column (trained with boxes or part annotations, :data:`AUX`; SSANet is not)."""
    import pandas as pd

    ours = heads_view(df, decimals=decimals)
    ours.insert(0, "aux", "no")
    ours = ours.astype({c: object for c in ours.columns if c != "paper"})  # keep the seed counts whole
    blocks = []
    for dataset in dict.fromkeys(ours.index.get_level_values("dataset")):
        blocks.append(ours.loc[[dataset]])
        column = STUDY.column(dataset)
        others = [{"dataset": dataset, "row": row, "aux": "yes" if row.endswith(AUX) else "no", "paper": value}
                  for row, value in (other_methods(column).items() if column else ())]
        if others:
            blocks.append(pd.DataFrame(others).set_index(["dataset", "row"]))
    out = pd.concat(blocks)[list(ours.columns)]
    text = [c for c in out.columns if c != "paper"]
    out[text] = out[text].where(out[text].notna(), "")  # paper-only rows: our columns empty
    return out


def alpha_table(study):
    """The learned alpha (sec. 3.2, starts at 0) of every variant with a learnable alpha, over seeds,
    in the results format (metric ``alpha``, no paper number: the paper does not report it)."""
    from ..reporting import result_rows

    entries = []
    for dataset in study.datasets:
        for name, config in configs(study.settings).items():
            if config.resolved_learnable_alpha:
                entries.append({"row": name, "dataset": dataset, "values": [
                    float(run.model.ssa.alpha.detach()) for run in study.runs_of(name, dataset)]})
    return result_rows(entries, table="alpha", metric="alpha", backbone=study.settings.backbone,
                       profile=study.profile.name)


def complexity_table(study):
    """Parameters (all and trainable) and multiply-adds of one forward pass of each Table 2 row at the
    study's width and image size, with the size of the feature map ``F`` the SSA block reads."""
    import pandas as pd

    from ..complexity import count_parameters, model_complexity

    size = study.settings.image_size
    rows = []
    for row, name in table2_variants(study.settings).items():
        model = study.untrained_model(name)
        stats = model_complexity(model, size)
        stage = model.feature_stage
        rows.append({"row": row, "params": stats["params"],
                     "trainable params": count_parameters(model, trainable_only=True), "MACs": stats["macs"],
                     "feature map F": f"{model.backbone.stage_channels[stage]} x "
                                      f"{size // model.backbone.stage_strides[stage]}^2"})
    return pd.DataFrame(rows).set_index("row")
