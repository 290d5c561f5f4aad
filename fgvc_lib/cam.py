"""Class activation maps of the study's models, and scores of how well they localise the part.

The papers show Grad-CAM / activation heat-maps of their branches (CRA-CNN's and CLAN's attention
figures, SSANet's per-branch maps). The maps themselves come from the ``grad-cam`` package
(Selvaraju et al., "Grad-CAM", ICCV 2017, Eq. 1-2: channel weights = spatially averaged gradients
of the class score, map = ReLU of the weighted channel sum); this module only adapts our model
contract to it:

* :class:`BranchLogits` reduces a model's :class:`~fgvc_lib.models.output.ModelOutput` to the logits
  of one branch, because Grad-CAM needs a single logits tensor.
* :func:`compute_cams` runs a grad-cam method on a batch and leaves the model as it found it
  (train/eval flags, parameter gradients, no hooks left behind). It also works when the layers
  before the target layer are frozen (``requires_grad=False``, e.g. SSANet's fixed extractor). It
  runs where the model is (:func:`model_device`), a batch at a time (:func:`view_batch_size`), as do
  the views of ``fgvc_lib/papers/*_views.py``; results come back to the CPU.
* :func:`pointing_game`, :func:`energy_in_box`, :func:`localization_scores` score a map against a
  ground-truth box (x, y, w, h in image pixels) - the quantitative check the synthetic dataset makes
  possible (pointing game: Zhang et al., ECCV 2016; energy-based pointing: Wang et al.,
  "Score-CAM", CVPR-W 2020).
* :func:`cam_grid` draws the papers' style of figure: one row per image, the input then one
  overlay per model variant; :func:`feature_activation_map` gives the channel-averaged activation
  maps some papers plot per layer.

Boxes follow CUB-200-2011's ``bounding_boxes.txt``: ``(x, y, w, h)`` with ``(x, y)`` the top-left
corner in pixels. A pixel ``(row, col)`` covers ``[col, col+1) x [row, row+1)`` and counts as inside
a box when it overlaps the box; the box is clipped to the image.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from pytorch_grad_cam.utils.image import scale_cam_image, show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from .masks import box_mask  # noqa: F401  (also read from here by the tests)

from .models.output import ModelOutput
from .reporting import new_figure

# Gradient-based methods plus EigenCAM. Score-CAM and Ablation-CAM are left out: one forward pass per
# channel, and grad-cam draws tqdm progress bars for them that would pollute the notebooks' outputs.
CAM_METHODS = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "hirescam": HiResCAM,
    "xgradcam": XGradCAM,
    "layercam": LayerCAM,
    "eigencam": EigenCAM,
}

Box = Sequence[float]
ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]

# Images per model call of a view (CAMs, stage maps, attention) on an accelerator. On the CPU a view keeps
# its whole-batch call unless told otherwise, so that its numbers stay those of the committed outputs.
DEVICE_BATCH_SIZE = 32


def model_device(model) -> torch.device:
    """Where ``model`` runs: the device of its first parameter (or buffer); the CPU for a model holding
    neither (or a stand-in that is no module). Every view moves its input images there, a batch at a
    time, and returns its results on the CPU."""
    for method in ("parameters", "buffers"):
        for tensor in getattr(model, method, tuple)():
            return tensor.device
    return torch.device("cpu")


def view_batch_size(batch_size: Optional[int], n: int, device: Union[str, torch.device]) -> int:
    """Images per model call of a view: ``batch_size`` when given, else the whole batch of ``n`` on the CPU
    (today's arithmetic, bit for bit) and :data:`DEVICE_BATCH_SIZE` on an accelerator."""
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}")
        return batch_size
    return max(1, n) if torch.device(device).type == "cpu" else DEVICE_BATCH_SIZE


# --------------------------------------------------------------------------- model adapter


def valid_branches(model: nn.Module) -> List[str]:
    """Branch names ``compute_cams`` accepts for ``model``: ``final`` plus ``model.branch_names``."""
    names = ["final"]
    names += [n for n in getattr(model, "branch_names", ()) if n not in names]
    return names


class BranchLogits(nn.Module):
    """Wraps a model of the study so that ``forward`` returns one logits tensor.

    ``branch=None`` (or ``"final"``) selects the final prediction; any other name selects
    ``output.branch(name)``. A model that returns a plain tensor is accepted with ``branch=None``.
    """

    def __init__(self, model: nn.Module, branch: Optional[str] = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if branch is not None and branch != "final" and hasattr(model, "branch_names"):
            if branch not in valid_branches(model):
                raise ValueError(f"unknown branch {branch!r} for {type(model).__name__}; "
                                 f"valid branches: {', '.join(valid_branches(model))}")
        self.model = model
        self.branch = branch

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(images)
        if isinstance(out, ModelOutput):
            try:
                return out.branch(self.branch)
            except KeyError as err:
                raise ValueError(f"unknown branch {self.branch!r} for {type(self.model).__name__}: "
                                 f"{err.args[0]}") from None
        if isinstance(out, torch.Tensor):
            if self.branch not in (None, "final"):
                raise ValueError(f"{type(self.model).__name__} returns a plain tensor, so it has no branch "
                                 f"{self.branch!r}; use branch=None")
            return out
        raise TypeError(f"{type(self.model).__name__}.forward returned {type(out).__name__}; expected a "
                        f"ModelOutput or a logits tensor")


# --------------------------------------------------------------------------- computing maps


def default_target_layers(model: nn.Module, branch: Optional[str] = None) -> List[nn.Module]:
    """``model.cam_target_layers()``, or ``model.cam_target_layers(branch=branch)`` when the model's
    method takes a ``branch`` argument (models whose branches read different feature maps)."""
    method = getattr(model, "cam_target_layers", None)
    if method is None:
        raise ValueError(f"{type(model).__name__} has no cam_target_layers(); pass target_layers=[...]")
    try:
        takes_branch = "branch" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        takes_branch = False
    return list(method(branch=branch) if takes_branch else method())


def _as_targets(targets, n: int):
    if targets is None:
        return None
    if isinstance(targets, torch.Tensor):
        targets = targets.detach().cpu().reshape(-1).tolist()
    elif isinstance(targets, np.ndarray):
        targets = targets.reshape(-1).tolist()
    targets = list(targets)
    if len(targets) != n:
        raise ValueError(f"got {len(targets)} targets for {n} images; pass one class index (or grad-cam "
                         f"target object) per image")
    return [t if callable(t) else ClassifierOutputTarget(int(t)) for t in targets]


def _layers_reaching_branch(wrapped: BranchLogits, layers: List[nn.Module], probe: torch.Tensor,
                            explicit: bool) -> List[nn.Module]:
    """The target layers whose output the chosen branch's logits depend on.

    grad-cam pairs activations and gradients by position, so a layer that gets no gradient from the
    branch (e.g. a side module feeding only another branch) would break it or, worse, shift the
    pairing. One probe pass on a single image finds those layers: explicitly requested ones raise,
    default ones (``cam_target_layers()`` covers every branch) are skipped.
    """
    outputs: Dict[int, object] = {}
    handles = [layer.register_forward_hook(lambda _m, _i, out, k=k: outputs.__setitem__(k, out))
               for k, layer in enumerate(layers)]
    try:
        with torch.enable_grad():
            logits = wrapped(probe.detach().contiguous().clone().requires_grad_(True))
            usable = [k for k in range(len(layers))
                      if isinstance(outputs.get(k), torch.Tensor) and outputs[k].requires_grad]
            grads = torch.autograd.grad(logits.sum(), [outputs[k] for k in usable], allow_unused=True) if usable else []
    finally:
        for handle in handles:
            handle.remove()
    reached = {k for k, g in zip(usable, grads) if g is not None}
    unreached = [k for k in range(len(layers)) if k not in reached]
    branch = wrapped.branch or "final"
    if not reached:
        raise ValueError(f"none of the target layers ({', '.join(type(layers[k]).__name__ for k in unreached)}) "
                         f"influences branch {branch!r}; pass target_layers that this branch reads")
    if unreached and explicit:
        raise ValueError(f"target layer(s) {', '.join(f'#{k} ({type(layers[k]).__name__})' for k in unreached)} "
                         f"do not influence branch {branch!r} (not run, or no gradient path); drop them or "
                         f"choose another branch")
    return [layers[k] for k in sorted(reached)]


def compute_cams(model: nn.Module, images: torch.Tensor,
                 target_layers: Optional[Sequence[nn.Module]] = None, branch: Optional[str] = None,
                 targets: Optional[ArrayLike] = None, method: str = "gradcam",
                 batch_size: Optional[int] = None) -> np.ndarray:
    """Class activation maps of ``images``, one per image, at image resolution.

    Args:
        model: a model of the study (``forward`` returns a ModelOutput) or any classifier.
        images: ``(B, 3, H, W)`` tensor, normalised the way the model was trained.
        target_layers: layers to explain; default ``model.cam_target_layers()`` (given ``branch`` if
            that method accepts it, see :func:`default_target_layers`). With several layers
            grad-cam averages their (normalised) maps; pass ``[layer]`` to get one layer's map. Default
            layers that the chosen branch does not depend on are skipped; explicit ones raise.
        branch: which logits to explain (``None``/``"final"`` or a name in ``model.branch_names``).
        targets: class per image (ints, a tensor of labels, or grad-cam target objects); default:
            the class the chosen branch predicts.
        method: one of ``CAM_METHODS`` (default ``"gradcam"``).
        batch_size: images per pass (:func:`view_batch_size`; default: the whole batch on the CPU,
            :data:`DEVICE_BATCH_SIZE` on an accelerator).

    Returns:
        ``float32`` array ``(B, H, W)`` with every map scaled to ``[0, 1]`` (an all-zero map stays 0).

    The maps are computed where the model is (:func:`model_device`): ``images`` may stay on the CPU,
    each batch is moved to the model's device, and only the maps come back (as a numpy array).

    The model's train/eval flags and parameter gradients are restored and grad-cam's hooks are
    removed, even when an error is raised. Gradients are enabled inside even if the caller is under
    ``torch.no_grad()``, and the input is made to require grad so that the target layer's activations
    carry a gradient when every parameter before it is frozen.
    """
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(CAM_METHODS)}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"images must be a (B, C, H, W) tensor, got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch; give at least one image")
    explicit_layers = target_layers is not None
    target_layers = list(target_layers) if explicit_layers else default_target_layers(model, branch)
    if not target_layers:
        raise ValueError("target_layers is empty; give at least one layer to explain")
    wrapped = BranchLogits(model, branch)
    all_targets = _as_targets(targets, images.shape[0])
    device = next(model.parameters(), images).device
    chunk = view_batch_size(batch_size, images.shape[0], device)

    modes = {m: m.training for m in model.modules()}
    grads = {p: p.grad for p in model.parameters()}
    cam = None
    try:
        model.eval()
        target_layers = _layers_reaching_branch(wrapped, target_layers, images[:1].to(device), explicit_layers)
        cam = CAM_METHODS[method](model=wrapped, target_layers=target_layers)  # registers hooks, sets eval
        maps = []
        with torch.enable_grad():
            for start in range(0, images.shape[0], chunk):
                x = images[start:start + chunk].to(device).detach().contiguous().clone().requires_grad_(True)
                t = None if all_targets is None else all_targets[start:start + chunk]
                maps.append(cam(input_tensor=x, targets=t))
    finally:
        if cam is not None:
            cam.activations_and_grads.release()
        for m, training in modes.items():
            m.training = training
        for p, g in grads.items():
            p.grad = g
    return np.clip(np.concatenate(maps, axis=0).astype(np.float32), 0.0, 1.0)


def feature_activation_map(feature_map: torch.Tensor, size: Optional[Sequence[int]] = None) -> np.ndarray:
    """Channel-mean of a feature map, resized to ``size=(H, W)`` and scaled to ``[0, 1]`` per map.

    Accepts ``(C, h, w)`` (returns ``(H, W)``) or ``(B, C, h, w)`` (returns ``(B, H, W)``); ``size``
    defaults to the feature map's own resolution. Scaling and resizing use grad-cam's
    ``scale_cam_image`` so these maps look like the CAMs next to them. The channel mean is taken where
    the feature map is (e.g. on the GPU); only the mean comes to the CPU.
    """
    if not isinstance(feature_map, torch.Tensor) or feature_map.dim() not in (3, 4):
        raise ValueError("feature_map must be a (C, h, w) or (B, C, h, w) tensor")
    single = feature_map.dim() == 3
    fmap = feature_map.detach().float()
    if single:
        fmap = fmap.unsqueeze(0)
    mean = fmap.mean(dim=1).cpu().numpy()
    h, w = size if size is not None else mean.shape[-2:]
    maps = np.clip(scale_cam_image(mean, target_size=(int(w), int(h))), 0.0, 1.0)
    return maps[0] if single else maps


# --------------------------------------------------------------------------- localisation scores


def _check_cam(cam) -> np.ndarray:
    cam = np.asarray(cam.detach().cpu() if isinstance(cam, torch.Tensor) else cam, dtype=np.float64)
    if cam.ndim != 2:
        raise ValueError(f"a CAM is a (H, W) map at image resolution, got shape {cam.shape}")
    return np.where(np.isfinite(cam), np.maximum(cam, 0.0), 0.0)


def pointing_game(cam, box: Box, tolerance: float = 0.0) -> bool:
    """True when the CAM's maximum lies inside the box; an all-zero CAM points nowhere (False)."""
    cam = _check_cam(cam)
    if cam.size == 0 or cam.max() <= 0:
        return False
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return bool(box_mask(cam.shape, box, tolerance)[row, col])


def energy_in_box(cam, box: Box) -> float:
    """Share of the CAM's total mass that falls inside the box (0 for an all-zero CAM)."""
    cam = _check_cam(cam)
    total = float(cam.sum())
    if total <= 0:
        return 0.0
    return float(cam[box_mask(cam.shape, box)].sum() / total)


def localization_scores(cams, boxes, tolerance: float = 0.0) -> Dict[str, float]:
    """Mean pointing-game hit rate and mean energy-in-box over a batch.

    ``cams`` is ``(B, H, W)``; ``boxes`` is ``(B, 4)`` of ``(x, y, w, h)`` in the same pixels.
    Returns ``{"pointing": float, "energy": float, "n": int}``.
    """
    cams = np.asarray(cams.detach().cpu() if isinstance(cams, torch.Tensor) else cams)
    boxes = np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes, dtype=np.float64)
    if cams.ndim != 3:
        raise ValueError(f"cams must be (B, H, W), got shape {cams.shape}")
    if boxes.shape != (cams.shape[0], 4):
        raise ValueError(f"boxes must be (B, 4) = one (x, y, w, h) per CAM; got {boxes.shape} for "
                         f"{cams.shape[0]} CAMs")
    if cams.shape[0] == 0:
        raise ValueError("no CAMs to score (empty batch)")
    hits = [pointing_game(c, b, tolerance) for c, b in zip(cams, boxes)]
    energy = [energy_in_box(c, b) for c, b in zip(cams, boxes)]
    return {"pointing": float(np.mean(hits)), "energy": float(np.mean(energy)), "n": int(cams.shape[0])}


# --------------------------------------------------------------------------- figures


def _images_to_display(images, denormalize: Optional[Callable]) -> np.ndarray:
    """Images as float ``(B, H, W, 3)`` in [0, 1] for plotting."""
    if denormalize is not None:
        images = denormalize(images)
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"images must be (B, 3, H, W) or (B, H, W, 3), got shape {images.shape}")
    if images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = images.transpose(0, 2, 3, 1)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    out = []
    for img in images:
        lo, hi = float(img.min()), float(img.max())
        if lo < 0 or hi > 1:  # still normalised: stretch to [0, 1] so it stays visible
            img = (img - lo) / (hi - lo if hi > lo else 1.0)
        out.append(np.clip(img, 0.0, 1.0))
    return np.stack(out).astype(np.float32)


def cam_grid(images, cams_by_variant: Mapping[str, np.ndarray], titles: Optional[Sequence[str]] = None,
             boxes=None, denormalize: Optional[Callable] = None, cell_inches: float = 1.6,
             image_weight: float = 0.5) -> Figure:
    """A figure with one row per image: the input, then the CAM of each variant overlaid on it.

    Args:
        images: ``(B, 3, H, W)`` tensor/array (or ``(B, H, W, 3)``).
        cams_by_variant: column title -> ``(B, h, w)`` maps in [0, 1] (resized to the image if needed).
        titles: optional label per row (e.g. the class name), shown on the input column.
        boxes: optional ``(B, 4)`` ground-truth part boxes ``(x, y, w, h)``, drawn on every panel.
        denormalize: callable mapping ``images`` back to [0, 1] (e.g. undoing ImageNet mean/std); without
            it, images outside [0, 1] are min-max stretched for display.

    Returns a :class:`matplotlib.figure.Figure` built without pyplot (no backend state, nothing
    shown by a script; see :class:`fgvc_lib.reporting.NotebookFigure`): a notebook displays it as the
    cell's value; save it with :func:`fgvc_lib.reporting.save_figure`.
    """
    pictures = _images_to_display(images, denormalize)
    n, height, width = pictures.shape[:3]
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} images; give one per row")
    if boxes is not None:
        boxes = np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes, dtype=np.float64)
        if boxes.shape != (n, 4):
            raise ValueError(f"boxes must be (B, 4) = one (x, y, w, h) per image; got {boxes.shape} for {n} images")
    variants = {}
    for name, maps in cams_by_variant.items():
        maps = np.asarray(maps.detach().cpu() if isinstance(maps, torch.Tensor) else maps, dtype=np.float32)
        if maps.ndim != 3 or maps.shape[0] != n:
            raise ValueError(f"CAMs of {name!r} must be (B, h, w) with B={n}, got shape {maps.shape}")
        if maps.shape[1:] != (height, width):
            maps = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in maps])
        variants[name] = np.clip(np.nan_to_num(maps), 0.0, 1.0)

    cols = 1 + len(variants)
    fig = new_figure(figsize=(cell_inches * cols, cell_inches * n + 0.3), layout="constrained")
    axes = np.asarray(fig.subplots(n, cols, squeeze=False))
    for r in range(n):
        panels = [("input", pictures[r])]
        panels += [(name, show_cam_on_image(pictures[r], maps[r], use_rgb=True, image_weight=image_weight))
                   for name, maps in variants.items()]
        for c, (name, picture) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(picture)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
            if c == 0 and titles is not None:
                ax.set_ylabel(str(titles[r]), fontsize=7)
            if boxes is not None:
                x, y, w, h = boxes[r]
                # pixel centres sit on integers in imshow, so a pixel's left edge is at col - 0.5
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="lime", linewidth=1.0))
    return fig
