"""Parameter and multiply-add counts of a model, for the papers' complexity columns.

Several of the papers compare their attention modules by the cost they add to the backbone
(parameters and FLOPs/MACs; e.g. CLAN's and SSANet's model-size comparisons). This module gives one
counting convention for every notebook:

* ``params``: every parameter of the model, trainable or frozen (``numel`` over
  ``model.parameters()``, which lists a shared parameter once).
* ``macs``: multiply-accumulates of one forward pass, counted by PyTorch's own
  :class:`torch.utils.flop_counter.FlopCounterMode` and halved (that counter reports a
  multiply-add as two FLOPs). It counts the operators it knows - convolutions, linear layers and
  matrix products (``mm``/``addmm``/``bmm``/``baddbmm``), scaled-dot-product attention - and
  ignores element-wise work (ReLU, batch-norm, pooling, softmax, interpolation). That is the usual
  convention of published "GFLOPs" figures for CNNs: torchvision's ResNet-50 at 224 px comes out at
  4.09 G MACs, the figure torchvision documents.

The forward pass runs on the ``meta`` device when it can (shapes only, no arithmetic: fast and
memory-free, and the model's own tensors are left untouched) and falls back to a real forward pass
on ``device`` for models that need real values (for example a ``.item()`` call or data-dependent
shapes).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

ImageSize = Union[int, Sequence[int]]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (each shared parameter counted once)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))


def _image_shape(image_size: ImageSize, batch_size: int) -> Tuple[int, int, int, int]:
    if isinstance(image_size, int):
        height = width = image_size
    else:
        size = tuple(image_size)
        if len(size) != 2:
            raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
        height, width = size
    if min(height, width) < 1 or batch_size < 1:
        raise ValueError(f"image_size and batch_size must be positive, got image_size={image_size!r}, "
                         f"batch_size={batch_size}")
    return (int(batch_size), 3, int(height), int(width))


def model_complexity(model: nn.Module, image_size: ImageSize, batch_size: int = 1,
                     device: Union[str, torch.device] = "cpu", use_meta: bool = True) -> Dict[str, int]:
    """Parameters and multiply-adds of one forward pass of ``batch_size`` RGB images.

    Args:
        model: any ``nn.Module`` taking a ``(B, 3, H, W)`` batch; it may return a tensor or a
            :class:`~fgvc_lib.models.output.ModelOutput` (the output is not used).
        image_size: ``H`` (square) or ``(H, W)`` in pixels.
        batch_size: images per forward pass; MACs grow linearly with it.
        device: where the real forward pass runs if the meta-device pass is not possible.
        use_meta: try the shapes-only ``meta`` pass first (default).

    Returns:
        ``{"params": int, "macs": int}`` (see the module docstring for what is counted).

    The model is run in eval mode under ``torch.no_grad``; each submodule's train/eval flag is
    restored afterwards.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    macs = sum(macs_by_operator(model, image_size, batch_size, device, use_meta).values())
    return {"params": count_parameters(model), "macs": macs}


def format_complexity(stats: Dict[str, int]) -> str:
    """``{"params", "macs"}`` as a short human string, e.g. ``"25.56 M params, 4.09 G MACs"``."""
    return f"{stats['params'] / 1e6:.2f} M params, {stats['macs'] / 1e9:.2f} G MACs"


def _macs_per_operator(run) -> Dict[str, int]:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        run()
    counts = counter.get_flop_counts().get("Global", {})
    return {str(op).split(".", 1)[-1]: int(flops) // 2 for op, flops in counts.items() if flops}


def macs_by_operator(model: nn.Module, image_size: ImageSize, batch_size: int = 1,
                     device: Union[str, torch.device] = "cpu", use_meta: bool = True) -> Dict[str, int]:
    """Multiply-adds of one forward pass split by operator, e.g. ``{"convolution": ..., "bmm": ...}``.

    The same count as :func:`model_complexity` (its ``macs`` is the sum of these values), keyed by
    the aten operator without its namespace (``convolution``, ``addmm``, ``mm``, ``bmm``, ...), so a
    complexity table can say where a model's cost comes from (e.g. attention products vs
    convolutions). Operators with no multiply-add are left out. Same meta-device pass and fallback,
    same eval-mode handling as :func:`model_complexity`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    shape = _image_shape(image_size, batch_size)
    device = torch.device(device)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        counts = None
        if use_meta:
            # Meta stand-ins for the parameters and buffers, for this one call: the model is not
            # copied and its real tensors are not touched.
            stand_ins = {name: torch.empty_like(t, device="meta") for name, t in model.named_parameters()}
            stand_ins.update({name: torch.empty_like(t, device="meta") for name, t in model.named_buffers()})
            meta_images = torch.zeros(shape, device="meta")
            try:
                counts = _macs_per_operator(lambda: functional_call(model, stand_ins, (meta_images,)))
            except Exception:  # noqa: BLE001 - any failure on meta means: count with real tensors
                counts = None
        if counts is None:
            model_devices = {t.device for t in list(model.parameters()) + list(model.buffers())}
            if model_devices and model_devices != {device}:
                where = sorted(map(str, model_devices))
                raise ValueError(f"the model lives on {where} but device={str(device)!r}; pass the model's "
                                 f"device, e.g. device={where[0]!r}")
            images = torch.zeros(shape, device=device)
            counts = _macs_per_operator(lambda: model(images))
    finally:
        for module, training in modes.items():
            module.training = training
    return dict(sorted(counts.items(), key=lambda item: -item[1]))
