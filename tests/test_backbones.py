"""Backbones by name: stages, widths, weights (ImageNet or handed in), the import graph, and the CPU
memory-format hazard."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fgvc_lib.backbones as backbones_module
from fgvc_lib.backbones import (BACKBONE_NAMES, TOP_STRIDE, PretrainedWeightsUnavailable, build_backbone,
                                check_backbone_name, min_image_size)
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
    with pytest.raises(ValueError, match="unknown backbone 'alexnet'; valid here: vgg16, vgg19, resnet34"):
        build_backbone("alexnet")
    with pytest.raises(ValueError, match="unknown backbone 'vgg19'; valid here: vgg16, resnet50$"):
        check_backbone_name("vgg19", ("vgg16", "resnet50"))
    assert check_backbone_name("resnet50", ("vgg16", "resnet50")) == "resnet50"
    with pytest.raises(ValueError, match="width must be in"):
        build_backbone("vgg16", width=0)
    with pytest.raises(ValueError, match="valid stages"):
        build_backbone("vgg16", width=0.125)(torch.randn(1, 3, 32, 32), ["conv6_1"])
    with pytest.raises(ValueError, match="only at full width"):
        build_backbone("vgg16", pretrained=True, width=0.5)
    assert min_image_size(build_backbone("resnet50", width=0.125)) == 32
    with pytest.raises(ValueError, match="needs a built backbone"):
        min_image_size("vgg16", "conv4_3")


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_min_image_size_by_name_agrees_with_the_built_network(name):
    """TOP_STRIDE (what min_image_size gives for a name, without building) is the stride of the
    network's deepest stage: at that input side every stage's map is at least 1 x 1 and the deepest
    exactly 1 x 1. For ResNet and DenseNet the deepest stage is the top stage; VGG's top stage
    (conv5_3 / conv5_4) sits before pool5, so a built VGG accepts 16 px for it while its name keeps
    pool5's 32 (SSANet reads pool5)."""
    backbone = build_backbone(name, width=0.125).eval()     # eval: batch norm on 1 x 1 maps
    side = min_image_size(name)
    assert side == TOP_STRIDE[name] == max(backbone.stage_strides.values())
    if not name.startswith("vgg"):
        assert side == min_image_size(backbone)
    else:
        assert min_image_size(backbone) == side // 2 and min_image_size(backbone, "pool5") == side
    with torch.no_grad():
        maps = backbone(torch.randn(1, 3, side, side), backbone.stage_names)
    for stage, fmap in maps.items():
        assert fmap.shape[-2:] == (side // backbone.stage_strides[stage],) * 2, stage
    assert min(f.shape[-1] for f in maps.values()) == 1


def test_state_dict_weights_are_loaded_and_named():
    torch.manual_seed(0)
    source = build_backbone("resnet34", width=0.125)
    torch.manual_seed(1)
    loaded = build_backbone("resnet34", width=0.125, state_dict=source.net.state_dict(), source="synthetic")
    assert loaded.pretrained == "synthetic"
    own, given = loaded.net.state_dict(), source.net.state_dict()
    assert own.keys() == given.keys() and all(torch.equal(own[k], given[k]) for k in own)
    unnamed = build_backbone("vgg16", width=0.125, batch_norm=True,
                             state_dict=build_backbone("vgg16", width=0.125, batch_norm=True).net.state_dict())
    assert unnamed.pretrained == "state_dict" and unnamed.batch_norm
    assert build_backbone("vgg16", width=0.125).pretrained is None
    with pytest.raises(RuntimeError, match="size mismatch"):               # weights of another width
        build_backbone("resnet34", width=0.25, state_dict=given)
    with pytest.raises(ValueError, match="either pretrained='imagenet' or a state_dict, not both"):
        build_backbone("resnet34", pretrained="imagenet", state_dict=given)


def test_synthetic_weights_are_no_longer_a_backbone_option():
    """The embedded pretraining sits above this module (fgvc_lib.pretraining.pretrained_backbone)."""
    with pytest.raises(ValueError, match="got 'synthetic'.*passed as state_dict"):
        build_backbone("vgg16", pretrained="synthetic", width=0.125)
    with pytest.raises(TypeError):
        build_backbone("vgg16", width=0.125, progress=False)          # no pretraining options either


LOWER_LAYERS = ("fgvc_lib.pretraining", "fgvc_lib.engine", "fgvc_lib.models", "fgvc_lib.study")


def test_backbones_import_nothing_above_them():
    """The import graph flows one way: pretraining, the engine, the models and the runner build on
    the backbones, never the reverse (neither at import time nor inside a function)."""
    tree = ast.parse(Path(backbones_module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ("fgvc_lib." if node.level else "") + (node.module or "")
            imported.add(base)
            imported.update(f"{base}.{alias.name}".replace("..", ".") for alias in node.names)
    assert not [m for m in imported if m.startswith(LOWER_LAYERS)], imported
    code = "import sys, fgvc_lib.backbones; print(' '.join(sorted(m for m in sys.modules if m.startswith('fgvc_lib'))))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "fgvc_lib.backbones" in loaded
    assert not [m for m in loaded if m.startswith(LOWER_LAYERS)], loaded


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


def test_vgg_batch_norm_keeps_the_stage_names():
    plain, with_bn = build_backbone("vgg16", width=0.125), build_backbone("vgg16", width=0.125, batch_norm=True)
    assert with_bn.batch_norm and not plain.batch_norm
    assert plain.stage_names == with_bn.stage_names and plain.stage_channels == with_bn.stage_channels
    out = with_bn(torch.randn(1, 3, 64, 64), ["conv4_3", "conv5_3"])
    assert out["conv5_3"].shape == (1, 64, 4, 4) and (out["conv4_3"] >= 0).all()  # taps after the ReLU
    with pytest.raises(ValueError, match="batch_norm is a VGG option"):
        build_backbone("resnet50", width=0.125, batch_norm=True)


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


@pytest.mark.parametrize("output_stride,expected", [
    (32, {"conv4_3": 8, "conv5_2": 16, "pool5": 32}),
    (16, {"conv4_3": 8, "conv5_2": 16, "pool5": 16}),
    (8, {"conv4_3": 8, "conv5_2": 8, "pool5": 8}),
])
def test_output_stride_keeps_the_resolution_and_the_weights(output_stride, expected):
    torch.manual_seed(0)
    published = build_backbone("vgg16", width=0.125, batch_norm=True)
    dilated = build_backbone("vgg16", width=0.125, batch_norm=True, state_dict=published.net.state_dict(),
                             output_stride=output_stride)
    dilated.eval()   # a training-mode forward would move the batch-norm statistics
    out = dilated(torch.randn(1, 3, 96, 96), list(expected))
    for stage, stride in expected.items():
        assert dilated.stage_strides[stage] == stride
        assert out[stage].shape[-2:] == (96 // stride, 96 // stride), stage
    assert sum(p.numel() for p in dilated.parameters()) == sum(p.numel() for p in published.parameters())
    undone = backbones_module.set_output_stride(dilated, 32)   # a second call restores the published network
    x = torch.randn(2, 3, 64, 64)
    published.eval(), undone.eval()
    assert torch.equal(undone(x)["conv5_3"], published(x)["conv5_3"])
    assert undone.stage_strides == published.stage_strides


def test_a_dilated_convolution_spans_what_the_published_one_spans_on_the_pooled_map():
    """DeepLab's identity, evaluated literally: at output stride 8, conv5_1 (dilation 2) read at even
    positions equals the published conv5_1 (3x3, padding 1) on the map subsampled by 2."""
    torch.manual_seed(0)
    dilated = build_backbone("vgg16", width=0.125, output_stride=8)
    conv = next(m for tap, m in dilated._steps if isinstance(m, torch.nn.Conv2d) and m.dilation == (2, 2))
    weight, bias = conv.weight.detach(), conv.bias.detach()
    x = torch.randn(1, conv.in_channels, 10, 10)
    full = conv(x).detach()
    sub = torch.nn.functional.pad(x[..., ::2, ::2], (1, 1, 1, 1))
    for i in range(5):
        for j in range(5):
            patch = sub[0, :, i:i + 3, j:j + 3]
            literal = (weight * patch).sum(dim=(1, 2, 3)) + bias
            assert torch.allclose(full[0, :, 2 * i, 2 * j], literal, atol=1e-5)


def test_output_stride_is_checked():
    with pytest.raises(ValueError, match="output_stride must be one of 8, 16, 32; got 4"):
        build_backbone("vgg16", width=0.125, output_stride=4)
    with pytest.raises(ValueError, match="implemented for the VGG backbones only; resnet50"):
        build_backbone("resnet50", width=0.125, output_stride=16)
