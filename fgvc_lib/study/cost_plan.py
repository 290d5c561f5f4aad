"""What a study will cost before it trains: runs, epochs and training images per variant, and the hours they
take on this machine, estimated from a short throughput probe (issue 20, item 6).

:func:`cost_plan` returns one row per variant of a :class:`~fgvc_lib.study.runner.Study`:

* ``runs``: its seeds x the study's datasets; ``epochs``: its recipe's;
* ``images_per_epoch``: training images one run reads per epoch (the study's train split as the variant reads it,
  capped by the profile's ``max_batches``; the mean over datasets when there are several);
* ``trial_runs``: the recipe-selection trials it trains first (one per candidate rate of ``lr_trials``, on its
  first seed and the first dataset, without the held-out share: :mod:`fgvc_lib.study.recipes`), still to train;
* ``images``: every training image its runs and trials process (runs x epochs x images per epoch, plus the
  trials');
* ``images_per_s``: measured by a probe: the variant's model built as the study builds it (without the pretrained
  weights, which do not change the speed), a few training steps (optimizer, loss, the recipe's amp and
  channels_last on CUDA, torch.compile when the notebook asks for it) on a fresh copy of the study's own training
  loader, read as a run reads it (the notebook's ``loader_workers``, automatic as in
  :func:`fgvc_lib.study.executors.loader_workers`; pinned batches on CUDA), on the device a run trains on (CUDA when there is one) with the thread count of a run; the first steps
  are a warm-up and are not timed. Variants with the same model, loss and data options share one probe;
* ``hours``: images / images_per_s / 3600.

A last row ``total`` sums runs, trial runs, images and hours (its ``images_per_s`` is the total's effective rate).
``table.attrs["device"]`` names the hardware the probes ran on. The estimate counts training steps only: not the
test-set evaluation, the embedded pretraining, data generation, or other runs sharing the device; and a run
already finished (loaded, not trained) is still counted.

:class:`PlanOnly` is what ``Study.run()`` raises after printing the plan when the notebook's ``plan_only`` is set.
"""
from __future__ import annotations

import dataclasses
import json
import platform
import time
from typing import Dict, List, Optional, Tuple

import pandas as pd
import torch

PROBE_STEPS = 5          # timed training steps per probe
WARMUP_STEPS = 2         # steps before the timed ones (allocations, cuDNN autotuning, compilation)
PROBE_SECONDS = 20.0     # a probe stops timing after this many seconds (at least one timed step)
COLUMNS = ["runs", "epochs", "images_per_epoch", "trial_runs", "images", "images_per_s", "hours"]


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
    threads = threads or torch.get_num_threads()
    return f"CPU ({platform.processor() or platform.machine()}, {threads} thread(s) per run)"


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
               warmup: int = WARMUP_STEPS, compile_model: bool = False, max_seconds: float = PROBE_SECONDS) -> float:
    """Training images per second of ``model`` on ``loader`` (as :func:`fgvc_lib.engine.fit` steps it with recipe
    ``train``): ``warmup`` untimed steps, then up to ``steps`` timed ones (fewer after ``max_seconds``)."""
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
            if cuda:
                torch.cuda.synchronize(device)
            if time.perf_counter() - started > max_seconds:
                break
    seconds = time.perf_counter() - started
    return timed_images / max(seconds, 1e-9)


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

    rates: Dict[str, float] = {}
    rows: List[Dict[str, object]] = []
    previous_threads = torch.get_num_threads()
    first = study.datasets[0]
    try:
        if threads:
            torch.set_num_threads(threads)
        for variant in study.variants.values():
            per_dataset = [epoch_images(d, variant.data) for d in study.datasets]
            runs = len(variant.seeds) * len(study.datasets)
            images = len(variant.seeds) * variant.train.epochs * sum(per_dataset)
            trials = trial_variants(variant) if variant.lr_trials and variant.name not in study.chosen_rates else []
            images += sum(t.train.epochs * epoch_images(first, t.data) for t in trials)
            key = _probe_key(variant)
            if key not in rates:
                devices = [device] if device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(variant.seeds[0] if variant.seeds else 0)
                    model = study.untrained_model(variant.name, first)
                    # the training loader as a run reads it: its workers, the decoded-image cache (built here
                    # once if it is missing, as the first run would build it), on CUDA pinned batches
                    spec = dataclasses.replace(study.data_spec(first), options=variant.data)
                    loader = spec.loaders(num_workers=workers, pin_memory=device.type == "cuda", decoded_cache=True)[0]
                    rates[key] = probe_rate(model, loader, variant.loss, variant.train, device, probe_steps, warmup,
                                            compile_model, max_seconds)
                    del loader
                del model
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rate = rates[key]
            rows.append({"variant": variant.name, "runs": runs, "epochs": variant.train.epochs,
                         "images_per_epoch": round(sum(per_dataset) / len(per_dataset)), "trial_runs": len(trials),
                         "images": images, "images_per_s": rate, "hours": images / rate / 3600.0})
    finally:
        torch.set_num_threads(previous_threads)
    total_images, total_hours = sum(r["images"] for r in rows), sum(r["hours"] for r in rows)
    rows.append({"variant": "total", "runs": sum(r["runs"] for r in rows), "epochs": None, "images_per_epoch": None,
                 "trial_runs": sum(r["trial_runs"] for r in rows), "images": total_images,
                 "images_per_s": total_images / (total_hours * 3600.0) if total_hours else float("nan"),
                 "hours": total_hours})
    table = pd.DataFrame(rows, columns=["variant"] + COLUMNS).set_index("variant")
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
        f"(runs that train at once, on several GPUs or CPU cores, share them out)"])
