"""Notebook plumbing: parameter checks, pretraining pieces, confusion and localization helpers."""
import numpy as np
import pytest
import torch

from fgvc_lib.backbones import build_backbone
from fgvc_lib.experiment import parse_seeds, resolve_settings
from fgvc_lib.pretraining import PretrainingConfig


def test_settings_fill_defaults_from_the_profile():
    settings = resolve_settings("smoke")
    assert settings.profile.name == "smoke" and settings.dataset == "synthetic"
    assert settings.seeds == [0] and settings.epochs == 1 and settings.image_size == 64
    custom = resolve_settings("cpu", seeds="3,4", epochs=2, image_size=80, batch_size=8, backbone="resnet50")
    assert (custom.seeds, custom.epochs, custom.image_size, custom.batch_size) == ([3, 4], 2, 80, 8)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(profile="laptop"), ValueError, "valid profiles: smoke, cpu, paper"),
    (dict(backbone="alexnet"), ValueError, "valid here: vgg16"),
    (dict(backbone="resnet34", backbones=("vgg16",)), ValueError, "valid here: vgg16"),
    (dict(dataset="inat"), ValueError, "valid datasets"),
    (dict(dataset="cub"), ValueError, "needs data_root"),
    (dict(dataset="cub", data_root="/no/such/folder"), FileNotFoundError, "is not a folder"),
    (dict(epochs=-1), ValueError, "epochs must be a non-negative integer"),
    (dict(image_size=16), ValueError, "below the minimum 32"),
    (dict(seeds="a,b"), ValueError, "comma-separated integers"),
])
def test_bad_parameters_stop_before_any_work(kwargs, error, message):
    with pytest.raises(error, match=message):
        resolve_settings(**{"profile": "smoke", **kwargs})


def test_parse_seeds():
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    assert parse_seeds(3) == [0, 1, 2]
    assert parse_seeds([5]) == [5]


def test_pretraining_cache_key_changes_with_every_setting():
    base = PretrainingConfig()
    assert base.key("vgg16", 0.125) == PretrainingConfig().key("vgg16", 0.125)
    assert base.key("vgg16", 0.125) != base.key("vgg16", 0.25)
    assert base.key("vgg16", 0.125) != PretrainingConfig(epochs=3).key("vgg16", 0.125)


def test_synthetic_pretraining_runs_caches_and_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path))
    options = dict(image_size=64, epochs=1, num_classes=4, train_per_class=4, max_batches=1, batch_size=8)
    first = build_backbone("vgg16", pretrained="synthetic", width=0.125, batch_norm=True, progress=False,
                           **options)
    files = list((tmp_path / "pretrained").glob("*.pt"))
    assert len(files) == 1 and "vgg16_bn" in files[0].name
    second = build_backbone("vgg16", pretrained="synthetic", width=0.125, batch_norm=True, progress=False,
                            **options)
    assert second.pretrained == "synthetic" and second.batch_norm
    assert torch.equal(first.net.features[0].weight, second.net.features[0].weight)
    assert torch.equal(first.net.features[1].running_mean, second.net.features[1].running_mean)
    fresh = build_backbone("vgg16", width=0.125, batch_norm=True)
    assert not torch.equal(first.net.features[0].weight, fresh.net.features[0].weight)


def test_vgg_batch_norm_keeps_the_stage_names():
    plain, with_bn = build_backbone("vgg16", width=0.125), build_backbone("vgg16", width=0.125, batch_norm=True)
    assert with_bn.batch_norm and not plain.batch_norm
    assert plain.stage_names == with_bn.stage_names and plain.stage_channels == with_bn.stage_channels
    out = with_bn(torch.randn(1, 3, 64, 64), ["conv4_3", "conv5_3"])
    assert out["conv5_3"].shape == (1, 64, 4, 4) and (out["conv4_3"] >= 0).all()  # taps after the ReLU
    with pytest.raises(ValueError, match="batch_norm is a VGG option"):
        build_backbone("resnet50", width=0.125, batch_norm=True)


def test_confusion_helpers_on_a_synthetic_split(tmp_path, monkeypatch):
    from fgvc_lib import confusion
    from fgvc_lib.data import build_dataset
    from fgvc_lib.data.synthetic import SyntheticConfig

    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path))
    data = build_dataset("synthetic", None, "test",
                         config=SyntheticConfig(num_classes=6, train_per_class=2, test_per_class=2, image_size=64))
    targets = torch.tensor(data.targets)
    logits = torch.nn.functional.one_hot(targets, 6).float()
    wrong = data.nearest_classes(0)[0]
    logits[0] = torch.nn.functional.one_hot(torch.tensor(wrong), 6).float()  # one near-class error
    cm = confusion.confusion_matrix(logits, targets, 6)
    assert cm.sum() == len(data) and np.trace(cm) == len(data) - 1
    table = confusion.errors_by_distance(cm, data)
    assert table["expected_share"].sum() == pytest.approx(1.0)
    assert table.loc[1, "errors"] == 1 and table.loc[1, "error_share"] == 1.0
    pairs = confusion.most_confused_pairs(cm, data)
    assert len(pairs) == 1 and pairs.loc[0, "attributes_differing"] == 1


def test_localization_scores_a_perfect_and_a_wrong_map(tmp_path, monkeypatch):
    from fgvc_lib import localization
    from fgvc_lib.cam import box_mask
    from fgvc_lib.data import build_dataset
    from fgvc_lib.data.synthetic import SyntheticConfig
    from fgvc_lib.data.transforms import build_transforms

    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path))
    data = build_dataset("synthetic", None, "test", build_transforms(64, train=False),
                         config=SyntheticConfig(num_classes=6, train_per_class=2, test_per_class=2, image_size=64))
    sample = localization.cam_sample(data, 4)
    assert sample.images.shape == (4, 3, 64, 64) and sample.has_parts
    on_part = np.stack([box_mask((64, 64), boxes[0]).astype(np.float32) for boxes in sample.part_boxes])
    scores = localization.score_cams(on_part, sample)
    assert scores["part_pointing"] == 1.0 and scores["part_energy"] > 0.99
    assert 0 < scores["part_chance"] < 0.2
    corner = np.zeros((4, 64, 64), dtype=np.float32)
    corner[:, 0, 0] = 1.0
    assert localization.score_cams(corner, sample)["part_pointing"] == 0.0


def test_colour_histogram_classifier_separates_colour_classes():
    from fgvc_lib.colour_baseline import colour_histogram_accuracy
    from PIL import Image

    class Flat:
        def __init__(self, n):
            self.classes = ["red", "blue"]
            self.targets = [i % 2 for i in range(n)]

        def __len__(self):
            return len(self.targets)

        def load_image(self, i):
            return Image.new("RGB", (8, 8), (250, 10, 10) if self.targets[i] == 0 else (10, 10, 250))

    result = colour_histogram_accuracy(Flat(8), Flat(6))
    assert result["test_acc"] == 1.0 and result["chance"] == 0.5


def test_pretraining_on_first_use_draws_no_more_random_numbers_than_a_cache_hit(tmp_path, monkeypatch):
    """A cold cache must not change the runs that follow (their initialisation and data order)."""
    import random

    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path))
    options = dict(image_size=64, epochs=1, num_classes=4, train_per_class=4, max_batches=1, batch_size=8)
    after = []
    for _ in ("cold", "warm"):
        torch.manual_seed(7)
        random.seed(7)
        np.random.seed(7)
        build_backbone("vgg16", pretrained="synthetic", width=0.125, batch_norm=True, progress=False, **options)
        after.append((torch.rand(3), random.random(), np.random.rand()))
    assert len(list((tmp_path / "pretrained").glob("*.pt"))) == 1
    assert torch.equal(after[0][0], after[1][0]) and after[0][1:] == after[1][1:]
