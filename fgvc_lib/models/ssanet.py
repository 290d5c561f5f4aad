"""SSANet: spatial self-attention network with self-attention distillation (the model and its loss).

Implements Baffour et al., "Spatial self-attention network with self-attention distillation for
fine-grained image recognition", JVCIR 81 (2021) 103368: the feature extractor (sec. 3.1), the SSA
block (sec. 3.2, Eqs. 1-2, in :mod:`.ssa_module`), the two classifier heads (sec. 3.4), the
self-attention distillation loss (sec. 3.3, Eqs. 3-5) and the ablation rows of Tables 2 and 3.

Architecture: ``images -> FE (VGG-16 up to pool5, frozen) -> F``; the FE head classifies ``F``; the
SSA block turns ``F`` into ``H`` and the SSA head classifies ``H``. Each head is
``GAP -> FC(1024) -> BatchNorm1d -> ReLU -> FC(num_classes)``; sec. 3.4 names no activation between
the batch norm and the softmax output layer, the ReLU is our choice (``head_activation``).

Table 2 rows as configurations (``SSANetConfig.variant``; our reading, see ``VARIANTS``):

============  =========  ===========  ============================================
variant       SSA block  aggregation  alpha
============  =========  ===========  ============================================
no-attention  absent     --           --        (FE + its head only)
no-alpha      present    none         absent (constant 1): H = S C
alpha         present    none         learnable, init 0:   H = alpha S C
multiply      present    multiply     learnable, init 0:   H = alpha (S C) * F  (Eq. 2)
plus          present    plus         learnable, init 0:   H = alpha S C + F    (Eq. 1)
============  =========  ===========  ============================================

Why no-alpha / alpha have no aggregation: the paper calls multiply and plus the "fully fleshed"
models and introduces alpha inside Eqs. (1)-(2); if alpha used Eq. (1) it would be the same network
as plus, yet Table 2 prints 82.7 vs 88.4 on CUB with the same loss (Table 3). The rows therefore
read as cumulative: attention alone, then alpha, then aggregation with F. ``aggregation`` and
``learnable_alpha`` can override the preset to test the other reading.

Loss (``loss="ad"``, Eq. 5 = Eq. 3 + Eq. 4): ``L = CE(y, y_SSA) + KL(y_SSA, y_FE) + gamma * CE(y, y_SSA)``
with gamma = 0.5 and the KL at temperature T = 1 (Eq. 4 has none); the FE head is trained by the KL
term alone, as the equations are printed. ``gamma_ce_head="fe"`` is the other reading of Eq. 4, in
which gamma weighs a cross-entropy on the FE head, ``gamma * CE(y, y_FE)`` (the usual form of
distillation, where the student also sees the labels). ``loss="ce"`` is Table 3's alternative:
``CE(y, y_SSA) + CE(y, y_FE)``. ``no-attention`` trains its FE head with CE.

Speed: while the extractor is frozen its output depends on the image alone, so the model keeps a
bounded memo of ``F`` per input image (:mod:`.frozen_features`) and runs the extractor only on images
it has not seen; ``feature_memo=False`` turns it off. The memo is shared on disk by every run whose
extractor has the same weights (``<cache dir>/frozen_features``, keyed by a hash of the extractor's
weights): the model writes the memo's new entries whenever it changes mode (``train()``/``eval()``,
which the engine calls at every epoch and around every evaluation), and a new model reads them on its
first forward. It is not part of the configuration: it changes how fast a run is, not what it computes
(every entry is what a batched forward gives, whichever run computed it).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..backbones import FeatureBackbone, build_backbone, is_vgg
from ..run_keys import UNKEYED
from .frozen_features import FrozenFeatureMemo, module_state_token, weights_fingerprint
from .config_checks import check_choice
from .output import ModelOutput
from .ssa_module import AGGREGATIONS, SSANetSelfAttention

# Table 2 rows -> (SSA block present, aggregation, learnable alpha).
VARIANTS: Dict[str, Dict[str, object]] = {
    "no-attention": {"attention": False, "aggregation": None, "learnable_alpha": None},
    "no-alpha": {"attention": True, "aggregation": "none", "learnable_alpha": False},
    "alpha": {"attention": True, "aggregation": "none", "learnable_alpha": True},
    "multiply": {"attention": True, "aggregation": "multiply", "learnable_alpha": True},
    "plus": {"attention": True, "aggregation": "plus", "learnable_alpha": True},
}
LOSSES = ("ad", "ce")                   # Eq. 5 (self-attention distillation) | Table 3's L_CE
PREDICT_HEADS = ("ssa", "fe", "mean")
KL_DIRECTIONS = ("ssa_to_fe", "fe_to_ssa")  # KL(p_SSA || p_FE) | KL(p_FE || p_SSA)
GAMMA_CE_HEADS = ("ssa", "fe")          # Eq. 4's gamma * CE on y_SSA (as printed) | on y_FE (other reading)
HEAD_ACTIVATIONS = ("relu", "none")

@dataclass
class SSANetConfig:
    """SSANet's method and recipe; defaults are the paper's (symbol / section in each comment)."""

    # --- model ---
    variant: str = "plus"                  # Table 2 row; "plus" is the full SSANet (Eq. 1)
    aggregation: Optional[str] = None      # Eqs. 1-2: "plus" | "multiply" | "none"; None = variant's preset
    learnable_alpha: Optional[bool] = None  # alpha, sec. 3.2; None = variant's preset
    alpha_init: float = 0.0                # alpha = 0 at start, sec. 3.2
    qk_reduction: int = 1                  # sec. 3.2: A, B, C have K channels like F (DANet uses 8)
    scale_energy: bool = False             # sec. 3.2: plain softmax of A_i . B_j, no 1/sqrt(d)
    feature_stage: Optional[str] = None    # sec. 4.1: last conv after max-pool -> "pool5" for VGG
    freeze_backbone: bool = True           # sec. 4.1: ImageNet weights of the FE are not updated
    head_hidden: int = 1024                # sec. 3.4: FC of 1024 units, then 1-D batch norm
    head_activation: str = "relu"          # sec. 3.4 lists GAP, FC 1024, 1-D BN, softmax output and names no
                                           # activation: our choice "relu" between BN and the output layer;
                                           # "none" feeds BN straight into the output layer
    head_dropout: float = 0.0              # not stated: no dropout
    predict_head: str = "ssa"              # not stated: Eq. 3 calls y_SSA "the predicted label";
                                           # "fe", or "mean" (average of the two heads' logits)
    # --- loss (sec. 3.3) ---
    loss: str = "ad"                       # Eq. 5 ("ad") | Table 3's plain cross-entropy ("ce")
    gamma: float = 0.5                     # gamma, Eq. 4
    gamma_ce_head: str = "ssa"             # Eq. 4 as printed: gamma * CE(y, y_SSA) ("ssa"); the other reading
                                           # "fe": gamma * CE(y, y_FE), a label loss on the FE head
    kl_direction: str = "ssa_to_fe"        # KDL(y_SSA, y_FE), Eq. 4, read as KL(p_SSA || p_FE)
    detach_teacher: bool = False           # not stated: Eq. 5 has no stop-gradient on the SSA side
    kl_temperature: float = 1.0            # T, sec. 3.3 / Eq. 4: KDL of the two heads' outputs with no
                                           # temperature, i.e. T = 1
    # --- recipe (sec. 4.1) ---
    # No model or loss reads these, so they are UNKEYED. The optimiser settings reach a run through
    # train_config_kwargs, which the plan (fgvc_lib.papers.ssanet.plan) copies into the variant's TrainConfig,
    # and epochs and batch size as the paper profile's recipe (Paper.recipe_epochs/recipe_batch_size): the
    # run key hashes the TrainConfig and the data themselves.
    backbone: str = field(default="vgg16", metadata=UNKEYED)  # sec. 3.1: VGG-16 pre-trained on ImageNet
                                           # (unkeyed: the plan records it, a test reads it; a run's backbone
                                           # is the study's BackboneSpec, which the key hashes)
    image_size: int = field(default=448, metadata=UNKEYED)  # sec. 4.1: train and test images resized to
                                           # 448x448 (unkeyed: only a test reads it; a run's size is its data's)
    hflip: bool = field(default=True, metadata=UNKEYED)  # sec. 4.1: horizontal flips of training images
                                           # (unkeyed: only a test reads it; flips are the data pipeline's)
    optimizer: str = field(default="sgd", metadata=UNKEYED)  # sec. 4.1: SGD (unkeyed: into TrainConfig)
    momentum: float = field(default=0.9, metadata=UNKEYED)  # sec. 4.1 (unkeyed: into TrainConfig)
    weight_decay: float = field(default=5e-4, metadata=UNKEYED)  # sec. 4.1 (unkeyed: into TrainConfig)
    lr: float = field(default=1e-3, metadata=UNKEYED)  # sec. 4.1 (unkeyed: into TrainConfig)
    scheduler: str = field(default="plateau", metadata=UNKEYED)  # sec. 4.1: reduce the lr when learning
                                           # stagnates (unkeyed: into TrainConfig)
    plateau_factor: float = field(default=0.3, metadata=UNKEYED)  # sec. 4.1: by a factor of 0.3 (unkeyed:
                                           # into TrainConfig)
    # Not stated in the paper (our choices for the paper profile; the cpu/smoke profiles set their own):
    epochs: int = field(default=60, metadata=UNKEYED)  # not stated: long enough for two or three lr
                                           # reductions (unkeyed: the paper profile's recipe_epochs)
    batch_size: int = field(default=16, metadata=UNKEYED)  # not stated: a usual batch for 448 px VGG-16 on
                                           # one GPU (unkeyed: the paper profile's recipe_batch_size)
    plateau_patience: int = field(default=3, metadata=UNKEYED)  # not stated: epochs without a lower
                                           # training loss (unkeyed: into TrainConfig)

    def __post_init__(self) -> None:
        check_choice("variant", self.variant, tuple(VARIANTS))
        if self.aggregation is not None:
            check_choice("aggregation", self.aggregation, AGGREGATIONS)
        check_choice("loss", self.loss, LOSSES)
        check_choice("predict_head", self.predict_head, PREDICT_HEADS)
        check_choice("kl_direction", self.kl_direction, KL_DIRECTIONS)
        check_choice("gamma_ce_head", self.gamma_ce_head, GAMMA_CE_HEADS)
        check_choice("head_activation", self.head_activation, HEAD_ACTIVATIONS)
        if not isinstance(self.head_hidden, int) or self.head_hidden < 1:
            raise ValueError(f"head_hidden must be a positive integer (paper: 1024); got {self.head_hidden!r}")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"head_dropout must be in [0, 1); got {self.head_dropout!r}")
        if not isinstance(self.qk_reduction, int) or self.qk_reduction < 1:
            raise ValueError(f"qk_reduction must be a positive integer (1 = paper, 8 = DANet); got {self.qk_reduction!r}")
        for name in ("epochs", "batch_size", "plateau_patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "plateau_patience" else 1):
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive (paper: 1e-3); got {self.lr!r}")
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0 (paper: 0.5); got {self.gamma!r}")
        if not self.kl_temperature > 0:
            raise ValueError(f"kl_temperature must be > 0 (1 = no temperature); got {self.kl_temperature!r}")

    @property
    def attention(self) -> bool:
        """Whether this variant has the SSA block (every row but no-attention)."""
        return bool(VARIANTS[self.variant]["attention"])

    @property
    def resolved_aggregation(self) -> Optional[str]:
        if not self.attention:
            return None
        return self.aggregation if self.aggregation is not None else VARIANTS[self.variant]["aggregation"]

    @property
    def resolved_learnable_alpha(self) -> Optional[bool]:
        if not self.attention:
            return None
        preset = VARIANTS[self.variant]["learnable_alpha"]
        return bool(self.learnable_alpha if self.learnable_alpha is not None else preset)

    def replace(self, **changes) -> "SSANetConfig":
        return dataclasses.replace(self, **changes)

    def train_config_kwargs(self) -> Dict[str, object]:
        """The paper's optimiser recipe as keyword arguments of ``fgvc_lib.engine.TrainConfig``."""
        return {"optimizer": self.optimizer, "lr": self.lr, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "scheduler": self.scheduler,
                "plateau_factor": self.plateau_factor, "plateau_patience": self.plateau_patience}


class ClassifierHead(nn.Module):
    """Sec. 3.4: global average pooling, FC(hidden), BatchNorm1d, [ReLU], [dropout], FC(num_classes).

    Returns logits; the paper's softmax output layer is the softmax inside the loss.
    """

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 1024, activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        check_choice("head_activation", activation, HEAD_ACTIVATIONS)
        self.fc = nn.Linear(in_channels, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.act = nn.ReLU(inplace=True) if activation == "relu" else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = features.mean(dim=(2, 3))
        return self.out(self.dropout(self.act(self.bn(self.fc(pooled)))))


class SSANet(nn.Module):
    """FE (+ SSA block) with one classifier head each; see the module docstring.

    ``forward(images)`` returns ``ModelOutput(logits, extras)`` with
    ``extras["branch_logits"] = {"fe": ..., "ssa": ...}`` (only ``"fe"`` for no-attention),
    ``extras["attention"]`` = the SSA map ``S`` (B, N, N) and ``extras["alpha"]`` (detached scalar)
    for attention variants. ``logits`` is the head chosen by ``config.predict_head``.

    ``feature_memo``: True keeps a :class:`~.frozen_features.FrozenFeatureMemo` of the frozen
    extractor's output per image (default size, CPU only, shared on disk under the cache folder), a
    memo instance uses that one (``FrozenFeatureMemo(disk=False)``: memory only), False none. It is
    consulted only while the extractor is frozen (see :meth:`features`), and saved to disk whenever
    the model changes mode (:meth:`train`).
    """

    def __init__(self, backbone: FeatureBackbone, num_classes: int, config: Optional[SSANetConfig] = None,
                 feature_memo: Union[bool, FrozenFeatureMemo] = True):
        super().__init__()
        config = config or SSANetConfig()
        if not isinstance(backbone, FeatureBackbone):
            raise TypeError(f"backbone must be a FeatureBackbone from fgvc_lib.backbones.build_backbone; "
                            f"got {type(backbone).__name__}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
        if not isinstance(feature_memo, (bool, FrozenFeatureMemo)):
            raise TypeError(f"feature_memo must be True, False or a FrozenFeatureMemo; got {feature_memo!r}")
        self.config = config
        self.num_classes = num_classes
        self.backbone = backbone
        if feature_memo is True:
            feature_memo = FrozenFeatureMemo()
        # (an empty memo is falsy: it has a length)
        self.feature_memo: Optional[FrozenFeatureMemo] = feature_memo if feature_memo is not False else None
        stage = config.feature_stage or ("pool5" if is_vgg(backbone.name) else backbone.top_stage)
        backbone.check_stages([stage])
        self.feature_stage = stage
        channels = backbone.stage_channels[stage]
        head = dict(hidden=config.head_hidden, activation=config.head_activation, dropout=config.head_dropout)
        self.fe_tap = nn.Identity()   # F, the FE output both heads build on (Grad-CAM target)
        self.fe_head = ClassifierHead(channels, num_classes, **head)
        if config.attention:
            self.ssa = SSANetSelfAttention(channels, aggregation=config.resolved_aggregation,
                                           learnable_alpha=config.resolved_learnable_alpha,
                                           alpha_init=config.alpha_init, qk_reduction=config.qk_reduction,
                                           scale_energy=config.scale_energy)
            self.ssa_tap = nn.Identity()  # H, the SSA block output (Grad-CAM target)
            self.ssa_head = ClassifierHead(channels, num_classes, **head)
            self.branch_names: Tuple[str, ...] = ("fe", "ssa")
        else:
            self.ssa = self.ssa_tap = self.ssa_head = None
            self.branch_names = ("fe",)
        self.backbone_frozen = False
        self.set_backbone_frozen(config.freeze_backbone)

    # --- freezing (sec. 4.1) ---
    def set_backbone_frozen(self, frozen: bool) -> None:
        """Freeze (no gradients, always eval mode) or unfreeze the feature extractor."""
        if getattr(self, "feature_memo", None) is not None:
            self.feature_memo.clear()
        self.backbone_frozen = bool(frozen)
        for p in self.backbone.parameters():
            p.requires_grad_(not frozen)
        if frozen:
            self.backbone.eval()
        else:
            self.backbone.train(self.training)

    def train(self, mode: bool = True) -> "SSANet":
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()  # a frozen extractor keeps its inference behaviour (BN stats, dropout)
        memo = getattr(self, "feature_memo", None)
        if memo is not None:
            # A change of mode marks the end of a stretch of forwards (the engine calls train() at the
            # start of every epoch, eval() and train() around every evaluation): put the features
            # computed since the last save on disk for the other runs (a no-op when there are none).
            memo.save()
        return self

    # --- forward ---
    def _extract(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images, (self.feature_stage,))[self.feature_stage]

    def extractor_fingerprint(self) -> str:
        """What the frozen extractor computes, as a hash (names the feature memo's disk files): the
        backbone's structure and weights, and the stage read as F."""
        return weights_fingerprint(self.backbone, type(self.backbone).__qualname__, self.backbone.name,
                                   self.feature_stage)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The primary feature map F (sec. 3.1).

        A frozen extractor runs without gradients, and its output for an image seen before comes from
        the feature memo when the memo applies (extractor in eval mode, no hooks on it, a device the
        memo is set for); an unfrozen extractor always runs and trains."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (batch, 3, H, W); got {tuple(images.shape)}")
        images = images.contiguous()  # channels_last input can crash slim-net backward on CPU
        if not self.backbone_frozen:
            return self._extract(images)
        memo = self.feature_memo
        if memo is not None and memo.applies(self.backbone, images):
            feats = memo(self._extract, images, module_state_token(self.backbone), self.extractor_fingerprint)
        else:
            with torch.no_grad():  # no activations stored for the frozen extractor
                feats = self._extract(images)
        # F becomes a gradient leaf, so hooks on it (Grad-CAM) see gradients; backprop stops here.
        return feats.requires_grad_(torch.is_grad_enabled())

    def forward(self, images: torch.Tensor) -> ModelOutput:
        feats = self.fe_tap(self.features(images))
        fe_logits = self.fe_head(feats)
        branches = {"fe": fe_logits}
        extras: Dict[str, object] = {"branch_logits": branches}
        if self.ssa is None:
            return ModelOutput(fe_logits, extras)
        h, attention = self.ssa(feats, return_attention=True)
        ssa_logits = self.ssa_head(self.ssa_tap(h))
        branches["ssa"] = ssa_logits
        extras["attention"] = attention
        extras["alpha"] = self.ssa.alpha.detach()
        head = self.config.predict_head
        if head == "ssa":
            logits = ssa_logits
        elif head == "fe":
            logits = fe_logits
        else:
            logits = 0.5 * (fe_logits + ssa_logits)
        return ModelOutput(logits, extras)

    def cam_target_layers(self, branch: Optional[str] = None) -> List[nn.Module]:
        """Grad-CAM targets: H (the SSA block output) for the SSA head, F (pool5) for the FE head.

        ``branch`` None/"final" follows ``predict_head`` ("mean" targets both maps). F is taken at
        pool5 (an identity tap after the extractor), not at the backbone's last convolution: with a
        frozen extractor nothing inside it carries gradients, and F is the map both heads read.
        """
        if self.ssa is None:
            return [self.fe_tap]
        branch = self.config.predict_head if branch in (None, "final") else branch
        check_choice("branch", branch, PREDICT_HEADS)
        return {"ssa": [self.ssa_tap], "fe": [self.fe_tap], "mean": [self.fe_tap, self.ssa_tap]}[branch]


def build_ssanet(backbone: Union[str, FeatureBackbone], num_classes: int, config: Optional[SSANetConfig] = None,
                 feature_memo: Union[bool, FrozenFeatureMemo] = True, **backbone_kwargs) -> SSANet:
    """Build SSANet on ``backbone`` (a FeatureBackbone, or a name passed to ``build_backbone`` with
    ``backbone_kwargs`` such as ``pretrained`` and ``width``); ``feature_memo`` as in :class:`SSANet`."""
    config = config or SSANetConfig()
    if isinstance(backbone, str):
        backbone = build_backbone(backbone, **backbone_kwargs)
    elif backbone_kwargs:
        raise TypeError(f"backbone_kwargs {sorted(backbone_kwargs)} only apply when backbone is a name")
    return SSANet(backbone, num_classes, config, feature_memo=feature_memo)


# --- loss (sec. 3.3) ---

def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Batch-mean ``KL(softmax(p/T) || softmax(q/T)) * T**2`` (the T**2 keeps gradient scale; T=1: none)."""
    log_p = F.log_softmax(p_logits / temperature, dim=1)
    log_q = F.log_softmax(q_logits / temperature, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1).mean() * temperature ** 2


class SSANetLoss:
    """SSANet's loss as named terms; every term already carries its weight, so their sum is the loss.

    * ``loss="ad"`` (Eq. 5 = Eq. 3 + Eq. 4): ``ce_ssa`` = CE(y, y_SSA) (Eq. 3), ``kl_ssa_fe`` =
      KL(p_SSA || p_FE) at temperature T (Eq. 4; ``kl_fe_ssa`` with ``kl_direction="fe_to_ssa"``),
      ``ce_ssa_gamma`` = gamma * CE(y, y_SSA) (Eq. 4 as printed). The FE head gets gradient from the
      KL term only. With ``gamma_ce_head="fe"`` the last term is ``ce_fe_gamma`` = gamma * CE(y, y_FE)
      (the other reading of Eq. 4), and the FE head also learns from the labels.
    * ``loss="ce"`` (Table 3): ``ce_ssa`` and ``ce_fe``.
    * variant ``no-attention``: ``ce_fe`` only.

    Use engine weights of 1 (the default) for every term.
    """

    def __init__(self, config: Optional[SSANetConfig] = None):
        self.config = config or SSANetConfig()
        c = self.config
        if not c.attention:
            self.term_names: Tuple[str, ...] = ("ce_fe",)
        elif c.loss == "ce":
            self.term_names = ("ce_ssa", "ce_fe")
        else:
            kl = "kl_ssa_fe" if c.kl_direction == "ssa_to_fe" else "kl_fe_ssa"
            self.term_names = ("ce_ssa", kl, "ce_ssa_gamma" if c.gamma_ce_head == "ssa" else "ce_fe_gamma")

    def __call__(self, output: ModelOutput, targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        c = self.config
        branches = output.extras.get("branch_logits", {})
        needed = ("fe", "ssa") if c.attention else ("fe",)
        missing = [b for b in needed if b not in branches]
        if missing:
            raise ValueError(f"the SSANet loss for variant {c.variant!r} needs branch logits {needed} in "
                             f"output.extras['branch_logits']; missing {missing}. Build the model and the "
                             f"loss from the same SSANetConfig.")
        fe = branches["fe"]
        if not c.attention:
            return {"ce_fe": F.cross_entropy(fe, targets)}
        ssa = branches["ssa"]
        ce_ssa = F.cross_entropy(ssa, targets)
        if c.loss == "ce":
            return {"ce_ssa": ce_ssa, "ce_fe": F.cross_entropy(fe, targets)}
        teacher = ssa.detach() if c.detach_teacher else ssa
        if c.kl_direction == "ssa_to_fe":
            kl_name, kl = "kl_ssa_fe", kl_divergence(teacher, fe, c.kl_temperature)
        else:
            kl_name, kl = "kl_fe_ssa", kl_divergence(fe, teacher, c.kl_temperature)
        if c.gamma_ce_head == "fe":
            return {"ce_ssa": ce_ssa, kl_name: kl, "ce_fe_gamma": c.gamma * F.cross_entropy(fe, targets)}
        return {"ce_ssa": ce_ssa, kl_name: kl, "ce_ssa_gamma": c.gamma * ce_ssa}


def ssanet_loss(config: Optional[SSANetConfig] = None) -> SSANetLoss:
    """The loss function for ``config`` (Eq. 5, Table 3's CE, or CE for no-attention)."""
    return SSANetLoss(config)
