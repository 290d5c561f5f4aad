"""What a notebook calls to train and score variants: data for a profile, runs over seeds, caching.

A notebook describes each variant as a model factory plus a loss and a :class:`TrainConfig`;
:func:`train_variants` trains every variant for every seed through the one engine
(:func:`fgvc_lib.engine.fit`), checkpoints each run under ``runs_dir`` (a killed notebook resumes;
a finished run is loaded instead of retrained) and returns the trained models with their test
outputs, from which every table of the notebook is computed.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from .backbones import FeatureBackbone, build_backbone, min_image_size
from .engine import LossFn, TrainConfig, accuracy, collect_outputs, fit
from .profiles import Profile


TASK_SIZE_KEYS = ("num_classes", "train_per_class", "test_per_class", "image_size", "seed")


@dataclass
class DataBundle:
    dataset: str
    image_size: int
    train_set: object
    test_set: object
    train_loader: DataLoader
    test_loader: DataLoader
    max_batches: Optional[int] = None

    @property
    def num_classes(self) -> int:
        return len(self.train_set.classes)


@dataclass
class Run:
    variant: str
    seed: int
    model: nn.Module
    history: object
    outputs: Dict[str, torch.Tensor]          # "final", each branch, "targets" on the test split
    resumed_from_epoch: int = 0

    @property
    def metrics(self) -> Dict[str, float]:
        targets = self.outputs["targets"]
        return {("acc" if k == "final" else f"acc/{k}"): accuracy(v, targets)
                for k, v in self.outputs.items() if k != "targets"}


def check_positive(name: str, value, minimum: int = 1) -> None:
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


def prepare_data(profile: Profile, dataset: Optional[str] = None, data_root: Optional[str] = None,
                 image_size: Optional[int] = None, batch_size: Optional[int] = None,
                 num_workers: int = 0, flip: bool = True) -> DataBundle:
    """Train/test loaders for ``dataset`` (default: the profile's) at the profile's resolution."""
    from .data import build_loaders
    from .data.synthetic import SyntheticConfig

    dataset = dataset or profile.dataset
    image_size = image_size or profile.image_size
    batch_size = batch_size or profile.batch_size
    check_positive("image_size", image_size, 32)
    check_positive("batch_size", batch_size)
    options = {}
    if dataset == "synthetic":
        if data_root is None:
            options["config"] = SyntheticConfig(**profile.synthetic)
    elif data_root is None:
        raise ValueError(f"dataset {dataset!r} needs data_root: the folder holding its official layout "
                         f"(see README.md, 'Real datasets').")
    train_loader, test_loader = build_loaders(dataset, data_root, image_size, batch_size,
                                              num_workers=num_workers, flip=flip, **options)
    return DataBundle(dataset, image_size, train_loader.dataset, test_loader.dataset, train_loader, test_loader,
                      profile.max_batches)


def profile_backbone(profile: Profile, name: str, image_size: Optional[int] = None,
                     pretrained: Optional[str] = "profile") -> FeatureBackbone:
    """Backbone ``name`` at the profile's width with the profile's pretraining."""
    source = profile.pretrained if pretrained == "profile" else pretrained
    options = {}
    if source == "synthetic":
        # Pretrain on birds drawn like the target task's (same difficulty knobs), but other classes.
        rendering = tuple(sorted((k, v) for k, v in profile.synthetic.items() if k not in TASK_SIZE_KEYS))
        options = dict(image_size=image_size or profile.image_size, rendering=rendering, **profile.pretraining)
    batch_norm = profile.batch_norm and name.startswith("vgg")
    backbone = build_backbone(name, pretrained=source, width=profile.width, batch_norm=batch_norm, **options)
    size = image_size or profile.image_size
    if size < min_image_size(backbone):
        raise ValueError(f"image_size {size} is below the minimum {min_image_size(backbone)} that "
                         f"{name} needs for its top stage {backbone.top_stage}")
    return backbone


def runs_dir(notebook: str, profile: Profile) -> Path:
    """Where a notebook's checkpoints live: ``$FGVC_RUNS_DIR`` or ``.cache/runs`` of the repository."""
    root = os.environ.get("FGVC_RUNS_DIR") or Path(__file__).resolve().parent.parent / ".cache" / "runs"
    return Path(root) / notebook / profile.name


@dataclass
class Variant:
    """One row of a paper's table: how to build the model, its loss and its training recipe."""

    name: str
    build: Callable[[], nn.Module]
    loss: LossFn
    train: TrainConfig
    key: str = ""       # anything that identifies the architecture (folded into the checkpoint path)


def train_variants(variants: Sequence[Variant], data: DataBundle, seeds: Sequence[int],
                   run_root: Optional[Path] = None) -> Dict[str, List[Run]]:
    """Train every variant for every seed (resuming from checkpoints) and score it on the test split."""
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique; got {names}")
    runs: Dict[str, List[Run]] = {}
    total = len(variants) * len(seeds)
    for index, (variant, seed) in enumerate(((v, s) for v in variants for s in seeds), start=1):
        torch.manual_seed(seed)  # model initialisation depends on the seed only
        model = variant.build()
        config = TrainConfig(**{**variant.train.__dict__, "seed": seed, "max_batches": data.max_batches})
        checkpoint = None
        if run_root is not None:
            data_identity = (f"{data.dataset}|{getattr(data.train_set, 'root', '')}|{data.image_size}|"
                             f"{len(data.train_set)}|{data.train_loader.batch_size}")
            tag = hashlib.sha1(f"{variant.key}|{data_identity}".encode()).hexdigest()[:8]
            checkpoint = Path(run_root) / f"{variant.name}-{tag}" / f"seed{seed}"
        print(f"[run {index}/{total}] {variant.name}, seed {seed}", flush=True)
        result = fit(model, data.train_loader, variant.loss, config, checkpoint_dir=checkpoint,
                     desc=f"{variant.name} s{seed}")
        if result.resumed_from_epoch >= config.epochs:
            print(f"  loaded the finished run from {checkpoint}", flush=True)
        outputs = collect_outputs(result.model, data.test_loader, data.max_batches)
        run = Run(variant.name, seed, result.model, result.history, outputs, result.resumed_from_epoch)
        print(f"  test accuracy {run.metrics['acc']:.3f}", flush=True)
        runs.setdefault(variant.name, []).append(run)
    return runs


@dataclass
class Settings:
    """A notebook's parameters resolved against its profile and checked before any work starts."""

    profile: Profile
    dataset: str
    data_root: Optional[str]
    backbone: str
    seeds: List[int]
    epochs: int
    image_size: int
    batch_size: int

    def describe(self) -> str:
        return (f"profile={self.profile.name} dataset={self.dataset} backbone={self.backbone} "
                f"width={self.profile.width:g} pretrained={self.profile.pretrained} seeds={self.seeds} "
                f"epochs={self.epochs} image_size={self.image_size} batch_size={self.batch_size}")


def parse_seeds(seeds) -> List[int]:
    """Seeds from a papermill primitive: "0,1,2", 3 (= seeds 0..2), or a list."""
    if isinstance(seeds, str):
        items = [s for s in seeds.replace(" ", "").split(",") if s]
        try:
            return [int(s) for s in items]
        except ValueError:
            raise ValueError(f"seeds must be comma-separated integers like '0,1,2'; got {seeds!r}") from None
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be a count or a list of integers; got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 0:
            raise ValueError(f"a seed count must be >= 1; got {seeds}")
        return list(range(seeds))
    return [int(s) for s in seeds]


def resolve_settings(profile=None, dataset: str = "", data_root: str = "", backbone: str = "vgg16",
                     seeds="", epochs: int = 0, image_size: int = 0, batch_size: int = 0,
                     backbones: Optional[Sequence[str]] = None, paper_epochs: int = 0,
                     paper_batch_size: int = 0) -> Settings:
    """Check a notebook's parameters and fill the empty ones (``""``/``0``) from the profile.

    ``backbones`` limits the valid backbone names (a paper uses only some); ``paper_epochs`` and
    ``paper_batch_size`` are the paper's recipe, used by the paper profile.
    """
    from .backbones import BACKBONE_NAMES
    from .data import DATASET_NAMES
    from .profiles import get_profile

    chosen = get_profile(profile)
    valid = tuple(backbones or BACKBONE_NAMES)
    if backbone not in valid:
        raise ValueError(f"unknown backbone {backbone!r}; valid here: {', '.join(valid)}")
    dataset = dataset or chosen.dataset
    if dataset not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASET_NAMES)}")
    if data_root and not Path(data_root).is_dir():
        raise FileNotFoundError(f"data_root {data_root!r} is not a folder; point it at the dataset's official layout")
    if dataset != "synthetic" and not data_root:
        raise ValueError(f"dataset {dataset!r} needs data_root (the folder with its official layout); "
                         f"only 'synthetic' runs without one")
    for name, value in (("epochs", epochs), ("image_size", image_size), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer (0 = the profile's value); got {value!r}")
    seed_list = parse_seeds(seeds) if seeds not in ("", None) else list(chosen.seeds)
    if not seed_list:
        raise ValueError("seeds must name at least one seed")
    epochs = epochs or chosen.epochs or paper_epochs
    batch_size = batch_size or chosen.batch_size or paper_batch_size
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be set for profile {chosen.name!r}")
    image_size = image_size or chosen.image_size
    minimum = max(32, min_image_size(build_backbone(backbone, width=min(chosen.width, 0.125))))
    if image_size < minimum:
        raise ValueError(f"image_size {image_size} is below the minimum {minimum} that {backbone} needs")
    return Settings(chosen, dataset, data_root or None, backbone, seed_list, epochs, image_size, batch_size)


def results_dir(notebook: str) -> Path:
    """``$FGVC_RESULTS_DIR/<notebook>`` or the repository's ``results/<notebook>``, created."""
    root = os.environ.get("FGVC_RESULTS_DIR") or Path(__file__).resolve().parent.parent / "results"
    path = Path(root) / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path
