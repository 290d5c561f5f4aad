"""The study's results format, paper-vs-reproduced tables, claims tables and results/SUMMARY.md.

Implements the "Results" section of DESIGN.md (no paper equation: this is bookkeeping).

* Every rebuilt table is ``results/<notebook>/<table>.csv`` in one long format, the columns of
  :data:`RESULT_COLUMNS`: ``paper`` is the paper's printed number (empty if none), ``reproduced`` the
  mean over seeds, ``std`` the sample standard deviation over seeds (``ddof=1``; empty for a single
  seed, because one run says nothing about the spread).
* Absolute numbers on the synthetic dataset are not comparable with the papers'; what is compared
  is each *claim* (a difference between variants, an ordering). A notebook ends with a claims table
  (:data:`CLAIM_COLUMNS`) built by :func:`claims_table`; :func:`write_summary` gathers every
  notebook's claims and figures into ``results/SUMMARY.md``.
* Every file is written atomically (temporary file in the same directory, flush, fsync,
  ``os.replace``), so an interrupted run never leaves a half-written table or figure behind.
"""
from __future__ import annotations

import io
import math
import os
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

PathLike = Union[str, os.PathLike]

RESULT_COLUMNS = ["table", "row", "dataset", "backbone", "metric", "paper", "reproduced", "std", "n_seeds",
                  "profile"]
CLAIM_COLUMNS = ["claim", "paper_effect", "our_effect", "our_std", "n_seeds", "held"]
HELD_VALUES = ("yes", "no", "inconclusive")
# Profiles whose data is the embedded synthetic set (DESIGN.md, Profiles): their absolute numbers are
# never comparable with a paper's.
SYNTHETIC_PROFILES = ("smoke", "cpu")
SUMMARY_NAME = "SUMMARY.md"
CLAIMS_NAME = "claims.csv"
FIGURE_DPI = 100


# --------------------------------------------------------------------------- atomic files


def _atomic_write(path: PathLike, write: Callable[[io.IOBase], None], binary: bool) -> Path:
    """Call ``write(handle)`` on a temporary file next to ``path`` and move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file private (0600); results are meant to be shared, so keep the mode of the
    # file being replaced, else use the usual rw-r--r--.
    mode = path.stat().st_mode & 0o777 if path.is_file() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    text_options = {} if binary else {"encoding": "utf-8", "newline": ""}
    try:
        with os.fdopen(fd, "wb" if binary else "w", **text_options) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return _atomic_write(path, lambda handle: handle.write(text), binary=False)


class NotebookFigure(Figure):
    """A matplotlib Figure made without pyplot that still shows itself in Jupyter.

    Figures built without pyplot hold no global state (nothing to close, any backend, nothing shown
    by a script), but IPython only knows how to draw them once pyplot has loaded the inline backend;
    ``_repr_png_`` covers the other case, so a figure is displayed as a cell's value either way.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight", metadata={"Software": None})
        return buffer.getvalue()


def new_figure(**kwargs) -> NotebookFigure:
    """A :class:`NotebookFigure` (keyword arguments as for ``matplotlib.figure.Figure``)."""
    return NotebookFigure(**kwargs)


def save_figure(fig, path: PathLike, dpi: int = FIGURE_DPI) -> Path:
    """Save a matplotlib figure as PNG atomically (``dpi`` ~100 keeps files small)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figures are saved as PNG; give a path ending in .png, got {str(path)!r}")
    return _atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi, bbox_inches="tight",
                                                           metadata={"Software": None}), binary=True)


def _atomic_csv(df: pd.DataFrame, path: PathLike) -> Path:
    return _atomic_write(path, lambda handle: df.to_csv(handle, index=False, lineterminator="\n"), binary=False)


# --------------------------------------------------------------------------- result rows


def seed_statistics(values) -> Tuple[float, float, int]:
    """``(mean, std, n)`` of per-seed values; ``std`` uses ``ddof=1`` and is NaN for one seed."""
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()
    if arr.size == 0:
        raise ValueError("no per-seed values given; pass at least one number")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"per-seed values must be finite numbers, got {arr.tolist()}")
    std = float(np.std(arr, ddof=1)) if arr.size > 1 else float("nan")
    return float(np.mean(arr)), std, int(arr.size)


def _paper_number(paper) -> float:
    if paper is None or (isinstance(paper, str) and not paper.strip()):
        return float("nan")
    return float(paper)


def result_row(*, table: str, row: str, dataset: str, backbone: str, metric: str, values,
               paper: Optional[float] = None, profile: str) -> Dict[str, object]:
    """One row of the results format from per-seed ``values`` (a number or a sequence)."""
    mean, std, n = seed_statistics(values)
    return {"table": str(table), "row": str(row), "dataset": str(dataset), "backbone": str(backbone),
            "metric": str(metric), "paper": _paper_number(paper), "reproduced": mean, "std": std,
            "n_seeds": n, "profile": str(profile)}


def result_rows(entries: Iterable[Mapping[str, object]], **common) -> pd.DataFrame:
    """A results table from ``entries``; keyword arguments fill the fields every entry shares.

    Each entry gives at least ``row`` and ``values`` (per-seed numbers), plus any of ``metric``,
    ``paper``, ... not given in ``common``. Example::

        result_rows([{"row": "VGG-16", "values": accs_a, "paper": 77.8},
                     {"row": "+ attention", "values": accs_b, "paper": 82.4}],
                    table="table2", dataset="synthetic", backbone="vgg16", metric="top1", profile="cpu")
    """
    rows = []
    for entry in entries:
        fields = {**common, **entry}
        missing = [k for k in ("table", "row", "dataset", "backbone", "metric", "values", "profile")
                   if k not in fields]
        if missing:
            raise ValueError(f"result entry {dict(entry)!r} lacks {', '.join(missing)}; give them in the entry "
                             f"or as keyword arguments of result_rows")
        unknown = set(fields) - {"table", "row", "dataset", "backbone", "metric", "values", "paper", "profile"}
        if unknown:
            raise ValueError(f"unknown result field(s) {', '.join(sorted(unknown))}; allowed: table, row, dataset, "
                             f"backbone, metric, values, paper, profile")
        rows.append(result_row(**fields))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def check_columns(df: pd.DataFrame, expected: Sequence[str], what: str = "results table") -> None:
    """Raise a ValueError naming the missing and unexpected columns of ``df``."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"a {what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in expected if c not in df.columns]
    extra = [c for c in df.columns if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s): {', '.join(map(str, missing))}")
        if extra:
            parts.append(f"unexpected column(s): {', '.join(map(str, extra))}")
        raise ValueError(f"{what} does not match the format; {'; '.join(parts)}. "
                         f"Expected exactly: {', '.join(expected)}")


def write_table(df: pd.DataFrame, path: PathLike) -> Path:
    """Validate a results table (exactly :data:`RESULT_COLUMNS`) and write it as CSV atomically."""
    check_columns(df, RESULT_COLUMNS)
    df = df[RESULT_COLUMNS]
    for column in ("paper", "reproduced", "std", "n_seeds"):
        if not pd.api.types.is_numeric_dtype(df[column]) and not df[column].isna().all():
            raise ValueError(f"column {column!r} must hold numbers (NaN for 'none'), got dtype {df[column].dtype}")
    if df["reproduced"].isna().any():
        raise ValueError("column 'reproduced' has empty values; every row needs our mean over seeds")
    return _atomic_csv(df, path)


def read_table(path: PathLike) -> pd.DataFrame:
    """Read a results CSV back (empty ``paper``/``std`` cells come back as NaN)."""
    df = pd.read_csv(path, dtype={c: str for c in ("table", "row", "dataset", "backbone", "metric", "profile")},
                     keep_default_na=False, na_values={c: [""] for c in ("paper", "reproduced", "std")})
    check_columns(df, RESULT_COLUMNS)
    for column in ("paper", "reproduced", "std"):
        df[column] = df[column].astype("float64")
    df["n_seeds"] = df["n_seeds"].astype("int64")
    return df


# --------------------------------------------------------------------------- display


def is_synthetic(dataset: str, profile: str) -> bool:
    """True when a row's data is the embedded synthetic set (not comparable with the paper)."""
    return str(profile) in SYNTHETIC_PROFILES or str(dataset).lower().startswith("synthetic")


def _fmt(value, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{decimals}f}"


def paper_vs_reproduced(df: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """A results table arranged for reading: paper, ours as ``mean ± std``, delta, comparable.

    The index is ``row`` plus whichever of table/dataset/backbone/metric vary in ``df``. ``delta`` is
    ours minus the paper's number (NaN where the paper has none). ``comparable`` is False for rows on
    the synthetic data (profile smoke/cpu or a dataset named synthetic*): there the delta is not a
    reproduction gap, only the claims are comparable.
    """
    check_columns(df, RESULT_COLUMNS)
    keys = [c for c in ("table", "dataset", "backbone", "metric") if df[c].nunique() > 1] + ["row"]
    shown = []
    for record in df.to_dict("records"):
        mean, std = record["reproduced"], record["std"]
        ours = _fmt(mean, decimals) + ("" if pd.isna(std) else f" ± {_fmt(std, decimals)}")
        paper = float(record["paper"]) if pd.notna(record["paper"]) else float("nan")
        shown.append({**{k: record[k] for k in keys}, "paper": paper, "reproduced": ours,
                      "delta": round(mean - paper, decimals) if not math.isnan(paper) else float("nan"),
                      "n_seeds": int(record["n_seeds"]),
                      "comparable": not is_synthetic(record["dataset"], record["profile"])})
    out = pd.DataFrame(shown, columns=keys + ["paper", "reproduced", "delta", "n_seeds", "comparable"])
    return out.set_index(keys)


# --------------------------------------------------------------------------- claims


def effect_from_seeds(a_values, b_values) -> Tuple[float, float]:
    """Paired effect of B over A: ``(mean of b - a, std of the per-seed differences, ddof=1)``.

    Seed ``i`` of A and of B must share everything but the variant (same data order, same init
    seed). The std is NaN for a single seed.
    """
    a = np.atleast_1d(np.asarray(a_values, dtype=np.float64)).ravel()
    b = np.atleast_1d(np.asarray(b_values, dtype=np.float64)).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired seeds need as many values for A as for B, got {a.size} and {b.size}")
    mean, std, _ = seed_statistics(b - a)
    return mean, std


def claim_from_seeds(claim: str, paper_effect: Optional[float], a_values, b_values,
                     direction: Optional[int] = None) -> Dict[str, object]:
    """A claims-table entry "B beats A by ``paper_effect``" measured on paired seeds."""
    mean, std = effect_from_seeds(a_values, b_values)
    return {"claim": claim, "paper_effect": paper_effect, "direction": direction, "our_effect": mean,
            "our_std": std, "n_seeds": int(np.size(a_values))}


def claim_held(paper_effect: float, our_effect: float, our_std: float, resolution: float = 0.0) -> str:
    """"yes" / "no" / "inconclusive" for one claim.

    Rule: our effect counts as real when ``|our mean| > our std`` (the seed-to-seed standard deviation
    of the effect). For paired per-seed differences this is a t statistic above ``sqrt(n)``: with
    3 seeds t > 1.73, with 5 seeds t > 2.24 - a deliberately modest bar that a CPU budget of a few
    seeds can pass, stricter than one standard error. Then:

    * paper effect positive or negative: "yes" if ours is real with the same sign, "no" if it is real
      with the opposite sign, else "inconclusive";
    * paper effect 0 (a "no difference" claim): "yes" if ours is not real, else "no";
    * a single seed (std NaN) or a missing effect: "inconclusive" - the spread is unknown.

    ``paper_effect`` may be just a sign (+1 / -1) when the paper claims a direction without a number.
    ``resolution`` floors the spread: an effect no larger than it (e.g. two test images' worth of
    accuracy) is never real, even when a few seeds happen to agree exactly (std 0).
    """
    values = [paper_effect, our_effect, our_std]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return "inconclusive"
    paper_effect, our_effect, our_std = (float(v) for v in values)
    real = abs(our_effect) > max(our_std, float(resolution))
    if paper_effect == 0:
        return "no" if real else "yes"
    if not real:
        return "inconclusive"
    return "yes" if np.sign(our_effect) == np.sign(paper_effect) else "no"


def claims_table(claims: Sequence[Mapping[str, object]], resolution: float = 0.0) -> pd.DataFrame:
    """The claims table of a notebook (columns :data:`CLAIM_COLUMNS`).

    Each claim is a dict with ``claim`` (text) and ``paper_effect`` (the paper's difference, signed so
    that positive means the claim's direction, e.g. B - A; ``None`` when the paper prints no number,
    then give ``direction`` = +1 or -1), and either ``values`` (our per-seed effects) or
    ``our_effect`` / ``our_std`` / ``n_seeds`` (e.g. from :func:`claim_from_seeds`).
    ``held`` follows :func:`claim_held` with the table's ``resolution`` (the smallest effect the
    measurement can resolve, in the effects' units; a claim's own ``resolution`` key overrides it); a dict may carry its own ``held`` to override it (explain why
    in the notebook).
    """
    rows = []
    for item in claims:
        if "claim" not in item or "paper_effect" not in item:
            raise ValueError(f"a claim needs 'claim' and 'paper_effect', got keys {sorted(item)}")
        if "values" in item:
            mean, std, n = seed_statistics(item["values"])
        elif "our_effect" in item:
            mean = float(item["our_effect"])
            std = float("nan") if item.get("our_std") is None else float(item["our_std"])
            n = int(item.get("n_seeds", 1 if math.isnan(std) else 0))
            if n < 1:
                raise ValueError(f"claim {item['claim']!r} gives our_std but not n_seeds; add n_seeds")
        else:
            raise ValueError(f"claim {item['claim']!r} needs 'values' (per-seed effects) or 'our_effect'")
        paper = _paper_number(item["paper_effect"])
        expected = paper
        if math.isnan(paper) and item.get("direction") is not None:
            if item["direction"] not in (1, -1):
                raise ValueError(f"direction of claim {item['claim']!r} must be +1 or -1, got {item['direction']!r}")
            expected = float(item["direction"])
        held = item.get("held") or claim_held(expected, mean, std, item.get("resolution", resolution))
        if held not in HELD_VALUES:
            raise ValueError(f"held must be one of {', '.join(HELD_VALUES)}, got {held!r}")
        rows.append({"claim": str(item["claim"]), "paper_effect": paper, "our_effect": mean, "our_std": std,
                     "n_seeds": n, "held": held})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def write_claims(df: pd.DataFrame, path: PathLike) -> Path:
    """Validate a claims table (exactly :data:`CLAIM_COLUMNS`) and write it as CSV atomically."""
    check_columns(df, CLAIM_COLUMNS, what="claims table")
    bad = sorted(set(df["held"]) - set(HELD_VALUES))
    if bad:
        raise ValueError(f"column 'held' must be one of {', '.join(HELD_VALUES)}, found {bad}")
    return _atomic_csv(df[CLAIM_COLUMNS], path)


def read_claims(path: PathLike) -> pd.DataFrame:
    """Read a claims CSV back (empty numbers as NaN)."""
    df = pd.read_csv(path, dtype={"claim": str, "held": str}, keep_default_na=False,
                     na_values={c: [""] for c in ("paper_effect", "our_effect", "our_std")})
    check_columns(df, CLAIM_COLUMNS, what="claims table")
    for column in ("paper_effect", "our_effect", "our_std"):
        df[column] = df[column].astype("float64")
    return df


# --------------------------------------------------------------------------- SUMMARY.md


def _md_cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of ``df`` (no index), numbers to 4 significant digits."""
    lines = ["| " + " | ".join(_md_cell(c) for c in df.columns) + " |",
             "|" + "|".join(" --- " for _ in df.columns) + "|"]
    for record in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in record) + " |")
    return "\n".join(lines)


def _link(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix().replace(" ", "%20")


def _profiles(folder: Path) -> List[str]:
    """The profiles recorded in the ``profile`` column of the results tables of ``folder``."""
    found = set()
    for csv in sorted(folder.glob("*.csv")):
        if csv.name == CLAIMS_NAME:
            continue
        try:
            header = pd.read_csv(csv, nrows=0).columns
            if "profile" in header:
                found.update(pd.read_csv(csv, usecols=["profile"], dtype=str)["profile"].dropna())
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            continue
    return sorted(found)


def _has_results(folder: Path) -> bool:
    return any(folder.glob("*.csv")) or any(folder.glob("*.png")) or any(folder.glob("*.ipynb"))


def _result_folders(root: Path) -> List[Tuple[str, str, Path]]:
    """``(notebook, profile, folder)`` for every results folder under ``root``, in summary order.

    The layout is :mod:`fgvc_lib.paths`'s: ``<root>/<notebook>/`` holds the default profile's run and
    ``<root>/<notebook>/<profile>/`` another profile's. Notebooks are sorted by name; within one,
    the default profile comes first, then the other profiles by name. Folders without any table,
    figure or notebook, hidden folders and subfolders not named after a profile are left out.
    """
    from .profiles import DEFAULT_PROFILE, PROFILE_NAMES

    if not root.is_dir():
        return []
    found = []
    for notebook in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if _has_results(notebook):
            found.append((notebook.name, DEFAULT_PROFILE, notebook))
        others = sorted(p for p in notebook.iterdir()
                        if p.is_dir() and p.name in PROFILE_NAMES and p.name != DEFAULT_PROFILE)
        found.extend((notebook.name, p.name, p) for p in others if _has_results(p))
    return found


def build_summary(results_dir: PathLike) -> str:
    """The text of ``results/SUMMARY.md``: one section per results folder.

    A results folder is ``results/<notebook>/`` (the default profile's run) or
    ``results/<notebook>/<profile>/`` (another profile's run, see :mod:`fgvc_lib.paths`); the latter's
    section is titled ``<notebook> (profile <profile>)`` and follows the notebook's default section.
    Each section states its profile, has the notebook's claims (from ``claims.csv``) as a markdown
    table, its tables (``*.csv``) as links and its figures (``*.png``) inline. The header states the
    profile(s) the results come from and that accuracies on the synthetic data are not comparable
    with the papers'; the claim counts over all notebooks are given per profile when there are
    several. A missing or empty results directory gives a short page saying so.
    """
    from .profiles import DEFAULT_PROFILE

    root = Path(results_dir)
    folders = _result_folders(root)
    lines = ["# Summary of the reproduced results", ""]
    if not folders:
        lines += ["No results yet: run `make reproduce` (or a notebook with papermill) to fill this directory.", ""]
        return "\n".join(lines)
    recorded = {folder: _profiles(folder) for _, _, folder in folders}
    profiles = sorted({profile for _, profile, _ in folders} | {p for found in recorded.values() for p in found})
    lines += [f"Profile(s): {', '.join(profiles)}.", ""]
    if any(p in SYNTHETIC_PROFILES for p in profiles):
        lines += ["Accuracies measured on the embedded synthetic dataset (profiles smoke/cpu) are **not comparable** "
                  "with the papers' numbers; what is compared is each claim - the sign and size of an effect "
                  "between variants, with its spread over seeds.", ""]
    lines += ["A claim *held* when our mean effect has the paper's sign and exceeds its seed-to-seed standard "
              "deviation, did not hold when it exceeds it with the opposite sign, and is *inconclusive* otherwise "
              "(which includes every single-seed run). A claim of no difference held when our effect stays "
              "within that deviation.", ""]

    overall: Dict[str, Dict[str, int]] = {}
    sections = []
    for name, profile, folder in folders:
        default = profile == DEFAULT_PROFILE
        title = name if default else f"{name} (profile {profile})"
        section = [f"## {title}", ""]
        notebooks = sorted(folder.glob("*.ipynb"))
        if default:
            notebooks += sorted(root.glob(f"{name}.ipynb"))
        if notebooks:
            section += ["Executed notebook: " + ", ".join(f"[{n.name}]({_link(n, root)})" for n in notebooks), ""]
        where = "default" if default else f"not the default {DEFAULT_PROFILE}: kept in its own folder, never committed"
        section += [f"Profile: {profile} ({where})", ""]
        others = [p for p in recorded[folder] if p != profile]
        if others:
            section += [f"*Warning: the tables of this folder record profile(s) {', '.join(recorded[folder])}, "
                        f"not {profile}: they were written by a run of another profile; rerun the notebook "
                        f"in profile {profile} to replace them.*", ""]
        claims_path = folder / CLAIMS_NAME
        if claims_path.is_file():
            try:
                claims = read_claims(claims_path)
            except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
                section += [f"*`{CLAIMS_NAME}` could not be read: {err}*", ""]
            else:
                counts = claims["held"].value_counts()
                totals = overall.setdefault(profile, {h: 0 for h in HELD_VALUES})
                for h in HELD_VALUES:
                    totals[h] += int(counts.get(h, 0))
                section += ["### Claims", "",
                            f"{int(counts.get('yes', 0))} held, {int(counts.get('no', 0))} did not hold, "
                            f"{int(counts.get('inconclusive', 0))} inconclusive.", "",
                            markdown_table(claims), ""]
        else:
            section += ["*No claims table written.*", ""]
        tables = [t for t in sorted(folder.glob("*.csv")) if t.name != CLAIMS_NAME]
        if tables:
            section += ["### Tables", ""] + [f"- [{t.name}]({_link(t, root)})" for t in tables] + [""]
        figures = sorted(folder.glob("*.png"))
        if figures:
            section += ["### Figures", ""] + [f"![{f.stem}]({_link(f, root)})" for f in figures] + [""]
        sections.append(section)

    def counted(totals: Mapping[str, int]) -> str:
        return f"{totals['yes']} held, {totals['no']} did not hold, {totals['inconclusive']} inconclusive."

    section_profiles = sorted({profile for _, profile, _ in folders},
                              key=lambda p: (p != DEFAULT_PROFILE, p))
    if len(section_profiles) == 1:
        totals = overall.get(section_profiles[0], {h: 0 for h in HELD_VALUES})
        lines += [f"Claims over all notebooks: {counted(totals)}", ""]
    else:  # claims of different profiles are never added up
        lines += ["Claims over all notebooks, per profile:", ""]
        for profile in section_profiles:
            totals = overall.get(profile, {h: 0 for h in HELD_VALUES})
            lines += [f"- profile {profile}: {counted(totals)}"]
        lines += [""]
    for section in sections:
        lines += section
    return "\n".join(lines).rstrip("\n") + "\n"


def write_summary(results_dir: PathLike) -> Path:
    """Build and atomically write ``<results_dir>/SUMMARY.md``; returns its path."""
    root = Path(results_dir)
    return atomic_write_text(root / SUMMARY_NAME, build_summary(root))
