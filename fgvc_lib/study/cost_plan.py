"""What a study will cost before it trains: runs, epochs and training images per variant, and the hours they
take on this machine, estimated from a short throughput probe (issue 20, item 6).

:func:`cost_plan` returns one row per variant of a :class:`~fgvc_lib.study.runner.Study`:

* ``runs``: its seeds x the study's datasets; ``epochs``: its recipe's;
* ``images_per_epoch``: training images one run reads per epoch (the study's train split as the variant reads it,
  capped by the profile's ``max_batches``; the mean over datasets when there are several);
* ``trial_runs``: the recipe-selection trials it trains first (one per candidate rate of ``lr_trials``, on its
  first seed and the first dataset, without the held-out share: :mod:`fgvc_lib.study.recipes`), still to train;
  the planned grid only: a grid whose end wins adds up to ``recipes.MAX_EDGE_STEPS`` trials, not known before;
* ``images``: every training image its runs and trials process (runs x epochs x images per epoch, plus the
  trials');
* ``images_per_s``: measured by a probe: the variant's model built as the study builds it (without the pretrained
  weights, which do not change the speed), a few training steps (optimizer, loss, the recipe's amp and
  channels_last on CUDA, torch.compile when the notebook asks for it) on a fresh copy of the study's own training
  loader, read as a run reads it (the notebook's ``loader_workers``, automatic as in
  :func:`fgvc_lib.study.executors.loader_workers`; pinned batches on CUDA), on the device a run trains on (CUDA when there is one) with the thread count of a run; the first steps
  are a warm-up and are not timed. Variants with the same model, loss and data options share one probe;
* ``hours``: images / images_per_s / 3600. A model with a frozen extractor's memo (SSANet:
  :mod:`fgvc_lib.models.frozen_features`) is probed twice, on new images and on the same batches again; the memo
  is shared on disk by the notebook's runs, so only the first two epochs' worth of images (each image as it is and
  flipped) go at the first rate and the rest at the second (issue 19: the single rate put notebook 05 at 3.2 hours,
  where it trained in 11 minutes);
* ``main``: the variant is read by one of the notebook's main comparisons (claims marked ``main``).

Runs a notebook trains beyond its variants' (notebook 00's knob grid: :attr:`fgvc_lib.study.Paper.extra_runs`) get
a row each, less any run the plan trains anyway. A last row ``total`` sums runs, trial runs, images and hours (its
``images_per_s`` is the total's effective rate). ``table.attrs``: ``device`` names the hardware the probes ran on,
``main_hours`` sums the main comparisons' rows, ``at_once`` is how many runs the notebook's executor trains at once
here (None under Slurm). The estimate counts training steps only: not the test-set evaluation, the embedded
pretraining, data generation, or the slowing of runs that share a machine's memory; and a run already finished
(loaded, not trained) is still counted. The wall clock it prints (hours / ``at_once``) is an estimate, not a
bound: it leaves out evaluation and pretraining and the slowing of runs trained at once, and counts finished
runs again.

:class:`PlanOnly` is what ``Study.run()`` raises after printing the plan when the notebook's ``plan_only`` is set.
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Dict, List, Optional, Tuple

import pandas as pd
import torch

PROBE_STEPS = 5          # timed training steps per probe
WARMUP_STEPS = 2         # steps before the timed ones (allocations, cuDNN autotuning, compilation)
PROBE_SECONDS = 20.0     # a probe stops timing after this many seconds (at least one timed step)
COLUMNS = ["runs", "epochs", "images_per_epoch", "trial_runs", "images", "images_per_s", "hours"]   # and "main"


class PlanOnly(Exception):
    """``Study.run()`` with ``plan_only=True``: the cost plan was printed and nothing was trained."""


def plan_only_message(notebook: str) -> str:
    return (f"plan_only=True: the cost plan of {notebook} is printed above and nothing was trained. To train, set "
            f"plan_only = False in the notebook's parameters cell (or run `make reproduce` without PLAN=1).")


def images_per_epoch(loader, max_batches: Optional[int]) -> int:
    """Training images a run reads from ``loader`` per epoch, ``max_batches`` batches at most (the engine's cap)."""
    size, batch = len(loader.dataset), loader.batch_size
    batches = len(loader)
    if max_batches is not None and max_batches < batches:
        return max_batches * batch          # only the last batch of an epoch can be short
    return size - (size % batch if loader.drop_last else 0)


def device_name(device: torch.device, threads: Optional[int] = None) -> str:
    """The hardware a probe ran on, in words (a GPU's name, or the CPU with the threads of one run)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from ..machine import cpu_model

    threads = threads or torch.get_num_threads()
    return f"CPU ({cpu_model()}, {threads} thread(s) per run)"


def probe_workers(requested: Optional[int], device: torch.device) -> int:
    """Data-loader workers of the probe, as a run gets them (:func:`fgvc_lib.study.executors.loader_workers`):
    the notebook's ``loader_workers``, or when it is None (automatic) none on CPU and on CUDA a share of the CPU
    cores, the local pool training one run per GPU."""
    from .executors import loader_workers

    runs_at_once = max(1, torch.cuda.device_count()) if device.type == "cuda" else 1
    return loader_workers(requested, str(device), runs_at_once)


def _cycle(loader):
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the training loader yielded no batch; is the training split empty?")


def probe_rate(model: torch.nn.Module, loader, loss_fn, train, device: torch.device, steps: int = PROBE_STEPS,
               warmup: int = WARMUP_STEPS, compile_model: bool = False, max_seconds: float = PROBE_SECONDS,
               repeat: bool = False):
    """Training images per second of ``model`` on ``loader`` (as :func:`fgvc_lib.engine.fit` steps it with recipe
    ``train``): ``warmup`` untimed steps, then up to ``steps`` timed ones (fewer after ``max_seconds``).
    ``repeat``: returns (that rate, the rate of the same timed batches stepped again), the second one the rate of
    images a frozen extractor's memo (:mod:`fgvc_lib.models.frozen_features`) has seen before."""
    from ..engine import _make_optimizer, _to_device, mixed_precision, training_step

    if steps < 1:
        raise ValueError(f"probe_steps must be >= 1; got {steps}")
    cuda = device.type == "cuda"
    channels_last = train.channels_last and cuda
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if hasattr(model, "start_epoch"):
        model.start_epoch(0, train.epochs)
    model.train()
    optimizer = _make_optimizer(model, train)
    step_model = torch.compile(model) if compile_model and cuda else model   # as fit: compile on CUDA only
    autocast, scaler = mixed_precision(train, device)
    if cuda:
        torch.backends.cudnn.benchmark = True   # as fit sets it
        # the loader's workers keep batches decoded ahead; the timed steps start once that queue has been
        # drawn down, so that a loader slower than the model shows in the rate
        warmup = max(warmup, (getattr(loader, "prefetch_factor", None) or 0) * getattr(loader, "num_workers", 0))
    batches = _cycle(loader)
    timed: List[Tuple[torch.Tensor, torch.Tensor]] = []
    timed_images, started = 0, None
    for step in range(warmup + steps):
        if step == warmup:
            if cuda:
                torch.cuda.synchronize(device)
            started = time.perf_counter()
        images, targets = next(batches)
        images, targets = _to_device(images, targets, device, channels_last)
        training_step(step_model, images, targets, loss_fn, train.loss_weights, optimizer, scaler, autocast)
        if step >= warmup:
            timed_images += int(targets.shape[0])
            if repeat:
                timed.append((images, targets))
            if cuda:
                torch.cuda.synchronize(device)
            if time.perf_counter() - started > max_seconds:
                break
    seconds = time.perf_counter() - started
    if not repeat:
        return timed_images / max(seconds, 1e-9)
    started = time.perf_counter()   # the same batches again: every image seen before
    for images, targets in timed:
        training_step(step_model, images, targets, loss_fn, train.loss_weights, optimizer, scaler, autocast)
    if cuda:
        torch.cuda.synchronize(device)
    return timed_images / max(seconds, 1e-9), timed_images / max(time.perf_counter() - started, 1e-9)


MEMO_FORMS = 2   # forms in which a training image reaches a frozen extractor: as it is and flipped (no random crop)


def _hours(images: int, per_epoch: float, rate: float, warm: Optional[float], memo_images: int) -> Tuple[float, int]:
    """Hours for ``images`` training images at ``rate`` a second; with a frozen extractor's memo (``warm``: the
    rate on images the memo holds) only the images not yet in the memo go at ``rate``: the memo is shared on disk
    by every run of the notebook with the same extractor, so the first :data:`MEMO_FORMS` epochs' worth of images
    (``per_epoch`` each) fill it once and everything after reads it (a lower bound where the memo's disk budget
    evicts entries). Returns the hours and the images now in the memo."""
    if warm is None:
        return images / rate / 3600.0, memo_images
    cold = max(0, min(images, int(MEMO_FORMS * per_epoch) - memo_images))
    return (cold / rate + (images - cold) / warm) / 3600.0, memo_images + cold


def main_variants(study) -> set:
    """The variants the notebook's main comparisons read (claims marked ``main``)."""
    from .paper import Accuracy

    claims, _ = study.paper.claims(study.settings)
    return {side.variant for claim in claims if claim.main for pair in claim.pairs
            for side in (pair if isinstance(pair, tuple) else (pair,)) if isinstance(side, Accuracy)}


def runs_at_once_here(study, device: torch.device, runs: int) -> Optional[int]:
    """How many runs the notebook's executor trains at once on this machine (one inline; the local pool's
    :func:`fgvc_lib.study.executors.pool_size`): None under Slurm or submitit (the cluster decides)."""
    from .executors import cuda_devices, pool_size

    execution = study.settings.execution
    if execution.executor in ("slurm", "submitit-local", "submitit-debug"):
        return None
    if execution.executor == "inline":
        return 1
    return pool_size(execution, runs, cuda_devices() if device.type == "cuda" else 0)


def _probe_key(variant) -> str:
    """Variants with the same model, loss and data options run at the same speed: they share a probe."""
    from .jobs import describe

    return json.dumps({"model": describe(variant.model), "loss": describe(variant.loss),
                       "data": describe(variant.data), "amp": variant.train.amp,
                       "channels_last": variant.train.channels_last}, sort_keys=True, default=str)


def cost_plan(study, probe_steps: int = PROBE_STEPS, warmup: int = WARMUP_STEPS,
              max_seconds: float = PROBE_SECONDS) -> pd.DataFrame:
    """The cost table of ``study`` (see the module docstring); nothing is trained and no run folder is made."""
    from ..engine import resolve_device
    from .recipes import trial_variants

    device = resolve_device("auto")
    threads = study.threads if device.type == "cpu" else None
    compile_model = bool(getattr(study.settings.execution, "compile", False))
    workers = probe_workers(getattr(study.settings.execution, "loader_workers", None), device)
    loaders: Dict[Tuple[str, str], object] = {}

    def train_loader(dataset: str, data: Tuple) -> object:
        key = (dataset, json.dumps(data, default=str))
        if key not in loaders:
            loaders[key] = dataclasses.replace(study.data_spec(dataset), options=data).loaders()[0]
        return loaders[key]

    def epoch_images(dataset: str, data: Tuple) -> int:
        return images_per_epoch(train_loader(dataset, data), study.profile.max_batches)

    rates: Dict[str, Tuple[float, Optional[float]]] = {}   # probe key -> (rate, rate on images the memo holds)
    rows: List[Dict[str, object]] = []
    previous_threads = torch.get_num_threads()
    first = study.datasets[0]
    main = main_variants(study)
    memo_images = 0   # training images a frozen extractor's memo has been filled with so far (see _hours)

    def probe(variant) -> Tuple[float, Optional[float]]:
        key = _probe_key(variant)
        if key not in rates:
            devices = [device] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(variant.seeds[0] if variant.seeds else 0)
                model = study.untrained_model(variant.name, first)
                memo = getattr(model, "feature_memo", None) is not None
                if memo:   # in memory only: a plan writes nothing
                    from ..models.frozen_features import FrozenFeatureMemo

                    model.feature_memo = FrozenFeatureMemo(disk=False)
                # the training loader as a run reads it: its workers, the decoded-image cache (built here
                # once if it is missing, as the first run would build it), on CUDA pinned batches
                spec = dataclasses.replace(study.data_spec(first), options=variant.data)
                loader = spec.loaders(num_workers=workers, pin_memory=device.type == "cuda", decoded_cache=True)[0]
                measured = probe_rate(model, loader, variant.loss, variant.train, device, probe_steps, warmup,
                                      compile_model, max_seconds, repeat=memo)
                rates[key] = measured if memo else (measured, None)
                del loader
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
        return rates[key]

    extra_sizes: Dict[object, int] = {}

    def extra_epoch_images(data) -> int:
        """Training images per epoch of a job's data (one loader per distinct data spec)."""
        if data not in extra_sizes:
            extra_sizes[data] = images_per_epoch(data.loaders()[0], data.max_batches)
        return extra_sizes[data]

    def add_row(name: str, runs: int, epochs: int, per_epoch: float, trial_runs: int,
                parts: List[Tuple[int, object]], is_main: bool) -> None:
        """One row; ``parts``: (training images, variant) pairs, each at its variant's probed rate."""
        nonlocal memo_images
        hours = 0.0
        for part_images, variant in parts:
            rate, warm = probe(variant)
            part_hours, memo_images = _hours(part_images, per_epoch, rate, warm, memo_images)
            hours += part_hours
        images = sum(part_images for part_images, _ in parts)
        rows.append({"variant": name, "runs": runs, "epochs": epochs, "images_per_epoch": round(per_epoch),
                     "trial_runs": trial_runs, "images": images, "images_per_s": images / hours / 3600.0,
                     "hours": hours, "main": is_main})

    try:
        if threads:
            torch.set_num_threads(threads)
        for variant in study.variants.values():
            per_dataset = [epoch_images(d, variant.data) for d in study.datasets]
            runs = len(variant.seeds) * len(study.datasets)
            images = len(variant.seeds) * variant.train.epochs * sum(per_dataset)
            trials = trial_variants(variant) if variant.lr_trials and variant.name not in study.chosen_rates else []
            images += sum(t.train.epochs * epoch_images(first, t.data) for t in trials)
            add_row(variant.name, runs, variant.train.epochs, sum(per_dataset) / len(per_dataset), len(trials),
                    [(images, variant)], variant.name in main)
        planned = {job.run_dir for _, job in study.jobs()}
        for label, jobs in (study.paper.extra_runs(study) if study.paper.extra_runs else []):
            jobs = [job for job in jobs if job.run_dir not in planned]   # a run the plan trains anyway is not extra
            if not jobs:
                continue
            per_run = [extra_epoch_images(job.data) for job in jobs]
            add_row(label, len(jobs), jobs[0].variant.train.epochs, sum(per_run) / len(per_run), 0,
                    [(job.variant.train.epochs * n, job.variant) for job, n in zip(jobs, per_run)], False)
    finally:
        torch.set_num_threads(previous_threads)
    total_images, total_hours = sum(r["images"] for r in rows), sum(r["hours"] for r in rows)
    rows.append({"variant": "total", "runs": sum(r["runs"] for r in rows), "epochs": None, "images_per_epoch": None,
                 "trial_runs": sum(r["trial_runs"] for r in rows), "images": total_images,
                 "images_per_s": total_images / (total_hours * 3600.0) if total_hours else float("nan"),
                 "hours": total_hours, "main": False})
    table = pd.DataFrame(rows, columns=["variant"] + COLUMNS + ["main"]).set_index("variant")
    table.attrs["main_hours"] = float(sum(r["hours"] for r in rows[:-1] if r["main"]))
    table.attrs["at_once"] = runs_at_once_here(study, device, int(table.loc["total", "runs"]))
    for column in ("runs", "epochs", "images_per_epoch", "trial_runs", "images"):
        table[column] = table[column].astype("Int64")
    table.attrs["device"] = device_name(device, threads)
    table.attrs["notebook"] = study.paper.notebook
    table.attrs["probe"] = (f"{probe_steps} timed step(s) per distinct model after {warmup} warm-up step(s)"
                            + (" or the loader's prefetched batches if more" if device.type == "cuda" else "") + ", "
                            f"{workers} loader worker(s)" + (", torch.compile" if compile_model else ""))
    return table


def plan_text(table: pd.DataFrame) -> str:
    """The cost table as printed: a header naming the hardware, the table, and the total."""
    shown = table.copy()
    shown["images_per_s"] = shown["images_per_s"].round(1)
    shown["hours"] = shown["hours"].map(lambda h: f"{h:.3g}")
    total = float(table.loc["total", "hours"])
    return "\n".join([
        f"cost plan of {table.attrs.get('notebook', 'the study')}: measured on {table.attrs.get('device', '?')} "
        f"({table.attrs.get('probe', 'a short probe')}); training steps only, no evaluation or pretraining",
        shown.to_string(),
        f"total: {total:.3g} hours of one run at a time on this machine's {table.attrs.get('device', 'device')} "
        f"(runs that train at once, on several GPUs or CPU cores, share them out)" + wall_text(table)])


def wall_text(table: pd.DataFrame) -> str:
    """The plan's total as wall-clock hours with the executor's runs at once, and the main comparisons' share."""
    total, at_once = float(table.loc["total", "hours"]), table.attrs.get("at_once")
    text = f"; the main comparisons' variants (column main): {table.attrs.get('main_hours', 0.0):.3g} hours"
    if at_once:
        text += (f"; with {at_once} run(s) at a time, as this machine's executor trains them: about "
                 f"{total / at_once:.3g} hours of wall clock (an estimate: training steps only, and runs that share "
                 f"a machine's memory slow each other)")
    return text
