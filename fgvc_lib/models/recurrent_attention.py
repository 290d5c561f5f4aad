"""Recurrently refined attention: a global stream and a recurrent local stream on a patch.

Implements Shroff, Chen, Wei & Wang, "Focus Longer to See Better: Recursively Refined Attention for
Fine-Grained Image Classification" (CVPR-W 2020) as its thesis extends it
(../shared/papers/04_recurrent_attention.txt): the patches (sec. 3.1.2), the global stream (3.1.3.1,
eq. 3.2), the local stream (3.1.3.2, eq. 3.3-3.7), the losses (3.1.4, eq. 3.8-3.11), the joint
prediction (3.1.5), the ablation rows of Table 6.1 and the self-attention extension of chapter 7
(eq. 7.1, Fig. 7.1-7.2).

* Global stream: backbone, GAP, linear classifier: logits ``G``.
* Patches (sec. 3.1.2, our method; the thesis's ProtoPNet boxes and the official code's precomputed
  boxes are not available): the class activation map of the global stream for its own predicted class
  (its classifier's weights over the last feature map), and ``N`` square boxes around its highest peaks
  (:func:`peak_boxes`). Only the category labels train the global stream, so the boxes are weakly
  supervised. Training picks one of the N boxes at random per image (sec. 3.1.3: "we randomly select
  a patch"); evaluation takes the box of the highest peak (``test_patch="random"``: the official
  code's random box at test time too). The crop is resized to ``patch_size`` (224 in sec. 4.2).
* Local stream: a second backbone (no weight sharing) on the patch, GAP to the D-dim feature ``F``
  (eq. 3.3); the same ``F`` is the input of every one of ``T`` steps of a stacked LSTM (2 layers, hidden
  ``H``); ``phi_t`` is the top layer's hidden state at step t (eq. 3.4); step attention
  ``alpha_t = softmax_t(W_t . phi_t)``, ``A = sum_t alpha_t phi_t`` (eq. 3.5-3.6; ``W_t`` one vector per
  step as eq. 3.6 writes it, ``step_attention="shared"``: the official code's one vector for all steps);
  a linear classifier on ``A`` gives the local logits ``L`` (eq. 3.7).
* Table 6.1's rows (``local``): ``"cnn"``: the classifier on ``F`` (no LSTM); ``"lstm"``: the LSTM without
  attention, cross-entropy on every step's prediction in training, the last step's at test;
  ``"attention"``: the full local stream.
* Loss (eq. 3.8-3.11): ``CE(G) + lambda' CE(L) + lambda max(0, p_t^g - p_t^l + margin)`` with the true
  class's softmax probabilities ``p_t``; lambda' = 1, lambda = 0.5, margin 0.5 (sec. 4.2). The text says
  the global stream is the local stream's "reference" and borrows the loss from RA-CNN (its [10]), whose
  ranking loss trains only the finer scale; so by default ``p_t^g`` is a constant in the ranking term
  (``rank_gradient="local"``). ``rank_gradient="both"`` differentiates eq. 3.11 as written, which also
  pushes the global stream's true-class probability down. ``ranking_loss=False`` drops the term (the
  official code has none). For ``"lstm"`` the local CE is the mean over the T steps, and the ranking term
  reads the last step's prediction.
* Joint prediction (sec. 3.1.5): ``G + lambda' L`` (logits, weighted as the losses are).
* Self-attention (chapter 7, ``self_attention=True``): the patch's last feature map is kept spatial,
  split along channels into keys (c_k) and values (c_v); a learned spatial bias map (c_s channels) is
  concatenated to both; the query is a 2-hidden-layer MLP of the LSTM's previous top hidden state
  (zeros before step 1); ``softmax_hw(q . K / sqrt(c_k + c_s))`` weights the values, summed over space to
  the answer, and a 2-layer MLP maps the answer to the next LSTM input
  (:class:`RecurrentAttentionSelfAttention`).

In evaluation the model also reports, as branches, the joint prediction with the local stream's
attention replaced by step t's feature alone (``step<t>``, Figure 6.1) and by the sum of the step
features 1..k (``sum<k>``, Table 6.2's words) and by their mean (``mean<k>``), through the same classifier
(a post-hoc read-out of the trained model: the thesis does not say whether those rows were retrained).
The classifier was trained on the attention's convex combination of the step features; a sum of k
nearly equal features is about k times one of them, so its logits grow k-fold and the joint
prediction slides toward the local stream: the mean is the read-out on the classifier's own scale. Dimensions scale with the backbone:
D is the patch backbone's channel count (512 for VGG-19), H defaults to D (sec. 4.2: 512).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import roi_align

from ..backbones import FeatureBackbone
from .config_checks import check_choice, check_int, check_number
from .output import ModelOutput

LOCAL_VARIANTS = ("cnn", "lstm", "attention")    # Table 6.1's local-stream rows
STEP_ATTENTIONS = ("per_step", "shared")         # eq. 3.6's W^t per step | the code's one Linear(D, 1)
RANK_GRADIENTS = ("local", "both")               # eq. 3.11's gradient: local stream only | both streams
PATCH_CHOICES = ("top", "random")                # which of the N boxes an evaluated image uses
GLOBAL_BRANCH, LOCAL_BRANCH = "global", "local"




@dataclass
class RecurrentAttentionConfig:
    """The method's settings; defaults are the thesis's (symbol / section in each comment)."""

    local: str = "attention"          # Table 6.1 row: "cnn" | "lstm" | "attention"
    self_attention: bool = False      # chapter 7's self-attention between the LSTM steps
    time_steps: int = 10              # T (sec. 3.1.3.2, 4.2)
    lstm_layers: int = 2              # stacked LSTM (sec. 3.1.3.2)
    hidden_size: Optional[int] = None  # H: 512 (sec. 4.2); None = the patch feature's D (512 for VGG-19)
    step_attention: str = "per_step"  # W^t of eq. 3.6, one per step ("shared": the official code)
    num_patches: int = 10             # N boxes per image (sec. 3.1.2; the code ships 10)
    box_fraction: float = 0.5         # box side / image side: not stated (224-px patches of a 448-px image)
    patch_size: int = 224             # patches resized to 224 x 224 (sec. 4.2)
    test_patch: str = "top"           # evaluation box: the highest peak ("random": the official code)
    ranking_loss: bool = True         # L_r of eq. 3.11 (the official code has none)
    rank_gradient: str = "local"      # not stated: p_t^g is the reference ("both": eq. 3.11 as written)
    margin: float = 0.5               # margin of eq. 3.11 (sec. 4.2)
    rank_weight: float = 0.5          # lambda of eq. 3.8 (sec. 4.2)
    local_weight: float = 1.0         # lambda' of eq. 3.9 and of the joint prediction (sec. 3.1.5, 4.2)
    local_lr_multiplier: float = 10.0  # sec. 4.2: local stream 1e-2 over the global stream's 1e-3
    key_fraction: float = 0.5         # c_k / c (ch. 7): not stated, an even split of keys and values
    spatial_channels: Optional[int] = None  # c_s (ch. 7): not stated; None = c // 8
    # Not an option: where the training patch choices sit in torch's global random stream. Since the loader
    # draws each epoch's crops and flips before its first batch (fgvc_lib.data.drawn) they come after them,
    # not between batches; the field keeps runs trained before that under other run keys.
    patch_draws: str = "after_augmentations"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name, valid in (("local", LOCAL_VARIANTS), ("step_attention", STEP_ATTENTIONS),
                            ("test_patch", PATCH_CHOICES), ("rank_gradient", RANK_GRADIENTS)):
            check_choice(name, getattr(self, name), valid)
        check_choice("patch_draws", self.patch_draws, ("after_augmentations",))
        for name in ("self_attention", "ranking_loss"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if self.self_attention and self.local == "cnn":
            raise ValueError("self_attention runs between LSTM steps; it needs local 'lstm' or 'attention'")
        check_int("time_steps", self.time_steps, 1)
        check_int("lstm_layers", self.lstm_layers, 1)
        check_int("num_patches", self.num_patches, 1)
        check_int("patch_size", self.patch_size, 16)
        for name in ("hidden_size", "spatial_channels"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 1)
        check_number("box_fraction", self.box_fraction, 0.0, 1.0, low_open=True)
        check_number("key_fraction", self.key_fraction, 0.0, 1.0, low_open=True)
        for name in ("margin", "rank_weight", "local_weight"):
            check_number(name, getattr(self, name), 0.0)
        check_number("local_lr_multiplier", self.local_lr_multiplier, 0.0, low_open=True)

    def replace(self, **changes) -> "RecurrentAttentionConfig":
        return dataclasses.replace(self, **changes)


# ----------------------------------------------------------------------------- patches (sec. 3.1.2)
def class_activation_maps(features: torch.Tensor, classifier: nn.Linear, classes: torch.Tensor) -> torch.Tensor:
    """(B, h, w): ``sum_c w_{k,c} features_c`` for each image's class ``k`` (Zhou et al.'s CAM)."""
    weights = classifier.weight[classes]                      # (B, C)
    return torch.einsum("bc,bchw->bhw", weights, features)


def peak_boxes(cams: torch.Tensor, image_size: Tuple[int, int], count: int, box_fraction: float) -> torch.Tensor:
    """(B, count, 4) boxes ``x1, y1, x2, y2`` in image pixels around the ``count`` highest peaks of each map.

    A box is a square of side ``box_fraction * min(H, W)`` centred on its peak's cell and shifted (not
    shrunk) to lie inside the image. After a peak is taken, the cells within half a box side of it
    (a square of side one box, open) are excluded, so that boxes cover different places; when no cell is left,
    the remaining boxes repeat the earlier ones in order. Boxes come first by peak height."""
    batch, rows, cols = cams.shape
    height, width = image_size
    side = box_fraction * min(height, width)
    half = side / 2.0
    cell_h, cell_w = height / rows, width / cols
    ys = (torch.arange(rows, dtype=torch.float32) + 0.5) * cell_h
    xs = (torch.arange(cols, dtype=torch.float32) + 0.5) * cell_w
    centre_y = ys[:, None].expand(rows, cols).reshape(-1)
    centre_x = xs[None, :].expand(rows, cols).reshape(-1)
    scores = cams.detach().float().reshape(batch, -1).cpu().clone()
    available = torch.ones_like(scores, dtype=torch.bool)
    boxes = torch.zeros(batch, count, 4)
    for image in range(batch):
        for k in range(count):
            if not available[image].any():   # k boxes found: repeat them in order
                boxes[image, k:] = boxes[image, :k].repeat((count - k) // k + 1, 1)[:count - k]
                break
            masked = scores[image].masked_fill(~available[image], -math.inf)
            peak = int(masked.argmax())
            cy = float(centre_y[peak])
            cx = float(centre_x[peak])
            cy = min(max(cy, half), height - half)
            cx = min(max(cx, half), width - half)
            boxes[image, k] = torch.tensor([cx - half, cy - half, cx + half, cy + half])
            near = ((centre_y - centre_y[peak]).abs() < half) & ((centre_x - centre_x[peak]).abs() < half)
            available[image] &= ~near
    return boxes.to(cams.device)


def crop_patches(images: torch.Tensor, boxes: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, 3, p, p): each image's box (B, 4, image pixels) bilinearly resampled to ``patch_size``."""
    rois = torch.cat([torch.arange(len(boxes), dtype=boxes.dtype, device=boxes.device)[:, None], boxes], dim=1)
    return roi_align(images, rois.to(images.dtype), output_size=(patch_size, patch_size), spatial_scale=1.0,
                     sampling_ratio=2, aligned=True)


# ----------------------------------------------------------------------------- step attention (eq. 3.5-3.6)
class StepAttention(nn.Module):
    """``alpha = softmax_t(W_t . phi_t)``, ``A = sum_t alpha_t phi_t`` (eq. 3.5-3.6); returns (A, alpha)."""

    def __init__(self, hidden: int, steps: int, mode: str = "per_step"):
        super().__init__()
        if mode not in STEP_ATTENTIONS:
            raise ValueError(f"unknown step attention {mode!r}; valid: {', '.join(STEP_ATTENTIONS)}")
        self.mode = mode
        rows = steps if mode == "per_step" else 1   # (the code's Linear bias is the same for every step:
        self.weight = nn.Parameter(torch.randn(rows, hidden) / math.sqrt(hidden))   # it cancels in the softmax)

    def forward(self, phi: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "per_step" and phi.shape[1] != self.weight.shape[0]:
            raise ValueError(f"built for {self.weight.shape[0]} steps; got {phi.shape[1]}")
        scores = (phi * self.weight[None]).sum(dim=2)            # (B, T)
        alpha = scores.softmax(dim=1)
        return (alpha[..., None] * phi).sum(dim=1), alpha


# ----------------------------------------------------------------------------- self-attention (chapter 7)
def _mlp(sizes: List[int]) -> nn.Sequential:
    layers: List[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RecurrentAttentionSelfAttention(nn.Module):
    """Chapter 7 (eq. 7.1, Fig. 7.2): one step's input to the LSTM from the patch's feature map and the
    previous hidden state.

    ``F`` (B, c, h, w) is split into keys ``K`` (c_k channels) and values ``V`` (c_v = c - c_k); a learned
    spatial bias map ``S`` (c_s, h, w) is concatenated to both. ``q = MLP_q(h_prev)`` (two hidden layers
    of width ``mlp_width``, output c_k + c_s); attention ``a = softmax_hw(sum_c q_c K'_c / sqrt(c_k + c_s))``;
    answer ``sum_hw a V'`` (c_v + c_s); ``MLP_a`` (two layers) maps it to ``out_features``.
    Returns (next input, attention map (B, h, w))."""

    def __init__(self, channels: int, map_size: Tuple[int, int], hidden: int, out_features: int,
                 key_fraction: float = 0.5, spatial_channels: Optional[int] = None, mlp_width: Optional[int] = None):
        super().__init__()
        self.keys = max(1, min(channels - 1, round(channels * key_fraction)))
        self.values = channels - self.keys
        self.spatial = spatial_channels or max(1, channels // 8)
        width = mlp_width or hidden
        self.bias_map = nn.Parameter(0.02 * torch.randn(self.spatial, *map_size))
        self.query = _mlp([hidden, width, width, self.keys + self.spatial])
        self.answer = _mlp([self.values + self.spatial, width, out_features])

    def forward(self, features: torch.Tensor, hidden: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        batch, _, rows, cols = features.shape
        if (rows, cols) != tuple(self.bias_map.shape[1:]):
            raise ValueError(f"built for {tuple(self.bias_map.shape[1:])} feature maps; got {(rows, cols)} "
                             f"(the patch size changed?)")
        bias = self.bias_map[None].expand(batch, -1, -1, -1)
        keys = torch.cat([features[:, :self.keys], bias], dim=1)
        values = torch.cat([features[:, self.keys:], bias], dim=1)
        query = self.query(hidden)
        logits = torch.einsum("bc,bchw->bhw", query, keys) / math.sqrt(self.keys + self.spatial)
        attention = logits.reshape(batch, -1).softmax(dim=1).reshape(batch, rows, cols)
        answer = torch.einsum("bhw,bchw->bc", attention, values)
        return self.answer(answer), attention


# ----------------------------------------------------------------------------- the network
class RecurrentAttentionNet(nn.Module):
    """The two-stream network (module docstring). ``extras``: ``boxes`` (B, N, 4, image pixels),
    ``patch_index`` (B,), ``step_logits`` (B, T, K, local stream per step; not for ``"cnn"``), ``alpha``
    (B, T; ``"attention"``), ``branch_logits``."""

    def __init__(self, backbone: FeatureBackbone, patch_backbone: FeatureBackbone, num_classes: int,
                 config: RecurrentAttentionConfig):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2; got {num_classes}")
        self.config = config
        self.backbone = backbone
        self.global_classifier = nn.Linear(backbone.out_channels, num_classes)
        self.patch_backbone = patch_backbone
        features = patch_backbone.out_channels                       # D
        hidden = config.hidden_size or features                      # H
        self.steps = config.time_steps
        self.lstm = self.self_attention = self.step_attention = None
        if config.local != "cnn":
            self.lstm = nn.LSTM(features, hidden, num_layers=config.lstm_layers, batch_first=True)
            if config.self_attention:
                self.self_attention = RecurrentAttentionSelfAttention(
                    features, self._patch_map_size(), hidden, features, config.key_fraction, config.spatial_channels)
        if config.local == "attention":
            self.step_attention = StepAttention(hidden, config.time_steps, config.step_attention)
        self.local_classifier = nn.Linear(hidden if config.local != "cnn" else features, num_classes)
        self.branch_names = self._branch_names()

    def _patch_map_size(self) -> Tuple[int, int]:
        training = self.patch_backbone.training
        self.patch_backbone.eval()
        with torch.no_grad():
            probe = self.patch_backbone(torch.zeros(1, 3, self.config.patch_size, self.config.patch_size),
                                        (self.patch_backbone.top_stage,))[self.patch_backbone.top_stage]
        self.patch_backbone.train(training)
        return tuple(probe.shape[-2:])

    def _branch_names(self) -> Tuple[str, ...]:
        names = [GLOBAL_BRANCH, LOCAL_BRANCH]
        if self.config.local != "cnn":
            names += [f"{kind}{k}" for kind in ("step", "sum", "mean") for k in range(1, self.steps + 1)]
        return tuple(names)

    def lr_groups(self):
        """The global stream at the base rate, the local stream at ``local_lr_multiplier`` x (sec. 4.2)."""
        global_stream = list(self.backbone.parameters()) + list(self.global_classifier.parameters())
        ids = {id(p) for p in global_stream}
        return [("global", global_stream, 1.0),
                ("local", [p for p in self.parameters() if id(p) not in ids], self.config.local_lr_multiplier)]

    def cam_target_layers(self) -> List[nn.Module]:
        return [self.backbone.stage_module(self.backbone.top_stage)]

    def patch_target_layers(self) -> List[nn.Module]:
        """The local stream's last feature map: where Grad-CAM of a step's hidden state is read (ch. 5)."""
        return [self.patch_backbone.stage_module(self.patch_backbone.top_stage)]

    # -- the two streams, separately (the notebook's per-step views use them)
    def global_stream(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(top feature map, logits G) of eq. 3.2."""
        features = self.backbone(images, (self.backbone.top_stage,))[self.backbone.top_stage]
        return features, self.global_classifier(features.mean(dim=(2, 3)))

    def boxes(self, features: torch.Tensor, logits: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
        """(B, N, 4) boxes around the peaks of the CAM of the global stream's predicted class."""
        with torch.no_grad():
            cams = class_activation_maps(features.detach(), self.global_classifier, logits.detach().argmax(dim=1))
        return peak_boxes(cams, image_size, self.config.num_patches, self.config.box_fraction)

    def choose_patch(self, boxes: torch.Tensor) -> torch.Tensor:
        """Index of the box each image uses: random in training (sec. 3.1.3), else per ``test_patch``."""
        batch, count = boxes.shape[:2]
        if self.training or self.config.test_patch == "random":
            return torch.randint(count, (batch,), device=boxes.device)
        return torch.zeros(batch, dtype=torch.long, device=boxes.device)

    def _global_and_patch(self, images: torch.Tensor):
        """The global stream's map and logits, every image's N boxes, the chosen box's index and its patch."""
        features, logits = self.global_stream(images)
        boxes = self.boxes(features, logits, tuple(images.shape[-2:]))
        index = self.choose_patch(boxes)
        patches = crop_patches(images, boxes[torch.arange(len(boxes)), index], self.config.patch_size)
        return features, logits, boxes, index, patches

    def patches(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(patches (B, 3, p, p), their boxes (B, 4)) as the model picks them in its current mode."""
        _, _, boxes, index, patches = self._global_and_patch(images)
        return patches, boxes[torch.arange(len(boxes)), index]

    def step_features(self, patch_map: torch.Tensor) -> torch.Tensor:
        """(B, T, H): ``phi_t``, the LSTM's top hidden state at each step (eq. 3.4)."""
        feature = patch_map.mean(dim=(2, 3))                           # F of eq. 3.3, after GAP
        if self.self_attention is None:
            sequence = feature[:, None].expand(-1, self.steps, -1).contiguous()
            return self.lstm(sequence)[0]
        layers, hidden = self.lstm.num_layers, self.lstm.hidden_size
        state = (feature.new_zeros(layers, len(feature), hidden), feature.new_zeros(layers, len(feature), hidden))
        outputs = []
        for _ in range(self.steps):
            step_input, _ = self.self_attention(patch_map, state[0][-1])
            out, state = self.lstm(step_input[:, None], state)
            outputs.append(out[:, 0])
        return torch.stack(outputs, dim=1)

    def local_stream(self, patches: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Local logits ``L`` (eq. 3.7) and, with an LSTM, ``phi`` (B, T, H) and ``step_logits``."""
        top = self.patch_backbone.top_stage
        patch_map = self.patch_backbone(patches, (top,))[top]
        if self.lstm is None:
            return {"logits": self.local_classifier(patch_map.mean(dim=(2, 3)))}
        phi = self.step_features(patch_map)
        out = {"phi": phi, "step_logits": self.local_classifier(phi)}
        if self.step_attention is None:
            out["logits"] = out["step_logits"][:, -1]
        else:
            aggregated, out["alpha"] = self.step_attention(phi)
            out["logits"] = self.local_classifier(aggregated)
        return out

    def forward(self, images: torch.Tensor) -> ModelOutput:
        features, global_logits, boxes, index, patches = self._global_and_patch(images)
        local = self.local_stream(patches)
        weight = self.config.local_weight
        logits = global_logits + weight * local["logits"]
        branches = {GLOBAL_BRANCH: global_logits, LOCAL_BRANCH: local["logits"]}
        if "phi" in local and not self.training:    # Figure 6.1 and Table 6.2, read out of the trained model
            for t in range(self.steps):
                branches[f"step{t + 1}"] = global_logits + weight * local["step_logits"][:, t]
            sums = local["phi"].cumsum(dim=1)
            for k in range(self.steps):
                branches[f"sum{k + 1}"] = global_logits + weight * self.local_classifier(sums[:, k])
                branches[f"mean{k + 1}"] = global_logits + weight * self.local_classifier(sums[:, k] / (k + 1))
        extras = {"branch_logits": branches, "boxes": boxes, "patch_index": index,
                  "features": {self.backbone.top_stage: features}}
        for key in ("step_logits", "alpha"):
            if key in local:
                extras[key] = local[key]
        return ModelOutput(logits, extras)


# ----------------------------------------------------------------------------- loss (eq. 3.8-3.11)
def ranking_loss(global_logits: torch.Tensor, local_logits: torch.Tensor, targets: torch.Tensor,
                 margin: float, gradient: str = "local") -> torch.Tensor:
    """Eq. 3.11, averaged over the batch: ``max(0, p_t^g - p_t^l + margin)`` with the softmax
    probabilities of the true class ``t`` in the global (g) and local (l) streams; ``gradient="local"``
    holds ``p_t^g`` constant (the reference), ``"both"`` differentiates both."""
    if gradient not in RANK_GRADIENTS:
        raise ValueError(f"unknown rank gradient {gradient!r}; valid: {', '.join(RANK_GRADIENTS)}")
    index = targets[:, None]
    if gradient == "local":
        global_logits = global_logits.detach()
    p_global = global_logits.softmax(dim=1).gather(1, index)[:, 0]
    p_local = local_logits.softmax(dim=1).gather(1, index)[:, 0]
    return (p_global - p_local + margin).clamp_min(0.0).mean()


@dataclass(frozen=True)
class RecurrentAttentionLoss:
    """``CE(G) + lambda' CE(L) + lambda L_r`` (eq. 3.8-3.9, 3.11) as the engine's loss terms, each
    already weighted. For ``local="lstm"`` the local CE is the mean over the T steps (Table 6.1's text)."""

    config: RecurrentAttentionConfig

    def __call__(self, output: ModelOutput, targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        config = self.config
        global_logits = output.extras["branch_logits"][GLOBAL_BRANCH]
        local_logits = output.extras["branch_logits"][LOCAL_BRANCH]
        if config.local == "lstm":
            steps = output.extras["step_logits"]
            local_ce = F.cross_entropy(steps.reshape(-1, steps.shape[-1]),
                                       targets.repeat_interleave(steps.shape[1]))
        else:
            local_ce = F.cross_entropy(local_logits, targets)
        terms = {"ce_global": F.cross_entropy(global_logits, targets), "ce_local": config.local_weight * local_ce}
        if config.ranking_loss:
            terms["rank"] = config.rank_weight * ranking_loss(global_logits, local_logits, targets, config.margin,
                                                              config.rank_gradient)
        return terms


def build_recurrent_attention(backbone: FeatureBackbone, num_classes: int, config: RecurrentAttentionConfig,
                              patch_backbone) -> RecurrentAttentionNet:
    """The runner's model factory: ``patch_backbone`` is a :class:`fgvc_lib.study.jobs.BackboneSpec` (built
    here, with its weights: the local stream's own pretrained CNN, sec. 4.2) or a built backbone."""
    if not isinstance(patch_backbone, nn.Module):
        patch_backbone = patch_backbone.build()
    return RecurrentAttentionNet(backbone, patch_backbone, num_classes, config)
