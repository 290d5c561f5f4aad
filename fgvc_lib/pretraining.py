"""Embedded pretraining: a slim backbone trained once on a disjoint synthetic task, then cached.

All five papers fine-tune ImageNet-pretrained backbones, and SSANet even keeps its extractor frozen.
No ImageNet weights exist for the slim (width < 1) backbones of the CPU profiles, and none can be
downloaded here, so the CPU profiles mirror the fine-tuning regime with a stand-in: the backbone is
first trained on a *different* synthetic problem (another generator seed, hence other class
definitions, more classes) and the study's tasks then start from those weights.

The result is deterministic on one machine and torch build: fixed seeds, and a fixed number of torch threads
(:data:`PRETRAINING_THREADS`) whatever the caller runs with, because float reductions in another
order give other weights. It is cached under ``$FGVC_CACHE_DIR`` or ``~/.cache/fgvc_lib/pretrained/``
keyed by every setting that changes it (the thread count included), written atomically, trained by
one process at a time (a lock beside the cache file), and never committed.

Beside each cached file a record (``<file>.json``, :func:`pretraining_record`) gives the pretraining's
per-epoch training loss and accuracy and the machine it was trained on. The pretraining is one draw that every
run of a notebook starts from, and its quality moves every accuracy downstream. Issue 19, measured on one machine
on 2026-12-05 with the former 12 epochs: at one torch thread the pretraining sat on a loss plateau (about 1.85)
and ended at 29 % training accuracy, and notebook 00's baseline trial fine-tuned from it scored 38.19 %; with
:data:`PRETRAINING_THREADS` edited to two, the same code's pretraining left the plateau earlier and the trial
scored 52.78 % (the committed results of 2026-12-04, from a pretraining nobody recorded, 56.94 %). At 30 epochs
both left the plateau (around epoch 13 at one thread, 7 at two) and the trials scored 66.67 % and 74.31 %: a gap
of 7.6 points remains between the two draws, against 14.6 at 12 epochs.

This module sits above :mod:`fgvc_lib.backbones`: it trains a backbone and hands the weights to
``build_backbone(..., state_dict=...)`` (:func:`pretrained_backbone`); the backbones never call it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from .atomic import atomic_torch_save

PRETRAIN_SEED = 1_000_003  # generator seed of the pretraining task: disjoint from the study's seeds
PRETRAINING_THREADS = 1    # torch intra-op threads while pretraining (part of the cache key)


@dataclass(frozen=True)
class PretrainingConfig:
    num_classes: int = 24          # twice the cpu profile's classes, other class definitions
    train_per_class: int = 60
    image_size: int = 96
    epochs: int = 30               # 12 left the loss on its plateau at one torch thread (see the module docstring)
    batch_size: int = 32
    lr: float = 0.05               # SGD with a cosine schedule
    max_batches: Optional[int] = None
    seed: int = 0
    rendering: Tuple[Tuple[str, object], ...] = ()  # SyntheticConfig difficulty knobs of the target task

    def key(self, backbone: str, width: float) -> str:
        from .data.synthetic import GENERATOR_VERSION, SyntheticConfig

        blob = json.dumps({"backbone": backbone, "width": width, "threads": PRETRAINING_THREADS,
                           **dataclasses.asdict(self),
                           "generator_seed": PRETRAIN_SEED, "generator_version": GENERATOR_VERSION,
                           "generator_defaults": dataclasses.asdict(SyntheticConfig())}, sort_keys=True, default=str)
        return f"{backbone}_w{width:g}_{self.image_size}px_{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


def cache_dir() -> Path:
    from .paths import cache_dir as project_cache

    return project_cache() / "pretrained"


def synthetic_pretrained_state(backbone: str, width: float, image_size: Optional[int] = None,
                               batch_norm: bool = False, progress: bool = True,
                               **overrides) -> Dict[str, torch.Tensor]:
    """State dict of ``backbone.net`` after the embedded pretraining (trained on first use)."""
    if image_size is not None:
        overrides["image_size"] = image_size
    config = PretrainingConfig(**overrides)
    path = cache_path(backbone, width, batch_norm, **overrides)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    from .locks import exclusive

    with exclusive(path.with_suffix(".lock"),
                   on_wait=lambda: print(f"waiting for another process to finish pretraining {path.name}", flush=True)):
        if path.is_file():  # trained by the process we waited for
            return torch.load(path, map_location="cpu", weights_only=True)
        with _isolated_rng(), _fixed_threads(PRETRAINING_THREADS):
            # pretraining on first use must not shift the caller's random draws or thread setting
            state, history = _pretrain(backbone, width, batch_norm, config, progress)
        atomic_torch_save(state, path)
        try:
            _write_record(path, config, history)
        except OSError as err:   # the weights are good; only their provenance is missing
            print(f"warning: the pretraining's record could not be written beside {path.name} ({err}); "
                  f"machines.json will say its pretraining is not recorded", flush=True)
    return state


def cache_path(backbone: str, width: float, batch_norm: bool = False, **overrides) -> Path:
    """Where the embedded pretraining of ``backbone`` at ``width`` (``overrides``: :class:`PretrainingConfig`
    fields) is cached; its record is the same path with ``.json``."""
    config = PretrainingConfig(**overrides)
    return cache_dir() / f"{config.key(backbone + ('_bn' if batch_norm else ''), width)}.pt"


def pretraining_record(backbone: str, width: float, batch_norm: bool = False, **overrides) -> Optional[dict]:
    """The record of a cached pretraining (written beside it when it was trained): ``config``, ``threads``,
    ``machine`` (:func:`fgvc_lib.machine.facts`), ``history`` (one dict per epoch: ``train_loss``, ``train_acc``,
    ...) and ``final_train_acc`` (the last epoch's training accuracy, a fraction); None when the file was trained
    before records were written (2026-12-05) or is not cached."""
    path = cache_path(backbone, width, batch_norm, **overrides).with_suffix(".json")
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def spec_record(spec) -> Optional[dict]:
    """The record of the embedded pretraining a study's backbone (a :class:`fgvc_lib.study.jobs.BackboneSpec`) starts
    from, as cached now; None when it has none (no weights, ImageNet's, or a file cached without a record)."""
    if spec.pretrained != "synthetic":
        return None
    return pretraining_record(spec.name, spec.width, spec.batch_norm, **dict(spec.pretraining))


def describe_spec(spec) -> str:
    """:func:`describe_record` of :func:`spec_record`; "" when there is no record to describe."""
    record = spec_record(spec)
    return describe_record(record) if record is not None else ""


NO_RECORD = "pretraining: no record (cached before records were written, or not trained yet)"


def describe_record(record: Optional[dict]) -> str:
    """One line on a pretraining's record: its last epoch's training accuracy and where it was trained
    (:data:`NO_RECORD` for None; a field the record lacks reads "?")."""
    from .machine import describe

    if record is None:
        return NO_RECORD
    final = record.get("final_train_acc")
    accuracy = f"{100 * final:.1f} %" if isinstance(final, (int, float)) else "?"
    epochs = record["epochs"] if "epochs" in record else len(record.get("history") or [])   # a run's copy: "epochs"
    return (f"pretraining: {record.get('file', '?')}, last epoch's training accuracy {accuracy} after "
            f"{epochs} epochs at {record.get('threads', '?')} torch thread(s), trained on "
            f"{describe(record.get('machine') or {})}")


def pretrained_backbone(name: str, width: float, batch_norm: bool = False, progress: bool = True,
                        **overrides):
    """Backbone ``name`` at ``width`` holding the embedded pretraining's weights."""
    from .backbones import build_backbone

    state = synthetic_pretrained_state(name, width, batch_norm=batch_norm, progress=progress, **overrides)
    return build_backbone(name, width=width, batch_norm=batch_norm, state_dict=state, source="synthetic")


@contextlib.contextmanager
def _fixed_threads(threads: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _isolated_rng():
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def _pretrain(backbone_name: str, width: float, batch_norm: bool, config: PretrainingConfig, progress: bool):
    from .backbones import build_backbone
    from .data import build_dataset
    from .data.synthetic import SyntheticConfig
    from .data.transforms import build_transforms
    from .engine import TrainConfig, fit
    from .models.baseline import BaselineNet, cross_entropy_loss

    synthetic = SyntheticConfig(num_classes=config.num_classes, train_per_class=config.train_per_class,
                                test_per_class=1, image_size=config.image_size, seed=PRETRAIN_SEED,
                                **dict(config.rendering))
    data = build_dataset("synthetic", None, "train", build_transforms(config.image_size, train=True),
                         config=synthetic)
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=config.batch_size, shuffle=True,
                                         generator=generator, drop_last=True)
    torch.manual_seed(config.seed)
    backbone = build_backbone(backbone_name, pretrained=None, width=width, batch_norm=batch_norm)
    model = BaselineNet(backbone, len(data.classes))
    train = TrainConfig(epochs=config.epochs, lr=config.lr, weight_decay=5e-4, scheduler="cosine",
                        seed=config.seed, max_batches=config.max_batches, progress=progress)
    result = fit(model, loader, cross_entropy_loss, train, desc=f"pretraining {backbone_name} (one-off, cached)")
    return {k: v.detach().cpu().clone() for k, v in backbone.net.state_dict().items()}, result.history.epochs


def _write_record(path: Path, config: PretrainingConfig, history) -> None:
    """The record beside a freshly cached pretraining (:func:`pretraining_record`), written atomically after it."""
    from .atomic import atomic_write_text
    from .machine import facts

    record = {"file": path.name, "config": dataclasses.asdict(config), "threads": PRETRAINING_THREADS,
              "machine": facts(), "history": list(history),
              "final_train_acc": history[-1].get("train_acc") if history else None}
    atomic_write_text(path.with_suffix(".json"), json.dumps(record, indent=1, default=str) + "\n")
