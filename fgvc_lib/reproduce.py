"""``make reproduce``: execute notebooks headlessly with papermill into results/, then rebuild SUMMARY.md.

Each notebook ``notebooks/<name>.ipynb`` runs into its results folder
(:func:`fgvc_lib.paths.results_dir`): ``results/<name>/<name>.ipynb`` for the default profile (cpu),
``results/<name>/<profile>/<name>.ipynb`` for any other, so a smoke or paper run never replaces the
committed default results. The notebook itself writes its tables (CSV) and figures (PNG) beside it.
Only the parameters a notebook declares are passed to it. A failing notebook stops the command with
the notebook's error printed. SUMMARY.md is then rebuilt over every results folder.

With ``--plan`` nothing is executed or trained: each selected notebook's ``Study`` is built from its paper's
declaration (``fgvc_lib/papers/<paper>.py``, ``STUDY``) with the parameters the notebook would get (its
parameters cell's values, overridden by the command's), and its plan table and cost plan
(:mod:`fgvc_lib.study.cost_plan`: runs, epochs, images and the hours from a short throughput probe on this
machine) are printed, then the grand total of hours.

With ``--check`` (``make check``) no notebook runs: notebook 00's baseline recipe trial at the default rate is trained (or loaded) and
compared with the committed one (:mod:`fgvc_lib.reproduction_check`); exit code 0 when this machine reproduces it
exactly, 3 when it differs, 2 when the committed table or row is missing. It ignores every other option.

    python -m fgvc_lib.reproduce [--notebooks "00_synthetic_dataset 03_clan"] [--profile cpu]
                                 [--dataset cub] [--data-root DIR] [--backbone vgg16]
                                 [--executor auto|inline|local|slurm] [--workers N]
                                 [--slurm-partition P] [--slurm-time MINUTES] [--slurm-gpus N]
                                 [--loader-workers N] [--compile 1] [--plan 1]
    python -m fgvc_lib.reproduce --check
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from .paths import repo_root, results_dir, results_root

REPO = repo_root()
NOTEBOOK_DIR = REPO / "notebooks"


def available_notebooks() -> List[str]:
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(requested: str) -> List[str]:
    names = available_notebooks()
    if not requested.strip():
        return names
    chosen = []
    for item in requested.replace(",", " ").split():
        matches = [n for n in names if n == item or n.startswith(item + "_") or n.split("_", 1)[0] == item]
        if not matches:
            raise SystemExit(f"unknown notebook {item!r}; available: {', '.join(names)}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def notebook_parameters(path: Path, wanted: Dict[str, Optional[str]]) -> Dict[str, str]:
    """The subset of ``wanted`` (non-empty values) that the notebook declares as parameters."""
    import papermill

    declared = papermill.inspect_notebook(str(path))
    return {k: v for k, v in wanted.items() if v not in (None, "") and k in declared}


def parse_flag(option: str, value) -> Optional[bool]:
    """A make-variable flag: "" means the default (None); 1/true/yes/on and 0/false/no/off."""
    text = str(value).strip().lower()
    if text == "":
        return None
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"--{option} must be 1 or 0 (empty: the default); got {value!r}")


def declared_defaults(path: Path) -> Dict[str, object]:
    """The values of the notebook's parameters cell, by name, in order, read as :func:`notebook_parameters` reads
    the cell (papermill's inspection)."""
    import ast

    import papermill

    declared = papermill.inspect_notebook(str(path))
    if not declared:
        raise SystemExit(f"{path.name} needs a cell tagged 'parameters'")
    return {name: ast.literal_eval(entry["default"]) for name, entry in declared.items()}


def paper_of(name: str):
    """The paper declaration (``STUDY``) of notebook ``name``, from the module of fgvc_lib.papers that declares it."""
    import importlib
    import pkgutil

    from . import papers

    for module in pkgutil.iter_modules(papers.__path__):
        if module.name.endswith("_views"):
            continue
        study = getattr(importlib.import_module(f"{papers.__name__}.{module.name}"), "STUDY", None)
        if study is not None and study.notebook == name:
            return study
    raise SystemExit(f"no paper module in fgvc_lib/papers declares notebook {name!r} (a STUDY with that notebook)")


def planned_study(name: str, wanted: Dict[str, object]):
    """Notebook ``name``'s study as its set-up cell would build it with the parameters ``wanted`` (those it declares;
    the rest from its parameters cell), and the parameters given: nothing is executed or trained."""
    from .study import Study

    values = declared_defaults(NOTEBOOK_DIR / f"{name}.ipynb")
    given = {k: v for k, v in wanted.items() if v not in (None, "") and k in values}
    values.update(given)
    return Study(paper_of(name), **values), given


def plan_notebook(name: str, wanted: Dict[str, object]):
    """Print notebook ``name``'s plan table and cost plan, built from its paper's declaration with the parameters
    it would get (nothing is executed or trained); returns the cost table."""
    study, given = planned_study(name, wanted)
    print(f"== {name}: plan ({', '.join(f'{k}={v}' for k, v in given.items()) or 'defaults'})", flush=True)
    runs = sum(len(v.seeds) for v in study.variants.values()) * len(study.datasets)
    # not study.describe(): it names (and so creates) the results folder, and a plan writes nothing
    print(f"{study.paper.title}\n{study.settings.describe()}\n{len(study.variants)} variant(s), {runs} run(s)")
    print(study.plan_table().to_string(), flush=True)
    return study.cost_plan()


def executed_path(name: str, profile: str) -> Path:
    """Where the executed copy of notebook ``name`` run in ``profile`` goes (its folder is created)."""
    return results_dir(name, profile) / f"{name}.ipynb"


def run_notebook(name: str, wanted: Dict[str, Optional[str]]) -> Path:
    """Execute notebook ``name`` with the parameters of ``wanted`` it declares; ``wanted["profile"]``
    must be a profile name: it picks the results folder. Returns the executed copy's path."""
    import papermill

    source = NOTEBOOK_DIR / f"{name}.ipynb"
    target = executed_path(name, wanted["profile"])
    params = notebook_parameters(source, wanted)
    print(f"== {name} ({', '.join(f'{k}={v}' for k, v in params.items()) or 'defaults'}) -> {target}", flush=True)
    started = time.perf_counter()
    papermill.execute_notebook(str(source), str(target), parameters=params, log_output=True,
                               progress_bar=False, cwd=str(NOTEBOOK_DIR), kernel_name="python3")
    print(f"== {name} done in {time.perf_counter() - started:.0f} s", flush=True)
    return target


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", default="", help="names or number prefixes; empty = all")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--dataset", default="")
    parser.add_argument("--data-root", default="")
    parser.add_argument("--backbone", default="")
    parser.add_argument("--executor", default="", help="where runs train: auto | inline | local | slurm")
    parser.add_argument("--workers", default="", help="runs at once in the local pool (empty: one per core/GPU)")
    parser.add_argument("--slurm-partition", default="")
    parser.add_argument("--slurm-time", default="", help="minutes per run on Slurm")
    parser.add_argument("--slurm-gpus", default="", help="GPUs per run on Slurm")
    parser.add_argument("--loader-workers", default="", help="data-loader workers per run (empty: automatic)")
    parser.add_argument("--compile", nargs="?", const="1", default="", help="1: torch.compile the models")
    parser.add_argument("--plan", nargs="?", const="1", default="",
                        help="1: print each notebook's runs, epochs and estimated hours (a short throughput probe "
                             "on this machine) and train nothing")
    parser.add_argument("--check", action="store_true",
                        help="train notebook 00's baseline recipe trial at the default rate and say whether this machine reproduces the "
                             "committed one (other options are ignored); exit code 0: exactly, 3: it differs, "
                             "2: the committed table or row is missing")
    args = parser.parse_args(argv)
    if args.check:
        from .reproduction_check import run_check

        return run_check()

    from .profiles import get_profile
    from .reporting import write_summary

    # Unknown profile: stop before any work. An empty one means $FGVC_PROFILE or the default, as in
    # the notebooks; it is resolved here so that the notebook and its results folder agree.
    profile = get_profile(args.profile).name
    if profile == "paper" and not args.data_root:
        raise SystemExit("PROFILE=paper needs DATA_ROOT=<folder of the real dataset> (and DATASET=cub|cars|aircraft|dogs)")
    if args.data_root and not Path(args.data_root).is_dir():
        raise SystemExit(f"DATA_ROOT {args.data_root} is not a folder")
    wanted = {"profile": profile, "dataset": args.dataset, "data_root": args.data_root,
              "backbone": args.backbone, "executor": args.executor, "slurm_partition": args.slurm_partition}
    for name in ("workers", "slurm_time", "slurm_gpus", "loader_workers"):  # whole numbers: the notebooks check type
        value = getattr(args, name)
        if value not in ("", None):
            if not str(value).isdigit():
                raise SystemExit(f"--{name.replace('_', '-')} must be a whole number; got {value!r}")
            wanted[name] = int(value)
    compile_models = parse_flag("compile", args.compile)
    if compile_models is not None:
        wanted["compile"] = compile_models
    plan = parse_flag("plan", args.plan)
    os.environ.setdefault("MPLBACKEND", "Agg")
    # papermill streams each cell's output (runs, epochs, progress) through its logger: show it.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("papermill").setLevel(logging.INFO)
    names = select_notebooks(args.notebooks)
    if plan:
        return plan_all(names, wanted)
    for index, name in enumerate(names, start=1):
        print(f"[notebook {index}/{len(names)}]", flush=True)
        try:
            run_notebook(name, wanted)
        except Exception as err:  # papermill's error carries the failing cell's traceback
            print(f"\nnotebook {name} failed; the executed copy is {executed_path(name, profile)}:\n{err}",
                  file=sys.stderr)
            return 1
    summary = write_summary(results_root())
    print(f"summary: {summary}")
    return 0


def plan_all(names: List[str], wanted: Dict[str, object]) -> int:
    """``--plan``: every notebook's plan and cost plan (:func:`plan_notebook`), then the grand total of hours."""
    total, main, wall, device = 0.0, 0.0, 0.0, ""
    for index, name in enumerate(names, start=1):
        print(f"[notebook {index}/{len(names)}]", flush=True)
        table = plan_notebook(name, wanted)
        total += float(table.loc["total", "hours"])
        main += table.attrs.get("main_hours", 0.0)
        at_once = table.attrs.get("at_once")
        wall = wall + float(table.loc["total", "hours"]) / at_once if at_once and wall is not None else None
        device = table.attrs.get("device", device)
        print(flush=True)
    print(f"grand total ({len(names)} notebook(s)): {total:.3g} hours of one run at a time on this machine's {device}, "
          f"{main:.3g} of them for the main comparisons' variants"
          + (f"; about {wall:.3g} hours of wall clock with the executors' runs at once (an estimate: training "
             f"steps only; runs trained at once slow each other)" if wall is not None else "")
          + "; nothing was trained (run without PLAN=1 to train)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
