"""CRA-SMRA's printed numbers and the claims they make (Wang, Sun, Liu et al., Neural Processing Letters 57:43, 2025).

Our copy of the paper (../shared/papers/02_cra_smra.txt) lost every table and equation in extraction.
What survives is in its prose, and only that is declared, once, in :data:`PRINTED` (table -> row -> dataset
column -> points; ResNet-50 throughout):

* Table 3 (section 4.3): the gain of adding CRAM to the backbone and of adding SMRAM to backbone + CRAM,
  per dataset (CUB-200-2011, FGVC-Aircraft, Stanford Cars, Stanford Dogs). The absolute accuracies and the
  CBAM row's numbers are lost: the CBAM claim ("CRAM beats CBAM") has a direction only.
* Table 2 (section 4.2): CRA-SMRA's margin over other methods as the text states it ("we outperform ...
  by 4.1 %, 1.9 %, ..."); the methods' own accuracies are lost. Shown as paper-only rows (the gap, not an
  accuracy).
* Tables 4 and 5 (section 4.3): only the best values survive, delta = 0.9 and gamma = 1 (hyper-parameters,
  :data:`BEST_DELTA` and :data:`BEST_GAMMA`); the swept values and their accuracies are lost.

Every effect below is read from these numbers, never typed twice. The cpu and smoke profiles run a VGG-16 on
the synthetic set: the claims still carry the paper's ResNet-50 gains of the dataset's column (the synthetic
set reads CUB-200-2011's), labelled with that setting (``Claim.paper_setting``), as a reference, not a
prediction. The model is :mod:`fgvc_lib.models.cra_smra`; notebook 02 declares its study below
(:data:`STUDY`): Table 3's four rows on every seed (the main comparison is its first row against its last),
and the delta (Table 4) and gamma (Table 5) sweeps of the full model on the ablation tier's seeds
(fgvc_lib.study.paper.SEED_TIERS). Every arm shares one recipe.
"""
from __future__ import annotations

import functools
import math

from ..data import DATASET_LABELS
from ..study import Accuracy, Cell, Claim, Fixed, Paper, Parameter, Printed, Score, Variant, recipes
from ..study.paper import tier_seeds
from ..study.parameters import choice, non_negative_number

PAPER = {
    "key": "cra_smra",
    "title": "Rethinking Attention Mechanism: Channel Re-attention and Spatial Multi-region Attention for "
             "Fine-grained Visual Classification",
    "authors": "X. Wang, Y. Sun, X. Liu et al.",
    "venue": "Neural Processing Letters 57:43 (2025)",
}
BACKBONES = ("resnet50", "resnet101", "densenet161")   # the paper's (section 4.1)
BACKBONE_LABELS = {"resnet50": "ResNet-50", "resnet101": "ResNet-101", "densenet161": "DenseNet-161",
                   "vgg16": "VGG-16"}
DATASETS = ("cub", "aircraft", "cars", "dogs")
TABLE3_ROWS = ("backbone", "+ CBAM", "+ CRAM", "+ CRAM + SMRAM")    # in the paper's order

# The paper's numbers, points, every one from its prose (the tables are lost); a column is a dataset.
PRINTED = {
    # Table 3 (sec. 4.3): each row's gain over the row above it. "After adding this module, our accuracy on the four
    # datasets increase by over 1.3 %, 1.4 %, 0.9 %, and 1.4 %" (CRAM, over the backbone); "our final accuracy on
    # the four datasets was improved by 0.4 %, 0.4 %, 0.1 % and 0.2 %" (SMRAM, over + CRAM).
    "table3_gains": {
        "+ CRAM": {"cub": 1.3, "aircraft": 1.4, "cars": 0.9, "dogs": 1.4},
        "+ CRAM + SMRAM": {"cub": 0.4, "aircraft": 0.4, "cars": 0.1, "dogs": 0.2},
    },
    # Table 2 (sec. 4.2): CRA-SMRA minus the method ("we outperform X by g %"; negative: a method the text says is
    # above ours), in the text's order on CUB, then the methods it names on Aircraft only. RA-CNN's row uses VGG.
    "table2_gaps": {
        "DeepLAC (part annotations)": {"cub": 9.1},
        "Part-RCNN (part annotations)": {"cub": 7.8},
        "RA-CNN (VGG)": {"cub": 4.1},
        "NTS": {"cub": 1.9, "aircraft": 1.8},
        "PCA-Net": {"cub": 1.1, "aircraft": 0.8},
        "MGE-CNN": {"cub": 0.9},
        "S3N": {"cub": 0.9, "aircraft": 0.4},
        "FDL": {"cub": 0.8},
        "API-Net": {"cub": 1.6, "aircraft": 0.2, "cars": -0.1, "dogs": -0.1},
        "CIN": {"aircraft": 0.6},
        "ACNet": {"aircraft": 0.8},
    },
}
PAPER_COLUMN = {"cub": "cub", "aircraft": "aircraft", "cars": "cars", "dogs": "dogs", "synthetic": "cub"}

# Tables 4 and 5: only the best value of each sweep survives (section 4.3 and 4.4).
BEST_DELTA = 0.9     # delta, which channels CRAM suppresses
BEST_GAMMA = 1.0     # gamma, the weight of L_div
OMEGA = 0.5          # omega, how much a suppressed channel is scaled (section 4.1)
LOSS_WEIGHTS = (2.0, 1.0, 1.0)   # (alpha, beta, gamma) of the overall loss (section 4.1)
PAPER_BACKBONE = "resnet50"      # Table 3's backbone (section 4.3)

# ---------------------------------------------------------------- the study of notebook 02
# Table 3's rows as model variants: (attention, smram)
VARIANTS = {"backbone": ("none", False), "cbam": ("cbam", False), "cram": ("cram", False),
            "cram_smram": ("cram", True)}
VARIANT_LABELS = dict(zip(VARIANTS, TABLE3_ROWS))
# Our sweeps (the paper's values are lost): the best value, and values on either side of it.
DELTA_SWEEP = (0.5, 0.7, BEST_DELTA, 1.0)
GAMMA_SWEEP = (0.0, 0.5, BEST_GAMMA, 2.0)
SWEEP_TIER = "ablation"       # the seeds of the sweep models (fgvc_lib.study.paper.SEED_TIERS)
CPU_BACKBONE = "vgg16"        # the cpu and smoke profiles' backbone (notebook 01's reason: slim ResNets did not learn)
# The cpu profile's 96-px input leaves pool4 and pool5 at 6 x 6 and 3 x 3, too coarse for three stages to
# attend to different parts: the backbone runs at output stride 8 (fgvc_lib.backbones.set_output_stride), so
# every site's map is 12 x 12, near the 14 x 14 of the paper's last stage at 448 px.
OUTPUT_STRIDES = {"cpu": 8}
PAPER_EPOCHS, PAPER_BATCH = 200, 20                 # sec. 4.1
PAPER_LR, PAPER_CRAM_LR, PAPER_MOMENTUM, PAPER_WEIGHT_DECAY = 2e-4, 6e-3, 0.9, 1e-5   # sec. 4.1
LOCALIZATION_PER_CLASS = 20   # scored test images per class (Figure 4's claims)
DISTINCT_PARTS = "distinct parts"     # per-image score of the stage maps (fgvc_lib.papers.cra_smra_views)
MAP_OVERLAP = "stage maps overlap"
# Eq. 5 as we read it suppresses channel c when softmax(I)_c >= delta * max softmax(I), i.e. I_c >= I_max + ln(delta);
# I is a sigmoid in (0, 1), so every delta at or below 1/e suppresses every channel (fgvc_lib.models.cra_smra).
DEGENERATE_DELTA = math.exp(-1.0)
LOSS_PAIRINGS = ("concat", "stages")   # eq. 10 lost: alpha weighs CE(concat) (default) | each CE(stage_i)


def _fraction(name: str):
    def parse(value):
        value = non_negative_number(value)
        if not 0.0 < value <= 1.0:
            raise ValueError(f"must be in (0, 1] ({name}); got {value!r}")
        return value
    return parse


PARAMETERS = (
    Parameter("variant", "cram_smram", "Table 2's model: 'backbone' | 'cbam' | 'cram' | 'cram_smram' (CRA-SMRA)",
              choice(*VARIANTS)),
    Parameter("omega", OMEGA, "omega of eq. 5: how much a suppressed channel is scaled, in (0, 1]",
              _fraction("omega")),
    Parameter("delta", BEST_DELTA, "delta of eq. 5: channels with softmaxed importance >= delta x the largest are "
                                   "suppressed, in (0, 1]", _fraction("delta")),
    Parameter("gamma", BEST_GAMMA, "gamma of eq. 10: weight of L_div (>= 0)", non_negative_number),
    Parameter("lr", 0.0, "0: the profile's learning rate (paper: 2e-4 for the backbone and SMRAM, 6e-3 for CRAM)",
              non_negative_number),
    Parameter("loss_pairing", "concat", "eq. 10 (lost): 'concat': alpha * CE(concat) + beta * sum CE(stages) | "
                                        "'stages': alpha * sum CE(stages) + beta * CE(concat)", choice(*LOSS_PAIRINGS)),
    recipes.selection_parameter("CRA-SMRA's and its backbone's (Table 3's other rows and the sweeps share CRA-SMRA's)"),
)


def model_config(settings, variant: str, **changes):
    """The CRASMRAConfig of a Table 3 row (``changes``: a sweep's delta or gamma) under ``settings``."""
    from ..models.cra_smra import CRASMRAConfig

    attention, smram = VARIANTS[variant]
    lr, cram_lr = _rates(settings)
    values = dict(attention=attention, smram=smram, omega=settings.omega, delta=settings.delta, gamma=settings.gamma,
                  lr=lr, cram_lr=cram_lr)
    values.update(changes)
    return CRASMRAConfig(**values)


def _rates(settings):
    """(backbone and SMRAM, CRAM and heads) learning rates. Paper profile: sec. 4.1's 2e-4 and 6e-3. cpu and
    smoke: notebook 00's calibrated rate for every layer: a few epochs cannot hold 2e-4, and the paper's ratio
    on top of the calibrated rate (30 x 0.05 = 1.5) is far outside any rate we calibrated (not tried)."""
    from . import synthetic_dataset

    lr = recipes.default_rate(settings, PAPER_LR, synthetic_dataset.LR)
    if settings.profile.name == "paper":
        return lr, lr * PAPER_CRAM_LR / PAPER_LR
    return lr, lr


def recipe(settings, epochs: int):
    """One recipe for every arm (sec. 4.1: SGD, momentum 0.9, weight decay 1e-5, cosine decay); the
    learning rates of :func:`_rates`, CRAM's through the model's lr groups."""
    from ..engine import TrainConfig

    lr, _ = _rates(settings)
    return TrainConfig(epochs=epochs, lr=lr, momentum=PAPER_MOMENTUM, weight_decay=PAPER_WEIGHT_DECAY,
                       scheduler="cosine")


def _variant(settings, name: str, details, seed_tier: str = "main", **changes) -> Variant:
    from ..models.cra_smra import build_cra_smra, cra_smra_loss

    base = name.split("-", 1)[0]
    config = model_config(settings, base, **changes)
    # the default pairing builds the loss its runs were keyed with (the other one is a subclass, another key)
    return Variant(name, functools.partial(build_cra_smra, config=config),
                   cra_smra_loss(config, settings.loss_pairing), recipe(settings, settings.epochs),
                   tuple(settings.seeds), details=details, seed_tier=seed_tier)


def sweep_name(parameter: str, value: float) -> str:
    """The variant name of a sweep point other than the full model's own value: ``cram_smram-delta0.7``."""
    return f"cram_smram-{parameter}{value:g}"


def sweep_seeds(settings):
    return tier_seeds(settings, SWEEP_TIER)


def sweep_variant(settings, parameter: str, value: float) -> str:
    """The variant that holds ``parameter = value`` of a sweep: the full model at the run's own value,
    '+ CRAM' for gamma = 0 (without L_div SMRAM does not change the network: it only adds the loss), else
    the sweep's own variant."""
    if value == getattr(settings, parameter):
        return "cram_smram"
    if parameter == "gamma" and value == 0:
        return "cram"
    return sweep_name(parameter, value)


def plan(settings):
    variants = [_variant(settings, name, (("Table 3 row", VARIANT_LABELS[name]),
                                          ("attention", VARIANTS[name][0]), ("SMRAM", VARIANTS[name][1])))
                for name in VARIANTS]
    for parameter, values in (("delta", DELTA_SWEEP), ("gamma", GAMMA_SWEEP)):
        for value in values:
            name = sweep_variant(settings, parameter, value)
            if name.startswith("cram_smram-"):
                variants.append(_variant(settings, name,
                                         (("Table 3 row", f"+ CRAM + SMRAM, {parameter} = {value:g}"),
                                          ("attention", "cram"), ("SMRAM", True)),
                                         seed_tier=SWEEP_TIER, **{parameter: value}))
    # the method and its backbone choose their rates on validation; Table 3's other rows and the sweeps share
    # the method's (fgvc_lib.study.recipes)
    return recipes.protocol(settings, variants, tuned=("backbone", "cram_smram"), lead="cram_smram")


def cells(settings):
    label = BACKBONE_LABELS.get(settings.backbone, settings.backbone)
    out = [Cell("table2", f"CRA-SMRA ({label}; variant {settings.variant})", Accuracy(settings.variant))]
    out += [Cell("table3", f"{VARIANT_LABELS[name]} ({label})", Accuracy(name)) for name in VARIANTS]
    seeds = sweep_seeds(settings)
    for table, parameter, values in (("table4", "delta", DELTA_SWEEP), ("table5", "gamma", GAMMA_SWEEP)):
        for value in values:
            out.append(Cell(table, f"{parameter} = {value:g}", Accuracy(sweep_variant(settings, parameter, value)),
                            seeds=seeds))
    return out


def paper_setting(settings) -> str:
    """The label of the setting Table 3's gains were printed for ("CUB-200-2011, ResNet-50"), or "" when
    the run is that setting (or the paper prints no column for its dataset)."""
    column = STUDY.column(settings.dataset)
    if column is None:
        return ""
    ours = settings.dataset == column and settings.backbone == PAPER_BACKBONE
    return "" if ours else f"{DATASET_LABELS[column]}, {BACKBONE_LABELS[PAPER_BACKBONE]}"


def delta_note(value: float) -> str:
    """What delta = ``value`` suppresses under our reading of eq. 5 (the window is computed, not typed)."""
    from ..models.cra_smra import suppression_window

    if value <= DEGENERATE_DELTA:
        what = f"delta = {value:g} <= 1/e suppresses every channel (a uniform scale: degenerate)"
    elif value == 1.0:
        what = "delta = 1 suppresses the top channel and any tied with it"
    else:
        what = (f"delta = {value:g} suppresses every channel whose importance I lies within "
                f"{suppression_window(value):.2f} of the top one")
    return (f"{what}; delta = {BEST_DELTA:g}: within {suppression_window(BEST_DELTA):.2f}; every delta <= 1/e "
            f"({DEGENERATE_DELTA:.2f}) suppresses all channels; shares measured: suppression table")


OVERLAP_NOTE = ("effect = + CRAM + SMRAM's overlap minus + CRAM's (score points): negative supports the paper "
                "(less overlap), positive means more overlap")


def claims(settings):
    """The paper's claims as study claims, and those not measured here with the reason."""
    where = paper_setting(settings)
    # Table 3's gains are printed as gains (sec. 4.3's prose), not as two rows' accuracies: each claim names the
    # printed gain itself; the main gain, backbone -> + CRAM + SMRAM, is printed nowhere, not even in the prose:
    # the text states its two steps' gains, and it is their sum
    cram, smram = Printed("table3_gains", "+ CRAM"), Printed("table3_gains", "+ CRAM + SMRAM")
    measured = [
        Claim("Table 3: CRA-SMRA (+ CRAM + SMRAM) beats the backbone",
              ((Accuracy("backbone"), Accuracy("cram_smram")),), printed=(cram, smram), combine=sum, main=True,
              paper_setting=where),
        Claim("Table 3: CRAM beats the backbone", ((Accuracy("backbone"), Accuracy("cram")),), printed=(cram,),
              paper_setting=where),
        Claim("Table 3: CRAM beats CBAM in its place", ((Accuracy("cbam"), Accuracy("cram")),)),
        Claim("Table 3: SMRAM adds a further gain to CRAM", ((Accuracy("cram"), Accuracy("cram_smram")),),
              printed=(smram,), paper_setting=where),
    ]
    seeds = sweep_seeds(settings)
    for table, parameter, values, best in (("Table 4", "delta", DELTA_SWEEP, BEST_DELTA),
                                           ("Table 5", "gamma", GAMMA_SWEEP, BEST_GAMMA)):
        top = Accuracy(sweep_variant(settings, parameter, best))
        for value in values:
            if value == best or sweep_variant(settings, parameter, value) == "cram":
                continue   # gamma = 0 is '+ CRAM': the SMRAM claim compares it on every seed
            measured.append(Claim(f"{table}: {parameter} = {best:g} beats {parameter} = {value:g}",
                                  ((Accuracy(sweep_variant(settings, parameter, value)), top),), seeds=seeds,
                                  note=delta_note(value) if parameter == "delta" else ""))
    measured += [
        Claim("Figure 4: with SMRAM the three stages' maps peak on more distinct discriminative parts than with "
              "CRAM alone", ((Score(f"+ CRAM: {DISTINCT_PARTS}"), Score(f"+ CRAM + SMRAM: {DISTINCT_PARTS}")),)),
        Claim("Figure 4: with SMRAM the three stages' maps overlap less than with CRAM alone",
              ((Score(f"+ CRAM: {MAP_OVERLAP}"), Score(f"+ CRAM + SMRAM: {MAP_OVERLAP}")),), direction=-1,
              note=OVERLAP_NOTE),
        Claim("Figure 4: the backbone-only maps concern just the most salient parts: its three stages peak on fewer "
              "distinct discriminative parts than CRA-SMRA's",
              ((Score(f"backbone: {DISTINCT_PARTS}"), Score(f"+ CRAM + SMRAM: {DISTINCT_PARTS}")),),
              note="the synthetic parts have no salience ranking: 'just the most salient' is read as fewer distinct "
                   "parts; effect = CRA-SMRA's share minus the backbone's"),
    ]
    not_measured = [
        "Table 2: CRA-SMRA's absolute accuracies and the other methods' are not in the source text; the gaps the "
        "text states are printed, paper only",
        "Figure 4: 'after adding CRAM the extracted features become more comprehensive' - no measurable definition",
        "Figures 5-6: 'the best delta makes the features neither weak nor redundant' - drawn, not scored",
        "Section 4.3: 'the information-poor channels contain much favorable fine-grained knowledge' - the paper infers "
        "it from delta = 0.9 being best (Table 4, whose claims we measure), not from a separate measurement; an "
        "ablation of the unsuppressed channels would be ours, not the paper's, and every swept delta <= 1/e would "
        "suppress every channel (suppression table)",
        "Section 1: unifying the stages' channel dimensions 'significantly reduces computing resources' - the paper "
        "names no network without the unifying convolutions to count against (the counts of our arms are in the "
        "cost table)",
    ]
    if settings.loss_pairing != "concat":
        not_measured.append("Table 3's printed gains were trained with the paper's own eq. 10, lost: this run uses "
                            "our other reading (loss_pairing='stages')")
    return measured, not_measured


def cost_counts(models, image_size: int):
    """``{label: {"params", "macs"}}`` of ``{label: model}`` at ``image_size`` (one image, eval mode:
    SMRAM, training only, does not run; :func:`fgvc_lib.complexity.model_complexity`). The parameters of
    a CRA-SMRA model count its SMRAM too; :func:`cost_table` separates them."""
    from ..complexity import model_complexity

    return {label: model_complexity(model, image_size) for label, model in models.items()}


def cost_claims(reference: dict, deployed: dict, training_params: int):
    """Sections 1 and 5 ("two lightweight modules") from counted costs, "lightweight" read as an increase
    within the smallest effect of interest of a count (1 % of the reference's). Two claims: the deployed
    network (CRAM; SMRAM is removed at test), its effect the larger relative increase of parameters and
    multiply-adds over Table 3's backbone row; and training (CRAM and SMRAM), its effect the relative
    increase of parameters (SMRAM's training-time multiply-adds are not counted). In % of the backbone
    row's counts."""
    increases = [100.0 * (deployed[k] - reference[k]) / reference[k] for k in ("params", "macs")]
    largest = max(increases, key=abs)
    training = 100.0 * (training_params - reference["params"]) / reference["params"]
    note = ("a count, not a sample; 'lightweight' read as within 1 % of the backbone row; both networks hold the "
            "multi-stage heads and the unifying convolutions (CRAM's Conv_layer in Fig. 3, present in our backbone "
            "row): the cost table also shows the plain fine-tuned backbone")
    return [
        Claim("Sections 1, 5: CRAM is lightweight at test (effect: larger relative increase of parameters and "
              "multiply-adds of the deployed CRA-SMRA over the backbone row, % of the backbone row's)",
              ((Fixed("backbone row", 0.0), Fixed("+ CRAM + SMRAM (test)", largest)),), kind="similar", note=note),
        Claim("Sections 1, 5: CRAM and SMRAM are lightweight in training (effect: relative increase of parameters "
              "over the backbone row, % of the backbone row's)",
              ((Fixed("backbone row", 0.0), Fixed("+ CRAM + SMRAM (training)", training)),), kind="similar",
              note=note + "; SMRAM's multiply-adds not counted"),
    ]


def cost_table(study):
    """Parameters and multiply-adds at the run's input size, counted on freshly built networks (the counts
    do not depend on the weights): the plain fine-tuned backbone (GAP + linear), Table 3's backbone row,
    + CRAM, the deployed CRA-SMRA (SMRAM removed: its parameters left out) and CRA-SMRA in training
    (parameters only, SMRAM's included). Returns ``(table, claims)`` (:func:`cost_claims`)."""
    import pandas as pd

    from ..complexity import count_parameters
    from ..models.baseline import BaselineNet

    num_classes = study.data().num_classes
    full = study.untrained_model("cram_smram")
    reference = "backbone row (heads, unifying convolutions)"
    models = {"fine-tuned backbone (GAP + linear)": BaselineNet(study.backbone_spec.build(weights=False), num_classes),
              reference: study.untrained_model("backbone"), "+ CRAM": study.untrained_model("cram"),
              "+ CRAM + SMRAM (test)": full}
    counts = cost_counts(models, study.settings.image_size)
    smram_params = count_parameters(full.smram) if full.smram is not None else 0
    training_params = counts["+ CRAM + SMRAM (test)"]["params"]
    counts["+ CRAM + SMRAM (test)"] = {**counts["+ CRAM + SMRAM (test)"], "params": training_params - smram_params}
    table = pd.DataFrame(counts).T.astype(float)
    table.loc["+ CRAM + SMRAM (training; SMRAM's MACs not counted)", "params"] = float(training_params)
    table["params vs backbone row (%)"] = 100.0 * (table["params"] / table.loc[reference, "params"] - 1.0)
    table["MACs vs backbone row (%)"] = 100.0 * (table["macs"] / table.loc[reference, "macs"] - 1.0)
    return table, cost_claims(counts[reference], counts["+ CRAM + SMRAM (test)"], training_params)


def attention_sites(settings, backbone):
    """CRAM's three sites (sec. 3.3), each with its map's stride (read off the study's ``backbone``)."""
    from ..models.cra_smra import cra_smra_stages

    return {f"CRAM after {stage}": backbone.stage_strides[stage] for stage in cra_smra_stages(backbone)}


STUDY = Paper(key="cra_smra", notebook="02_cra_smra", title=PAPER["title"], backbones=BACKBONES + (CPU_BACKBONE,),
              default_backbones={"smoke": CPU_BACKBONE, "cpu": CPU_BACKBONE}, plan=plan, cells=cells,
              claims=claims, parameters=PARAMETERS, recipe_epochs=PAPER_EPOCHS, recipe_batch_size=PAPER_BATCH,
              printed=PRINTED, paper_column=PAPER_COLUMN, attention_sites=attention_sites,
              output_strides=OUTPUT_STRIDES)
