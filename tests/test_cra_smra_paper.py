"""CRA-SMRA's surviving numbers (fgvc_lib.papers.cra_smra), pinned against the paper's prose, notebook 02's
study declaration, and the stage-map scores of Figure 4's claim against literal evaluations."""
import numpy as np
import pytest
import torch

from fgvc_lib.papers import cra_smra as paper
from fgvc_lib.papers import cra_smra_views
from fgvc_lib.study import Accuracy, Score, Study
from fgvc_lib.study.parameters import resolve


def test_table3_gains_as_the_text_states_them():
    # sec. 4.3: "increase by over 1.3 %, 1.4 %, 0.9 %, and 1.4 %" (CRAM) and "0.4 %, 0.4 %, 0.1 % and 0.2 %" (SMRAM)
    assert paper.CRAM_GAIN == {"cub": 1.3, "aircraft": 1.4, "cars": 0.9, "dogs": 1.4}
    assert paper.SMRAM_GAIN == {"cub": 0.4, "aircraft": 0.4, "cars": 0.1, "dogs": 0.2}
    assert {d: paper.total_gain(d) for d in paper.DATASETS} == pytest.approx(
        {"cub": 1.7, "aircraft": 1.8, "cars": 1.0, "dogs": 1.6})


def test_table2_gaps_as_the_text_states_them():
    assert paper.TABLE2_GAPS["cub"] == {
        "DeepLAC (part annotations)": 9.1, "Part-RCNN (part annotations)": 7.8, "RA-CNN (VGG)": 4.1, "NTS": 1.9,
        "PCA-Net": 1.1, "MGE-CNN": 0.9, "S3N": 0.9, "FDL": 0.8, "API-Net": 1.6}
    assert paper.TABLE2_GAPS["aircraft"] == {"NTS": 1.8, "CIN": 0.6, "API-Net": 0.2, "ACNet": 0.8, "PCA-Net": 0.8,
                                             "S3N": 0.4}
    assert paper.TABLE2_GAPS["cars"] == paper.TABLE2_GAPS["dogs"] == {"API-Net": -0.1}
    assert (paper.BEST_DELTA, paper.BEST_GAMMA, paper.OMEGA, paper.LOSS_WEIGHTS) == (0.9, 1.0, 0.5, (2.0, 1.0, 1.0))


@pytest.mark.usefixtures("private_dirs")
def test_plan_trains_table3_on_every_seed_and_the_sweeps_on_the_first():
    study = Study(paper.STUDY, profile="cpu")
    settings = study.settings
    assert settings.backbone == "vgg16" and settings.output_stride == 8
    variants = study.variants
    seeds = tuple(settings.seeds)
    assert all(variants[name].seeds == seeds for name in paper.VARIANTS) and len(seeds) >= 5
    sweeps = {name: v for name, v in variants.items() if name.startswith("cram_smram-")}
    assert sorted(sweeps) == ["cram_smram-delta0.5", "cram_smram-delta0.7", "cram_smram-delta1",
                              "cram_smram-gamma0.5", "cram_smram-gamma2"]
    assert all(v.seeds == seeds[:3] for v in sweeps.values())
    assert all(v.train == variants["backbone"].train for v in variants.values())   # one recipe
    config = lambda name: variants[name].model.keywords["config"]  # noqa: E731
    assert (config("backbone").attention, config("cbam").attention, config("cram").smram,
            config("cram_smram").smram) == ("none", "cbam", False, True)
    assert (config("cram_smram-delta0.7").delta, config("cram_smram-gamma2").gamma) == (0.7, 2.0)
    assert paper.sweep_variant(settings, "gamma", 0.0) == "cram"    # no L_div: SMRAM changes nothing
    assert paper.sweep_variant(settings, "delta", 0.9) == "cram_smram"
    paper_settings = resolve(paper.STUDY, {"profile": "paper", "dataset": "synthetic"})
    assert paper._rates(paper_settings) == pytest.approx((2e-4, 6e-3))
    assert paper.model_config(paper_settings, "cram").cram_lr_multiplier == pytest.approx(30.0)
    assert paper_settings.backbone == "resnet50" and paper_settings.output_stride is None
    # the room table reads the run's network: every site at stride 8 in the cpu profile, 8/16/32 as published
    assert list(paper.attention_sites(settings).values()) == [8, 8, 8]
    assert list(paper.attention_sites(resolve(paper.STUDY, {"profile": "smoke"})).values()) == [8, 16, 32]


def test_claims_carry_the_texts_gains_for_resnet50_only():
    settings = resolve(paper.STUDY, {"profile": "cpu", "backbone": "resnet50"})
    claims, _ = paper.claims(settings)
    by_pair = {c.pairs[0]: c for c in claims}
    assert by_pair[(Accuracy("backbone"), Accuracy("cram_smram"))].paper_effect == pytest.approx(1.7)
    assert by_pair[(Accuracy("backbone"), Accuracy("cram_smram"))].main
    assert by_pair[(Accuracy("backbone"), Accuracy("cram"))].paper_effect == 1.3
    assert by_pair[(Accuracy("cram"), Accuracy("cram_smram"))].paper_effect == 0.4
    assert by_pair[(Accuracy("cbam"), Accuracy("cram"))].paper_effect is None
    overlap = by_pair[(Score(f"+ CRAM: {paper.MAP_OVERLAP}"), Score(f"+ CRAM + SMRAM: {paper.MAP_OVERLAP}"))]
    assert overlap.direction == -1
    vgg = resolve(paper.STUDY, {"profile": "cpu"})
    assert all(c.paper_effect is None for c in paper.claims(vgg)[0])


@pytest.mark.parametrize("params,message", [
    ({"delta": 1.5}, "parameter delta: must be in \\(0, 1\\]"),
    ({"omega": 0.0}, "parameter omega: must be in \\(0, 1\\]"),
    ({"gamma": -1}, "parameter gamma: must be a number >= 0"),
    ({"variant": "se"}, "parameter variant: got 'se'"),
    ({"backbone": "resnet34"}, "parameter backbone: unknown backbone 'resnet34'"),
])
def test_bad_parameters_stop_with_a_message(params, message):
    with pytest.raises(ValueError, match=message):
        resolve(paper.STUDY, {"profile": "cpu", **params})


def test_stage_map_scores_by_hand(monkeypatch):
    # two 8 x 8 images; part boxes (x, y, w, h): image 0 has parts A (top-left) and B (bottom-right)
    maps = torch.zeros(2, 3, 8, 8)
    maps[0, 0, 1, 1] = maps[0, 1, 6, 6] = maps[0, 2, 1, 2] = 1.0     # stages peak on A, B, A
    maps[1, :, 4, 4] = 1.0                                         # every stage peaks at the same spot
    monkeypatch.setattr(cra_smra_views, "upsampled_stage_maps", lambda model, images: maps)

    class Sample:
        images = torch.zeros(2, 3, 8, 8)
        has_parts = True
        part_boxes = [[(0, 0, 4, 4), (5, 5, 3, 3)], [(3, 3, 3, 3)]]

    scores = cra_smra_views.stage_map_scores(None, Sample)
    assert scores["distinct parts"] == pytest.approx([100.0 * 2 / 2, 100.0 * 1 / 1])
    assert scores["stage3 part pointing"] == pytest.approx([100, 100])
    # overlap, literally: each map minus its minimum, over its sum; h = sum_j max_l / 3; (1 - h) / (1 - 1/3)
    expected = []
    for image in range(2):
        dists = []
        for stage in range(3):
            m = maps[image, stage].numpy().astype(float)
            m = m - m.min()
            dists.append(m / m.sum())
        h = sum(max(d[y, x] for d in dists) for y in range(8) for x in range(8)) / 3
        expected.append(100.0 * (1 - h) / (1 - 1 / 3))
    assert scores["stage maps overlap"] == pytest.approx(expected)
    assert expected == pytest.approx([0.0, 100.0])


def test_stage_map_scores_without_parts_give_the_overlap_alone(monkeypatch):
    maps = torch.zeros(1, 3, 4, 4)
    maps[0, :, 0, 0] = 1.0
    monkeypatch.setattr(cra_smra_views, "upsampled_stage_maps", lambda model, images: maps)

    class Sample:
        images = torch.zeros(1, 3, 4, 4)
        has_parts = False
        part_boxes = [[]]

    assert list(cra_smra_views.stage_map_scores(None, Sample)) == ["stage maps overlap"]
