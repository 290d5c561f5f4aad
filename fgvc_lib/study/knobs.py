"""The spread of a paired comparison as a function of the knobs that cost compute (docs/DESIGN.md, Profiles).

A study's recipe (training images, epochs, learning rate and schedule, batch size) sets both what a run
costs and how much two runs of different seeds disagree. :func:`knob_table` trains one comparison, arm
``a`` against arm ``b`` of a study on paired seeds, at each :class:`Knobs` point and measures, per point:

* what a comparison of the study's seeds costs (both arms, every seed): the training images it processes
  (images per class x classes x epochs x runs: the cost the choice uses, which no machine load changes) and the
  training seconds measured (mean per run and the sum; they depend on what else the machine ran);
* the spread of ``a``'s top-1 over seeds and of the paired difference ``b - a`` over seeds (sample
  standard deviations, points);
* the paired difference's 95 % interval under the study's one verdict rule
  (:func:`fgvc_lib.statistics.paired_effect`: seeds and test images both counted) and the seeds it would
  need to reach a half-width of :data:`~fgvc_lib.statistics.MAIN_HALF_WIDTH` (:func:`~fgvc_lib.statistics.seeds_needed`).

What it cannot do: the spreads come from the study's seeds (five in the cpu profile: a standard deviation from
five seeds is known only to within a factor of about 0.6 to 2.9), so the cheapest point is indicative, not a
choice to act on without more seeds; the comparison measured (an oracle against the baseline, a large effect)
stands for the methods' comparisons only as far as their spreads are alike (SUMMARY.md's table of the main
comparisons gives theirs); the spreads are read on the test split, so no recipe is changed on them here; and a
point that changes the training images per class also changes which images the generator puts in the test
split (points are compared with each other only through their spreads).

A point may also hold one of the two random sources of a run fixed while the seeds vary the other
(``fixed="data"``: the data order, augmentations and dropout from seed 0, the initialisation from each
seed; ``fixed="init"``: the reverse; :class:`fgvc_lib.engine.TrainConfig` ``data_seed`` / ``init_seed``):
those points split the seed-to-seed spread by source and are not recipes to choose. The initialisation
covers the layers a run adds (the baseline's and the bird crop's linear head): the pretrained backbone is the
cached embedded pretraining, the same for every seed.

:func:`cheapest_point` then names the cheapest recipe point whose comparison reaches the half-width.
The points' runs live in the study's runs folder under the usual run keys, so the point that equals the
study's own recipe loads the study's runs instead of training them again.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..reporting import KNOB_COLUMNS   # the table's format, which SUMMARY.md reads back
from ..statistics import MAIN_HALF_WIDTH, MAX_SEEDS_ESTIMATE, paired_effect, seeds_needed
from .jobs import RunJob, run_key

_Z95 = 1.959964   # the normal 97.5 % point: with se_test alone at least this wide, seeds may never reach a width
FIXED_SOURCES = ("", "data", "init")


@dataclass(frozen=True)
class Knobs:
    """One point of the grid, as changes to the study's own recipe: a knob left at ``None`` (or the
    factor at 1) keeps the study's value. ``fixed`` names a random source held at seed 0
    (:data:`FIXED_SOURCES`; "" holds none)."""

    label: str
    train_per_class: Optional[int] = None   # training images per class of the generated synthetic set
    epochs: Optional[int] = None
    lr_factor: float = 1.0                  # times the rate the study trains arm ``a`` at (chosen or fixed)
    scheduler: Optional[str] = None         # fgvc_lib.engine.SCHEDULERS
    batch_size: Optional[int] = None
    fixed: str = ""

    def __post_init__(self) -> None:
        if self.fixed not in FIXED_SOURCES:
            raise ValueError(f"knob point {self.label!r}: fixed must be one of {FIXED_SOURCES}; got {self.fixed!r}")
        for name in ("train_per_class", "epochs", "batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"knob point {self.label!r}: {name} must be a positive integer or None; got {value!r}")
        if not self.lr_factor > 0:
            raise ValueError(f"knob point {self.label!r}: lr_factor must be positive; got {self.lr_factor!r}")

    @property
    def is_own(self) -> bool:
        """Whether the point changes nothing: the study's own recipe."""
        return (self.train_per_class, self.epochs, self.lr_factor, self.scheduler, self.batch_size, self.fixed) == \
            (None, None, 1.0, None, None, "")

    @property
    def kind(self) -> str:
        return {"": "recipe", "data": "data order fixed", "init": "initialisation fixed"}[self.fixed]


def point_jobs(study, point: Knobs, arm: str, dataset: Optional[str] = None) -> List[RunJob]:
    """The runs of ``arm`` at ``point``: the study's variant with the point's changes, on the study's seeds."""
    dataset = dataset or study.datasets[0]
    if arm not in study.variants:
        raise ValueError(f"the study plans no variant {arm!r}; its variants: {', '.join(study.variants)}")
    variant = study.variants[arm]
    train = variant.train
    changes = {} if point.lr_factor == 1.0 else {"lr": train.lr * point.lr_factor}   # 1: the study's own key
    if point.epochs is not None:
        changes["epochs"] = point.epochs
    if point.scheduler is not None:
        changes["scheduler"] = point.scheduler
    if point.fixed:
        changes[f"{point.fixed}_seed"] = 0
    variant = dataclasses.replace(variant, train=dataclasses.replace(train, **changes))
    data = dataclasses.replace(study.data_spec(dataset), options=variant.data)
    if point.batch_size is not None:
        data = dataclasses.replace(data, batch_size=point.batch_size)
    if point.train_per_class is not None:
        if not data.synthetic:
            raise ValueError(f"knob point {point.label!r} sets the training images per class, which only a "
                             f"generated synthetic set has (dataset {dataset!r})")
        data = dataclasses.replace(data, synthetic=tuple(sorted({**dict(data.synthetic),
                                                                 "train_per_class": point.train_per_class}.items())))
    folder = study.runs_dir / dataset / run_key(variant, data, study.backbone_spec)
    return [RunJob(variant, seed, data, study.backbone_spec, str(folder / f"seed{seed}")) for seed in variant.seeds]


def grid_jobs(study, a: str, b: str, points: Sequence[Knobs], dataset: Optional[str] = None
              ) -> Tuple[List[Tuple[str, RunJob]], List[Tuple[int, str]]]:
    """Every run of the grid, (dataset, job) pairs, and for each the (point index, arm) it belongs to: arms ``a``
    and ``b`` on the study's seeds at each point (:func:`point_jobs`). The study's own point is among them: its
    jobs are the study's own runs (same folders)."""
    dataset = dataset or study.datasets[0]
    labels = [p.label for p in points]
    if len(set(labels)) != len(labels):
        raise ValueError(f"knob points must have distinct labels; got {labels}")
    if not any(p.is_own for p in points):
        raise ValueError("the knob points must include the study's own recipe (a Knobs that changes nothing)")
    jobs: List[Tuple[str, RunJob]] = []
    where: List[Tuple[int, str]] = []
    for index, point in enumerate(points):
        for arm in (a, b):
            for job in point_jobs(study, point, arm, dataset):
                jobs.append((dataset, job))
                where.append((index, arm))
    return jobs, where


def grid_runs(study, a: str, b: str, points: Sequence[Knobs]) -> List[Tuple[str, List[RunJob]]]:
    """The runs the grid adds to the study's own, per point: (the point's label, its jobs); the study's own
    point adds none (its runs are the study's). What the cost plan counts (:attr:`fgvc_lib.study.Paper.extra_runs`)."""
    jobs, where = grid_jobs(study, a, b, points)
    return [(f"knob grid: {point.label}", [job for (_, job), (index, _) in zip(jobs, where) if index == number])
            for number, point in enumerate(points) if not point.is_own]


def knob_table(study, a: str, b: str, points: Sequence[Knobs], dataset: Optional[str] = None,
               half_width: float = MAIN_HALF_WIDTH) -> pd.DataFrame:
    """Train (or load) ``a`` and ``b`` at every point and measure their comparison (module docstring).
    Run after ``study.run()``: a point's learning rate is a factor of the rate the study chose for ``a``."""
    from .runner import Run

    dataset = dataset or study.datasets[0]
    jobs, where = grid_jobs(study, a, b, points, dataset)
    generated = set()
    for _, job in jobs:   # a generated set of other sizes is written here once, before any worker reads it
        if job.data.synthetic and job.data.synthetic not in generated:
            generated.add(job.data.synthetic)
            job.data.loaders()
    records = study.train_jobs(jobs, "knob grid")
    rows = []
    for index, point in enumerate(points):
        runs = {arm: [] for arm in (a, b)}
        for number, (dataset_name, job) in enumerate(jobs):
            if where[number][0] == index:
                runs[where[number][1]].append(Run(study, dataset_name, job.variant, records[number]))
        first = next(job for number, (_, job) in enumerate(jobs) if where[number] == (index, a))
        rows.append(_row(point, runs[a], runs[b], first, half_width, f"{b} - {a}"))
    return pd.DataFrame(rows, columns=KNOB_COLUMNS)


def _row(point: Knobs, runs_a, runs_b, job: RunJob, half_width: float, comparison: str = "b - a") -> dict:
    correct_a = np.stack([run.correct() for run in runs_a])
    correct_b = np.stack([run.correct() for run in runs_b])
    effect = paired_effect([correct_b - correct_a])
    top1_a = correct_a.mean(axis=1)
    seconds = [run.record.seconds for run in (*runs_a, *runs_b)]
    train = job.variant.train
    synthetic = dict(job.data.synthetic)
    per_run = synthetic.get("train_per_class", math.nan) * synthetic.get("num_classes", math.nan) * train.epochs
    needed = seeds_needed(effect, half_width)
    return {"point": point.label, "kind": point.kind, "own recipe": point.is_own, "comparison": comparison,
            "train per class": float(synthetic.get("train_per_class", math.nan)),
            "epochs": train.epochs, "lr": train.lr, "schedule": train.scheduler,
            "batch": float(job.data.batch_size), "seeds": len(runs_a),
            "comparison images": float(per_run * (len(runs_a) + len(runs_b))),
            "seconds per run": float(np.mean(seconds)), "comparison seconds": float(np.sum(seconds)),
            "a top-1": float(top1_a.mean()),
            "a sd": float(np.std(top1_a, ddof=1)) if len(top1_a) > 1 else math.nan,
            "difference": effect.effect, "difference sd": effect.std, "se_seed": effect.se_seed,
            "se_test": effect.se_test, "half-width": effect.half_width,
            "seeds for target": math.nan if needed is None else float(needed)}


def cheapest_point(table: pd.DataFrame, half_width: float = MAIN_HALF_WIDTH) -> Optional[pd.Series]:
    """The cheapest recipe point whose interval's half-width is at most ``half_width``; ``None`` when no recipe
    point reaches it. Cost is the training images a comparison processes (both arms, every seed, every epoch),
    which no machine load changes; the measured seconds break ties."""
    recipes = table[(table["kind"] == "recipe") & (table["half-width"] <= half_width)]
    if recipes.empty:
        return None
    return recipes.sort_values(["comparison images", "comparison seconds"]).iloc[0]


def choice_text(table: pd.DataFrame, half_width: float = MAIN_HALF_WIDTH) -> str:
    """One paragraph: the cheapest recipe point that reaches ``half_width``, against the study's own recipe
    (the row marked ``own recipe``)."""
    own = table[table["own recipe"].astype(str) == "True"]
    if own.empty:
        raise ValueError("the knob table has no point marked as the study's own recipe")
    mine = own.iloc[0]
    current = mine["point"]
    best = cheapest_point(table, half_width)
    here = (f"The study's own recipe ({current}) gives a half-width of {mine['half-width']:.2f} points "
            f"for {mine['comparison images'] / 1000:.0f} thousand training images per comparison.")
    seeds = int(mine["seeds"])
    needed = mine["seeds for target"]
    here += (f" Of its standard error ({math.hypot(mine['se_seed'], mine['se_test']):.2f} points), the test images' "
             f"part is {mine['se_test']:.2f} and the seeds' {mine['se_seed']:.2f}: more seeds alone would need "
             + (f"{int(needed)} seeds" if not math.isnan(needed)
                else f"more than {MAX_SEEDS_ESTIMATE} seeds" if _Z95 * mine["se_test"] < half_width
                else "more seeds than it can estimate, if any number would do (the test images' part alone is "
                     f"+-{_Z95 * mine['se_test']:.1f})")
             + f" to reach +-{half_width:g}, while more test images (free on the synthetic set) shrink the other part.")
    low, high = _sd_factors(seeds) if seeds > 1 else (math.nan, math.nan)
    caveat = (f" With {seeds} seeds each spread is known only to within a factor of {low:.1f} to {high:.1f} (95 %), "
              f"so the choice is indicative." if seeds > 1 else "")
    if best is None:
        widest = table[table["kind"] == "recipe"]["half-width"].min()
        return (f"{here} No recipe point of the grid reaches +-{half_width:g} points with {seeds} "
                f"seeds (the narrowest: {widest:.2f}); more seeds are the lever (column 'seeds for target').{caveat}")
    if best["point"] == current:
        return f"{here} It is the cheapest point of the grid that reaches +-{half_width:g} points.{caveat}"
    return (f"{here} The cheapest point that reaches +-{half_width:g} points is {best['point']} "
            f"(half-width {best['half-width']:.2f}, {best['comparison images'] / 1000:.0f} thousand training images "
            f"per comparison; there the difference itself is {best['difference']:.2f} points against "
            f"{mine['difference']:.2f} at the study's recipe, and arm a's top-1 {best['a top-1']:.1f} % against "
            f"{mine['a top-1']:.1f} %).{caveat}")


def _sd_factors(seeds: int) -> Tuple[float, float]:
    """The 95 % interval of a true standard deviation as factors of one estimated from ``seeds`` values
    (chi-square with seeds - 1 degrees of freedom)."""
    from scipy import stats

    df = seeds - 1
    return math.sqrt(df / stats.chi2.ppf(0.975, df)), math.sqrt(df / stats.chi2.ppf(0.025, df))
