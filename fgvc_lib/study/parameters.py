"""A notebook's parameters: declared once with their defaults and valid values, checked in one place.

Every notebook takes the common parameters (:data:`COMMON`: profile, data, backbone, seeds, recipe
length, and how the runs are executed) plus its paper's own (declared in ``fgvc_lib/papers/<paper>.py``
as :class:`Parameter` objects). :func:`resolve` checks them all before any work starts, fills the
empty ones (``""`` / ``0`` / ``None``) from the profile or the paper's recipe, and returns
:class:`Settings`. A bad value stops with a message that names the parameter, the value and the valid
choices. Parameters are papermill primitives: strings, numbers, booleans, ``None``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..profiles import Profile


@dataclass(frozen=True)
class Parameter:
    """One notebook parameter: ``parse(value)`` checks it and returns the value the study uses."""

    name: str
    default: object
    help: str
    parse: Callable[[object], object] = lambda value: value


# --------------------------------------------------------------------------- value checkers


def choice(*valid) -> Callable[[object], object]:
    """A checker accepting only ``valid`` values."""
    def parse(value):
        if value not in valid:
            raise ValueError(f"got {value!r}; valid: {', '.join(map(repr, valid))}")
        return value
    return parse


def whole_number(minimum: int = 0) -> Callable[[object], int]:
    """A checker for an integer >= ``minimum``."""
    def parse(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"must be an integer >= {minimum}; got {value!r}")
        return value
    return parse


def non_negative_number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ValueError(f"must be a number >= 0; got {value!r}")
    return float(value)


def flag(value) -> bool:
    """``True`` or ``False`` (nothing else: a papermill boolean)."""
    if not isinstance(value, bool):
        raise ValueError(f"must be True or False; got {value!r}")
    return value


def optional_whole_number(value) -> Optional[int]:
    """``None`` or ``""`` (automatic), else an integer >= 0."""
    return None if value in (None, "") else whole_number(0)(value)


def optional_flag(value) -> Optional[bool]:
    """``None`` (the profile's choice), ``True`` or ``False``."""
    if value not in (None, "", True, False):
        raise ValueError(f"must be True, False or None (the profile's default); got {value!r}")
    return None if value in (None, "") else bool(value)


def comma_list(value) -> List[str]:
    """A comma-separated string as a list (``""`` gives ``[]``)."""
    if value in ("", None):
        return []
    if not isinstance(value, str):
        raise ValueError(f"must be a string (comma-separated for several); got {value!r}")
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_seeds(seeds) -> List[int]:
    """Seeds from a papermill primitive: ``"0,1,2"``, a count ``3`` (= seeds 0..2), or a list."""
    if isinstance(seeds, str):
        items = comma_list(seeds)
        try:
            parsed = [int(s) for s in items]
        except ValueError:
            raise ValueError(f"must be comma-separated integers like '0,1,2'; got {seeds!r}") from None
    elif isinstance(seeds, bool):
        raise ValueError(f"must be a count or a list of integers; got {seeds!r}")
    elif isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"a seed count must be >= 1; got {seeds}")
        parsed = list(range(seeds))
    else:
        parsed = [int(s) for s in seeds]
    if len(set(parsed)) != len(parsed):
        raise ValueError(f"names a seed twice: {parsed}")
    return parsed


# --------------------------------------------------------------------------- the common parameters

EXECUTORS = ("auto", "inline", "local", "slurm", "submitit-local", "submitit-debug")

COMMON: Tuple[Parameter, ...] = (
    Parameter("profile", None, "smoke | cpu | paper; None: $FGVC_PROFILE, else cpu"),
    Parameter("dataset", "", "'': the profile's; cub | cars | aircraft | dogs | synthetic, comma-separated "
                             "for several where the paper allows"),
    Parameter("data_root", "", "folder(s) holding each dataset's official layout, in the order of dataset"),
    Parameter("backbone", "", "'': the paper's backbone"),
    Parameter("seeds", "", "comma-separated seeds such as '0,1,2', or a count; '': the profile's"),
    Parameter("epochs", 0, "0: the profile's (paper profile: the paper's)", whole_number()),
    Parameter("image_size", 0, "0: the profile's (or the paper's own input size for that profile)", whole_number()),
    Parameter("batch_size", 0, "0: the profile's (paper profile: the paper's)", whole_number()),
    Parameter("executor", "auto", "auto | inline | local | slurm | submitit-local | submitit-debug",
              choice(*EXECUTORS)),
    Parameter("workers", 0, "runs at once (local pool); 0: one per CPU core, or one per GPU", whole_number()),
    Parameter("slurm_partition", "", "Slurm partition (executor='slurm')"),
    Parameter("slurm_time", 240, "minutes per run on Slurm", whole_number(1)),
    Parameter("slurm_gpus", 1, "GPUs per run on Slurm", whole_number()),
    Parameter("loader_workers", None, "data-loader worker processes per training run; None: automatic (on CUDA a "
                                      "share of the CPU cores per run, on CPU 0)", optional_whole_number),
    Parameter("compile", False, "torch.compile the model while training (opt-in)", flag),
    Parameter("plan_only", False, "print the cost plan (runs, epochs, estimated hours from a short throughput "
                                  "probe) and train nothing", flag),
)
COMMON_NAMES = tuple(p.name for p in COMMON)


@dataclass
class DataChoice:
    """One dataset of the study: its name and the folder with its official layout (None: generated)."""

    name: str
    root: Optional[str]


@dataclass
class Execution:
    """How the runs are executed (see :mod:`fgvc_lib.study.executors`)."""

    executor: str = "auto"
    workers: int = 0
    slurm_partition: str = ""
    slurm_time: int = 240
    slurm_gpus: int = 1
    loader_workers: Optional[int] = None   # data-loader workers per run; None: automatic (CUDA: a share of the cores)
    compile: bool = False                  # torch.compile the model while training
    plan_only: bool = False                # Study.run prints the cost plan and trains nothing


@dataclass
class Settings:
    """A notebook's parameters resolved against its profile, checked before any work starts.

    The paper's own parameters are in ``options`` and readable as attributes (``settings.scales``)."""

    profile: Profile
    datasets: List[DataChoice]
    backbone: str
    seeds: List[int]
    epochs: int
    image_size: int
    batch_size: int
    execution: Execution
    options: Dict[str, object] = field(default_factory=dict)
    output_stride: Optional[int] = None   # the backbone's total stride; None: the published network's
    # seed tier -> how many of the seeds its variants train, where a paper's own parameter sets it for this run
    # (its finalize; otherwise the profile's count, fgvc_lib.study.paper.SEED_TIERS)
    seed_counts: Dict[str, int] = field(default_factory=dict)

    def __getattr__(self, name):
        options = self.__dict__.get("options", {})
        if name in options:
            return options[name]
        raise AttributeError(f"Settings has no parameter {name!r}")

    @property
    def dataset(self) -> str:
        """The first (often the only) dataset's name."""
        return self.datasets[0].name

    def describe(self) -> str:
        data = ", ".join(d.name + (f" ({d.root})" if d.root else "") for d in self.datasets)
        lines = [f"profile={self.profile.name} dataset={data} backbone={self.backbone} width={self.profile.width:g} "
                 f"pretrained={self.profile.pretrained} seeds={self.seeds} epochs={self.epochs} "
                 f"image_size={self.image_size} batch_size={self.batch_size}"
                 + (f" output_stride={self.output_stride}" if self.output_stride else "")]
        if self.options:
            lines.append(" ".join(f"{k}={v}" for k, v in self.options.items()))
        return "\n".join(lines)


def _fail(name: str, err: Exception):
    raise ValueError(f"parameter {name}: {err}") from None


def resolve(paper, values: Mapping[str, object]) -> Settings:
    """Check every parameter of ``paper``'s notebook in ``values`` and fill the empty ones.

    ``paper`` is a :class:`fgvc_lib.study.paper.Paper`; ``values`` maps parameter names to the
    notebook's values (names it does not give take their declared default)."""
    from ..backbones import OUTPUT_STRIDES, check_backbone_name, is_vgg, min_image_size
    from ..data import DATASET_NAMES
    from ..profiles import get_profile

    own = {p.name: p for p in paper.parameters}
    clash = set(own) & set(COMMON_NAMES)
    if clash:
        raise ValueError(f"paper {paper.key} redeclares common parameter(s) {sorted(clash)}")
    unknown = sorted(set(values) - set(own) - set(COMMON_NAMES))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(COMMON_NAMES + tuple(own))}")
    given = {p.name: values.get(p.name, p.default) for p in COMMON + tuple(own.values())}
    for p in COMMON:
        try:
            given[p.name] = p.parse(given[p.name])
        except ValueError as err:
            _fail(p.name, err)

    profile = get_profile(given["profile"])
    backbone = given["backbone"] or paper.default_backbones.get(profile.name) or paper.backbones[0]
    try:
        check_backbone_name(backbone, paper.backbones)
    except ValueError as err:
        _fail("backbone", err)
    names = comma_list(given["dataset"]) or [paper.datasets[0] if paper.datasets else profile.dataset]
    outside = [n for n in names if paper.datasets and n not in paper.datasets]
    if outside:
        _fail("dataset", ValueError(f"{paper.notebook} runs on {', '.join(paper.datasets)} only; got {outside}"))
    roots = comma_list(given["data_root"])
    if len(names) > paper.max_datasets:
        _fail("dataset", ValueError(f"this notebook takes {paper.max_datasets} dataset(s) at a time; got {names}"))
    if len(set(names)) != len(names):
        _fail("dataset", ValueError(f"{given['dataset']!r} names a dataset twice"))
    for name in names:
        if name not in DATASET_NAMES:
            _fail("dataset", ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASET_NAMES)}"))
    if roots and len(roots) != len(names):
        _fail("data_root", ValueError(f"give one folder per dataset, in the same order: {len(names)} dataset(s) "
                                      f"{names} but {len(roots)} folder(s)"))
    roots = roots or [""] * len(names)
    datasets = []
    for name, root in zip(names, roots):
        if root and not Path(root).is_dir():
            raise FileNotFoundError(f"parameter data_root: {root!r} is not a folder; point it at the folder "
                                    f"holding the {name} dataset's official layout (README.md, 'Real datasets')")
        if name != "synthetic" and not root:
            _fail("data_root", ValueError(f"dataset {name!r} needs data_root, the folder holding its official "
                                          f"layout; only 'synthetic' runs without one"))
        datasets.append(DataChoice(name, str(Path(root).expanduser().absolute()) if root else None))
    try:
        seeds = parse_seeds(given["seeds"]) if given["seeds"] not in ("", None) else list(profile.seeds)
    except ValueError as err:
        _fail("seeds", err)
    epochs = given["epochs"] or profile.epochs or paper.recipe_epochs
    batch_size = given["batch_size"] or profile.batch_size or paper.recipe_batch_size
    image_size = given["image_size"] or paper.image_sizes.get(profile.name) or profile.image_size
    minimum = max(32, min_image_size(backbone))
    if image_size < minimum:
        _fail("image_size", ValueError(f"{image_size} is below the minimum {minimum} that {backbone} needs"))
    execution = Execution(**{k: given[k] for k in ("executor", "workers", "slurm_partition", "slurm_time",
                                                   "slurm_gpus", "loader_workers", "compile", "plan_only")})
    if execution.executor == "slurm" and not (execution.slurm_partition or os.environ.get("SLURM_PARTITION")):
        _fail("slurm_partition", ValueError("executor='slurm' needs the partition to submit to (or $SLURM_PARTITION)"))
    options = {}
    for name, p in own.items():
        try:
            options[name] = p.parse(given[name])
        except ValueError as err:
            _fail(name, err)
    # the paper's default for the profile applies to VGG backbones (set_output_stride's); others run as published
    default_stride = paper.output_strides.get(profile.name) if is_vgg(backbone) else None
    output_stride = options.get("output_stride") or default_stride or None
    if output_stride == max(OUTPUT_STRIDES):   # every backbone's published stride
        output_stride = None
    if output_stride is not None:
        if output_stride not in OUTPUT_STRIDES:
            _fail("output_stride", ValueError(f"must be 0 (the profile's) or one of "
                                              f"{', '.join(map(str, OUTPUT_STRIDES))}; got {output_stride}"))
        if not is_vgg(backbone):
            _fail("output_stride", ValueError(f"{output_stride} needs a VGG backbone; {backbone} runs at its own "
                                              f"stride (set output_stride 32)"))
    settings = Settings(profile, datasets, backbone, seeds, epochs, image_size, batch_size, execution, options,
                        output_stride)
    if paper.finalize is not None:
        paper.finalize(settings)  # cross-parameter checks and derived values (raise ValueError)
    return settings


def parameters_table(paper) -> List[Dict[str, object]]:
    """Every parameter of ``paper``'s notebook with its default and meaning (for docs and tests)."""
    return [{"name": p.name, "default": p.default, "help": p.help} for p in COMMON + tuple(paper.parameters)]


def check_declared(paper, declared: Sequence[str]) -> None:
    """Raise when a notebook's parameters cell does not declare exactly the paper's parameters (a
    notebook whose paper fixes its datasets declares no ``dataset``/``data_root``)."""
    expected = [n for n in COMMON_NAMES if not (paper.datasets and n in ("dataset", "data_root"))]
    expected += [p.name for p in paper.parameters]
    if list(declared) != expected:
        missing = [n for n in expected if n not in declared]
        extra = [n for n in declared if n not in expected]
        raise ValueError(f"the parameters cell of {paper.notebook} should declare {expected} in that order; "
                         f"missing {missing}, extra {extra}")
