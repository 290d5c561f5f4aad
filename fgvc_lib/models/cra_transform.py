"""CRA-CNN's attention-redundancy transformer (ART module; Liu et al., BMVC 2020, section 3.1).

The classification stream predicts attention parameters Gamma = (g1, g2, g3, g4): horizontal and
vertical location, scale and angle. This module turns them into the two images the attention
regularization stream looks at:

* restriction (eq. 6): ``Gamma_res = (alpha_l tanh g1, alpha_l tanh g2, alpha_s tanh g3, g4)``; the
  angle is left as it is (the trigonometric functions bound it already);
* AT module (eq. 3-4): the affine matrix ``[[s cos a, -s sin a, x], [s sin a, s cos a, y]]`` with
  ``(x, y, s, a) = Gamma_res`` maps every point of the attention grid (normalised to [-1, 1]) to a
  sampling location in the input; the attention image is read there with a bilinear kernel
  (:func:`torch.nn.functional.affine_grid` + :func:`~torch.nn.functional.grid_sample`, zeros outside
  the input). Input 448 px -> attention 224 px in the paper (``size``);
* RT module (eq. 5): the redundancy image ``G^r = G - (G n G^a)``, the input with the attention
  region taken out (see :func:`redundancy_image` for how "taken out" is made concrete);
* the "free" transform of Figure 4's STN reference: all six affine entries are predicted directly,
  no tanh and no restriction.

``align_corners`` follows torch's meaning: ``True`` puts -1 and +1 on the centres of the corner
pixels (the convention of the official MatConvNet code, whose grids are ``linspace(-1, 1, n)``),
``False`` on the outer edges of the corner pixels. The paper only says the coordinates are
"normalized by width/height", so ``True`` is the default and ``False`` an option.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

TRANSFORMS = ("restricted", "free")          # ART module (eq. 4 + 6) | Figure 4's six-parameter STN
REDUNDANCY_RESOLUTIONS = ("input", "attention")
GAMMA_SIZE = {"restricted": 4, "free": 6}    # Gamma (eq. 4) | theta_11..theta_23 (eq. 2)
MASK_TOLERANCE = 1e-6                        # relative slack for points exactly on the region's border


def restrict_gamma(gamma: torch.Tensor, alpha_l: float, alpha_s: float) -> torch.Tensor:
    """Eq. 6: bound location by ``alpha_l`` and scale by ``alpha_s`` with tanh; keep the angle."""
    if gamma.dim() != 2 or gamma.shape[1] != 4:
        raise ValueError(f"Gamma must have shape (B, 4); got {tuple(gamma.shape)}")
    location = alpha_l * torch.tanh(gamma[:, 0:2])
    scale = alpha_s * torch.tanh(gamma[:, 2:3])
    return torch.cat([location, scale, gamma[:, 3:4]], dim=1)


def attention_theta(gamma_res: torch.Tensor) -> torch.Tensor:
    """Eq. 4: the (B, 2, 3) affine matrix of restricted attention parameters (x, y, scale, angle)."""
    x, y, s, a = gamma_res.unbind(dim=1)
    cos, sin = torch.cos(a), torch.sin(a)
    first = torch.stack([s * cos, -s * sin, x], dim=1)
    second = torch.stack([s * sin, s * cos, y], dim=1)
    return torch.stack([first, second], dim=1)


def free_theta(params: torch.Tensor) -> torch.Tensor:
    """Eq. 2 with all six entries free (the STN reference of Figure 4): (B, 6) -> (B, 2, 3)."""
    if params.dim() != 2 or params.shape[1] != 6:
        raise ValueError(f"free affine parameters must have shape (B, 6); got {tuple(params.shape)}")
    return params.view(-1, 2, 3)


class _ClipPerImageGrad(torch.autograd.Function):
    """Identity forward; backward clamps each image's gradient, taken as if the loss were summed
    over the batch (the official code's convention), to ``[-limit, limit]``."""

    @staticmethod
    def forward(ctx, theta: torch.Tensor, limit: float):
        ctx.limit = limit
        return theta.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        batch = grad.shape[0]
        return (grad * batch).clamp(-ctx.limit, ctx.limit) / batch, None


def clip_theta_grad(theta: torch.Tensor, limit: Optional[float]) -> torch.Tensor:
    """``theta`` unchanged; with ``limit``, its gradient is clipped per entry and image (the official
    code clips the gradient reaching the affine matrix to [-1, 1]; the paper does not mention it)."""
    return theta if limit is None else _ClipPerImageGrad.apply(theta, float(limit))


def _identity(batch: int, like: torch.Tensor) -> torch.Tensor:
    return like.new_tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(batch, 2, 3)


def sample_affine(images: torch.Tensor, theta: torch.Tensor, size: int, align_corners: bool = True) -> torch.Tensor:
    """Read ``images`` on the ``size x size`` grid mapped by ``theta`` (bilinear, zeros outside)."""
    batch, channels = images.shape[:2]
    grid = F.affine_grid(theta.to(images.dtype), [batch, channels, size, size], align_corners=align_corners)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)


def resize(images: torch.Tensor, size: int, align_corners: bool = True) -> torch.Tensor:
    """Bilinear resampling of the whole image to ``size x size`` (the identity transform)."""
    return sample_affine(images, _identity(images.shape[0], images), size, align_corners)


def attention_region_mask(theta: torch.Tensor, height: int, width: int, align_corners: bool = True) -> torch.Tensor:
    """(B, 1, height, width) mask: 1 where a pixel centre lies in the region the attention grid spans.

    The attention grid covers ``A [-1, 1]^2 + t`` in input coordinates (``theta = [A | t]``), a
    parallelogram. A point ``p`` is inside when ``u = A^-1 (p - t)`` has ``|u_x|, |u_y| <= 1``,
    checked without dividing as ``|adj(A) (p - t)| <= |det A|`` (a singular ``A`` spans no area and
    gives an empty mask). Pixel centres use the same ``align_corners`` convention as the sampling.
    No gradient flows through the mask.
    """
    theta = theta.detach()
    batch = theta.shape[0]
    points = F.affine_grid(_identity(batch, theta), [batch, 1, height, width], align_corners=align_corners)
    offset = points - theta[:, None, None, :, 2]
    dx, dy = offset[..., 0], offset[..., 1]
    a, b = theta[:, 0, 0, None, None], theta[:, 0, 1, None, None]
    c, d = theta[:, 1, 0, None, None], theta[:, 1, 1, None, None]
    det = (a * d - b * c).abs()
    u = (d * dx - b * dy).abs()
    v = (a * dy - c * dx).abs()
    limit = det * (1.0 + MASK_TOLERANCE)
    inside = (u <= limit) & (v <= limit) & (det > 0)
    return inside.to(theta.dtype).unsqueeze(1)


def redundancy_image(images: torch.Tensor, theta: torch.Tensor, size: int, align_corners: bool = True,
                     resolution: str = "input") -> Tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5: the input without its attention region, at ``size x size``; returns (image, mask).

    Eq. 5 removes from the input grid G the points it shares with the attention grid G^a. G^a's
    points are not on G, so we read "shared" as "inside the region G^a spans"
    (:func:`attention_region_mask`) and zero those pixels (0 is the mean colour of normalised
    inputs). ``resolution="input"`` (default) masks at input resolution, then resizes to ``size``;
    ``"attention"`` resizes first and masks on the ``size x size`` grid, the order of the official
    code (which also drops the grid points next to each sampling location). The returned mask is the
    one applied (input- or attention-sized). The redundancy carries no gradient to ``theta``.
    """
    if resolution not in REDUNDANCY_RESOLUTIONS:
        raise ValueError(f"unknown redundancy resolution {resolution!r}; valid: {', '.join(REDUNDANCY_RESOLUTIONS)}")
    height, width = images.shape[-2:]
    if resolution == "input":
        mask = attention_region_mask(theta, height, width, align_corners)
        return resize(images * (1.0 - mask.to(images.dtype)), size, align_corners), mask
    mask = attention_region_mask(theta, size, size, align_corners)
    return resize(images, size, align_corners) * (1.0 - mask.to(images.dtype)), mask


class AttentionRedundancyTransformer(nn.Module):
    """The ART module (section 3.1): raw attention parameters + input -> attention and redundancy.

    No learnable parameters (the fully connected layer predicting Gamma belongs to the
    classification stream). ``forward(images, gamma_raw)`` returns a dict with ``gamma_raw``,
    ``gamma`` (Gamma_res of eq. 6, or the six free entries), ``theta`` (B, 2, 3), ``attention``,
    ``redundancy`` (both ``size x size``) and ``mask`` (the removed region, see
    :func:`redundancy_image`). ``theta_grad_clip`` clips the gradient the attention image sends to
    theta (:func:`clip_theta_grad`; off by default).
    """

    def __init__(self, size: int, transform: str = "restricted", alpha_l: float = 0.5, alpha_s: float = 1.0,
                 align_corners: bool = True, redundancy_resolution: str = "input",
                 theta_grad_clip: Optional[float] = None):
        super().__init__()
        if transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {transform!r}; valid: {', '.join(TRANSFORMS)}")
        if redundancy_resolution not in REDUNDANCY_RESOLUTIONS:
            raise ValueError(f"unknown redundancy_resolution {redundancy_resolution!r}; "
                             f"valid: {', '.join(REDUNDANCY_RESOLUTIONS)}")
        self.size, self.transform = int(size), transform
        self.alpha_l, self.alpha_s = float(alpha_l), float(alpha_s)
        self.align_corners, self.redundancy_resolution = bool(align_corners), redundancy_resolution
        if theta_grad_clip is not None and not theta_grad_clip > 0:
            raise ValueError(f"theta_grad_clip must be > 0 or None; got {theta_grad_clip!r}")
        self.theta_grad_clip = theta_grad_clip

    def theta(self, gamma_raw: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(gamma, theta)``: restricted Gamma and its matrix, or the free entries and theirs."""
        if self.transform == "free":
            return gamma_raw, free_theta(gamma_raw)
        gamma = restrict_gamma(gamma_raw, self.alpha_l, self.alpha_s)
        return gamma, attention_theta(gamma)

    def forward(self, images: torch.Tensor, gamma_raw: torch.Tensor) -> Dict[str, torch.Tensor]:
        gamma, theta = self.theta(gamma_raw)
        attention = sample_affine(images, clip_theta_grad(theta, self.theta_grad_clip), self.size,
                                  self.align_corners)
        redundancy, mask = redundancy_image(images, theta, self.size, self.align_corners,
                                            self.redundancy_resolution)
        return {"gamma_raw": gamma_raw, "gamma": gamma, "theta": theta, "attention": attention,
                "redundancy": redundancy, "mask": mask}

    def extra_repr(self) -> str:
        return (f"size={self.size}, transform={self.transform}, alpha_l={self.alpha_l}, alpha_s={self.alpha_s}, "
                f"align_corners={self.align_corners}, redundancy_resolution={self.redundancy_resolution}, "
                f"theta_grad_clip={self.theta_grad_clip}")
