"""torchvision backbones by name, with their intermediate feature maps by the papers' stage names.

Stage names follow the papers:

* VGG-16 / VGG-19 (Simonyan & Zisserman): ``conv{block}_{layer}`` (output of the ReLU after that
  convolution, e.g. ``conv4_3``, ``conv5_2``, ``conv5_3``) and ``pool{block}`` (after max-pooling;
  SSANet takes ``pool5``). CLAN uses pool5 as the top level, conv5_2 and conv4_3 as mid levels.
* ResNet-34/50/101 (He et al.): ``conv1`` (stem, before max-pooling) and ``conv2_x`` .. ``conv5_x``.
* DenseNet-161 (Huang et al.): ``denseblock1`` .. ``denseblock4`` (block outputs before the
  transition layers; ``denseblock4`` includes the final norm + ReLU).

``width`` keeps the topology and scales every channel count (CPU profiles); ImageNet weights exist
only at ``width=1``. ``pretrained`` is one of ``None``/``False`` (random init) or ``True``/
``"imagenet"`` (torchvision's ImageNet weights, from the local cache, else one download attempt
with a short timeout, else a clear error). Any other weights are handed in as ``state_dict`` (the
embedded synthetic pretraining of :mod:`fgvc_lib.pretraining`, which sits above this module and
trains backbones, is such a weight source): this module never trains anything.
"""
from __future__ import annotations

import os
import re
import socket
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.vgg import make_layers

VGG_CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
RESNET_CONFIGS = {
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}
DENSENET_CONFIGS = {
    # growth_rate, block_config, num_init_features, bn_size
    "densenet161": (48, (6, 12, 36, 24), 96, 4),
}
IMAGENET_WEIGHTS = {
    "vgg16": tvm.VGG16_Weights.IMAGENET1K_V1,
    "vgg19": tvm.VGG19_Weights.IMAGENET1K_V1,
    "resnet34": tvm.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": tvm.ResNet50_Weights.IMAGENET1K_V1,
    "resnet101": tvm.ResNet101_Weights.IMAGENET1K_V1,
    "densenet161": tvm.DenseNet161_Weights.IMAGENET1K_V1,
}
IMAGENET_WEIGHTS_BN = {  # torchvision's VGG-BN weights, for batch_norm=True
    "vgg16": tvm.VGG16_BN_Weights.IMAGENET1K_V1,
    "vgg19": tvm.VGG19_BN_Weights.IMAGENET1K_V1,
}
BACKBONE_NAMES = tuple(IMAGENET_WEIGHTS)
PRETRAINED_CHOICES = (None, "imagenet")
DOWNLOAD_TIMEOUT_SECONDS = 20


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights are neither in the local torch hub cache nor downloadable."""


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class FeatureBackbone(nn.Module):
    """A convolutional backbone that returns named intermediate feature maps.

    ``forward(x, stages)`` returns ``{stage_name: tensor}`` for the requested stages (default: the
    top stage) and stops computing after the deepest one requested.
    """

    def __init__(self, name: str, width: float, net: nn.Module, steps: List[Tuple[Optional[str], nn.Module]],
                 stage_channels: "OrderedDict[str, int]", stage_strides: Dict[str, int], top_stage: str):
        super().__init__()
        self.name = name
        self.width = width
        self.net = net  # the torchvision module, so ImageNet state dicts load unchanged
        self._steps = steps  # plain list: the modules are registered through self.net
        self.stage_channels = stage_channels
        self.stage_strides = stage_strides
        self.top_stage = top_stage
        self.pretrained: Optional[str] = None
        self.batch_norm = any(isinstance(m, nn.BatchNorm2d) for m in net.modules()) and is_vgg(name)

    @property
    def stage_names(self) -> List[str]:
        return list(self.stage_channels)

    @property
    def out_channels(self) -> int:
        return self.stage_channels[self.top_stage]

    def stage_module(self, stage: str) -> nn.Module:
        """The module whose output is ``stage``: the natural Grad-CAM target for that stage."""
        self.check_stages([stage])
        return next(module for tap, module in self._steps if tap == stage)

    def check_stages(self, stages: Iterable[str]) -> None:
        unknown = [s for s in stages if s not in self.stage_channels]
        if unknown:
            raise ValueError(f"{self.name} has no stage {', '.join(map(repr, unknown))}; "
                             f"valid stages: {', '.join(self.stage_channels)}")

    def forward(self, x: torch.Tensor, stages: Optional[Sequence[str]] = None) -> Dict[str, torch.Tensor]:
        stages = (self.top_stage,) if stages is None else tuple(stages)
        wanted = set(stages)
        if len(wanted) != len(stages) or not wanted <= set(self.stage_channels):
            self.check_stages(stages)
        found: Dict[str, torch.Tensor] = {}
        for tap, module in self._steps:
            x = module(x)
            if tap in wanted:
                found[tap] = x
                if len(found) == len(wanted):
                    break
        return {s: found[s] for s in stages}

    def forward_between(self, x: torch.Tensor, start: Optional[str], stop: str) -> torch.Tensor:
        """Run the steps after stage ``start`` (``None``: from the image) up to and including stage
        ``stop``, on ``x`` (``start``'s map, possibly changed). Chained calls equal one ``forward``;
        models that alter a stage's map before the next stage sees it (CRA-SMRA's CRAM) use this."""
        self.check_stages([stop] if start is None else [start, stop])
        taps = [tap for tap, _ in self._steps]
        begin = 0 if start is None else taps.index(start) + 1
        end = taps.index(stop) + 1
        if end <= begin:
            raise ValueError(f"stage {stop!r} does not come after {start!r} in {self.name}")
        for _, module in self._steps[begin:end]:
            x = module(x)
        return x


def _vgg(name: str, width: float, batch_norm: bool = False) -> FeatureBackbone:
    cfg = [v if v == "M" else _scaled(v, width) for v in VGG_CONFIGS[name]]
    net = nn.Module()
    net.features = make_layers(cfg, batch_norm=batch_norm)
    steps, channels, strides = [], OrderedDict(), {}
    block, layer, stride, last_channels = 1, 0, 1, 3
    for module in net.features:
        tap = None
        if isinstance(module, nn.Conv2d):
            layer += 1
            last_channels = module.out_channels
        elif isinstance(module, nn.ReLU):
            tap = f"conv{block}_{layer}"
        elif isinstance(module, nn.MaxPool2d):
            stride *= 2
            tap = f"pool{block}"
            block, layer = block + 1, 0
        if tap:
            channels[tap] = last_channels
            strides[tap] = stride
        steps.append((tap, module))
    top = "conv5_4" if name == "vgg19" else "conv5_3"
    return FeatureBackbone(name, width, net, steps, channels, strides, top)


class _ScaledResNet(ResNet):
    """torchvision's ResNet with every stage's width multiplied by ``width`` (same topology)."""

    def __init__(self, block, layers, width: float):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = _scaled(64, width)
        self.dilation, self.groups, self.base_width = 1, 1, 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        planes = [_scaled(p, width) for p in (64, 128, 256, 512)]
        self.layer1 = self._make_layer(block, planes[0], layers[0])
        self.layer2 = self._make_layer(block, planes[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, planes[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, planes[3], layers[3], stride=2)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def _resnet(name: str, width: float) -> FeatureBackbone:
    block, layers = RESNET_CONFIGS[name]
    net = _ScaledResNet(block, layers, width)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu)
    steps = [("conv1", stem), (None, net.maxpool), ("conv2_x", net.layer1), ("conv3_x", net.layer2),
             ("conv4_x", net.layer3), ("conv5_x", net.layer4)]
    expansion = block.expansion
    channels = OrderedDict([("conv1", net.conv1.out_channels)])
    strides = {"conv1": 2}
    for i, stage in enumerate(("conv2_x", "conv3_x", "conv4_x", "conv5_x")):
        channels[stage] = _scaled((64, 128, 256, 512)[i], width) * expansion
        strides[stage] = 4 * 2 ** i
    return FeatureBackbone(name, width, net, steps, channels, strides, "conv5_x")


class _FinalNormRelu(nn.Module):
    def __init__(self, norm: nn.Module):
        super().__init__()
        self.norm = norm

    def forward(self, x):
        return F.relu(self.norm(x))


def _densenet(name: str, width: float) -> FeatureBackbone:
    growth, blocks, init_features, bn_size = DENSENET_CONFIGS[name]
    net = tvm.DenseNet(growth_rate=_scaled(growth, width), block_config=blocks,
                       num_init_features=_scaled(init_features, width), bn_size=bn_size)
    del net.classifier
    f = net.features
    steps = [(None, nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0))]
    channels, strides = OrderedDict(), {}
    for i in range(1, len(blocks) + 1):
        steps.append((None if i == len(blocks) else f"denseblock{i}", getattr(f, f"denseblock{i}")))
        if i < len(blocks):
            channels[f"denseblock{i}"] = getattr(f, f"transition{i}").norm.num_features
            strides[f"denseblock{i}"] = 4 * 2 ** (i - 1)
            steps.append((None, getattr(f, f"transition{i}")))
    last = f"denseblock{len(blocks)}"
    steps.append((last, _FinalNormRelu(f.norm5)))
    channels[last] = f.norm5.num_features
    strides[last] = 4 * 2 ** (len(blocks) - 1)
    return FeatureBackbone(name, width, net, steps, channels, strides, last)


def _normalise_pretrained(pretrained: Union[bool, str, None]) -> Optional[str]:
    if pretrained is True:
        return "imagenet"
    if pretrained is False or pretrained is None or pretrained == "none":
        return None
    if pretrained not in PRETRAINED_CHOICES:
        raise ValueError(f"pretrained must be True/False, 'imagenet' or None; got {pretrained!r} (other weights, "
                         f"such as fgvc_lib.pretraining's, are passed as state_dict)")
    return pretrained


def imagenet_state_dict(name: str, batch_norm: bool = False) -> Dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for ``name`` from the torch hub cache, else one download try."""
    weights = IMAGENET_WEIGHTS_BN[name] if batch_norm else IMAGENET_WEIGHTS[name]
    cache_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
    path = os.path.join(cache_dir, os.path.basename(weights.url))
    if os.path.isfile(path):
        return torch.load(path, map_location="cpu", weights_only=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_SECONDS)
    try:
        return torch.hub.load_state_dict_from_url(weights.url, model_dir=cache_dir, map_location="cpu",
                                                  progress=False, check_hash=False, weights_only=True)
    except Exception as err:  # any network or file failure: the message below is the useful one
        raise PretrainedWeightsUnavailable(
            f"ImageNet weights for {name} are not cached at {path} and could not be downloaded "
            f"from {weights.url} ({type(err).__name__}: {err}). Download that file on a machine with "
            f"internet access and copy it to {path} (or set TORCH_HOME), or run with pretrained "
            f"weights off (profile 'cpu'/'smoke' use the embedded synthetic pretraining instead)."
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


_DENSENET_OLD_NAME = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _load_imagenet(backbone: FeatureBackbone) -> None:
    if backbone.width != 1.0:
        raise ValueError(f"ImageNet weights exist only at full width; got width={backbone.width} for "
                         f"{backbone.name}. Use width=1.0, or the embedded pretraining of fgvc_lib.pretraining for slim backbones.")
    state = imagenet_state_dict(backbone.name, backbone.batch_norm)
    if backbone.name.startswith("densenet"):
        # torchvision's DenseNet files keep the layers' old names ("norm.1" for "norm1"); rename them.
        state = {_DENSENET_OLD_NAME.sub(r"\1\2", k): v for k, v in state.items()}
    own = backbone.net.state_dict()
    usable = {k: v for k, v in state.items() if k in own}
    # Files saved before batch norm counted its batches lack num_batches_tracked: keep our zeros.
    usable.update({k: v for k, v in own.items() if k.endswith("num_batches_tracked") and k not in usable})
    missing = [k for k in own if k not in usable]
    if missing:
        raise RuntimeError(f"ImageNet state dict for {backbone.name} lacks {len(missing)} tensors, e.g. {missing[:3]}")
    backbone.net.load_state_dict(usable)


def build_backbone(name: str, pretrained: Union[bool, str, None] = False, width: float = 1.0,
                   batch_norm: bool = False, state_dict: Optional[Dict[str, torch.Tensor]] = None,
                   source: Optional[str] = None, output_stride: Optional[int] = None) -> FeatureBackbone:
    """Build backbone ``name`` (one of :data:`BACKBONE_NAMES`) as a :class:`FeatureBackbone`.

    ``batch_norm=True`` inserts BatchNorm after every VGG convolution (VGG-16-BN, torchvision's
    ``vgg16_bn``). The papers use plain VGG; the CPU profiles use VGG-BN because a slim plain VGG
    neither trains from scratch nor fine-tunes stably at their budgets (see fgvc_lib.profiles).
    ``state_dict`` loads weights of ``backbone.net`` from elsewhere (``source`` names them, e.g.
    ``"synthetic"``); it excludes ``pretrained``. ``output_stride`` (VGG only) keeps the maps at that
    stride after the weights are loaded (:func:`set_output_stride`).
    """
    check_backbone_name(name)
    if not (0 < width <= 1.0):
        raise ValueError(f"width must be in (0, 1]; got {width}")
    origin = _normalise_pretrained(pretrained)
    if state_dict is not None and origin is not None:
        raise ValueError("pass either pretrained='imagenet' or a state_dict, not both")
    if batch_norm and not is_vgg(name):
        raise ValueError(f"batch_norm is a VGG option; {name} has batch norm already")
    if is_vgg(name):
        backbone = _vgg(name, width, batch_norm)
    elif name.startswith("resnet"):
        backbone = _resnet(name, width)
    else:
        backbone = _densenet(name, width)
    if origin == "imagenet":
        _load_imagenet(backbone)
    elif state_dict is not None:
        backbone.net.load_state_dict(state_dict)
        origin = source or "state_dict"
    backbone.pretrained = origin
    if output_stride is not None:
        set_output_stride(backbone, output_stride)
    return backbone


def is_vgg(name: str) -> bool:
    """Whether backbone ``name`` is of the VGG family (batch norm option, output stride)."""
    return str(name).startswith("vgg")


OUTPUT_STRIDES = (8, 16, 32)   # VGG's total stride at its deepest map: 32 is the network as published


def set_output_stride(backbone: FeatureBackbone, output_stride: int) -> FeatureBackbone:
    """Stop a VGG's maps from shrinking below 1/``output_stride`` of the input, keeping its weights.

    The dilated ("atrous") network of DeepLab (Chen et al., 2015, section 3.1): every max-pooling that
    would take the stride past ``output_stride`` keeps the resolution instead (3x3 window, stride 1,
    padding 1), and every convolution after it has its dilation doubled per skipped pooling, so each
    filter still sees the same input span as in the published network and pretrained weights keep
    their meaning. No parameter changes; ``stage_strides`` are updated. Used where a small input would
    otherwise leave an attention site a map of a few cells (the room table of :mod:`fgvc_lib.room`).
    Changes ``backbone`` in place and returns it.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}; got {output_stride!r}")
    if not is_vgg(backbone.name):
        raise ValueError(f"output_stride is implemented for the VGG backbones only; {backbone.name} keeps stride "
                         f"{max(backbone.stage_strides.values())} (use output_stride 32 or a VGG)")
    stride, dilation, strides = 1, 1, {}
    for tap, module in backbone._steps:
        if isinstance(module, nn.MaxPool2d):
            if stride * 2 <= output_stride:   # VGG's own pooling (so a second call can undo a first)
                module.kernel_size, module.stride, module.padding = 2, 2, 0
                stride *= 2
            else:   # keep the resolution; the layers after it look twice as far apart
                module.kernel_size, module.stride, module.padding = 3, 1, 1
                dilation *= 2
        elif isinstance(module, nn.Conv2d):
            module.dilation, module.padding = (dilation, dilation), (dilation, dilation)
        if tap is not None:
            strides[tap] = stride
    backbone.stage_strides = strides
    return backbone


def check_backbone_name(name: str, valid: Optional[Sequence[str]] = None) -> str:
    """``name`` if it is a backbone (of ``valid`` when given, e.g. the ones a paper uses), else a
    ValueError listing the valid names. The one place a backbone name is checked."""
    allowed = tuple(valid) if valid is not None else BACKBONE_NAMES
    if name not in allowed:
        raise ValueError(f"unknown backbone {name!r}; valid here: {', '.join(allowed)}")
    return name


# Total stride of each backbone's deepest stage (VGG's pool5, conv5_x, denseblock4): the smallest input
# side for which every stage a model may read is at least 1 x 1. Checked in tests/test_backbones.py.
TOP_STRIDE = {"vgg16": 32, "vgg19": 32, "resnet34": 32, "resnet50": 32, "resnet101": 32, "densenet161": 32}


def min_image_size(backbone: Union[FeatureBackbone, str], stage: Optional[str] = None) -> int:
    """Smallest input side for which ``stage`` (default: the top stage) is at least 1x1; a backbone
    name gives the value for its deepest stage (:data:`TOP_STRIDE`) without building anything."""
    if isinstance(backbone, str):
        if stage is not None:
            raise ValueError("a stage other than the top one needs a built backbone")
        return TOP_STRIDE[check_backbone_name(backbone)]
    return backbone.stage_strides[stage or backbone.top_stage]
