"""The recipe-selection protocol: a variant's learning rate chosen on a validation split, never the test set.

No paper defines it. Musgrave et al., "A Metric Learning Reality Check" (ECCV 2020): every method gets
the same small budget of hyper-parameter trials, scored on data held out of the training set; the
test set is read once, by the final runs. Here a :class:`~fgvc_lib.study.paper.Variant` that lists
``lr_trials`` is first trained once per candidate rate, on its first seed, on the training split less a
held-out share of every class (:mod:`fgvc_lib.data.validation`), and scored on that held-out share;
the rate with the highest validation top-1 (the first listed among equals; a trial that diverged is
never chosen) is the one its real runs use, on the whole training split. The rate is chosen on the
study's first dataset and used on every dataset. One seed and one held-out fifth make a noisy
choice: the trials table gives each score's binomial standard error over the held-out images. The
trials are ordinary runs (their own keys and folders, so a killed selection resumes and a finished
one is loaded); the choice enters the real runs' keys through their recipe.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Mapping, Sequence, Tuple

import pandas as pd

from .paper import Variant

VALIDATION_SHARE = 0.2     # share of every class's training images held out for the trials
TRIAL_COLUMNS = ["variant", "lr", "validation_top1", "validation_se", "chosen", "seed", "held_out_images"]


def trial_variants(variant: Variant, share: float = VALIDATION_SHARE) -> List[Variant]:
    """One single-seed variant per candidate rate of ``variant``, trained without the held-out share."""
    if not variant.lr_trials:
        return []
    seed = variant.seeds[0]
    data = tuple(option for option in variant.data if option[0] != "validation") + (("validation", share),)
    # a diverging candidate stops (and is not chosen) instead of stopping the notebook
    return [dataclasses.replace(variant, name=f"{variant.name}@lr{float(lr)!r}",
                                train=dataclasses.replace(variant.train, lr=float(lr), on_divergence="stop"),
                                seeds=(seed,), data=data, test_views=(), lr_trials=())
            for lr in variant.lr_trials]


def choose(scores: Mapping[float, float]) -> float:
    """The rate with the highest validation score; among equal scores, the first listed."""
    if not scores:
        raise ValueError("no trial scored: nothing to choose from")
    best = max(scores.values())
    return next(lr for lr, score in scores.items() if score == best)


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
        return f"{chosen[variant.name]:g} (chosen on validation from {', '.join(f'{r:g}' for r in variant.lr_trials)})"
    if variant.lr_trials:
        return f"one of {', '.join(f'{r:g}' for r in variant.lr_trials)}, chosen on validation"
    return f"{variant.train.lr:g}"
