"""CRA-SMRA: channel re-attention and spatial multi-region attention (the model and its loss).

Implements Wang, Sun, Liu et al., "Rethinking Attention Mechanism: Channel Re-attention and Spatial
Multi-region Attention for Fine-grained Visual Classification", Neural Processing Letters 57, 43
(2025): CRAM (sec. 3.1, Fig. 3), SMRAM (sec. 3.2, Algorithm 1), the multi-stage network and its loss
(sec. 3.3), the recipe of sec. 4.1 and the ablation rows of Table 3.

Architecture (Fig. 2): the backbone runs stage by stage (:meth:`FeatureBackbone.forward_between`).
After each of the last three stages (:data:`STAGES`) a site turns the stage's map ``X`` into

* ``X_e``, the channel-enhanced map: ``Conv_layer(I * X)`` with ``I = sigmoid(MLP(AP(X)) + MLP(MP(X)))``
  (Eqs. 1-3; ``MLP = FC2(ReLU(FC1(.)))`` shared by both descriptors, as in CBAM), the stage's output;
* ``X_s``, the channel-suppressed map ``S * X`` (Eqs. 4-6), which is what the next backbone stage
  consumes (stage 4 runs on stage 3's ``X_s``, stage 5 on stage 4's).

Each stage's ``X_e`` is classified (branches ``stage3``, ``stage4``, ``stage5``) and so is the
concatenation of the three pooled features (branch ``concat``). In training only, SMRAM brings the
three ``X_e`` to the last stage's size, maps each to one channel (``phi``), takes a spatial softmax and
scores how much the three maps overlap (``L_div``, :func:`diversity_loss`). The loss (Eqs. 9-10,
:class:`CRASMRALoss`) is, in our default reading, ``alpha * CE(concat) + beta * sum_i CE(stage_i) +
gamma * L_div`` with (alpha, beta, gamma) = (2, 1, 1); Eq. 10 is lost, and the text's list ("classification
loss of each stage, the overall classification loss, and L_div", sec. 3.3) would pair alpha with the
stages instead: :class:`StagePairedCRASMRALoss` (``cra_smra_loss(config, pairing="stages")``) is that
reading, ``alpha * sum_i CE(stage_i) + beta * CE(concat) + gamma * L_div``. At test time SMRAM is removed and the prediction is the average of
the four branches' softmax probabilities (sec. 3.3, last sentence).

Our copy of the paper lost every equation. Where the text does not fix a formula, the choice is ours
and is documented here and at :class:`CRASMRAConfig` (options where cheap):

* Sites (:data:`STAGES`): ResNet ``conv3_x``/``conv4_x``/``conv5_x`` (sec. 3.3); DenseNet-161
  ``denseblock2..4`` (the blocks at strides 8/16/32, before the transitions); VGG ``pool3``/``pool4``/
  ``pool5`` (the block outputs after max-pooling, at the same strides 8/16/32 as the ResNet stages;
  ``conv*_3`` would be at 4/8/16). ``config.stages`` overrides.
* FC1/FC2 ("two convolutional layers" on a 1x1 map) are linear layers with bias, reduction ratio
  r = 16 (CBAM's; the paper gives none), hidden width ``max(1, C // r)``.
* Suppression mask (Eq. 5, lost): ``I* = softmax(I)`` over channels; channel c is suppressed when
  ``I*_c >= delta * max(I*)``, and then ``S_c = omega``, else ``S_c = 1``. So the channels whose
  importance is within a factor delta of the maximum are scaled down by omega (omega = 0.5,
  delta = 0.9, sec. 4.1); delta = 1 suppresses only the most important channel(s), omega = 1 nothing.
  The mask is a hard threshold: no gradient flows through S. Because I is a sigmoid, in (0, 1), the
  ratio ``I*_c / I*_max = exp(I_c - I_max)`` lies in (1/e, 1]: channel c is suppressed exactly when
  ``I_c >= I_max + ln(delta)`` (:func:`suppression_window`), so every delta <= 1/e (about 0.37)
  suppresses every channel (a uniform scale by omega that the next batch norm largely undoes), and
  delta = 0.5 every channel whose I is within ln 2 of the top. The text ("where I*_max is the maximum
  value in I*, omega and delta ... the degree to which the channel needs to be suppressed") fixes the
  softmax and the comparison with delta * I*_max, not the direction of the inequality; suppressing the
  channels at or above the threshold is the reading that suppresses "the channel with higher weight"
  (sec. 1).
* ``X_s = S * X`` (the stage's map, as Fig. 3 draws it; ``suppress_source="enhanced"``: ``S * I * X``).
* The mask is applied at test time too (``suppress_at_test``): the paper removes only SMRAM at test
  (sec. 1, Fig. 2's dotted lines), and the later stages are trained on suppressed inputs.
* ``Conv_layer`` (unifying the channels to C_a): 1x1 convolution (no bias), BatchNorm, ReLU.
  C_a is not given; default: the channel count of the first site (512 on ResNet-50; scales with the
  backbone width), ``unified_channels`` overrides. ``X_e`` is the output of this layer (the notation
  section gives ``X_e`` C_a channels).
* SMRAM's input: ``X_e`` of each stage (sec. 3.2 and Fig. 2; sec. 3.3 says ``X_s`` once, read as a slip).
* SMRAM's ``Conv_block`` (lost): adaptive average pooling to the last stage's spatial size (identity
  for the last stage), then 1x1 convolution (C_a -> C_a, no bias), BatchNorm, ReLU (sec. 2.3 lists
  "average pooling, batch normalization, softmax, CCMP, diversity loss" as SMRAM's parts). One
  Conv_block per stage; ``phi`` (1x1 conv to one channel, with bias) shared by the three stages
  (``smram_shared_phi=False``: one per stage).
* ``h`` and ``L_div`` (Eqs. 7-8, lost): with ``A`` the three spatially softmaxed maps and
  ``X* = max_l A_l`` (CCMP), ``h = (c / epsilon) * mean_j X*_j = sum_j X*_j / epsilon`` (c positions,
  epsilon = 3 maps), which lies in [1/epsilon, 1]: 1/epsilon for identical maps, 1 for maps with
  disjoint support. MC-Loss's diversity term (Chang et al. 2020, the paper's [39]) is ``1 - h``.
  Default ``div_form="unit"`` rescales it to [0, 1]: ``L_div = (1 - h) / (1 - 1/epsilon)`` (0 for
  disjoint maps, 1 for identical ones); ``div_form="mcloss"`` keeps ``1 - h`` (range [0, 2/3]).
  Averaged over the batch.
* Heads: global average pooling of each stage's ``X_e`` and one linear layer per stage; the concat
  head is one linear layer on the concatenation of the three pooled vectors (3 x C_a).
* Test-time prediction: the average of the four branches' softmax probabilities, returned as its log
  (a valid logits tensor; ``combine="logits"`` averages logits instead). Same combination in training.
* Table 3 variants: ``attention="cram"`` with ``smram`` True (full model) / False (+CRAM row);
  ``attention="cbam"``: CBAM (Woo et al. 2018: shared-MLP channel attention, then a 7x7 convolution
  without bias on the channel-mean and channel-max maps, sigmoid) at the same three sites, its refined
  map feeding the next stage, no suppression; ``attention="none"``: the same multi-stage heads and
  unifying convolutions with no attention (the next stage sees the unchanged map). The plain
  GAP + linear "fine-tuned backbone" is :class:`fgvc_lib.models.baseline.BaselineNet`; which of the
  two the "backbone" row of Table 3 is, the paper does not say.
* Learning rates (sec. 4.1): backbone and SMRAM 2e-4, CRAM 6e-3. The unifying ``Conv_layer`` belongs
  to CRAM (Fig. 3) and takes CRAM's rate (for every variant); the classifier heads are new layers
  and take CRAM's rate too (``head_lr="backbone"``: 2e-4). :meth:`CRASMRA.lr_groups` declares them and
  the engine (:func:`fgvc_lib.engine.parameter_groups`) gives each group its rate.
"""
from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..backbones import FeatureBackbone
from ..run_keys import UNKEYED
from .config_checks import check_choice, check_int
from .output import ModelOutput

# The three sites (sec. 3.3: "after the third, fourth, and fifth stages") per backbone family.
STAGES: Dict[str, Tuple[str, str, str]] = {
    "resnet": ("conv3_x", "conv4_x", "conv5_x"),
    "densenet": ("denseblock2", "denseblock3", "denseblock4"),
    "vgg": ("pool3", "pool4", "pool5"),
}
ATTENTIONS = ("none", "cbam", "cram")        # Table 3 rows: backbone | +CBAM | +CRAM (+SMRAM: smram=True)
SUPPRESS_SOURCES = ("input", "enhanced")     # X_s = S * X | S * (I * X)
DIV_FORMS = ("unit", "mcloss")               # L_div in [0, 1] | MC-Loss's 1 - h
COMBINE_MODES = ("prob", "logits")           # test-time average of probabilities | of logits
HEAD_LRS = ("cram", "backbone")              # learning rate of the classifier heads
CONCAT_BRANCH = "concat"
LAST_STAGE_NUMBER = 5                        # the sites are named stage3..stage5 (ResNet's L = 5)


def _family(name: str) -> str:
    for family in STAGES:
        if name.startswith(family):
            return family
    raise ValueError(f"no CRA-SMRA sites known for backbone {name!r}; pass config.stages "
                     f"(known families: {', '.join(STAGES)})")


def cra_smra_stages(backbone: FeatureBackbone, stages: Optional[Sequence[str]] = None) -> Tuple[str, ...]:
    """The backbone stages CRAM follows: ``stages`` if given (checked), else :data:`STAGES` of its family."""
    chosen = tuple(stages) if stages is not None else STAGES[_family(backbone.name)]
    backbone.check_stages(chosen)
    order = backbone.stage_names
    positions = [order.index(s) for s in chosen]
    if positions != sorted(set(positions)):
        raise ValueError(f"stages must be distinct and in the backbone's order ({', '.join(order)}); got {chosen}")
    return chosen


def branch_names_for(count: int) -> Tuple[str, ...]:
    """Branch names of ``count`` sites, the last one ``stage5`` (``stage3``, ``stage4``, ``stage5`` for 3)."""
    first = LAST_STAGE_NUMBER - count + 1
    return tuple(f"stage{first + i}" for i in range(count)) + (CONCAT_BRANCH,)


@dataclass
class CRASMRAConfig:
    """CRA-SMRA's method and recipe; defaults are the paper's (symbol / section in each comment)."""

    # --- variant (Table 3) ---
    attention: str = "cram"                # "cram" (sec. 3.1) | "cbam" (Table 3 row 2) | "none" (row 1)
    smram: bool = True                     # SMRAM + L_div in training (sec. 3.2; Table 3 row 4)
    stages: Optional[Tuple[str, ...]] = None  # sec. 3.3: after stages 3, 4, 5; None = STAGES of the family
    # --- CRAM (sec. 3.1) ---
    reduction: int = 16                    # r of FC1/FC2: not stated, CBAM's 16 (hidden = max(1, C // r))
    omega: float = 0.5                     # omega, Eq. 5 / sec. 4.1: strength of suppression, in (0, 1]
    delta: float = 0.9                     # delta, Eq. 5 / sec. 4.1 (Table 4): which channels, in (0, 1]
    suppress_at_test: bool = True          # not stated: only SMRAM is removed at test (sec. 1, Fig. 2)
    suppress_source: str = "input"         # Eq. 6 lost: X_s = S * X ("enhanced": S * I * X)
    unified_channels: Optional[int] = None  # C_a (sec. 3.2): not stated; None = channels of the first site
    unify_kernel: int = 1                  # Conv_layer (Fig. 3): not stated; 1x1 conv + BN + ReLU
    cbam_kernel: int = 7                   # CBAM's spatial convolution (Woo et al. 2018), "cbam" only
    # --- SMRAM (sec. 3.2, Algorithm 1) ---
    smram_shared_phi: bool = True          # phi: one 1x1 conv shared by the stages (not stated)
    div_form: str = "unit"                 # Eq. 8 lost: (1 - h) / (1 - 1/eps) in [0, 1] | "mcloss": 1 - h
    # --- loss and prediction (sec. 3.3, Eqs. 9-10) ---
    alpha: float = 2.0                     # alpha (sec. 4.1): weight of CE on the concatenated feature
    beta: float = 1.0                      # beta (sec. 4.1): weight of the sum of the N = 3 stage CEs
    gamma: float = 1.0                     # gamma (sec. 4.1, Table 5): weight of L_div
    combine: str = "prob"                  # sec. 3.3: average of the "predicted label values" (softmax)
    # --- recipe (sec. 4.1) ---
    # The model reads the rates (CRASMRA.lr_groups: cram_lr / lr). The other optimiser settings are
    # UNKEYED: only train_config_kwargs (which a test reads) reads them; a run's optimiser is its variant's
    # TrainConfig (fgvc_lib.papers.cra_smra.recipe), which the run key hashes itself. Sec. 4.1's backbone
    # (ResNet-50), epochs (200) and batch (20) are the paper declaration's (fgvc_lib/papers/cra_smra.py), its
    # input (resized to 550, centre-cropped to 448, random flips) the data pipeline's: no field holds them.
    optimizer: str = field(default="sgd", metadata=UNKEYED)  # sec. 4.1: SGD (unkeyed: train_config_kwargs only)
    lr: float = 2e-4                       # sec. 4.1: backbone and SMRAM
    cram_lr: float = 6e-3                  # sec. 4.1: CRAM
    head_lr: str = "cram"                  # not stated: heads are new layers, at CRAM's rate ("backbone": lr)
    momentum: float = field(default=0.9, metadata=UNKEYED)  # sec. 4.1 (unkeyed: train_config_kwargs only)
    weight_decay: float = field(default=1e-5, metadata=UNKEYED)  # sec. 4.1 (unkeyed: train_config_kwargs only)
    scheduler: str = field(default="cosine", metadata=UNKEYED)  # sec. 4.1: cosine decay (unkeyed: as above)

    def __post_init__(self) -> None:
        if self.stages is not None:
            self.stages = tuple(self.stages)
        self.validate()

    def validate(self) -> None:
        check_choice("attention", self.attention, ATTENTIONS)
        check_choice("suppress_source", self.suppress_source, SUPPRESS_SOURCES)
        check_choice("div_form", self.div_form, DIV_FORMS)
        check_choice("combine", self.combine, COMBINE_MODES)
        check_choice("head_lr", self.head_lr, HEAD_LRS)
        for name in ("smram", "suppress_at_test", "smram_shared_phi"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        for name, symbol in (("omega", "omega"), ("delta", "delta")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
                raise ValueError(f"{name} ({symbol} of Eq. 5, sec. 3.1) must be in (0, 1]; got {value!r}")
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} (loss weight, Eq. 10) must be >= 0; got {value!r}")
        check_int("reduction", self.reduction, 1)
        if self.unified_channels is not None:
            check_int("unified_channels", self.unified_channels, 1)
        for name in ("unify_kernel", "cbam_kernel"):
            value = getattr(self, name)
            check_int(name, value, 1)
            if value % 2 == 0:
                raise ValueError(f"{name} must be odd (same-size padding); got {value!r}")
        if self.stages is not None:
            if not 1 <= len(self.stages) <= LAST_STAGE_NUMBER or not all(isinstance(s, str) for s in self.stages):
                raise ValueError(f"stages must name 1 to {LAST_STAGE_NUMBER} backbone stages (paper: 3); "
                                 f"got {self.stages!r}")
            if self.smram and len(self.stages) < 2:
                raise ValueError(f"smram compares the stages' maps and needs at least 2 stages; got {self.stages!r}")
        for name in ("lr", "cram_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 (sec. 4.1: lr 2e-4, cram_lr 6e-3); got {getattr(self, name)!r}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError(f"weight_decay must be >= 0 and momentum in [0, 1); "
                             f"got {self.weight_decay!r}, {self.momentum!r}")

    def replace(self, **changes) -> "CRASMRAConfig":
        return dataclasses.replace(self, **changes)

    @property
    def cram_lr_multiplier(self) -> float:
        """CRAM's learning rate over the backbone's (sec. 4.1: 6e-3 / 2e-4 = 30)."""
        return self.cram_lr / self.lr

    def train_config_kwargs(self) -> Dict[str, object]:
        """The paper's optimiser recipe as keyword arguments of ``fgvc_lib.engine.TrainConfig``
        (its single learning rate is the backbone's; see :meth:`CRASMRA.lr_groups` for CRAM's)."""
        return {"optimizer": self.optimizer, "lr": self.lr, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "scheduler": self.scheduler}


# ----------------------------------------------------------------------------- building blocks
class ConvBNReLU(nn.Sequential):
    """``Conv2d(k x k, same padding, no bias) -> BatchNorm2d -> ReLU``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1):
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class SharedChannelMLP(nn.Module):
    """``I = sigmoid(FC2(ReLU(FC1(avg))) + FC2(ReLU(FC1(max))))`` over the spatial positions (B, C).

    The channel importance of CRAM (Eqs. 1-2) and the channel attention of CBAM (same formula).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        check_int("reduction", reduction, 1)
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3))
        mx = x.amax(dim=(2, 3))
        return torch.sigmoid(self.fc2(F.relu(self.fc1(avg))) + self.fc2(F.relu(self.fc1(mx))))


def suppression_window(delta: float) -> float:
    """How far below the top importance ``I_max`` a channel's ``I_c`` may lie and still be suppressed:
    ``-ln(delta)`` (``I*_c >= delta * I*_max`` with ``I* = softmax(I)`` is ``I_c - I_max >= ln(delta)``).
    With ``I`` in (0, 1) a window of 1 or more (``delta <= 1/e``) covers every channel."""
    if not 0.0 < delta <= 1.0:
        raise ValueError(f"delta must be in (0, 1]; got {delta!r}")
    return max(0.0, -math.log(delta))   # max: delta = 1 gives 0.0, not -0.0


def suppression_mask(importance: torch.Tensor, omega: float, delta: float) -> torch.Tensor:
    """S of Eq. 5 (our reading), (B, C): ``omega`` where ``softmax(I)_c >= delta * max_c softmax(I)``, else 1.

    ``importance`` is I (B, C). A hard mask: no gradient flows through it.
    """
    with torch.no_grad():
        normalised = torch.softmax(importance, dim=1)                      # I* (Eq. 4)
        threshold = delta * normalised.amax(dim=1, keepdim=True)
        suppressed = normalised >= threshold
        return torch.where(suppressed, torch.full_like(normalised, float(omega)), torch.ones_like(normalised))


class ChannelReAttention(nn.Module):
    """CRAM (sec. 3.1, Fig. 3): ``X -> (X_e, X_s)``.

    ``forward(x, suppress=True)`` returns a dict: ``importance`` I (B, C), ``mask`` S (B, C; all ones
    when ``suppress`` is False), ``reweighted`` ``I * X`` (B, C, H, W), ``enhanced`` X_e =
    ``Conv_layer(I * X)`` (B, C_a, H, W) and ``suppressed`` X_s = ``S * X`` (B, C, H, W).
    """

    def __init__(self, channels: int, out_channels: int, reduction: int = 16, omega: float = 0.5,
                 delta: float = 0.9, unify_kernel: int = 1, suppress_source: str = "input"):
        super().__init__()
        check_choice("suppress_source", suppress_source, SUPPRESS_SOURCES)
        self.omega, self.delta, self.suppress_source = float(omega), float(delta), suppress_source
        self.mlp = SharedChannelMLP(channels, reduction)
        self.unify = ConvBNReLU(channels, out_channels, unify_kernel)   # Conv_layer of Fig. 3

    def forward(self, x: torch.Tensor, suppress: bool = True) -> Dict[str, torch.Tensor]:
        importance = self.mlp(x)                                        # I (Eqs. 1-2)
        reweighted = importance[:, :, None, None] * x                   # I (x) X (Eq. 3)
        if suppress:
            mask = suppression_mask(importance, self.omega, self.delta)  # S (Eqs. 4-5)
        else:
            mask = torch.ones_like(importance)
        source = x if self.suppress_source == "input" else reweighted
        suppressed = source if not suppress else mask[:, :, None, None] * source   # X_s (Eq. 6)
        return {"importance": importance, "mask": mask, "reweighted": reweighted,
                "enhanced": self.unify(reweighted), "suppressed": suppressed}

    def extra_repr(self) -> str:
        return f"omega={self.omega}, delta={self.delta}, suppress_source={self.suppress_source}"


class CBAM(nn.Module):
    """CBAM (Woo et al., ECCV 2018): channel attention, then spatial attention.

    ``M_c = sigmoid(MLP(AvgPool(X)) + MLP(MaxPool(X)))``, ``X' = M_c * X``;
    ``M_s = sigmoid(conv_kxk([mean_c X'; max_c X']))``, ``X'' = M_s * X'``. Returns
    ``(X'', M_c (B, C), M_s (B, 1, H, W))``. The k x k convolution has no bias (CBAM's code follows it
    with batch norm, its paper with nothing; we use neither).
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel = SharedChannelMLP(channels, reduction)
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor):
        channel_att = self.channel(x)
        refined = channel_att[:, :, None, None] * x
        pooled = torch.cat([refined.mean(dim=1, keepdim=True), refined.amax(dim=1, keepdim=True)], dim=1)
        spatial_att = torch.sigmoid(self.spatial(pooled))
        return spatial_att * refined, channel_att, spatial_att


class CBAMSite(nn.Module):
    """Table 3's "+CBAM" site: CBAM in place of CRAM, no suppression; same dict as CRAM's forward."""

    def __init__(self, channels: int, out_channels: int, reduction: int = 16, kernel_size: int = 7,
                 unify_kernel: int = 1):
        super().__init__()
        self.cbam = CBAM(channels, reduction, kernel_size)
        self.unify = ConvBNReLU(channels, out_channels, unify_kernel)

    def forward(self, x: torch.Tensor, suppress: bool = True) -> Dict[str, torch.Tensor]:
        refined, channel_att, spatial_att = self.cbam(x)
        return {"importance": channel_att, "spatial_attention": spatial_att, "reweighted": refined,
                "enhanced": self.unify(refined), "suppressed": refined}


class PlainSite(nn.Module):
    """Table 3's "backbone" site (our reading): the unifying convolution only, no attention."""

    def __init__(self, channels: int, out_channels: int, unify_kernel: int = 1):
        super().__init__()
        self.unify = ConvBNReLU(channels, out_channels, unify_kernel)

    def forward(self, x: torch.Tensor, suppress: bool = True) -> Dict[str, torch.Tensor]:
        return {"reweighted": x, "enhanced": self.unify(x), "suppressed": x}


class SpatialMultiRegionAttention(nn.Module):
    """SMRAM (sec. 3.2, Algorithm 1) up to CCMP's input: the stages' spatially softmaxed maps.

    ``forward([X_e^{L-2}, X_e^{L-1}, X_e^L])`` returns ``A`` of shape (B, n, H_L * W_L): for each stage,
    ``Conv_block`` (adaptive average pooling to the last map's size, 1x1 conv, BN, ReLU), ``phi``
    (1x1 conv to one channel) and a softmax over the positions, so each ``A[b, l]`` sums to 1.
    :func:`diversity_loss` does CCMP, h and L_div.
    """

    def __init__(self, channels: int, num_maps: int = 3, shared_phi: bool = True):
        super().__init__()
        check_int("num_maps", num_maps, 2)
        self.num_maps = num_maps
        self.blocks = nn.ModuleList([ConvBNReLU(channels, channels, 1) for _ in range(num_maps)])
        count = 1 if shared_phi else num_maps
        self.phi = nn.ModuleList([nn.Conv2d(channels, 1, 1) for _ in range(count)])

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(maps) != self.num_maps:
            raise ValueError(f"SMRAM was built for {self.num_maps} maps; got {len(maps)}")
        size = maps[-1].shape[-2:]
        out = []
        for i, x in enumerate(maps):
            y = self.blocks[i](F.adaptive_avg_pool2d(x, size))
            phi = self.phi[i if len(self.phi) > 1 else 0]
            out.append(torch.softmax(phi(y).flatten(1), dim=1))
        return torch.stack(out, dim=1)


def diversity_loss(maps: torch.Tensor, form: str = "unit") -> torch.Tensor:
    """L_div (Eqs. 7-8, our reading) of ``maps`` (B, n, P), each map a distribution over P positions.

    CCMP: ``X*_j = max_l maps[:, l, j]``; ``h = sum_j X*_j / n`` (in [1/n, 1]). ``form="unit"``:
    ``(1 - h) / (1 - 1/n)`` in [0, 1], 0 for maps with disjoint support and 1 for identical maps;
    ``form="mcloss"``: ``1 - h`` (MC-Loss's diversity term). Batch mean.
    """
    check_choice("div_form", form, DIV_FORMS)
    if maps.dim() != 3 or maps.shape[1] < 2:
        raise ValueError(f"maps must be (batch, n >= 2, positions); got shape {tuple(maps.shape)}")
    n = maps.shape[1]
    h = maps.amax(dim=1).sum(dim=1) / n
    per_image = 1.0 - h if form == "mcloss" else (1.0 - h) / (1.0 - 1.0 / n)
    return per_image.mean()


def combine_predictions(branch_logits: Sequence[torch.Tensor], mode: str = "prob") -> torch.Tensor:
    """The test-time prediction of sec. 3.3: ``log(mean_k softmax(z_k))`` (``"prob"``, a logits tensor
    whose softmax is the averaged probabilities) or ``mean_k z_k`` (``"logits"``)."""
    check_choice("combine", mode, COMBINE_MODES)
    stacked = torch.stack(list(branch_logits))
    if mode == "logits":
        return stacked.mean(dim=0)
    return torch.logsumexp(F.log_softmax(stacked, dim=-1), dim=0) - math.log(stacked.shape[0])


# ----------------------------------------------------------------------------- the network
class CRASMRA(nn.Module):
    """The multi-stage network of Fig. 2 (see the module docstring).

    ``forward(images)`` returns ``ModelOutput(logits, extras)``; ``logits`` is the average of the
    branches (``config.combine``), ``extras`` holds ``branch_logits`` (``stage3``, ``stage4``,
    ``stage5``, ``concat``), ``features`` ({stage: X_e}), ``backbone_maps`` ({stage: X, the map the
    backbone stage produced}), ``channel_importance`` ({stage: I}, cram/cbam), ``suppression_mask``
    ({stage: S}, cram), ``spatial_attention`` ({stage: M_s}, cbam), in training with SMRAM
    ``smram_maps`` (B, n, H_L * W_L), and ``cra_smra_config``.
    """

    def __init__(self, backbone: FeatureBackbone, num_classes: int, config: Optional[CRASMRAConfig] = None):
        super().__init__()
        config = CRASMRAConfig() if config is None else config
        config.validate()
        if not isinstance(backbone, FeatureBackbone):
            raise TypeError(f"backbone must be a FeatureBackbone from fgvc_lib.backbones.build_backbone; "
                            f"got {type(backbone).__name__}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
        self.config, self.num_classes, self.backbone = config, num_classes, backbone
        self.stages = cra_smra_stages(backbone, config.stages)
        if config.smram and len(self.stages) < 2:
            raise ValueError(f"smram needs at least 2 stages; got {self.stages}")
        names = branch_names_for(len(self.stages))
        self.stage_branches: "OrderedDict[str, str]" = OrderedDict(zip(names[:-1], self.stages))
        self.branch_names: Tuple[str, ...] = names
        width = config.unified_channels or backbone.stage_channels[self.stages[0]]
        self.unified_channels = width
        sites = OrderedDict()
        for stage in self.stages:
            channels = backbone.stage_channels[stage]
            if config.attention == "cram":
                sites[stage] = ChannelReAttention(channels, width, config.reduction, config.omega, config.delta,
                                                  config.unify_kernel, config.suppress_source)
            elif config.attention == "cbam":
                sites[stage] = CBAMSite(channels, width, config.reduction, config.cbam_kernel, config.unify_kernel)
            else:
                sites[stage] = PlainSite(channels, width, config.unify_kernel)
        self.sites = nn.ModuleDict(sites)
        heads = OrderedDict((name, nn.Linear(width, num_classes)) for name in self.stage_branches)
        heads[CONCAT_BRANCH] = nn.Linear(width * len(self.stages), num_classes)
        self.heads = nn.ModuleDict(heads)
        self.smram = (SpatialMultiRegionAttention(width, len(self.stages), config.smram_shared_phi)
                      if config.smram else None)

    def forward(self, images: torch.Tensor) -> ModelOutput:
        if images.dim() != 4:
            raise ValueError(f"images must be a (B, 3, H, W) batch; got shape {tuple(images.shape)}")
        suppress = self.training or self.config.suppress_at_test
        x, previous = images, None
        features: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        raw: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        importance, masks, spatial = OrderedDict(), OrderedDict(), OrderedDict()
        for stage in self.stages:
            x = self.backbone.forward_between(x, previous, stage)
            raw[stage] = x
            out = self.sites[stage](x, suppress=suppress)
            features[stage] = out["enhanced"]                  # X_e: the stage's output
            if "importance" in out:
                importance[stage] = out["importance"]
            if "mask" in out:
                masks[stage] = out["mask"]
            if "spatial_attention" in out:
                spatial[stage] = out["spatial_attention"]
            x, previous = out["suppressed"], stage           # X_s feeds the next stage
        pooled = [features[stage].mean(dim=(2, 3)) for stage in self.stages]
        logits: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        for (name, _), vector in zip(self.stage_branches.items(), pooled):
            logits[name] = self.heads[name](vector)
        logits[CONCAT_BRANCH] = self.heads[CONCAT_BRANCH](torch.cat(pooled, dim=1))
        extras: Dict[str, object] = {"branch_logits": logits, "features": features, "backbone_maps": raw,
                                     "cra_smra_config": self.config}
        if importance:
            extras["channel_importance"] = importance
        if masks:
            extras["suppression_mask"] = masks
        if spatial:
            extras["spatial_attention"] = spatial
        if self.training and self.smram is not None:          # SMRAM: training only (Fig. 2)
            extras["smram_maps"] = self.smram(list(features.values()))
        final = combine_predictions(list(logits.values()), self.config.combine)
        return ModelOutput(final, extras)

    # --- learning rates (sec. 4.1) ---
    def lr_groups(self) -> List[Tuple[str, List[nn.Parameter], float]]:
        """``[(name, parameters, lr multiplier)]`` partitioning the trainable parameters.

        ``backbone`` x1 and ``smram`` x1 (2e-4), ``cram`` (the sites: CRAM / CBAM and the unifying
        convolutions) x ``cram_lr / lr`` (6e-3 / 2e-4 = 30), ``heads`` at CRAM's multiplier
        (``head_lr="cram"``) or x1. Empty groups are left out.
        """
        multiplier = self.config.cram_lr_multiplier
        groups = [("backbone", self.backbone.parameters(), 1.0),
                  ("cram", self.sites.parameters(), multiplier),
                  ("smram", self.smram.parameters() if self.smram is not None else iter(()), 1.0),
                  ("heads", self.heads.parameters(), multiplier if self.config.head_lr == "cram" else 1.0)]
        out = []
        for name, params, mult in groups:
            params = [p for p in params if p.requires_grad]
            if params:
                out.append((name, params, mult))
        return out

    def cam_layers(self) -> "OrderedDict[str, nn.Module]":
        """``{stage: module}``: the module whose output is that stage's X_e (its unifying convolution)."""
        return OrderedDict((stage, self.sites[stage].unify) for stage in self.stages)

    def cam_target_layers(self, branch: Optional[str] = None) -> List[nn.Module]:
        """Grad-CAM targets: a stage branch reads its own X_e; ``concat`` and the final prediction
        (``None``/``"final"``) read all of them."""
        layers = self.cam_layers()
        if branch in (None, "final", CONCAT_BRANCH):
            return list(layers.values())
        if branch not in self.stage_branches:
            raise ValueError(f"unknown branch {branch!r}; valid: final, {', '.join(self.branch_names)}")
        return [layers[self.stage_branches[branch]]]

    def extra_repr(self) -> str:
        c = self.config
        return (f"attention={c.attention}, smram={c.smram}, stages={self.stages}, C_a={self.unified_channels}, "
                f"omega={c.omega}, delta={c.delta}, combine={c.combine}")


def build_cra_smra(backbone: FeatureBackbone, num_classes: int, config: Optional[CRASMRAConfig] = None) -> CRASMRA:
    """CRA-SMRA on ``backbone`` with ``num_classes`` outputs per branch; ``config`` defaults to the paper's."""
    return CRASMRA(backbone, num_classes, config)


@torch.no_grad()
def stage_activation_maps(model: CRASMRA, images: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
    """Fig. 4's activation maps: ``{stage: channel mean of X_e}``, each (B, H_l, W_l), in eval mode
    (the model's mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        features = model(images).extras["features"]
    finally:
        model.train(was_training)
    return OrderedDict((stage, x.mean(dim=1)) for stage, x in features.items())


# ----------------------------------------------------------------------------- loss (sec. 3.3)
LOSS_PAIRINGS = ("concat", "stages")   # alpha weighs CE(concat) (default) | alpha weighs each CE(stage_i)


class CRASMRALoss:
    """Eqs. 9-10 as named terms, each already weighted (use engine weights of 1; their sum is L).

    ``ce_concat`` = alpha * CE(y, concat), ``ce_stage3`` .. ``ce_stage5`` = beta * CE(y, stage_i) (their
    sum is beta * sum_i CE), and ``div`` = gamma * L_div when the output carries SMRAM's maps (training
    with SMRAM; there is no L_div at test time). :class:`StagePairedCRASMRALoss` swaps alpha and beta.
    """

    # which CE alpha weighs (LOSS_PAIRINGS); a class attribute, so that a default loss's description
    # (fgvc_lib.study.jobs.describe: its type and instance state) is the one its runs were keyed with
    pairing = "concat"

    def __init__(self, config: Optional[CRASMRAConfig] = None):
        self.config = CRASMRAConfig() if config is None else config
        self.config.validate()

    def __call__(self, output: ModelOutput, targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        c = self.config
        branches = output.extras.get("branch_logits") if isinstance(output.extras, dict) else None
        if not branches or CONCAT_BRANCH not in branches:
            raise ValueError("the CRA-SMRA loss needs output.extras['branch_logits'] with a 'concat' branch "
                             "(a CRASMRA model's output)")
        concat_weight, stage_weight = (c.alpha, c.beta) if self.pairing == "concat" else (c.beta, c.alpha)
        terms: Dict[str, torch.Tensor] = {"ce_concat": concat_weight * F.cross_entropy(branches[CONCAT_BRANCH],
                                                                                       targets)}
        for name, logits in branches.items():
            if name != CONCAT_BRANCH:
                terms[f"ce_{name}"] = stage_weight * F.cross_entropy(logits, targets)
        maps = output.extras.get("smram_maps")
        if maps is not None:
            terms["div"] = c.gamma * diversity_loss(maps, c.div_form)
        return terms


class StagePairedCRASMRALoss(CRASMRALoss):
    """Eq. 10's other reading (sec. 3.3 lists "each stage, overall, L_div" before "alpha, beta, gamma"):
    ``ce_stage3`` .. ``ce_stage5`` = alpha * CE(y, stage_i), ``ce_concat`` = beta * CE(y, concat),
    ``div`` = gamma * L_div."""

    pairing = "stages"


def cra_smra_loss(config: Optional[CRASMRAConfig] = None, pairing: str = "concat") -> CRASMRALoss:
    """The loss of Eq. 10 for ``config`` (build the model and the loss from the same config); ``pairing``
    (:data:`LOSS_PAIRINGS`): which cross-entropy alpha weighs, the concatenated feature's ("concat",
    :class:`CRASMRALoss`) or each stage's ("stages", :class:`StagePairedCRASMRALoss`)."""
    check_choice("loss pairing", pairing, LOSS_PAIRINGS)
    return (CRASMRALoss if pairing == "concat" else StagePairedCRASMRALoss)(config)
