"""CLAN (Huang, Wang & Yang, arXiv 2210.08784): the numbers it prints, its claims, and notebook 03's study.

Source: R. Huang, Y. Wang, H. Yang, "Cross-layer Attention Network for Fine-grained Visual
Categorization", arXiv 2210.08784. Accuracies are top-1 in percent at 448 x 448; Table 5 gives
millions of parameters and billions of multiply-adds (MACs) at 448 x 448 with 200 classes.

* :data:`PRINTED`: Tables 1-6 as printed, ``{table: {row: {column: value}}}`` (a "-" is absent). Columns
  are dataset keys (Tables 2, 4, 6; :data:`PAPER_COLUMN` maps the study's dataset to one), scale labels
  ("2-scale", "3-scale": Tables 1 and 3, both on CUB-200-2011) or Table 5's counts (``params_m``, ``macs_g``).
* :data:`CLAIMS`: what the paper concludes from its tables and figures, in its words; :func:`claims` turns
  each into the study's claims for one configuration (the runner computes the paper's effect from the
  printed cells they name) or says why it is not measured there (:data:`UNMEASURED`: in none).
* :data:`STUDY`: what notebook 03 trains and rebuilds (:func:`plan`, :func:`cells`), on :mod:`fgvc_lib.study`.

Reading of Tables 1 and 2 (an ambiguity): their "CLCA / dot product / 3-scale" entry (85.8 on CUB) equals
Table 4's "G + P + A" entry of the full CLAN, and Table 2's CLCA row equals Table 4's "G + P + A" row on all
three datasets. So we read Tables 1-2 as full models (CLSA included in training) whose prediction averages
the top and mid-level branches only ("results from different layers are averaged", section 4.2); the 3-scale
dot-product CLAN is then one model shared by Tables 1-4 and 6 (:func:`ablation_measure`). The other reading
would train the Tables 1-2 models without CLSA (``CLANConfig(use_clsa=False)``) and predict with all their
branches.
"""
from __future__ import annotations

import functools
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..data import DATASET_LABELS
from ..study import Accuracy, Cell, Claim, Fixed, Paper, Parameter, Printed, Score, Variant, recipes
from ..study.paper import tier_seeds
from ..study.parameters import whole_number

PAPER = {
    "key": "clan",
    "title": "Cross-layer Attention Network for Fine-grained Visual Categorization",
    "authors": "Ranran Huang, Yu Wang, Huazhong Yang",
    "venue": "arXiv:2210.08784",
}
BACKBONES = ("vgg16", "resnet50", "resnet101")
BACKBONE_LABELS = {"vgg16": "VGG-16", "resnet50": "ResNet-50", "resnet101": "ResNet-101"}
# The paper column printed beside each dataset: the synthetic birds get CUB-200-2011's numbers
# (marked not comparable); Stanford Dogs is not in the paper.
PAPER_COLUMN = {"cub": "cub", "cars": "cars", "aircraft": "aircraft", "synthetic": "cub"}

# ---------------------------------------------------------------- the paper's tables
PRINTED: Dict[str, Dict[str, Dict[str, float]]] = {
    # Table 1: relation metric f of CLCA (eq. 5-7), VGG-16, CUB-200-2011.
    "table1": {
        "Gaussian": {"2-scale": 84.6, "3-scale": 84.5},
        "Embedded Gaussian": {"2-scale": 85.1, "3-scale": 85.7},
        "Dot Product": {"2-scale": 85.2, "3-scale": 85.8},
    },
    # Table 2: what is applied to the two mid-level maps, 3-scale VGG-16.
    "table2": {
        "GAP": {"cub": 78.7, "cars": 90.4, "aircraft": 86.3},
        "Non-local": {"cub": 84.8, "cars": 92.5, "aircraft": 89.5},
        "CLCA": {"cub": 85.8, "cars": 92.9, "aircraft": 90.6},
    },
    # Table 3: channel pooling inside CLSA (eq. 8), VGG-16, CUB-200-2011.
    "table3": {
        "CLCA + CLSA(Avg)": {"2-scale": 85.3, "3-scale": 85.6},
        "CLCA + CLSA(Max)": {"2-scale": 85.7, "3-scale": 86.0},
        "CLCA + CLSA(Avg&Max)": {"2-scale": 86.0, "3-scale": 86.8},
    },
    # Table 4: branches combined at test time, one full 3-scale VGG-16 CLAN per dataset.
    "table4": {
        "G-Branch": {"cub": 84.1, "cars": 91.5, "aircraft": 90.1},
        "P-Branch": {"cub": 85.2, "cars": 91.8, "aircraft": 90.3},
        "A-Branch": {"cub": 83.1, "cars": 88.7, "aircraft": 88.1},
        "CLSA-Branch": {"cub": 85.8, "cars": 92.6, "aircraft": 90.4},
        "G + P": {"cub": 85.3, "cars": 92.1, "aircraft": 90.6},
        "G + P + A": {"cub": 85.8, "cars": 92.9, "aircraft": 90.6},
        "G + P + A + CLSA": {"cub": 86.8, "cars": 93.1, "aircraft": 91.0},
    },
    # Table 5: complexity at 448 x 448, 200 classes (CUB): millions of parameters, billions of MACs.
    "table5": {
        "VGG-16": {"params_m": 15.03, "macs_g": 61.63},
        "2-scale CLAN": {"params_m": 16.08, "macs_g": 62.30},
        "3-scale CLAN": {"params_m": 17.34, "macs_g": 64.83},
    },
    # Table 6: comparison with the state of the art; row "<method> (<base model>)".
    "table6": {
        "VGG-16 (VGG-16)": {"cub": 79.1, "cars": 87.0, "aircraft": 85.1},
        "ResNet-50 (ResNet-50)": {"cub": 86.0, "cars": 92.0, "aircraft": 89.9},
        "ResNet-101 (ResNet-101)": {"cub": 86.4, "cars": 92.5, "aircraft": 90.5},
        "B-CNN (VGG-16)": {"cub": 84.1, "cars": 91.3, "aircraft": 84.1},
        "CBP (VGG-16)": {"cub": 84.0},
        "LRBP (VGG-16)": {"cub": 84.2, "cars": 90.9, "aircraft": 87.3},
        "DBT-Net (ResNet-50)": {"cub": 87.5, "cars": 94.1, "aircraft": 91.2},
        "DBT-Net (ResNet-101)": {"cub": 88.1, "cars": 94.5, "aircraft": 91.6},
        "RA-CNN (VGG-19)": {"cub": 85.3, "cars": 92.5, "aircraft": 88.2},
        "MA-CNN (VGG-19)": {"cub": 86.5, "cars": 92.8, "aircraft": 89.9},
        "MAMC (ResNet-50)": {"cub": 86.2, "cars": 92.8},
        "MAMC (ResNet-101)": {"cub": 86.5, "cars": 93.0},
        "DFB-CNN (ResNet-50)": {"cub": 87.4, "cars": 93.8, "aircraft": 92.0},
        "TASN (ResNet-50)": {"cub": 87.9, "cars": 93.8},
        "CLAN(2-scale) (VGG-16)": {"cub": 85.9, "cars": 92.9, "aircraft": 90.3},
        "CLAN(3-scale) (VGG-16)": {"cub": 86.8, "cars": 93.1, "aircraft": 91.0},
        "CLAN(2-scale) (ResNet-50)": {"cub": 88.1, "cars": 94.2, "aircraft": 93.2},
        "CLAN(2-scale) (ResNet-101)": {"cub": 88.7, "cars": 94.5, "aircraft": 93.3},
    },
}
# Table 6's two marks per row: (one-stage, separate initialisation), as printed.
TABLE6_MARKS = {
    "VGG-16 (VGG-16)": (True, False), "ResNet-50 (ResNet-50)": (True, False), "ResNet-101 (ResNet-101)": (True, False),
    "B-CNN (VGG-16)": (True, False), "CBP (VGG-16)": (True, False), "LRBP (VGG-16)": (True, False),
    "DBT-Net (ResNet-50)": (True, False), "DBT-Net (ResNet-101)": (True, False), "RA-CNN (VGG-19)": (False, True),
    "MA-CNN (VGG-19)": (False, False), "MAMC (ResNet-50)": (True, False), "MAMC (ResNet-101)": (True, False),
    "DFB-CNN (ResNet-50)": (True, True), "TASN (ResNet-50)": (True, False), "CLAN(2-scale) (VGG-16)": (True, False),
    "CLAN(3-scale) (VGG-16)": (True, False), "CLAN(2-scale) (ResNet-50)": (True, False),
    "CLAN(2-scale) (ResNet-101)": (True, False),
}
TABLE4_BRANCHES = {  # row -> branch names of fgvc_lib.models.clan
    "G-Branch": ("G",), "P-Branch": ("P",), "A-Branch": ("A",), "CLSA-Branch": ("CLSA",),
    "G + P": ("G", "P"), "G + P + A": ("G", "P", "A"), "G + P + A + CLSA": ("G", "P", "A", "CLSA"),
}
TABLE5_IMAGE_SIZE, TABLE5_NUM_CLASSES = 448, 200
COUNTS = ("params_m", "macs_g")   # Table 5's columns

# ---------------------------------------------------------------- the paper's claims
# id -> (where the paper makes it, its words). claims() measures each in a configuration or says why not.
CLAIMS: Dict[str, Tuple[str, str]] = {
    "gaussian_worst": ("4.2, Table 1", "The Gaussian relation metric is worse than embedded Gaussian and dot "
                                       "product, at 2 and 3 scales."),
    "dot_similar_embedded": ("4.2, Table 1", "Dot product and embedded Gaussian give similar accuracy."),
    "nonlocal_beats_gap": ("4.2, Table 2", "Enriching the mid-level maps with context (non-local) greatly improves "
                                           "on using them as they are (GAP)."),
    "clca_beats_gap": ("4.2, Table 2", "Refining the mid-level maps with CLCA greatly improves on using them as "
                                       "they are (GAP)."),
    "clca_beats_nonlocal": ("4.2, Table 2", "Estimating the relations with the top-level map (CLCA) beats the "
                                            "mid-level map alone (non-local)."),
    "avgmax_pooling_best": ("4.2, Table 3", "Average and max pooling together work best for CLSA, at 2 and 3 "
                                            "scales."),
    "three_scales_beat_two": ("4.2-4.3, Tables 1, 3, 6", "3-scale CLAN beats 2-scale CLAN (more mid-level maps "
                                                         "give richer local information)."),
    "mid_branch_helps": ("4.2, Table 4", "Combining the top-level branch with a mid-level branch (G + P) beats the "
                                         "top-level branch alone."),
    "second_mid_branch_helps": ("4.2, Table 4", "A second mid-level branch adds accuracy (G + P + A vs G + P)."),
    "clsa_branch_helps": ("4.2, Table 4", "Adding the CLSA branch to G + P + A adds accuracy."),
    "clsa_refines_top": ("4.2, Table 4", "The CLSA-refined top-level map classifies better than the top-level map "
                                         "itself."),
    "clan_beats_baseline": ("4.3, Table 6", "CLAN beats the fine-tuned baseline of its backbone (VGG-16, ResNet-50, "
                                            "ResNet-101)."),
    "two_scales_cost_more": ("4.2, Table 5", "2-scale CLAN costs more than VGG-16 (parameters and multiply-adds)."),
    "two_scales_cost_slight": ("4.2, Table 5", "The increase of 2-scale CLAN over VGG-16 is only slight."),
    "three_scales_cost_more": ("4.2, Table 5", "3-scale CLAN costs more than 2-scale CLAN (it processes an extra, "
                                               "larger mid-level map)."),
    "scales_trade_off": ("4.2, Table 5", "Whether to use more intermediate layers is a trade-off between accuracy "
                                         "and complexity."),
    "more_efficient_than_bilinear": ("4.2", "CLAN is more efficient than B-CNN, its variants (CBP, LRBP) and "
                                            "multi-stream networks such as RA-CNN, which are costly to deploy."),
    "beats_vgg_methods": ("4.3, Table 6", "3-scale CLAN on VGG-16 outperforms the other VGG-based methods (B-CNN, "
                                          "CBP, LRBP, RA-CNN, MA-CNN)."),
    "resnet50_beats_tasn": ("4.3, Table 6", "2-scale CLAN on ResNet-50 outperforms the previous ResNet-50 state of "
                                            "the art, TASN."),
    "resnet101_beats_dbtnet": ("4.3, Table 6", "2-scale CLAN on ResNet-101 is better than DBT-Net on ResNet-101."),
    "state_of_the_art": ("Abstract, 4.3, Table 6", "CLAN achieves the state of the art on all three datasets and "
                                                   "outperforms previous works by a large margin."),
    "end_to_end_simple_init": ("4.3, Table 6", "Unlike MA-CNN, RA-CNN (alternating training, a pretrained attention "
                                               "proposal network) and DFB-CNN (a separate layer initialisation), CLAN "
                                               "needs only ImageNet initialisation and trains end to end."),
    "clca_maps_on_object": ("4.2, Figure 4", "CLCA's mid-level maps respond less to the background than "
                                             "non-local's, and concentrate on the object."),
    "layers_complement": ("4.4, Figure 5", "In CLAN the maps of different layers attend to different regions, "
                                           "whereas the baseline's conv5_2 repeats conv5_3."),
    "baseline_conv4_3_background": ("4.4, Figure 5", "The baseline's conv4_3 responds more to the background than "
                                                     "CLAN's."),
    "top_layer_salient": ("4.4, Figure 5", "The top layer (conv5_3) usually picks out the most salient region of the "
                                           "bird, its head."),
    "clsa_attention_diverse": ("4.4, Figure 6", "CLSA's attention maps of the mid levels focus on more diverse local "
                                                "information."),
}
# The claims no configuration measures, and why.
UNMEASURED: Dict[str, str] = {
    "two_scales_cost_slight": "the paper sets no threshold for 'slight'; Table 5 shows the paper's increments "
                              "beside ours",
    "scales_trade_off": "not measured on its own: it restates three_scales_beat_two (accuracy) beside "
                        "three_scales_cost_more (cost)",
    "more_efficient_than_bilinear": "none of those methods is built here; Table 5 counts VGG-16 and CLAN only",
    "beats_vgg_methods": "the other methods' numbers are published results, none is reproduced",
    "resnet50_beats_tasn": "TASN is a published result, not reproduced",
    "resnet101_beats_dbtnet": "DBT-Net is a published result, not reproduced; in the paper's own Table 6 the two tie "
                              "on Stanford Cars",
    "state_of_the_art": "the other methods of Table 6 are published results, none is reproduced; in the paper's own "
                        "Table 6 the best CLAN ties DBT-Net (ResNet-101) on Stanford Cars and leads by under one point "
                        "on CUB-200-2011, so 'a large margin' is not what its table shows",
    "end_to_end_simple_init": "a property of the recipe, which our implementation follows by construction (one stage, "
                              "one optimiser, backbone weights as the only initialisation); the other methods are not "
                              "built",
}


# ================================================================ the study of notebook 03
# What notebook 03 trains and rebuilds, declared for the study runner (fgvc_lib.study). The plan:
#
# * Main models, trained for every seed: the fine-tuned backbone (Table 6's baseline row) and CLAN with
#   the notebook's relation at 2 and, on VGG-16, 3 scales. `scales` picks which one is "the" CLAN of
#   Table 4, the figures and the CLAN-vs-backbone claim (0 = the paper's: 3 on VGG-16, 2 on ResNets).
# * Ablation models (VGG-16 only): the other models of Tables 1-3 (ABLATIONS), trained for the first
#   `ablation_seeds` seeds and `ablation_epochs` epochs (0 = the profile's: ABLATION_TIER's seeds /
#   ABLATION_EPOCHS). When the ablations are shorter than the main runs, the main models that Tables
#   1-3 compare them with are trained again at the ablation length (key suffix `_e<epochs>`), so every
#   comparison inside Tables 1-3 is between runs of the same length and seed.
# * Tables 1-3 are VGG-16 experiments (3 scales do not exist on ResNets): with a ResNet they are not
#   rebuilt; Table 4 then reads the 2-scale ResNet CLAN without paper numbers.
# Tables 1-3: each printed row's VGG-16 CLAN, as the CLANConfig fields it changes ({}: the paper's CLAN, dot-product
# CLCA and avg&max CLSA), at the scales of ABLATION_SCALES (Tables 1 and 3: a column per number of scales, on CUB;
# Table 2: 3 scales, a column per dataset).
ABLATIONS: Dict[str, Dict[str, Dict[str, str]]] = {
    "table1": {"Gaussian": {"relation": "gaussian"}, "Embedded Gaussian": {"relation": "embedded_gaussian"},
               "Dot Product": {}},
    "table2": {"GAP": {"mid_module": "gap"}, "Non-local": {"mid_module": "nonlocal"}, "CLCA": {}},
    "table3": {"CLCA + CLSA(Avg)": {"clsa_pooling": "avg"}, "CLCA + CLSA(Max)": {"clsa_pooling": "max"},
               "CLCA + CLSA(Avg&Max)": {}},
}
ABLATION_SCALES = {"table1": (2, 3), "table2": (3,), "table3": (2, 3)}
VGG_ONLY_TABLES = tuple(ABLATIONS)
# Seeds of the ablation models when ablation_seeds is 0: this tier's (fgvc_lib.study.paper.SEED_TIERS): the first
# 3 in the cpu profile, which cannot train 13 models for all 5 seeds in its budget (3 is the least any claim
# gets); every seed in the others
ABLATION_TIER = "cpu_ablation"
# Epochs of the ablation models when ablation_epochs is 0, as a fraction of the run's epochs.
ABLATION_EPOCHS = {"smoke": 1.0, "cpu": 0.25, "paper": 1.0}
LOCALIZATION_PER_CLASS = 8   # test images per class whose maps are scored (Figures 4-6)
DIVERSITY = "part_diversity"  # score name of Figure 6's part diversity (clan_views.part_diversity records it)


def _scales(value):
    if isinstance(value, bool) or value not in (0, 2, 3):
        raise ValueError(f"must be 2, 3 or 0 (the paper's choice: 3 on VGG-16, 2 on ResNets); got {value!r}")
    return value


def _relation(value):
    from ..models.clan_modules import RELATIONS
    from ..models.config_checks import check_choice

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
    if settings.options["ablation_seeds"]:   # the notebook's count of the ablation models' seeds
        settings.seed_counts[ABLATION_TIER] = settings.options["ablation_seeds"]
    epochs = settings.options["ablation_epochs"] or max(1, int(round(settings.epochs * ABLATION_EPOCHS.get(name, 1.0))))
    settings.options.update(scales=scales, ablation_seeds=list(tier_seeds(settings, ABLATION_TIER)),
                            ablation_epochs=epochs)


def clan_key(backbone: str, scales: int, relation: str = "dot_product") -> str:
    """Model key of CLAN at ``scales`` with ``relation``."""
    return f"clan_{backbone}_{scales}s" + ("" if relation == "dot_product" else f"_{relation}")


def main_key(settings, scales: Optional[int] = None) -> str:
    """The main CLAN at ``scales`` (default: the notebook's ``scales``)."""
    return clan_key(settings.backbone, settings.scales if scales is None else scales, settings.relation)


def main_scales(settings) -> Tuple[int, ...]:
    return (2, 3) if settings.backbone == "vgg16" else (2,)


def ablation_rows() -> List[Tuple[str, str, int]]:
    """``(table, row, scales)`` of every cell of Tables 1-3, in the tables' order."""
    return [(table, row, n) for table, rows in ABLATIONS.items() for row in rows for n in ABLATION_SCALES[table]]


def ablation_model(table: str, row: str, scales: int) -> str:
    """Model key of ``row`` of Tables 1-3 at ``scales``: the VGG-16 CLAN changed as :data:`ABLATIONS` says."""
    return clan_key("vgg16", scales) + "".join(("_clsa_" if name == "clsa_pooling" else "_") + value
                                               for name, value in ABLATIONS[table][row].items())


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
    if backbone == "vgg16":   # Tables 1-3: the paper's CLANs (when the run's relation is another), then the other rows
        for n in (2, 3):
            add(clan_key(backbone, n), "clan", {"scales": n}, "ablation")
        for table, row, n in ablation_rows():
            add(ablation_model(table, row, n), "clan", {"scales": n, **ABLATIONS[table][row]}, "ablation")
        if short != settings.epochs:
            for key in [ablation_model(*arm) for arm in ablation_rows()]:
                if models[key]["tier"] == "main":
                    add(f"{key}_e{short}", "clan", models[key]["config"], "ablation")
    return models


def ablation_key(settings, key: str) -> str:
    """The model a Table 1-3 cell reads: ``key``, or its copy at the ablation length."""
    spec = _models(settings)[key]
    return key if spec["tier"] == "ablation" or spec["epochs"] == settings.ablation_epochs \
        else f"{key}_e{settings.ablation_epochs}"


def ablation_measure(settings, table: str, row: str, scales: int) -> Accuracy:
    """What reproduces ``row`` of Tables 1-3 at ``scales``: its model at the ablation length (:func:`ablation_key`),
    predicting, in Tables 1-2, with its top and mid-level branches only (our reading, module docstring)."""
    branches = None if table == "table3" else TABLE4_BRANCHES["G + P" if scales == 2 else "G + P + A"]
    return Accuracy(ablation_key(settings, ablation_model(table, row, scales)), branches)


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
        seeds, tier = tuple(settings.seeds), ABLATION_TIER if spec["tier"] == "ablation" else "main"
        train = train_config(recipe, settings.backbone, epochs=spec["epochs"])
        if spec["kind"] == "baseline":   # GAP + linear on the map CLAN's G branch reads (VGG-16: pool5)
            details = dict(scales="-", mid_module="-", relation="-", clsa="-")
            model = functools.partial(BaselineNet, stage=CLAN_STAGES[settings.backbone][0])
            variants.append(Variant(key, model, cross_entropy_loss, train, seeds,
                                    tuple({**details, "tier": spec["tier"]}.items()), seed_tier=tier))
            continue
        config = CLANConfig(**spec["config"])
        config.validate()
        details = dict(scales=config.scales or PAPER_SCALES[settings.backbone], mid_module=config.mid_module,
                       relation=config.relation if config.mid_module != "gap" else "-",
                       clsa=config.clsa_pooling if config.use_clsa else "off")
        variants.append(Variant(key, functools.partial(build_clan, config=config), clan_loss, train, seeds,
                                tuple({**details, "tier": spec["tier"]}.items()), seed_tier=tier))
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


def printed_table4(settings) -> bool:
    """Whether the run's main CLAN is Table 4's (3-scale dot-product VGG-16), whose rows the paper prints."""
    return settings.backbone == "vgg16" and settings.scales == 3 and settings.relation == "dot_product"


def cells(settings) -> List[Cell]:
    seeds = tuple(settings.ablation_seeds)
    on_cub = STUDY.column(settings.dataset) == "cub"   # Tables 1 and 3 print CUB-200-2011 only
    out: List[Cell] = []
    if settings.backbone == "vgg16":  # Tables 1-3: on the ablation seeds, every row on the same seeds
        for table, row, n in ablation_rows():
            measure = ablation_measure(settings, table, row, n)
            if table == "table2":
                out.append(Cell(table, row, measure, seeds=seeds, printed=Printed(table, row)))
            else:
                column = f"{n}-scale"
                out.append(Cell(table, f"{row} [{column}]", measure, seeds=seeds,
                                printed=Printed(table, row, column) if on_cub else None))
    table4 = printed_table4(settings)
    for row, branches in table4_rows(settings.scales).items():
        out.append(Cell("table4", row, Accuracy(main_key(settings), branches),
                        printed=Printed("table4", row) if table4 and row in PRINTED["table4"] else None))
    for row, key in table6_rows(settings).items():
        printed = Printed("table6", row)
        if key != f"{settings.backbone}_baseline" and settings.relation != "dot_product":
            row, printed = f"{row} [{settings.relation}]", None  # the paper's CLAN uses the dot product
        out.append(Cell("table6", row, Accuracy(key), printed=printed))
    return out


def skipped_tables(settings) -> Dict[str, str]:
    """Tables not rebuilt with this backbone, and why."""
    if settings.backbone == "vgg16":
        return {}
    return {t: f"a VGG-16 ablation in the paper (2 and 3 scales; 3 scales do not exist on {settings.backbone}); "
               f"run the notebook with backbone='vgg16' to rebuild it" for t in VGG_ONLY_TABLES}


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


def smaller_increment(increments: Sequence[float], vgg16: Mapping[str, float]) -> float:
    """The smaller of a model's parameter and MAC ``increments`` over another (in :data:`COUNTS` order, Table
    5's units) in % of VGG-16's counts ``vgg16``: the effect of a Table 5 claim (both counts must grow)."""
    return min(100.0 * d / vgg16[m] for d, m in zip(increments, COUNTS))


def printed_smaller_increment(increments: Sequence[float]) -> float:
    """:func:`smaller_increment` of the paper's Table 5 (against its VGG-16 row), to 2 decimals like the
    table's own figures: a Table 5 claim's ``combine`` (the runner passes the printed increments)."""
    return round(smaller_increment(increments, PRINTED["table5"]["VGG-16"]), 2)


# ---------------------------------------------------------------- claims
def claims(settings) -> Tuple[List[Claim], List[str]]:
    """Every claim of the paper (:data:`CLAIMS`) as study claims for this configuration, and, for each
    declared claim not measured here, ``"<section>: <claim> - <why>"``."""
    claims_out: List[Claim] = []
    not_measured: List[str] = []
    for claim_id, entry in measured_claims(settings).items():
        if isinstance(entry, str):
            section, text = CLAIMS[claim_id]
            not_measured.append(f"{section}: {text} - {entry}")
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
    found.update(UNMEASURED)
    missing = [claim_id for claim_id in CLAIMS if claim_id not in found]
    if missing:   # a declared claim must be measured or say why not
        raise RuntimeError(f"claims neither measured nor explained: {', '.join(missing)}")
    return {claim_id: found[claim_id] for claim_id in CLAIMS}


def paper_setting(settings) -> str:
    """The paper's setting behind a printed effect when it is not this run's (the synthetic set is read
    against CUB-200-2011): ``"<dataset>, <backbone>"``, or "" when the run uses the paper's dataset.
    Every effect a claim carries is printed for the run's backbone (Tables 1-5: VGG-16; Table 6: its row)."""
    column = STUDY.column(settings.dataset)
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
    """Tables 1-3 and 3-scale vs 2-scale (VGG-16 experiments). Tables 1 and 3 print CUB-200-2011 only: on
    another dataset their claims carry no paper effect."""
    ids = ("gaussian_worst", "dot_similar_embedded", "nonlocal_beats_gap", "clca_beats_gap", "clca_beats_nonlocal",
           "avgmax_pooling_best", "three_scales_beat_two")
    if settings.backbone != "vgg16":
        return {i: f"a VGG-16 experiment at 2 and 3 scales, not run with {settings.backbone}" for i in ids}
    on_cub = STUDY.column(settings.dataset) == "cub"

    def gaps(table: str, worse: Sequence[str], better: Sequence[str]):
        """A claim's ``pairs`` ``(worse, better)`` at every scale of ``table`` and their ``printed`` cells."""
        arms = [(w, b, n) for w, b in zip(worse, better) for n in ABLATION_SCALES[table]]
        measures = tuple((ablation_measure(settings, table, w, n), ablation_measure(settings, table, b, n))
                         for w, b, n in arms)
        printed = tuple((Printed(table, w, f"{n}-scale"), Printed(table, b, f"{n}-scale")) for w, b, n in arms)
        return dict(pairs=measures, printed=printed if on_cub else ())

    short = functools.partial(Claim, seeds=tuple(settings.ablation_seeds), note=ablation_note(settings),
                              paper_setting=paper_setting(settings))
    found: Dict[str, object] = {}
    found["gaussian_worst"] = [short("Table 1: dot product and embedded Gaussian beat Gaussian (mean of 4 gaps)",
                                     **gaps("table1", ("Gaussian",) * 2, ("Dot Product", "Embedded Gaussian")))]
    found["dot_similar_embedded"] = [short(
        "Table 1: dot product and embedded Gaussian are similar (no difference; mean of 2 gaps)",
        **gaps("table1", ("Embedded Gaussian",), ("Dot Product",)), kind="similar")]
    for claim_id, text, better, worse in (
            ("nonlocal_beats_gap", "Table 2: non-local beats GAP", "Non-local", "GAP"),
            ("clca_beats_gap", "Table 2: CLCA beats GAP", "CLCA", "GAP"),
            ("clca_beats_nonlocal", "Table 2: CLCA beats non-local", "CLCA", "Non-local")):
        found[claim_id] = [short(text, ((ablation_measure(settings, "table2", worse, 3),
                                         ablation_measure(settings, "table2", better, 3)),),
                                 printed=((Printed("table2", worse), Printed("table2", better)),))]
    found["avgmax_pooling_best"] = [short("Table 3: avg&max pooling in CLSA beats avg and max (mean of 4 gaps)",
                                          **gaps("table3", ("CLCA + CLSA(Avg)", "CLCA + CLSA(Max)"),
                                                 ("CLCA + CLSA(Avg&Max)",) * 2))]
    printed = ((Printed("table6", "CLAN(2-scale) (VGG-16)"), Printed("table6", "CLAN(3-scale) (VGG-16)")),)
    found["three_scales_beat_two"] = [Claim(
        "Table 6: 3-scale CLAN beats 2-scale CLAN",
        ((Accuracy(main_key(settings, 2)), Accuracy(main_key(settings, 3))),),
        printed=printed if settings.relation == "dot_product" else (),   # the paper's CLAN uses the dot product
        paper_setting=paper_setting(settings))]
    return found


def _branch_claims(settings) -> Dict[str, object]:
    """Table 4: branches of one trained CLAN combined at test time."""
    key, rows, table4 = main_key(settings), table4_rows(settings.scales), PRINTED["table4"]
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
        in_paper = printed_table4(settings) and better in table4 and worse in table4
        found[claim_id] = [Claim(f"Table 4: {better} beats {worse} ({key})",
                                 ((Accuracy(key, rows[worse]), Accuracy(key, rows[better])),),
                                 printed=((Printed("table4", worse), Printed("table4", better)),) if in_paper else (),
                                 paper_setting=paper_setting(settings))]
    return found


def _backbone_claims(settings) -> Dict[str, object]:
    """Table 6: CLAN against the fine-tuned backbone."""
    label = BACKBONE_LABELS[settings.backbone]
    clan = f"CLAN({settings.scales}-scale) ({label})"
    printed = ((Printed("table6", f"{label} ({label})"), Printed("table6", clan)),)
    return {"clan_beats_baseline": [Claim(
        f"Table 6: CLAN ({settings.scales}-scale) beats the fine-tuned {label}",
        ((Accuracy(f"{settings.backbone}_baseline"), Accuracy(main_key(settings))),),
        printed=printed if settings.relation == "dot_product" else (),   # the paper's CLAN uses the dot product
        main=True, paper_setting=paper_setting(settings))]}   # the notebook's main comparison: the method against its baseline


def _complexity_claims() -> Dict[str, object]:
    """Table 5 from our counts at the paper's size: deterministic numbers, decided by their ordering."""
    counts = table5_counts()
    found: Dict[str, object] = {}
    for claim_id, bigger, smaller in (("two_scales_cost_more", "2-scale CLAN", "VGG-16"),
                                      ("three_scales_cost_more", "3-scale CLAN", "2-scale CLAN")):
        ours = smaller_increment([counts[bigger][m] - counts[smaller][m] for m in COUNTS], counts["VGG-16"])
        found[claim_id] = [Claim(
            f"Table 5: {bigger} costs more than {smaller} (effect: the smaller of its parameter and MAC increments, "
            f"% of VGG-16's; counted at 448 px)",
            ((Fixed(f"{smaller}: parameters and MACs", 0.0), Fixed(f"{bigger}: smaller increment", ours)),),
            printed=tuple((Printed("table5", smaller, m), Printed("table5", bigger, m)) for m in COUNTS),
            combine=printed_smaller_increment,
            note="a count, not a sample: decided by its sign (more parameters and more MACs)")]
    return found


def _figure_claims(settings) -> Dict[str, object]:
    """Figures 4-6 tested with per-image scores that fgvc_lib.papers.clan_views.score_maps records."""
    stages = figure_stages(settings)
    top, mids = stages[0], stages[1:]
    found: Dict[str, object] = {}
    if settings.backbone == "vgg16" and settings.scales == 3:
        found["clca_maps_on_object"] = [Claim(
            "Figure 4: CLCA's mid-level maps put more activation on the bird than non-local's (object energy)",
            tuple((Score(f"non-local: {s} activation: object_energy"), Score(f"CLAN: {s} activation: object_energy"))
                  for s in mids))]
        found["baseline_conv4_3_background"] = [Claim(
            "Figure 5: the baseline's conv4_3 Grad-CAM puts less of its mass on the bird than CLAN's (object energy)",
            ((Score("baseline: conv4_3 Grad-CAM: object_energy"), Score("CLAN: conv4_3 Grad-CAM: object_energy")),))]
    else:
        reason = "the paper draws the 3-scale VGG-16 CLAN; this run's CLAN is " \
                 f"{settings.scales}-scale {BACKBONE_LABELS[settings.backbone]}"
        found["clca_maps_on_object"] = reason + " (and the non-local model is a VGG-16 ablation)"
        found["baseline_conv4_3_background"] = reason + " (conv4_3 is CLCA-refined only at 3 scales)"
    found["layers_complement"] = [Claim(
        f"Figure 5: CLAN's {mids[0]} Grad-CAM repeats {top} less than the baseline's (correlation x100, "
        f"CLAN minus baseline)",
        ((Score("baseline: top/mid Grad-CAM correlation"), Score("CLAN: top/mid Grad-CAM correlation")),),
        direction=-1)]   # a claim of a decrease: the paper's side is below 0
    if settings.dataset != "synthetic":
        found["top_layer_salient"] = (f"{settings.dataset} has no box of the discriminative part (only the "
                                      f"synthetic set writes them), so where the top layer's peak falls is unknown")
    else:
        found["top_layer_salient"] = [Claim(
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
        Claim(f"Figure 6: CLSA's maps reach more distinct parts than CLAN's top-level map ({top} activation; "
              f"% of the parts)",
              tuple((Score(f"CLAN: {top} activation: {DIVERSITY}"), Score(name)) for _, name in clsa)),
        Claim("Figure 6: CLSA's maps reach more distinct parts than the baseline's activation at the same "
              "level (% of the parts)",
              tuple((Score(f"baseline: {s} activation: {DIVERSITY}"), Score(name)) for s, name in clsa)),
    ]
    return found


def _clan_mids(settings) -> Tuple[str, ...]:
    """The mid-level stages the run's main CLAN refines (its CLSA maps)."""
    from ..models.clan import CLAN_STAGES

    return tuple(CLAN_STAGES[settings.backbone][1][:settings.scales - 1])


def combine(branch_logits, names):
    """Section 3.3's combination of branches (mean of softmax probabilities), for Tables 1, 2 and 4."""
    from ..models.clan import combine_branches

    return combine_branches(branch_logits, names, "prob")


def attention_sites(settings, backbone):
    """Where CLAN's attention acts, with each map's stride (read off ``backbone``, the study's):
    CLCA refines each mid map against the top map (eq. 1-7), CLSA weighs the top map's cells with a
    map computed on the refined mid maps (eq. 8-11)."""
    from ..models.clan import CLAN_STAGES

    strides = backbone.stage_strides
    top, mids = CLAN_STAGES[settings.backbone][0], _clan_mids(settings)
    sites = {f"{mid} (CLCA refines it; CLSA's attention is computed on it)": strides[mid] for mid in mids}
    sites[f"{top} (top map: CLSA weighs its cells)"] = strides[top]
    return sites


def published_sites(study):
    """:func:`attention_sites` on the published network (output stride 32): the study's backbone otherwise, for
    the room table of a run at another output stride."""
    import dataclasses

    return attention_sites(study.settings, dataclasses.replace(study.backbone_spec, output_stride=None).build(
        weights=False))


STUDY = Paper(key="clan", notebook="03_clan", title=PAPER["title"], backbones=BACKBONES, plan=plan, cells=cells,
              claims=claims, skipped=skipped_tables, parameters=PARAMETERS, recipe_epochs=120, recipe_batch_size=36,
              finalize=finalize, printed=PRINTED, paper_column=PAPER_COLUMN, combine=combine,
              attention_sites=attention_sites, output_strides=OUTPUT_STRIDES)
