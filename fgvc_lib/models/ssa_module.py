"""SSANet's spatial self-attention (SSA) block.

Implements section 3.2 of Baffour et al., "Spatial self-attention network with self-attention
distillation for fine-grained image recognition" (JVCIR 81, 2021, SSANet), Fig. 3 and Eqs. (1)-(2).

Three 1x1 convolutions turn the primary feature map ``F`` (K channels, N = H*W positions) into
``A``, ``B`` and ``C``. The attention map ``S`` (N x N) holds, for each target position ``j``, a
softmax over all source positions ``i`` of the similarity ``A_i . B_j``; ``S @ C`` re-expresses every
position as an attention-weighted mixture of all positions. That context is then combined with ``F``:

* ``"plus"``     (Eq. 1): ``H_j = alpha * sum_i s_ji C_i + F_j``
* ``"multiply"`` (Eq. 2): ``H_j = alpha * (sum_i s_ji C_i) * F_j`` (element-wise)
* ``"none"``             : ``H_j = alpha * sum_i s_ji C_i`` -- the attended features alone, no
  aggregation with ``F``. Our reading of the paper's SSANet_no-alpha / SSANet_alpha rows, which are
  contrasted with the "fully fleshed" models that add Eq. (1) or (2) (see ``ssanet.py``).

``alpha`` is either a learnable scalar initialised to ``alpha_init`` (the paper: 0) or absent, which
we implement as the constant 1 (a buffer, so it is saved but never trained).

Choices the paper leaves open, exposed as arguments:

* ``qk_reduction``: the paper gives A, B and C the same K channels as F (default 1); DANet's position
  attention block shrinks A and B to K/8 (``qk_reduction=8``). C always keeps K channels.
* ``scale_energy``: the paper's softmax has no scaling (default False); True divides ``A_i . B_j`` by
  sqrt(channels of A) as in transformer attention.

Note on ``"multiply"`` with ``alpha`` starting at 0: the block's output starts at exactly zero, so the
head behind it sees no signal at first. Training is not stuck: the gradient with respect to
``alpha`` is the (non-zero) correlation of ``(S @ C) * F`` with the upstream gradient, so alpha moves
away from 0 on the first step, after which A, B and C receive gradients too. The tests check this.
"""
from __future__ import annotations

import math
from typing import Tuple, Union

import torch
import torch.nn as nn

AGGREGATIONS = ("plus", "multiply", "none")


class SSANetSelfAttention(nn.Module):
    """Position self-attention over a feature map followed by aggregation with the input.

    ``forward(x)`` maps ``(B, K, H, W)`` to ``(B, K, H, W)``; with ``return_attention=True`` it also
    returns the attention map ``S`` of shape ``(B, N, N)``, ``S[b, j, i] = s_ji`` (rows sum to 1).
    """

    def __init__(self, channels: int, aggregation: str = "plus", learnable_alpha: bool = True,
                 alpha_init: float = 0.0, qk_reduction: int = 1, scale_energy: bool = False):
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; valid aggregations: {', '.join(AGGREGATIONS)}")
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer; got {channels!r}")
        if not isinstance(qk_reduction, int) or qk_reduction < 1:
            raise ValueError(f"qk_reduction must be a positive integer (1 = paper, 8 = DANet); got {qk_reduction!r}")
        qk_channels = max(1, channels // qk_reduction)
        self.channels = channels
        self.aggregation = aggregation
        self.scale_energy = scale_energy
        self.conv_a = nn.Conv2d(channels, qk_channels, kernel_size=1)  # A: source ("key") side
        self.conv_b = nn.Conv2d(channels, qk_channels, kernel_size=1)  # B: target ("query") side
        self.conv_c = nn.Conv2d(channels, channels, kernel_size=1)     # C: the values that get mixed
        if learnable_alpha:
            self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))
        else:
            self.register_buffer("alpha", torch.tensor(1.0))

    @property
    def learnable_alpha(self) -> bool:
        return isinstance(self.alpha, nn.Parameter)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The attention map ``S`` (B, N, N): row ``j`` is a softmax over source positions ``i``."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected a feature map of shape (batch, {self.channels}, H, W); got {tuple(x.shape)}")
        a = self.conv_a(x).flatten(2)                    # (B, K', N): columns are A_i
        b = self.conv_b(x).flatten(2).transpose(1, 2)    # (B, N, K'): rows are B_j
        energy = torch.bmm(b, a)                         # energy[:, j, i] = A_i . B_j
        if self.scale_energy:
            energy = energy / math.sqrt(a.shape[1])
        return torch.softmax(energy, dim=-1)

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        s = self.attention(x)
        n, k, h, w = x.shape
        c = self.conv_c(x).flatten(2)                    # (B, K, N): columns are C_i
        context = torch.bmm(c, s.transpose(1, 2)).reshape(n, k, h, w)  # [:, :, j] = sum_i s_ji C_i
        context = self.alpha * context
        if self.aggregation == "plus":
            out = context + x
        elif self.aggregation == "multiply":
            out = context * x
        else:
            out = context
        return (out, s) if return_attention else out

    def extra_repr(self) -> str:
        alpha = "learnable" if self.learnable_alpha else "fixed 1"
        return f"channels={self.channels}, aggregation={self.aggregation}, alpha={alpha}, scale_energy={self.scale_energy}"
