"""CRA-CNN: Contrastively-reinforced Attention CNN (Liu, Wang, Kato & Mase, BMVC 2020).

Training uses two streams joined by the ART module (Figure 2, section 3):

* N_cls, the classification stream: backbone, global average pooling, a linear classifier (the
  deployed network, identical to :class:`~fgvc_lib.models.baseline.BaselineNet`), plus one fully
  connected layer on the pooled features that predicts the attention parameters Gamma (section 4.1:
  "a fully-connected layer on the top of the last pooling layer");
* the ART module (:mod:`.cra_transform`): eq. 6 restricts Gamma, eq. 3-4 sample the attention
  image, eq. 5 gives the redundancy image;
* N_ar, the attention-regularization stream: a copy of the backbone with its own weights ("N_cls and
  N_ar always have the same network as the backbone"), pooling and its own classifier. It
  classifies the attention image and gives the features of the contrastive loss.

The loss (eq. 9, :func:`cra_cnn_loss`) is ``L_cls + L_cls_ar + L_res + L_cntr``: two
cross-entropies, the restriction loss of eq. 7 (:func:`restriction_loss`) and the triplet loss of
eq. 8 (:func:`contrastive_loss`). In eval mode only N_cls runs (section 3.2: "we remove N_ar and the
ART module"), so the deployed network costs what the baseline costs (:meth:`CRACNN.deployed`).

Section 4.1's schedule switches L_res on for the first 50 epochs, then off and on in blocks of 45
epochs (over the 230 epochs we assume, it ends switched on); :func:`restriction_active` maps a run's
epochs onto it, first epoch to first and last to last, so a shorter run ends switched on too, and
:meth:`CRACNN.start_epoch` (called by the engine before each epoch) sets the flag the loss reads.

:class:`StandaloneSTN` is an optional reference for Figure 4 that is not CRA-CNN: a plain spatial
transformer network (a localization network predicting six free affine entries, the sampler, and a
classifier on the sampled image) trained with cross-entropy alone.

Where the paper is silent or garbled, the choice is documented at :class:`CRACNNConfig`; the
official MatConvNet code's differing choices are options (:meth:`CRACNNConfig.official_code`).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..backbones import FeatureBackbone, min_image_size
from ..profiles import scale_epochs
from ..run_keys import KEYED_WHEN_SET
from .baseline import BaselineNet
from .cra_transform import (GAMMA_SIZE, REDUNDANCY_RESOLUTIONS, TRANSFORMS,
                            AttentionRedundancyTransformer)
from .config_checks import check_choice, check_int
from .output import ModelOutput

RESTRICTIONS = ("on", "off", "schedule", "code")   # L_res always | never | sec. 4.1 blocks | official code
DISTANCES = ("euclidean", "squared")               # d of eq. 8 | the official code's squared L2
PAIRINGS = ("consecutive", "random")               # images (0, 1), (2, 3), ... | random disjoint pairs
TRIPLETS = ("paper", "code")                       # eq. 8's (r^m, r^n, a^m) | the code's (a^m, a^n, r^m)
CONTRAST_FEATURES = ("logits", "pooled")           # f_ar: N_ar's last FC output | its pooled features
AR_BRANCH = "ar"
# The official code counts epochs of five passes each: L_res is on for its first 46 of 200 epochs.
CODE_EPOCHS = 200
CODE_RESTRICTION_EPOCHS = 46




@dataclass
class CRACNNConfig:
    """CRA-CNN's method; defaults are the paper's (symbol / equation / section in each comment)."""

    # --- ART module (section 3.1) ---
    transform: str = "restricted"          # "restricted": Gamma of eq. 4 + eq. 6 | "free": the six-entry
                                           # STN reference of Figure 4 (no tanh, no restriction, no L_res)
    attention_size: int = 224              # output side of the ART module (sec. 4.1: 448 px in, 224 px out)
    alpha_l: float = 0.5                   # alpha_l of eq. 6 (sec. 4.1), in (0, 1]
    alpha_s: float = 1.0                   # alpha_s of eq. 6 (sec. 4.1), in (0, 1]
    align_corners: bool = True             # grid convention (see cra_transform); True = the code's
    redundancy_resolution: str = "input"   # eq. 5 masked at input size, then resized ("attention": the
                                           # code's order, resize then mask)
    theta_grad_clip: Optional[float] = 1.0  # not in the paper, which is silent; the official code clips the
                                           # gradient reaching the affine matrix to [-1, 1] per image. Without
                                           # it (None) a slim ResNet-50 diverged within 3 epochs at lr 1e-3 in
                                           # our runs (Gamma ~1e17), so the code's clip is the default
    zero_init_gamma: bool = True           # not stated: Gamma FC weights 0 and bias at E (restricted) or at
                                           # the identity (free, as STNs start); False: torch's default init
    # --- restriction loss (eq. 7) ---
    expectation: Tuple[float, float, float, float] = (0.0, 0.0, 0.5, 0.0)   # E (sec. 4.1): centred half crop
    thresholds: Tuple[float, float, float, float] = (0.4, 0.4, 0.4, math.pi / 7)  # T (sec. 4.1); the angle
                                           # entry is garbled in our copy ("717"), read as pi/7; the code: pi
    restriction_eps: float = 1e-6          # eps of eq. 7 (value not stated)
    restriction_indicator_grad: bool = False  # eq. 7's max(0, z)/(z + eps) factor as a 0/1 switch without
                                           # gradient (True: differentiate it too; its slope is ~1/eps at z~0)
    restriction: str = "schedule"          # L_res on/off per epoch: sec. 4.1's blocks ("schedule")
    schedule_first: int = 50               # sec. 4.1: L_res on for the first 50 epochs,
    schedule_block: int = 45               # then off 45 epochs, on 45 epochs, ...
    schedule_epochs: int = 230             # length of the schedule a run is mapped onto (50 + 4 x 45: the official
                                           # code's schedule arrays; the paper gives no total)
    # --- contrastive loss (eq. 8) ---
    margin: float = 0.7                    # margin of eq. 8 (sec. 4.1); the code: 0.1
    distance: str = "euclidean"            # d of eq. 8: Euclidean; the code: squared L2
    pairing: str = "consecutive"           # image pairs (I^m, I^n): batch images (0, 1), (2, 3), ...; the
                                           # code: random disjoint pairs
    triplet: str = "paper"                 # eq. 8: anchor r^m, positive r^n, negative a^m; "code": a^m, a^n, r^m
    contrast_features: str = "logits"      # f_ar: "the output of the final fully connected layer in N_ar"
    # Not an option: random pairs are drawn from torch's global generator in the loss, after the epoch's crops
    # and flips since the loader draws those before its first batch (fgvc_lib.data.drawn); set from pairing,
    # and keyed only when set, so runs of random pairs drawn between batches keep other keys.
    pair_draws: Optional[str] = field(default=None, init=False, metadata=KEYED_WHEN_SET)

    def __post_init__(self) -> None:
        self.pair_draws = "after_augmentations" if self.pairing == "random" else None

    def validate(self) -> None:
        check_choice("transform", self.transform, TRANSFORMS)
        check_choice("redundancy_resolution", self.redundancy_resolution, REDUNDANCY_RESOLUTIONS)
        check_choice("restriction", self.restriction, RESTRICTIONS)
        check_choice("distance", self.distance, DISTANCES)
        check_choice("pairing", self.pairing, PAIRINGS)
        check_choice("triplet", self.triplet, TRIPLETS)
        check_choice("contrast_features", self.contrast_features, CONTRAST_FEATURES)
        check_int("attention_size", self.attention_size, 2)
        for name in ("alpha_l", "alpha_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
                raise ValueError(f"{name} (eq. 6) must be in (0, 1]; got {value!r}")
        for name in ("expectation", "thresholds"):
            value = getattr(self, name)
            if len(tuple(value)) != 4:
                raise ValueError(f"{name} must have 4 entries (location x, location y, scale, angle); got {value!r}")
        if any(t < 0 for t in self.thresholds):
            raise ValueError(f"thresholds (T of eq. 7) must be >= 0; got {self.thresholds!r}")
        e1, e2, e3, _ = self.expectation
        if max(abs(e1), abs(e2)) >= self.alpha_l or abs(e3) >= self.alpha_s:
            raise ValueError(f"expectation (E of eq. 7) must lie inside the restricted range of eq. 6: "
                             f"|e1|, |e2| < alpha_l={self.alpha_l} and |e3| < alpha_s={self.alpha_s}; "
                             f"got {self.expectation!r}")
        if self.theta_grad_clip is not None and not (isinstance(self.theta_grad_clip, (int, float))
                                                     and self.theta_grad_clip > 0):
            raise ValueError(f"theta_grad_clip must be > 0 or None (no clipping); got {self.theta_grad_clip!r}")
        if not self.restriction_eps > 0:
            raise ValueError(f"restriction_eps (eps of eq. 7) must be > 0; got {self.restriction_eps!r}")
        if not self.margin >= 0:
            raise ValueError(f"margin (eq. 8) must be >= 0; got {self.margin!r}")
        check_int("schedule_first", self.schedule_first, 0)
        check_int("schedule_block", self.schedule_block, 1)
        check_int("schedule_epochs", self.schedule_epochs, 1)
        if self.schedule_first > self.schedule_epochs:
            raise ValueError(f"schedule_first must be <= schedule_epochs ({self.schedule_epochs}); "
                             f"got {self.schedule_first}")

    def replace(self, **changes) -> "CRACNNConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def official_code(cls, **changes) -> "CRACNNConfig":
        """The official MatConvNet code's choices where they differ from the paper (and are cheap).

        Margin 0.1 on squared L2, random disjoint pairs, triplet (a^m, a^n, r^m), angle threshold pi,
        L_res switched off for good after its epoch 46 of 200, masking at attention resolution (its
        clip of the gradient reaching the affine matrix is our default too).
        """
        settings = dict(margin=0.1, distance="squared", pairing="random", triplet="code",
                        thresholds=(0.4, 0.4, 0.4, math.pi), restriction="code",
                        redundancy_resolution="attention")
        settings.update(changes)
        return cls(**settings)


def restriction_active(config: CRACNNConfig, epoch: int, epochs: int) -> bool:
    """Whether L_res is on in ``epoch`` (0-based) of a run of ``epochs`` epochs.

    ``"schedule"`` (sec. 4.1): over ``schedule_epochs`` epochs, on for the first ``schedule_first``,
    then off and on in alternating blocks of ``schedule_block`` epochs (off first). A run of another
    length reads the schedule at the epoch its own epoch maps to, ``round(epoch * (schedule_epochs - 1)
    / (epochs - 1))``: its first epoch is the schedule's first (on) and its last epoch the schedule's
    last (on over 230 epochs, as in the paper), so a short run ends in the paper's last phase. (Scaling
    the block lengths instead, as we once did, made the cpu profile's 8 epochs end switched off.)
    ``"code"``: on for the first 46/200 of the run, off afterwards (the official code).
    """
    check_choice("restriction", config.restriction, RESTRICTIONS)
    check_int("epochs", epochs, 1)
    if not isinstance(epoch, int) or not 0 <= epoch < epochs:
        raise ValueError(f"epoch must be an integer in [0, {epochs}); got {epoch!r}")
    if config.restriction in ("on", "off"):
        return config.restriction == "on"
    if config.restriction == "code":
        return epoch < scale_epochs(CODE_EPOCHS, CODE_RESTRICTION_EPOCHS, epochs)
    return schedule_phase_on(config, _schedule_epoch(epoch, epochs, config.schedule_epochs))


def _schedule_epoch(epoch: int, epochs: int, schedule_epochs: int) -> int:
    """The epoch of a ``schedule_epochs`` schedule that ``epoch`` of ``epochs`` maps to (ends to ends)."""
    if epochs == 1:
        return 0
    return int(math.floor(epoch * (schedule_epochs - 1) / (epochs - 1) + 0.5))


def schedule_phase_on(config: CRACNNConfig, epoch: int) -> bool:
    """Sec. 4.1's schedule at its own ``epoch`` (0-based, of ``config.schedule_epochs``): on for the first
    ``schedule_first`` epochs, then off and on in blocks of ``schedule_block`` epochs, off first."""
    if epoch < config.schedule_first:
        return True
    return (epoch - config.schedule_first) // config.schedule_block % 2 == 1


# ----------------------------------------------------------------------------- losses
def restriction_loss(gamma: torch.Tensor, expectation, thresholds, eps: float = 1e-6,
                     indicator_grad: bool = False) -> torch.Tensor:
    """Eq. 7 per image, shape (B,): ``sqrt(sum_k c_k (g_k - e_k)^2)`` with
    ``c_k = max(0, |g_k - e_k| - t_k) / (|g_k - e_k| - t_k + eps)``.

    ``gamma`` is Gamma_res (B, 4). ``c_k`` is 0 inside the dead zone ``|g_k - e_k| <= t_k`` and
    close to 1 outside it, so a component past its threshold contributes its whole squared distance
    to E (not only the part past the threshold). ``indicator_grad=False`` treats ``c_k`` as a
    constant switch in the backward pass. The square root has a zero gradient where the loss is 0.
    The outer exponent is garbled in our copy of the paper; we read it as 1/2 (a Euclidean distance),
    which is also what the official code computes (a p = 2 distance over the components past T).
    """
    e = gamma.new_tensor(tuple(expectation))
    t = gamma.new_tensor(tuple(thresholds))
    diff = gamma - e
    excess = (diff.abs() - t).clamp_min(0.0)
    switch = excess / (excess + eps)
    if not indicator_grad:
        switch = switch.detach()
    total = (switch * diff.pow(2)).sum(dim=1)
    positive = total > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, total, torch.ones_like(total))),
                       torch.zeros_like(total))


def pair_indices(batch_size: int, pairing: str = "consecutive", device=None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(P, 2) indices of the image pairs (I^m, I^n) of eq. 8; ``P = batch_size // 2``.

    Every image is in at most one pair (an odd batch leaves its last image, in the order used,
    unpaired, as the official code does). ``"consecutive"``: (0, 1), (2, 3), ...; ``"random"``:
    the same on a random permutation of the batch (torch's global RNG unless ``generator``).
    """
    check_choice("pairing", pairing, PAIRINGS)
    if pairing == "random":
        order = torch.randperm(batch_size, generator=generator).to(device)
    else:
        order = torch.arange(batch_size, device=device)
    count = batch_size // 2
    return torch.stack([order[0:2 * count:2], order[1:2 * count:2]], dim=1)


def _distance(x: torch.Tensor, y: torch.Tensor, distance: str) -> torch.Tensor:
    squared = (x - y).pow(2).sum(dim=1)
    if distance == "squared":
        return squared
    return torch.sqrt(squared.clamp_min(1e-12))   # finite gradient when two features coincide


def contrastive_loss(attention: torch.Tensor, redundancy: torch.Tensor, pairs: torch.Tensor, margin: float = 0.7,
                     distance: str = "euclidean", triplet: str = "paper") -> torch.Tensor:
    """Eq. 8 averaged over its hinge terms; ``attention`` / ``redundancy`` are f_ar of a and r, (B, D).

    Each pair (m, n) gives two hinges, one per direction. ``triplet="paper"``:
    ``max(d(r^m, r^n) - d(r^m, a^m) + margin, 0)`` (redundancies of two images pulled together, an
    image's redundancy pushed from its attention); ``"code"``: ``max(d(a^m, a^n) - d(a^m, r^m) +
    margin, 0)``. The mean over the 2P hinges equals the official code's normalisation (sum over
    hinges / batch size) for an even batch. No pair: 0.
    """
    check_choice("distance", distance, DISTANCES)
    check_choice("triplet", triplet, TRIPLETS)
    if pairs.numel() == 0:
        return attention.sum() * 0.0
    first = torch.cat([pairs[:, 0], pairs[:, 1]])
    second = torch.cat([pairs[:, 1], pairs[:, 0]])
    if triplet == "paper":
        anchor, positive, negative = redundancy[first], redundancy[second], attention[first]
    else:
        anchor, positive, negative = attention[first], attention[second], redundancy[first]
    hinge = _distance(anchor, positive, distance) - _distance(anchor, negative, distance) + margin
    return hinge.clamp_min(0.0).mean()


def cra_cnn_loss(output: ModelOutput, targets: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Eq. 9: ``ce`` (L_cls), ``ce_ar`` (L_cls_ar), ``res`` (L_res, eq. 7), ``cntr`` (L_cntr, eq. 8).

    Needs a training-mode output of :class:`CRACNN` (its extras carry the attention parameters, the
    N_ar features and the configuration). ``res`` is 0 when the restriction is off this epoch or
    the transform is free. L_res is averaged over the batch, like the cross-entropies.
    """
    extras = output.extras if isinstance(output.extras, dict) else {}
    if "cra_config" not in extras:
        raise ValueError("cra_cnn_loss needs a CRACNN output from training mode (model.train()); in eval mode "
                         "only the classification stream runs")
    config: CRACNNConfig = extras["cra_config"]
    ce = F.cross_entropy(output.logits, targets)
    ce_ar = F.cross_entropy(extras["branch_logits"][AR_BRANCH], targets)
    if config.transform == "restricted" and extras["restriction_on"]:
        res = restriction_loss(extras["gamma"], config.expectation, config.thresholds, config.restriction_eps,
                               config.restriction_indicator_grad).mean()
    else:
        res = output.logits.new_zeros(())
    attention, redundancy = extras["contrast_attention"], extras["contrast_redundancy"]
    pairs = pair_indices(attention.shape[0], config.pairing, device=attention.device)
    cntr = contrastive_loss(attention, redundancy, pairs, config.margin, config.distance, config.triplet)
    return {"ce": ce, "ce_ar": ce_ar, "res": res, "cntr": cntr}


# ----------------------------------------------------------------------------- model
def _gap(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


def _check_build(backbone: FeatureBackbone, num_classes: int, config: CRACNNConfig) -> None:
    """The checks every network of this module makes before it builds: a valid config, at least two
    classes, and attention images large enough for the backbone's top stage."""
    config.validate()
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
    smallest = min_image_size(backbone)
    if config.attention_size < smallest:
        raise ValueError(f"attention_size must be >= {smallest} for {backbone.name} (its top stage has stride "
                         f"{smallest}); got {config.attention_size}")


def _build_art(config: CRACNNConfig) -> AttentionRedundancyTransformer:
    """The ART module (eq. 2-6) of ``config``: its transform, sizes and gradient clip."""
    return AttentionRedundancyTransformer(config.attention_size, config.transform, config.alpha_l, config.alpha_s,
                                          config.align_corners, config.redundancy_resolution, config.theta_grad_clip)


class CRACNN(nn.Module):
    """CRA-CNN (Figure 2); build it with :func:`build_cra_cnn`.

    Training-mode ``forward`` returns N_cls's logits and extras ``branch_logits`` ``{"ar": N_ar's
    logits on the attention image}``, ``features`` ``{top stage: map}``, ``attention_image``,
    ``redundancy_image``, ``redundancy_mask``, ``gamma_raw`` (FC output), ``gamma`` (Gamma_res, or
    the six free entries), ``theta`` (B, 2, 3), ``contrast_attention`` / ``contrast_redundancy``
    (f_ar of eq. 8), ``restriction_on`` and ``cra_config``. Eval mode runs N_cls only: extras hold
    ``features`` and an empty ``branch_logits``. :meth:`attend` gives the ART images in any mode.
    """

    branch_names = ()   # scored in eval: the final prediction only

    def __init__(self, backbone: FeatureBackbone, num_classes: int, config: Optional[CRACNNConfig] = None):
        super().__init__()
        config = CRACNNConfig() if config is None else config
        _check_build(backbone, num_classes, config)
        self.config, self.num_classes = config, num_classes
        self.stage = backbone.top_stage
        channels = backbone.out_channels
        # N_ar: same architecture, its own weights, starting from the same (e.g. pretrained) ones.
        self.ar_backbone = copy.deepcopy(backbone)
        self.ar_classifier = nn.Linear(channels, num_classes)
        self.backbone = backbone
        self.classifier = nn.Linear(channels, num_classes)
        self.gamma_fc = nn.Linear(channels, GAMMA_SIZE[config.transform])
        self.art = _build_art(config)
        if config.zero_init_gamma:
            self._init_gamma()
        self.restriction_on = config.restriction != "off"
        self._cam_layer = backbone.stage_module(self.stage)

    def _init_gamma(self) -> None:
        nn.init.zeros_(self.gamma_fc.weight)
        if self.config.transform == "free":
            bias = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        else:
            e1, e2, e3, e4 = self.config.expectation
            c = self.config
            bias = [math.atanh(e1 / c.alpha_l), math.atanh(e2 / c.alpha_l), math.atanh(e3 / c.alpha_s), e4]
        with torch.no_grad():
            self.gamma_fc.bias.copy_(torch.tensor(bias))

    def start_epoch(self, epoch: int, epochs: int) -> bool:
        """Engine hook before each training epoch: set whether L_res is on (returned too)."""
        self.restriction_on = restriction_active(self.config, epoch, epochs)
        return self.restriction_on

    def _classify(self, images: torch.Tensor):
        if images.dim() != 4:
            raise ValueError(f"images must be a (B, 3, H, W) batch; got shape {tuple(images.shape)}")
        features = self.backbone(images, (self.stage,))[self.stage]
        pooled = _gap(features)
        return features, pooled, self.classifier(pooled)

    def forward(self, images: torch.Tensor) -> ModelOutput:
        features, pooled, logits = self._classify(images)
        extras: Dict[str, object] = {"features": {self.stage: features}, "branch_logits": {}}
        if not self.training:
            return ModelOutput(logits, extras)
        art = self.art(images, self.gamma_fc(pooled))
        att_pooled = _gap(self.ar_backbone(art["attention"])[self.stage])
        red_pooled = _gap(self.ar_backbone(art["redundancy"])[self.stage])
        ar_logits = self.ar_classifier(att_pooled)
        if self.config.contrast_features == "logits":
            contrast_attention, contrast_redundancy = ar_logits, self.ar_classifier(red_pooled)
        else:
            contrast_attention, contrast_redundancy = att_pooled, red_pooled
        extras.update({
            "branch_logits": {AR_BRANCH: ar_logits},
            "attention_image": art["attention"], "redundancy_image": art["redundancy"],
            "redundancy_mask": art["mask"], "gamma_raw": art["gamma_raw"], "gamma": art["gamma"],
            "theta": art["theta"], "contrast_attention": contrast_attention,
            "contrast_redundancy": contrast_redundancy, "restriction_on": self.restriction_on,
            "cra_config": self.config,
        })
        return ModelOutput(logits, extras)

    def attend(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The ART module's output for ``images`` in the current mode (Figure 4, Gamma's distribution).

        Keys: ``attention``, ``redundancy``, ``mask``, ``gamma_raw``, ``gamma``, ``theta``. Runs N_cls
        and the ART module, not N_ar; wrap in ``torch.no_grad()`` for figures.
        """
        _, pooled, _ = self._classify(images)
        return self.art(images, self.gamma_fc(pooled))

    def deployed(self) -> BaselineNet:
        """The test-time network: N_cls's backbone, pooling and classifier, shared (not copied)."""
        net = BaselineNet(self.backbone, self.num_classes, self.stage)
        net.classifier = self.classifier
        return net

    def cam_target_layers(self) -> List[nn.Module]:
        return [self._cam_layer]

    def extra_repr(self) -> str:
        c = self.config
        return (f"transform={c.transform}, attention_size={c.attention_size}, restriction={c.restriction}, "
                f"margin={c.margin}, distance={c.distance}, pairing={c.pairing}, triplet={c.triplet}")


class StandaloneSTN(nn.Module):
    """A plain spatial transformer network, the other reading of Figure 4's "STN" (optional reference).

    A localization network (the backbone, pooling and a fully connected layer) predicts the six free
    affine entries (identity at the start, as STNs start); the sampler reads the attention image of
    ``config.attention_size`` px (eq. 2-3, the ART module's "free" transform); a classification network
    (a copy of the backbone with its own weights, pooling, a linear classifier) classifies that image.
    Trained with cross-entropy on its prediction alone (:func:`~fgvc_lib.models.baseline.cross_entropy_loss`):
    no N_cls prediction, no L_res, no triplet, no redundancy image in any loss. The transform is used at
    test time too (it is the STN's prediction). :meth:`attend` gives the ART module's output (the
    redundancy image is computed for the figures only). Build it with :func:`build_standalone_stn`.
    """

    branch_names = ()

    def __init__(self, backbone: FeatureBackbone, num_classes: int, config: Optional[CRACNNConfig] = None):
        super().__init__()
        config = CRACNNConfig(transform="free") if config is None else config.replace(transform="free")
        _check_build(backbone, num_classes, config)
        self.config, self.num_classes = config, num_classes
        self.stage = backbone.top_stage
        channels = backbone.out_channels
        self.classifier_backbone = copy.deepcopy(backbone)
        self.classifier = nn.Linear(channels, num_classes)
        self.localization = backbone
        self.gamma_fc = nn.Linear(channels, GAMMA_SIZE["free"])
        self.art = _build_art(config)   # config.transform is "free" here
        if config.zero_init_gamma:
            nn.init.zeros_(self.gamma_fc.weight)
            with torch.no_grad():
                self.gamma_fc.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
        self._cam_layer = self.classifier_backbone.stage_module(self.stage)

    def attend(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The sampler's output for ``images`` (keys as :meth:`CRACNN.attend`)."""
        if images.dim() != 4:
            raise ValueError(f"images must be a (B, 3, H, W) batch; got shape {tuple(images.shape)}")
        pooled = _gap(self.localization(images, (self.stage,))[self.stage])
        return self.art(images, self.gamma_fc(pooled))

    def forward(self, images: torch.Tensor) -> ModelOutput:
        art = self.attend(images)
        features = self.classifier_backbone(art["attention"], (self.stage,))[self.stage]
        logits = self.classifier(_gap(features))
        return ModelOutput(logits, {"features": {self.stage: features}, "branch_logits": {},
                                    "attention_image": art["attention"], "theta": art["theta"]})

    def cam_target_layers(self) -> List[nn.Module]:
        return [self._cam_layer]


def build_standalone_stn(backbone: FeatureBackbone, num_classes: int,
                         config: Optional[CRACNNConfig] = None) -> StandaloneSTN:
    """A plain STN on ``backbone`` (:class:`StandaloneSTN`); ``config`` gives the attention size and grid."""
    return StandaloneSTN(backbone, num_classes, config)


def build_cra_cnn(backbone: FeatureBackbone, num_classes: int, config: Optional[CRACNNConfig] = None) -> CRACNN:
    """CRA-CNN on ``backbone`` with ``num_classes`` outputs; ``config`` defaults to the paper's."""
    return CRACNN(backbone, num_classes, config)
