"""The decoded-image cache serves exactly the pixels decoding gives (fgvc_lib.data.decoded_cache, issue 20).

Reference: the same loaders built without the cache, which decode every JPEG and resize it each time.
"""
from __future__ import annotations

import pytest
import torch

from fgvc_lib.data import build_loaders
from fgvc_lib.data.decoded_cache import DecodedImages
from fgvc_lib.engine import _epoch_seed, _seed_epoch

from fixtures_datasets import make_cub_photos


@pytest.fixture()
def cub_root(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path / "cache"))
    make_cub_photos(tmp_path, num_classes=3, train_per_class=5, test_per_class=2, sizes=(60, 90))
    return tmp_path / "CUB_200_2011"


def _batches(loader, epoch=None):
    if epoch is not None:
        _seed_epoch(loader, _epoch_seed(7, epoch))
    return [(x.clone(), y.clone()) for x, y in loader]


@pytest.mark.parametrize("resize_mode", ["resize", "resize_crop"])
@pytest.mark.parametrize("workers", [0, 2])
def test_cached_batches_equal_decoded_batches(cub_root, tmp_path, resize_mode, workers):
    plain = build_loaders("cub", cub_root, 48, 4, seed=1, resize_mode=resize_mode)
    cached = build_loaders("cub", cub_root, 48, 4, seed=1, resize_mode=resize_mode, num_workers=workers,
                           decoded_cache=True)
    assert (tmp_path / "cache" / "decoded").is_dir() and any((tmp_path / "cache" / "decoded").glob("*.u8"))
    for epoch in (0, 1):
        for (x, y), (cx, cy) in zip(_batches(plain[0], epoch), _batches(cached[0], epoch), strict=True):
            assert torch.equal(y, cy) and torch.equal(x, cx)
    for (x, y), (cx, cy) in zip(_batches(plain[1]), _batches(cached[1]), strict=True):
        assert torch.equal(y, cy) and torch.equal(x, cx)


def test_the_cache_is_built_once_and_rebuilt_when_a_file_changes(cub_root, tmp_path):
    from fgvc_lib.data import build_dataset
    from fgvc_lib.data.transforms import build_transforms

    reader = build_dataset("cub", cub_root, "test")
    resize = build_transforms(48, train=False).transforms[0]
    first = DecodedImages(reader, resize, tmp_path / "c")
    again = DecodedImages(reader, resize, tmp_path / "c")
    assert again.key == first.key and first.image(0).size == (48, 48)
    path = reader.samples[0][0]
    import os
    os.utime(path, ns=(1, 1))   # a touched file is another image as far as the cache knows
    assert DecodedImages(reader, resize, tmp_path / "c").key != first.key


def test_a_region_crop_keeps_decoding(cub_root):
    from fgvc_lib.data.decoded_cache import DecodedDataset

    train_loader, _ = build_loaders("cub", cub_root, 48, 4, crop="object", decoded_cache=True)
    assert not isinstance(train_loader.dataset.dataset, DecodedDataset)
    with pytest.raises(ValueError, match="cannot use the decoded-image cache"):
        from fgvc_lib.data import build_dataset
        from fgvc_lib.data.transforms import build_transforms
        DecodedImages(build_dataset("cub", cub_root, "train", crop="object"),
                      build_transforms(48, train=False).transforms[0], cub_root / "c")


def test_synthetic_images_from_the_cache_equal_decoded_ones(tmp_path, monkeypatch):
    """The CPU profiles read the embedded synthetic set through the cache too."""
    from fgvc_lib.data.synthetic import SyntheticConfig

    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path / "cache"))
    config = SyntheticConfig(num_classes=3, train_per_class=6, test_per_class=2, image_size=64)
    plain = build_loaders("synthetic", None, 48, 4, seed=2, config=config)
    cached = build_loaders("synthetic", None, 48, 4, seed=2, config=config, decoded_cache=True, validation=0.25)
    reference = build_loaders("synthetic", None, 48, 4, seed=2, config=config, validation=0.25)
    for (x, y), (cx, cy) in zip(_batches(reference[0], 0), _batches(cached[0], 0), strict=True):
        assert torch.equal(y, cy) and torch.equal(x, cx)
    for (x, y), (cx, cy) in zip(_batches(reference[1]), _batches(cached[1]), strict=True):   # the held-out images
        assert torch.equal(y, cy) and torch.equal(x, cx)
    assert len(plain[0].dataset) > len(cached[0].dataset)   # the validation share is held out of the cached split
