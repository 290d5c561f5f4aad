"""One training engine for every paper: fit, evaluate, checkpoint/resume, seeds (docs/DESIGN.md, Contracts).

A model returns a :class:`~fgvc_lib.models.output.ModelOutput`; a loss function maps
``(output, targets)`` to a dict of named scalar terms. :func:`fit` sums the terms (each times its
weight in ``TrainConfig.loss_weights``, default 1), logs every term per epoch, writes a checkpoint
after every epoch and, when called again with the same checkpoint directory and configuration,
resumes from it (a finished run is loaded, not retrained).

Determinism: the global RNG is re-seeded from ``(seed, epoch)`` at the start of every epoch, so the
shuffle order and random augmentations of epoch ``e`` do not depend on whether the run was resumed.
Same seed, same machine, same metrics. ``TrainConfig.data_seed`` and ``init_seed`` fix one of the two
random sources while ``seed`` varies the other.

Divergence: a training loss that stops being finite raises :class:`FloatingPointError` at the end
of its epoch (``on_divergence="raise"``, the default: a bug to look at), or, with
``on_divergence="stop"``, stops the run at the first such batch and keeps the model as it was when
that epoch began; the history records the epoch (``diverged``). A model whose instability is itself
the result (CRA-CNN's free STN reference) trains this way, so that a diverged run is reported.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm  # text bars: readable in papermill logs and JupyterLab alike

from .atomic import atomic_torch_save
from .models.output import ModelOutput

LossFn = Callable[[ModelOutput, torch.Tensor], Dict[str, torch.Tensor]]
OPTIMIZERS = ("sgd", "adam")
SCHEDULERS = ("none", "step", "multistep", "plateau", "cosine")
ON_DIVERGENCE = ("raise", "stop")
CHECKPOINT_NAME = "last.pt"


@dataclass
class TrainConfig:
    """How to train; each paper's config fills it with the paper's recipe."""

    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    optimizer: str = "sgd"            # one of OPTIMIZERS
    scheduler: str = "none"           # one of SCHEDULERS
    step_size: int = 30               # "step": epochs between decays
    gamma: float = 0.1                # "step", "multistep": decay factor
    milestones: Tuple[int, ...] = ()  # "multistep": epochs after which the lr is multiplied by gamma
    plateau_factor: float = 0.3       # "plateau": factor (SSANet: 0.3)
    plateau_patience: int = 2         # "plateau": epochs without improvement of the training loss
    seed: int = 0
    data_seed: Optional[int] = None   # seed of the data order, augmentations and dropout; None: ``seed``
    init_seed: Optional[int] = None   # seed of the model's initialisation, read where the model is built
    # (fgvc_lib.study.jobs.execute_run; the engine never builds a model); None: ``seed``. Fixing one of the
    # two while ``seed`` varies separates the two sources of seed-to-seed variation (notebook 00's grid).
    device: str = "auto"              # "auto" = cuda if available else cpu
    amp: bool = True                  # mixed precision, used on CUDA only: bf16 where the GPU has it, else fp16
    channels_last: bool = True        # memory format, used on CUDA only (CPU stays contiguous NCHW)
    compile: bool = False             # torch.compile the model for the training steps, on CUDA only (opt-in; the
    # same parameters and checkpoints, so not part of the fingerprint, like device; on CPU it would change the
    # bits of a run that the CPU profiles keep identical, so it is ignored there)
    max_batches: Optional[int] = None  # cap batches per epoch (smoke profile)
    loss_weights: Dict[str, float] = field(default_factory=dict)
    on_divergence: str = "raise"      # one of ON_DIVERGENCE (module docstring)
    progress: bool = True

    def validate(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer; got {self.epochs!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive; got {self.lr!r}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError(f"weight_decay must be >= 0 and momentum in [0, 1); got {self.weight_decay}, {self.momentum}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; valid: {', '.join(SCHEDULERS)}")
        if self.step_size < 1:
            raise ValueError(f"step_size must be >= 1 epoch; got {self.step_size}")
        if self.scheduler == "multistep" and (not self.milestones or list(self.milestones) != sorted(set(self.milestones))
                                              or self.milestones[0] < 1):
            raise ValueError(f"multistep needs increasing milestones (epochs >= 1); got {self.milestones!r}")
        if self.max_batches is not None and self.max_batches < 1:
            raise ValueError(f"max_batches must be None or >= 1; got {self.max_batches}")
        if self.on_divergence not in ON_DIVERGENCE:
            raise ValueError(f"unknown on_divergence {self.on_divergence!r}; valid: {', '.join(ON_DIVERGENCE)}")

    def fingerprint(self) -> str:
        """Hash of everything that changes the result (not device, progress or AMP availability)."""
        keep = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("progress", "device", "compile")}
        if keep["on_divergence"] == "raise":
            del keep["on_divergence"]   # checkpoints written before the option existed keep their fingerprint
        for name in ("data_seed", "init_seed"):   # the same for the separated seeds
            if keep[name] is None:
                del keep[name]
        return hashlib.sha1(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class History:
    """Per-epoch records: epoch, lr, seconds, train_loss, each loss term, train_acc, val metrics."""

    epochs: List[Dict[str, float]] = field(default_factory=list)

    def append(self, record: Dict[str, float]) -> None:
        self.epochs.append(record)

    @property
    def last(self) -> Dict[str, float]:
        return self.epochs[-1] if self.epochs else {}

    def series(self, key: str) -> List[float]:
        return [e.get(key, float("nan")) for e in self.epochs]

    def to_frame(self):
        import pandas as pd
        return pd.DataFrame(self.epochs)


@dataclass
class FitResult:
    model: nn.Module
    history: History
    resumed_from_epoch: int = 0   # 0 = trained from scratch
    diverged_epoch: Optional[int] = None   # on_divergence="stop": the epoch whose loss stopped being finite

    @property
    def final(self) -> Dict[str, float]:
        return self.history.last


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The mixed-precision type on ``device``: bf16 where the GPU computes it natively (Ampere and later:
    no loss scaling needed), else fp16 with a GradScaler."""
    if device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0):
        return torch.bfloat16
    return torch.float16


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2 ** 31)


def _seed_epoch(loader, seed: int) -> None:
    """Seed everything random in an epoch (shuffle order, augmentations) from ``seed`` alone.

    A loader or sampler that carries its own generator is re-seeded too, so a resumed run sees
    exactly the batches an uninterrupted run would have seen."""
    torch.manual_seed(seed)
    for owner in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(seed)


def parameter_groups(model: nn.Module, lr: float) -> List[Dict[str, object]]:
    """The optimizer's parameter groups: one at ``lr``, or, for a model with ``lr_groups()`` (a list of
    ``(name, parameters, lr multiplier)`` covering every trainable parameter once, e.g. CRA-SMRA's CRAM
    at 30 times the backbone's rate), one group per entry at ``lr`` times its multiplier."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters (is everything frozen?)")
    if not hasattr(model, "lr_groups"):
        return [{"params": trainable, "lr": lr}]
    groups, seen = [], set()
    for name, params, multiplier in model.lr_groups():
        params = [p for p in params if p.requires_grad]
        if any(id(p) in seen for p in params):
            raise ValueError(f"lr group {name!r} repeats parameters of an earlier group")
        seen.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr": lr * float(multiplier), "name": name})
    missing = [p for p in trainable if id(p) not in seen]
    if missing:
        raise ValueError(f"{type(model).__name__}.lr_groups() leaves {len(missing)} trainable parameter(s) out")
    return groups


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _make_scheduler(optimizer, cfg: TrainConfig):
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma)
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.plateau_factor,
                                                          patience=cfg.plateau_patience)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return None


def _weighted_sum(terms: Dict[str, torch.Tensor], weights: Dict[str, float]) -> torch.Tensor:
    """Total loss: each term times its weight (default 1; a weight of 1 adds no extra op)."""
    total = None
    for name, value in terms.items():
        weight = weights.get(name, 1.0)
        value = value if weight == 1.0 else weight * value
        total = value if total is None else total + value
    if total is None:
        raise ValueError("the loss function returned no term")
    return total


def mixed_precision(config: TrainConfig, device: torch.device):
    """``(autocast context, GradScaler)`` of a run on ``device``: on CUDA with ``config.amp``, autocast to
    :func:`autocast_dtype` and a scaler enabled for fp16 only; elsewhere no autocast and a disabled scaler."""
    use_amp = config.amp and device.type == "cuda"
    dtype = autocast_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and dtype == torch.float16)
    return (torch.autocast(device.type, dtype=dtype) if use_amp else contextlib.nullcontext()), scaler


def training_step(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn,
                  weights: Dict[str, float], optimizer: torch.optim.Optimizer, scaler, autocast):
    """One optimisation step (forward under ``autocast``, weighted loss, backward, step through ``scaler``);
    returns ``(output, loss terms, total loss)``."""
    with autocast:
        output = model(images)
        terms = loss_fn(output, targets)
        loss = _weighted_sum(terms, weights)
    optimizer.zero_grad(set_to_none=True)
    if scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return output, terms, loss


def _to_device(images: torch.Tensor, targets: torch.Tensor, device: torch.device, channels_last: bool):
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    elif not images.is_contiguous():
        # A channels_last/permuted batch on CPU can crash backward of slim nets (torch 2.14.1).
        images = images.contiguous()
    return images, targets.to(device, non_blocking=True)


def _load_checkpoint(path: Path, fingerprint: str, model: nn.Module) -> Optional[dict]:
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint:
        raise RuntimeError(
            f"checkpoint {path} was written by a run with a different training configuration "
            f"(fingerprint {state.get('fingerprint')} != {fingerprint}). Delete it or pass another "
            f"checkpoint_dir to start afresh.")
    model.load_state_dict(state["model"])
    return state


def fit(model: nn.Module, train_loader: Iterable, loss_fn: LossFn, config: TrainConfig,
        val_loader: Optional[Iterable] = None, checkpoint_dir: Optional[os.PathLike] = None,
        desc: str = "") -> FitResult:
    """Train ``model`` and return it with its :class:`History`.

    With ``checkpoint_dir``, a checkpoint is written atomically after every epoch; a later call with
    the same directory and configuration resumes after the last finished epoch.
    """
    config.validate()
    device = resolve_device(config.device)
    cuda = device.type == "cuda"
    channels_last = config.channels_last and cuda
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if cuda:
        torch.backends.cudnn.benchmark = True   # the fastest kernels for the run's fixed input size
    data_seed = config.seed if config.data_seed is None else config.data_seed
    seed_everything(data_seed)
    optimizer = _make_optimizer(model, config)
    scheduler = _make_scheduler(optimizer, config)
    autocast, scaler = mixed_precision(config, device)
    history, start_epoch = History(), 0
    ckpt_path = None
    if checkpoint_dir is not None:
        ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        state = _load_checkpoint(ckpt_path, config.fingerprint(), model)
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            if state["scaler"] and scaler.is_enabled():   # a bf16 or CPU run saved a disabled (empty) scaler
                scaler.load_state_dict(state["scaler"])
            history = History(state["history"])
            start_epoch = state["epoch"]
    weights = config.loss_weights
    step_model = torch.compile(model) if config.compile and cuda else model
    resumed_from = start_epoch
    diverged = next((e["epoch"] for e in history.epochs if e.get("diverged")), None)
    stop_on_divergence = config.on_divergence == "stop"
    for epoch in range(start_epoch, config.epochs):
        if diverged is not None:
            break
        epoch_start_state = _cpu_copy(model.state_dict()) if stop_on_divergence else None
        _seed_epoch(train_loader, _epoch_seed(data_seed, epoch))
        if hasattr(model, "start_epoch"):   # a schedule inside the model (e.g. CRA-CNN's L_res blocks)
            model.start_epoch(epoch, config.epochs)
        model.train()
        started = time.perf_counter()
        # sums stay on the device (double precision, the same arithmetic as Python floats) and are read at
        # progress updates and at the epoch's end only: no host synchronisation per batch
        sums: Dict[str, torch.Tensor] = {}
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        total_batches = len(train_loader) if hasattr(train_loader, "__len__") else None
        if config.max_batches is not None and total_batches is not None:
            total_batches = min(total_batches, config.max_batches)
        bar = tqdm(train_loader, total=total_batches, leave=False, disable=not config.progress,
                   desc=f"{desc} epoch {epoch + 1}/{config.epochs}".strip(), mininterval=1.0)
        for batch_index, (images, targets) in enumerate(bar):
            if config.max_batches is not None and batch_index >= config.max_batches:
                break
            images, targets = _to_device(images, targets, device, channels_last)
            output, terms, loss = training_step(step_model, images, targets, loss_fn, weights, optimizer, scaler,
                                                autocast)
            if stop_on_divergence and not math.isfinite(loss.item()):
                diverged = epoch + 1
                break
            n = targets.shape[0]
            seen += n
            for name, value in (("loss", loss), *terms.items()):
                term = value.detach().double() * n
                sums[name] = term if name not in sums else sums[name] + term
            correct += (output.logits.detach().argmax(1) == targets).sum()
            if config.progress and batch_index % 10 == 0:
                bar.set_postfix(loss=f"{float(sums['loss']) / seen:.3f}", acc=f"{int(correct) / seen:.3f}")
        bar.close()
        if diverged is not None:
            model.load_state_dict(epoch_start_state)
            record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "diverged": True,
                      "seconds": time.perf_counter() - started}
            history.append(record)
            tqdm.write(f"{desc} epoch {epoch + 1}/{config.epochs}: the training loss stopped being finite; "
                       f"training stops with the model of the epoch's start".strip())
            if ckpt_path is not None:
                atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                                    "scaler": scaler.state_dict(), "history": history.epochs,
                                    "epoch": config.epochs, "fingerprint": config.fingerprint()}, ckpt_path)
            break
        if seen == 0:
            raise ValueError("the training loader yielded no batch; is the training split empty?")
        record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        record.update({("train_loss" if k == "loss" else f"train_{k}"): float(v) / seen for k, v in sums.items()})
        record["train_acc"] = int(correct) / seen
        if val_loader is not None:
            record.update({f"val_{k}": v for k, v in evaluate(model, val_loader, config.max_batches).items()})
        record["seconds"] = time.perf_counter() - started
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(record["train_loss"])
        elif scheduler is not None:
            scheduler.step()
        if not math.isfinite(record["train_loss"]):
            raise FloatingPointError(f"training loss became {record['train_loss']} at epoch {epoch + 1} ({desc})")
        history.append(record)
        if config.progress:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k not in ("epoch",))
            tqdm.write(f"{desc} epoch {epoch + 1}/{config.epochs}: {shown}".strip())
        if ckpt_path is not None:
            atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                                "scaler": scaler.state_dict(), "history": history.epochs,
                                "epoch": epoch + 1, "fingerprint": config.fingerprint()}, ckpt_path)
    return FitResult(model, history, resumed_from, diverged)


def _cpu_copy(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


@torch.no_grad()
def collect_outputs(model: nn.Module, loader: Iterable, max_batches: Optional[int] = None,
                    device: Optional[torch.device] = None) -> Dict[str, torch.Tensor]:
    """Logits of the final prediction (``"final"``) and of every branch, plus ``"targets"``, on CPU.

    The model runs where its parameters are (or on ``device``); on CUDA in autocast, the batches channels-last,
    and the logits stay on the GPU until the last batch, so the loop never waits for a copy to the host."""
    device = device or next(model.parameters()).device
    # on CUDA in the training recipe's default mixed precision (TrainConfig.amp); on CPU in fp32, as always
    autocast = torch.autocast("cuda", dtype=autocast_dtype(device)) if device.type == "cuda" else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    chunks: Dict[str, List[torch.Tensor]] = {}
    try:
        for batch_index, (images, targets) in enumerate(loader):
            if max_batches is not None and batch_index >= max_batches:
                break
            images, targets = _to_device(images, targets, device, channels_last=device.type == "cuda")
            with autocast:
                output = model(images)
            chunks.setdefault("final", []).append(output.logits.float())
            for name, logits in output.extras.get("branch_logits", {}).items():
                chunks.setdefault(name, []).append(logits.float())
            chunks.setdefault("targets", []).append(targets)
    finally:
        model.train(was_training)
    if not chunks:
        raise ValueError("the evaluation loader yielded no batch; is the test split empty?")
    return {name: torch.cat(parts).cpu() for name, parts in chunks.items()}


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy (fraction), in double precision like every statistic computed from it."""
    return (logits.argmax(1) == targets).double().mean().item()


def evaluate(model: nn.Module, loader: Iterable, max_batches: Optional[int] = None) -> Dict[str, float]:
    """Top-1 accuracy of the final prediction (``acc``) and of each branch (``acc/<branch>``)."""
    outputs = collect_outputs(model, loader, max_batches)
    targets = outputs.pop("targets")
    return {("acc" if name == "final" else f"acc/{name}"): accuracy(logits, targets)
            for name, logits in outputs.items()}


@dataclass
class SeedSummary:
    """Per-seed metrics of a repeated run with their mean and (sample) standard deviation."""

    seeds: List[int]
    per_seed: List[Dict[str, float]]

    def values(self, key: str) -> List[float]:
        return [m[key] for m in self.per_seed]

    @property
    def mean(self) -> Dict[str, float]:
        return {k: float(np.mean(self.values(k))) for k in self.per_seed[0]}

    @property
    def std(self) -> Dict[str, float]:
        ddof = 1 if len(self.seeds) > 1 else 0
        return {k: float(np.std(self.values(k), ddof=ddof)) for k in self.per_seed[0]}


def repeat_over_seeds(run: Callable[[int], Dict[str, float]], seeds: Sequence[int]) -> SeedSummary:
    """Call ``run(seed)`` for every seed; return the metrics with mean and std over seeds."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    return SeedSummary(seeds, [dict(run(seed)) for seed in seeds])
