"""CRA-CNN's printed numbers (fgvc_lib.papers.cra_cnn), pinned cell by cell against the paper's tables."""
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
