"""Where the runs execute: this process, a local process pool, or Slurm through submitit.

Every executor has the ``concurrent.futures`` shape: ``submit(fn, *args)`` returns a handle with
``done()`` and ``result()`` (a ``Future``, or a submitit ``Job``). :func:`make_executor` picks one
from the notebook's ``executor`` parameter:

* ``inline``: one run after the other in this process (the smoke profile, debugging);
* ``local``: a process pool (``spawn``, so nothing of the notebook's state leaks into a worker).
  On CPU, one single-threaded run per core (``workers`` = the core count, torch threads = 1 per
  worker: the slim networks gain nothing from a second thread, and two runs use two cores); on a
  CUDA machine, one run per visible GPU, each worker pinned to its own device;
* ``slurm``: one Slurm job per run through submitit (``slurm_partition``, ``slurm_time`` in minutes,
  ``slurm_gpus``); ``submitit-local`` and ``submitit-debug`` are submitit's own local executors,
  which run the same code path without a cluster (tests);
* ``auto``: ``local`` when more than one run can go at once, else ``inline``.

``capacity`` is how many runs may be in flight: the runner submits no more than that, so a run's
"start" line is printed when it really starts (the cluster gets every run at once).
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import traceback
from pathlib import Path
from typing import Callable, List, Optional

from .parameters import Execution


class RunFailed(RuntimeError):
    """A run failed in its worker; the message carries the worker's traceback."""


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class InlineExecutor:
    """Runs each job at once, here; returns finished futures (errors keep their traceback)."""

    kind = "inline"
    capacity = 1

    def __init__(self, threads: Optional[int] = None):
        self.devices: List[str] = ["auto"]
        self.threads = threads   # torch threads while a run trains (then restored)

    def submit(self, fn: Callable, *args) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except BaseException as err:  # noqa: BLE001 - handed to the caller through the future
            err.worker_traceback = traceback.format_exc()
            future.set_exception(err)
        return future

    def shutdown(self, abort: bool = False) -> None:
        pass


def _limit_worker_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


class PoolExecutor:
    """A ``spawn`` process pool of ``workers``; on CUDA each slot has its own device."""

    kind = "local"

    def __init__(self, workers: int, devices: List[str], threads: Optional[int]):
        self.capacity = workers
        self.devices = devices
        self.threads = threads
        self._pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_limit_worker_threads if threads else None,
                                            initargs=(threads,) if threads else ())

    def submit(self, fn: Callable, *args) -> cf.Future:
        return self._pool.submit(fn, *args)

    def shutdown(self, abort: bool = False) -> None:
        """Wait for the workers; ``abort`` (an interrupt or a failed run) stops them at once instead:
        their runs resume from their last finished epoch next time."""
        if abort:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)


class SubmititExecutor:
    """submitit's AutoExecutor: Slurm, or its ``local``/``debug`` stand-ins."""

    def __init__(self, cluster: str, folder: Path, execution: Execution, threads: Optional[int]):
        try:
            import submitit
        except ImportError:
            raise RuntimeError("executor='slurm' needs the submitit package: pip install submitit") from None
        self.kind = "slurm" if cluster == "slurm" else f"submitit-{cluster}"
        self.capacity = 10 ** 6
        self.threads = threads
        self.devices = ["auto"]
        self._executor = submitit.AutoExecutor(folder=str(folder), cluster=None if cluster == "slurm" else cluster)
        options = dict(timeout_min=execution.slurm_time, name="fgvc-run")
        if cluster == "slurm":
            cpus = max(1, threads or 1)
            if execution.slurm_gpus > 0:   # a GPU run's loader workers need cores of their own, plus the run's
                workers = execution.loader_workers
                cpus = 1 + (SLURM_GPU_LOADER_WORKERS if workers is None else workers)
            options.update(slurm_partition=execution.slurm_partition or os.environ.get("SLURM_PARTITION", ""),
                           gpus_per_node=execution.slurm_gpus, cpus_per_task=cpus, tasks_per_node=1)
        self._executor.update_parameters(**options)

    def submit(self, fn: Callable, *args):
        return self._executor.submit(fn, *args)

    def shutdown(self, abort: bool = False) -> None:
        pass  # submitted jobs belong to the cluster; a resubmitted run resumes or loads them


def pool_size(execution: Execution, runs: int, gpus: int) -> int:
    """Runs the local pool trains at once: the notebook's ``workers``, else one per GPU (``gpus``) or per CPU core,
    never more than ``runs``."""
    return min(execution.workers or (gpus if gpus else cpu_cores()), max(1, runs))


def make_executor(execution: Execution, runs: int, log_folder: Path, profile_threads: Optional[int]):
    """The executor for ``runs`` runs (see the module docstring)."""
    kind = execution.executor
    gpus = cuda_devices()
    if kind in ("slurm", "submitit-local", "submitit-debug"):
        cluster = {"slurm": "slurm", "submitit-local": "local", "submitit-debug": "debug"}[kind]
        return SubmititExecutor(cluster, log_folder, execution, profile_threads)
    workers = pool_size(execution, runs, gpus)
    if kind == "inline" or (kind == "auto" and workers <= 1):
        return InlineExecutor(None if gpus else profile_threads)
    devices = [f"cuda:{i % gpus}" for i in range(workers)] if gpus else ["cpu"] * workers
    threads = None if gpus else 1 if workers > 1 else profile_threads
    return PoolExecutor(workers, devices, threads)


MAX_LOADER_WORKERS = 16   # decoding processes per run beyond which a GPU run gains nothing measurable
SLURM_GPU_LOADER_WORKERS = 8   # loader workers a Slurm GPU run asks cores for when loader_workers is automatic
# (the job then finds them in its allocation: loader_workers below counts the cores it may use)


def runs_at_once(kind: str, capacity: int, runs: int) -> int:
    """How many runs share this machine's CPU cores at once under executor ``kind``: one on a Slurm node (its
    own allocation) and under submitit's debug executor (one after the other), all of them under submitit's
    local one, else as many as the executor's capacity allows."""
    if kind in ("slurm", "submitit-debug"):
        return 1
    return max(1, runs if kind == "submitit-local" else min(capacity, runs))


def loader_workers(requested: Optional[int], device: str, runs_at_once: int) -> int:
    """Data-loader worker processes for one run: ``requested`` when given (the ``loader_workers`` parameter);
    otherwise, on a GPU, the CPU cores shared among the runs in flight less one for each run's own process
    (at most :data:`MAX_LOADER_WORKERS`), and none on a CPU, where decoding in the training process costs
    less than feeding a single-threaded run from other processes."""
    if requested is not None:
        return int(requested)
    from ..engine import resolve_device

    if resolve_device(device).type != "cuda":
        return 0
    return max(1, min(MAX_LOADER_WORKERS, cpu_cores() // max(1, runs_at_once) - 1))


def worker_traceback(err: BaseException) -> str:
    """The traceback of a failed run as its worker saw it (process pools attach it as the cause)."""
    cause = err.__cause__
    if cause is not None and type(cause).__name__ == "_RemoteTraceback":
        return str(cause)
    return getattr(err, "worker_traceback", "") or "".join(traceback.format_exception(err))
