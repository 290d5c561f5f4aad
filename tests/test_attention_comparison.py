"""Notebook 06's declaration (fgvc_lib.papers.attention_comparison): one recipe for every arm, each method the
model its own notebook builds, and the oracle share's interval against a literal Fieller computation."""
import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from fgvc_lib.papers import attention_comparison as comparison
from fgvc_lib.study import Study
from fgvc_lib.study.jobs import describe


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("comparison")
        for name in ("FGVC_RESULTS_DIR", "FGVC_RUNS_DIR", "FGVC_CACHE_DIR"):
            mp.setenv(name, str(root / name.lower()))
        yield Study(comparison.STUDY, profile="smoke", seeds="0,1")


def test_every_arm_trains_with_one_recipe_on_the_same_seeds(study):
    """One recipe but for the rate, which the baseline and each method (and SSANet's reference row) choose among
    the same candidates, 0.1 to 3 times the baseline's 0.05; the oracles take the baseline's."""
    base = study.variants[comparison.BASELINE]
    common = (0.005, 0.015, 0.05, 0.15)
    tuned = {comparison.BASELINE, "cra_cnn", "cra_smra", "clan", "recurrent_attention", "ssanet",
             "ssanet_no_attention"}
    for name, variant in study.variants.items():
        assert variant.seeds == (0, 1)
        if name in tuned:
            assert variant.lr_trials == pytest.approx(common) and not variant.lr_from, name
        else:
            assert variant.lr_from == comparison.BASELINE and not variant.lr_trials, name
        own = dataclasses.replace(variant.train, loss_weights={}, on_divergence="raise")
        assert own == base.train, name
    assert tuned == {comparison.BASELINE} | {m.arm for m in comparison.METHODS + comparison.REFERENCES}
    for method in comparison.METHODS:
        assert study.variants[method.arm].data == ()   # the common input pipeline (CRA-CNN's crop dropped)
    assert study.backbone_spec.output_stride == comparison.OUTPUT_STRIDES["smoke"]


def test_with_fixed_rates_every_arm_trains_at_the_baseline_s(tmp_path, monkeypatch):
    """No trials, and one common rate (not each method's own paper rate under the baseline's schedule)."""
    for name in ("FGVC_RESULTS_DIR", "FGVC_RUNS_DIR", "FGVC_CACHE_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    fixed = Study(comparison.STUDY, profile="smoke", seeds="0", lr_selection="fixed")
    assert {v.train.lr for v in fixed.variants.values()} == {fixed.variants[comparison.BASELINE].train.lr}
    assert not any(v.lr_trials or v.lr_from for v in fixed.variants.values())


def test_no_method_trains_a_part_at_another_rate_and_only_ssanet_freezes(study):
    """The CPU profiles' models carry no learning-rate multiplier of their papers; SSANet (and its own reference
    row) keep their frozen feature extractor, every other arm trains every parameter."""
    for name in study.variants:
        model = study.untrained_model(name)
        groups = getattr(model, "lr_groups", None)
        assert all(multiplier == 1.0 for _, _, multiplier in (groups() if groups else [])), name
        frozen = any(not p.requires_grad for p in model.parameters())
        assert frozen == name.startswith("ssanet"), name


def test_each_method_is_the_model_its_own_notebook_builds(study):
    for method in comparison.METHODS + comparison.REFERENCES:
        paper, own = comparison.paper_settings(method.module, study.settings)
        source = {v.name: v for v in paper.plan(own)}[method.variant(own)]
        arm = study.variants[method.arm]
        assert describe(arm.model) == describe(source.model), method.arm
        assert describe(arm.loss) == describe(source.loss), method.arm
        assert arm.train.loss_weights == source.train.loss_weights


def test_the_oracles_are_notebook_zeros(study):
    from fgvc_lib.papers import synthetic_dataset

    _, zero = comparison.paper_settings("synthetic_dataset", study.settings)
    planned = {v.name: v for v in synthetic_dataset.plan(zero)}
    for name in comparison.ORACLES:
        assert study.variants[name].data == planned[name].data
        assert describe(study.variants[name].model) == describe(planned[name].model)
    assert set(comparison.KIND_ORACLE) == {m.kind for m in comparison.METHODS}


def _fake(per_seed_gains):
    """A study whose arms score ``k`` of 400 on every image of a seed (per-image values the verdict rule accepts
    as they come): the images do not vary, the test-set term vanishes and the interval is Student's t over seeds."""
    images = 400

    def correct(count):
        return np.full(images, 100.0 * count / images)

    arms = {arm: {seed: correct(count) for seed, count in enumerate(counts)} for arm, counts in per_seed_gains.items()}
    return SimpleNamespace(per_image=lambda measure: arms[measure.variant])


def test_the_oracle_share_interval_is_fiellers():
    # per seed, images right: baseline 100; oracle 100 + c; method 100 + g (test images identical across seeds)
    c = np.array([60, 80, 70, 90, 75])
    g = np.array([30, 36, 41, 40, 28])
    fake = _fake({"baseline": [100] * 5, "oracle": list(100 + c), "method": list(100 + g)})
    share, low, high = comparison.oracle_share(fake, "method", "oracle")
    # literal Fieller: the r with (mean(g) - r mean(c))^2 = t^2 var(g - r c) / n, in points of 400 images
    gp, cp, n = g / 4.0, c / 4.0, len(g)
    t = stats.t.ppf(0.975, n - 1)
    vg, vc, cov = np.var(gp, ddof=1), np.var(cp, ddof=1), np.cov(gp, cp, ddof=1)[0, 1]
    a = cp.mean() ** 2 - t ** 2 * vc / n
    b = -2 * (gp.mean() * cp.mean() - t ** 2 * cov / n)
    q = gp.mean() ** 2 - t ** 2 * vg / n
    roots = sorted(np.roots([a, b, q]).real)
    assert share == pytest.approx(gp.mean() / cp.mean())
    assert low == pytest.approx(roots[0], abs=0.011) and high == pytest.approx(roots[1], abs=0.011)


def test_a_share_is_given_only_where_the_oracle_pays():
    import pandas as pd

    label = comparison.ORACLES["oracle-pool-head"][0]
    by_text = pd.DataFrame({"ci_low": [comparison.synthetic_dataset.CONTROL_GAIN, 4.9]},
                           index=[comparison.claim_text(label), "other"])
    assert comparison.oracle_pays(by_text, "oracle-pool-head") == "pays"
    assert comparison.oracle_pays(by_text.assign(ci_low=[4.9, 0.0]), "oracle-pool-head") == "does not pay"
    assert comparison.KIND_ORACLE == {"zoom": "oracle-zoom-head", "spatial": "oracle-pool-head"}   # the same region
    assert comparison.oracle_pays(by_text, "oracle-zoom-head") == "not measured"


def test_an_oracle_gain_not_told_from_zero_gives_an_unbounded_share():
    fake = _fake({"baseline": [100] * 4, "oracle": [130, 70, 110, 90], "method": [110, 105, 100, 108]})
    share, low, high = comparison.oracle_share(fake, "method", "oracle")
    assert math.isinf(low) or math.isinf(high)


def test_an_untrained_model_builds_no_weights_not_even_a_factory_s_own_backbone(study, monkeypatch):
    """The recurrent attention's local stream builds its own backbone inside the model factory; an untrained model
    (for a checkpoint, a count or the cost plan's timing) must not train the embedded pretraining for it (a plan
    of the cpu profile trained the 30-epoch pretraining that way, 2026-12-05)."""
    import fgvc_lib.pretraining as pretraining

    def refuse(*args, **kwargs):
        raise AssertionError("an untrained model asked for pretrained weights")

    monkeypatch.setattr(pretraining, "pretrained_backbone", refuse)
    monkeypatch.setattr(pretraining, "synthetic_pretrained_state", refuse)
    assert study.profile.pretrained == "synthetic"
    study.untrained_model("recurrent_attention")   # 04's arm: a patch backbone of its own
    with pytest.raises(AssertionError, match="pretrained weights"):
        study.backbone_spec.build()                  # outside the context, weights are still asked for
