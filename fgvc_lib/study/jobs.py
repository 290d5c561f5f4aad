"""One training run as a self-contained job: what it trains, its key, and how a worker executes it.

A :class:`RunJob` carries everything a worker needs (the variant, the seed, how to read the data,
how to build the backbone) and nothing that cannot be pickled, so it runs the same in this process,
in a local process pool, or on a Slurm node (:mod:`fgvc_lib.study.executors`).

Its key (:func:`run_key`) hashes everything that changes the result: the variant's model factory,
loss and recipe (less the config fields marked :data:`fgvc_lib.run_keys.UNKEYED`: no model or loss reads them), the
backbone (name, width, batch norm, weight source and the pretraining's own key), the data identity
(dataset, folder, image size, batch size, the synthetic generator's version and settings) and the seed.
A run lives in ``<runs dir>/<variant>-<hash>/seed<seed>/``: ``last.pt`` (the engine's checkpoint, so a
killed run resumes), ``outputs.pt`` (test logits of every branch),
``outputs-<view>.pt`` for each other test view the variant asks for (e.g. the uncropped image), ``record.json`` (written last: the run is finished) and ``train.log``. A lock file beside them keeps
two processes from training the same run at once: the second waits, then loads the first's result.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from ..atomic import atomic_torch_save, atomic_write_text
from ..machine import facts as machine_facts
from ..run_keys import KEYED_WHEN_SET, RUN_KEY   # field metadata: out of run keys, or in them only when set
from .paper import Variant

RECORD_NAME = "record.json"
OUTPUTS_NAME = "outputs.pt"


def outputs_name(view: Optional[str] = None) -> str:
    """The file of a run's test logits: the training transform's test images, or another ``view``."""
    return OUTPUTS_NAME if view is None else f"outputs-{view}.pt"
LOG_NAME = "train.log"
EVAL_BATCHES = 2   # on a GPU, a run's test images are scored this many training batches at a time (in autocast
# and without stored activations; not yet measured on a GPU against the training batch's memory)
LOCK_NAME = "lock"


# --------------------------------------------------------------------------- what a run reads


@dataclass(frozen=True)
class DataSpec:
    """How to build a dataset's loaders in any process (``synthetic``: the generator's settings)."""

    dataset: str
    root: Optional[str]
    image_size: int
    batch_size: int
    synthetic: Tuple[Tuple[str, object], ...] = ()   # SyntheticConfig of a generated dataset
    max_batches: Optional[int] = None
    options: Tuple[Tuple[str, object], ...] = ()     # build_dataset options of a variant, e.g. crop

    def _dataset_options(self) -> Dict[str, object]:
        from ..data.synthetic import SyntheticConfig

        options = dict(self.options)
        if self.dataset == "synthetic" and self.root is None:
            options["config"] = SyntheticConfig(**dict(self.synthetic))
        return options

    def loaders(self, num_workers: int = 0, pin_memory: bool = False, test_batch_size: Optional[int] = None,
                decoded_cache: bool = False):
        """``(train_loader, test_loader)``; ``num_workers`` decoding processes, ``pin_memory`` and the
        ``decoded_cache`` change how fast the batches come, never what they hold (:mod:`fgvc_lib.data.drawn`,
        :mod:`fgvc_lib.data.decoded_cache`), and the test batch size only how many images are scored at once:
        none of them is part of the data's identity."""
        from ..data import build_loaders

        return build_loaders(self.dataset, self.root, self.image_size, self.batch_size, num_workers=num_workers,
                             pin_memory=pin_memory, test_batch_size=test_batch_size, decoded_cache=decoded_cache,
                             **self._dataset_options())

    def test_loader(self, view: Optional[str] = None):
        """The test split alone, as :meth:`loaders` reads it or in another test ``view``."""
        from ..data import build_test_loader

        return build_test_loader(self.dataset, self.root, self.image_size, self.batch_size, view=view,
                                 **self._dataset_options())

    def identity(self) -> Dict[str, object]:
        identity = dataclasses.asdict(self)
        if self.dataset == "synthetic":
            from ..data.synthetic import GENERATOR_VERSION, load_config

            identity["generator_version"] = GENERATOR_VERSION
            if self.root is not None:  # a folder the CLI wrote: its own settings are part of the data
                identity["synthetic"] = sorted(load_config(self.root).to_dict().items())
        return identity


_NO_WEIGHTS = contextvars.ContextVar("fgvc_lib_no_weights", default=False)


@contextlib.contextmanager
def no_weights():
    """Every :meth:`BackboneSpec.build` inside builds randomly initialised backbones, also those a model factory
    builds itself (the recurrent attention's local stream): a model for a checkpoint to be loaded into, or for
    counting and timing, must not train the embedded pretraining or fetch ImageNet weights."""
    token = _NO_WEIGHTS.set(True)
    try:
        yield
    finally:
        _NO_WEIGHTS.reset(token)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build the study's backbone: name, width, batch norm and weight source."""

    name: str
    width: float
    batch_norm: bool
    pretrained: Optional[str]                          # None | "imagenet" | "synthetic"
    pretraining: Tuple[Tuple[str, object], ...] = ()   # options of fgvc_lib.pretraining (synthetic)
    output_stride: Optional[int] = None                # fgvc_lib.backbones.set_output_stride; None: as published

    def build(self, weights: bool = True):
        """The backbone; ``weights=False`` leaves it randomly initialised (a checkpoint follows)."""
        from ..backbones import build_backbone, set_output_stride

        weights = weights and not _NO_WEIGHTS.get()
        if weights and self.pretrained == "synthetic":
            from ..pretraining import pretrained_backbone

            backbone = pretrained_backbone(self.name, self.width, batch_norm=self.batch_norm, **dict(self.pretraining))
        else:
            backbone = build_backbone(self.name, pretrained=self.pretrained if weights else None, width=self.width,
                                      batch_norm=self.batch_norm)
        return backbone if self.output_stride is None else set_output_stride(backbone, self.output_stride)

    def identity(self) -> Dict[str, object]:
        identity = dataclasses.asdict(self)
        if self.output_stride is None:
            del identity["output_stride"]   # run folders trained before the option existed keep their keys
        if self.pretrained == "synthetic":
            from ..pretraining import PretrainingConfig

            options = dict(self.pretraining)
            identity["pretraining_key"] = PretrainingConfig(**options).key(
                self.name + ("_bn" if self.batch_norm else ""), self.width)
        return identity


def keyed_fields(obj) -> Tuple[dataclasses.Field, ...]:
    """The fields of dataclass ``obj`` that :func:`describe` (hence :func:`run_key`) covers."""
    return tuple(f for f in dataclasses.fields(obj) if f.metadata.get(RUN_KEY, True))


def describe(obj) -> object:
    """A JSON-able description of a model factory, loss or config, stable across processes (a dataclass:
    its type and :func:`keyed_fields`)."""
    if isinstance(obj, functools.partial):
        return {"call": describe(obj.func), "args": [describe(a) for a in obj.args],
                "keywords": {k: describe(v) for k, v in sorted(obj.keywords.items())}}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"type": f"{type(obj).__module__}.{type(obj).__qualname__}",
                **{f.name: describe(getattr(obj, f.name)) for f in keyed_fields(obj)
                   if not (f.metadata.get(RUN_KEY) == KEYED_WHEN_SET[RUN_KEY] and getattr(obj, f.name) is None)}}
    if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__"):
        return f"{obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, (list, tuple)):
        return [describe(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): describe(v) for k, v in sorted(obj.items())}
    if hasattr(obj, "__dict__") and not isinstance(obj, (str, int, float, bool)):
        return {"type": f"{type(obj).__module__}.{type(obj).__qualname__}", "state": describe(vars(obj))}
    return obj if isinstance(obj, (str, int, float, bool)) or obj is None else repr(obj)


def run_key(variant: Variant, data: DataSpec, backbone: BackboneSpec) -> str:
    """The folder name of ``variant``'s runs: its name and a hash of everything that shapes them
    (the seed is the sub-folder)."""
    blob = json.dumps({"model": describe(variant.model), "loss": describe(variant.loss),
                       "train": variant.train.fingerprint(), "data": data.identity(),
                       "backbone": backbone.identity()}, sort_keys=True, default=str)
    return f"{variant.name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class RunJob:
    variant: Variant
    seed: int
    data: DataSpec
    backbone: BackboneSpec
    run_dir: str
    device: str = "auto"
    threads: Optional[int] = None      # torch intra-op threads while training (None: leave as is)
    progress: bool = False             # epoch lines on the console (in-process runs); always in train.log
    loader_workers: Optional[int] = None   # data-loader processes; None: fgvc_lib.study.executors.loader_workers
    runs_at_once: int = 1              # runs sharing this machine's CPU cores (for the automatic loader_workers)
    compile: bool = False              # torch.compile the model while it trains (TrainConfig.compile)


@dataclass
class RunRecord:
    """What a finished run reports back (the heavy parts stay in its folder)."""

    variant: str
    seed: int
    run_dir: str
    accuracy: float          # top-1 of the final prediction, percent
    seconds: float           # training time (all epochs, including those of an interrupted attempt)
    epochs: int
    loaded: bool             # True: found finished, nothing trained
    diverged_epoch: Optional[int] = None   # the epoch whose loss stopped being finite (TrainConfig.on_divergence)


def read_machine(run_dir: os.PathLike) -> Optional[dict]:
    """The machine a finished run trained on (:func:`fgvc_lib.machine.facts`), or None for a run trained before
    records named it (or not finished)."""
    path = Path(run_dir) / RECORD_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("machine")


def started_from(backbone: BackboneSpec) -> Optional[dict]:
    """What a run's record keeps of the embedded pretraining it started from: its record
    (:func:`fgvc_lib.pretraining.pretraining_record`) less the per-epoch history, plus the count of epochs; None
    when it has none (no weights, ImageNet's, or a pretraining cached without a record)."""
    from ..pretraining import spec_record

    record = spec_record(backbone)
    if record is None:
        return None
    return {**{k: v for k, v in record.items() if k != "history"}, "epochs": len(record.get("history") or [])}


def read_pretraining(run_dir: os.PathLike) -> Optional[dict]:
    """The pretraining a finished run started from (:func:`started_from`), or None (not recorded, or none)."""
    path = Path(run_dir) / RECORD_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("pretraining")


def read_record(run_dir: os.PathLike) -> Optional[RunRecord]:
    path = Path(run_dir) / RECORD_NAME
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    # run_dir: the folder it is read from now, not the one it was written in (the runs may have moved)
    return RunRecord(**{k: data[k] for k in ("variant", "seed", "accuracy", "seconds", "epochs")},
                     run_dir=str(Path(run_dir)), loaded=True, diverged_epoch=data.get("diverged_epoch"))


@contextlib.contextmanager
def _log_to(path: Path, also_console: bool):
    """Send this process's stdout/stderr (epoch lines, warnings) to ``path`` as well."""
    class Tee:
        def __init__(self, *streams):
            self.streams = streams

        def write(self, text):
            for s in self.streams:
                s.write(text)
            return len(text)

        def flush(self):
            for s in self.streams:
                s.flush()

    with open(path, "a", encoding="utf-8") as log:
        old = sys.stdout, sys.stderr
        sys.stdout = Tee(log, old[0]) if also_console else Tee(log)
        sys.stderr = Tee(log, old[1]) if also_console else Tee(log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = old


def execute_run(job: RunJob) -> RunRecord:
    """Train (or resume, or load) one run and score it on the test split; safe to call anywhere
    (this process's torch thread count is restored afterwards)."""
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    if job.threads:
        torch.set_num_threads(job.threads)
    try:
        return _train_or_load(job, run_dir)
    finally:
        torch.set_num_threads(previous_threads)


def _train_or_load(job: RunJob, run_dir: Path) -> RunRecord:
    from ..engine import TrainConfig, accuracy, collect_outputs, fit, resolve_device
    from ..locks import exclusive

    with exclusive(run_dir / LOCK_NAME):
        finished = read_record(run_dir)
        if finished is not None:
            return finished
        with _log_to(run_dir / LOG_NAME, also_console=job.progress):
            from .executors import loader_workers

            cuda = resolve_device(job.device).type == "cuda"
            workers = loader_workers(job.loader_workers, job.device, job.runs_at_once)   # resolved where it trains
            # images decoded once (the decoded-image cache: the same pixels; the cpu profile's loader reads three
            # times as many images a second here); on a GPU, batches pinned for asynchronous copies and the test
            # images scored EVAL_BATCHES training batches at a time
            larger = cuda and job.data.max_batches is None   # a capped (smoke) run scores the batches it always did
            train_loader, test_loader = job.data.loaders(workers, pin_memory=cuda, decoded_cache=True,
                                                         test_batch_size=EVAL_BATCHES * job.data.batch_size if larger else None)
            init_seed = job.variant.train.init_seed
            torch.manual_seed(job.seed if init_seed is None else init_seed)  # the initialisation's seed only
            model = job.variant.model(job.backbone.build(), len(train_loader.dataset.classes))
            config = TrainConfig(**{**job.variant.train.__dict__, "seed": job.seed,
                                    "max_batches": job.data.max_batches, "device": job.device, "progress": True,
                                    "compile": job.compile})
            result = fit(model, train_loader, job.variant.loss, config, checkpoint_dir=run_dir,
                         desc=f"{job.variant.name} s{job.seed}")
            outputs = collect_outputs(result.model, test_loader, job.data.max_batches)
            for view in job.variant.test_views:
                save_view_outputs(result.model, job.data, view, run_dir)
        atomic_torch_save(outputs, run_dir / OUTPUTS_NAME)
        record = RunRecord(job.variant.name, job.seed, str(run_dir),
                           100.0 * accuracy(outputs["final"], outputs["targets"]),
                           float(sum(e.get("seconds", 0.0) for e in result.history.epochs)),
                           len(result.history.epochs), loaded=result.resumed_from_epoch >= config.epochs,
                           diverged_epoch=result.diverged_epoch)
        atomic_write_text(run_dir / RECORD_NAME, json.dumps(
            {**dataclasses.asdict(record), "history": result.history.epochs, "finished": time.time(),
             "machine": machine_facts(job.device),                # where it trained (numbers depend on it)
             "pretraining": started_from(job.backbone)}, indent=1))   # and from which pretraining
    return record


def save_view_outputs(model: torch.nn.Module, data: DataSpec, view: str, run_dir: os.PathLike) -> Dict[str, torch.Tensor]:
    """Score ``model`` on the test images of ``data`` seen in ``view`` and keep the logits beside the
    run's own (``outputs-<view>.pt``); returns them."""
    from ..engine import collect_outputs

    loader = data.test_loader(view)
    cap = None   # the same images as the run's own evaluation, when that one is capped
    if data.max_batches is not None:
        cap = -(-data.max_batches * data.batch_size // loader.batch_size)
    outputs = collect_outputs(model, loader, cap)
    atomic_torch_save(outputs, Path(run_dir) / outputs_name(view))
    return outputs
