"""The recipe-selection protocol: a variant's learning rate chosen on a validation split, never the test set.

No paper defines it. Musgrave et al., "A Metric Learning Reality Check" (ECCV 2020): every method gets
the same small budget of hyper-parameter trials, scored on data held out of the training set; the
test set is read once, by the final runs. Here a :class:`~fgvc_lib.study.paper.Variant` that lists
``lr_trials`` is first trained once per candidate rate, on its first seed, on the training split less a
held-out share of every class (:mod:`fgvc_lib.data.validation`), and scored on that held-out share;
the rate with the highest validation top-1 (the first listed among equals; a trial that diverged is
never chosen) is the one its real runs use, on the whole training split. A grid whose best rate is its
highest or lowest cannot say whether the best lies beyond it: then one more trial, :data:`EDGE_STEP` times
further out, is trained, and again while the new end wins, at most :data:`MAX_EDGE_STEPS` times
(:func:`edge_extension`); a rate chosen inside its grid costs no extra trial. The rate is chosen on the
study's first dataset and used on every dataset. One seed and one held-out fifth make a noisy
choice: the trials table gives each score's binomial standard error over the held-out images. The
trials are ordinary runs (their own keys and folders, so a killed selection resumes and a finished
one is loaded); the choice enters the real runs' keys through their recipe.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import pandas as pd

from .paper import Variant
from .parameters import Parameter, choice

VALIDATION_SHARE = 0.2     # share of every class's training images held out for the trials
# The candidate rates, as multiples of an arm's default rate: the default and a factor of about 3 on either
# side, so the default sits inside the grid. (Notebook 01's first trials, 0.1, 0.3 and 1 times the default,
# chose the top of that grid for its baseline: a grid that stops at the default cannot say the default is
# too low, as 05's rate of 1e-3 for a slim VGG-16 may be.)
RATE_FACTORS = (0.3, 1.0, 3.0)
SELECTIONS = ("", "validation", "fixed")
# When the best candidate is an end of the grid, one more candidate this factor beyond it, at most this many times
# per arm; the same rule for every tuned arm, so an arm may try more rates than another (3 to 5 on a 3-rate grid).
# Added on 2026-12-05 after the test-split verdicts of notebooks 01-06 were known: in those runs notebook 03's two
# arms and 05's plus-AD had chosen their grid's top, 01's STN and 02's CRA-SMRA its bottom (found from
# recipe_trials.csv, the validation scores). Not chosen to move any verdict: the rule is fixed before the re-runs.
EDGE_STEP = 3.0
MAX_EDGE_STEPS = 2
# This protocol's version, as machines.json and replication.json record it (a file that names none: 1). 1: validation
# trials on the planned grid only; 2: the planned grid extended past an end that wins or ties the best.
PROTOCOL_VERSION = 2


def selection_parameter(arms: str, factors: Sequence[float] = RATE_FACTORS) -> Parameter:
    """The notebook parameter ``lr_selection`` of a paper whose ``arms`` (e.g. "CLAN's and the baseline's")
    choose their learning rate by this protocol, among ``factors`` x the default rate."""
    return Parameter("lr_selection", "", f"how {arms} learning rates are set: 'validation' (the best of "
                                         f"{', '.join(f'{f:g}' for f in factors)} x the default rate on a "
                                         f"validation split of the training images) | 'fixed' (the default rate); "
                                         f"'': validation in the cpu and smoke profiles, fixed in the paper profile",
                     choice(*SELECTIONS))


def default_rate(settings, paper_lr: float, calibrated_lr: float) -> float:
    """An arm's default learning rate: the notebook's ``lr`` parameter when set, else ``paper_lr`` (the paper's) in
    the paper profile and ``calibrated_lr`` in the cpu and smoke profiles (notebook 00's calibrated baseline rate,
    ``fgvc_lib.papers.synthetic_dataset.LR``, which the paper file passes: the runner imports no paper). The
    protocol's candidates (:func:`candidate_rates`) are multiples of it."""
    return settings.options.get("lr") or (paper_lr if settings.profile.name == "paper" else calibrated_lr)


def candidate_rates(settings, default_lr: float, factors: Sequence[float] = RATE_FACTORS) -> Tuple[float, ...]:
    """The rates an arm tries (``factors``, by default :data:`RATE_FACTORS`, x ``default_lr``), or () when the
    notebook's ``lr_selection`` (or the profile: the paper profile keeps the paper's rates) says the rate is
    fixed."""
    selection = settings.options.get("lr_selection") or ("fixed" if settings.profile.name == "paper" else "validation")
    if selection == "fixed":
        return ()
    return tuple(float(f"{default_lr * factor:.6g}") for factor in factors)   # 0.05 * 0.3 -> 0.015, not ...01


TRIAL_COLUMNS = ["variant", "lr", "validation_top1", "validation_se", "chosen", "seed", "held_out_images"]


def trial_variants(variant: Variant, share: float = VALIDATION_SHARE,
                   rates: Optional[Sequence[float]] = None) -> List[Variant]:
    """One single-seed variant per candidate rate of ``variant`` (``rates``, default its ``lr_trials``), trained
    without the held-out share."""
    rates = variant.lr_trials if rates is None else tuple(rates)
    if not rates:
        return []
    seed = variant.seeds[0]
    data = tuple(option for option in variant.data if option[0] != "validation") + (("validation", share),)
    # a diverging candidate stops (and is not chosen) instead of stopping the notebook
    return [dataclasses.replace(variant, name=f"{variant.name}@lr{float(lr)!r}",
                                train=dataclasses.replace(variant.train, lr=float(lr), on_divergence="stop"),
                                seeds=(seed,), data=data, test_views=(), lr_trials=())
            for lr in rates]


def rate_note(settings, default_lr: float) -> str:
    """How a notebook's rate is set, for its recipe line: the candidates, or the fixed rate."""
    rates = candidate_rates(settings, default_lr)
    if rates:
        return f"lr chosen on a validation split among {', '.join(f'{r:g}' for r in rates)} (or past an end that wins)"
    return f"lr={default_lr:g}"


def protocol(settings, variants: Sequence[Variant], tuned: Sequence[str], lead: str,
             factors: Sequence[float] = RATE_FACTORS) -> List[Variant]:
    """A plan under the protocol: each variant named in ``tuned`` (a method and its baseline, those of them
    the plan has) tries :func:`candidate_rates` (``factors`` x its own rate); every other variant (ablations,
    sweeps, controls) trains at the rate chosen for ``lead`` (or the first tuned one when the plan lacks
    ``lead``). Unchanged when the rates are fixed (``lr_selection``, or the paper profile by default)."""
    names = [v.name for v in variants]
    present = [name for name in tuned if name in names]
    if not present or not candidate_rates(settings, 1.0):
        return list(variants)
    lead = lead if lead in present else present[0]
    return [dataclasses.replace(v, lr_trials=candidate_rates(settings, v.train.lr, factors)) if v.name in present
            else dataclasses.replace(v, lr_from=lead) for v in variants]


def choose(scores: Mapping[float, float]) -> float:
    """The rate with the highest validation score; among equal scores, the first listed."""
    if not scores:
        raise ValueError("no trial scored: nothing to choose from")
    if not any(math.isfinite(score) for score in scores.values()):
        raise ValueError(f"every candidate rate diverged ({', '.join(f'{lr:g}' for lr in scores)}): list lower rates")
    best = max(scores.values())
    return next(lr for lr, score in scores.items() if score == best)


def edge_extension(scored: Mapping[float, float], planned: int) -> Optional[float]:
    """The next rate to try when the highest or lowest rate tried scores the best of ``scored`` (rate -> validation
    top-1, as :func:`choose` reads it; the highest first when both do): that rate times or divided by
    :data:`EDGE_STEP`. None when only inner rates score the best, when fewer than two rates were scored, or when
    ``planned`` (the grid's own size) plus :data:`MAX_EDGE_STEPS` rates were already tried."""
    if len(scored) < 2 or len(scored) >= planned + MAX_EDGE_STEPS:
        return None
    best = scored[choose(scored)]   # choose() also refuses a grid whose every trial diverged
    highest, lowest = max(scored), min(scored)
    if scored[highest] == best:     # an end that ties the best counts as winning: ties do not favour a direction
        return float(f"{highest * EDGE_STEP:.6g}")
    if scored[lowest] == best:
        return float(f"{lowest / EDGE_STEP:.6g}")
    return None


def with_rate(variant: Variant, lr: float) -> Variant:
    """``variant`` to train at ``lr`` on the whole training split (its trials done)."""
    return dataclasses.replace(variant, train=dataclasses.replace(variant.train, lr=float(lr)))


def trials_table(results: Mapping[str, Tuple[Sequence[Tuple[float, float]], float]], seeds: Mapping[str, int],
                 held_out_images: int) -> pd.DataFrame:
    """One row per trial: ``results`` = {variant: ([(lr, validation top-1 or -inf if it diverged), ...],
    chosen lr)}; ``validation_se`` is the binomial standard error of a top-1 over the held-out images."""
    rows = []
    for name, (scored, chosen) in results.items():
        for lr, score in scored:
            finite = math.isfinite(score)
            se = 100.0 * math.sqrt(score / 100.0 * (1.0 - score / 100.0) / held_out_images) \
                if finite and held_out_images else float("nan")
            rows.append({"variant": name, "lr": lr, "validation_top1": score if finite else float("nan"),
                         "validation_se": se, "chosen": lr == chosen, "seed": seeds[name],
                         "held_out_images": held_out_images})
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def check_trials(name: str, rates: Sequence[float]) -> None:
    """A ValueError unless ``rates`` are distinct positive numbers."""
    bad = [r for r in rates if isinstance(r, bool) or not isinstance(r, (int, float)) or not r > 0]
    if bad or len(set(rates)) != len(rates):
        raise ValueError(f"variant {name!r}: lr_trials must be distinct positive numbers; got {tuple(rates)!r}")


def describe_trials(variant: Variant, chosen: Dict[str, float]) -> str:
    """The plan table's learning-rate cell: the chosen rate, the candidates still to try, or the fixed rate."""
    if variant.name in chosen:
        rate, tried = chosen[variant.name], variant.lr_trials
        edge = "; an end of them" if len(tried) > 1 and rate in (min(tried), max(tried)) else ""
        return f"{rate:g} (chosen on validation from {', '.join(f'{r:g}' for r in tried)}{edge})"
    if variant.lr_trials:
        # "or beyond": one past an end of the grid that wins (edge_extension); short enough for pandas' 50 columns
        return f"{', '.join(f'{r:g}' for r in variant.lr_trials)} or beyond, on validation"
    if variant.lr_from:
        rate = f"{chosen[variant.lr_from]:g}" if variant.lr_from in chosen else "the rate"
        return f"{rate} chosen for {variant.lr_from}"
    return f"{variant.train.lr:g}"
