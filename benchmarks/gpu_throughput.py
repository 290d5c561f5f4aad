"""Training throughput of the paper profile on a GPU, against the compute limit.

The paper profile trains full-width VGG-16 models at 448 px. This prints the images/s of four ways to
train that network, each as a share of the first:

(a) the limit: a plain hand-written loop (VGG-16 convolutions to conv5_3 + global average pooling + a
    linear layer, bf16 autocast, channels_last, ``cudnn.benchmark``) on batches already on the GPU;
(b) the project's engine, ``fgvc_lib.engine.fit``, on the same tensors (the project's baseline model,
    the same architecture): what the engine costs;
(c) the project's loader alone: ``build_loaders`` on a CUB-layout JPEG folder, iterated with
    ``--workers`` worker processes (default: as many as a run gets) (decoding and transforms, no training);
(d) a paper-profile run's own training path: notebook 06's baseline run, planned by ``Study`` in the
    paper profile and trained by ``Study.train_jobs`` as the notebook trains it (its executor and device,
    ``DataSpec.loaders()`` with the loader workers the run resolves, ``fit`` with the run's
    ``TrainConfig``); only its train loader is clocked and its backbone keeps random weights.

Every figure is clocked over ``--steps`` batches after ``--warmup`` batches (kernel selection, worker
start-up, allocator), with ``torch.cuda.synchronize()`` before each reading of the clock. The JPEG
folder (about ``--images`` photographs of about 500 x 375 px, 8 per class, written by
``benchmarks/cub_layout.py``) goes to ``--data`` or a temporary folder and is reused when present.
The last line is ``ratio: X`` = (d) / (a). Targets on an H200-class GPU: (d)/(a) >= 0.85 and
(b)/(a) >= 0.95.

Without a GPU (or with ``--cpu``) a small CPU version runs instead, and its first line says so: slim
VGG-16 (1/8 width), 96 px, about 200 images, a few steps, fp32 and contiguous tensors as the engine
trains on a CPU; it takes well under two minutes on two cores. Its figures check that the script
works, not the GPU targets.

    python benchmarks/gpu_throughput.py [--steps 20] [--batch 32] [--image-size 448] [--images 1600]
                                        [--workers 12] [--data DIR] [--cpu] [--compile]
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn
from torchvision.models.vgg import make_layers

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]   # cub_layout beside this file; fgvc_lib from a bare checkout
from cub_layout import write_cub_layout  # noqa: E402

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]   # to conv5_3
IMAGES_PER_CLASS = 8          # 7 training + 1 test image per class, up to CUB's 200 classes
NOTEBOOK = "06_comparison"    # the paper whose baseline run (d) trains
VARIANT = "baseline"


@dataclass
class Setup:
    device: torch.device
    steps: int
    warmup: int
    batch: int
    image_size: int
    images: int
    workers: int
    width: float
    compile: bool

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def classes(self) -> int:
        return max(2, min(200, self.images // IMAGES_PER_CLASS))

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


# --------------------------------------------------------------------------- timing


class TimedBatches:
    """Yields at most ``warmup + steps`` batches of ``batches`` and clocks those after the warm-up: from
    the request for the first timed batch to the request after the last one (its step is then done).

    Attributes the engine looks for on a loader (``generator``, ``sampler``, ``dataset``) are the wrapped
    loader's, so a run's per-epoch reseeding works as without the wrapper."""

    def __init__(self, batches: Iterable, setup: Setup):
        self.batches, self.setup = batches, setup
        self.images, self.seconds = 0, None

    def __getattr__(self, name):
        if name in ("batches", "setup"):   # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.batches, name)

    def __len__(self) -> int:
        total = self.setup.warmup + self.setup.steps
        return min(len(self.batches), total) if hasattr(self.batches, "__len__") else total

    def __iter__(self):
        setup, started, images = self.setup, None, 0
        iterator = iter(self.batches)
        for index in range(setup.warmup + setup.steps):
            if index == setup.warmup:
                setup.sync()
                started = time.perf_counter()
            try:
                images_batch, targets = next(iterator)
            except StopIteration:
                break
            if started is not None:
                images += int(targets.shape[0])
            yield images_batch, targets
        setup.sync()
        if started is not None and images:
            self.images, self.seconds = images, time.perf_counter() - started
        del iterator   # a multi-process loader's workers stop here, after the clock

    @property
    def rate(self) -> float:
        if not self.seconds:
            raise RuntimeError(f"no batch after the {self.setup.warmup} warm-up batches: too few images for "
                               f"--batch {self.setup.batch} and --steps {self.setup.steps} (raise --images)")
        return self.images / self.seconds


class InMemoryBatches:
    """``count`` batches drawn in turn from a few fixed ``(images, targets)`` tensors (already on the device)."""

    def __init__(self, batches: List[Tuple[torch.Tensor, torch.Tensor]], count: int):
        self.batches, self.count = batches, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        for index in range(self.count):
            yield self.batches[index % len(self.batches)]


def in_memory_batches(setup: Setup, distinct: int = 4) -> InMemoryBatches:
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(distinct):
        images = torch.randn(setup.batch, 3, setup.image_size, setup.image_size, generator=generator)
        targets = torch.randint(0, setup.classes, (setup.batch,), generator=generator)
        images = images.to(setup.device)
        if setup.cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        batches.append((images, targets.to(setup.device)))
    return InMemoryBatches(batches, setup.warmup + setup.steps)


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool):
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def release(setup: Setup) -> None:
    if setup.cuda:
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- the four figures


def plain_limit(setup: Setup) -> float:
    """(a) The limit: a hand-written loop with every known speed-up, on the in-memory batches."""
    channels = [v if v == "M" else max(1, int(round(v * setup.width))) for v in VGG16]
    model = nn.Sequential(make_layers(channels), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(channels[-1], setup.classes)).to(setup.device)
    if setup.cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if setup.cuda else contextlib.nullcontext()
    batches = TimedBatches(in_memory_batches(setup), setup)
    model.train()
    with cudnn_benchmark(True):
        for images, targets in batches:
            with autocast:
                loss = nn.functional.cross_entropy(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    del model, optimizer
    release(setup)
    return batches.rate


def engine_config(setup: Setup, **fields):
    """A ``TrainConfig`` of ``fields``, with ``compile=True`` when ``--compile`` asks for it and the engine
    has the option (it is being added: the script runs with either engine)."""
    from fgvc_lib.engine import TrainConfig

    if setup.compile and "compile" in {f.name for f in dataclasses.fields(TrainConfig)}:
        fields["compile"] = True
    return TrainConfig(**fields)


def compile_note(config) -> str:
    value = getattr(config, "compile", None)
    return "" if value is None else f", compile={value}"


def precision(amp: bool, setup: Setup) -> str:
    """The engine's training precision on ``setup.device`` (its ``autocast_dtype`` where it has one)."""
    from fgvc_lib import engine

    if not (amp and setup.cuda):
        return "fp32"
    choose = getattr(engine, "autocast_dtype", None)
    return f"{str(choose(setup.device)).replace('torch.', '')} autocast" if choose else "amp"


def engine_on_tensors(setup: Setup) -> Tuple[float, str]:
    """(b) ``fit`` with the project's baseline model on the same in-memory batches."""
    from fgvc_lib.backbones import build_backbone
    from fgvc_lib.engine import fit
    from fgvc_lib.models.baseline import BaselineNet, cross_entropy_loss

    torch.manual_seed(0)
    model = BaselineNet(build_backbone("vgg16", width=setup.width), setup.classes)
    config = engine_config(setup, epochs=1, lr=1e-3, device=str(setup.device), progress=False)
    batches = TimedBatches(in_memory_batches(setup), setup)
    fit(model, batches, cross_entropy_loss, config, desc="engine")
    del model
    release(setup)
    return batches.rate, f"{precision(config.amp, setup)}{compile_note(config)}"


def pin_options(setup: Setup) -> dict:
    """Loader options beyond the worker count that ``build_loaders`` declares (e.g. ``pin_memory``)."""
    from fgvc_lib.data import build_loaders

    declared = inspect.signature(build_loaders).parameters
    return {"pin_memory": True} if setup.cuda and "pin_memory" in declared else {}


def loader_alone(setup: Setup, root: Path) -> Tuple[float, str]:
    """(c) The project's training loader on the JPEG folder, iterated without training."""
    from fgvc_lib.data import build_loaders

    options = pin_options(setup)
    train_loader, _ = build_loaders("cub", str(root), setup.image_size, setup.batch, num_workers=setup.workers,
                                    **options)
    batches = TimedBatches(train_loader, setup)
    for _ in batches:
        pass
    extra = "".join(f", {k}={v}" for k, v in options.items())
    return batches.rate, f"{train_loader.num_workers} workers{extra}"


def run_path(setup: Setup, root: Path, log: Path) -> Tuple[float, str]:
    """(d) Notebook 06's baseline run in the paper profile, planned by ``Study`` and trained by ``Study.train_jobs``
    as the notebook trains it: the executor's device, the loader workers and pinning the run resolves, the run's
    ``TrainConfig``, its train.log, checkpoint and test scoring (the last two after the clock stops).

    Two changes, neither touching the timed steps' work: the job's ``DataSpec`` is a subclass whose train loader
    is clocked (:class:`TimedBatches`, so the epoch ends after the timed batches), and the backbone keeps its
    random initialisation (no ImageNet file needed), at the slim width in the CPU version. The notebook's own
    console output (run lines, progress) goes to ``log``."""
    from fgvc_lib.papers import attention_comparison
    from fgvc_lib.study import Study
    from fgvc_lib.study.jobs import DataSpec
    from fgvc_lib.study.parameters import COMMON_NAMES

    timers: List[TimedBatches] = []

    @dataclass(frozen=True)
    class TimedDataSpec(DataSpec):
        def loaders(self, *args, **kwargs):
            train_loader, test_loader = super().loaders(*args, **kwargs)
            timers.append(TimedBatches(train_loader, setup))
            return timers[-1], test_loader

    parameters = dict(profile="paper", dataset="cub", data_root=str(root.parent), backbone="vgg16", seeds="0",
                      epochs=1, image_size=setup.image_size, batch_size=setup.batch)
    if setup.compile and "compile" in COMMON_NAMES:
        parameters["compile"] = True
    study = Study(attention_comparison.STUDY, **parameters)
    # the study's backbone (a cached property) without the ImageNet file; the slim width in the CPU version
    study.backbone_spec = dataclasses.replace(study.backbone_spec, pretrained=None, width=setup.width)
    dataset, job = next((d, job) for d, job in study.jobs() if job.variant.name == VARIANT)
    data = TimedDataSpec(**{f.name: getattr(job.data, f.name) for f in dataclasses.fields(DataSpec)})
    job = dataclasses.replace(job, data=data)
    try:
        with open(log, "a", encoding="utf-8") as stream, contextlib.redirect_stdout(stream), \
                contextlib.redirect_stderr(stream):
            study.train_jobs([(dataset, job)], "runs")
    except Exception:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:] if log.is_file() else []
        print("\n".join(["(d) failed; the end of its log:", *tail]), flush=True)
        raise
    if not timers:
        raise RuntimeError("the run did not read its training data through DataSpec.loaders()")
    loader = timers[-1].batches
    workers = getattr(loader, "num_workers", "?")
    pinned = ", pinned" if getattr(loader, "pin_memory", False) else ""
    compiled = ", compile" if parameters.get("compile") else ""
    release(setup)
    return timers[-1].rate, f"{NOTEBOOK} {VARIANT} via Study.train_jobs, {workers} loader workers{pinned}{compiled}"


# --------------------------------------------------------------------------- the report


def measure(label: str, fn: Callable, limit: Optional[float]) -> Optional[float]:
    """Print one figure's line; a failure prints its reason instead and returns None."""
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as err:  # one figure failing must not lose the others
        print(f"{label}: FAILED {type(err).__name__}: {str(err)[:400]}", flush=True)
        return None
    rate, detail = result if isinstance(result, tuple) else (result, "")
    share = f"{rate / limit:.2f}" if limit else "1.00"
    detail = f" [{detail}]" if detail else ""
    print(f"{label}{detail}: {rate:.1f} images/s, {share} of the limit "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    return rate


def run_workers(cores: int) -> int:
    """The loader workers a paper-profile run on this GPU machine gets (the project's rule where it has one)."""
    try:
        from fgvc_lib.study.executors import loader_workers
    except ImportError:
        return min(12, cores)
    return loader_workers(None, "cuda", 1)


def parse(argv=None) -> Tuple[argparse.Namespace, Setup]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="timed batches per figure (20; CPU: 5)")
    parser.add_argument("--warmup", type=int, help="untimed batches first (5; CPU: 2)")
    parser.add_argument("--batch", type=int, help="batch size (32; CPU: 8)")
    parser.add_argument("--image-size", type=int, help="side of the network's input (448; CPU: 96)")
    parser.add_argument("--images", type=int, help="JPEGs in the folder, 8 per class (1600; CPU: 200)")
    parser.add_argument("--workers", type=int, help="loader workers of (c) (as many as a paper-profile run gets "
                                                    "on this machine; CPU: min(2, cores))")
    parser.add_argument("--data", help="folder for the CUB-layout JPEGs (default: a temporary folder, reused)")
    parser.add_argument("--cpu", action="store_true", help="run the small CPU version even with a GPU")
    parser.add_argument("--compile", action="store_true",
                        help="(b) and (d) with TrainConfig.compile=True, where the engine has the option")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.cpu
    cores = os.cpu_count() or 1
    defaults = dict(steps=20, warmup=5, batch=32, image_size=448, images=1600, workers=run_workers(cores)) if cuda \
        else dict(steps=5, warmup=2, batch=8, image_size=96, images=200, workers=min(2, cores))
    chosen = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in defaults.items()}
    if chosen["steps"] < 1 or chosen["warmup"] < 0 or chosen["batch"] < 2 or chosen["images"] < 16:
        parser.error("need --steps >= 1, --warmup >= 0, --batch >= 2 and --images >= 16")
    if chosen["image_size"] < 32:
        parser.error("--image-size must be at least 32 (VGG-16 halves it four times)")
    setup = Setup(torch.device("cuda" if cuda else "cpu"), width=1.0 if cuda else 0.125, compile=args.compile,
                  **chosen)
    return args, setup


def main(argv=None) -> int:
    args, setup = parse(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fgvc-gpu-throughput-"))
    for name in ("FGVC_RESULTS_DIR", "FGVC_RUNS_DIR", "FGVC_CACHE_DIR"):   # the study writes nothing of ours
        os.environ[name] = str(scratch / name.lower())
    data = Path(args.data) if args.data else Path(tempfile.gettempdir()) / "fgvc-cub-layout"
    classes = setup.classes
    folder = data / f"{classes}x{IMAGES_PER_CLASS}"
    if setup.cuda:
        where = f"device {torch.cuda.get_device_name(setup.device)} (CUDA): VGG-16 at full width"
    else:
        why = "--cpu given" if args.cpu else "no GPU"
        where = f"device cpu ({why}): the small CPU version, slim VGG-16 (width {setup.width}), fp32, NCHW"
    print(f"{where}, {setup.image_size} px, batch {setup.batch}, {setup.steps} timed steps after {setup.warmup} "
          f"warm-up, torch {torch.__version__}, {os.cpu_count()} CPU cores", flush=True)
    started = time.perf_counter()
    try:
        root = write_cub_layout(folder, classes, IMAGES_PER_CLASS - 1, 1)
        print(f"data: {classes * IMAGES_PER_CLASS} JPEGs ({classes} classes) of about 500 x 375 px in {root} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        limit = measure("(a) plain loop on in-memory tensors, "
                        + ("bf16 autocast, channels_last, cudnn.benchmark (the limit)" if setup.cuda
                           else "fp32 (the limit)"), lambda: plain_limit(setup), None)
        measure("(b) fgvc_lib.engine.fit on the same tensors", lambda: engine_on_tensors(setup), limit)
        measure("(c) project loader alone (build_loaders on the JPEGs, no training)",
                lambda: loader_alone(setup, root), limit)
        run = measure("(d) a paper-profile run's own training path (DataSpec.loaders() + fit)",
                      lambda: run_path(setup, root, scratch / "run.log"), limit)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ratio = run / limit if run and limit else math.nan
    print(f"ratio: {ratio:.2f}", flush=True)
    return 0 if math.isfinite(ratio) else 1


if __name__ == "__main__":
    sys.exit(main())
