"""``make reproduce``: execute notebooks headlessly with papermill into results/, then rebuild SUMMARY.md.

Each notebook ``notebooks/<name>.ipynb`` runs into ``results/<name>/<name>.ipynb``; the notebook
itself writes its tables (CSV) and figures (PNG) beside it. Only the parameters a notebook declares
are passed to it. A failing notebook stops the command with the notebook's error printed.

    python -m fgvc_lib.reproduce [--notebooks "00_synthetic_dataset 03_clan"] [--profile cpu]
                                 [--dataset cub] [--data-root DIR] [--backbone vgg16]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"


def results_root() -> Path:
    return Path(os.environ.get("FGVC_RESULTS_DIR") or REPO / "results")


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


def run_notebook(name: str, wanted: Dict[str, Optional[str]]) -> Path:
    import papermill

    source = NOTEBOOK_DIR / f"{name}.ipynb"
    out_dir = results_root() / name
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.ipynb"
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
    args = parser.parse_args(argv)

    from .profiles import get_profile
    from .reporting import write_summary

    get_profile(args.profile)  # unknown profile: stop before any work
    if args.profile == "paper" and not args.data_root:
        raise SystemExit("PROFILE=paper needs DATA_ROOT=<folder of the real dataset> (and DATASET=cub|cars|aircraft|dogs)")
    if args.data_root and not Path(args.data_root).is_dir():
        raise SystemExit(f"DATA_ROOT {args.data_root} is not a folder")
    wanted = {"profile": args.profile, "dataset": args.dataset, "data_root": args.data_root,
              "backbone": args.backbone}
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
            print(f"\nnotebook {name} failed; the executed copy is in {results_root() / name}:\n{err}", file=sys.stderr)
            return 1
    summary = write_summary(results_root())
    print(f"summary: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
