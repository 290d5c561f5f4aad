"""The one study runner: parameters -> plan -> runs (in parallel) -> tables -> claims, for any paper.

A notebook's set-up cell is one call::

    study = Study(clan.PAPER, profile=profile, dataset=dataset, backbone=backbone, ...)

which checks every parameter (:mod:`fgvc_lib.study.parameters`) and plans the runs from the paper's
declaration (:mod:`fgvc_lib.study.paper`). ``study.run()`` trains or loads every (dataset, variant,
seed) through an executor (:mod:`fgvc_lib.study.executors`), one line per run start and finish and a
bar over runs; ``study.table(name)`` rebuilds a printed table in the results format;
``study.claims_table()`` evaluates the paper's claims on paired seeds. Localization scores and other
per-seed measurements are recorded with ``study.record(name, values)`` so that claims can refer to
them. Nothing here knows a paper: everything paper-specific arrives through the :class:`Paper`.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch

from .. import paths
from ..backbones import is_vgg
from .executors import RunFailed, make_executor, runs_at_once, worker_traceback
from .jobs import (LOG_NAME, OUTPUTS_NAME, RECORD_NAME, BackboneSpec, DataSpec, RunJob, RunRecord, execute_run,
                   no_weights, outputs_name, read_record, run_key, save_view_outputs)
from .paper import (TOP1, Accuracy, Cell, Claim, Fixed, Paper, Score, Variant, cells_by_table,  # noqa: F401
                    tier_seeds)
from .parameters import Settings, resolve
from .recipes import describe_trials

# Keys of Profile.synthetic that define the target task: its size, and which attributes make its classes. The rest
# are the rendering knobs the embedded pretraining copies so that its birds are drawn like the target task's. Its
# classes combine every attribute whatever the target's (it stands for ImageNet, which knows nothing of the target's
# classes). One pretraining on classes that differed in the head's attributes alone sat near its plateau (25 %
# training accuracy after 28 of 30 epochs in its log, 2026-12-05; stopped, so no file keeps it), another (more
# clutter) reached 55 %, the one on every attribute 65 % (fgvc_lib.calibration).
TASK_KEYS = ("num_classes", "train_per_class", "test_per_class", "image_size", "seed", "class_attributes")


def backbone_spec_for(settings: Settings, name: Optional[str] = None) -> BackboneSpec:
    """How the study builds backbone ``name`` (default: the notebook's ``backbone``) under ``settings``:
    the profile's width, batch norm and weights (the embedded pretraining's options included), and the
    settings' output stride where it applies (VGG). A paper whose model has a second network (e.g. a
    patch stream) builds it from the same spec."""
    profile, name = settings.profile, name or settings.backbone
    options: Tuple = ()
    if profile.pretrained == "synthetic":
        rendering = tuple(sorted((k, v) for k, v in profile.synthetic.items() if k not in TASK_KEYS))
        options = tuple(sorted({"image_size": settings.image_size, "rendering": rendering,
                                **profile.pretraining}.items()))
    stride = settings.output_stride if is_vgg(name) else None
    return BackboneSpec(name, profile.width, profile.uses_batch_norm(name), profile.pretrained, options, stride)


@dataclass
class DataBundle:
    """A dataset's splits and loaders as this process reads them (figures, counts, CAM samples)."""

    name: str
    train_set: object
    test_set: object
    train_loader: object
    test_loader: object

    @property
    def num_classes(self) -> int:
        return len(self.train_set.classes)


class Run:
    """A finished run as the notebook sees it: test outputs, history, and the model (loaded lazily)."""

    def __init__(self, study: "Study", dataset: str, variant: Variant, record: RunRecord):
        self.study, self.dataset, self.variant, self.record = study, dataset, variant, record
        self.seed = record.seed
        self.run_dir = Path(record.run_dir)
        self._views: Dict[str, Dict[str, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"Run({self.variant.name!r}, seed={self.seed}, {self.record.accuracy:.2f} %)"

    @cached_property
    def outputs(self) -> Dict[str, torch.Tensor]:
        """Test logits of the final prediction (``"final"``) and of every branch, and ``"targets"``."""
        return torch.load(self.run_dir / OUTPUTS_NAME, map_location="cpu", weights_only=True)

    @cached_property
    def history(self):
        import json

        from ..engine import History

        return History(json.loads((self.run_dir / RECORD_NAME).read_text())["history"])

    @cached_property
    def model(self) -> torch.nn.Module:
        """The trained network in eval mode on :attr:`Study.device`, where the views run it (the
        checkpoint is loaded straight onto that device)."""
        from ..engine import CHECKPOINT_NAME

        device = self.study.device
        model = self.study.untrained_model(self.variant.name, self.dataset, device=device)
        state = torch.load(self.run_dir / CHECKPOINT_NAME, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        return model.eval()

    @property
    def metrics(self) -> Dict[str, float]:
        """Top-1 accuracy (fraction) of the final prediction (``acc``) and of each branch (``acc/<b>``)."""
        from ..engine import accuracy

        targets = self.outputs["targets"]
        return {("acc" if k == "final" else f"acc/{k}"): accuracy(v, targets)
                for k, v in self.outputs.items() if k != "targets"}

    def view_outputs(self, view: Optional[str] = None) -> Dict[str, torch.Tensor]:
        """:attr:`outputs` on the test images seen in ``view`` (None: the usual ones). A view the run
        did not score when it finished (declared later) is scored now and kept in the run folder."""
        if view is None:
            return self.outputs
        if view not in self._views:
            path = self.run_dir / outputs_name(view)
            if path.is_file():
                self._views[view] = torch.load(path, map_location="cpu", weights_only=True)
            else:
                spec = dataclasses.replace(self.study.data_spec(self.dataset), options=self.variant.data)
                self._views[view] = save_view_outputs(self.model, spec, view, self.run_dir)
        return self._views[view]

    def logits(self, branches: Optional[Sequence[str]] = None, view: Optional[str] = None) -> torch.Tensor:
        """Test logits of the final prediction, or of ``branches`` combined (the paper's rule, else the
        mean of their softmax); on the test images seen in ``view`` when given."""
        outputs = self.view_outputs(view)
        if not branches:
            return outputs["final"]
        missing = [b for b in branches if b not in outputs]
        if missing:
            raise KeyError(f"run {self.variant.name} has no branch {missing}; it has "
                           f"{[k for k in outputs if k not in ('final', 'targets')]}")
        if len(branches) == 1:
            return outputs[branches[0]]
        if self.study.paper.combine is not None:
            return self.study.paper.combine({b: outputs[b] for b in branches}, tuple(branches))
        return torch.stack([outputs[b].softmax(1) for b in branches]).mean(0)

    def correct(self, branches: Optional[Sequence[str]] = None, view: Optional[str] = None) -> np.ndarray:
        """Per test image: 100 if the prediction (``branches`` and ``view`` as in :meth:`logits`) is
        right, else 0."""
        hits = self.logits(branches, view).argmax(1) == self.view_outputs(view)["targets"]
        return 100.0 * hits.numpy().astype(np.float64)

    def accuracy(self, branches: Optional[Sequence[str]] = None, view: Optional[str] = None) -> float:
        """Top-1 accuracy in percent: the final prediction, or ``branches`` combined (paper's rule)."""
        from ..engine import accuracy

        return 100.0 * accuracy(self.logits(branches, view), self.view_outputs(view)["targets"])


class Study:
    """One notebook's study of one paper (see the module docstring)."""

    def __init__(self, paper: Paper, **parameters):
        self.paper = paper
        self.settings: Settings = resolve(paper, parameters)
        self.variants: Dict[str, Variant] = {}
        for variant in paper.plan(self.settings):
            if variant.name in self.variants:
                raise ValueError(f"paper {paper.key} plans variant {variant.name!r} twice")
            # the variant's seed tier keeps the first of its seeds (fgvc_lib.study.paper.SEED_TIERS)
            self.variants[variant.name] = dataclasses.replace(
                variant, seeds=tier_seeds(self.settings, variant.seed_tier, variant.seeds))

        for variant in self.variants.values():
            if variant.lr_from and not (variant.lr_from in self.variants and self.variants[variant.lr_from].lr_trials):
                raise ValueError(f"variant {variant.name!r} takes its learning rate from {variant.lr_from!r}, which the "
                                 f"plan does not train with lr_trials")
        self.cells: List[Cell] = list(paper.cells(self.settings))
        for cell in self.cells:
            if cell.printed is not None:   # a printed cell the paper does not declare stops here, not at the table
                self.paper.printed_value(cell.printed, self.datasets[0])
            if isinstance(cell.measure, Score):
                continue   # a measurement the notebook records (study.record) before it reports the table
            if cell.measure.variant not in self.variants:
                raise ValueError(f"cell {cell.table}/{cell.row} reads variant {cell.measure.variant!r}, "
                                 f"which the plan does not train")
            view = getattr(cell.measure, "view", None)
            if view is not None and view not in self.variants[cell.measure.variant].test_views:
                raise ValueError(f"cell {cell.table}/{cell.row} reads test view {view!r} of variant "
                                 f"{cell.measure.variant!r}, which does not score it (its test_views: "
                                 f"{self.variants[cell.measure.variant].test_views})")
        # torch threads of a run trained in this process (the profile's: the slim CPU networks train
        # best on one); the analysis here (CAMs, counts) keeps torch's default and uses every core.
        self.threads = self.settings.profile.threads
        self.runs: Dict[str, Dict[str, List[Run]]] = {}
        self.scores: Dict[Tuple[str, str], Dict[int, np.ndarray]] = {}   # per seed: per-image values
        self._data: Dict[str, DataBundle] = {}
        self.chosen_rates: Dict[str, float] = {}        # variant -> learning rate chosen on validation
        self._trial_scores: Dict[str, Tuple[List[Tuple[float, float]], float]] = {}
        self.recipe_trials: Optional[pd.DataFrame] = None
        self._run_dirs: set = set()                   # every run folder train_jobs trained or loaded

    # ------------------------------------------------------------------ names and folders
    @property
    def profile(self):
        return self.settings.profile

    @property
    def datasets(self) -> List[str]:
        return [d.name for d in self.settings.datasets]

    @property
    def results_dir(self) -> Path:
        """``results/<notebook>/`` (another profile's: ``results/<notebook>/<profile>/``); a study whose profile is a
        changed copy (:func:`fgvc_lib.profiles.with_pretraining_seed`) has none, so it can never overwrite the
        results of the profile it copies: :mod:`fgvc_lib.replication` writes its claims elsewhere."""
        from ..profiles import is_registered

        if not is_registered(self.profile):
            raise ValueError(f"this study's profile is a changed copy of {self.profile.name!r} (e.g. another "
                             f"pretraining draw) and writes no results folder; measure it with fgvc_lib.replication")
        return paths.results_dir(self.paper.notebook, self.profile.name)

    @property
    def runs_dir(self) -> Path:
        return paths.runs_dir(self.paper.notebook, self.profile.name)

    @property
    def device(self) -> torch.device:
        """Where this process runs the trained models (:attr:`Run.model`) and so their views (CAMs,
        localization, stage maps): ``fgvc_lib.engine.resolve_device("auto")``, CUDA when available."""
        from ..engine import resolve_device

        return resolve_device("auto")

    def describe(self) -> str:
        from ..profiles import is_registered

        lines = [f"{self.paper.notebook}: {self.paper.title}", self.settings.describe(), f"torch threads: {self.threads or torch.get_num_threads()} per training "
                 f"run, {torch.get_num_threads()} for the analysis in this process",
                 f"results: {self.results_dir if is_registered(self.profile) else 'none (a changed profile)'}",
                 f"runs: {self.runs_dir}"]
        if self.profile.pretraining.get("seed") is not None:
            lines.append(f"pretraining seed: {self.profile.pretraining['seed']}")
        per_seed = sum(len(v.seeds) for v in self.variants.values())
        lines.append(f"{len(self.variants)} variant(s), {per_seed} run(s) per dataset, "
                     f"{per_seed * len(self.datasets)} in all")
        return "\n".join(lines)

    # ------------------------------------------------------------------ data and backbone
    def data_spec(self, dataset: str) -> DataSpec:
        choice = next(d for d in self.settings.datasets if d.name == dataset)
        synthetic = ()
        if dataset == "synthetic" and choice.root is None:
            synthetic = tuple(sorted(self.profile.synthetic.items()))
        return DataSpec(dataset, choice.root, self.settings.image_size, self.settings.batch_size, synthetic,
                        self.profile.max_batches)

    @cached_property
    def backbone_spec(self) -> BackboneSpec:
        return backbone_spec_for(self.settings)

    def data(self, dataset: Optional[str] = None) -> DataBundle:
        """The loaders of ``dataset`` (default: the first) in this process, built once."""
        dataset = dataset or self.datasets[0]
        if dataset not in self._data:
            train_loader, test_loader = self.data_spec(dataset).loaders()
            self._data[dataset] = DataBundle(dataset, train_loader.dataset, test_loader.dataset, train_loader,
                                             test_loader)
        return self._data[dataset]

    def data_summary(self) -> str:
        return "\n".join(f"{d}: {self.data(d).num_classes} classes, {len(self.data(d).train_set)} training and "
                         f"{len(self.data(d).test_set)} test images" for d in self.datasets)

    # ------------------------------------------------------------------ the plan
    def plan_table(self) -> pd.DataFrame:
        """One line per variant: what it is, its seeds and epochs, the tables that read it."""
        tables: Dict[str, List[str]] = {}
        for cell in self.cells:
            if isinstance(cell.measure, Score):
                continue
            names = tables.setdefault(cell.measure.variant, [])
            if cell.table not in names:
                names.append(cell.table)
        rows = [{"variant": v.name, **dict(v.details), "seeds": ",".join(map(str, v.seeds)), "epochs": v.train.epochs,
                 "lr": describe_trials(v, self.chosen_rates), "tables": ", ".join(tables.get(v.name, []))}
                for v in self.variants.values()]
        return pd.DataFrame(rows).set_index("variant").fillna("-")

    def jobs(self) -> List[Tuple[str, RunJob]]:
        """Every (dataset, run) of the plan, with its folder; datasets first, then variants, then seeds."""
        jobs = []
        for dataset in self.datasets:
            for variant in self.variants.values():
                data = dataclasses.replace(self.data_spec(dataset), options=variant.data)
                folder = self.runs_dir / dataset / run_key(variant, data, self.backbone_spec)
                for seed in variant.seeds:
                    jobs.append((dataset, RunJob(variant, seed, data, self.backbone_spec, str(folder / f"seed{seed}"))))
        return jobs

    # ------------------------------------------------------------------ training
    def run(self) -> "Study":
        """Train, resume or load every run (in parallel where the executor allows) and keep them; the
        variants with ``lr_trials`` first get their rate chosen on a validation split
        (:meth:`select_recipes`). With the notebook's ``plan_only``, prints :meth:`cost_plan` and raises
        :class:`~fgvc_lib.study.cost_plan.PlanOnly` instead: nothing is trained."""
        if self.settings.execution.plan_only:
            from .cost_plan import PlanOnly, plan_only_message

            self.cost_plan()
            raise PlanOnly(plan_only_message(self.paper.notebook))
        for dataset in self.datasets:
            self.data(dataset)  # generates a synthetic set once, here, before any worker needs it
        self.select_recipes()
        jobs = self.jobs()
        records = self.train_jobs(jobs, "runs")
        self.runs = {}
        for index, (dataset, job) in enumerate(jobs):
            run = Run(self, dataset, job.variant, records[index])
            self.runs.setdefault(dataset, {}).setdefault(job.variant.name, []).append(run)
        return self

    def cost_plan(self, probe_steps: Optional[int] = None) -> pd.DataFrame:
        """Print and return the cost table (:func:`fgvc_lib.study.cost_plan.cost_plan`): per variant its runs,
        epochs, training images, recipe trials and the hours they take on this machine, from a short throughput
        probe of each distinct model (``probe_steps`` timed steps); nothing is trained."""
        from .cost_plan import PROBE_STEPS, cost_plan, plan_text

        table = cost_plan(self, probe_steps=probe_steps or PROBE_STEPS)
        print(plan_text(table), flush=True)
        return table

    def select_recipes(self) -> pd.DataFrame:
        """Choose the learning rate of every variant that lists ``lr_trials`` (:mod:`fgvc_lib.study.recipes`):
        one run per candidate on the variant's first seed and the first dataset, trained without a held-out
        share of the training split and scored on it (and one more beyond an end of the grid that wins,
        :func:`~fgvc_lib.study.recipes.edge_extension`); the best rate replaces the variant's, and that of every
        variant that names it in ``lr_from``. Returns (and keeps as ``self.recipe_trials``) the table of trials;
        the test split is not read."""
        from ..data.validation import validation_indices
        from .recipes import VALIDATION_SHARE, choose, edge_extension, trial_variants, trials_table, with_rate

        tuned = [v for v in self.variants.values() if v.lr_trials and v.name not in self.chosen_rates]
        trials = {v.name: trial_variants(v) for v in tuned}    # every trial of each tuned variant, in order
        pending = [t for group in trials.values() for t in group]
        scores: Dict[str, float] = {}
        while pending:   # the planned grids, then one more rate for each grid whose end won (recipes.edge_extension)
            dataset = self.datasets[0]
            jobs = []
            for trial in pending:
                data = dataclasses.replace(self.data_spec(dataset), options=trial.data)
                folder = self.runs_dir / dataset / run_key(trial, data, self.backbone_spec)
                jobs.append((dataset, RunJob(trial, trial.seeds[0], data, self.backbone_spec,
                                             str(folder / f"seed{trial.seeds[0]}"))))
            print(f"recipe selection: {len(jobs)} trial run(s) on a validation split of the training images",
                  flush=True)
            records = self.train_jobs(jobs, "trials")
            # a trial that diverged is not a candidate (it stopped at its first non-finite loss)
            scores.update({job.variant.name: (records[index].accuracy if records[index].diverged_epoch is None
                                              else float("-inf")) for index, (_, job) in enumerate(jobs)})
            pending = []
            for variant in tuned:
                further = edge_extension({t.train.lr: scores[t.name] for t in trials[variant.name]},
                                         len(variant.lr_trials))
                if further is not None:
                    print(f"recipe selection: {variant.name}'s best rate is an end of its grid: trying {further:g}",
                          flush=True)
                    trials[variant.name] += trial_variants(variant, rates=(further,))
                    pending += trials[variant.name][-1:]
        for variant in tuned:
            scored = [(t.train.lr, scores[t.name]) for t in trials[variant.name]]
            self.chosen_rates[variant.name] = choose(dict(scored))
            self._trial_scores[variant.name] = (scored, self.chosen_rates[variant.name])
            tried = tuple(lr for lr, _ in scored)   # the grid and its extensions: the plan table lists them
            self.variants[variant.name] = dataclasses.replace(with_rate(variant, self.chosen_rates[variant.name]),
                                                              lr_trials=tried)
        for variant in list(self.variants.values()):   # the variants that share another's recipe
            if variant.lr_from and variant.lr_from in self.chosen_rates and variant.name not in self.chosen_rates:
                self.variants[variant.name] = with_rate(variant, self.chosen_rates[variant.lr_from])
        held_out = len(validation_indices(self.data(self.datasets[0]).train_set.targets, VALIDATION_SHARE)[1]) \
            if self._trial_scores else 0
        self.recipe_trials = trials_table(self._trial_scores, {n: self.variants[n].seeds[0]
                                                               for n in self._trial_scores}, held_out)
        return self.recipe_trials

    def write_recipe_trials(self) -> Optional[pd.DataFrame]:
        """Write the recipe-selection trials (:meth:`select_recipes`) as ``recipe_trials.csv`` and return them
        by variant and rate; None when no variant chose its rate."""
        from ..reporting import write_csv
        from .recipes import TRIAL_COLUMNS

        if self.recipe_trials is None or self.recipe_trials.empty:
            return None
        write_csv(self.recipe_trials, self.results_dir / "recipe_trials.csv", TRIAL_COLUMNS, "recipe trials table")
        return self.recipe_trials.set_index(["variant", "lr"]).round(2)

    def train_jobs(self, jobs: List[Tuple[str, RunJob]], what: str) -> Dict[int, RunRecord]:
        """Train, resume or load ``jobs`` ((dataset, job) pairs, e.g. :meth:`jobs` or another recipe's:
        :mod:`fgvc_lib.study.knobs`) with the study's executor; their records by index."""
        from tqdm import tqdm

        records: Dict[int, RunRecord] = {}
        self._run_dirs.update(job.run_dir for _, job in jobs)   # their machines go to machines.json
        todo = []
        for index, (dataset, job) in enumerate(jobs):
            done = read_record(job.run_dir)
            if done is not None:
                records[index] = done
            else:
                todo.append(index)
        total = len(jobs)
        print(f"{total} run(s): {total - len(todo)} finished earlier (loaded), {len(todo)} to train", flush=True)
        if todo:
            if self.profile.pretrained:
                # Here, before any worker: the one-off embedded pretraining, or a clear stop when the
                # ImageNet weights are neither cached nor downloadable.
                self.backbone_spec.build()
            executor = make_executor(self.settings.execution, len(todo), self.runs_dir / "submitit", self.threads)
            print(f"executor: {executor.kind}, {min(executor.capacity, len(todo))} run(s) at a time; "
                  f"per-run logs: <run folder>/{LOG_NAME}", flush=True)
            bar = tqdm(total=total, initial=total - len(todo), desc=what, unit="run", file=sys.stdout)
            try:
                self._execute(executor, jobs, todo, records, bar)
            except BaseException:
                executor.shutdown(abort=True)
                raise
            executor.shutdown()
        return records

    def _execute(self, executor, jobs, todo: List[int], records: Dict[int, RunRecord], bar) -> None:
        pending = list(todo)
        in_flight: Dict[int, Tuple[object, float, int]] = {}   # job index -> (future, start time, slot)
        free_slots = list(range(len(executor.devices)))
        total = len(jobs)
        try:
            while pending or in_flight:
                while pending and len(in_flight) < executor.capacity:
                    index = pending.pop(0)
                    dataset, job = jobs[index]
                    slot = free_slots.pop(0) if free_slots else 0
                    device = executor.devices[slot % len(executor.devices)]
                    execution = self.settings.execution
                    job = dataclasses.replace(
                        job, device=device, threads=executor.threads,
                        progress=executor.kind == "inline" and self.profile.name == "paper",
                        loader_workers=getattr(execution, "loader_workers", None),
                        runs_at_once=runs_at_once(executor.kind, executor.capacity, total),
                        compile=bool(getattr(execution, "compile", False)))
                    bar.write(f"[run {index + 1}/{total}] start  {self._label(dataset, job)}")
                    started = time.perf_counter()   # before submit: an in-process executor trains inside it
                    in_flight[index] = (executor.submit(execute_run, job), started, slot)
                finished = [i for i, (future, _, _) in in_flight.items() if _settled(future)]
                if not finished:
                    time.sleep(0.2)
                    continue
                for index in finished:
                    future, started, slot = in_flight.pop(index)
                    free_slots.append(slot)
                    dataset, job = jobs[index]
                    try:
                        record = future.result()
                    except Exception as err:  # noqa: BLE001 - re-raised with the worker's traceback
                        raise RunFailed(f"run {self._label(dataset, job)} failed (its log: "
                                        f"{Path(job.run_dir) / LOG_NAME}). The worker's traceback:\n"
                                        f"{worker_traceback(err)}") from None
                    records[index] = record
                    how = "loaded (finished by another process)" if record.loaded else \
                        f"{time.perf_counter() - started:.0f} s"
                    if record.diverged_epoch is not None:
                        how += (f"; DIVERGED in epoch {record.diverged_epoch} (kept the model of that epoch's "
                                f"start)")
                    bar.write(f"[run {index + 1}/{total}] finish {self._label(dataset, job)}: "
                              f"{record.accuracy:.2f} % top-1, {how}")
                    bar.update(1)
        finally:
            bar.close()

    def _label(self, dataset: str, job: RunJob) -> str:
        where = f" [{dataset}]" if len(self.datasets) > 1 else ""
        return f"{job.variant.name} seed {job.seed}{where}"

    def _require_runs(self) -> None:
        if not self.runs:
            raise RuntimeError("no runs yet: call study.run() first")

    def untrained_model(self, variant: str, dataset: Optional[str] = None,
                        device: Union[str, torch.device, None] = None) -> torch.nn.Module:
        """``variant``'s network on a freshly built backbone, without pretrained weights: for a
        checkpoint to be loaded into, or for counting parameters and multiply-adds. Built on the CPU,
        then moved to ``device`` when given (:attr:`Run.model` passes :attr:`device`)."""
        with no_weights():   # also the backbones a model factory builds itself (04's local stream)
            model = self.variants[variant].model(self.backbone_spec.build(), self.data(dataset).num_classes)
        return model if device is None else model.to(device)

    def runs_of(self, variant: str, dataset: Optional[str] = None) -> List[Run]:
        self._require_runs()
        dataset = dataset or self.datasets[0]
        if variant not in self.runs[dataset]:
            raise KeyError(f"variant {variant!r} was not trained; trained: {', '.join(self.runs[dataset])}")
        return self.runs[dataset][variant]

    def runs_summary(self, dataset: Optional[str] = None) -> pd.DataFrame:
        """One line per run: top-1 of the final prediction, of every branch and on every other test view
        (percent), time."""
        rows = []
        trained = self.runs[dataset or self.datasets[0]]
        any_diverged = any(run.record.diverged_epoch is not None for runs in trained.values() for run in runs)
        for variant, runs in trained.items():
            for run in runs:
                line = {"variant": variant, "seed": run.seed, "final": run.record.accuracy}
                line.update({k.split("/", 1)[1]: 100.0 * v for k, v in run.metrics.items() if k.startswith("acc/")})
                line.update({f"final ({view})": run.accuracy(view=view) for view in run.variant.test_views})
                line["train_s"] = run.record.seconds
                if any_diverged:
                    line["diverged in epoch"] = run.record.diverged_epoch
                rows.append(line)
        return pd.DataFrame(rows).set_index(["variant", "seed"]).round(2)

    # ------------------------------------------------------------------ measurements
    def record(self, name: str, values: Mapping[int, object], dataset: Optional[str] = None) -> None:
        """Keep a measurement that claims can refer to as :class:`~fgvc_lib.study.paper.Score`:
        ``{seed: per-image values}`` (the same test images, in the same order, for every seed; e.g. a
        localization score of each image, in points), or ``{seed: value}`` when there is no per-image
        value (then a claim's interval cannot count the test set's variation)."""
        key = (dataset or self.datasets[0], name)
        arrays = {}
        for seed, value in values.items():
            array = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
            if array.size == 0 or not np.isfinite(array).all():
                raise ValueError(f"score {name!r}, seed {seed}: values must be finite numbers; got {array[:5]}")
            arrays[int(seed)] = array
        if len({a.size for a in arrays.values()}) > 1:
            raise ValueError(f"score {name!r}: every seed must score the same images; got "
                             f"{ {s: a.size for s, a in arrays.items()} } values per seed")
        self.scores[key] = arrays

    def per_image(self, measure: Union[Accuracy, Score], dataset: Optional[str] = None,
                  seeds: Optional[Sequence[int]] = None) -> Dict[int, np.ndarray]:
        """``{seed: per-image values}`` of a measurement (points), only ``seeds`` when given."""
        dataset = dataset or self.datasets[0]
        if isinstance(measure, Score):
            found = self.scores.get((dataset, measure.name))
            if found is None:
                raise KeyError(f"no score {measure.name!r} recorded for {dataset} "
                               f"({sum(d == dataset for d, _ in self.scores)} other scores are)")
        elif isinstance(measure, Accuracy):
            found = {run.seed: run.correct(measure.branches, measure.view)
                     for run in self.runs_of(measure.variant, dataset)}
        else:
            raise TypeError(f"{measure!r} has no per-image values")
        return {s: v for s, v in found.items() if seeds is None or s in seeds}

    def values(self, measure: Union[Accuracy, Score, Fixed], dataset: Optional[str] = None,
               seeds: Optional[Sequence[int]] = None) -> Dict[int, float]:
        """``{seed: value}`` of a measurement (only ``seeds`` when given): the mean over images."""
        if isinstance(measure, Fixed):
            return {0: float(measure.value)}
        return {s: float(v.mean()) for s, v in self.per_image(measure, dataset, seeds).items()}

    # ------------------------------------------------------------------ tables
    @property
    def tables(self) -> List[str]:
        return list(cells_by_table(self.cells))

    def table(self, name: str) -> pd.DataFrame:
        """Table ``name`` in the results format, one row per cell and dataset (paper beside ours)."""
        from ..reporting import result_rows

        cells = cells_by_table(self.cells).get(name)
        if not cells:
            raise KeyError(f"no cell of table {name!r} in this plan; tables: {', '.join(self.tables) or 'none'}")
        entries = []
        for dataset in self.datasets:
            for cell in cells:
                if cell.dataset not in (None, dataset):
                    continue
                values = self.values(cell.measure, dataset, cell.seeds)
                entries.append({"row": cell.row, "dataset": dataset, "metric": cell.metric,
                                "values": [values[s] for s in sorted(values)],
                                "paper": self.paper.cell_number(cell, dataset),
                                "paper_setting": cell.paper_setting})
        return result_rows(entries, table=name, backbone=self.settings.backbone, profile=self.profile.name)

    def report(self, name: str, decimals: int = 2, view: Optional[Callable] = None) -> Optional[pd.DataFrame]:
        """Rebuild table ``name``, write it as CSV and return it arranged for reading: by ``view(table,
        decimals=...)`` when given (a paper's own layout), else paper beside ours
        (:func:`fgvc_lib.reporting.paper_vs_reproduced`); for a table this configuration does not
        rebuild, print why and return None."""
        from ..reporting import paper_vs_reproduced

        if name not in self.tables:
            print(f"{name} not rebuilt: {self.paper.skipped(self.settings).get(name, 'no cell of it in this plan')}")
            return None
        df = self.table(name)
        self.write(df, name)
        return (view or paper_vs_reproduced)(df, decimals=decimals)

    def write(self, df: pd.DataFrame, name: str) -> Path:
        """Write a results table as ``<results dir>/<name>.csv``."""
        from ..reporting import write_table

        return write_table(df, self.results_dir / f"{name}.csv")

    def save_figure(self, figure, name: str) -> Path:
        from ..reporting import save_figure

        return save_figure(figure, self.results_dir / f"{name}.png")

    # ------------------------------------------------------------------ claims
    def claim_effect(self, claim: Claim):
        """``claim`` measured under the verdict rule (:mod:`fgvc_lib.statistics`): per dataset, the
        (seeds x images) paired differences B - A averaged over the claim's pairs. A claim between two
        :class:`Fixed` numbers is decided by their difference. Raises KeyError when a measurement is
        missing and ValueError when the two sides share no seed."""
        from ..statistics import fixed_effect, paired_effect

        datasets = [claim.dataset] if claim.dataset else self.datasets
        if all(isinstance(m, Fixed) for pair in claim.pairs for m in pair):
            diffs = [b.value - a.value for a, b in claim.pairs]
            return fixed_effect(float(np.mean(diffs)), claim.direction, claim.kind, claim.smallest_effect)
        groups = []
        for dataset in datasets:
            # per pair and side: {seed: per-image values}, or the Fixed number (the same for every seed)
            sides = [[m.value if isinstance(m, Fixed) else self.per_image(m, dataset, claim.seeds) for m in pair]
                     for pair in claim.pairs]
            measured = [set(side) for pair in sides for side in pair if isinstance(side, dict)]
            seeds = sorted(set.intersection(*measured))
            if not seeds:
                raise ValueError("no seed shared by both sides")
            rows = []
            for seed in seeds:
                diffs = []
                for a, b in sides:
                    va, vb = _values_of(a, seed), _values_of(b, seed)
                    if isinstance(a, dict) and isinstance(b, dict) and va.size != vb.size:
                        raise ValueError(f"the two sides score different numbers of images ({va.size} and {vb.size})")
                    diffs.append(vb - va)
                if len({d.size for d in diffs}) > 1:
                    raise ValueError(f"the measurements of this claim score different numbers of images "
                                     f"({sorted({d.size for d in diffs})})")
                rows.append(np.mean(diffs, axis=0))
            groups.append(np.stack(rows))
        return paired_effect(groups, claim.direction, claim.kind, claim.smallest_effect)

    def prediction_disagreement(self, a: Accuracy, b: Accuracy, dataset: Optional[str] = None,
                                seeds: Optional[Sequence[int]] = None) -> List[float]:
        """Per shared seed (and dataset, when ``dataset`` is None): percent of the test images whose
        predicted class differs between ``a`` and ``b``."""
        shares = []
        for name in [dataset] if dataset else self.datasets:
            runs_a = {run.seed: run for run in self.runs_of(a.variant, name)}
            runs_b = {run.seed: run for run in self.runs_of(b.variant, name)}
            for seed in sorted(set(runs_a) & set(runs_b)):
                if seeds is not None and seed not in seeds:
                    continue
                pred_a = runs_a[seed].logits(a.branches, a.view).argmax(1)
                pred_b = runs_b[seed].logits(b.branches, b.view).argmax(1)
                shares.append(100.0 * float((pred_a != pred_b).double().mean()))
        if not shares:
            raise ValueError("no seed shared by both sides")
        return shares

    def untestable_similarity(self, claim: Claim) -> Optional[str]:
        """Why a claim of no accuracy difference between two read-outs of the same trained model (e.g. one
        step's feature against another's) cannot be tested, or None: when on every seed the two predict
        the same class on all but fewer than m percent of the test images, their accuracies cannot differ
        by m, so "as accurate" holds by construction (the read-outs carry the same feature), not as a
        finding. Two separately trained networks that agree that closely are a finding: not checked."""
        if claim.kind != "similar" or claim.measured_as != "accuracy":
            return None
        sides = [m for pair in claim.pairs for m in pair]
        if not all(isinstance(m, Accuracy) for m in sides) or any(a.variant != b.variant for a, b in claim.pairs):
            return None
        shares = [share for a, b in claim.pairs for share in self.prediction_disagreement(a, b, claim.dataset,
                                                                                          claim.seeds)]
        if max(shares) >= claim.smallest_effect:
            return None
        return (f"not testable here: the two read-outs of one model predict different classes on at most "
                f"{max(shares):.2f} % of the test images (largest over seeds), fewer than the smallest effect of "
                f"interest ({claim.smallest_effect:g} point), so their accuracies are alike by construction")

    def claim_entry(self, claim: Claim) -> Union[dict, str]:
        """A claims-table row for ``claim`` (:func:`fgvc_lib.reporting.claim_row`), or the reason it
        is not measured (a missing measurement, or a claim of no difference that the arms' near-identical
        predictions make untestable, :meth:`untestable_similarity`)."""
        from ..reporting import claim_row

        try:
            untestable = self.untestable_similarity(claim)
            if untestable:
                return f"{claim.text}: {untestable}"
            effect = self.claim_effect(claim)
        except (KeyError, ValueError) as err:
            return f"{claim.text}: {err.args[0]}"
        if claim.printed:   # the paper's effect from its printed cells, in the column of the claim's dataset
            claim = dataclasses.replace(claim, printed=(), paper_effect=self.paper.paper_effect(
                claim, claim.dataset or self.datasets[0]))
        return claim_row(claim, effect)

    def claims_table(self, extra: Sequence[Claim] = ()) -> Tuple[pd.DataFrame, List[str]]:
        """The claims table (:data:`fgvc_lib.reporting.CLAIM_COLUMNS`) of the paper's claims plus
        ``extra``, and the claims not measured (with the reason)."""
        from ..reporting import claims_table

        claims, not_measured = self.paper.claims(self.settings)
        entries, skipped = [], list(not_measured)
        for claim in list(claims) + list(extra):
            entry = self.claim_entry(claim)
            (skipped if isinstance(entry, str) else entries).append(entry)
        return claims_table(entries), skipped

    def write_claims(self, df: pd.DataFrame) -> Path:
        """Write the claims table and print its tally on both verdict axes."""
        from ..reporting import CLAIMS_NAME, claims_tally_text, is_synthetic, write_claims

        path = write_claims(df, self.results_dir / CLAIMS_NAME)
        print(claims_tally_text(df, synthetic=any(is_synthetic(d, self.profile.name) for d in self.datasets)))
        self.write_machines()
        return path

    def write_machines(self, path: Optional[Path] = None) -> Path:
        """Write ``machines.json`` (default: beside the results): the machines every run this study trained or
        loaded so far ran on (its runs, recipe trials and any other jobs, e.g. the knob grid's:
        :mod:`fgvc_lib.machine`), each with its count of runs, the count of runs whose records predate the
        machine's name in them, and the embedded pretraining they started from (its record, in a line). SUMMARY.md reads it (:func:`fgvc_lib.reporting.machines_line`)."""
        from ..pretraining import describe_record, describe_spec
        from ..reporting import MACHINES_NAME, write_machines
        from .jobs import read_machine, read_pretraining

        runs = sorted(self._run_dirs)
        found = [read_machine(run_dir) for run_dir in runs]
        named = [read_pretraining(run_dir) for run_dir in runs]
        lines = sorted({describe_record(p) for p in named if p is not None})
        if lines:   # what the runs' records say they started from
            unnamed = sum(p is None for p in named)
            pretraining = "; ".join(lines) + (f" ({unnamed} run(s) do not name theirs)" if unnamed else "")
        else:       # runs trained before records named it: this machine's cached one, said so
            cached = describe_spec(self.backbone_spec)
            pretraining = (f"{cached} (read from this machine's cache when this file was written: the runs' records "
                           f"do not name theirs)") if cached else ""
        from .recipes import PROTOCOL_VERSION

        return write_machines(found, path or self.results_dir / MACHINES_NAME, pretraining, self.testbed,
                              PROTOCOL_VERSION if self._trial_scores else None)

    @property
    def testbed(self) -> str:
        """The synthetic task this study's runs train on, in one line: the profile's generator settings, the
        network's input size and the embedded pretraining's file (its recipe and draw), which ``machines.json``
        records so that notebook 00's controls apply only to results of the same testbed
        (:func:`fgvc_lib.reporting.testbed_caveats`; the controls' verdicts moved with the pretraining draw, issue
        19); "" for a real dataset or a synthetic set read from a folder of the user's."""
        generated = [d for d in self.settings.datasets if d.name == "synthetic" and d.root is None]
        if not generated or not self.profile.synthetic:
            return ""
        line = "synthetic: " + ", ".join(f"{k}={v}" for k, v in sorted(self.profile.synthetic.items()))
        line += f"; input {self.settings.image_size} px"
        spec = self.backbone_spec
        if spec.pretrained == "synthetic":
            from ..pretraining import cache_path

            line += f"; pretraining {cache_path(spec.name, spec.width, spec.batch_norm, **dict(spec.pretraining)).name}"
        return line

    # ------------------------------------------------------------------ room for attention
    def room_table(self, dataset: Optional[str] = None) -> pd.DataFrame:
        """For each attention site the paper declares (read off the study's backbone, built without weights),
        its map size at this run's input and how many of its cells a discriminative part covers on the test set
        (:func:`fgvc_lib.room.room_table`); written as ``room.csv``."""
        from ..reporting import write_csv
        from ..room import ROOM_COLUMNS, room_table

        sites = self.paper.attention_sites(self.settings, self.backbone_spec.build(weights=False))
        table = room_table(sites, self.data(dataset).test_set, self.settings.image_size)
        write_csv(table, self.results_dir / "room.csv", ROOM_COLUMNS, what="room table")
        return table

    # ------------------------------------------------------------------ CAMs
    def cam_sample(self, dataset: Optional[str] = None, per_class: int = 0):
        """Test images for CAM figures (the profile's count, one per class), or ``per_class`` images
        of every class for scoring. The images stay on the CPU: each view moves them to its model's
        device (:attr:`device`) a batch at a time."""
        from ..localization import cam_sample

        test_set = self.data(dataset).test_set
        if per_class:
            return cam_sample(test_set, min(len(test_set), per_class * self.data(dataset).num_classes),
                              per_class=per_class)
        return cam_sample(test_set, self.profile.cam_images)

    def localization(self, models: Mapping[str, Tuple[str, Optional[str]]], sample, dataset: Optional[str] = None,
                     prefix: str = "", batch_size: Optional[int] = None) -> Dict[str, List[Dict[str, float]]]:
        """Grad-CAM localization scores (means over ``sample``) of every seed of each ``{label: (variant,
        branch)}``; every score is also recorded per image (percent) as ``"<prefix><label>: <score>"``,
        so that claims on it count the scored images' variation. The maps are computed on :attr:`device`
        (where :attr:`Run.model` is), ``batch_size`` images at a time (:func:`fgvc_lib.cam.view_batch_size`)."""
        from ..localization import localize

        scores: Dict[str, List[Dict[str, float]]] = {}
        for label, (variant, branch) in models.items():
            runs = self.runs_of(variant, dataset)
            per_image = [localize(run.model, sample, branch=branch, per_image=True, batch_size=batch_size)[1]
                         for run in runs]
            for metric in per_image[0]:
                self.record(f"{prefix}{label}: {metric}",
                            {run.seed: 100.0 * score[metric] for run, score in zip(runs, per_image)}, dataset)
            scores[label] = [{k: float(v.mean()) for k, v in score.items()} for score in per_image]
        return scores

    def record_all(self, scores: Mapping[str, Mapping[int, object]], dataset: Optional[str] = None) -> None:
        """:meth:`record` every ``{name: {seed: values}}`` of ``scores``."""
        for name, values in scores.items():
            self.record(name, values, dataset)

    def scores_table(self, metrics: Sequence[str], table: str = "localization") -> pd.DataFrame:
        """Recorded scores named ``"<row>: <metric>"`` with ``metric`` in ``metrics``, in the results
        format (one row per row and metric, values over seeds), in the order they were recorded."""
        from ..reporting import result_rows

        entries = []
        for (dataset, name), values in self.scores.items():
            row, _, metric = name.rpartition(": ")
            if row and metric in metrics:
                entries.append({"row": row, "dataset": dataset, "metric": metric,
                                "values": [float(values[s].mean()) for s in sorted(values)]})
        if not entries:
            raise ValueError(f"no recorded score has a metric in {list(metrics)}")
        return result_rows(entries, table=table, backbone=self.settings.backbone, profile=self.profile.name)


def _settled(future) -> bool:
    """Whether a run's handle is finished; a handle that fails to answer counts as finished, so that
    its ``result()`` raises the error where the runner reports it."""
    try:
        return future.done()
    except Exception:  # noqa: BLE001 - surfaced by result() next
        return True



def _values_of(side, seed: int) -> np.ndarray:
    """One side of a claim for ``seed``: its per-image values, or a Fixed number as one value."""
    return side[seed] if isinstance(side, dict) else np.array([float(side)])
