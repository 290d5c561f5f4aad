"""CRA-CNN's printed numbers (fgvc_lib.papers.cra_cnn), pinned cell by cell against the paper's tables."""
import dataclasses

import pytest

from fgvc_lib.papers import cra_cnn as paper


def test_table1_every_printed_cell():
    printed = {  # Table 1 of the paper: (dataset, backbone) -> (baseline, CRA-CNN)
        ("cub", "resnet50"): (84.2, 86.2), ("cub", "resnet101"): (86.1, 87.6),
        ("cars", "resnet50"): (90.0, 92.6), ("cars", "resnet101"): (91.8, 93.4),
    }
    cells = {(d, b): (row["baseline"], row["cra_cnn"]) for d, by in paper.TABLE1.items() for b, row in by.items()}
    assert cells == printed


def test_tables2_and_3_every_printed_cell():
    assert paper.OURS_UNCROPPED == {"cub": {"resnet50": 86.7, "resnet101": 88.3},
                                    "cars": {"resnet50": 93.3, "resnet101": 94.8}}
    assert [(r.label, r.top1["cub"]) for r in paper.TABLE2_OTHERS] == [
        ("STNs (4 x ST-CNN 448px) [15]", 84.1), ("RA-CNN (scale 1+2+3) [7]", 85.3), ("Kernel Pooling [3]", 86.2),
        ("MA-CNN (L5 + L_cng) [36]", 86.5), ("ResNet-101+OSME+MAMC [28]", 86.5), ("PC-DenseNet-161 [6]", 86.9),
        ("TASN [37]", 87.9), ("HSE [1]", 88.1), ("PAIRS [9]", 89.2), ("WS-DAN [13]", 89.4),
        ("Stacked LSTM [8]", 90.4)]
    assert [(r.label, r.top1["cars"]) for r in paper.TABLE3_OTHERS] == [
        ("BoostCNN [23]", 38.5), ("Kernel Pooling [3]", 92.0), ("RA-CNN (scale 1+2+3) [7]", 92.5),
        ("MA-CNN (L5 + L_cng) [36]", 92.8), ("ResNet-101+OSME+MAMC [28]", 90.3), ("MPN-COV [18]", 93.3),
        ("TASN [37]", 93.8), ("MGE-CNN [33]", 93.9), ("WS-DAN [13]", 94.5), ("EfficientNet [30]", 94.7),
        ("AutoAugment [2]", 94.8)]


@pytest.mark.parametrize("dataset,backbone,gain,uncropped", [
    ("cub", "resnet50", 2.0, 0.5), ("cub", "resnet101", 1.5, 0.7),
    ("cars", "resnet50", 2.6, 0.7), ("cars", "resnet101", 1.6, 1.4),
])
def test_paper_effects_are_computed_from_the_tables(dataset, backbone, gain, uncropped):
    assert paper.improvement_over_baseline(dataset, backbone) == pytest.approx(gain)
    assert paper.uncropped_gain(dataset, backbone) == pytest.approx(uncropped)


# ------------------------------------------------------------------ notebook 01's study declaration
import numpy as np  # noqa: E402
import torch  # noqa: E402

from fgvc_lib.papers import cra_cnn_views  # noqa: E402
from fgvc_lib.study import Accuracy, Study  # noqa: E402
from fgvc_lib.study.parameters import resolve  # noqa: E402


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
    cells = {(c.table, c.row): (c.measure, c.paper) for c in paper.cells(settings)}
    assert cells == {("table1", "Baseline (ResNet-50)"): (Accuracy("baseline"), 84.2),
                     ("table1", "CRA-CNN (ResNet-50)"): (Accuracy("cra_cnn"), 86.2),
                     ("table2", "Ours(ResNet-50)"): (Accuracy("cra_cnn", view="uncropped"), 86.7)}
    claims, not_measured = paper.claims(settings)
    main = [c for c in claims if c.main]
    assert len(main) == 1 and main[0].paper_effect == pytest.approx(2.0)
    uncropped = [c for c in claims if c.pairs == ((Accuracy("cra_cnn"), Accuracy("cra_cnn", view="uncropped")),)]
    assert len(uncropped) == 1 and uncropped[0].paper_effect == pytest.approx(86.7 - 86.2)
    assert not any("uncropped" in note for note in not_measured)
    vgg = resolve(paper.STUDY, {"profile": "cpu"})
    assert [c.paper for c in paper.cells(vgg)] == [None, None, None]
    assert [c for c in paper.claims(vgg)[0] if c.main][0].paper_effect is None


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
