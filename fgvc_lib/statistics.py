"""The study's one verdict rule: paired seeds, a 95 % interval counting seeds and test images, a verdict.

Implements the claims protocol of docs/DESIGN.md ("Results"); no paper defines it. Anchors: Bouthillier et
al., "Accounting for Variance in Machine Learning Benchmarks" (MLSys 2021: randomise the sources of
variation, report the probability of improvement); Musgrave et al., "A Metric Learning Reality Check"
(ECCV 2020: one recipe for all methods, confidence intervals, no test-set feedback).

A claim "B beats A" is measured on paired runs: arm A and arm B are trained with the same seed ``s``
and scored on the same test images ``i``. The input is, per dataset ``d``, the matrix of per-image
differences ``D_d[s, i] = b_s(i) - a_s(i)`` in percentage points (for top-1 accuracy: 100 x the
difference of the 0/1 correctness of image ``i``; a claim over several pairs of cells on one dataset
averages the pairs first). The claim's effect of seed ``s`` is ``e_s = mean_d mean_i D_d[s, i]``; our
effect is the mean of ``e_s`` over the ``S`` seeds.

Two sources of variation are counted (a random-effects view ``D[s, i] = mu + seed_s + image_i + noise``):

* seeds: ``se_seed^2 = var_s(e_s) / S`` (sample variance, ``ddof=1``) - training randomness, plus each
  seed's own image-level noise;
* the test set, a finite sample of images that every seed shares: ``se_test^2 = sum_d
  var_i(mean_s D_d[s, i]) / N_d / K^2`` over the ``K`` datasets - what a fresh test set would move.

``se^2 = se_seed^2 + se_test^2`` counts the seed-by-image noise in both terms, so the interval is
slightly conservative (the coverage test in ``tests/test_statistics.py`` checks it stays >= 95 %).
The interval is Student's t with Welch-Satterthwaite degrees of freedom, which keeps it honest for
the few seeds a CPU affords (a percentile bootstrap over 3-5 seeds is too narrow). One seed gives no
interval: the seed-to-seed spread is unknown.

Verdicts (``m``: the smallest effect of interest of the claim's kind of measure, :data:`MEASURES`):

* a claim that B beats A (in the paper's ``direction``): **no effect** when the interval lies inside
  ``(-m, m)`` (checked first: an interval inside the band says the effect is negligible whichever
  side of 0 it sits on); else **held** when the interval lies on the paper's side of 0, **reversed**
  when it lies on the other side, else **inconclusive**. A held or reversed interval that still
  reaches into ``(-m, m)`` is flagged :func:`below_smallest_effect`: the sign is shown, not that the
  effect matters;
* a claim of no difference: **held** when the interval lies inside ``(-m, m)``, **reversed** when it
  lies entirely outside ``[-m, m]`` (a difference of at least ``m`` is shown), else **inconclusive**;
* a deterministic number (a count): its sign decides a claim of a difference, +-m a claim of no
  difference; there is no interval.

A second axis compares the size of our effect with the paper's printed effect, in raw points
(:func:`against_paper`): **as large as the paper's** when the interval contains it, **smaller than
the paper's** when the interval lies below it (on the paper's side: closer to 0 or beyond it),
**larger than the paper's** when it lies above. On the synthetic set the paper's effect is a
reference, not a prediction; in the paper profile it is the question.

``p_improvement`` is the share of seeds whose paired effect has the claimed sign (ties count half):
Bouthillier et al.'s probability of improvement, P(B > A), estimated over paired seeds. For a claim of
no difference it is the share of seeds within ``(-m, m)``. ``p_value`` is the two-sided p-value of
"no difference" under the same t model as the interval (the interval excludes 0 exactly when
``p_value < 0.05``); :func:`holm_rejected` says which claims still exclude 0 under Holm's correction
for testing many claims at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
SMALLEST_EFFECT = 1.0            # m of top-1 accuracy: the smallest effect of interest, percentage points
# The smallest effect of interest per kind of measure, fixed before the results it judges were looked at:
# accuracy in points of top-1; scores (localization, map and error-share measures) in points of their
# 0-100 scale, twice accuracy's because they average fewer images (96-480 against 1,200) and a map that
# moves 1 % of its mass is not a visibly different map; counts (parameters, multiply-adds) in % of the
# reference network's count.
MEASURES = {"accuracy": SMALLEST_EFFECT, "score": 2.0, "count": 1.0}
MEASURE_UNITS = {"accuracy": "top-1 points", "score": "score points (0-100)", "count": "% of the reference's count"}
AGAINST_PAPER = ("as large as the paper's", "smaller than the paper's", "larger than the paper's")
HALF_WIDTH = 3.0                 # the interval half-width every claim should reach (points)
MAIN_HALF_WIDTH = 2.0            # ... and a notebook's main comparisons (method vs its baseline)
MAX_SEEDS_ESTIMATE = 200         # seeds_needed searches up to here

VERDICTS = ("held", "reversed", "no effect", "inconclusive")
KINDS = ("greater", "similar")


@dataclass(frozen=True)
class Effect:
    """A claim measured under the verdict rule (see the module docstring); every number in points."""

    effect: float                 # mean over seeds of the paired per-seed effect
    per_seed: tuple               # e_s, in seed order
    ci_low: float                 # 95 % interval (NaN with one seed)
    ci_high: float
    p_improvement: float
    verdict: str
    se_seed: float
    se_test: float
    n_images: int                 # test images per seed (summed over datasets)
    interaction: float = 0.0      # the seed-by-image noise's share of se_test^2 at one seed (see seeds_needed)
    p_value: float = float("nan")  # two-sided, of "no difference" (NaN: one seed, or a count)

    @property
    def n_seeds(self) -> int:
        return len(self.per_seed)

    @property
    def std(self) -> float:
        """Sample standard deviation of the per-seed effects (NaN for one seed)."""
        return float(np.std(self.per_seed, ddof=1)) if len(self.per_seed) > 1 else float("nan")

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2.0


def check_direction_kind(direction: int, kind: str) -> None:
    """Raise a ValueError unless ``direction`` is +1 or -1 and ``kind`` one of :data:`KINDS`."""
    if direction not in (1, -1):
        raise ValueError(f"claim direction must be +1 or -1; got {direction!r}")
    if kind not in KINDS:
        raise ValueError(f"claim kind must be one of {', '.join(KINDS)}; got {kind!r}")


def _as_groups(differences) -> list:
    groups = [np.asarray(d, dtype=np.float64) for d in differences]
    if not groups:
        raise ValueError("no per-image differences given: pass one (seeds x images) array per dataset")
    seeds = {g.shape[0] if g.ndim == 2 else -1 for g in groups}
    if any(g.ndim != 2 or g.size == 0 for g in groups) or len(seeds) != 1:
        raise ValueError("each dataset's differences must be a non-empty (seeds x images) array, with the "
                         f"same seeds in every one; got shapes {[g.shape for g in groups]}")
    if not all(np.isfinite(g).all() for g in groups):
        raise ValueError("the per-image differences contain NaN or infinity")
    return groups


def _interaction(group: np.ndarray) -> float:
    """The residual mean square of a (seeds x images) array (two-way layout without replication): an
    estimate of the seed-by-image noise variance; 0 with one seed or one image."""
    n_seeds, n_images = group.shape
    if n_seeds < 2 or n_images < 2:
        return 0.0
    residual = group - group.mean(axis=1, keepdims=True) - group.mean(axis=0, keepdims=True) + group.mean()
    return float((residual ** 2).sum()) / ((n_seeds - 1) * (n_images - 1))


def standard_errors(differences: Sequence[np.ndarray]):
    """``(per-seed effects, se_seed, se_test, degrees of freedom, interaction)`` of the module
    docstring's model; ``interaction`` is the seed-by-image noise's part of ``se_test^2`` times the
    number of seeds (what one seed would leave in it)."""
    groups = _as_groups(differences)
    k = len(groups)
    per_seed = np.mean([g.mean(axis=1) for g in groups], axis=0)
    n_seeds = per_seed.size
    se_seed2 = float(np.var(per_seed, ddof=1)) / n_seeds if n_seeds > 1 else math.inf
    test_terms = [float(np.var(g.mean(axis=0), ddof=1)) / g.shape[1] / k ** 2 if g.shape[1] > 1 else 0.0
                  for g in groups]
    se_test2 = float(sum(test_terms))
    interaction = sum(_interaction(g) / g.shape[1] / k ** 2 for g in groups)
    total = se_seed2 + se_test2
    if not math.isfinite(total):
        return per_seed, math.inf, math.sqrt(se_test2), float("nan"), interaction
    pieces = ([se_seed2 ** 2 / (n_seeds - 1)] +
              [t ** 2 / (g.shape[1] - 1) for t, g in zip(test_terms, groups) if g.shape[1] > 1])
    denominator = sum(pieces)
    df = total ** 2 / denominator if denominator > 0 else math.inf
    return per_seed, math.sqrt(se_seed2), math.sqrt(se_test2), df, interaction


def verdict(ci_low: float, ci_high: float, direction: int = 1, kind: str = "greater",
            smallest_effect: float = SMALLEST_EFFECT) -> str:
    """The verdict of an interval (module docstring); NaN bounds are "inconclusive"."""
    check_direction_kind(direction, kind)
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "inconclusive"
    if ci_low > ci_high:
        raise ValueError(f"interval bounds out of order: {ci_low} > {ci_high}")
    m = float(smallest_effect)
    if kind == "similar":
        if -m < ci_low and ci_high < m:
            return "held"
        if ci_low > m or ci_high < -m:
            return "reversed"
        return "inconclusive"
    if -m < ci_low and ci_high < m:
        return "no effect"
    low, high = sorted((direction * ci_low, direction * ci_high))
    if low > 0:
        return "held"
    if high < 0:
        return "reversed"
    return "inconclusive"


def below_smallest_effect(ci_low: float, ci_high: float, kind: str = "greater",
                          smallest_effect: float = SMALLEST_EFFECT) -> bool:
    """True when a "greater" claim's interval excludes 0 but reaches into ``(-m, m)``: its sign is
    decided, not that it is as large as the smallest effect of interest."""
    if kind != "greater" or math.isnan(ci_low) or math.isnan(ci_high):
        return False
    excludes_zero = ci_low > 0 or ci_high < 0
    outside_band = ci_low >= smallest_effect or ci_high <= -smallest_effect
    return excludes_zero and not outside_band


def against_paper(ci_low: float, ci_high: float, paper_effect: Optional[float], direction: int = 1,
                  tolerance: float = 0.0) -> str:
    """Our interval against the paper's printed effect (module docstring): one of :data:`AGAINST_PAPER`,
    or "" when the paper prints no effect or we have no interval. "Smaller" and "larger" are read on
    the paper's side (``direction``): an interval at -3 against a paper's +5 is smaller. ``tolerance``
    widens our interval on both sides (a count has no interval: its smallest effect of interest)."""
    if paper_effect is None or any(math.isnan(float(v)) for v in (ci_low, ci_high, paper_effect)):
        return ""
    low, high = sorted((direction * ci_low, direction * ci_high))
    low, high = low - tolerance, high + tolerance
    printed = direction * float(paper_effect)
    if low <= printed <= high:
        return AGAINST_PAPER[0]
    return AGAINST_PAPER[1] if high < printed else AGAINST_PAPER[2]


def holm_rejected(p_values: Sequence[float], alpha: float = 1 - CONFIDENCE) -> List[bool]:
    """Which of ``p_values`` Holm's step-down procedure rejects at family-wise level ``alpha`` (the
    hypotheses "no difference" that survive testing all of them at once); NaN p-values are neither
    tested nor rejected."""
    values = [float(p) for p in p_values]
    tested = sorted((p, i) for i, p in enumerate(values) if not math.isnan(p))
    rejected = [False] * len(values)
    for rank, (p, index) in enumerate(tested):
        if p > alpha / (len(tested) - rank):
            break
        rejected[index] = True
    return rejected


def chance_decided(n_claims: int, confidence: float = CONFIDENCE) -> float:
    """At most how many decided verdicts chance alone would give among ``n_claims`` interval claims if
    no effect were real: each interval excludes 0 with probability ``1 - confidence`` (a decided verdict
    also needs the interval to leave +-m, so fewer are expected)."""
    return n_claims * (1.0 - confidence)


def paired_effect(differences: Sequence[np.ndarray], direction: int = 1, kind: str = "greater",
                  smallest_effect: float = SMALLEST_EFFECT, confidence: float = CONFIDENCE) -> Effect:
    """Measure a claim from per-dataset ``(seeds x images)`` arrays of paired differences B - A (points)."""
    check_direction_kind(direction, kind)
    groups = _as_groups(differences)
    per_seed, se_seed, se_test, df, interaction = standard_errors(groups)
    mean = float(per_seed.mean())
    if math.isfinite(se_seed):
        se = math.hypot(se_seed, se_test)
        if se == 0.0:
            low = high = mean
        else:
            low, high = (float(v) for v in stats.t.interval(confidence, df, loc=mean, scale=se))
    else:
        low = high = float("nan")
    if not math.isfinite(se_seed):
        p_value = float("nan")
    elif se_seed == 0.0 and se_test == 0.0:
        p_value = 1.0 if mean == 0.0 else 0.0
    else:
        p_value = float(2 * stats.t.sf(abs(mean) / math.hypot(se_seed, se_test), df))
    if kind == "similar":
        hits = np.abs(per_seed) < smallest_effect
        p_improvement = float(hits.mean())
    else:
        signed = direction * per_seed
        p_improvement = float(((signed > 0) + 0.5 * (signed == 0)).mean())
    return Effect(effect=mean, per_seed=tuple(float(v) for v in per_seed), ci_low=low, ci_high=high,
                  p_improvement=p_improvement, verdict=verdict(low, high, direction, kind, smallest_effect),
                  se_seed=se_seed, se_test=se_test, n_images=int(sum(g.shape[1] for g in groups)),
                  interaction=interaction, p_value=p_value)


def fixed_effect(value: float, direction: int = 1, kind: str = "greater",
                 smallest_effect: float = SMALLEST_EFFECT) -> Effect:
    """A deterministic difference (an operation count): no variation, its sign decides."""
    value = float(value)
    on_side = direction * value > 0 if kind == "greater" else abs(value) < smallest_effect
    # a count of a difference is decided by its sign (a claim of no difference: inside +-m)
    decided = verdict(value, value, direction, kind, 0.0 if kind == "greater" else smallest_effect)
    return Effect(effect=value, per_seed=(value,), ci_low=value, ci_high=value, p_improvement=float(on_side),
                  verdict=decided, se_seed=0.0, se_test=0.0, n_images=0)


def seeds_needed(effect: Effect, half_width: float, confidence: float = CONFIDENCE) -> Optional[int]:
    """Seeds that would bring ``effect``'s interval to ``half_width`` at the measured spreads.

    With ``n`` seeds the variance would be ``v_seed / n + (se_test^2 - i / S) + i / n``: the measured
    variance of the per-seed effects ``v_seed`` shrinks with the seeds, and so does the seed-by-image
    part ``i`` of the test-set term (its residual mean square over the images; ``S`` seeds measured),
    while the rest of the test-set term, the images' own variation, does not. ``None`` when that
    cannot be estimated (one seed), or when no number of seeds up to :data:`MAX_SEEDS_ESTIMATE` reaches
    it (:func:`seeds_can_reach` says which of the two: more seeds, or only more test images)."""
    if effect.n_seeds < 2 or not math.isfinite(effect.se_seed):
        return None
    seed_variance = effect.se_seed ** 2 * effect.n_seeds
    fixed = _images_own_variance(effect)
    for n in range(2, MAX_SEEDS_ESTIMATE + 1):
        se = math.sqrt((seed_variance + effect.interaction) / n + fixed)
        if float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se <= half_width:
            return n
    return None


def _images_own_variance(effect: Effect) -> float:
    """The part of ``effect``'s test-set variance that more seeds do not shrink (see :func:`seeds_needed`)."""
    variance = effect.se_test ** 2 - effect.interaction / effect.n_seeds
    return max(0.0, variance) if math.isfinite(variance) else math.nan


def seeds_can_reach(effect: Effect, half_width: float, confidence: float = CONFIDENCE) -> bool:
    """Whether enough seeds, however many, would bring ``effect``'s interval to ``half_width``: the images' own
    variation (the floor :func:`seeds_needed` leaves when the seed terms vanish) is narrower than it. False for
    one seed (spread unknown). Where this is True and :func:`seeds_needed` is None, more than
    :data:`MAX_SEEDS_ESTIMATE` seeds are needed; where it is False, only more test images help."""
    fixed = _images_own_variance(effect)
    if effect.n_seeds < 2 or not math.isfinite(effect.se_seed) or not math.isfinite(fixed):
        return False
    return float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(fixed) < half_width
