"""Image transforms shared by every notebook, and helpers to map annotations into resized images.

The five papers preprocess alike: resize to a fixed square (448 x 448 in CRA/SMRA Sec. 4.1 and
CLAN Sec. 4 "Implementation details", 224/448 in the others), random horizontal flip for training,
ImageNet mean/std normalisation because the backbones start from ImageNet weights. No paper
equation is implemented here.

``resize_mode="resize"`` (default) squashes the whole image to ``s x s``, so :func:`scale_box` maps
annotation boxes and points exactly, which the CAM localisation score relies on.
``resize_mode="resize_crop"`` is the other common FGVC recipe (shorter side to ``s * 8/7`` with the
aspect ratio kept, e.g. 512 for a 448 crop, then a random crop for training and a centre crop for
testing); annotations cannot be mapped through it with :func:`scale_box`. Its test images can also be
seen whole (``view="uncropped"``: the resized image without the crop, as CRA-CNN's section 4.3
evaluates); they then differ in size from image to image unless the originals share one aspect ratio.
"""
from __future__ import annotations

import contextlib
import numbers
from typing import Optional

import torch
from torchvision import transforms as T

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RESIZE_MODES",
    "TEST_VIEWS",
    "build_transforms",
    "TrainTransform",
    "check_view",
    "denormalize",
    "scale_box",
    "check_image_size",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("resize", "resize_crop")
TEST_VIEWS = ("uncropped",)   # other ways to show a test image than the training transform's own
_CROP_MARGIN = 8 / 7  # e.g. 512 -> 448, the usual FGVC resize-then-crop ratio


def _square(image_size) -> tuple[int, int]:
    """``(height, width)`` from an int or a pair; raises ValueError for non-positive sizes."""
    if isinstance(image_size, bool):
        raise TypeError("image_size must be an int or a (height, width) pair, got a bool")
    if isinstance(image_size, numbers.Integral):
        size = (int(image_size), int(image_size))
    else:
        try:
            size = tuple(int(v) for v in image_size)
        except TypeError:
            raise TypeError(f"image_size must be an int or a (height, width) pair, got {image_size!r}") from None
        if len(size) != 2:
            raise ValueError(f"image_size must be an int or a (height, width) pair, got {image_size!r}")
    if min(size) <= 0:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return size


def build_transforms(image_size, train: bool, flip: bool = True, resize_mode: str = "resize",
                     view: str | None = None):
    """Transform from an RGB ``PIL.Image`` to a normalised float tensor ``(3, H, W)`` (for training, a
    :class:`TrainTransform`).

    ``image_size``: int ``s`` (square ``s x s``) or ``(height, width)``. ``train`` adds a random
    horizontal flip when ``flip`` is true. ``resize_mode``: ``"resize"`` or ``"resize_crop"``
    (see the module docstring). ``view="uncropped"`` (test images of ``"resize_crop"`` only) leaves
    out the centre crop.
    """
    size = _square(image_size)
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize_mode {resize_mode!r}; valid modes: {list(RESIZE_MODES)}")
    check_view(view, resize_mode, train)
    if resize_mode == "resize":
        resize = T.Resize(size, antialias=True)
    elif size[0] == size[1]:   # shorter side to s * 8/7, aspect ratio kept
        resize = T.Resize(int(round(size[0] * _CROP_MARGIN)), antialias=True)
    else:                      # a (height, width) target: both sides scaled alike
        resize = T.Resize(tuple(int(round(s * _CROP_MARGIN)) for s in size), antialias=True)
    steps: list = [resize]
    if resize_mode == "resize_crop" and view is None:
        steps.append(T.RandomCrop(size) if train else T.CenterCrop(size))
    if train and flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return TrainTransform(steps) if train else T.Compose(steps)


class TrainTransform(T.Compose):
    """The training pipeline, whose random numbers can be drawn apart from the image.

    :meth:`draw` notes the state of torch's global generator and moves it on by as many numbers as one
    image takes (a random crop two, a flip one, as torchvision draws them); inside
    ``with transform.preset(draw):`` a call replays that state, so the image gets exactly the crop and
    flip it would have got had it been transformed at the moment of the draw. The training loader draws
    each epoch's numbers in the main process, in the order its sampler yields the images
    (:mod:`fgvc_lib.data.drawn`): the batches are the same for any number of worker processes, and the
    same as when every image was transformed in the main process one after the other. Called outside a
    preset it draws for itself, like any torchvision pipeline."""

    def __init__(self, transforms) -> None:
        super().__init__(transforms)
        self._preset: Optional[bytes] = None

    def draw(self) -> Optional[bytes]:
        """One image's draw: the generator state its random steps start from, as bytes (a tensor would travel
        to worker processes through shared memory, one open file per image), or None: nothing is random."""
        random_steps = [t for t in self.transforms if isinstance(t, (T.RandomCrop, T.RandomHorizontalFlip))]
        if not random_steps:
            return None
        state = torch.get_rng_state().numpy().tobytes()
        for step in random_steps:   # the same calls, hence the same numbers used, as the steps make
            if isinstance(step, T.RandomCrop):
                torch.randint(0, 2, size=(1,))
                torch.randint(0, 2, size=(1,))
            else:
                torch.rand(1)
        return state

    @contextlib.contextmanager
    def preset(self, draw: Optional[bytes]):
        """Calls inside the block replay ``draw`` (from :meth:`draw`) instead of drawing."""
        previous, self._preset = self._preset, draw
        try:
            yield self
        finally:
            self._preset = previous

    def __call__(self, image):
        if self._preset is None:
            return super().__call__(image)
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(torch.frombuffer(bytearray(self._preset), dtype=torch.uint8))
            return super().__call__(image)


def check_view(view: str | None, resize_mode: str, train: bool = False) -> None:
    """Raise ValueError unless ``view`` is None or a test view that ``resize_mode`` has."""
    if view is None:
        return
    if view not in TEST_VIEWS:
        raise ValueError(f"unknown test view {view!r}; valid views: {list(TEST_VIEWS)}")
    if train:
        raise ValueError(f"test view {view!r} is for test images; the training transform has none")
    if resize_mode != "resize_crop":
        raise ValueError(f"test view {view!r} needs resize_mode='resize_crop' (with resize_mode={resize_mode!r} "
                         f"the test image is already uncropped)")


def denormalize(tensor: torch.Tensor) -> torch.Tensor:
    """Undo the ImageNet normalisation of ``(3, H, W)`` or ``(N, 3, H, W)``; result clamped to [0, 1]."""
    if tensor.dim() not in (3, 4) or tensor.shape[-3] != 3:
        raise ValueError(f"denormalize expects (3, H, W) or (N, 3, H, W), got shape {tuple(tensor.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=tensor.dtype, device=tensor.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=tensor.dtype, device=tensor.device).view(3, 1, 1)
    return (tensor.detach() * std + mean).clamp(0.0, 1.0)


def scale_box(box, from_size, to_size):
    """Map a box ``(x, y, w, h)`` or a point ``(x, y)`` from an image of ``from_size`` (w, h) into
    the same image resized to ``to_size`` (an int ``s`` for ``s x s``, or (w, h)).

    Valid for ``resize_mode="resize"`` only. Returns a tuple of floats of the same length.
    Note the (width, height) order, matching ``annotation()["image_size"]``; ``build_transforms``
    takes ``(height, width)`` like torchvision, which only matters for non-square sizes.
    """
    src_w, src_h = (float(v) for v in from_size)
    if isinstance(to_size, (int, float)):
        dst_w = dst_h = float(to_size)
    else:
        dst_w, dst_h = (float(v) for v in to_size)
    if min(src_w, src_h, dst_w, dst_h) <= 0:
        raise ValueError(f"sizes must be positive, got from_size={from_size!r}, to_size={to_size!r}")
    sx, sy = dst_w / src_w, dst_h / src_h
    values = tuple(float(v) for v in box)
    if len(values) == 2:
        return (values[0] * sx, values[1] * sy)
    if len(values) == 4:
        return (values[0] * sx, values[1] * sy, values[2] * sx, values[3] * sy)
    raise ValueError(f"scale_box expects a box (x, y, w, h) or a point (x, y), got {box!r}")


def check_image_size(image_size, minimum: int, backbone: str | None = None) -> None:
    """Raise ValueError when ``image_size`` (int or pair) is below ``minimum`` on either side.

    ``minimum`` is the smallest input a backbone (named by ``backbone``) can take, e.g. 32 for the
    five stride-2 stages of VGG/ResNet.
    """
    size = _square(image_size)
    if min(size) < minimum:
        who = f"backbone {backbone!r}" if backbone else "the backbone"
        raise ValueError(
            f"image_size {image_size} is below the minimum {minimum} that {who} needs; "
            f"use image_size >= {minimum}."
        )
