"""Stand-ins for what the paper profile reads from disk, for tests/test_paper_profile.py.

* ImageNet-format weight files: a state dict with torchvision's own key names, saved under the file
  name torchvision downloads it as, filled with RANDOM values (the real files are 80-550 MB and must
  not be fetched by a test). Only the tensors a feature backbone loads are written: the ImageNet
  classifier head (VGG's ``classifier.*``, 124M of VGG-16's 138M parameters; ResNet's ``fc.*``;
  DenseNet's ``classifier.*``) is left out, which the loader allows because it keeps only the keys
  of the backbone it builds. The values stay float32 as in the real files, so VGG-16's file is
  14.7M parameters, about 59 MB, instead of 528 MB.
* Where a notebook's results land: ``$FGVC_RESULTS_DIR/<notebook>/`` today, and
  ``$FGVC_RESULTS_DIR/<notebook>/<profile>/`` for non-default profiles once that change lands; the
  helpers here look in both.

Nothing here is a pytest fixture and nothing imports fgvc_lib, so the files are built from
torchvision alone, independently of the loader under test.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional

import pandas as pd
import torch
import torch.nn as nn
import torchvision.models as tvm
from torchvision.models import vgg as tv_vgg

# torchvision's VGG layer tables ("D" = 16 layers, "E" = 19 layers).
_VGG_CFG = {"vgg16": "D", "vgg19": "E"}


def imagenet_file_name(name: str, batch_norm: bool = False) -> str:
    """The file name torchvision stores ``name``'s ImageNet-1k (V1) weights under in the hub cache."""
    weights_enum = tvm.get_model_weights(f"{name}_bn" if batch_norm else name)
    return Path(weights_enum.IMAGENET1K_V1.url).name


def _init_like_torchvision(module: nn.Module) -> None:
    """The initialisation torchvision's VGG applies to its convolutions and batch norms."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _densenet_legacy_keys(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """DenseNet files on download.pytorch.org predate torchvision's module renaming: a dense layer's
    ``norm1``/``conv1``/``norm2``/``conv2`` are stored as ``norm.1``/``conv.1``/... (torchvision
    renames them while loading), and, being older than batch norm's ``num_batches_tracked`` buffer,
    the files lack it (torchvision's renaming pattern has no case for it). Write them that way."""
    pattern = re.compile(r"(denselayer\d+\.)(norm|relu|conv)([12])\.")
    return {pattern.sub(r"\1\2.\3.", key): value for key, value in state.items()
            if not key.endswith("num_batches_tracked")}


def imagenet_format_state(name: str, batch_norm: bool = False, seed: int = 0,
                          legacy: bool = True) -> Dict[str, torch.Tensor]:
    """Random weights for backbone ``name`` with the keys of torchvision's ImageNet file, minus the
    classifier head (see the module docstring); ``legacy=False`` keeps DenseNet's current key names
    (what a loaded network holds)."""
    torch.manual_seed(seed)
    if name in _VGG_CFG:
        holder = nn.Module()  # only `features`: building the full VGG would allocate the 124M-param head
        holder.features = tv_vgg.make_layers(tv_vgg.cfgs[_VGG_CFG[name]], batch_norm=batch_norm)
        _init_like_torchvision(holder)
        return {k: v.contiguous() for k, v in holder.state_dict().items()}
    if batch_norm:
        raise ValueError(f"batch_norm is a VGG option; {name} has no separate BN weights")
    model = tvm.get_model(name, weights=None)
    head = "fc." if name.startswith("resnet") else "classifier."
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(head)}
    return _densenet_legacy_keys(state) if name.startswith("densenet") and legacy else state


def write_imagenet_file(torch_home: Path, name: str, batch_norm: bool = False) -> Path:
    """Save :func:`imagenet_format_state` as ``$TORCH_HOME/hub/checkpoints/<torchvision's file name>``."""
    folder = Path(torch_home) / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / imagenet_file_name(name, batch_norm)
    torch.save(imagenet_format_state(name, batch_norm), path)
    return path


def files_under(folder: Path) -> Dict[str, int]:
    """``{relative path: size in bytes}`` of every file under ``folder`` (empty if it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- results


def result_folders(results_root: Path, notebook: str, profile: str) -> List[Path]:
    """The folders that may hold ``notebook``'s results for ``profile``: the per-profile folder
    ``<root>/<notebook>/<profile>/`` first, then ``<root>/<notebook>/``; only those that exist."""
    base = Path(results_root) / notebook
    return [p for p in (base / profile, base) if p.is_dir()]


def result_csvs(results_root: Path, notebook: str, profile: str) -> List[Path]:
    """Every CSV in :func:`result_folders` (not recursive beyond them)."""
    return [csv for folder in result_folders(results_root, notebook, profile) for csv in sorted(folder.glob("*.csv"))]


def profiles_in(csv: Path) -> Optional[set]:
    """The distinct values of a CSV's ``profile`` column, or None when it has none."""
    df = pd.read_csv(csv)
    if "profile" not in df.columns:
        return None
    return set(df["profile"].dropna().astype(str))
