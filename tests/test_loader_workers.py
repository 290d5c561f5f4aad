"""The training batches do not depend on the loader's worker count (fgvc_lib.data.drawn, issue 20).

Reference: the plain main-process pipeline, every image transformed one after the other in the shuffled
order with torch's global generator seeded as the engine seeds an epoch. The loader must give exactly those
batches with 0 and with 2 worker processes, and a run trained from either must end with the same weights.
"""
from __future__ import annotations

import pytest
import torch

from fgvc_lib.data import build_loaders
from fgvc_lib.data.synthetic import SyntheticConfig
from fgvc_lib.engine import TrainConfig, _epoch_seed, _seed_epoch, fit

TINY = SyntheticConfig(num_classes=3, train_per_class=7, test_per_class=1, image_size=48)


def _loaders(workers: int, **options):
    return build_loaders("synthetic", None, 40, 4, num_workers=workers, seed=5, config=TINY, **options)


def _epoch_batches(loader, epoch: int, seed: int = 11):
    _seed_epoch(loader, _epoch_seed(seed, epoch))
    return [(images.clone(), targets.clone()) for images, targets in loader]


def _reference_batches(loader, epoch: int, seed: int = 11):
    """The same epoch the slow way: shuffle with the sampler's generator as torch's RandomSampler does after
    the DataLoader's one draw for its workers, then transform each image in that order, drawing as it goes."""
    dataset = loader.dataset.dataset
    generator = torch.Generator()
    generator.manual_seed(_epoch_seed(seed, epoch))
    torch.manual_seed(_epoch_seed(seed, epoch))
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(len(dataset), generator=generator).tolist()
    batches = []
    for start in range(0, len(order), loader.batch_size):
        if loader.drop_last and len(order) - start < loader.batch_size:
            break   # a last batch of a single image is dropped (it would break batch norm)
        items = [dataset[i] for i in order[start:start + loader.batch_size]]
        batches.append((torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])))
    return batches


@pytest.mark.parametrize("options", [{}, {"resize_mode": "resize_crop"}, {"mask": "parts"}],
                         ids=["flip", "crop-and-flip", "mask-channel"])
def test_batches_equal_the_sequential_pipeline_for_0_and_2_workers(options):
    for workers in (0, 2):
        train_loader, _ = _loaders(workers, **options)
        for epoch in (0, 1):   # the second epoch checks that persistent workers are re-seeded alike
            got = _epoch_batches(train_loader, epoch)
            want = _reference_batches(train_loader, epoch)
            assert len(got) == len(want)
            for (images, targets), (ref_images, ref_targets) in zip(got, want):
                assert torch.equal(targets, ref_targets)
                assert torch.equal(images, ref_images), f"{workers} workers, epoch {epoch}"


def test_augmentations_are_really_random():
    """The test above could pass with no augmentation at all: the flips must differ between epochs."""
    train_loader, _ = _loaders(0)
    first, second = _epoch_batches(train_loader, 0), _epoch_batches(train_loader, 1)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, second))


def test_trained_weights_equal_for_0_and_2_workers():
    from fgvc_lib.backbones import build_backbone
    from fgvc_lib.models.baseline import BaselineNet, cross_entropy_loss

    weights = []
    for workers in (0, 2):
        train_loader, _ = _loaders(workers)
        torch.manual_seed(0)
        model = BaselineNet(build_backbone("vgg16", width=0.0625), 3)
        fit(model, train_loader, cross_entropy_loss, TrainConfig(epochs=2, lr=0.01, seed=3, progress=False))
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def test_loader_options_reject_a_negative_worker_count():
    with pytest.raises(ValueError, match="num_workers"):
        _loaders(-1)


def test_a_draw_is_plain_bytes():
    """A draw travels to the worker processes with its image's index: as a tensor it would go through shared
    memory, one open file per image of the epoch (a CUB epoch would pass a 1,024-file limit)."""
    train_loader, _ = _loaders(2)
    index, draw = next(iter(train_loader.sampler))
    assert isinstance(index, int) and isinstance(draw, bytes)


def test_random_pairs_of_cra_cnn_are_keyed_apart_and_consecutive_pairs_keep_their_key():
    """CRA-CNN's random pairs draw from the global generator between batches, so their runs changed with the
    drawn augmentations and got another key; consecutive pairs draw nothing and kept theirs."""
    from fgvc_lib.models.cra_cnn import CRACNNConfig
    from fgvc_lib.study.jobs import describe

    assert "pair_draws" not in describe(CRACNNConfig())
    assert describe(CRACNNConfig(pairing="random"))["pair_draws"] == "after_augmentations"


def test_automatic_loader_workers_share_the_cores_on_a_gpu_and_are_none_on_a_cpu(monkeypatch):
    import fgvc_lib.engine
    from fgvc_lib.study import executors

    assert executors.loader_workers(None, "cpu", 1) == 0
    assert executors.loader_workers(3, "cpu", 1) == 3        # the notebook's loader_workers wins
    monkeypatch.setattr(fgvc_lib.engine, "resolve_device", lambda device="auto": torch.device("cuda"))
    monkeypatch.setattr(executors, "cpu_cores", lambda: 16)
    # 16 cores: one run keeps 1 for itself (15 workers); 4 runs get 16 / 4 - 1 = 3 each; 20 runs still get 1
    assert [executors.loader_workers(None, "cuda:0", n) for n in (1, 4, 20)] == [15, 3, 1]
    monkeypatch.setattr(executors, "cpu_cores", lambda: 64)
    assert executors.loader_workers(None, "cuda:0", 1) == executors.MAX_LOADER_WORKERS == 16


def test_runs_sharing_the_cores_per_executor():
    from fgvc_lib.study.executors import runs_at_once

    assert runs_at_once("slurm", 10 ** 6, 40) == 1          # each job has its own allocation
    assert runs_at_once("submitit-debug", 10 ** 6, 40) == 1  # one after the other
    assert runs_at_once("submitit-local", 10 ** 6, 40) == 40  # all at once on this machine
    assert runs_at_once("local", 2, 40) == 2 and runs_at_once("local", 8, 3) == 3 and runs_at_once("inline", 1, 5) == 1
