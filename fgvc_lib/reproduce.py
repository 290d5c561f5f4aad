"""``make reproduce``: execute notebooks headlessly with papermill into results/, then rebuild SUMMARY.md.

Each notebook ``notebooks/<name>.ipynb`` runs into its results folder
(:func:`fgvc_lib.paths.results_dir`): ``results/<name>/<name>.ipynb`` for the default profile (cpu),
``results/<name>/<profile>/<name>.ipynb`` for any other, so a smoke or paper run never replaces the
committed default results. The notebook itself writes its tables (CSV) and figures (PNG) beside it.
Only the parameters a notebook declares are passed to it. A failing notebook stops the command with
the notebook's error printed. SUMMARY.md is then rebuilt over every results folder.

    python -m fgvc_lib.reproduce [--notebooks "00_synthetic_dataset 03_clan"] [--profile cpu]
                                 [--dataset cub] [--data-root DIR] [--backbone vgg16]
                                 [--executor auto|inline|local|slurm] [--workers N]
                                 [--slurm-partition P] [--slurm-time MINUTES] [--slurm-gpus N]
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
    args = parser.parse_args(argv)

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
    for name in ("workers", "slurm_time", "slurm_gpus"):  # whole numbers: the notebooks check their type
        value = getattr(args, name)
        if value not in ("", None):
            if not str(value).isdigit():
                raise SystemExit(f"--{name.replace('_', '-')} must be a whole number; got {value!r}")
            wanted[name] = int(value)
    os.environ.setdefault("MPLBACKEND", "Agg")
    # papermill streams each cell's output (runs, epochs, progress) through its logger: show it.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("papermill").setLevel(logging.INFO)
    names = select_notebooks(args.notebooks)
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


if __name__ == "__main__":
    sys.exit(main())
