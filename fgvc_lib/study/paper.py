"""How a paper is declared for the one study runner (docs/DESIGN.md, Contracts): data and small functions.

A paper file (``fgvc_lib/papers/<paper>.py``) builds one :class:`Paper`:

* its notebook parameters beyond the common ones (:class:`~fgvc_lib.study.parameters.Parameter`),
  the backbones it uses, its recipe's epochs and batch size (the paper profile's defaults);
* ``plan(settings)``: the :class:`Variant` objects to train (name -> model factory, loss, recipe,
  seeds, seed tier). Everything in a variant is picklable (module-level functions, ``functools.partial``,
  dataclasses), because a run may train in another process or on another machine;
* ``printed``: the numbers the paper prints, once, as data (table -> row -> column -> value; a column is
  what the paper prints per dataset or backbone, ``paper_column`` maps the study's dataset to it);
* ``cells(settings)``: one :class:`Cell` per printed table cell: which variant (and which of its
  branches) reproduces it, beside which :class:`Printed` number;
* ``claims(settings)``: the claims as :class:`Claim` data (which two measurements are compared, the
  direction, the printed cells the paper's effect comes from, which the runner computes), and the claims
  not measured with this configuration, each with the reason.

The runner (:mod:`fgvc_lib.study.runner`) never imports a paper: the notebook passes it in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .parameters import Parameter

TOP1 = "top1"   # the metric name of top-1 accuracy (percent) in every results table

# How many of the notebook's seeds each tier of variants trains, per profile: the first n (a profile left out, or
# 0: every seed). A variant declares its tier (Variant.seed_tier) and the runner trains it on these seeds
# (tier_seeds); a paper's notebook parameter may set a tier's count for one run (Settings.seed_counts).
SEED_TIERS: Dict[str, Mapping[str, int]] = {
    "main": {},                                       # the main comparison: every seed
    # secondary models (ablations, sweeps, a figure's references): the cpu profile's budget allows the first 3
    # seeds, the least a claim gets; the smoke and paper profiles train them once
    "ablation": {"smoke": 1, "cpu": 3, "paper": 1},
    # secondary models whose claims need paired seeds wherever there is time (CLAN's Tables 1-3): the first 3
    # in the cpu profile, every seed elsewhere
    "cpu_ablation": {"cpu": 3},
}


def tier_seeds(settings, tier: str, seeds: Optional[Sequence[int]] = None) -> Tuple[int, ...]:
    """The seeds a variant of ``tier`` trains under ``settings``: the first n of ``seeds`` (default: the notebook's),
    n the tier's count in the profile (:data:`SEED_TIERS`) unless the run sets it (``settings.seed_counts``)."""
    check_tier(tier)
    seeds = tuple(settings.seeds if seeds is None else seeds)
    count = settings.seed_counts.get(tier) or SEED_TIERS[tier].get(settings.profile.name, 0)
    return seeds[:count] if count else seeds


def check_tier(tier: str) -> None:
    if tier not in SEED_TIERS:
        raise ValueError(f"unknown seed tier {tier!r}; valid: {', '.join(SEED_TIERS)}")


@dataclass(frozen=True)
class Variant:
    """One model to train for each of ``seeds``: ``model(backbone, num_classes)``, ``loss``, ``train``.

    ``details`` are shown in the plan table (what the variant is, in the paper's terms); ``data`` are
    options of its training and test data (:func:`fgvc_lib.data.build_dataset`, e.g.
    ``(("crop", "object"),)``: the images cropped to the annotated bird). ``test_views`` are other
    ways to show its test images, each scored at the end of the run beside the usual test images
    (:data:`fgvc_lib.data.transforms.TEST_VIEWS`, e.g. ``("uncropped",)``), for :class:`Accuracy` to read.
    ``lr_trials``: candidate learning rates, one of which the runner chooses on a validation split before
    the real runs (:mod:`fgvc_lib.study.recipes`); empty: ``train.lr`` as given. ``lr_from`` names another
    variant whose chosen rate this one trains at (an ablation of a method shares the method's recipe).
    ``seed_tier`` (:data:`SEED_TIERS`): the paper passes every seed in ``seeds`` and the runner keeps the tier's
    first ones (:func:`tier_seeds`), so ``Study.variants[name].seeds`` are the seeds the variant trains."""

    name: str
    model: Callable
    loss: Callable
    train: object                              # fgvc_lib.engine.TrainConfig, epochs included
    seeds: Tuple[int, ...]
    details: Tuple[Tuple[str, object], ...] = ()
    data: Tuple[Tuple[str, object], ...] = ()
    test_views: Tuple[str, ...] = ()
    lr_trials: Tuple[float, ...] = ()
    lr_from: str = ""
    seed_tier: str = "main"

    def __post_init__(self) -> None:
        from ..data.transforms import check_view
        from .recipes import check_trials

        if not self.name or "/" in self.name:
            raise ValueError(f"a variant name must be non-empty and free of '/'; got {self.name!r}")
        if not self.seeds:
            raise ValueError(f"variant {self.name!r} has no seed")
        check_tier(self.seed_tier)
        check_trials(self.name, self.lr_trials)
        if self.lr_from and (self.lr_trials or self.lr_from == self.name):
            raise ValueError(f"variant {self.name!r}: lr_from={self.lr_from!r} takes another variant's chosen rate; "
                             f"it cannot be combined with lr_trials or name the variant itself")
        for view in self.test_views:
            check_view(view, dict(self.data).get("resize_mode", "resize"))


@dataclass(frozen=True)
class Accuracy:
    """Top-1 accuracy in percent of ``variant``: its final prediction, or ``branches`` combined; on
    the usual test images, or on another of the variant's ``test_views`` (``view``)."""

    variant: str
    branches: Optional[Tuple[str, ...]] = None
    view: Optional[str] = None


@dataclass(frozen=True)
class Score:
    """A measurement the notebook records under ``name`` (e.g. a localization score), per seed and,
    where it can, per test image (:meth:`fgvc_lib.study.Study.record`)."""

    name: str


@dataclass(frozen=True)
class Fixed:
    """A deterministic number (a parameter or operation count): one value, no seeds."""

    name: str
    value: float


@dataclass(frozen=True)
class Printed:
    """A number the paper prints: ``row`` of ``table`` in ``column`` (``None``: the column the paper prints for
    the dataset being measured, :attr:`Paper.paper_column`), looked up in :attr:`Paper.printed`."""

    table: str
    row: str
    column: Optional[str] = None


def mean_difference(differences: Sequence[float]) -> float:
    """A claim's printed effect from its printed pairs: the mean of their differences (one pair: the difference)."""
    return sum(differences) / len(differences)


@dataclass(frozen=True)
class Cell:
    """One printed cell: ``row`` of ``table`` on ``dataset``, reproduced by ``measure`` (a variant's
    accuracy, or a :class:`Score` the notebook records before it reports the table), beside the paper's
    ``printed`` number (the runner looks it up; ``paper`` gives a number directly, for a paper that declares no
    ``printed`` table). ``paper_setting`` labels a printed number that comes from another setting than ours
    (e.g. "CUB, ResNet-50")."""

    table: str
    row: str
    measure: object
    paper: Optional[float] = None
    dataset: Optional[str] = None            # None: every dataset of the study
    metric: str = TOP1
    seeds: Optional[Tuple[int, ...]] = None  # None: the variant's seeds
    paper_setting: str = ""
    printed: Optional[Printed] = None

    def __post_init__(self) -> None:
        if self.printed is not None and self.paper is not None:
            raise ValueError(f"cell {self.table}/{self.row}: give its printed cell or a paper number, not both")


@dataclass(frozen=True)
class Claim:
    """"B beats A": per seed, the mean over ``pairs`` of ``B - A`` (``pairs`` = ``((A, B), ...)``).

    Measured under the one verdict rule (:mod:`fgvc_lib.statistics`): paired seeds, per-image
    differences, a 95 % interval counting seeds and test images. The paper's own effect comes from the
    printed cells ``printed`` (``((A, B), ...)`` of :class:`Printed`, like ``pairs``; an entry that is one
    :class:`Printed` is a gain the paper prints as a gain): the runner computes ``combine`` of their differences
    ``B - A`` and printed gains (default: their mean; an effect such as the smaller of two increments, or the sum
    of two printed steps, names its own function); an effect the paper gives as a number nowhere in a table is
    declared as ``paper_effect`` (percentage points). Neither: the paper shows no number, and ``direction`` gives the
    claimed sign. ``kind="similar"`` claims no difference. ``main`` marks a
    notebook's main comparison (the method against its baseline), whose interval should be narrower
    (:data:`~fgvc_lib.statistics.MAIN_HALF_WIDTH`). ``note`` is shown beside the verdict.

    ``measure`` is the kind of number compared (:data:`~fgvc_lib.statistics.MEASURES`: ``accuracy``,
    ``score``, ``count``), which sets the smallest effect of interest; ``None`` reads it from the pairs
    (all :class:`Accuracy`: accuracy; all :class:`Fixed`: count; else score). ``paper_setting`` names
    the paper's setting its effect was printed for when it is not ours (e.g. "CUB, ResNet-50" beside
    the cpu profile's VGG-16), so the effect is shown as a labelled reference, not an empty cell."""

    text: str
    pairs: Tuple[Tuple[object, object], ...]
    paper_effect: Optional[float] = None
    direction: int = 1
    kind: str = "greater"
    dataset: Optional[str] = None
    seeds: Optional[Tuple[int, ...]] = None
    main: bool = False
    note: str = ""
    measure: Optional[str] = None
    paper_setting: str = ""
    printed: Tuple[object, ...] = ()     # (A, B) pairs of Printed cells, or single Printed gains
    combine: Callable[[Sequence[float]], float] = mean_difference

    def __post_init__(self) -> None:
        from ..statistics import MEASURES, check_direction_kind

        check_direction_kind(self.direction, self.kind)
        if not self.pairs:
            raise ValueError(f"claim {self.text!r} compares nothing")
        if self.printed and self.paper_effect is not None:
            raise ValueError(f"claim {self.text!r}: give its printed cells or a paper_effect, not both")
        if self.measure is not None and self.measure not in MEASURES:
            raise ValueError(f"claim {self.text!r}: measure must be one of {', '.join(MEASURES)}; "
                             f"got {self.measure!r}")

    @property
    def measured_as(self) -> str:
        """The claim's kind of measure: ``measure``, or read from its pairs (class docstring)."""
        if self.measure is not None:
            return self.measure
        sides = [m for pair in self.pairs for m in pair]
        if all(isinstance(m, Fixed) for m in sides):
            return "count"
        if all(isinstance(m, Accuracy) for m in sides):
            return "accuracy"
        return "score"

    @property
    def smallest_effect(self) -> float:
        from ..statistics import MEASURES

        return MEASURES[self.measured_as]


@dataclass(frozen=True)
class Paper:
    """Everything the runner needs to know about one paper (see the module docstring)."""

    key: str
    notebook: str
    title: str
    backbones: Tuple[str, ...]
    plan: Callable                                   # settings -> List[Variant]
    cells: Callable = lambda settings: []            # settings -> List[Cell]
    claims: Callable = lambda settings: ([], [])     # settings -> (List[Claim], List[str] not measured)
    skipped: Callable = lambda settings: {}          # settings -> {table: why it is not rebuilt}
    parameters: Tuple[Parameter, ...] = ()
    recipe_epochs: int = 0                           # the paper's epochs (paper profile)
    recipe_batch_size: int = 0                       # the paper's batch size (paper profile)
    finalize: Optional[Callable] = None              # settings -> None: cross-parameter checks
    extra_runs: Optional[Callable] = None            # study -> [(label, [RunJob])]: runs the notebook trains
    # beyond its variants' (notebook 00's knob grid), which the cost plan counts
    paper_column: Mapping[str, str] = field(default_factory=dict)  # dataset -> printed column
    max_datasets: int = 1
    datasets: Tuple[str, ...] = ()                   # the only datasets it takes (first = default); (): any
    combine: Optional[Callable] = None               # (branch logits dict, names) -> logits
    attention_sites: Callable = lambda settings, backbone: {}  # (settings, the study's backbone, built without
    # weights) -> {site: stride of its map in input pixels, or (stride, map side) for a map of part of the input}
    # (fgvc_lib.room)
    image_sizes: Mapping[str, int] = field(default_factory=dict)  # profile -> input size, where it differs
    default_backbones: Mapping[str, str] = field(default_factory=dict)  # profile -> backbone when the notebook's
    # backbone is '' (else the first of ``backbones``)
    output_strides: Mapping[str, int] = field(default_factory=dict)  # profile -> backbone output stride, where
    # it differs from the published network's (fgvc_lib.backbones.set_output_stride); a paper may also
    # declare a parameter "output_stride" (0: this default)

    printed: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)  # table -> row ->
    # column -> the number the paper prints (a column the paper leaves blank or "-" is absent)

    def column(self, dataset: str) -> Optional[str]:
        """The paper's column printed beside ``dataset`` (None: the paper has no numbers for it)."""
        return self.paper_column.get(dataset)

    def printed_value(self, cell: Printed, dataset: str) -> Optional[float]:
        """The number the paper prints at ``cell`` for ``dataset``; None where it prints none (no column for the
        dataset, or a blank). A table or row the paper does not declare raises: a declaration error."""
        if cell.table not in self.printed or cell.row not in self.printed[cell.table]:
            rows = ", ".join(self.printed.get(cell.table, {})) or "none"
            raise KeyError(f"paper {self.key} declares no printed row {cell.row!r} of table {cell.table!r} "
                           f"(its rows: {rows})")
        column = cell.column or self.column(dataset)
        value = self.printed[cell.table][cell.row].get(column) if column else None
        return None if value is None else float(value)

    def cell_number(self, cell: "Cell", dataset: str) -> Optional[float]:
        """The paper's number beside ``cell`` on ``dataset``: its printed cell's, else its ``paper``."""
        return self.printed_value(cell.printed, dataset) if cell.printed is not None else cell.paper

    def paper_effect(self, claim: "Claim", dataset: str) -> Optional[float]:
        """The paper's effect for ``claim`` on ``dataset``: ``claim.combine`` of its printed differences (rounded to
        1e-6 against float noise; None if one of its cells is not printed for the dataset), else its
        ``paper_effect``."""
        if not claim.printed:
            return claim.paper_effect
        differences = []
        for entry in claim.printed:
            if isinstance(entry, Printed):   # a gain the paper prints as a gain
                difference = self.printed_value(entry, dataset)
            else:
                low, high = self.printed_value(entry[0], dataset), self.printed_value(entry[1], dataset)
                difference = None if low is None or high is None else high - low
            if difference is None:
                return None
            differences.append(difference)
        return round(float(claim.combine(differences)), 6)

    def printed_table(self, table: str):
        """The paper's printed ``table`` as a DataFrame (rows x columns, blank where it prints none)."""
        import pandas as pd

        if table not in self.printed:
            raise KeyError(f"paper {self.key} declares no printed table {table!r} (its tables: "
                           f"{', '.join(self.printed) or 'none'})")
        return pd.DataFrame.from_dict(self.printed[table], orient="index")


def cells_by_table(cells: Sequence[Cell]) -> Dict[str, List[Cell]]:
    grouped: Dict[str, List[Cell]] = {}
    for cell in cells:
        grouped.setdefault(cell.table, []).append(cell)
    return grouped
