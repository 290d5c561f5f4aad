"""The verdict rule (fgvc_lib.statistics) against literal evaluations and simulated ground truth."""
import math

import numpy as np
import pytest
from scipy import stats

from fgvc_lib.statistics import (MEASURES, SMALLEST_EFFECT, VERDICTS, Effect, against_paper, below_smallest_effect,
                                 chance_decided, holm_rejected, fixed_effect, paired_effect, seeds_can_reach,
                                 seeds_needed, standard_errors, verdict)


def _literal_interval(matrix, confidence=0.95):
    """One dataset, written out: per-seed means, their variance over seeds, the variance over images of
    the seed-averaged differences, Welch-Satterthwaite degrees of freedom, Student's t."""
    n_seeds, n_images = len(matrix), len(matrix[0])
    seed_means = [sum(row) / n_images for row in matrix]
    grand = sum(seed_means) / n_seeds
    seed_var = sum((m - grand) ** 2 for m in seed_means) / (n_seeds - 1)
    image_means = [sum(matrix[s][i] for s in range(n_seeds)) / n_seeds for i in range(n_images)]
    image_var = sum((m - grand) ** 2 for m in image_means) / (n_images - 1)
    a, b = seed_var / n_seeds, image_var / n_images
    df = (a + b) ** 2 / (a ** 2 / (n_seeds - 1) + b ** 2 / (n_images - 1))
    half = stats.t.ppf(0.5 + confidence / 2, df) * math.sqrt(a + b)
    return grand, grand - half, grand + half


def test_interval_matches_a_literal_evaluation():
    rng = np.random.default_rng(0)
    matrix = (rng.random((4, 30)) < 0.6).astype(float) * 100 - (rng.random((4, 30)) < 0.5) * 100
    mean, low, high = _literal_interval(matrix.tolist())
    effect = paired_effect([matrix])
    assert effect.effect == pytest.approx(mean)
    assert (effect.ci_low, effect.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert effect.n_seeds == 4 and effect.n_images == 30


def test_seed_term_alone_is_the_paired_t_interval():
    """With one value per seed (no image variation) the interval is the one-sample t interval of the
    per-seed differences (scipy's, as an independent reference)."""
    per_seed = np.array([1.2, 2.5, 0.7, 1.9, 3.1])
    effect = paired_effect([per_seed[:, None]])
    reference = stats.ttest_1samp(per_seed, 0.0).confidence_interval(0.95)
    assert (effect.ci_low, effect.ci_high) == (pytest.approx(reference.low), pytest.approx(reference.high))


def test_several_datasets_average_their_effects_and_add_their_test_terms():
    rng = np.random.default_rng(1)
    a, b = rng.normal(2, 5, (3, 40)), rng.normal(-1, 5, (3, 25))
    per_seed, se_seed, se_test, _, interaction = standard_errors([a, b])
    assert per_seed == pytest.approx((a.mean(1) + b.mean(1)) / 2)
    expected_test = math.sqrt((np.var(a.mean(0), ddof=1) / 40 + np.var(b.mean(0), ddof=1) / 25) / 4)
    assert se_test == pytest.approx(expected_test)
    assert se_seed == pytest.approx(np.std(per_seed, ddof=1) / math.sqrt(3))

    def residual_ms(m):   # two-way layout without replication, written out
        s_, n_ = m.shape
        total = sum((m[i, j] - m[i].mean() - m[:, j].mean() + m.mean()) ** 2 for i in range(s_) for j in range(n_))
        return total / ((s_ - 1) * (n_ - 1))

    assert interaction == pytest.approx((residual_ms(a) / 40 + residual_ms(b) / 25) / 4)


def _simulate(rng, n_seeds, n_images, mu, seed_sd, image_sd, noise_sd):
    return (mu + rng.normal(0, seed_sd, (n_seeds, 1)) + rng.normal(0, image_sd, (1, n_images))
            + rng.normal(0, noise_sd, (n_seeds, n_images)))


@pytest.mark.parametrize("seed_sd, image_sd", [(1.5, 20.0), (3.0, 5.0), (0.0, 30.0)])
def test_coverage_is_at_least_nominal(seed_sd, image_sd):
    """Under the random-effects model the 95 % interval covers the true effect >= 93 % of the time
    (800 simulated studies: a binomial 95 % bound), whichever source of variation dominates."""
    rng = np.random.default_rng(2)
    mu, hits = 1.0, 0
    for _ in range(800):
        effect = paired_effect([_simulate(rng, 5, 200, mu, seed_sd, image_sd, 40.0)])
        hits += effect.ci_low <= mu <= effect.ci_high
    assert hits / 800 >= 0.93


def test_ignoring_the_test_set_would_undercover():
    """Why the test-set term is there: when the images carry most of the variation, the seed-only
    t interval misses the true effect far more often than 5 % while ours does not."""
    rng = np.random.default_rng(3)
    mu, ours, seed_only = 1.0, 0, 0
    for _ in range(500):
        matrix = _simulate(rng, 5, 150, mu, 0.5, 30.0, 10.0)
        effect = paired_effect([matrix])
        ours += effect.ci_low <= mu <= effect.ci_high
        ci = stats.ttest_1samp(matrix.mean(1), 0.0).confidence_interval(0.95)
        seed_only += ci.low <= mu <= ci.high
    assert ours / 500 >= 0.93 and seed_only / 500 < 0.8


def test_close_to_a_literal_two_level_bootstrap_with_many_seeds():
    """With many seeds the t interval and a literal two-level bootstrap (resample seeds, and the
    test images once per replicate for every seed) agree on the width within 25 %."""
    rng = np.random.default_rng(4)
    matrix = _simulate(rng, 12, 120, 2.0, 2.0, 15.0, 30.0)
    replicates = []
    for _ in range(2000):
        seeds = rng.integers(0, 12, 12)
        images = rng.integers(0, 120, 120)
        replicates.append(np.mean([[matrix[s, i] for i in images] for s in seeds]))
    boot_low, boot_high = np.percentile(replicates, [2.5, 97.5])
    effect = paired_effect([matrix])
    ratio = (effect.ci_high - effect.ci_low) / (boot_high - boot_low)
    assert 0.9 <= ratio <= 1.25


@pytest.mark.parametrize("low, high, direction, kind, expected", [
    (0.5, 3.0, 1, "greater", "held"),
    (-3.0, -0.5, 1, "greater", "reversed"),
    (-3.0, -0.5, -1, "greater", "held"),
    (0.5, 3.0, -1, "greater", "reversed"),
    (-0.6, 0.8, 1, "greater", "no effect"),
    (-2.0, 2.5, 1, "greater", "inconclusive"),
    (0.2, 0.9, 1, "greater", "no effect"),       # inside +-m: negligible, whichever side of 0
    (-0.68, -0.25, 1, "greater", "no effect"),   # (04's step-map claim read "reversed" before)
    (0.2, 1.4, 1, "greater", "held"),            # sign shown, reaches into +-m: held, below m
    (-0.6, 0.8, 1, "similar", "held"),
    (1.2, 4.0, 1, "similar", "reversed"),
    (-4.0, -1.5, 1, "similar", "reversed"),
    (0.4, 1.5, 1, "similar", "inconclusive"),
    (float("nan"), float("nan"), 1, "greater", "inconclusive"),
])
def test_verdicts(low, high, direction, kind, expected):
    assert verdict(low, high, direction, kind) == expected
    assert expected in VERDICTS


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="direction"):
        verdict(0, 1, direction=0)
    with pytest.raises(ValueError, match="kind"):
        verdict(0, 1, kind="better")
    with pytest.raises(ValueError, match="same seeds"):
        paired_effect([np.zeros((3, 4)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="NaN"):
        paired_effect([np.array([[1.0, np.nan]])])
    with pytest.raises(ValueError, match="no per-image"):
        paired_effect([])


def test_one_seed_is_inconclusive_whatever_the_effect():
    effect = paired_effect([np.full((1, 50), 30.0)])
    assert effect.verdict == "inconclusive" and math.isnan(effect.ci_low) and effect.effect == 30.0
    assert seeds_needed(effect, 2.0) is None


def test_probability_of_improvement_counts_seeds_with_the_claimed_sign():
    matrix = np.array([[2.0], [-1.0], [0.0], [4.0]])
    assert paired_effect([matrix]).p_improvement == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert paired_effect([matrix], direction=-1).p_improvement == pytest.approx((0 + 1 + 0.5 + 0) / 4)
    assert paired_effect([matrix], kind="similar").p_improvement == pytest.approx(1 / 4)  # |0| < m only


def test_fixed_effect_has_no_interval_and_its_sign_decides():
    assert fixed_effect(2.5).verdict == "held" and fixed_effect(-2.5).verdict == "reversed"
    assert fixed_effect(0.3, kind="similar").verdict == "held"
    assert fixed_effect(0.5).verdict == "held" and fixed_effect(0.5).p_improvement == 1.0   # a count: the sign
    assert fixed_effect(2.5).ci_low == fixed_effect(2.5).ci_high == 2.5


def test_seeds_needed_reaches_the_width_and_not_one_seed_earlier():
    rng = np.random.default_rng(5)
    matrix = _simulate(rng, 4, 1000, 1.0, 3.0, 5.0, 20.0)
    effect = paired_effect([matrix])
    n = seeds_needed(effect, 2.0)
    seed_var = np.var(matrix.mean(1), ddof=1)
    image_var = np.var(matrix.mean(0), ddof=1) / 1000
    residual = matrix - matrix.mean(1, keepdims=True) - matrix.mean(0, keepdims=True) + matrix.mean()
    noise = (residual ** 2).sum() / (3 * 999) / 1000               # seed-by-image noise, one seed's share

    def half(k):   # more seeds shrink the seed term and the seed-by-image noise, not the images' own
        return stats.t.ppf(0.975, k - 1) * math.sqrt((seed_var + noise) / k + image_var - noise / 4)

    assert n is not None and half(n) <= 2.0 < half(n - 1)
    wide = paired_effect([_simulate(rng, 3, 20, 1.0, 1.0, 40.0, 5.0)])    # the images alone: > 3 points
    assert wide.se_test * 1.96 > 3.0 and seeds_needed(wide, 3.0) is None
    assert not seeds_can_reach(wide, 3.0)     # the images' own variation alone is wider than 3 points


def test_seeds_can_reach_tells_too_many_seeds_from_too_few_images():
    """A spread over seeds of about 60 points needs about (1.96 * 60 / 2) ** 2 = 3,500 seeds for +-2: more than
    seeds_needed searches, yet seeds would reach it, since the images' own part is far below 2 points."""
    rng = np.random.default_rng(7)
    seeds_bound = paired_effect([_simulate(rng, 5, 1200, 1.0, 60.0, 1.0, 5.0)])
    floor = 1.96 * math.sqrt(seeds_bound.se_test ** 2 - seeds_bound.interaction / 5)
    assert seeds_needed(seeds_bound, 2.0) is None and floor < 0.5 and seeds_can_reach(seeds_bound, 2.0)
    assert not seeds_can_reach(paired_effect([np.full((1, 50), 3.0)]), 2.0)   # one seed: spread unknown


def test_seeds_can_reach_counts_only_the_images_own_variation():
    """se_test 1.2 over 5 seeds, nine tenths of its square the seed-by-image noise (which more seeds shrink): the
    floor is 1.96 * sqrt(1.44 - 1.296) = 0.74 < 2, though 1.96 * se_test = 2.35 > 2. At the boundary,
    1.96 * sqrt(floor) = 2 exactly when the floor is (2 / 1.96) ** 2 = 1.0412."""
    def effect(se_test, interaction):
        return Effect(effect=0.0, per_seed=(0.0, 1.0, 2.0, 3.0, 4.0), ci_low=-9.0, ci_high=9.0, p_improvement=0.5,
                      verdict="inconclusive", se_seed=3.0, se_test=se_test, n_images=100, interaction=interaction)

    assert seeds_can_reach(effect(1.2, 5 * 1.44 * 0.9), 2.0)
    assert not seeds_can_reach(effect(1.2, 0.0), 2.0)
    floor = (2.0 / stats.norm.ppf(0.975)) ** 2
    assert seeds_can_reach(effect(math.sqrt(floor - 0.01), 0.0), 2.0)
    assert not seeds_can_reach(effect(math.sqrt(floor + 0.01), 0.0), 2.0)
    assert not seeds_can_reach(effect(1.2, math.nan), 2.0)


def test_smallest_effect_is_one_point():
    assert SMALLEST_EFFECT == 1.0 == MEASURES["accuracy"]


@pytest.mark.parametrize("low, high, kind, expected", [
    (0.2, 1.4, "greater", True),      # excludes 0, reaches into (-1, 1)
    (1.0, 3.0, "greater", False),     # at least m
    (-3.0, -0.1, "greater", True),
    (-3.0, 2.0, "greater", False),    # does not exclude 0
    (0.2, 1.4, "similar", False),     # only claims of a difference
    (float("nan"), float("nan"), "greater", False),
])
def test_below_smallest_effect(low, high, kind, expected):
    assert below_smallest_effect(low, high, kind, 1.0) is expected


@pytest.mark.parametrize("low, high, paper, direction, expected", [
    (-1.35, 2.05, 13.4, 1, "smaller than the paper's"),   # SSANet's full model: the paper's +13.4 excluded
    (5.5, 10.8, 11.96, 1, "smaller than the paper's"),
    (5.5, 10.8, 8.0, 1, "as large as the paper's"),
    (5.5, 10.8, 2.0, 1, "larger than the paper's"),
    (-12.9, -4.5, 4.0, 1, "smaller than the paper's"),     # reversed: below the paper's effect on its side
    (-6.0, -2.0, -1.0, -1, "larger than the paper's"),     # a claimed decrease: -6..-2 goes further than -1
    (-6.0, -2.0, -8.0, -1, "smaller than the paper's"),
    (float("nan"), float("nan"), 3.0, 1, ""),
    (1.26, 1.26, 1.09, 1, "larger than the paper's"),          # a count with no tolerance
    (1.0, 2.0, None, 1, ""),
])
def test_against_paper(low, high, paper, direction, expected):
    assert against_paper(low, high, paper, direction) == expected


def test_against_paper_tolerance_widens_a_count():
    assert against_paper(1.26, 1.26, 1.09, 1, tolerance=1.0) == "as large as the paper's"
    assert against_paper(4.77, 4.77, 4.11, 1, tolerance=0.5) == "larger than the paper's"


def test_p_value_matches_the_interval_and_a_literal_t_test():
    rng = np.random.default_rng(11)
    matrix = _simulate(rng, 5, 200, 1.5, 2.0, 4.0, 10.0)
    effect = paired_effect([matrix])
    se = math.hypot(effect.se_seed, effect.se_test)
    # the interval's edge is where the p-value crosses 0.05: shift the mean onto the lower bound
    shifted = paired_effect([matrix - effect.ci_low])
    assert shifted.p_value == pytest.approx(0.05, abs=1e-6)
    assert (effect.p_value < 0.05) == (effect.ci_low > 0 or effect.ci_high < 0)
    assert effect.p_value > 0 and se > 0
    assert math.isnan(paired_effect([np.full((1, 5), 3.0)]).p_value)


def test_holm_by_hand():
    # sorted 0.001, 0.01, 0.02, 0.2 against 0.05/4, 0.05/3, 0.05/2, 0.05/1: 0.001 < 0.0125, 0.01 < 0.0167,
    # 0.02 < 0.025, 0.2 > 0.05 -> three rejected; NaN left out
    assert holm_rejected([0.2, 0.01, float("nan"), 0.001, 0.02]) == [False, True, False, True, True]
    assert holm_rejected([0.03, 0.04]) == [False, False]          # 0.03 > 0.05 / 2: stops at the first
    assert holm_rejected([0.01, 0.02, 0.03, 0.2]) == [True, False, False, False]   # 0.02 > 0.05 / 3
    assert holm_rejected([]) == []
    assert chance_decided(40) == pytest.approx(2.0)
