"""``make check``: does this machine reproduce the committed numbers?

It trains one run, the baseline's recipe trial of notebook 00 (``00_synthetic_dataset``) at the default
learning rate, exactly as the notebook trains it in the cpu profile, and compares its validation top-1 with the
one committed in ``results/00_synthetic_dataset/recipe_trials.csv``. Every run starts from the embedded
pretraining (:mod:`fgvc_lib.pretraining`), trained once per machine and cached; its outcome moves with the float
rounding of whatever trains it (thread count, CPU kernels), and every accuracy downstream moves with it
(issue 19: with the 12-epoch pretraining of 2026-12-04 the same code gave this trial 38.19 % from a pretraining
trained at one torch thread and 52.78 % from one trained at two). So a machine whose pretraining differs from the committed runs' gives other accuracies (a
replication, not a reproduction); this run, minutes the first time, tells which case this machine is in before
the hours of ``make reproduce``, and prints the pretraining it started from.

The trial is trained into the folder the study itself uses (:meth:`fgvc_lib.study.Study.select_recipes`), so a
later ``make reproduce`` loads it instead of training it again, and a second check is instant.

Exit codes (:func:`run_check`): 0 the trial reproduces exactly, 3 it differs, 2 the committed table or its
row is missing.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Optional, Tuple

from . import paths
from .machine import describe, facts
from .papers import synthetic_dataset
from .study.jobs import RunJob, execute_run, read_record, run_key   # execute_run: looked up here (tests replace it)

NOTEBOOK = synthetic_dataset.STUDY.notebook
PROFILE = "cpu"
VARIANT = "baseline"
TOLERANCE = 1e-6   # points of top-1: equal to within this is "exactly"

EXACT, DIFFERENT, MISSING = 0, 3, 2


class MissingCommitted(Exception):
    """The committed recipe-trials table, or the trial's row in it, is not there."""


def committed_path() -> Path:
    """The committed recipe-trials table of notebook 00 (cpu profile)."""
    return paths.results_dir(NOTEBOOK, PROFILE) / "recipe_trials.csv"


def committed_trial(lr: float = synthetic_dataset.LR) -> dict:
    """The committed row of the baseline's trial at ``lr``: its ``validation_top1``, ``seed`` and the rest."""
    import pandas as pd

    path = committed_path()
    if not path.is_file():
        raise MissingCommitted(f"no committed recipe trials at {path}: the check compares with that file "
                               f"(restore it from git: git checkout -- {path.name})")
    table = pd.read_csv(path)
    missing = {"variant", "lr", "validation_top1", "seed"} - set(table.columns)
    if missing:
        raise MissingCommitted(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
    rows = table[(table["variant"] == VARIANT) & table["lr"].map(lambda v: math.isclose(float(v), float(lr)))]
    if rows.empty:
        raise MissingCommitted(f"{path} has no row for variant {VARIANT!r} at lr {lr:g}: nothing to compare with")
    return rows.iloc[0].to_dict()


def machine_description() -> str:
    """This machine in one line (:func:`fgvc_lib.machine.describe`)."""
    return describe(facts())


def compare(measured: float, committed: float, machine: str) -> Tuple[int, str]:
    """The verdict: exit code (0 exact, 3 different) and its text, from the measured and committed top-1 (%)."""
    if math.isnan(measured) or math.isnan(committed):   # a diverged trial scores NaN: nothing to compare
        return DIFFERENT, (f"validation top-1 of the baseline's trial: measured {measured:.2f} %, committed "
                           f"{committed:.2f} %: a diverged trial cannot be compared\nmachine: {machine}")
    difference = measured - committed
    head = (f"validation top-1 of the baseline's trial at lr {synthetic_dataset.LR:g}: measured {measured:.2f} %, "
            f"committed {committed:.2f} % (difference {difference:+.2f} points)")
    if abs(difference) <= TOLERANCE:
        return EXACT, (f"{head}\nthis machine reproduces the committed trial exactly: a cold `make reproduce` should "
                       f"give the committed numbers\nmachine: {machine}")
    return DIFFERENT, (f"{head}\nthis trial does not reproduce the committed one: its runs started from another "
                       f"draw of the embedded pretraining (or other code), so a cold `make reproduce` here will give "
                       f"other numbers; compare the verdicts and intervals, not the accuracies\nmachine: {machine}")


def trial_job(study, lr: float = synthetic_dataset.LR) -> RunJob:
    """The baseline's recipe trial at ``lr`` as :meth:`~fgvc_lib.study.Study.select_recipes` builds it."""
    from .study.recipes import trial_variants

    trials = [t for t in trial_variants(study.variants[VARIANT]) if math.isclose(t.train.lr, float(lr))]
    if not trials:
        raise MissingCommitted(f"the {PROFILE} plan of {NOTEBOOK} has no trial of {VARIANT!r} at lr {lr:g}")
    trial = trials[0]
    dataset = study.datasets[0]
    data = dataclasses.replace(study.data_spec(dataset), options=trial.data)
    seed = trial.seeds[0]
    folder = study.runs_dir / dataset / run_key(trial, data, study.backbone_spec) / f"seed{seed}"
    return RunJob(trial, seed, data, study.backbone_spec, str(folder), threads=study.threads)


def run_check() -> int:
    """Train (or load) the trial, print the verdict; the exit code (0 exact, 3 different, 2 missing)."""
    from .study import Study

    try:
        row = committed_trial()
        study = Study(synthetic_dataset.STUDY, profile=PROFILE)
        job = trial_job(study)
    except MissingCommitted as err:
        print(f"check: {err}", flush=True)
        return MISSING
    if int(row["seed"]) != job.seed:
        print(f"check: the committed trial used seed {int(row['seed'])}, the plan's trial seed {job.seed}: "
              f"nothing to compare with", flush=True)
        return MISSING
    if read_record(job.run_dir) is not None:
        print(f"check: loading the trial trained before in {job.run_dir}", flush=True)
    else:
        print(f"check: training notebook {NOTEBOOK}'s baseline recipe trial at the default rate ({job.variant.name}, "
              f"seed {job.seed}) on "
              f"this machine; the first time this also runs the embedded pretraining (about 11 minutes on one core of "
              f"the project's 2-core machine) and then the trial (about 1 minute). It goes to {job.run_dir}, where "
              f"`make reproduce` will find it.", flush=True)
    study.data()
    record = execute_run(job)
    code, text = compare(float(record.accuracy), float(row["validation_top1"]), machine_description())
    if record.diverged_epoch is not None:
        text += f"\n(the trial diverged at epoch {record.diverged_epoch})"
    from .study.jobs import read_machine

    trained_on = read_machine(job.run_dir)
    if record.loaded and trained_on != facts(job.device):
        text += ("\n(the trial was loaded, not trained here: it trained on "
                 + (describe(trained_on) if trained_on else "a machine its record does not name")
                 + "; delete its folder to check this machine)")
    print(text + "\n" + pretraining_lines(job.backbone), flush=True)
    return code


def pretraining_lines(backbone) -> str:
    """The pretraining this machine's trial started from, and the one the committed results name (their
    ``machines.json``), or that they name none."""
    import json

    from .pretraining import PretrainingConfig, describe_record, spec_record
    from .reporting import MACHINES_NAME

    here = f"this machine's {describe_record(spec_record(backbone))}"
    path = committed_path().parent / MACHINES_NAME
    committed = json.loads(path.read_text()).get("pretraining") if path.is_file() else None
    if committed:
        return f"{here}\ncommitted results' {committed}"
    return (f"{here}\nthe committed results name no pretraining: they were trained before pretrainings were recorded "
            f"(2026-12-05), from the former 12-epoch pretraining; this code pretrains for "
            f"{PretrainingConfig().epochs} epochs, so their numbers are not expected here")
