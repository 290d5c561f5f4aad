"""CLAN: Cross-layer Attention Network (Huang, Wang & Yang, arXiv 2210.08784).

The model of Figure 1: a backbone gives a top-level map ``L^N`` and ``N - 1`` mid-level maps
``L^s``; each mid map is refined by CLCA (eq. 1-4, :mod:`.clan_modules`), each refined map drives a
CLSA attention on the top map (eq. 8-10), and the attended top maps are concatenated (eq. 11).
Every map gets its own global-average-pooling + linear classifier (section 3.3), so the model has
one branch per map:

* ``"G"``: the top-level map (eq. 13) - pool5 on VGG-16 (conv5_3 after VGG's last max-pooling, see
  below), conv5_x on ResNets;
* ``"P"``, ``"A"``: the refined mid-level maps (eq. 12), named as in Table 4 - on VGG-16 ``P`` is
  conv5_2 and ``A`` is conv4_3; on ResNets the single mid map (conv4_x) is ``P``;
* ``"CLSA"``: the CLSA-refined top map of eq. 11 (eq. 14).

The loss (:func:`clan_loss`) is one cross-entropy per branch (eq. 12-14; the engine sums the
terms). The final prediction combines the branches (:func:`combine_branches`), and any subset of
branches can be combined after training (Table 4).

Ablations (Tables 1-3) are configuration switches of :class:`CLANConfig`: the relation metric of
CLCA (eq. 5-7), what is applied to the mid maps (``"clca"``, the original ``"nonlocal"`` block or
nothing, ``"gap"``: Table 2) and the channel pooling of CLSA (Table 3).

VGG-16's top-level map is pool5, not conv5_3. Section 4.1 swaps VGG-16's three fully connected
layers for global average pooling and one linear layer, so everything before them, the fifth max-pooling
included, stays: the top map is conv5_3 max-pooled (14 x 14 at 448 px, half conv5_2's 28 x 28). Two
facts of the paper agree with that reading and not with conv5_3: section 3.1 upsamples the top map to
the mid map's resolution before eq. 1 (conv5_3 and conv5_2 share one resolution, so with conv5_3 nothing
would be upsampled), and Table 5's added multiply-adds match ours (attention products left out) only
with pool5 (see :mod:`fgvc_lib.papers.clan_complexity`). The figures still show conv5_3, as the paper
labels them (:func:`fgvc_lib.papers.clan.figure_stages`). ``CLANConfig(top_stage="conv5_3")`` gives the
other reading.

Choices the paper leaves open are options with documented defaults; see :class:`CLANConfig`.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..backbones import FeatureBackbone, is_vgg
from ..run_keys import UNKEYED
from .clan_modules import (CLSA_ACTIVATIONS, CLSA_POOLINGS, DOWNSAMPLE_MODES, RELATIONS,
                           UPSAMPLE_MODES, CrossLayerContextAttention, CrossLayerSpatialAttention)
from .config_checks import check_choice
from .output import ModelOutput

MID_MODULES = ("clca", "nonlocal", "gap")          # Table 2 rows: CLCA, Non-local, GAP
COMBINE_MODES = ("prob", "logits")
TOP_BRANCH = "G"
CLSA_BRANCH = "CLSA"
MID_BRANCH_NAMES = ("P", "A")                       # Table 4: P = conv5_2, A = conv4_3 on VGG-16

# Per backbone: (top stage, mid stages nearest the top first). Section 4.1 fixes vgg16 (pool5 top:
# the network up to its last max-pooling, see the module docstring; conv5_2, then conv4_3 for 3 scales)
# and resnet50/101 (conv5_x top, conv4_x mid). The other rows follow the same pattern by analogy and are
# not in the paper.
CLAN_STAGES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "vgg16": ("pool5", ("conv5_2", "conv4_3")),
    "vgg19": ("pool5", ("conv5_3", "conv4_4")),
    "resnet34": ("conv5_x", ("conv4_x",)),
    "resnet50": ("conv5_x", ("conv4_x",)),
    "resnet101": ("conv5_x", ("conv4_x",)),
    "densenet161": ("denseblock4", ("denseblock3",)),
}
# The paper's number of scales N per backbone: its best VGG-16 model is 3-scale (Tables 3, 4, 6);
# ResNets are only used with 2 scales (Table 6).
PAPER_SCALES = {"vgg16": 3, "vgg19": 3, "resnet34": 2, "resnet50": 2, "resnet101": 2, "densenet161": 2}


@dataclass
class CLANConfig:
    """CLAN's method and training recipe; defaults are the paper's (section, equation or table).

    ``None`` for ``scales`` means the paper's choice for the backbone (:data:`PAPER_SCALES`). The
    engine's config for the recipe is :func:`fgvc_lib.papers.clan.train_config` (models do not import
    the engine).
    """

    # --- architecture (section 3) ---
    scales: Optional[int] = None           # N (section 4.1): 2 = top + 1 mid map, 3 = top + 2 mid maps
    top_stage: Optional[str] = None        # override of CLAN_STAGES' top map L^N (e.g. "conv5_3" on VGG-16)
    mid_stages: Optional[Tuple[str, ...]] = None  # override of CLAN_STAGES' mid maps (not in the paper)
    mid_module: str = "clca"               # Table 2: "clca" (eq. 1-4) | "nonlocal" | "gap"
    relation: str = "dot_product"          # f of eq. 2: eq. 5 | eq. 6 | eq. 7 (used after Table 1)
    inter_channels: Optional[int] = None   # C_int (eq. 2, 6, 7); None = C_s // 2 (not in the paper)
    output_norm: bool = True               # BatchNorm after W_y (eq. 3 shows none; non-local nets use
                                           # it, and dot-product CLCA diverged without it in our tests)
    zero_init_output: bool = True          # W_y (or that BN) starts at 0: a fresh CLCA is the identity
    top_upsample: str = "bilinear"         # how L^N is upsampled to n_s positions (section 3.1)
    project_top_first: bool = True         # W_g before the upsampling: same eq. 1, fewer MACs
    efficient_dot_product: bool = True     # theta (phi^T k) / n: same eq. 2 + 7, fewer MACs
    use_clsa: bool = True                  # CLSA module and branch (section 3.2, eq. 8-11, 14)
    clsa_pooling: str = "avg&max"          # channel pooling in eq. 8 (Table 3: avg&max best)
    clsa_kernel_size: int = 3              # K of eq. 8: 3 x 3
    clsa_activation: str = "sigmoid"       # M^s activation (not in the paper; CBAM's sigmoid)
    clsa_downsample: str = "avg"           # R of eq. 9 (not specified: adaptive average pooling)
    combine: str = "prob"                  # final prediction: mean of branch softmaxes (section 3.3)
    # --- training recipe (section 4.1) ---
    # No model or loss reads these, so they stay out of the run key (UNKEYED, fgvc_lib.study.jobs.keyed_fields):
    # the plan builds each run's TrainConfig from a default CLANConfig (fgvc_lib.papers.clan.train_config), and
    # the TrainConfig, image size and batch size enter the key themselves.
    image_size: int = field(default=448, metadata=UNKEYED)      # input 448 x 448
    batch_size: int = field(default=36, metadata=UNKEYED)       # batch size 36
    epochs: int = field(default=120, metadata=UNKEYED)          # 120 epochs
    lr: float = field(default=0.01, metadata=UNKEYED)           # initial learning rate 0.01
    momentum: float = field(default=0.9, metadata=UNKEYED)      # SGD momentum 0.9
    weight_decay: float = field(default=1e-4, metadata=UNKEYED)  # weight decay 1e-4
    lr_step_vgg: int = field(default=30, metadata=UNKEYED)      # VGG-16: lr x 0.1 every 30 epochs
    lr_gamma_vgg: float = field(default=0.1, metadata=UNKEYED)
    lr_step_resnet: int = field(default=2, metadata=UNKEYED)    # ResNet-50/101: lr x 0.9 every 2 epochs
    lr_gamma_resnet: float = field(default=0.9, metadata=UNKEYED)

    def validate(self) -> None:
        check_choice("mid_module", self.mid_module, MID_MODULES)
        check_choice("relation metric", self.relation, RELATIONS)
        check_choice("top-map upsampling", self.top_upsample, UPSAMPLE_MODES)
        check_choice("CLSA pooling", self.clsa_pooling, CLSA_POOLINGS)
        check_choice("CLSA activation", self.clsa_activation, CLSA_ACTIVATIONS)
        check_choice("CLSA down-sampling R", self.clsa_downsample, DOWNSAMPLE_MODES)
        check_choice("branch combination", self.combine, COMBINE_MODES)
        if self.scales is not None and (not isinstance(self.scales, int) or self.scales < 2):
            raise ValueError(f"scales (N) must be an integer >= 2 (the top map plus at least one mid map) "
                             f"or None for the paper's choice; got {self.scales!r}")
        if self.inter_channels is not None and self.inter_channels < 1:
            raise ValueError(f"inter_channels (C_int) must be >= 1 or None; got {self.inter_channels}")
        if self.clsa_kernel_size < 1 or self.clsa_kernel_size % 2 == 0:
            raise ValueError(f"clsa_kernel_size must be a positive odd number; got {self.clsa_kernel_size}")

    def lr_schedule(self, backbone_name: str) -> Tuple[int, float]:
        """``(step_epochs, gamma)`` of the paper's step decay for this backbone (section 4.1)."""
        if backbone_name.startswith("resnet"):
            return self.lr_step_resnet, self.lr_gamma_resnet
        if is_vgg(backbone_name):
            return self.lr_step_vgg, self.lr_gamma_vgg
        raise ValueError(f"the paper gives a learning-rate schedule for VGG-16 and ResNets only; got "
                         f"{backbone_name!r} (set lr_step_*/lr_gamma_* and use a vgg/resnet name)")


def clan_stages(backbone: FeatureBackbone, config: CLANConfig) -> Tuple[str, Tuple[str, ...]]:
    """``(top stage, mid stages)`` CLAN uses on ``backbone``; mid stages nearest the top first."""
    name = getattr(backbone, "name", type(backbone).__name__)
    top = CLAN_STAGES[name][0] if name in CLAN_STAGES else backbone.top_stage
    if config.mid_stages is not None:
        mids = tuple(config.mid_stages)
        if not mids:
            raise ValueError("mid_stages must name at least one mid-level stage")
        if config.scales is not None and config.scales != len(mids) + 1:
            raise ValueError(f"scales={config.scales} disagrees with mid_stages={mids} "
                             f"({len(mids) + 1} scales); set one of them")
    else:
        if name not in CLAN_STAGES:
            raise ValueError(f"no CLAN stage table for backbone {name!r} (known: {', '.join(CLAN_STAGES)}); "
                             f"pass CLANConfig(mid_stages=(...)) with stage names from {backbone.stage_names}")
        table_mids = CLAN_STAGES[name][1]
        scales = PAPER_SCALES[name] if config.scales is None else config.scales
        if scales - 1 > len(table_mids):
            allowed = ", ".join(str(n) for n in range(2, len(table_mids) + 2))
            raise ValueError(f"CLAN on {name} is defined for scales {allowed} (top {top}, mid maps "
                             f"{', '.join(table_mids)}; section 4.1); got scales={scales}. Use a valid number "
                             f"of scales or pass CLANConfig(mid_stages=(...)) explicitly.")
        mids = table_mids[:scales - 1]
    if config.top_stage is not None:
        top = config.top_stage
    backbone.check_stages((top,) + mids)
    if len(set(mids)) != len(mids) or top in mids:
        raise ValueError(f"mid stages must be distinct and differ from the top stage {top!r}; got {mids}")
    order = backbone.stage_names
    for stage in mids:
        if order.index(stage) > order.index(top) or backbone.stage_strides[stage] > backbone.stage_strides[top]:
            raise ValueError(f"mid stage {stage!r} comes after the top stage {top!r} or is coarser than it; "
                             f"mid-level maps must come from earlier layers")
    return top, mids


def combine_branches(branch_logits: Mapping[str, torch.Tensor], names: Optional[Sequence[str]] = None,
                     mode: str = "prob") -> torch.Tensor:
    """Combine some branches' logits into one prediction (section 3.3; Table 4's rows).

    ``mode="prob"`` averages the branches' softmax probabilities and returns their log (a valid
    logits tensor: its softmax is that average); ``mode="logits"`` averages the logits. ``names``
    defaults to every branch. Pure function: works on a model's output or on stored test logits.
    """
    check_choice("branch combination", mode, COMBINE_MODES)
    names = list(branch_logits) if names is None else list(names)
    if not names:
        raise ValueError("combine_branches needs at least one branch name")
    unknown = [n for n in names if n not in branch_logits]
    if unknown:
        raise ValueError(f"unknown branch {', '.join(map(repr, unknown))}; available: {', '.join(branch_logits)}")
    stacked = torch.stack([branch_logits[n] for n in names])
    if mode == "logits":
        return stacked.mean(dim=0)
    return torch.logsumexp(F.log_softmax(stacked, dim=-1), dim=0) - math.log(len(names))


def clan_loss(output: ModelOutput, targets: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Eq. 12-14: one cross-entropy per branch, named ``ce_<branch>`` (the engine sums them)."""
    branches = output.extras.get("branch_logits") if isinstance(output.extras, dict) else None
    if not branches:
        raise ValueError("clan_loss needs output.extras['branch_logits'] (a CLAN model's output)")
    return {f"ce_{name}": F.cross_entropy(logits, targets) for name, logits in branches.items()}


class _PassMid(nn.Module):
    """Table 2's "GAP" row: the mid-level map is used as it is (module kept as a Grad-CAM target)."""

    def forward(self, mid: torch.Tensor, top: Optional[torch.Tensor] = None) -> torch.Tensor:
        return mid


def _gap(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


class CLAN(nn.Module):
    """Cross-layer Attention Network; build it with :func:`build_clan`.

    ``forward(images)`` returns a :class:`ModelOutput` whose ``logits`` combine all branches and
    whose extras are ``branch_logits`` ``{name: logits}``, ``features`` ``{stage: map}`` (the top map
    and the refined mid maps), ``clsa_attention`` ``{mid stage: M^s}`` at the mid resolution and
    ``clsa_attention_top`` ``{mid stage: R(M^s)}`` (the last two only with CLSA).
    """

    def __init__(self, backbone: FeatureBackbone, num_classes: int, config: Optional[CLANConfig] = None):
        super().__init__()
        config = CLANConfig() if config is None else config
        config.validate()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
        self.config, self.num_classes, self.backbone = config, num_classes, backbone
        self.top_stage, self.mid_stages = clan_stages(backbone, config)
        self.scales = len(self.mid_stages) + 1
        mid_names = [MID_BRANCH_NAMES[i] if i < len(MID_BRANCH_NAMES) else f"M{i + 1}"
                     for i in range(len(self.mid_stages))]
        self.mid_branches: "OrderedDict[str, str]" = OrderedDict(zip(mid_names, self.mid_stages))
        top_channels = backbone.stage_channels[self.top_stage]

        self.mid_modules = nn.ModuleDict()
        for name, stage in self.mid_branches.items():
            channels = backbone.stage_channels[stage]
            if config.mid_module == "gap":
                self.mid_modules[name] = _PassMid()
            else:
                self.mid_modules[name] = CrossLayerContextAttention(
                    channels, top_channels, config.inter_channels, config.relation,
                    use_top=config.mid_module == "clca", output_norm=config.output_norm,
                    zero_init_output=config.zero_init_output, top_upsample=config.top_upsample,
                    project_top_first=config.project_top_first,
                    efficient_dot_product=config.efficient_dot_product)
        self.clsa = nn.ModuleDict()
        if config.use_clsa:
            for name in self.mid_branches:
                self.clsa[name] = CrossLayerSpatialAttention(config.clsa_pooling, config.clsa_kernel_size,
                                                             config.clsa_activation, config.clsa_downsample)
        heads = OrderedDict([(TOP_BRANCH, nn.Linear(top_channels, num_classes))])
        for name, stage in self.mid_branches.items():
            heads[name] = nn.Linear(backbone.stage_channels[stage], num_classes)
        if config.use_clsa:
            heads[CLSA_BRANCH] = nn.Linear(top_channels * len(self.mid_branches), num_classes)
        self.heads = nn.ModuleDict(heads)
        self.branch_names: Tuple[str, ...] = tuple(heads)
        self.branch_stages: Dict[str, Optional[str]] = {TOP_BRANCH: self.top_stage, **self.mid_branches}
        if config.use_clsa:
            self.branch_stages[CLSA_BRANCH] = None  # built from the top map and every mid map
        self._requested = tuple(self.mid_stages) + (self.top_stage,)

    def forward(self, images: torch.Tensor) -> ModelOutput:
        if images.dim() != 4:
            raise ValueError(f"images must be a (B, 3, H, W) batch; got shape {tuple(images.shape)}")
        maps = self.backbone(images, self._requested)
        top = maps[self.top_stage]
        features = OrderedDict([(self.top_stage, top)])
        logits = OrderedDict([(TOP_BRANCH, self.heads[TOP_BRANCH](_gap(top)))])
        attention, attention_top, attended = OrderedDict(), OrderedDict(), []
        for name, stage in self.mid_branches.items():
            refined = self.mid_modules[name](maps[stage], top)       # eq. 4 (or Table 2 baselines)
            features[stage] = refined
            logits[name] = self.heads[name](_gap(refined))            # eq. 12
            if self.config.use_clsa:
                weighted, m_s, m_top = self.clsa[name](refined, top)  # eq. 8-10
                attended.append(weighted)
                attention[stage], attention_top[stage] = m_s, m_top
        extras = {"branch_logits": logits, "features": features}
        if self.config.use_clsa:
            logits[CLSA_BRANCH] = self.heads[CLSA_BRANCH](_gap(torch.cat(attended, dim=1)))  # eq. 11, 14
            extras["clsa_attention"] = attention
            extras["clsa_attention_top"] = attention_top
        final = combine_branches(logits, self.branch_names, self.config.combine)
        return ModelOutput(final, extras)

    def cam_layers(self) -> "OrderedDict[str, nn.Module]":
        """``{stage: module}``: the module producing each map of ``extras["features"]`` (Figures 4-5)."""
        layers = OrderedDict([(self.top_stage, self.backbone.stage_module(self.top_stage))])
        for name, stage in self.mid_branches.items():
            layers[stage] = self.mid_modules[name]
        return layers

    def cam_target_layers(self) -> List[nn.Module]:
        """Grad-CAM targets: the top stage's last module, then the modules giving the refined mid maps."""
        return list(self.cam_layers().values())

    def extra_repr(self) -> str:
        return (f"scales={self.scales}, top={self.top_stage}, mids={self.mid_stages}, "
                f"mid_module={self.config.mid_module}, relation={self.config.relation}, "
                f"clsa={self.config.clsa_pooling if self.config.use_clsa else 'off'}, "
                f"branches={self.branch_names}")


def build_clan(backbone: FeatureBackbone, num_classes: int, config: Optional[CLANConfig] = None) -> CLAN:
    """CLAN on ``backbone`` with ``num_classes`` outputs per branch; ``config`` defaults to the paper's."""
    return CLAN(backbone, num_classes, config)

