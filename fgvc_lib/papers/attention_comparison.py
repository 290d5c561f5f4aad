"""Notebook 06's study: the five attention methods side by side under one recipe, against oracle attention.

Not a paper: each method is the model its own notebook trains (the paper's module, its extra losses at the
paper's weights, its attention sites, SSANet's frozen feature extractor: whatever the paper's plan builds),
and every arm here trains with ONE recipe, the baseline's: the same backbone at one output stride
(:data:`OUTPUT_STRIDES`: 8 for VGG in the CPU profiles, the stride of notebooks 02-04 and of notebook 00's
spatial oracle), data, epochs, batch, seeds, optimiser and schedule, and the same search for a learning rate:
where rates are chosen (the cpu and smoke profiles) the baseline and each method (and SSANet's own reference row)
start from the same candidates, :data:`COMMON_RATE_FACTORS` x the baseline's rate, on a validation split
(:mod:`fgvc_lib.study.recipes`, which tries further past an end of the grid that wins), and the oracles take the baseline's; where rates are fixed (the paper profile)
every arm trains at the baseline's. Until 2026-12-05 only the baseline chose and every arm took its rate, which
gave the baseline three trials and each method none.

The oracles of notebook 00 (:mod:`fgvc_lib.papers.synthetic_dataset`) are the reference lines: the crops of
the source drawing (bird, the class's parts), the zoom oracle (the head crop of the network's own input,
resized back) and the spatial-attention oracles (the top map pooled with the head crop's square as its mask,
the zoom oracle's region, or with the class's part mask). Each method is of one kind (:data:`METHODS`): it resamples its input (zoom) or re-weights feature maps
(spatial); :func:`oracle_share` measures the share of its kind's nearly label-free oracle gain it captures.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..engine import TrainConfig
from ..models.baseline import BaselineNet, cross_entropy_loss
from ..reporting import COMPARISON_COLUMNS
from ..statistics import holm_rejected, paired_effect
from ..study import Accuracy, Cell, Claim, Paper, Variant, recipes
from . import synthetic_dataset

OUTPUT_STRIDES = {"cpu": 8, "smoke": 8}   # every arm's VGG at this stride; the paper profile: as published
# The candidate rates of every tuned arm, as multiples of the baseline's: the protocol's 0.3, 1 and 3, and 0.1 below
# them, because methods whose own notebooks start lower chose the top of grids there (CLAN 3 x its 0.01 in 03, SSANet
# 3 x its 0.001 in 05, on their validation splits): one grid that spans 0.1 to 3 times 0.05 holds both.
COMMON_RATE_FACTORS = (0.1, 0.3, 1.0, 3.0)


@dataclass(frozen=True)
class Method:
    """An attention method (or a method's own reference row): its arm name here, its paper module
    (``fgvc_lib.papers.<module>``), its kind (``"zoom"``, ``"spatial"``, or ``"reference"``) and which variant
    of its own plan it is (settings -> name)."""

    arm: str
    label: str
    module: str
    kind: str
    variant: Callable


def _clan_main(settings) -> str:
    from .clan import main_key

    return main_key(settings, 3 if settings.backbone == "vgg16" else 2)


def _recurrent_main(settings) -> str:
    from .recurrent_attention import main_variant

    return main_variant(settings)


def _ssanet_main(settings) -> str:
    from .ssanet import variant_name

    return variant_name("plus", settings.loss)


def _named(name: str) -> Callable:
    return lambda settings: name


METHODS: Tuple[Method, ...] = (
    Method("cra_cnn", "CRA-CNN (01)", "cra_cnn", "zoom", _named("cra_cnn")),
    Method("cra_smra", "CRA-SMRA (02)", "cra_smra", "spatial", _named("cram_smram")),
    Method("clan", "CLAN (03)", "clan", "spatial", _clan_main),
    Method("recurrent_attention", "recurrent attention (04)", "recurrent_attention", "zoom", _recurrent_main),
    Method("ssanet", "SSANet (05)", "ssanet", "spatial", _ssanet_main),
)
# SSANet keeps its frozen feature extractor (it belongs to the method), which the baseline fine-tunes: its own
# no-attention row (the same frozen extractor and heads, no SSA block) separates the attention from the freezing
REFERENCES: Tuple[Method, ...] = (
    Method("ssanet_no_attention", "SSANet's no-attention row (05, frozen extractor)", "ssanet", "reference",
           _named("no-attention")),
)
# notebook 00's oracles trained here: variant -> (label, the kind whose nearly label-free ceiling it is, or "")
ORACLES: Dict[str, Tuple[str, str]] = {
    "oracle-object": ("oracle: bird crop of the source", ""),
    "oracle-parts": ("oracle: class's part crop of the source", ""),
    "oracle-zoom-head": ("zoom oracle: head crop of the input", "zoom"),
    "oracle-pool-head": ("spatial oracle: head box mask", "spatial"),
    "oracle-pool-parts": ("spatial oracle: class's part mask", ""),
}
BASELINE = "baseline"
LOCALIZATION_PER_CLASS = synthetic_dataset.LOCALIZATION_PER_CLASS   # test images per class whose Grad-CAM is scored
KIND_ORACLE = {kind: name for name, (_, kind) in ORACLES.items() if kind}
# Oracles that need the synthetic set's ground truth of which parts tell a class apart; on a real dataset
# only the bird crop is possible (CUB's keypoints have no extent and do not say which part is discriminative).
REAL_DATA_ORACLES = ("oracle-object",)
TABLE_COLUMNS = COMPARISON_COLUMNS   # the table's format, which SUMMARY.md reads back


def paper_settings(module_name: str, settings):
    """The settings the method's own notebook would resolve with this notebook's common parameters (its own
    parameters at their defaults; its rates fixed: this notebook's own trials choose them)."""
    from ..study.parameters import resolve

    module = importlib.import_module(f"{__package__}.{module_name}")
    values = {"profile": settings.profile.name, "backbone": settings.backbone,
              "seeds": ",".join(map(str, settings.seeds)), "epochs": settings.epochs,
              "image_size": settings.image_size, "batch_size": settings.batch_size}
    if not module.STUDY.datasets:
        values["dataset"] = ",".join(d.name for d in settings.datasets)
        values["data_root"] = ",".join(d.root or "" for d in settings.datasets)
    if any(p.name == "lr_selection" for p in module.STUDY.parameters):
        values["lr_selection"] = "fixed"
    return module.STUDY, resolve(module.STUDY, values)


def method_variant(method: Method, settings, recipe: TrainConfig):
    """``method``'s model as its own plan builds it, renamed to its arm and trained with ``recipe`` (its loss
    weights and divergence rule kept: they belong to the method); its rate is chosen by :func:`plan`'s trials."""
    paper, own = paper_settings(method.module, settings)
    variants = {v.name: v for v in paper.plan(own)}
    name = method.variant(own)
    if name not in variants:
        raise ValueError(f"{method.label}: its plan has no variant {name!r} (it has {', '.join(variants)})")
    source = variants[name]
    train = dataclasses.replace(recipe, loss_weights=dict(source.train.loss_weights),
                                on_divergence=source.train.on_divergence)
    # the data are the common recipe's too: a method's own augmentation (CRA-CNN's random resized crop) is not
    # the method
    return dataclasses.replace(source, name=method.arm, train=train, seeds=tuple(settings.seeds), seed_tier="main",
                               lr_trials=(), lr_from="", test_views=(), data=(),
                               details=(("arm", method.label), ("kind", method.kind),
                                        ("from", f"{paper.notebook}: {name}")))


def oracles(settings) -> List[str]:
    """The oracles this dataset allows (:data:`REAL_DATA_ORACLES` off the synthetic set)."""
    synthetic = all(d.name == "synthetic" for d in settings.datasets)
    return [name for name in ORACLES if synthetic or name in REAL_DATA_ORACLES]


def oracle_variants(settings, recipe: TrainConfig) -> List[Variant]:
    """Notebook 00's oracles as its plan builds them (on the synthetic set), trained with ``recipe``; on a real
    dataset the bird crop alone (the dataset's bird boxes)."""
    seeds = tuple(settings.seeds)
    if all(d.name == "synthetic" for d in settings.datasets):
        _, zero = paper_settings("synthetic_dataset", settings)
        planned = {v.name: v for v in synthetic_dataset.plan(zero)}
    else:
        planned = {"oracle-object": Variant("oracle-object", BaselineNet, cross_entropy_loss, recipe, seeds,
                                            data=(("crop", "object"),))}
    return [dataclasses.replace(planned[name], train=recipe, seeds=seeds, lr_trials=(),
                                lr_from="", details=(("arm", ORACLES[name][0]), ("kind", "oracle"),
                                                     ("from", f"00_synthetic_dataset: {name}")))
            for name in oracles(settings)]


def plan(settings):
    recipe = synthetic_dataset.recipe_of(settings)   # the one recipe of every arm: notebook 00's baseline's
    variants = [Variant(BASELINE, BaselineNet, cross_entropy_loss, recipe, tuple(settings.seeds),
                        details=(("arm", "baseline CNN"), ("kind", "baseline"), ("from", "backbone + GAP + linear")))]
    variants += [method_variant(method, settings, recipe) for method in METHODS + REFERENCES]
    variants += oracle_variants(settings, recipe)
    # the baseline and every method (SSANet's reference row too) choose their own rate on validation from the same
    # candidates, by the same rule; the oracles (the baseline with another input or pooling) train at the baseline's
    tuned = (BASELINE,) + tuple(method.arm for method in METHODS + REFERENCES)
    return recipes.protocol(settings, variants, tuned=tuned, lead=BASELINE, factors=COMMON_RATE_FACTORS)


def arm_labels(settings) -> Dict[str, str]:
    """{variant: label} of every arm, in table order."""
    return {BASELINE: "baseline CNN", **{m.arm: m.label for m in METHODS + REFERENCES},
            **{name: ORACLES[name][0] for name in oracles(settings)}}


def claim_text(label: str) -> str:
    """The claim of an arm labelled ``label``: it beats the baseline under one recipe."""
    return f"{label} beats the baseline under one recipe"


def cells(settings):
    return [Cell("accuracy", label, Accuracy(name)) for name, label in arm_labels(settings).items()]


def claims(settings):
    baseline = Accuracy(BASELINE)
    out = [Claim(claim_text(m.label), ((baseline, Accuracy(m.arm)),), main=True, note=f"{m.kind} attention")
           for m in METHODS]
    out.append(Claim("SSANet (05) beats its own no-attention row (the same frozen extractor)",
                     ((Accuracy("ssanet_no_attention"), Accuracy("ssanet")),),
                     note="SSANet's attention alone, freezing held equal"))
    out += [Claim(claim_text(label), ((baseline, Accuracy(name)),),
                  note="the ceiling of its kind" if ORACLES[name][1] else "an upper bound that carries more than "
                                                                        "attention (see notebook 00)")
            for name, (label, _) in ORACLES.items() if name in oracles(settings)]
    return out, []


# --------------------------------------------------------------------------- the comparison table


def accuracy_interval(study, arm: str) -> Tuple[float, float, float]:
    """Top-1 of ``arm`` with its 95 % interval, counting seeds and test images (the verdict rule's model
    applied to the per-image correctness itself)."""
    effect = paired_effect([_seeds_by_images(study, arm)])
    return effect.effect, effect.ci_low, effect.ci_high


def _seeds_by_images(study, arm: str) -> np.ndarray:
    """``arm``'s per-image correctness (0 or 100) as a (seeds x images) array, seeds in order."""
    per_seed = study.per_image(Accuracy(arm))
    return np.stack([per_seed[seed] for seed in sorted(per_seed)])


def oracle_share(study, arm: str, oracle: str, grid: Optional[np.ndarray] = None) -> Tuple[float, float, float]:
    """The share ``r`` of ``oracle``'s gain over the baseline that ``arm``'s gain captures, with a 95 % interval:
    the values of ``r`` for which the verdict rule's interval of ``(arm - baseline) - r (oracle - baseline)``
    (per image, paired seeds) contains 0 (Fieller's construction on the study's own interval). Meaningful only
    where the oracle's gain is clearly positive (:func:`comparison_table` asks that it pays); then the set is one
    bounded interval. An end at the grid's edge (default -5 to 5) is reported as unbounded (inf)."""
    base = _seeds_by_images(study, BASELINE)
    gain = _seeds_by_images(study, arm) - base
    ceiling = _seeds_by_images(study, oracle) - base
    share = float(gain.mean() / ceiling.mean()) if ceiling.mean() != 0 else math.nan
    grid = np.round(np.arange(-5.0, 5.0 + 1e-9, 0.01), 4) if grid is None else grid
    accepted = [r for r in grid if _contains_zero(paired_effect([gain - r * ceiling]))]
    if not accepted:
        return share, math.nan, math.nan
    low = -math.inf if accepted[0] == grid[0] else float(accepted[0])
    high = math.inf if accepted[-1] == grid[-1] else float(accepted[-1])
    return share, low, high


def _contains_zero(effect) -> bool:
    return effect.ci_low <= 0.0 <= effect.ci_high


def comparison_table(study, claims_df: pd.DataFrame, localization: Optional[pd.DataFrame] = None,
                     costs: Optional[Dict[str, Dict[str, float]]] = None,
                     speeds: Optional[Dict[str, float]] = None) -> pd.DataFrame:
    """One row per arm (:data:`TABLE_COLUMNS`): top-1 with its interval; the paired effect over the baseline
    with its interval and verdict (from ``claims_df``), and for a method whether it survives Holm's correction
    over the five methods' comparisons (they share the baseline's runs); for a method, whether its kind's oracle
    pays here (:func:`oracle_pays`) and only then the share of that oracle's gain it captures
    (:func:`oracle_share`); Grad-CAM pointing on the discriminative part and on the bird (``localization``: rows
    by arm, means over seeds, percent); parameters and multiply-adds at test time (``costs``: {arm: {"params",
    "macs"}}) and training images per second (``speeds``, :func:`training_speed`)."""
    labels = arm_labels(study.settings)
    kinds = {BASELINE: "baseline", **{m.arm: m.kind for m in METHODS + REFERENCES}, **{n: "oracle" for n in ORACLES}}
    by_text = claims_df.set_index("claim")
    pays = {kind: oracle_pays(by_text, name) for kind, name in KIND_ORACLE.items()}
    method_texts = [claim_text(m.label) for m in METHODS if claim_text(m.label) in by_text.index]
    survives = dict(zip(method_texts, holm_rejected([float(by_text.loc[t, "p_value"]) for t in method_texts])))
    rows = []
    for arm, label in labels.items():
        top1, low, high = accuracy_interval(study, arm)
        row = {"arm": label, "kind": kinds[arm], "top-1": top1, "top-1 low": low, "top-1 high": high}
        text = claim_text(label)
        if text in by_text.index:
            claim = by_text.loc[text]
            row.update({"effect": claim["our_effect"], "effect low": claim["ci_low"], "effect high": claim["ci_high"],
                        "verdict": claim["verdict"]})
            if text in survives:
                row["Holm"] = bool(survives[text])
        method = next((m for m in METHODS if m.arm == arm), None)
        if method is not None and KIND_ORACLE.get(method.kind) in study.variants:
            row["oracle pays"] = pays[method.kind]
            if pays[method.kind] == "pays":
                row["oracle share"], row["share low"], row["share high"] = oracle_share(study, arm,
                                                                                        KIND_ORACLE[method.kind])
        if localization is not None and arm in localization.index:
            scores = localization.loc[arm]   # a dataset without part boxes (CUB's keypoints) has no part score
            row["part pointing"] = scores.get("part_pointing", math.nan)
            row["bird pointing"] = scores.get("object_pointing", math.nan)
        if costs and arm in costs:
            row["params (M)"] = costs[arm]["params"] / 1e6
            row["MACs (G)"] = costs[arm]["macs"] / 1e9
        if speeds and arm in speeds:
            row["train images/s"] = speeds[arm]
        rows.append(row)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def method_claims(claims_df: pd.DataFrame) -> pd.DataFrame:
    """The methods' rows of the claims table (the forest plot's rows)."""
    return claims_df[claims_df["claim"].isin([claim_text(m.label) for m in METHODS])]


def oracle_lines(claims_df: pd.DataFrame) -> Dict[str, float]:
    """{label: gain} of the kinds' nearly label-free oracles measured in ``claims_df`` (the forest plot's lines)."""
    by_text = claims_df.set_index("claim")["our_effect"]
    return {ORACLES[name][0]: float(by_text[claim_text(ORACLES[name][0])]) for name in KIND_ORACLE.values()
            if claim_text(ORACLES[name][0]) in by_text.index}


def localization_means(localized: Dict[str, List[Dict[str, float]]]) -> pd.DataFrame:
    """Rows by arm, columns by score: the means over seeds (percent) of :meth:`Study.localization`'s scores."""
    return pd.DataFrame({arm: pd.DataFrame(per_seed).mean() * 100.0 for arm, per_seed in localized.items()}).T


def oracle_pays(by_text: pd.DataFrame, oracle: str) -> str:
    """Whether ``oracle``'s gain over the baseline here reaches notebook 00's :data:`CONTROL_GAIN` at the lower end
    of its interval ("pays"; else "does not pay"): only then does a share of it mean something."""
    text = claim_text(ORACLES[oracle][0])
    if text not in by_text.index:
        return "not measured"
    return "pays" if float(by_text.loc[text, "ci_low"]) >= synthetic_dataset.CONTROL_GAIN else "does not pay"


def training_speed(study, arms: Sequence[str], steps: int = 3) -> Dict[str, float]:
    """Training images per second of each of ``arms``, measured here one after the other on the study's device
    (with the profile's thread count on a CPU), a fresh model each, on the common training data: the probe of the
    cost plan (:func:`fgvc_lib.study.cost_plan.probe_rate`: the arm's recipe, loss, optimizer step and mixed
    precision, after a warm-up step). The runs' own wall-clock times are not used: they shared a pool with other
    runs."""
    import torch

    from ..study.cost_plan import probe_rate

    speeds = {}
    threads = torch.get_num_threads()
    if study.device.type == "cpu":
        torch.set_num_threads(study.threads or threads)
    try:
        for arm in arms:
            variant = study.variants[arm]
            speeds[arm] = probe_rate(study.untrained_model(arm), study.data().train_loader, variant.loss,
                                     variant.train, study.device, steps=steps, warmup=1)
    finally:
        torch.set_num_threads(threads)
    return speeds


def localized_arms(settings) -> Dict[str, Tuple[str, None]]:
    """{arm: (variant, branch)} whose Grad-CAM of the final prediction is scored: the baseline and the methods
    (whole RGB image in). The crop oracles see a crop and the spatial oracles a mask channel besides the image:
    their maps are not in the test image's coordinates, so they are not scored. Each map is the Grad-CAM of the
    final prediction at the model's own target layers (``cam_target_layers``): CLAN's and CRA-SMRA's average maps
    of several stages, the recurrent attention's covers its global stream (its patches are cut from pixels, no
    gradient reaches them), CRA-CNN predicts from the whole image at test time."""
    return {BASELINE: (BASELINE, None), **{m.arm: (m.arm, None) for m in METHODS + REFERENCES}}


BACKBONES = ("vgg16",)

STUDY = Paper(key="attention_comparison", notebook="06_comparison",
              title="The five attention methods under one recipe, against oracle attention", backbones=BACKBONES,
              plan=plan, cells=cells, claims=claims, attention_sites=synthetic_dataset.attention_sites,
              parameters=(recipes.selection_parameter("the baseline's and each method's", COMMON_RATE_FACTORS),),
              recipe_epochs=30, recipe_batch_size=32, output_strides=OUTPUT_STRIDES)
