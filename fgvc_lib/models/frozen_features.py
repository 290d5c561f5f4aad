"""A memo of a frozen feature extractor's output, per input image (a speed-up, not part of any method).

SSANet keeps its feature extractor fixed (Baffour et al., JVCIR 81 (2021) 103368, sec. 4.1: the
ImageNet weights of the VGG-16 FE are not updated), so ``F = VGG(X)`` (sec. 3.1) depends on the
image ``X`` alone. With the resize + random horizontal flip of sec. 4.1 (and of the cpu profile:
``fgvc_lib.data.transforms.build_transforms`` with ``resize_mode="resize"``, no random crop) an image
reaches the network in one of two exact forms, so after an epoch or two every training batch has been
through the extractor before. :class:`FrozenFeatureMemo` keeps those outputs and hands them back, so
only the parts that train (the SSA block and the heads) are computed again. No equation of the paper
is implemented here.

How an entry is found, and when the memo is not used:

* The key is a hash of the image tensor's bytes (BLAKE2b, 128 bits) together with its shape, dtype
  and device and the autocast state, so a flipped image is its own entry and an image seen in another
  precision or on another device is a miss, never a wrong hit.
* The memo is tied to the extractor's weights through a *state token* the caller passes
  (:func:`module_state_token`: the storage and in-place version counter of every parameter and
  buffer). Loading a checkpoint, an optimiser step, ``.to(device)`` or ``.half()`` all change it, and
  a changed token empties the memo.
* The caller decides when it applies (:meth:`FrozenFeatureMemo.applies`): only while the extractor is
  in inference mode (a module in training mode, e.g. batch norm on batch statistics, makes an
  image's features depend on the rest of the batch), has no forward hooks (they would not fire on a
  hit), and on the devices the memo is set for (CPU by default: there the extractor dominates a
  training step and hashing costs a few per cent of it; on a GPU the host copy for hashing can cost
  as much as the extractor).
* Entries never carry gradients: the extractor runs under ``torch.no_grad()`` and the returned
  tensor is a fresh tensor, so the caller may mark it ``requires_grad`` (Grad-CAM hooks on ``F``)
  without touching what is stored.
* Memory is bounded: least-recently-used entries are evicted beyond ``max_bytes``. The memo is not
  saved with the model: pickling or ``copy.deepcopy`` gives an empty memo with the same settings.

Exactness: a hit returns the very tensor the extractor produced for that image. On CPU the extractor
computes an image's features identically in batches of several images, but a batch of a single image
takes another convolution path whose result can differ in the last bits (measured: about 5e-8 on
features of mean magnitude 6e-3 for the slim VGG-16); a run with the memo can therefore differ from one
without it at that level, and a resumed run (whose memo starts empty) from an uninterrupted one.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable, Hashable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

DEFAULT_MAX_BYTES = 64 * 2 ** 20    # per model; the cpu profile (720 training images in both flips, 1,200 test
                                    # images) needs about 23 MiB at 192 px and 42 MiB at 256 px
DEFAULT_DEVICES = ("cpu",)


def image_digest(image: torch.Tensor) -> bytes:
    """128-bit BLAKE2b digest of one image tensor's bytes (any dtype; copied to the host if needed)."""
    data = image.detach().contiguous()
    if data.device.type != "cpu":
        data = data.cpu()
    return hashlib.blake2b(data.reshape(-1).view(torch.uint8).numpy().tobytes(), digest_size=16).digest()


def module_state_token(module: nn.Module) -> Tuple:
    """What identifies ``module``'s current weights: per parameter and buffer, its storage, in-place
    version counter, dtype and device. Any change of the weights changes the token."""
    return tuple((name, t.data_ptr(), t._version, t.dtype, str(t.device))
                 for name, t in list(module.named_parameters()) + list(module.named_buffers()))


def _autocast_state(device_type: str) -> Tuple:
    try:
        if torch.is_autocast_enabled(device_type):
            return (True, torch.get_autocast_dtype(device_type))
    except (TypeError, RuntimeError):  # a device type autocast does not know
        pass
    return (False, None)


class FrozenFeatureMemo:
    """LRU memo ``image -> extractor(image)`` for a frozen extractor (see the module docstring).

    ``memo(extractor, images, token)`` returns ``extractor(images)`` for a batch ``(B, ...)``,
    running ``extractor`` only on the images it has not stored under the same ``token``.
    ``extractor`` must map a batch to a batch, image by image (no interaction between images).
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, devices: Sequence[str] = DEFAULT_DEVICES):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be an integer >= 0 (0 disables the memo); got {max_bytes!r}")
        if isinstance(devices, str) or not all(isinstance(d, str) for d in devices):
            raise ValueError(f"devices must be a sequence of device types such as ('cpu',) or ('cpu', 'cuda'); "
                             f"got {devices!r}")
        self.max_bytes = max_bytes
        self.devices = tuple(devices)
        self._entries: "OrderedDict[Hashable, torch.Tensor]" = OrderedDict()
        self._token: Optional[Tuple] = None
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    # --- bookkeeping ---
    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry (the hit and miss counters are kept)."""
        self._entries.clear()
        self.bytes = 0
        self._token = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_entries=OrderedDict(), _token=None, bytes=0)  # entries are never saved or copied
        return state

    def __repr__(self) -> str:
        return (f"FrozenFeatureMemo({len(self)} entries, {self.bytes / 2 ** 20:.1f} of "
                f"{self.max_bytes / 2 ** 20:.0f} MiB, devices={self.devices}, hits={self.hits}, misses={self.misses})")

    # --- when it applies ---
    def applies(self, extractor: nn.Module, images: torch.Tensor) -> bool:
        """Whether the memo may stand in for ``extractor`` on ``images``: enabled, on one of its
        devices, the extractor entirely in inference mode, and no forward hook that a hit would skip."""
        if self.max_bytes == 0 or images.device.type not in self.devices:
            return False
        if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
            return False
        return not any(m.training or m._forward_hooks or m._forward_pre_hooks for m in extractor.modules())

    # --- the memo ---
    def _keys(self, images: torch.Tensor) -> List[Hashable]:
        context = (str(images.device), images.dtype, tuple(images.shape[1:]), _autocast_state(images.device.type))
        host = images.detach()
        if host.device.type != "cpu":
            host = host.cpu()  # one copy of the batch, not one per image
        return [(context, image_digest(image)) for image in host]

    def _store(self, key: Hashable, value: torch.Tensor) -> None:
        size = value.numel() * value.element_size()
        if size > self.max_bytes:
            return
        self._entries[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()

    def __call__(self, extractor: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                 token: Optional[Tuple] = None) -> torch.Tensor:
        if token != self._token:
            self.clear()
            self._token = token
        keys = self._keys(images)
        found: List[Optional[torch.Tensor]] = []
        for key in keys:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            found.append(value)
        missing = [i for i, value in enumerate(found) if value is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        computed = None
        if missing:
            with torch.no_grad():
                batch = images if len(missing) == len(keys) else images[missing]
                computed = extractor(batch).detach()
            for row, i in enumerate(missing):
                # a copy per image: a view would keep the whole batch's storage alive
                found[i] = computed[row].clone()
                self._store(keys[i], found[i])
            if len(missing) == len(keys):
                return computed  # the entries are copies: marking this requires_grad leaves them alone
        return torch.stack(found)

    def stats(self) -> dict:
        total = self.hits + self.misses
        return {"entries": len(self), "bytes": self.bytes, "hits": self.hits, "misses": self.misses,
                "hit_rate": self.hits / total if total else float("nan")}
