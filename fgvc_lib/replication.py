"""Replications: some of a notebook's claims measured again from runs trained cold, on another machine or from
another draw of the embedded pretraining, kept beside the committed results and compared with them claim by claim
(issue 19).

Why: every run of a notebook starts from one embedded pretraining (:mod:`fgvc_lib.pretraining`), whose outcome moved
with the float rounding of what trained it; the committed intervals vary the fine-tuning seeds and the test images,
not that draw. On 2026-12-05 a cold run with the committed code and images did not reproduce notebook 00's
committed numbers (likeliest cause: another pretraining draw, see :mod:`fgvc_lib.machine`), so the study's
question became whether its *verdicts* survive another draw, or another machine. A replication answers that for
the claims whose variants it trains:

* :func:`replicate` builds the notebook's study (its default parameters unless given), keeps only the variants ``keep``
  (the recipe protocol still chooses their rates on validation, as the notebook does; a kept variant that takes
  another's rate needs that one kept too), trains them in a runs folder of its own and writes
  ``results/replications/<notebook>/<label>/claims.csv`` (every claim those variants decide, under the one verdict
  rule), ``recipe_trials.csv`` (the rates the protocol chose there), ``machines.json`` and ``replication.json``
  (profile, variants, seeds, parameters);
* :func:`comparison` joins a replication's claims with the notebook's committed ``claims.csv``: both effects with
  their intervals and verdicts, and what happened to the verdict (:func:`verdict_change`);
* SUMMARY.md has a section per replication (:func:`fgvc_lib.reporting.build_summary`).

Command line: ``python -m fgvc_lib.replication 00_synthetic_dataset --variants baseline,oracle-zoom-head
--label amd-epyc-2026-12-05`` (``--seeds``, ``--profile`` as the notebook's parameters; ``--pretraining-seed N``
starts every run from another draw of the pretraining, :func:`fgvc_lib.profiles.with_pretraining_seed`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from . import paths
from .atomic import atomic_write_text

REPLICATIONS = "replications"
SETTINGS_NAME = "replication.json"   # what a replication was run with
TRIALS_NAME = "recipe_trials.csv"    # its recipe trials (the notebook's file name)
DECIDED = ("held", "reversed")


def replication_dir(notebook: str, label: str, root: Optional[Path] = None) -> Path:
    """``<results>/replications/<notebook>/<label>``."""
    if not label or "/" in label or label.startswith("."):
        raise ValueError(f"a replication's label must be a plain folder name; got {label!r}")
    return Path(root or paths.results_root()) / REPLICATIONS / notebook / label


def train_kept(paper, keep: Sequence[str], runs_folder: Path,
               prepare: Optional[Callable[[Dict[str, object]], Dict[str, object]]] = None, **params):
    """Train only the variants ``keep`` of ``paper``'s study, in ``runs_folder`` (runs of their own: a replication or a
    calibration screen never loads the notebook's runs, a re-run loads its own); ``prepare`` may change the kept
    variants (name -> Variant) before they train. Returns the study, trained."""
    from .study import Study

    with runs_under(runs_folder):
        study = Study(paper, **params)
        unknown = [v for v in keep if v not in study.variants]
        if unknown:
            raise ValueError(f"{paper.notebook} plans no variant(s) {', '.join(unknown)}; its variants: "
                             f"{', '.join(study.variants)}")
        # a kept variant that takes another's chosen rate needs that one: else it would train at its default
        leads = sorted({study.variants[v].lr_from for v in keep if study.variants[v].lr_from} - set(keep))
        if leads:
            raise ValueError(f"the kept variants take their learning rate from {', '.join(leads)} (lr_from): "
                             f"keep {'it' if len(leads) == 1 else 'them'} too")
        study.variants = {name: v for name, v in study.variants.items() if name in keep}
        if prepare is not None:
            study.variants = prepare(study.variants)
        study.run()
    return study


def write_decided(study, folder: Path) -> None:
    """The claims a partly trained ``study`` decides (``claims.csv``; a claim that reads a variant left out is not
    measured) and the machines its runs trained on (``machines.json``), in ``folder``."""
    from .reporting import CLAIMS_NAME, MACHINES_NAME, write_claims

    table, _ = study.claims_table()
    write_claims(table, Path(folder) / CLAIMS_NAME)
    study.write_machines(Path(folder) / MACHINES_NAME)


def replicate(paper, keep: Sequence[str], label: str, pretraining_seed: Optional[int] = None, **params) -> Path:
    """Train the variants ``keep`` of ``paper``'s study cold (their own runs folder: ``<runs>/replications/<label>``) and
    write the claims they decide and their machines under :func:`replication_dir`; returns that folder.
    ``pretraining_seed``: start every run from another draw of the embedded pretraining
    (:func:`fgvc_lib.profiles.with_pretraining_seed`); None keeps the profile's."""
    from .pretraining import describe_spec
    from .profiles import get_profile, with_pretraining_seed

    folder = replication_dir(paper.notebook, label)
    settings_params = dict(params)
    if pretraining_seed is not None:
        params = {**params, "profile": with_pretraining_seed(get_profile(params.get("profile")), pretraining_seed)}
    study = train_kept(paper, keep, paths.runs_root() / REPLICATIONS / label, **params)
    write_decided(study, folder)
    if study.recipe_trials is not None and not study.recipe_trials.empty:   # the rates the protocol chose here
        from .reporting import write_csv
        from .study.recipes import TRIAL_COLUMNS

        write_csv(study.recipe_trials, folder / TRIALS_NAME, TRIAL_COLUMNS, "recipe trials table")
    extra = {"pretraining_seed": pretraining_seed} if pretraining_seed is not None else {}
    pretrained = describe_spec(study.backbone_spec)
    if pretrained:
        extra["pretraining"] = pretrained
    write_settings(folder, study, keep, settings_params, **extra)
    return folder


def write_settings(folder: Path, study, variants: Sequence[str], parameters: dict, **extra) -> None:
    """``replication.json``: what a replication ran with (profile, ``variants``, seeds, the ``parameters`` given, the
    recipe protocol's version and, on synthetic pretraining, its epochs: :func:`twins` pairs only equal ones) and
    ``extra``."""
    from .pretraining import PretrainingConfig
    from .study.recipes import PROTOCOL_VERSION

    written = {"profile": study.profile.name, "variants": list(variants), "seeds": list(study.settings.seeds),
               "parameters": dict(parameters), "recipe_protocol": PROTOCOL_VERSION, **extra}
    if study.backbone_spec.pretrained == "synthetic":
        written["pretraining_epochs"] = PretrainingConfig(**dict(study.backbone_spec.pretraining)).epochs
    atomic_write_text(folder / SETTINGS_NAME, json.dumps(written, indent=1, sort_keys=True, default=str) + "\n")


COPIED = ("claims.csv", "machines.json", TRIALS_NAME)   # what a whole-notebook replication keeps of its results


def replicate_notebook(notebook: str, label: str, profile: str = "cpu", seeds: str = "",
                       workers: Optional[int] = None) -> Path:
    """Execute the whole notebook again (papermill, as ``make reproduce`` does) with the seeds ``seeds`` (its
    parameter; '' keeps the profile's), its results in a scratch folder and its runs in a runs folder of their own
    (``<runs>/replications/<label>``), and keep its ``claims.csv``, ``machines.json`` and ``recipe_trials.csv``
    under :func:`replication_dir`; returns that folder. Unlike :func:`replicate` this measures the claims the
    notebook's cells score (localization, attention regions, patches), not only those its runs decide, at the
    cost of training every variant. A label that already holds claims is refused (nothing is overwritten); when the
    notebook fails, its executed copy is kept there as ``<notebook>.failed.ipynb`` and the error raised."""
    import shutil
    import tempfile

    from . import reproduce

    folder = replication_dir(notebook, label)
    if (folder / "claims.csv").exists():
        raise FileExistsError(f"{folder} already holds a replication's claims: give another --label (or delete it)")
    wanted = {"profile": profile, **({"seeds": seeds} if seeds else {}), **({"workers": workers} if workers else {})}
    planned, _ = reproduce.planned_study(notebook, wanted)   # plans, trains nothing: what replication.json records
    with tempfile.TemporaryDirectory(prefix=f"replication-{notebook}-") as scratch:
        produced = committed_folder(Path(scratch), notebook, profile)
        # the kernel papermill starts inherits both folders
        with runs_under(paths.runs_root() / REPLICATIONS / label), environment_set("FGVC_RESULTS_DIR", scratch):
            try:
                reproduce.run_notebook(notebook, wanted)
            except Exception:
                executed = produced / f"{notebook}.ipynb"
                if executed.is_file():
                    folder.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(executed, folder / f"{notebook}.failed.ipynb")
                raise
        if not (produced / "claims.csv").is_file():
            raise RuntimeError(f"notebook {notebook} wrote no claims.csv under {produced}")
        folder.mkdir(parents=True, exist_ok=True)
        for name in COPIED:
            if (produced / name).is_file():
                shutil.copyfile(produced / name, folder / name)
    write_settings(folder, planned, list(planned.variants), wanted, whole_notebook=True)
    return folder


def chosen_rates(folder: Path) -> dict:
    """Variant -> the learning rate a replication's protocol chose (its ``recipe_trials.csv``); {} without it."""
    path = Path(folder) / TRIALS_NAME
    if not path.is_file():
        return {}
    trials = pd.read_csv(path)
    return {row["variant"]: float(row["lr"]) for _, row in trials[trials["chosen"].astype(str) == "True"].iterrows()}


def settings_of(folder: Path) -> dict:
    """What a replication was run with (its ``replication.json``); the cpu profile when the file is missing."""
    path = Path(folder) / SETTINGS_NAME
    return json.loads(path.read_text()) if path.is_file() else {"profile": "cpu"}


def committed_folder(root: Path, notebook: str, profile: str) -> Path:
    """The committed results a replication in ``profile`` is compared with: the notebook's folder of that
    profile (:func:`fgvc_lib.paths.results_dir`'s layout)."""
    from .profiles import DEFAULT_PROFILE

    return Path(root) / notebook if profile == DEFAULT_PROFILE else Path(root) / notebook / profile


@contextlib.contextmanager
def environment_set(variable: str, value: str):
    """The environment variable ``variable`` set to ``value`` meanwhile (child processes inherit it), restored
    after."""
    before = os.environ.get(variable)
    os.environ[variable] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before


def runs_under(folder: Path):
    """``$FGVC_RUNS_DIR`` set to ``folder`` meanwhile (worker processes inherit it), restored after."""
    return environment_set("FGVC_RUNS_DIR", str(folder))


def verdict_change(committed: str, replicated: str) -> str:
    """What became of a committed verdict: "same", "opposite" (held <-> reversed), "lost" (a decided verdict now
    undecided), "gained" (an undecided one now decided), else "changed"."""
    if committed == replicated:
        return "same"
    if committed in DECIDED and replicated in DECIDED:
        return "opposite"
    if committed in DECIDED:
        return "lost"
    if replicated in DECIDED:
        return "gained"
    return "changed"


def _interval(row: pd.Series) -> str:
    return f"{row['our_effect']:.1f} [{row['ci_low']:.1f}, {row['ci_high']:.1f}]"


UNMATCHED = "not in the committed table"


def comparison(committed: pd.DataFrame, replicated: pd.DataFrame) -> pd.DataFrame:
    """One row per claim the replication measured: the committed and the replicated effect with its interval and
    verdict, and the change (:func:`verdict_change`); a claim the committed table lacks (its text names other
    parameters, say) is listed with the change :data:`UNMATCHED`."""
    known = committed.drop_duplicates("claim").set_index("claim")
    rows = []
    for _, row in replicated.iterrows():
        if row["claim"] not in known.index:
            rows.append({"claim": row["claim"], "committed": "", "committed verdict": "",
                         "replication": _interval(row), "replication verdict": row["verdict"], "change": UNMATCHED})
            continue
        then = known.loc[row["claim"]]
        rows.append({"claim": row["claim"], "committed": _interval(then), "committed verdict": then["verdict"],
                     "replication": _interval(row), "replication verdict": row["verdict"],
                     "change": verdict_change(then["verdict"], row["verdict"])})
    return pd.DataFrame(rows, columns=["claim", "committed", "committed verdict", "replication",
                                       "replication verdict", "change"])


def replications(root: Path) -> List[Tuple[str, str, Path]]:
    """``(notebook, label, folder)`` of every replication under ``root`` (results), sorted."""
    base = Path(root) / REPLICATIONS
    if not base.is_dir():
        return []
    return [(notebook.name, folder.name, folder) for notebook in sorted(p for p in base.iterdir() if p.is_dir())
            for folder in sorted(p for p in notebook.iterdir() if p.is_dir())]


def compared(root: Path) -> List[Tuple[str, str, Path, dict, Path, Optional[pd.DataFrame]]]:
    """Every replication under ``root`` with what SUMMARY.md says of it, read once: (notebook, label, folder, its
    settings, the committed folder it is compared with, the :func:`comparison` table or None when either claims
    file is missing or the two were trained on different synthetic tasks, :func:`same_task`)."""
    from .reporting import CLAIMS_NAME, read_claims

    found = []
    for notebook, label, folder in replications(root):
        settings = settings_of(folder)
        committed_dir = committed_folder(root, notebook, settings.get("profile", "cpu"))
        committed, replicated = committed_dir / CLAIMS_NAME, folder / CLAIMS_NAME
        table = comparison(read_claims(committed), read_claims(replicated)) \
            if committed.is_file() and replicated.is_file() and same_task(committed_dir, folder) else None
        found.append((notebook, label, folder, settings, committed_dir, table))
    return found


def same_task(first: Path, second: Path) -> bool:
    """Whether two results folders' runs trained on one synthetic task: the generator settings and input size each
    ``machines.json`` names (:func:`fgvc_lib.reporting.testbed_of`), less the pretraining, which a replication may
    change on purpose (another draw, another machine). Two that name none count as the same (folders written
    before 2026-12-05 recorded no task), one that names none and one that does as different."""
    from .reporting import testbed_of

    def task(folder: Path) -> str:
        return testbed_of(folder).split("; pretraining ")[0]

    return task(first) == task(second)


def twins(found: Sequence[tuple]) -> List[Tuple[str, str, str, pd.DataFrame]]:
    """Replications that trained the same variants and seeds of one notebook in one profile from the same pretraining
    recipe (``pretraining_epochs`` of their ``replication.json``; a replication written before it was recorded pairs
    with none) under the same recipe protocol (``recipe_protocol``; none recorded: 1), compared with each other (e.g. two pretraining draws on one machine): ``(notebook, first label,
    second label, table)`` for each label and the next one in sorted order, the table as :func:`comparison`'s with
    the first in the committed columns, renamed after the labels; ``found``: :func:`compared`."""
    from .reporting import CLAIMS_NAME, read_claims

    groups: dict = {}
    for notebook, label, folder, settings, _, _ in found:
        if (Path(folder) / CLAIMS_NAME).is_file():
            key = (notebook, settings.get("profile"), tuple(sorted(settings.get("variants", []))),
                   tuple(settings.get("seeds", [])), settings.get("pretraining_epochs"),
                   settings.get("recipe_protocol", 1))
            groups.setdefault(key, []).append((label, Path(folder)))
    pairs = []
    for (notebook, *_), members in sorted(groups.items(), key=lambda item: str(item[0])):
        members.sort()
        for (first, first_dir), (second, second_dir) in zip(members, members[1:]):
            table = comparison(read_claims(first_dir / CLAIMS_NAME), read_claims(second_dir / CLAIMS_NAME))
            table = table.rename(columns={"committed": first, "committed verdict": f"{first} verdict",
                                          "replication": second, "replication verdict": f"{second} verdict"})
            table["change"] = table["change"].replace(UNMATCHED, f"not in {first}")
            pairs.append((notebook, first, second, table))
    return pairs


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .reproduce import paper_of

    parser = argparse.ArgumentParser(prog="python -m fgvc_lib.replication", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", help="a notebook name, e.g. 00_synthetic_dataset")
    parser.add_argument("--variants", default="", help="comma-separated variants to train (this or --whole)")
    parser.add_argument("--whole", action="store_true",
                        help="execute the whole notebook instead: every variant, and the claims its cells score")
    parser.add_argument("--workers", type=int, default=None, help="with --whole: runs at once (default: the notebook's)")
    parser.add_argument("--label", required=True, help="the replication's folder name, e.g. amd-epyc-2026-12-05")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seeds", default="", help="the notebook's seeds parameter ('' keeps its default)")
    parser.add_argument("--pretraining-seed", type=int, default=None,
                        help="start every run from this draw of the embedded pretraining (default: the profile's)")
    args = parser.parse_args(argv)
    if args.whole == bool(args.variants):
        parser.error("give either --variants or --whole")
    if args.whole:
        if args.pretraining_seed is not None:
            parser.error("--pretraining-seed works with --variants only")
        folder = replicate_notebook(args.notebook, args.label, args.profile, args.seeds, args.workers)
        print(f"replication written to {folder}", flush=True)
        return 0
    params = {"profile": args.profile, **({"seeds": args.seeds} if args.seeds else {})}
    folder = replicate(paper_of(args.notebook), [v for v in args.variants.split(",") if v], args.label,
                       pretraining_seed=args.pretraining_seed, **params)
    print(f"replication written to {folder}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
