"""Backbones by name: stages, widths, pretrained weights, and the CPU memory-format hazard."""
import pytest
import torch

from fgvc_lib.backbones import (BACKBONE_NAMES, PretrainedWeightsUnavailable, build_backbone,
                                min_image_size)
from fgvc_lib.models.baseline import BaselineNet, cross_entropy_loss

PAPER_STAGES = {
    "vgg16": ["conv4_3", "conv5_2", "conv5_3", "pool5"],
    "vgg19": ["conv4_4", "conv5_4", "pool5"],
    "resnet34": ["conv3_x", "conv4_x", "conv5_x"],
    "resnet50": ["conv3_x", "conv4_x", "conv5_x"],
    "resnet101": ["conv3_x", "conv4_x", "conv5_x"],
    "densenet161": ["denseblock1", "denseblock2", "denseblock3", "denseblock4"],
}


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_named_stages_have_the_declared_shapes(name):
    backbone = build_backbone(name, width=0.125)
    stages = PAPER_STAGES[name]
    out = backbone(torch.randn(1, 3, 64, 64), stages)
    assert list(out) == stages
    for stage, fmap in out.items():
        assert fmap.shape[1] == backbone.stage_channels[stage]
        assert fmap.shape[-1] == max(1, 64 // backbone.stage_strides[stage])


def test_full_width_matches_torchvision_parameter_counts():
    import torchvision
    for name, ctor in [("vgg16", torchvision.models.vgg16), ("resnet50", torchvision.models.resnet50)]:
        ours = sum(p.numel() for p in build_backbone(name).parameters())
        ref = ctor()
        head = ref.classifier if name.startswith("vgg") else ref.fc
        expected = sum(p.numel() for p in ref.parameters()) - sum(p.numel() for p in head.parameters())
        assert ours == expected


def test_width_keeps_topology_and_scales_channels():
    slim, full = build_backbone("vgg16", width=0.25), build_backbone("vgg16")
    assert slim.stage_names == full.stage_names
    assert slim.stage_channels["conv5_3"] == 128 and full.stage_channels["conv5_3"] == 512
    assert build_backbone("resnet50", width=0.5).stage_channels["conv5_x"] == 1024


def test_bad_names_and_values_are_explained():
    with pytest.raises(ValueError, match="valid backbones: vgg16, vgg19, resnet34"):
        build_backbone("alexnet")
    with pytest.raises(ValueError, match="width must be in"):
        build_backbone("vgg16", width=0)
    with pytest.raises(ValueError, match="valid stages"):
        build_backbone("vgg16", width=0.125)(torch.randn(1, 3, 32, 32), ["conv6_1"])
    with pytest.raises(ValueError, match="only at full width"):
        build_backbone("vgg16", pretrained=True, width=0.5)
    assert min_image_size(build_backbone("resnet50", width=0.125)) == 32


def test_missing_imagenet_weights_fail_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import fgvc_lib.backbones as backbones

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(backbones.torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        build_backbone("resnet34", pretrained=True)
    message = str(info.value)
    assert "resnet34" in message and str(tmp_path) in message and "download.pytorch.org" in message


def test_cached_imagenet_weights_are_loaded(tmp_path, monkeypatch):
    import os
    import torchvision
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = torchvision.models.resnet34()
    url = torchvision.models.ResNet34_Weights.IMAGENET1K_V1.url
    os.makedirs(tmp_path / "hub" / "checkpoints")
    torch.save(reference.state_dict(), tmp_path / "hub" / "checkpoints" / os.path.basename(url))
    backbone = build_backbone("resnet34", pretrained=True)
    assert backbone.pretrained == "imagenet"
    assert torch.equal(backbone.net.layer4[0].conv1.weight, reference.layer4[0].conv1.weight)


@pytest.mark.parametrize("width", [0.125, 0.25])
def test_slim_backward_on_cpu_with_permuted_input_is_made_contiguous(width):
    """torch 2.14.1 crashes in backward of slim (<= 8 channel) nets fed channels_last input on this CPU.

    The engine turns any non-contiguous CPU batch into contiguous NCHW before the forward pass."""
    from torch.utils.data import DataLoader

    from fgvc_lib.engine import TrainConfig, fit

    hwc = torch.rand(8, 32, 32, 3)
    images = hwc.permute(0, 3, 1, 2)  # a permuted HWC array: channels_last strides
    assert not images.is_contiguous()
    loader = DataLoader(list(zip(images, torch.arange(8) % 2)), batch_size=4,
                        collate_fn=lambda b: (torch.stack([x for x, _ in b]).permute(0, 2, 3, 1)
                                              .contiguous().permute(0, 3, 1, 2), torch.stack([y for _, y in b])))
    batch, _ = next(iter(loader))
    assert not batch.is_contiguous()
    model = BaselineNet(build_backbone("resnet34", width=width), num_classes=2)
    result = fit(model, loader, cross_entropy_loss, TrainConfig(epochs=1, progress=False))
    assert torch.isfinite(torch.tensor(result.final["train_loss"]))
