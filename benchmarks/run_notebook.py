"""Run a notebook's code cells in one Python process, without a Jupyter kernel, as papermill would.

For machines that have the project's dependencies but no papermill or ipykernel (the GPU check,
``benchmarks/gpu_check.sh``). The code cells run in order in one namespace, in the notebook's folder (as
``make reproduce`` runs them); the parameters given as ``NAME=VALUE`` are assigned right after the cell
tagged ``parameters``, and only those that cell declares (the others are listed and ignored, as
``fgvc_lib.reproduce`` passes only declared parameters). A value is read as a Python literal (``epochs=1``,
``stn=False``), else kept as a string (``dataset=cub``); a string that looks like a number needs quotes
(``seeds='"0"'``). Lines that are IPython magics or shell escapes (``%...``, ``!...``) are skipped.
Without IPython, a minimal ``IPython.display`` (``display``, ``Markdown``, ``HTML``) prints as text.

Each cell's seconds are printed; a failing cell prints its index, its first lines and the traceback, and
the exit status is 1. Nothing is written back into the notebook.

With ``--papermill OUT.ipynb`` the notebook runs through papermill instead (a Jupyter kernel; the executed
copy goes to ``OUT.ipynb``), with the same parameters, read and filtered the same way.

    python benchmarks/run_notebook.py [--papermill OUT.ipynb] notebooks/01_cra_cnn.ipynb profile=paper epochs=1 ...
"""
from __future__ import annotations

import ast
import json
import os
import sys
import time
import traceback
import types
from pathlib import Path
from typing import Dict, List, Set, Tuple

SKIPPED_PREFIXES = ("%", "!")


def ensure_ipython_display() -> None:
    """Make ``from IPython.display import display`` work: the real module when installed, else a text stand-in."""
    try:
        import IPython.display  # noqa: F401
        return
    except ImportError:
        pass

    def display(*objects, **_):
        for obj in objects:
            text = obj.to_string(max_rows=40, max_cols=20) if hasattr(obj, "to_string") else str(obj)
            print(text)

    class Text(str):
        """Markdown/HTML shown as its source text."""

    package = types.ModuleType("IPython")
    module = types.ModuleType("IPython.display")
    module.display, module.Markdown, module.HTML = display, Text, Text
    package.display = module
    package.version_info = (9, 0)   # a recent IPython: matplotlib then asks no more of it
    package.get_ipython = lambda: None   # e.g. matplotlib asks whether it runs in a shell: it does not
    sys.modules["IPython"], sys.modules["IPython.display"] = package, module


def read_value(text: str):
    """A Python literal when ``text`` parses as one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignments(pairs: List[str]) -> Dict[str, object]:
    values = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"parameters are NAME=VALUE; got {pair!r}")
        values[name] = read_value(text)
    return values


def declared_names(source: str) -> Set[str]:
    """The names a parameters cell assigns at its top level."""
    names = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def code_cells(path: Path) -> List[Tuple[str, bool]]:
    """``(source, is the parameters cell)`` of every code cell, magics and shell lines removed."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for cell in notebook["cells"]:
        if cell.get("cell_type") != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(SKIPPED_PREFIXES)]
        cells.append(("\n".join(lines), "parameters" in cell.get("metadata", {}).get("tags", [])))
    return cells


def run(path: Path, parameters: Dict[str, object]) -> int:
    cells = code_cells(path)
    if parameters and not any(is_parameters for _, is_parameters in cells):
        raise SystemExit(f"{path.name} has no cell tagged 'parameters' to pass {sorted(parameters)} after")
    ensure_ipython_display()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.chdir(path.parent)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    total = time.perf_counter()
    for index, (source, is_parameters) in enumerate(cells):
        started = time.perf_counter()
        try:
            exec(compile(source, f"<{path.name} cell {index}>", "exec"), namespace)
        except BaseException as err:
            if isinstance(err, SystemExit) and not err.code:
                break
            head = "\n".join(source.splitlines()[:12])
            print(f"cell {index} FAILED after {time.perf_counter() - started:.1f} s:\n{head}\n", flush=True)
            traceback.print_exc()
            sys.stderr.flush()
            return 1
        if is_parameters:
            declared = declared_names(source)
            passed = {k: v for k, v in parameters.items() if k in declared}
            namespace.update(passed)
            ignored = sorted(set(parameters) - declared)
            print(f"parameters: {passed}" + (f"; not declared, ignored: {ignored}" if ignored else ""), flush=True)
        print(f"cell {index}: {time.perf_counter() - started:.1f} s", flush=True)
    print(f"{path.name}: {len(cells)} code cells ran in {time.perf_counter() - total:.1f} s", flush=True)
    return 0


def run_with_papermill(path: Path, parameters: Dict[str, object], output: Path) -> int:
    """The same run through papermill and a ``python3`` kernel; cell output is streamed to the console."""
    import logging

    import papermill

    declared = set(papermill.inspect_notebook(str(path)))
    passed = {k: v for k, v in parameters.items() if k in declared}
    ignored = sorted(set(parameters) - declared)
    print(f"parameters: {passed}" + (f"; not declared, ignored: {ignored}" if ignored else ""), flush=True)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("papermill").setLevel(logging.INFO)
    os.environ.setdefault("MPLBACKEND", "Agg")
    started = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(output), parameters=passed, kernel_name="python3",
                                   cwd=str(path.parent), log_output=True, progress_bar=False)
    except papermill.PapermillExecutionError as err:   # its message holds the failing cell's traceback
        print(f"{path.name} FAILED (executed copy: {output}):\n{err}", flush=True)
        return 1
    print(f"{path.name}: ran through papermill in {time.perf_counter() - started:.1f} s -> {output}", flush=True)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    output = None
    if argv[0] == "--papermill":
        if len(argv) < 3:
            raise SystemExit("usage: run_notebook.py --papermill OUT.ipynb NOTEBOOK.ipynb [NAME=VALUE ...]")
        output, argv = Path(argv[1]).resolve(), argv[2:]
    path = Path(argv[0]).resolve()
    if not path.is_file():
        raise SystemExit(f"no notebook at {path}")
    parameters = parse_assignments(argv[1:])
    return run(path, parameters) if output is None else run_with_papermill(path, parameters, output)


if __name__ == "__main__":
    sys.exit(main())
