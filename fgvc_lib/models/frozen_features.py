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

Shared on disk, across runs and processes. Notebook 05 trains 40 runs (8 variants x 5 seeds), each in
its own worker process, all on the same images with the same frozen extractor: what one run computed,
the next can read. When the caller also passes a *fingerprint* of the extractor (:func:`weights_fingerprint`:
a hash of its structure and of every ``state_dict`` tensor's bytes, plus the torch build and the CPU's
vector capability; computed once per state token, i.e. again only when the weights change), the memo
keeps a file per fingerprint and input form under ``fgvc_lib.paths.cache_dir()/frozen_features``
(``$FGVC_CACHE_DIR`` moves it)::

    frozen_features/<fingerprint>-<dtype>-<C>x<H>x<W>[-autocast-<dtype>].pt   image hash -> features

* Read lazily: the first lookup of an input form in a process loads its file (the entries join the
  in-memory LRU; a file larger than ``max_bytes`` keeps its most recent entries).
* Written by :meth:`FrozenFeatureMemo.save`: the entries of this memo merged with what the file holds
  now (another process may have written since), most recently used last, trimmed to ``disk_max_bytes``
  (default: ``max_bytes``, 64 MiB), written to a temporary file and moved over the old one
  (``os.replace``), under an exclusive lock (:mod:`fgvc_lib.locks`) on ``frozen_features/.lock`` so two
  writers never lose each other's entries. SSANet calls ``save()`` whenever the model changes mode
  (``train()``/``eval()``), which the engine does at the start of every epoch and around every
  evaluation, so a run's entries are on disk after each epoch and after its test pass.
* Bounded: one file is at most ``disk_max_bytes`` (plus the key list); after each write, the files of
  the folder least recently read or written are deleted until the folder holds at most
  ``folder_max_bytes`` (default 512 MiB: eight extractors' worth at the default budget).
* Never a cause of failure: a file that cannot be read or does not hold what its name says (a
  truncated write, another format) is ignored with a ``RuntimeWarning`` (its entries are computed
  again, and the next save replaces it); a failed write is a warning too. Before writing, the
  fingerprint is computed again: if the weights changed without the state token noticing, the
  entries are dropped (with a warning), never stored under the old fingerprint.
* Only CPU entries are stored on disk (entries on another device stay in memory).
* The extractor always runs where the images are (the model's device: a view moves each batch of images
  there, :func:`fgvc_lib.cam.model_device`), on the whole batch of misses at once; only the hashing copies
  a batch to the host. On a device the memo is not set for, it stands aside and the extractor runs there.

Exactness: a hit returns the very tensor the extractor produced for that image, and that tensor does not
depend on which images it was computed with. On CPU the extractor computes an image's features
identically in any batch of two or more images (measured for the slim VGG-16-BN at 64, 96 and 256 px,
batches of 2 to 32, one or two threads, and at 96 px with output stride 8, batches of 2 to 16: bit for bit), but a batch of a single image takes another
convolution path whose result differs in the last bits (about 5e-8 on features of mean magnitude 6e-3).
The memo therefore never runs the extractor on a single image: a lone miss is computed as a pair (the
image twice) and the first row kept. Every stored entry, in memory or on disk, is thus what a batched
forward gives, so a run reads the same features whether its memo starts empty, warm from a file another
run (another seed, another batch order) wrote, or is resumed from a checkpoint: its numbers are equal bit
for bit. The one residual difference is with the memo off (``feature_memo=False``, or where the memo does
not apply): a batch of one image then takes the single-image path; the cpu and smoke profiles never
produce a batch of one (720 / 32 and 1,200 / 32 leave 16; 48 / 16 and 24 / 16 leave 0 and 8). The
fingerprint includes the torch version and CPU capability, because another build may round differently.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Set, Tuple, Union

import torch
import torch.nn as nn

from ..atomic import atomic_torch_save

DEFAULT_MAX_BYTES = 128 * 2 ** 20   # per model; the cpu profile (720 training images in both flips, 1,200 test
                                    # images) needs about 93 MiB at 96 px and output stride 8 (F: 64 x 12 x 12)
DEFAULT_DEVICES = ("cpu",)
DEFAULT_FOLDER_MAX_BYTES = 512 * 2 ** 20  # the whole frozen_features folder
FOLDER_NAME = "frozen_features"
LOCK_NAME = ".lock"
DISK_FORMAT = "fgvc_lib.frozen_features/1"
STALE_TEMP_SECONDS = 3600           # a temporary file this old was left by a killed writer

Fingerprint = Callable[[], str]
_NO_TOKEN = ("no state token yet",)  # differs from any token a caller passes, None included


def default_folder() -> Path:
    """Where the memo's files live by default: ``fgvc_lib.paths.cache_dir()/frozen_features``."""
    from ..paths import cache_dir

    return cache_dir() / FOLDER_NAME


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


def weights_fingerprint(module: nn.Module, *context: object) -> str:
    """What ``module`` computes, as 32 hex digits (BLAKE2b, 128 bits): its structure (``repr``: layer
    types, kernel sizes, strides, eps), the name, dtype, shape and bytes of every ``state_dict`` tensor,
    ``context`` (e.g. which output stage is read), the torch version and the CPU's vector capability
    (another build may round the same convolution differently)."""
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((repr(module), torch.__version__, capability, [repr(c) for c in context])).encode())
    for name, value in module.state_dict().items():
        if not isinstance(value, torch.Tensor):
            digest.update(f"{name}={value!r}|".encode())
            continue
        data = value.detach()
        if data.device.type != "cpu":
            data = data.cpu()
        data = data.contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _autocast_state(device_type: str) -> Tuple:
    try:
        if torch.is_autocast_enabled(device_type):
            return (True, torch.get_autocast_dtype(device_type))
    except (TypeError, RuntimeError):  # a device type autocast does not know
        pass
    return (False, None)


def _context_name(context: Tuple) -> Optional[str]:
    """The file-name part of an input form ``(device, dtype, shape, autocast)``; None: not kept on disk."""
    device, dtype, shape, (autocast, autocast_dtype) = context
    if device != "cpu":
        return None
    name = f"{str(dtype).replace('torch.', '')}-{'x'.join(map(str, shape))}"
    if autocast:
        name += f"-autocast-{str(autocast_dtype).replace('torch.', '')}"
    return name


def _nbytes(value: torch.Tensor) -> int:
    return value.numel() * value.element_size()


def _check_budget(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0; got {value!r}")


class FrozenFeatureMemo:
    """LRU memo ``image -> extractor(image)`` for a frozen extractor, shared on disk (see the module docstring).

    ``memo(extractor, images, token, fingerprint)`` returns ``extractor(images)`` for a batch ``(B, ...)``,
    running ``extractor`` only on the images it has not stored under the same ``token``.
    ``extractor`` must map a batch to a batch, image by image (no interaction between images).
    ``fingerprint`` (a callable returning :func:`weights_fingerprint` of the extractor, or None) names
    the disk files; without it the memo stays in memory.

    ``max_bytes``: the in-memory budget (0 disables the memo). ``disk``: True keeps files in
    :func:`default_folder` (resolved when first needed, so ``$FGVC_CACHE_DIR`` applies), a path keeps
    them there, False keeps nothing on disk. ``disk_max_bytes``: the budget of one file (default
    ``max_bytes``). ``folder_max_bytes``: the budget of the whole folder.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, devices: Sequence[str] = DEFAULT_DEVICES,
                 disk: Union[bool, str, os.PathLike] = True, disk_max_bytes: Optional[int] = None,
                 folder_max_bytes: int = DEFAULT_FOLDER_MAX_BYTES):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be an integer >= 0 (0 disables the memo); got {max_bytes!r}")
        if isinstance(devices, str) or not all(isinstance(d, str) for d in devices):
            raise ValueError(f"devices must be a sequence of device types such as ('cpu',) or ('cpu', 'cuda'); "
                             f"got {devices!r}")
        if not isinstance(disk, (bool, str, os.PathLike)):
            raise ValueError(f"disk must be True (the cache folder), False (memory only) or a folder; got {disk!r}")
        disk_max_bytes = max_bytes if disk_max_bytes is None else disk_max_bytes
        _check_budget("disk_max_bytes", disk_max_bytes)
        _check_budget("folder_max_bytes", folder_max_bytes)
        self.max_bytes = max_bytes
        self.devices = tuple(devices)
        self.disk = disk if isinstance(disk, bool) else Path(disk)
        self.disk_max_bytes = disk_max_bytes
        self.folder_max_bytes = folder_max_bytes
        self.hits = 0
        self.misses = 0
        self.loaded = 0    # entries read from disk
        self._reset()

    def _reset(self) -> None:
        self._entries: "OrderedDict[Hashable, torch.Tensor]" = OrderedDict()
        self.bytes = 0
        self._token: Optional[Tuple] = _NO_TOKEN
        self._fingerprint_of: Optional[Fingerprint] = None   # the caller's, for the current token
        self._fingerprint: Optional[str] = None              # its value, computed on first need
        self._files: Dict[Tuple, Path] = {}                  # input form -> its file (forms kept on disk)
        self._looked_up: Set[Tuple] = set()                  # input forms whose file was read
        self._unsaved: Set[Hashable] = set()                 # keys computed here and not yet on disk
        self._warned: Set[str] = set()

    # --- bookkeeping ---
    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry, and the weights they belong to (the counters are kept). Entries not
        saved yet are dropped."""
        self._reset()

    def __getstate__(self):
        state = dict(self.__dict__)
        copy = FrozenFeatureMemo.__new__(FrozenFeatureMemo)
        copy._reset()
        state.update(copy.__dict__)  # entries, weights and files are never saved or copied
        return state

    @property
    def folder(self) -> Optional[Path]:
        """The folder of the disk files, or None when the memo stays in memory."""
        if self.disk is False:
            return None
        return default_folder() if self.disk is True else self.disk

    def __repr__(self) -> str:
        where = f", disk={self.folder}" if self.folder is not None else ""
        return (f"FrozenFeatureMemo({len(self)} entries, {self.bytes / 2 ** 20:.1f} of "
                f"{self.max_bytes / 2 ** 20:.0f} MiB, devices={self.devices}{where}, hits={self.hits}, "
                f"misses={self.misses}, loaded={self.loaded})")

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

    def _store(self, key: Hashable, value: torch.Tensor, unsaved: bool) -> None:
        size = _nbytes(value)
        if size > self.max_bytes:
            return
        previous = self._entries.pop(key, None)  # the same image twice in one batch
        if previous is not None:
            self.bytes -= _nbytes(previous)
        self._entries[key] = value
        self.bytes += size
        if unsaved and key[0] in self._files:
            self._unsaved.add(key)
        while self.bytes > self.max_bytes:
            old_key, old = self._entries.popitem(last=False)
            self.bytes -= _nbytes(old)
            self._unsaved.discard(old_key)

    def __call__(self, extractor: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                 token: Optional[Tuple] = None, fingerprint: Optional[Fingerprint] = None) -> torch.Tensor:
        if token != self._token:
            self.clear()
            self._token = token
            self._fingerprint_of = fingerprint
        keys = self._keys(images)
        if keys and keys[0][0] not in self._looked_up:
            self._load(keys[0][0])
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
                if batch.shape[0] == 1:
                    # A batch of one image takes another convolution path (the last bits differ): run the
                    # image as a pair, so that what is stored is what any batch gives (module docstring).
                    computed = extractor(torch.cat([batch, batch])).detach()[:1].clone()
                else:
                    computed = extractor(batch).detach()
            for row, i in enumerate(missing):
                # a copy per image: a view would keep the whole batch's storage alive
                found[i] = computed[row].clone()
                self._store(keys[i], found[i], unsaved=True)
            if len(missing) == len(keys):
                return computed  # the entries are copies: marking this requires_grad leaves them alone
        return torch.stack(found)

    def stats(self) -> dict:
        total = self.hits + self.misses
        return {"entries": len(self), "bytes": self.bytes, "hits": self.hits, "misses": self.misses,
                "hit_rate": self.hits / total if total else float("nan"), "loaded": self.loaded,
                "unsaved": len(self._unsaved)}

    # --- on disk ---
    def _warn(self, message: str, once: Optional[str] = None) -> None:
        if once is not None:
            if once in self._warned:
                return
            self._warned.add(once)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _load(self, context: Tuple) -> None:
        """Read the file of ``context`` (once per input form and weights) into the memo."""
        self._looked_up.add(context)
        name = _context_name(context)
        folder = self.folder
        if folder is None or name is None or self._fingerprint_of is None or self.max_bytes == 0:
            return
        if self._fingerprint is None:
            self._fingerprint = self._fingerprint_of()
        path = folder / f"{self._fingerprint}-{name}.pt"
        self._files[context] = path
        entries = self._read(path, context)
        if not entries:
            return
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: the folder's budget removes the files least recently used
        for key, value in entries.items():
            if key not in self._entries:
                self._store(key, value, unsaved=False)
                self.loaded += 1

    def _read(self, path: Path, context: Tuple) -> "OrderedDict[Hashable, torch.Tensor]":
        """The entries of ``path`` (oldest first), or none if it is missing, unreadable or not ours."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return OrderedDict()
        except Exception as err:  # noqa: BLE001 - any unreadable file is recomputed, never fatal
            self._warn(f"frozen-feature cache {path} is unreadable ({type(err).__name__}: {err}); ignoring it "
                       f"(its features are computed again and the next save replaces it)", once=str(path))
            return OrderedDict()
        try:
            if not isinstance(state, dict) or state.get("format") != DISK_FORMAT:
                raise ValueError(f"not a {DISK_FORMAT} file")
            if state.get("fingerprint") != self._fingerprint or state.get("context") != _context_name(context):
                raise ValueError("it belongs to other weights or another input form")
            keys, values = state["keys"], state["values"]
            if not isinstance(keys, list) or not isinstance(values, torch.Tensor) or values.dim() < 1 \
                    or values.shape[0] != len(keys) or not values.is_floating_point():
                raise ValueError("its keys and values do not match")
            return OrderedDict(((context, bytes.fromhex(k)), v.clone()) for k, v in zip(keys, values))
        except Exception as err:  # noqa: BLE001
            self._warn(f"frozen-feature cache {path} does not hold what its name says ({err}); ignoring it "
                       f"(its features are computed again and the next save replaces it)", once=str(path))
            return OrderedDict()

    def save(self) -> bool:
        """Write the entries computed since the last save to their disk files, merged with what the
        files hold now; returns whether a file was written. A failure is a warning, never an error."""
        if not self._unsaved:
            return False
        folder = self.folder
        try:
            current = self._fingerprint_of() if self._fingerprint_of is not None else None
        except Exception as err:  # noqa: BLE001
            self._warn(f"could not fingerprint the frozen extractor ({err}); its features are not saved")
            self._unsaved.clear()
            return False
        if current != self._fingerprint:
            self._warn("the frozen extractor's weights changed without its state token changing (an in-place "
                       "change through .data?); the feature memo is emptied and nothing is saved")
            self.clear()
            return False
        from ..locks import exclusive

        contexts = {key[0] for key in self._unsaved}
        written: List[Path] = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with exclusive(folder / LOCK_NAME):
                for context in contexts:
                    path = self._files[context]
                    merged = self._read(path, context)
                    for key, value in self._entries.items():
                        if key[0] == context:
                            merged[key] = value
                            merged.move_to_end(key)
                    size = sum(_nbytes(v) for v in merged.values())
                    while merged and size > self.disk_max_bytes:
                        size -= _nbytes(merged.popitem(last=False)[1])
                    if merged:
                        atomic_torch_save({"format": DISK_FORMAT, "fingerprint": self._fingerprint,
                                      "context": _context_name(context), "keys": [k[1].hex() for k in merged],
                                      "values": torch.stack(list(merged.values()))}, path)
                        written.append(path)
                self._trim_folder(folder, keep=set(written))
        except Exception as err:  # noqa: BLE001 - a cache that cannot be written only costs time
            self._warn(f"could not write the frozen-feature cache in {folder} ({type(err).__name__}: {err}); "
                       f"the features stay in memory only", once=f"write {folder}")
        self._unsaved.clear()
        return bool(written)

    def _trim_folder(self, folder: Path, keep: Set[Path]) -> None:
        """Delete the folder's files least recently used until it holds at most ``folder_max_bytes``,
        and temporary files a killed writer left."""
        now = time.time()
        files = []
        for path in folder.iterdir():
            with contextlib.suppress(OSError):
                stat = path.stat()
                if path.name.endswith(".tmp") and now - stat.st_mtime > STALE_TEMP_SECONDS:
                    path.unlink()
                elif path.suffix == ".pt":
                    files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= self.folder_max_bytes:
                break
            if path in keep:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size


