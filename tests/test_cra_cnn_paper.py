"""CRA-CNN's printed numbers (fgvc_lib.papers.cra_cnn), pinned cell by cell against the paper's tables."""
import dataclasses

import numpy as np
import pytest
import torch

from fgvc_lib.papers import cra_cnn as paper
from fgvc_lib.papers import cra_cnn_views
from fgvc_lib.study import Accuracy, Printed, Score, Study
from fgvc_lib.study.parameters import resolve


def test_table1_every_printed_cell():
    printed = {  # Table 1 of the paper: (dataset, backbone) -> (baseline, CRA-CNN)
        ("cub", "ResNet-50"): (84.2, 86.2), ("cub", "ResNet-101"): (86.1, 87.6),
        ("cars", "ResNet-50"): (90.0, 92.6), ("cars", "ResNet-101"): (91.8, 93.4),
    }
    table1 = paper.STUDY.printed["table1"]
    assert len(table1) == 4
    cells = {(d, b): (table1[f"Baseline ({b})"][d], table1[f"CRA-CNN ({b})"][d]) for d, b in printed}
    assert cells == printed
    assert all(set(row) == {"cub", "cars"} for row in table1.values())


def test_tables2_and_3_every_printed_cell():
    assert list(paper.STUDY.printed["table2"].items()) == [
        ("STNs (4 x ST-CNN 448px) [15]", {"cub": 84.1}), ("RA-CNN (scale 1+2+3) [7]", {"cub": 85.3}),
        ("Kernel Pooling [3]", {"cub": 86.2}), ("MA-CNN (L5 + L_cng) [36]", {"cub": 86.5}),
        ("ResNet-101+OSME+MAMC [28]", {"cub": 86.5}), ("PC-DenseNet-161 [6]", {"cub": 86.9}),
        ("TASN [37]", {"cub": 87.9}), ("HSE [1]", {"cub": 88.1}), ("PAIRS [9]", {"cub": 89.2}),
        ("WS-DAN [13]", {"cub": 89.4}), ("Stacked LSTM [8]", {"cub": 90.4}),
        ("Ours(ResNet-50)", {"cub": 86.7}), ("Ours(ResNet-101)", {"cub": 88.3})]
    assert list(paper.STUDY.printed["table3"].items()) == [
        ("BoostCNN [23]", {"cars": 38.5}), ("Kernel Pooling [3]", {"cars": 92.0}),
        ("RA-CNN (scale 1+2+3) [7]", {"cars": 92.5}), ("MA-CNN (L5 + L_cng) [36]", {"cars": 92.8}),
        ("ResNet-101+OSME+MAMC [28]", {"cars": 90.3}), ("MPN-COV [18]", {"cars": 93.3}), ("TASN [37]", {"cars": 93.8}),
        ("MGE-CNN [33]", {"cars": 93.9}), ("WS-DAN [13]", {"cars": 94.5}), ("EfficientNet [30]", {"cars": 94.7}),
        ("AutoAugment [2]", {"cars": 94.8}), ("Ours(ResNet-50)", {"cars": 93.3}), ("Ours(ResNet-101)", {"cars": 94.8})]
    # the view below our "Ours" row: every other method, in the paper's order, none of CRA-CNN's own rows
    assert list(paper.other_methods("cub").items())[:2] == [("STNs (4 x ST-CNN 448px) [15]", 84.1),
                                                           ("RA-CNN (scale 1+2+3) [7]", 85.3)]
    assert len(paper.other_methods("cub")) == 11 and len(paper.other_methods("cars")) == 11
    assert not any(row.startswith("Ours") for row in paper.other_methods("cars").index)


@pytest.mark.parametrize("dataset,backbone,gain,uncropped", [
    ("cub", "resnet50", 2.0, 0.5), ("cub", "resnet101", 1.5, 0.7),
    ("cars", "resnet50", 2.6, 0.7), ("cars", "resnet101", 1.6, 1.4),
])
def test_paper_effects_are_computed_from_the_tables(tmp_path, dataset, backbone, gain, uncropped):
    """The runner computes each claim's effect from the printed cells it names, in the dataset's column."""
    settings = resolve(paper.STUDY, {"profile": "paper", "dataset": dataset, "data_root": str(tmp_path),
                                     "backbone": backbone})
    claims, _ = paper.claims(settings)
    main = [c for c in claims if c.main]
    center = [c for c in claims if c.pairs == ((Accuracy("cra_cnn"), Accuracy("cra_cnn", view="uncropped")),)]
    assert len(main) == len(center) == 1
    assert paper.STUDY.paper_effect(main[0], dataset) == pytest.approx(gain)
    assert paper.STUDY.paper_effect(center[0], dataset) == pytest.approx(uncropped)
    assert center[0].printed[0][1] == Printed({"cub": "table2", "cars": "table3"}[dataset],
                                              f"Ours({paper.BACKBONE_LABELS[backbone]})")
    assert main[0].paper_setting == center[0].paper_setting == ""     # the paper's own setting


def test_a_dataset_the_paper_does_not_print_gets_no_paper_number(tmp_path):
    settings = resolve(paper.STUDY, {"profile": "paper", "dataset": "aircraft", "data_root": str(tmp_path)})
    assert [(c.table, paper.STUDY.cell_number(c, "aircraft")) for c in paper.cells(settings)] == [
        ("table1", None), ("table1", None)]
    claims, not_measured = paper.claims(settings)
    assert [paper.STUDY.paper_effect(c, "aircraft") for c in claims[:2]] == [None, None]
    assert "Table 1 on aircraft: the paper has no number for it" in not_measured


@pytest.mark.usefixtures("private_dirs")
def test_plan_pairs_baseline_and_cra_cnn_on_every_seed_with_one_recipe():
    study = Study(paper.STUDY, profile="cpu")
    settings = study.settings
    assert settings.backbone == paper.CPU_BACKBONE == "vgg16"
    assert settings.attention_size == settings.image_size // 2
    variants = study.variants
    assert variants["baseline"].seeds == variants["cra_cnn"].seeds == tuple(settings.seeds)
    assert len(settings.seeds) >= 5
    assert variants["baseline"].train == variants["cra_cnn"].train
    assert variants["stn"].train == dataclasses.replace(variants["cra_cnn"].train, on_divergence="stop")
    assert {v.data for v in variants.values()} == {(("resize_mode", "resize_crop"),)}    # sec. 4.1: random crops
    assert variants["cra_cnn"].test_views == ("uncropped",)
    config = variants["cra_cnn"].model.keywords["config"]
    assert (config.margin, config.restriction, config.pairing, config.triplet) == (0.7, "schedule", "consecutive",
                                                                                    "paper")
    assert Study(paper.STUDY, profile="paper", dataset="synthetic").settings.backbone == "resnet50"


def test_paper_recipe_decays_at_the_rescaled_milestones():
    settings = resolve(paper.STUDY, {"profile": "paper", "dataset": "synthetic"})
    full = paper.recipe(settings, 230)
    assert (full.lr, full.weight_decay, full.momentum, full.scheduler) == (1e-3, 5e-4, 0.9, "multistep")
    assert full.milestones == (50, 95, 140, 185)
    assert paper.recipe(settings, 23).milestones == (5, 10, 14, 18)     # 50/230 x 23 = 5, 95/230 x 23 = 9.5 -> 10


@pytest.mark.usefixtures("private_dirs")
def test_cells_and_claims_carry_the_papers_numbers():
    settings = resolve(paper.STUDY, {"profile": "cpu", "backbone": "resnet50"})
    cells = {(c.table, c.row): (c.measure, paper.STUDY.cell_number(c, "synthetic")) for c in paper.cells(settings)}
    assert cells == {("table1", "Baseline (ResNet-50)"): (Accuracy("baseline"), 84.2),
                     ("table1", "CRA-CNN (ResNet-50)"): (Accuracy("cra_cnn"), 86.2),
                     ("table2", "Ours(ResNet-50)"): (Accuracy("cra_cnn", view="uncropped"), 86.7)}
    claims, not_measured = paper.claims(settings)
    main = [c for c in claims if c.main]
    assert len(main) == 1 and paper.STUDY.paper_effect(main[0], "synthetic") == pytest.approx(2.0)
    uncropped = [c for c in claims if c.pairs == ((Accuracy("cra_cnn"), Accuracy("cra_cnn", view="uncropped")),)]
    assert len(uncropped) == 1 and paper.STUDY.paper_effect(uncropped[0], "synthetic") == pytest.approx(86.7 - 86.2)
    assert not any("uncropped" in note for note in not_measured)
    # the synthetic set stands in for CUB-200-2011: the paper's effect is labelled with its setting
    assert main[0].paper_setting == uncropped[0].paper_setting == "CUB-200-2011, ResNet-50"


@pytest.mark.usefixtures("private_dirs")
def test_cpu_backbone_shows_the_papers_resnet50_numbers_labelled():
    vgg = resolve(paper.STUDY, {"profile": "cpu"})
    cells = {(c.table, c.row): (paper.STUDY.cell_number(c, "synthetic"), c.paper_setting) for c in paper.cells(vgg)}
    assert cells == {("table1", "Baseline (VGG-16)"): (84.2, "CUB-200-2011, ResNet-50"),
                     ("table1", "CRA-CNN (VGG-16)"): (86.2, "CUB-200-2011, ResNet-50"),
                     ("table2", "Ours(VGG-16)"): (86.7, "CUB-200-2011, ResNet-50")}
    claims, _ = paper.claims(vgg)
    main = [c for c in claims if c.main]
    assert len(main) == 1
    assert paper.STUDY.paper_effect(main[0], "synthetic") == pytest.approx(86.2 - 84.2)
    assert main[0].paper_setting == "CUB-200-2011, ResNet-50"
    # the caveat beside the verdict: the cpu recipe's rates are chosen on validation, among three for both arms
    assert "chosen on a validation split" in main[0].note and "0.015, 0.05, 0.15" in main[0].note
    assert "ends switched on" in main[0].note
    variants = {v.name: v for v in paper.plan(vgg)}
    assert variants["baseline"].lr_trials == variants["cra_cnn"].lr_trials == (0.015, 0.05, 0.15)
    assert variants["stn"].lr_trials == (0.015, 0.05, 0.15)          # the same budget for the reference
    fixed = resolve(paper.STUDY, {"profile": "cpu", "lr_selection": "fixed"})
    assert paper.plan(fixed)[0].lr_trials == ()
    note = [c for c in paper.claims(fixed)[0] if c.main][0].note
    assert "lr 0.05 (50 times the paper's 0.001)" in note and "not chosen" in note
    uncropped = [c for c in claims if c.pairs == ((Accuracy("cra_cnn"), Accuracy("cra_cnn", view="uncropped")),)]
    assert paper.STUDY.paper_effect(uncropped[0], "synthetic") == pytest.approx(86.7 - 86.2)


@pytest.mark.usefixtures("private_dirs")
def test_every_paper_claim_is_measured_or_listed_with_a_reason():
    settings = resolve(paper.STUDY, {"profile": "cpu"})
    claims, not_measured = paper.claims(settings)
    texts = [c.text for c in claims]
    # Figure 3: one deciding measure, the other three reported as secondary; all four localization measures
    figure3 = [c for c in claims if c.text.startswith("Figure 3")]
    assert [c.pairs[0][1].name for c in figure3] == ["CRA-CNN: part_energy", "CRA-CNN: object_energy",
                                                     "CRA-CNN: part_pointing", "CRA-CNN: object_pointing"]
    assert paper.PRIMARY_LOCALIZATION == "part_energy"
    assert "decides" in figure3[0].note and all(c.note.startswith("secondary") for c in figure3[1:])
    # Figure 4: against the no-crop reference, E, and the free STN, which declares what it is
    sides = {c.pairs[0][0].name for c in claims if c.text.startswith("Figure 4")}
    assert sides == {f"whole image (no crop): {paper.ATTENTION_IOU}",
                     f"centred half crop (E of eq. 7): {paper.ATTENTION_IOU}", f"STN: {paper.ATTENTION_IOU}"}
    stn = [c for c in claims if c.pairs[0][0] == Score(f"STN: {paper.ATTENTION_IOU}")][0]
    assert "six free affine entries" in stn.text and "N_ar" in stn.note
    # convergence and overfitting: measured; overfitting is a smaller gap (direction -1), in accuracy points
    assert any("refuses to converge" in t for t in texts)
    overfit = [c for c in claims if "overfit" in c.text]
    assert len(overfit) == 2 and {c.direction for c in overfit} == {-1}
    assert {c.measured_as for c in overfit} == {"accuracy"}
    # the rest: listed with their reason
    for words in ("aligns", "state of the art", "cheap to train", "L_cntr alone", "plain STN"):
        assert any(words in line for line in not_measured), words
    # without the STN the STN claims move to the not-measured list
    no_stn = paper.claims(resolve(paper.STUDY, {"profile": "cpu", "stn": False}))
    assert not any("STN" in c.text for c in no_stn[0])
    assert any("stn=False" in line for line in no_stn[1])


@pytest.mark.usefixtures("private_dirs")
def test_plain_stn_option_adds_a_variant_and_its_claims():
    from fgvc_lib.models.baseline import cross_entropy_loss

    settings = resolve(paper.STUDY, {"profile": "cpu", "plain_stn": True})
    variants = {v.name: v for v in paper.plan(settings)}
    assert variants["plain_stn"].loss is cross_entropy_loss
    assert variants["plain_stn"].seeds == variants["stn"].seeds
    claims, not_measured = paper.claims(settings)
    assert sum("plain STN" in c.text for c in claims) == 2
    assert not any("plain STN" in line for line in not_measured)
    assert "plain_stn" not in {v.name for v in paper.plan(resolve(paper.STUDY, {"profile": "cpu"}))}


def test_cost_claim_is_the_largest_relative_difference():
    same = paper.cost_claim({"params": 100, "macs": 1000}, {"params": 100, "macs": 1000})
    assert same.pairs[0][1].value == 0.0 and same.kind == "similar"
    more = paper.cost_claim({"params": 100, "macs": 1000}, {"params": 103, "macs": 990})
    assert more.pairs[0][1].value == pytest.approx(3.0)


@pytest.mark.parametrize("params,message", [
    ({"attention_size": 16}, "parameter attention_size: 16 px is below the 32 px vgg16 needs"),
    ({"margin": -0.1}, "parameter margin: must be a number >= 0"),
    ({"restriction": "sometimes"}, "parameter restriction: got 'sometimes'"),
    ({"contrastive_pairs": "labels"}, "parameter contrastive_pairs: got 'labels'"),
    ({"backbone": "densenet161"}, "parameter backbone: unknown backbone 'densenet161'"),
])
def test_bad_parameters_stop_with_a_message(params, message):
    with pytest.raises(ValueError, match=message):
        resolve(paper.STUDY, {"profile": "cpu", **params})


class _FixedAttention:
    """A stand-in model whose ART module always samples the region ``theta``."""

    def __init__(self, theta):
        from fgvc_lib.models.cra_cnn import CRACNNConfig

        self.theta, self.config = torch.tensor(theta, dtype=torch.float32), CRACNNConfig()

    def eval(self):
        return self

    def attend(self, images):
        return {"theta": self.theta.expand(len(images), 2, 3)}


def test_attention_iou_by_hand():
    class Sample:
        images = torch.zeros(2, 3, 8, 8)
        object_boxes = np.array([[0, 0, 4, 4], [0, 0, 8, 8]], dtype=float)

    # the centred half crop (scale 0.5, align_corners) spans pixel centres 2..5 of 0..7: pixels 2-5 -> 4 x 4
    half = [[[0.5, 0, 0], [0, 0.5, 0]]]
    iou = cra_cnn_views.attention_iou(_FixedAttention(half), Sample)
    # image 0: region = rows/cols 2..5 (16 px), bird = rows/cols 0..3 (16 px, centres 0.5..3.5); overlap 2 x 2
    assert iou[0] == pytest.approx(4 / (16 + 16 - 4))
    assert iou[1] == pytest.approx(16 / 64)


def test_fixed_region_iou_by_hand():
    class Sample:
        images = torch.zeros(2, 3, 8, 8)
        object_boxes = np.array([[0, 0, 4, 4], [2, 2, 4, 4]], dtype=float)

    whole = cra_cnn_views.fixed_region_iou(Sample, cra_cnn_views.WHOLE_IMAGE_THETA)
    assert whole.tolist() == pytest.approx([16 / 64, 16 / 64])          # the box's share of the image
    from fgvc_lib.models.cra_cnn import CRACNNConfig

    centre = cra_cnn_views.fixed_region_iou(Sample, cra_cnn_views.expectation_theta(CRACNNConfig()))
    # E: the centred half crop, pixels 2..5; box 0 covers pixels 0..3 (overlap 2 x 2), box 1 pixels 2..5
    assert centre.tolist() == pytest.approx([4 / 28, 1.0])


def test_loss_drop_and_generalization_gap_by_hand():
    from fgvc_lib.engine import History

    history = History([{"train_ce_ar": 2.0, "train_acc": 0.25}, {"train_ce_ar": 1.5, "train_acc": 0.5},
                       {"train_ce_ar": 0.5, "train_acc": 0.75}])
    assert cra_cnn_views.loss_drop(history, "train_ce_ar") == pytest.approx(75.0)    # (2 - 0.5) / 2
    diverged = History([{"train_ce_ar": 2.0, "train_acc": 0.25}, {"train_ce_ar": 3.0, "train_acc": 0.5},
                        {"diverged": True}])
    assert cra_cnn_views.loss_drop(diverged, "train_ce_ar") == pytest.approx(-50.0)  # last finite epoch
    assert cra_cnn_views.loss_drop(History([{"diverged": True}]), "train_ce_ar") == 0.0

    class Run:
        def __init__(self, history):
            self.history = history

        def correct(self):
            return np.array([100.0, 0.0, 100.0, 100.0])

    assert cra_cnn_views.generalization_gap(Run(history)).tolist() == [-25.0, 75.0, -25.0, -25.0]
    assert cra_cnn_views.generalization_gap(Run(diverged)).mean() == pytest.approx(50.0 - 75.0)
