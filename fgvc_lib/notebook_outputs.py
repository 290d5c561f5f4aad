"""Refresh the outputs nbval checks: run notebooks in the smoke profile, keep only the checked outputs.

nbval (``pytest --nbval-lax``, in ``make test``) re-runs every notebook and compares the outputs of
the cells marked ``# NBVAL_CHECK_OUTPUT`` with the outputs stored in the notebook. Those cells print
deterministic facts (dataset sizes, parameter counts, the complexity table), never timings or
accuracies. After changing such a cell, store its new expected output with::

    python -m fgvc_lib.notebook_outputs notebooks/03_clan.ipynb [more notebooks]

Every other cell's output is cleared, so the committed notebooks stay small and show no stale smoke
numbers; the executed copies with all outputs live in ``results/``.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from .atomic import write_atomically

CHECK_MARK = "NBVAL_CHECK_OUTPUT"


def refresh(path: Path) -> int:
    """Execute ``path`` in the smoke profile and store the checked cells' outputs; returns their count."""
    import nbformat
    import papermill

    with tempfile.TemporaryDirectory() as tmp:
        env = {"FGVC_PROFILE": "smoke", "FGVC_RESULTS_DIR": f"{tmp}/results", "FGVC_RUNS_DIR": f"{tmp}/runs",
               "MPLBACKEND": "Agg"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            executed_path = Path(tmp) / path.name
            papermill.execute_notebook(str(path), str(executed_path), cwd=str(path.parent), progress_bar=False,
                                       kernel_name="python3")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        executed = nbformat.read(executed_path, as_version=4)
    outputs = {cell.source: cell.outputs for cell in executed.cells if cell.cell_type == "code"}
    notebook = nbformat.read(path, as_version=4)
    kept = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        if CHECK_MARK in cell.source:
            # nbval only compares cells that look executed (a cell with outputs but no execution count
            # fails as "Unrun reference cell has outputs"), so checked cells keep a count.
            cell.execution_count = kept + 1
            cell.outputs = outputs[cell.source]
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = None
            kept += 1
        else:
            cell.outputs = []
    write_atomically(path, lambda handle: nbformat.write(notebook, handle), binary=False)
    return kept


def main(argv: Optional[List[str]] = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        print(__doc__)
        return 2
    for path in paths:
        if not path.is_file():
            print(f"no such notebook: {path}", file=sys.stderr)
            return 1
        print(f"{path}: stored the outputs of {refresh(path)} checked cell(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
