"""Notebook plumbing: the common notebook parameters (fgvc_lib.study.parameters), the embedded
pretraining (fgvc_lib.pretraining), and the confusion, localization and colour-baseline helpers."""
import numpy as np
import pytest
import torch

from fgvc_lib import pretraining
from fgvc_lib.backbones import BACKBONE_NAMES, build_backbone
from fgvc_lib.pretraining import PretrainingConfig, pretrained_backbone
from fgvc_lib.study import Paper
from fgvc_lib.study.parameters import parse_seeds, resolve


def _paper(**changes):
    """A paper with no variant of its own: only the common parameters to check."""
    fields = dict(key="params", notebook="98_params", title="parameters only", backbones=BACKBONE_NAMES,
                  plan=lambda settings: [], recipe_epochs=30, recipe_batch_size=12)
    return Paper(**{**fields, **changes})


def _resolve(paper=None, **values):
    return resolve(paper or _paper(), {"profile": "smoke", **values})


def test_settings_fill_defaults_from_the_profile(tmp_path, monkeypatch):
    settings = _resolve()
    assert settings.profile.name == "smoke" and settings.dataset == "synthetic"
    assert settings.datasets[0].root is None and settings.backbone == "vgg16"   # the paper's first backbone
    assert settings.seeds == [0] and settings.epochs == 1 and settings.image_size == 64
    assert settings.batch_size == 16 and settings.execution.executor == "auto"
    assert (settings.execution.loader_workers, settings.execution.compile, settings.execution.plan_only) == \
        (None, False, False)
    chosen = _resolve(loader_workers=3, compile=True, plan_only=True).execution
    assert (chosen.loader_workers, chosen.compile, chosen.plan_only) == (3, True, True)
    assert _resolve(loader_workers="").execution.loader_workers is None
    custom = _resolve(profile="cpu", seeds="3,4", epochs=2, image_size=80, batch_size=8, backbone="resnet50")
    assert (custom.seeds, custom.epochs, custom.image_size, custom.batch_size) == ([3, 4], 2, 80, 8)
    assert custom.backbone == "resnet50" and _resolve(seeds=2).seeds == [0, 1]
    # the paper profile takes the paper's recipe where the profile leaves it open
    paper_run = _resolve(profile="paper", dataset="synthetic")
    assert (paper_run.epochs, paper_run.batch_size, paper_run.image_size) == (30, 12, 448)
    # profile None: $FGVC_PROFILE, else cpu
    monkeypatch.setenv("FGVC_PROFILE", "smoke")
    assert resolve(_paper(), {}).profile.name == "smoke"
    monkeypatch.delenv("FGVC_PROFILE")
    assert resolve(_paper(), {"profile": None}).profile.name == "cpu"
    # a real dataset's folder is kept as an absolute path
    monkeypatch.chdir(tmp_path)
    cub = _resolve(dataset="cub", data_root=".")
    assert cub.dataset == "cub" and cub.datasets[0].root == str(tmp_path)


@pytest.mark.parametrize("values, error, message", [
    (dict(profile="laptop"), ValueError, "valid profiles: smoke, cpu, paper"),
    (dict(backbone="alexnet"), ValueError, "parameter backbone: unknown backbone 'alexnet'; valid here: vgg16, "),
    (dict(dataset="inat"), ValueError, "parameter dataset: unknown dataset 'inat'; valid: "),
    (dict(dataset="synthetic,cub"), ValueError, "parameter dataset: this notebook takes 1 dataset"),
    (dict(dataset="cub"), ValueError, "parameter data_root: dataset 'cub' needs data_root"),
    (dict(dataset="cub", data_root="/no/such/folder"), FileNotFoundError, "'/no/such/folder' is not a folder"),
    (dict(dataset="cub", data_root="/tmp,/tmp"), ValueError, "give one folder per dataset"),
    (dict(epochs=-1), ValueError, "parameter epochs: must be an integer >= 0; got -1"),
    (dict(epochs=2.5), ValueError, "parameter epochs: must be an integer >= 0"),
    (dict(batch_size=True), ValueError, "parameter batch_size: must be an integer >= 0"),
    (dict(image_size=16), ValueError, "parameter image_size: 16 is below the minimum 32 that vgg16 needs"),
    (dict(seeds="a,b"), ValueError, "parameter seeds: must be comma-separated integers like '0,1,2'; got 'a,b'"),
    (dict(seeds="1,1"), ValueError, "parameter seeds: names a seed twice"),
    (dict(executor="gpu"), ValueError, "parameter executor: got 'gpu'; valid: 'auto', 'inline', 'local'"),
    (dict(workers=-2), ValueError, "parameter workers: must be an integer >= 0"),
    (dict(loader_workers=-1), ValueError, "parameter loader_workers: must be an integer >= 0; got -1"),
    (dict(loader_workers=1.5), ValueError, "parameter loader_workers: must be an integer >= 0"),
    (dict(compile="yes"), ValueError, "parameter compile: must be True or False; got 'yes'"),
    (dict(plan_only=1), ValueError, "parameter plan_only: must be True or False; got 1"),
    (dict(lr=0.1), ValueError, r"unknown parameter\(s\) lr; valid: profile, dataset, data_root, backbone"),
])
def test_bad_parameters_stop_before_any_work(values, error, message):
    with pytest.raises(error, match=message):
        _resolve(**values)


def test_backbones_and_datasets_are_checked_against_the_paper(monkeypatch):
    with pytest.raises(ValueError, match="unknown backbone 'resnet34'; valid here: vgg16$"):
        _resolve(_paper(backbones=("vgg16",)), backbone="resnet34")
    two = _paper(max_datasets=2)
    both = _resolve(two, dataset="synthetic, cub", data_root="/tmp,/tmp")
    assert [d.name for d in both.datasets] == ["synthetic", "cub"] and both.datasets[1].root == "/tmp"
    with pytest.raises(ValueError, match="names a dataset twice"):
        _resolve(two, dataset="synthetic,synthetic")
    monkeypatch.delenv("SLURM_PARTITION", raising=False)
    with pytest.raises(ValueError, match="parameter slurm_partition: executor='slurm' needs the partition"):
        _resolve(executor="slurm")
    monkeypatch.setenv("SLURM_PARTITION", "gpu")
    assert _resolve(executor="slurm").execution.executor == "slurm"


def test_parse_seeds():
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    assert parse_seeds(3) == [0, 1, 2]
    assert parse_seeds([5]) == [5]
    for bad, message in ((0, "a seed count must be >= 1"), (True, "a count or a list"), ("1,x", "comma-separated"),
                         ([2, 2], "names a seed twice")):
        with pytest.raises(ValueError, match=message):
            parse_seeds(bad)


# ---------------------------------------------------------------- the embedded pretraining
PRETRAINING = dict(image_size=64, epochs=1, num_classes=4, train_per_class=4, max_batches=1, batch_size=8)


def test_pretraining_cache_key_changes_with_every_setting(monkeypatch):
    base = PretrainingConfig()
    key = base.key("vgg16", 0.125)
    assert key == PretrainingConfig().key("vgg16", 0.125)
    assert key != base.key("vgg16", 0.25) and key != base.key("vgg16_bn", 0.125)
    assert key != PretrainingConfig(epochs=3).key("vgg16", 0.125)
    assert key != PretrainingConfig(rendering=(("clutter", 8),)).key("vgg16", 0.125)
    monkeypatch.setattr(pretraining, "PRETRAINING_THREADS", pretraining.PRETRAINING_THREADS + 1)
    assert base.key("vgg16", 0.125) != key              # other threads, other float sums, other weights
    monkeypatch.undo()
    import fgvc_lib.data.synthetic as synthetic
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    assert base.key("vgg16", 0.125) != key


def test_synthetic_pretraining_runs_caches_and_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path))
    first = pretrained_backbone("vgg16", 0.125, batch_norm=True, progress=False, **PRETRAINING)
    files = list((tmp_path / "pretrained").glob("*.pt"))
    assert len(files) == 1 and "vgg16_bn" in files[0].name
    second = pretrained_backbone("vgg16", 0.125, batch_norm=True, progress=False, **PRETRAINING)
    assert second.pretrained == "synthetic" and second.batch_norm and second.width == 0.125
    assert torch.equal(first.net.features[0].weight, second.net.features[0].weight)
    assert torch.equal(first.net.features[1].running_mean, second.net.features[1].running_mean)
    fresh = build_backbone("vgg16", width=0.125, batch_norm=True)
    assert fresh.pretrained is None
    assert not torch.equal(first.net.features[0].weight, fresh.net.features[0].weight)
    assert len(list((tmp_path / "pretrained").glob("*.pt"))) == 1      # the second call trained nothing


def test_pretraining_writes_a_record_of_its_epochs_and_machine(tmp_path, monkeypatch):
    """The record beside the cached file says how far the pretraining got (its epochs' training accuracy) and
    where it was trained; a pretraining cached without one (before records existed) reads as None."""
    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path))
    assert pretraining.pretraining_record("vgg16", 0.125, batch_norm=True, **PRETRAINING) is None
    assert "no record" in pretraining.describe_record(None)
    pretrained_backbone("vgg16", 0.125, batch_norm=True, progress=False, **dict(PRETRAINING, epochs=2))
    record = pretraining.pretraining_record("vgg16", 0.125, batch_norm=True, **dict(PRETRAINING, epochs=2))
    cached = pretraining.cache_path("vgg16", 0.125, batch_norm=True, **dict(PRETRAINING, epochs=2))
    assert cached.is_file() and record["file"] == cached.name
    assert [epoch["epoch"] for epoch in record["history"]] == [1, 2]
    assert record["final_train_acc"] == record["history"][-1]["train_acc"]
    assert 0.0 <= record["final_train_acc"] <= 1.0
    assert record["threads"] == pretraining.PRETRAINING_THREADS and record["config"]["epochs"] == 2
    assert record["machine"]["torch"] == torch.__version__
    line = pretraining.describe_record(record)
    assert cached.name in line and f"{100 * record['final_train_acc']:.1f} %" in line and "after 2 epochs" in line
    # another setting: another file, and no record of it yet
    assert pretraining.pretraining_record("vgg16", 0.125, batch_norm=True, **PRETRAINING) is None


def test_pretraining_on_first_use_leaves_the_callers_random_state_and_threads_alone(tmp_path, monkeypatch):
    """A cold cache must not change the runs that follow (their initialisation, data order, thread
    count), and the weights must not depend on the caller's thread count."""
    import random

    before = torch.get_num_threads()
    after, weights = [], []
    try:
        for folder, threads in (("a", 2), ("a", 2), ("b", 1)):     # cold, warm, cold with other threads
            monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path / folder))
            torch.set_num_threads(threads)
            torch.manual_seed(7)
            random.seed(7)
            np.random.seed(7)
            backbone = pretrained_backbone("vgg16", 0.125, batch_norm=True, progress=False, **PRETRAINING)
            assert torch.get_num_threads() == threads
            after.append((torch.rand(3), random.random(), np.random.rand()))
            weights.append(backbone.net.state_dict())
    finally:
        torch.set_num_threads(before)
    assert len(list((tmp_path / "a" / "pretrained").glob("*.pt"))) == 1
    assert all(torch.equal(after[0][0], a[0]) and after[0][1:] == a[1:] for a in after[1:])
    for other in weights[1:]:
        assert all(torch.equal(weights[0][k], other[k]) for k in weights[0])


# ---------------------------------------------------------------- confusion, localization, colour baseline
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
