"""The two cross-layer blocks of CLAN (Huang, Wang & Yang, "Cross-layer Attention Network for
Fine-grained Visual Categorization", arXiv 2210.08784, section 3).

* :class:`CrossLayerContextAttention` (CLCA, section 3.1, eq. 1-4) refines a mid-level map with
  position relations estimated from that map fused with the (upsampled) top-level map. The
  relation metric ``f`` of eq. 2 is one of the three of section 3.1.1: ``"gaussian"`` (eq. 5),
  ``"embedded_gaussian"`` (eq. 6) and ``"dot_product"`` (eq. 7). With ``use_top=False`` the same
  class is the original non-local block of Wang et al. (CVPR 2018): relations from the mid-level
  map alone, the "Non-local" row of Table 2.
* :class:`CrossLayerSpatialAttention` (CLSA, section 3.2, eq. 8-10) turns a refined mid-level map
  into a one-channel spatial attention map ``M^s`` (channel pooling + a k x k convolution, as in
  CBAM's spatial attention), brings it to the top level's resolution (``R`` of eq. 9) and weights
  the top-level map with it.

Choices the paper leaves open (each an argument; defaults documented at the argument):
the intermediate width ``C_int``, a BatchNorm after ``W_y``, the zero initialisation that makes a
fresh block the identity, how the top map is upsampled (and whether ``W_g`` runs before the
upsampling - the same function, fewer multiply-adds), the order of the dot-product products, the
activation that turns ``K * [...]`` into ``M^s`` and the down-sampling ``R``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config_checks import check_choice

RELATIONS = ("gaussian", "embedded_gaussian", "dot_product")   # eq. 5, 6, 7
UPSAMPLE_MODES = ("bilinear", "nearest")                      # L^N -> n_s positions (before eq. 1)
CLSA_POOLINGS = ("avg", "max", "avg&max")                     # eq. 8 and Table 3
CLSA_ACTIVATIONS = ("sigmoid", "softmax", "none")             # not specified by the paper
DOWNSAMPLE_MODES = ("avg", "bilinear")                        # R of eq. 9


def _conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1)


class CrossLayerContextAttention(nn.Module):
    """CLCA (eq. 1-4), or the original non-local block when ``use_top=False``.

    Args:
        mid_channels: ``C_s``, channels of the mid-level map ``L^s``.
        top_channels: ``C_g``, channels of the top-level map ``L^N`` (required when ``use_top``).
        inter_channels: ``C_int`` of ``W_k``, ``W_theta``, ``W_phi`` (eq. 2, 6, 7); default
            ``C_s // 2`` as in non-local networks (the paper gives no value).
        relation: the metric ``f`` of eq. 2, one of :data:`RELATIONS`.
        use_top: fuse the top-level map into the relation estimate (eq. 1, CLCA). ``False`` gives
            the non-local block: relations from ``L^s`` alone, no ``W_l``/``W_g``.
        output_norm: BatchNorm after ``W_y`` (default on). Eq. 3 does not show one, but the
            non-local networks CLCA builds on use it, and without it the dot-product metric (no
            softmax to bound the relations) made training diverge at the paper's learning rate in
            our tests (the block is then a fourth-order function of the features).
        zero_init_output: initialise the last layer (``W_y``, or the BatchNorm's scale when
            ``output_norm``) to zero so a fresh block is the identity and the pretrained backbone's
            behaviour is untouched at the start of training (as in non-local networks).
        top_upsample: interpolation that brings ``L^N`` to the ``n_s`` positions of ``L^s``.
        project_top_first: apply ``W_g`` to ``L^N`` before upsampling it. A 1x1 convolution and a
            bilinear or nearest resize commute (interpolation weights sum to one), so the output is
            the same as eq. 1 read literally; only the cost drops (``W_g`` runs on ``n_g`` instead
            of ``n_s`` positions).
        efficient_dot_product: for ``"dot_product"`` compute ``theta (phi^T k) / n`` instead of
            ``(theta phi^T / n) k`` when that is cheaper (``n > C_int``). Matrix products are
            associative, so the output is the same; the ``n x n`` relation matrix is then never
            formed (:meth:`relations` still returns it for inspection).
    """

    def __init__(self, mid_channels: int, top_channels: Optional[int] = None,
                 inter_channels: Optional[int] = None, relation: str = "dot_product",
                 use_top: bool = True, output_norm: bool = True, zero_init_output: bool = True,
                 top_upsample: str = "bilinear", project_top_first: bool = True,
                 efficient_dot_product: bool = True):
        super().__init__()
        check_choice("relation metric", relation, RELATIONS)
        check_choice("top-map upsampling", top_upsample, UPSAMPLE_MODES)
        if mid_channels < 1:
            raise ValueError(f"mid_channels must be >= 1; got {mid_channels}")
        if use_top and (top_channels is None or top_channels < 1):
            raise ValueError("CLCA fuses the top-level map (eq. 1) and needs top_channels >= 1; "
                             f"got {top_channels!r} (use use_top=False for a plain non-local block)")
        inter = max(1, mid_channels // 2) if inter_channels is None else int(inter_channels)
        if inter < 1:
            raise ValueError(f"inter_channels (C_int) must be >= 1; got {inter_channels}")
        self.mid_channels, self.top_channels, self.inter_channels = mid_channels, top_channels, inter
        self.relation, self.use_top = relation, use_top
        self.top_upsample, self.project_top_first = top_upsample, project_top_first
        self.efficient_dot_product = efficient_dot_product
        if use_top:
            self.w_l = _conv1x1(mid_channels, mid_channels)      # W_l in R^{C_s x C_s}, eq. 1
            self.w_g = _conv1x1(top_channels, mid_channels)      # W_g in R^{C_s x C_g}, eq. 1
        if relation != "gaussian":
            self.theta = _conv1x1(mid_channels, inter)           # W_theta, eq. 6-7
            self.phi = _conv1x1(mid_channels, inter)             # W_phi, eq. 6-7
        self.w_k = _conv1x1(mid_channels, inter)                 # W_k, k() of eq. 2
        self.w_y = _conv1x1(inter, mid_channels)                 # W_y, eq. 3
        self.norm = nn.BatchNorm2d(mid_channels) if output_norm else None
        if zero_init_output:
            if self.norm is not None:
                nn.init.zeros_(self.norm.weight)
            else:
                nn.init.zeros_(self.w_y.weight)
                nn.init.zeros_(self.w_y.bias)

    def _upsample(self, top: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        if tuple(top.shape[-2:]) == tuple(size):
            return top
        if self.top_upsample == "nearest":
            return F.interpolate(top, size=size, mode="nearest")
        return F.interpolate(top, size=size, mode="bilinear", align_corners=False)

    def fuse(self, mid: torch.Tensor, top: Optional[torch.Tensor]) -> torch.Tensor:
        """The map the relations are computed from: eq. 1 for CLCA, ``L^s`` itself for non-local."""
        if not self.use_top:
            return mid
        if top is None:
            raise ValueError("CLCA needs the top-level map: call forward(mid, top)")
        if top.shape[0] != mid.shape[0] or top.shape[1] != self.top_channels:
            raise ValueError(f"top-level map has shape {tuple(top.shape)}; expected batch {mid.shape[0]} "
                             f"and {self.top_channels} channels")
        size = tuple(mid.shape[-2:])
        if self.project_top_first:
            top_term = self._upsample(self.w_g(top), size)
        else:
            top_term = self.w_g(self._upsample(top, size))
        return self.w_l(mid) + top_term

    def _embeddings(self, fused: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(theta, phi)`` as ``(B, n, C)`` position-major matrices."""
        if self.relation == "gaussian":  # eq. 5: raw vectors, no embedding
            flat = fused.flatten(2).transpose(1, 2)
            return flat, flat
        return (self.theta(fused).flatten(2).transpose(1, 2),
                self.phi(fused).flatten(2).transpose(1, 2))

    def _check_mid(self, mid: torch.Tensor) -> None:
        if mid.dim() != 4 or mid.shape[1] != self.mid_channels:
            raise ValueError(f"mid-level map must be (B, {self.mid_channels}, H, W); got {tuple(mid.shape)}")

    def relations(self, mid: torch.Tensor, top: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``f(l_i, l_j) / C(l)`` of eq. 2 as a ``(B, n_s, n_s)`` matrix (row i = position i)."""
        self._check_mid(mid)
        theta, phi = self._embeddings(self.fuse(mid, top))
        scores = torch.bmm(theta, phi.transpose(1, 2))
        if self.relation == "dot_product":                 # eq. 7: C(l) = n
            return scores / scores.shape[-1]
        return scores.softmax(dim=-1)                      # eq. 5-6: C(l) = sum_j f

    def forward(self, mid: torch.Tensor, top: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The refined map ``\\hat L^s = CLCA(L^s, L^N)`` (eq. 4), same shape as ``mid``."""
        self._check_mid(mid)
        batch, _, height, width = mid.shape
        n = height * width
        values = self.w_k(mid).flatten(2).transpose(1, 2)                # k(l_j), (B, n, C_int)
        if self.relation == "dot_product" and self.efficient_dot_product and n > self.inter_channels:
            theta, phi = self._embeddings(self.fuse(mid, top))
            context = torch.bmm(phi.transpose(1, 2), values)              # (B, C_int, C_int)
            y = torch.bmm(theta, context) / n                             # eq. 2 with eq. 7
        else:
            y = torch.bmm(self.relations(mid, top), values)              # eq. 2
        y = y.transpose(1, 2).reshape(batch, self.inter_channels, height, width)
        z = self.w_y(y)                                                    # W_y y, eq. 3
        if self.norm is not None:
            z = self.norm(z)
        return z + mid                                                     # residual, eq. 3


class CrossLayerSpatialAttention(nn.Module):
    """CLSA (eq. 8-10): spatial attention from a refined mid-level map applied to the top map.

    Args:
        pooling: channel pooling of ``\\hat L^s`` fed to ``K`` (eq. 8; Table 3 compares them), one
            of :data:`CLSA_POOLINGS`; ``"avg&max"`` stacks both as two channels.
        kernel_size: side of the convolution ``K`` (eq. 8: 3).
        activation: what turns ``K * [...]`` into ``M^s`` (the paper does not say). ``"sigmoid"``
            (default, as in CBAM, which the paper cites for this block): each position in (0, 1).
            ``"softmax"``: a spatial softmax over the mid-level positions times ``n_s``, so the
            weights are positive with mean 1. ``"none"``: the raw convolution output.
        downsample: ``R`` of eq. 9, to the top level's resolution. ``"avg"`` (default): adaptive
            average pooling, each top-level cell gets the mean attention of the mid-level cells it
            covers. ``"bilinear"``: bilinear resampling.
    """

    def __init__(self, pooling: str = "avg&max", kernel_size: int = 3, activation: str = "sigmoid",
                 downsample: str = "avg"):
        super().__init__()
        check_choice("CLSA pooling", pooling, CLSA_POOLINGS)
        check_choice("CLSA activation", activation, CLSA_ACTIVATIONS)
        check_choice("CLSA down-sampling R", downsample, DOWNSAMPLE_MODES)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size of K must be a positive odd number; got {kernel_size}")
        self.pooling, self.activation, self.downsample = pooling, activation, downsample
        in_channels = 2 if pooling == "avg&max" else 1
        self.conv = nn.Conv2d(in_channels, 1, kernel_size, padding=kernel_size // 2)  # K, eq. 8

    def attention_map(self, mid: torch.Tensor) -> torch.Tensor:
        """``M^s`` of eq. 8 at the mid level's resolution, ``(B, 1, H_s, W_s)``."""
        pooled = []
        if self.pooling in ("avg", "avg&max"):
            pooled.append(mid.mean(dim=1, keepdim=True))
        if self.pooling in ("max", "avg&max"):
            pooled.append(mid.amax(dim=1, keepdim=True))
        logits = self.conv(torch.cat(pooled, dim=1))
        if self.activation == "sigmoid":
            return torch.sigmoid(logits)
        if self.activation == "softmax":
            batch, _, height, width = logits.shape
            weights = logits.flatten(1).softmax(dim=1) * (height * width)
            return weights.view(batch, 1, height, width)
        return logits

    def resample(self, attention: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        """``R(M^s)`` of eq. 9: the attention map at the top level's resolution."""
        if tuple(attention.shape[-2:]) == tuple(size):
            return attention
        if self.downsample == "avg":
            return F.adaptive_avg_pool2d(attention, size)
        return F.interpolate(attention, size=size, mode="bilinear", align_corners=False)

    def forward(self, mid: torch.Tensor, top: torch.Tensor):
        """Returns ``(L^{s,N}, M^s, R(M^s))``: the weighted top map (eq. 9) and the attention map
        at the mid and at the top resolution."""
        if mid.shape[0] != top.shape[0]:
            raise ValueError(f"batch sizes differ: mid {tuple(mid.shape)} vs top {tuple(top.shape)}")
        attention = self.attention_map(mid)
        resampled = self.resample(attention, tuple(top.shape[-2:]))
        return resampled * top, attention, resampled
