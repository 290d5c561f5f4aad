"""The study's results format, paper-vs-reproduced tables, claims tables and results/SUMMARY.md.

Implements the "Results" section of docs/DESIGN.md (no paper equation: this is bookkeeping).

* Every rebuilt table is ``results/<notebook>/<table>.csv`` in one long format, the columns of
  :data:`RESULT_COLUMNS`: ``paper`` is the paper's printed number (empty if none), ``paper_setting``
  names the paper's dataset and network it was printed for when they are not the row's own (e.g.
  "CUB, ResNet-50" beside the cpu profile's VGG-16: a labelled reference), ``reproduced`` the
  mean over seeds, ``std`` the sample standard deviation over seeds (``ddof=1``; empty for a single
  seed, because one run says nothing about the spread).
* Absolute numbers on the synthetic dataset are not comparable with the papers'; what is compared
  is each *claim* (a difference between variants, an ordering). A notebook ends with a claims table
  (:data:`CLAIM_COLUMNS`) built by :func:`claims_table`; :func:`write_summary` gathers every
  notebook's claims and figures into ``results/SUMMARY.md``.
* Every file is written atomically (:mod:`fgvc_lib.atomic`), so an interrupted run never leaves a
  half-written table or figure behind.
"""
from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .atomic import atomic_write_text, write_atomically
from .statistics import (AGAINST_PAPER, HALF_WIDTH, MAIN_HALF_WIDTH, MAX_SEEDS_ESTIMATE, MEASURE_UNITS, MEASURES,
                         VERDICTS, against_paper, below_smallest_effect, chance_decided, holm_rejected,
                         seeds_can_reach, seeds_needed)

PathLike = Union[str, os.PathLike]

RESULT_COLUMNS = ["table", "row", "dataset", "backbone", "metric", "paper", "paper_setting", "reproduced", "std",
                  "n_seeds", "profile"]
CLAIM_COLUMNS = ["claim", "main", "measure", "direction", "smallest_effect", "paper_effect", "paper_setting",
                 "our_effect", "ci_low", "ci_high", "p_value", "p_improvement", "our_std", "se_seed", "se_test",
                 "n_seeds", "n_images",
                 "verdict", "below_smallest_effect", "against_paper", "half_width_target", "seeds_needed", "note"]
CLAIM_NUMBERS = ("smallest_effect", "paper_effect", "our_effect", "ci_low", "ci_high", "p_value", "p_improvement",
                 "our_std", "se_seed", "se_test", "half_width_target", "seeds_needed")
CLAIM_FLAGS = ("main", "below_smallest_effect")
# The columns SUMMARY.md shows (claims.csv keeps them all).
SUMMARY_CLAIM_COLUMNS = ["claim", "measure", "direction", "paper_effect", "paper_setting", "our_effect", "ci_low",
                         "ci_high", "p_improvement", "n_seeds", "verdict", "against_paper", "seeds_needed", "note"]
# The recipe protocol as SUMMARY.md states it (implemented in fgvc_lib.study.recipes; README says the same).
RECIPE_PROTOCOL = (
    "Recipe protocol (`fgvc_lib/study/recipes.py`): in the cpu and smoke profiles every notebook's method and its "
    "baseline each choose their learning rate among {factors} times the arm's default, one run per candidate "
    "on the first seed, trained on four fifths of every class's training images and scored on the held-out "
    "fifth (`recipe_trials.csv`), and one more candidate {step:g} times beyond an end of the grid that wins, "
    "{steps} times at most (the same rule for every tuned arm, so one whose end wins tries more rates); the test "
    "set is never read to choose. The other arms of a notebook (ablations, sweeps, notebook 00's oracles) train at "
    "the method's chosen rate; in notebook 06 every method and the baseline start from the same candidates, and the oracles take the baseline's rate. The paper profile keeps the "
    "papers' rates (notebook 06: the baseline's for every arm). Notebook 00's `controls.csv` says which kinds of "
    "attention pay on the synthetic testbed: a method's null result means something only where its kind does.")
# Profiles whose data is the embedded synthetic set (docs/DESIGN.md, Profiles): their absolute numbers are
# never comparable with a paper's.
SYNTHETIC_PROFILES = ("smoke", "cpu")
SUMMARY_NAME = "SUMMARY.md"
# The verdict rule as SUMMARY.md states it (implemented in fgvc_lib.statistics; README says the same).
VERDICT_RULE = (
    "Verdict rule (`fgvc_lib/statistics.py`): both arms of a claim are trained with the same seeds and scored on "
    "the same test images; our effect is the mean over seeds of the paired difference, in points of its measure, "
    "with a 95 % confidence interval (`ci_low`, `ci_high`, Student's t) that counts seed-to-seed variation and "
    "test-set sampling; `p_improvement` is the share of seeds on the claimed side. `direction` says which sign "
    "supports the paper (+1: B above A, -1: below, 0: a claim of no difference). Each kind of measure has its "
    "smallest effect of interest m: " + "; ".join(f"{k} {v:g} ({MEASURE_UNITS[k]})" for k, v in MEASURES.items())
    + ". A claim is *no effect* when its interval lies within +-m (checked first), else *held* when the interval "
    "lies on the paper's side of 0, *reversed* when it lies on the other side, *inconclusive* otherwise; a held or "
    "reversed interval that reaches into +-m is marked *(below m)*: its sign is shown, not that it matters. A claim "
    "of no difference is held when the interval lies within +-m. A second axis, `against_paper`, compares the size: "
    "*as large as the paper's* (the interval contains the paper's printed effect), *smaller than the paper's* (the "
    "interval lies below it on the paper's side), *larger than the paper's*; `paper_setting` names the paper's "
    "dataset and backbone where they are not ours. On the synthetic set the paper's effect is a reference, not a "
    "prediction. `seeds_needed` gives the seeds that would bring a too-wide interval to its target half-width "
    "(3 points; 2 for a notebook's main comparisons) at the measured spread.")
CLAIMS_NAME = "claims.csv"
FIGURE_DPI = 100


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
    return write_atomically(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi, bbox_inches="tight",
                                                           metadata={"Software": None}), binary=True)


def _atomic_csv(df: pd.DataFrame, path: PathLike) -> Path:
    return write_atomically(path, lambda handle: df.to_csv(handle, index=False, lineterminator="\n"), binary=False)


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
               paper: Optional[float] = None, paper_setting: str = "", profile: str) -> Dict[str, object]:
    """One row of the results format from per-seed ``values`` (a number or a sequence)."""
    mean, std, n = seed_statistics(values)
    number = _paper_number(paper)
    return {"table": str(table), "row": str(row), "dataset": str(dataset), "backbone": str(backbone),
            "metric": str(metric), "paper": number, "paper_setting": "" if math.isnan(number) else str(paper_setting),
            "reproduced": mean, "std": std, "n_seeds": n, "profile": str(profile)}


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
        unknown = set(fields) - {"table", "row", "dataset", "backbone", "metric", "values", "paper", "paper_setting",
                                 "profile"}
        if unknown:
            raise ValueError(f"unknown result field(s) {', '.join(sorted(unknown))}; allowed: table, row, dataset, "
                             f"backbone, metric, values, paper, paper_setting, profile")
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


def write_csv(df: pd.DataFrame, path: PathLike, columns: Sequence[str], what: str) -> Path:
    """Write a table of another format than the results format (exactly ``columns``) atomically."""
    check_columns(df, columns, what=what)
    return _atomic_csv(df[list(columns)], path)


def read_table(path: PathLike) -> pd.DataFrame:
    """Read a results CSV back (empty ``paper``/``std`` cells come back as NaN)."""
    df = pd.read_csv(path, dtype={c: str for c in ("table", "row", "dataset", "backbone", "metric", "paper_setting",
                                                   "profile")},
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
        shown.append({**{k: record[k] for k in keys}, "paper": paper, "paper_setting": record["paper_setting"],
                      "reproduced": ours,
                      "delta": round(mean - paper, decimals) if not math.isnan(paper) else float("nan"),
                      "n_seeds": int(record["n_seeds"]),
                      "comparable": not is_synthetic(record["dataset"], record["profile"])})
    labelled = ["paper_setting"] if (df["paper_setting"].fillna("") != "").any() else []
    out = pd.DataFrame(shown, columns=keys + ["paper"] + labelled + ["reproduced", "delta", "n_seeds", "comparable"])
    return out.set_index(keys)


# --------------------------------------------------------------------------- claims


def claim_row(claim, effect) -> Dict[str, object]:
    """One claims-table row (:data:`CLAIM_COLUMNS`) from a :class:`~fgvc_lib.study.paper.Claim` and its
    :class:`~fgvc_lib.statistics.Effect`. ``seeds_needed`` is filled when the interval is wider than
    the claim's target half-width: the seeds that would reach it at the measured spread (empty when
    more seeds cannot, or only more than :data:`~fgvc_lib.statistics.MAX_SEEDS_ESTIMATE` could: the note says
    which, see :func:`fgvc_lib.statistics.seeds_can_reach`). ``against_paper`` compares the
    interval with the paper's printed effect (:func:`fgvc_lib.statistics.against_paper`)."""
    target = MAIN_HALF_WIDTH if claim.main else HALF_WIDTH
    wide = not (effect.half_width <= target)   # NaN (one seed) counts as too wide
    needed = seeds_needed(effect, target) if wide and effect.n_images else None
    note = claim.note
    if wide and effect.n_images and needed is None:
        why = ("one seed: spread unknown" if effect.n_seeds < 2 or not math.isfinite(effect.se_seed)
               else f"more than {MAX_SEEDS_ESTIMATE} seeds needed" if seeds_can_reach(effect, target)
               else "more seeds cannot reach the target width: more test images needed")
        note = "; ".join(filter(None, [note, why]))
    paper = _paper_number(claim.paper_effect)
    similar = claim.kind == "similar"
    return {"claim": claim.text, "main": bool(claim.main), "measure": claim.measured_as,
            "direction": 0 if similar else claim.direction, "smallest_effect": claim.smallest_effect,
            "paper_effect": paper, "paper_setting": claim.paper_setting if not math.isnan(paper) else "",
            "our_effect": effect.effect, "ci_low": effect.ci_low, "ci_high": effect.ci_high,
            "p_value": effect.p_value, "p_improvement": effect.p_improvement,
            "our_std": effect.std, "se_seed": effect.se_seed, "se_test": effect.se_test,
            "n_seeds": effect.n_seeds, "n_images": effect.n_images,
            "verdict": effect.verdict,
            "below_smallest_effect": below_smallest_effect(effect.ci_low, effect.ci_high, claim.kind,
                                                           claim.smallest_effect)
            if effect.verdict in ("held", "reversed") else False,
            # a claim of no difference has no size to compare; a count has no interval: m is its tolerance
            "against_paper": "" if similar else against_paper(
                effect.ci_low, effect.ci_high, None if math.isnan(paper) else paper, claim.direction,
                claim.smallest_effect if claim.measured_as == "count" else 0.0),
            "half_width_target": target,
            "seeds_needed": float("nan") if needed is None else needed, "note": note}


def claims_table(rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """The claims table of a notebook: rows of :func:`claim_row`, in :data:`CLAIM_COLUMNS` order."""
    for row in rows:
        missing = [c for c in CLAIM_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"claim {row.get('claim')!r} lacks {missing}; build rows with claim_row")
        if row["verdict"] not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}; got {row['verdict']!r}")
        if row["against_paper"] not in AGAINST_PAPER + ("",):
            raise ValueError(f"against_paper must be one of {', '.join(AGAINST_PAPER)} or empty; "
                             f"got {row['against_paper']!r}")
    return pd.DataFrame([dict(row) for row in rows], columns=CLAIM_COLUMNS)


def write_claims(df: pd.DataFrame, path: PathLike) -> Path:
    """Validate a claims table (exactly :data:`CLAIM_COLUMNS`) and write it as CSV atomically."""
    check_columns(df, CLAIM_COLUMNS, what="claims table")
    bad = sorted(set(df["verdict"]) - set(VERDICTS))
    if bad:
        raise ValueError(f"column 'verdict' must be one of {', '.join(VERDICTS)}, found {bad}")
    return _atomic_csv(df[CLAIM_COLUMNS], path)


def read_claims(path: PathLike) -> pd.DataFrame:
    """Read a claims CSV back (empty numbers as NaN)."""
    text = {c: str for c in ("claim", "measure", "paper_setting", "verdict", "against_paper", "note")}
    df = pd.read_csv(path, dtype=text, keep_default_na=False, na_values={c: [""] for c in CLAIM_NUMBERS})
    check_columns(df, CLAIM_COLUMNS, what="claims table")
    for column in CLAIM_NUMBERS:
        df[column] = df[column].astype("float64")
    for column in CLAIM_FLAGS:
        df[column] = df[column].map(lambda v: str(v).strip().lower() == "true")
    df["direction"] = df["direction"].astype(int)
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
                  "between variants, with its confidence interval.", ""]
    from .replication import compared

    replicated = compared(root)   # read once: the head's warning and the section below
    warning = replication_warning(replicated)
    lines += [warning, ""] if warning else []
    unrecorded = pretraining_warning([(name, profile, folder) for name, profile, folder in folders
                                      if profile in SYNTHETIC_PROFILES])
    lines += [unrecorded, ""] if unrecorded else []
    lines += headline_table(root)
    from .study.recipes import EDGE_STEP, MAX_EDGE_STEPS, RATE_FACTORS

    protocol = RECIPE_PROTOCOL.format(factors=", ".join(f"{f:g}" for f in RATE_FACTORS), step=EDGE_STEP,
                                      steps=MAX_EDGE_STEPS)
    lines += [VERDICT_RULE, "", protocol, ""]
    variance = variance_finding(root)
    if variance:
        lines += [variance, ""]

    overall: Dict[str, List[Tuple[str, pd.DataFrame]]] = {}
    caveats = testbed_caveats(root)
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
        section += [f"Profile: {profile} ({where})", "", machines_line(folder), ""]
        others = [p for p in recorded[folder] if p != profile]
        if others:
            section += [f"*Warning: the tables of this folder record profile(s) {', '.join(recorded[folder])}, "
                        f"not {profile}: they were written by a run of another profile; rerun the notebook "
                        f"in profile {profile} to replace them.*", ""]
        section += [caveats[name], ""] if name in caveats and default else []
        claims_path = folder / CLAIMS_NAME
        if claims_path.is_file():
            try:
                claims = read_claims(claims_path)
            except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
                section += [f"*`{CLAIMS_NAME}` could not be read: {err}*", ""]
            else:
                overall.setdefault(profile, []).append((name, claims))
                tally = claim_tally(claims)
                untestable = name in caveats and default
                shown = _shown_claims(claims, untestable)
                relabelled = int((shown["verdict"].str.startswith(NOT_TESTABLE)).sum())
                counted = _counted(tally) + "."
                if relabelled:
                    counted += (f" {relabelled} of these verdicts (accuracy claims of a gain that found none, or of no "
                                f"difference) are shown as *{NOT_TESTABLE}* (the testbed control above).")
                section += ["### Claims", "", counted, "", markdown_table(shown), ""]
        else:
            section += ["*No claims table written.*", ""]
        tables = [t for t in sorted(folder.glob("*.csv")) if t.name != CLAIMS_NAME]
        if tables:
            section += ["### Tables", ""] + [f"- [{t.name}]({_link(t, root)})" for t in tables] + [""]
        figures = sorted(folder.glob("*.png"))
        if figures:
            section += ["### Figures", ""] + [f"![{f.stem}]({_link(f, root)})" for f in figures] + [""]
        sections.append(section)

    section_profiles = sorted({profile for _, profile, _ in folders},
                              key=lambda p: (p != DEFAULT_PROFILE, p))
    for profile in section_profiles:   # claims of different profiles are never added up
        found = overall.get(profile, [])
        heading = "Claims over all notebooks" + (f" (profile {profile})" if len(section_profiles) > 1 else "")
        lines += [f"### {heading}", ""]
        if not found:
            lines += ["No claims table.", ""]
            continue
        rows = [{"notebook": name, **claim_tally(claims)} for name, claims in found]
        every = pd.concat([claims for _, claims in found], ignore_index=True)
        rows.append({"notebook": "all", **claim_tally(every)})
        lines += [markdown_table(pd.DataFrame(rows)), "", _multiplicity(every), ""]
        power = main_power_table(found)
        if not power.empty:
            lines += ["#### The main comparisons: spread and power", "", POWER_NOTE, "", markdown_table(power), ""]
    lines += replication_sections(replicated)
    for section in sections:
        lines += section
    return "\n".join(lines).rstrip("\n") + "\n"


CONTROLS_NAME = "controls.csv"   # notebook 00's testbed controls (fgvc_lib.papers.synthetic_dataset.controls_table)
CONTROL_COLUMNS = ["mechanism", "methods", "oracle", "gain", "ci_low", "ci_high", "needed", "attention pays",
                   "notebooks"]


def _notebook_table(results_dir: PathLike, name: str, columns: Sequence[str], what: str):
    """``(path, table)`` of the first ``<notebook>/<name>`` under ``results_dir`` with exactly ``columns``
    (a notebook's own table that SUMMARY.md reads back), or None when there is none."""
    found = sorted(Path(results_dir).glob(f"*/{name}"))
    if not found:
        return None
    table = pd.read_csv(found[0], keep_default_na=False, na_values=[""])
    check_columns(table, columns, what=what)
    return found[0], table


def testbed_of(folder: PathLike) -> str:
    """The synthetic task a results folder's runs trained on, as its ``machines.json`` names it; "" when it does not
    (results written before 2026-12-05's recalibration named it, or no file)."""
    path = Path(folder) / MACHINES_NAME
    return str(json.loads(path.read_text()).get("testbed", "")) if path.is_file() else ""


def testbed_caveats(results_dir: PathLike) -> Dict[str, str]:
    """{notebook: a caveat} for the notebooks whose kind of attention is not shown to pay on the testbed they trained
    on, from the ``controls.csv`` that notebook 00 writes into its results folder; {} without one. Not shown: its
    oracle below the needed gain or undecided, or the controls measured on another synthetic task than the
    notebook's results (:func:`testbed_of`; unrecorded counts as another)."""
    root = Path(results_dir)
    found = sorted(root.glob(f"*/{CONTROLS_NAME}"))
    caveats: Dict[str, str] = {}
    for path in found:
        try:
            controls = pd.read_csv(path, keep_default_na=False)
            check_columns(controls, CONTROL_COLUMNS, what="controls table")
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
        measured_on = testbed_of(path.parent)
        for _, row in controls.iterrows():
            gain = (f"its nearly label-free oracle, the {row['oracle']}), gains {float(row['gain']):.1f} "
                    f"[{float(row['ci_low']):.1f}, "
                    f"{float(row['ci_high']):.1f}] points ({row['attention pays']})")
            for notebook in str(row["notebooks"]).split():
                same = bool(measured_on) and testbed_of(root / notebook) == measured_on
                if row["attention pays"] == "pays" and same:
                    continue
                if row["attention pays"] == "pays":
                    why = (f"on the synthetic task of {path.parent.name}'s results {gain}, but this notebook's results "
                           f"were trained on another task, or on one their files do not name: rerun it")
                else:
                    why = (f"the synthetic testbed does not show that it can gain the {float(row['needed']):g} points "
                           f"it takes to test a method here: {gain}")
                caveats[notebook] = (f"*Testbed control ({path.parent.name}): this notebook's kind of attention, "
                                     f"{row['mechanism']}, is not shown to pay here: {why}. A null verdict of this "
                                     f"notebook's method is therefore not evidence against the method.*")
    return caveats


COMPARISON_NAME = "comparison.csv"   # notebook 06's table of every arm (fgvc_lib.papers.attention_comparison)
COMPARISON_COLUMNS = ["arm", "kind", "top-1", "top-1 low", "top-1 high", "effect", "effect low", "effect high",
                      "verdict", "Holm", "oracle pays", "oracle share", "share low", "share high", "part pointing",
                      "bird pointing", "params (M)", "MACs (G)", "train images/s"]


def headline_table(results_dir: PathLike) -> List[str]:
    """SUMMARY.md's opening section: notebook 06's comparison of every attention method and oracle under one
    recipe (``comparison.csv``), each number with its 95 % interval; [] without the file."""
    found = _notebook_table(results_dir, COMPARISON_NAME, COMPARISON_COLUMNS, "comparison table")
    if found is None:
        return []
    path, table = found

    def interval(value, low, high, digits=1):
        if pd.isna(value):
            return ""
        ends = "" if pd.isna(low) else f" [{low:.{digits}f}, {high:.{digits}f}]"
        return f"{value:.{digits}f}{ends}"

    shown = pd.DataFrame({
        "arm": table["arm"], "kind": table["kind"],
        "top-1 (%)": [interval(*r) for r in table[["top-1", "top-1 low", "top-1 high"]].itertuples(index=False)],
        "gain over the baseline": [interval(*r) for r in
                                   table[["effect", "effect low", "effect high"]].itertuples(index=False)],
        "verdict": [v if pd.isna(h) or v == "" else f"{v} ({'survives' if str(h) == 'True' else 'not after'} Holm)"
                    for v, h in zip(table["verdict"].fillna(""), table["Holm"])],
        "share of its kind's oracle gain": [_share_cell(*r) for r in table[["oracle pays", "oracle share", "share low",
                                                                            "share high"]].itertuples(index=False)],
        "CAM on part / bird (%)": ["" if pd.isna(p) and pd.isna(b) else
                                   f"{'-' if pd.isna(p) else f'{p:.0f}'} / {'-' if pd.isna(b) else f'{b:.0f}'}"
                                   for p, b in zip(table["part pointing"], table["bird pointing"])],
        "MACs (G)": table["MACs (G)"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}"),
        "train images/s": table["train images/s"].map(lambda v: "" if pd.isna(v) else f"{v:.0f}")})
    where = path.parent.name
    return ["## Headline: the five attention methods under one recipe, against oracle attention", "",
            f"From [{where}/{COMPARISON_NAME}]({where}/{COMPARISON_NAME}) (notebook {where}): every arm trained with "
            "the baseline's optimiser, schedule, epochs, data and seeds; where rates are chosen (cpu and smoke "
            "profiles) the baseline and each method choose theirs by the same rule from the same candidates on a "
            "validation split, the oracles taking the baseline's (the chosen rates: `recipe_trials.csv`); each method keeps "
            "its own modules and losses, and SSANet its frozen feature extractor (its own no-attention row is its "
            "reference). Gains are paired over seeds and test images (95 % intervals; Holm's correction over the five methods). A method's share of its kind's nearly "
            "label-free oracle gain is given only where that oracle pays here.", "", markdown_table(shown), ""]


def _share_cell(pays, share, low, high) -> str:
    """A method's oracle share as SUMMARY.md shows it: never without its interval, and only where the oracle pays."""
    if pd.isna(pays) or pays == "":
        return ""
    if pays != "pays":
        return f"n/a (oracle {pays})"
    if pd.isna(share) or pd.isna(low):
        return "n/a (no interval)"
    return f"{share:.2f} [{low:.2f}, {high:.2f}]"


KNOBS_NAME = "knobs.csv"   # notebook 00's knob grid (fgvc_lib.study.knobs.knob_table)
KNOB_COLUMNS = ["point", "kind", "own recipe", "comparison", "train per class", "epochs", "lr", "schedule", "batch", "seeds",
                "comparison images", "seconds per run", "comparison seconds", "a top-1", "a sd", "difference", "difference sd",
                "se_seed", "se_test", "half-width", "seeds for target"]


def variance_finding(results_dir: PathLike) -> str:
    """SUMMARY.md's paragraph on the spread: from the ``knobs.csv`` notebook 00 writes, the comparison it
    measured, what the profile's own recipe reaches and the cheapest recipe point that reaches the target
    (:func:`fgvc_lib.study.knobs.choice_text`), and how the seed-to-seed spread splits between the data order
    and the initialisation; "" without the file."""
    from .study.knobs import choice_text

    found = _notebook_table(results_dir, KNOBS_NAME, KNOB_COLUMNS, "knob table")
    if found is None:
        return ""
    path, table = found
    choice = choice_text(table, MAIN_HALF_WIDTH)   # raises unless one row is the study's own recipe
    own = table[table["own recipe"].astype(str) == "True"].iloc[0]
    text = (f"Variance (`{path.parent.name}/{KNOBS_NAME}`, the paired comparison {own['comparison']} at each "
            f"point of a grid of compute knobs): " + choice)
    split = table.set_index("kind")
    if {"data order fixed", "initialisation fixed"} <= set(split.index):
        text += (f" Standard deviation over seeds of the difference: {own['difference sd']:.2f} points with both "
                 f"sources varying, {split.loc['initialisation fixed', 'difference sd']:.2f} with the data order "
                 f"alone varying, {split.loc['data order fixed', 'difference sd']:.2f} with the initialisation alone.")
    return text


POWER_COLUMNS = ["notebook", "claim", "our_effect", "half_width", "half_width_target", "our_std", "se_seed", "se_test",
                 "n_seeds", "seeds_needed"]
POWER_NOTE = ("Per main comparison: the interval's half-width against its target, the standard deviation over seeds "
              "of the paired effect (`our_std`), and the two parts of the interval's standard error: seed to seed "
              "(`se_seed`, shrinks with more seeds) and test-set sampling (`se_test`, shrinks with more test images); "
              "`seeds_needed` is empty where the target is met, and where more than "
              f"{MAX_SEEDS_ESTIMATE} seeds would be needed or no number of seeds would do (the claim's note in "
              "claims.csv says which).")


def main_power_table(found: Sequence[Tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """One row per main comparison of the notebooks' claims tables ``found`` [(notebook, claims)]: its
    half-width, target, spread and the seed and test-set parts of its standard error (:data:`POWER_COLUMNS`)."""
    rows = []
    for name, claims in found:
        for _, claim in claims[claims["main"]].iterrows():
            rows.append({"notebook": name, "claim": claim["claim"], "our_effect": claim["our_effect"],
                         "half_width": (claim["ci_high"] - claim["ci_low"]) / 2.0,
                         **{c: claim.get(c, float("nan")) for c in POWER_COLUMNS[4:]}})
    return pd.DataFrame(rows, columns=POWER_COLUMNS)


TALLY_COLUMNS = list(VERDICTS) + ["below m"] + list(AGAINST_PAPER) + ["not compared", "no printed effect"]


def claim_tally(claims: pd.DataFrame) -> Dict[str, int]:
    """Counts of a claims table on both axes: verdicts, how many decided ones are below the smallest
    effect of interest, and our size against the paper's printed effect (:data:`TALLY_COLUMNS`)."""
    counts = claims["verdict"].value_counts()
    against = claims["against_paper"].value_counts()
    tally = {v: int(counts.get(v, 0)) for v in VERDICTS}
    tally["below m"] = int(claims["below_smallest_effect"].sum())
    tally.update({a: int(against.get(a, 0)) for a in AGAINST_PAPER})
    printed = claims["paper_effect"].notna()
    # printed, but no size to compare: a claim of no difference, or one seed (no interval)
    tally["not compared"] = int((printed & (claims["against_paper"] == "")).sum())
    tally["no printed effect"] = int((~printed).sum())
    return tally


def _counted(tally: Mapping[str, int]) -> str:
    verdicts = ", ".join(f"{int(tally.get(v, 0))} {v}" for v in VERDICTS)
    sizes = ", ".join(f"{int(tally.get(a, 0))} {a}" for a in AGAINST_PAPER)
    return (f"{verdicts} ({int(tally.get('below m', 0))} of the decided ones below the smallest effect of "
            f"interest); against the paper's printed effect: {sizes}, {int(tally.get('not compared', 0))} not "
            f"compared (a claim of no difference, or no interval), {int(tally.get('no printed effect', 0))} with "
            "no printed effect")


def claims_tally_text(claims: pd.DataFrame, synthetic: bool) -> str:
    """The lines a notebook prints under its claims table: the tally on both axes and, on synthetic
    data, that the paper's effect is a reference there, not a prediction."""
    lines = [f"Claims: {_counted(claim_tally(claims))}."]
    if synthetic:
        lines.append("On the synthetic set the paper's printed effect is a reference, not a prediction: "
                     "'against_paper' says how much of it shows up here, not whether the paper is wrong.")
    return "\n".join(lines)


def _multiplicity(claims: pd.DataFrame) -> str:
    """The sentence on chance: how many decided verdicts no real effect would give, and how many of the
    decided ones survive Holm's correction."""
    tested = claims[(claims["direction"] != 0) & claims["p_value"].notna()]
    decided = tested["verdict"].isin(["held", "reversed"]).to_numpy()
    surviving = int((decided & np.array(holm_rejected(tested["p_value"]), dtype=bool)).sum())
    return (f"Of the {len(tested)} claims of a difference measured with an interval, {int(decided.sum())} are "
            f"decided (held or reversed); if no effect were real, chance alone would decide at most about "
            f"{chance_decided(len(tested)):.1f} of them (5 % each). Under Holm's correction for testing all "
            f"{len(tested)} at once, {surviving} of the decided verdicts still exclude 0.")


NOT_TESTABLE = "not testable on this testbed"
# verdicts that say nothing where the kind of attention under test is not shown to pay, by the claim's direction:
# a claim of a gain (+1) that found none, and a claim of no difference (0) that found none or could not tell
UNINFORMATIVE = {1: ("no effect", "inconclusive"), 0: ("held", "inconclusive")}


def _untestable(verdict: str, measure: str, direction) -> bool:
    """Whether a claim's verdict is shown as :data:`NOT_TESTABLE` in a notebook whose kind of attention is not shown
    to pay: an accuracy claim of a gain or of no difference whose verdict is :data:`UNINFORMATIVE` for it. A claim
    that something is smaller (direction -1: a train-minus-test gap, an error) and a decided gain or loss stay."""
    try:
        direction = int(float(direction))
    except (TypeError, ValueError):
        return False
    return measure == "accuracy" and verdict in UNINFORMATIVE.get(direction, ())


def _shown_claims(claims: pd.DataFrame, untestable: bool = False) -> pd.DataFrame:
    """The claims table as SUMMARY.md shows it: fewer columns, a decided verdict below m marked. ``untestable``: the
    notebook's kind of attention is not shown to pay on the task its results trained on (:func:`testbed_caveats`),
    so a verdict that says nothing there (:func:`_untestable`) is shown as :data:`NOT_TESTABLE`, with the verdict it
    had (issue 19: a null result for a method means something only on a task where its kind of attention pays)."""
    shown = claims.copy()
    shown["verdict"] = [f"{NOT_TESTABLE} (statistically: {v})" if untestable and _untestable(v, measure, direction)
                        else f"{v} (below m)" if below else v
                        for v, below, measure, direction in zip(shown["verdict"], shown["below_smallest_effect"],
                                                                shown["measure"], shown["direction"])]
    shown["claim"] = [f"**{text}** (main)" if main else text for text, main in zip(shown["claim"], shown["main"])]
    return shown[SUMMARY_CLAIM_COLUMNS]


MACHINES_NAME = "machines.json"


def write_machines(found: Sequence[Optional[dict]], path: PathLike, pretraining: str = "", testbed: str = "",
                   recipe_protocol: Optional[int] = None) -> Path:
    """Write the machines a notebook's runs trained on (``found``: one :func:`fgvc_lib.machine.facts` per run, None
    for a run whose record predates them) as ``{"machines": [{"runs": n, "machine": facts}], "unrecorded": m}``,
    most runs first, with ``"pretraining"``: the embedded pretraining they started from, in one line
    (:meth:`fgvc_lib.study.Study.write_machines` composes it from the runs' records), and ``"testbed"``: the synthetic
    task they trained on (:attr:`fgvc_lib.study.Study.testbed`), when given, and ``"recipe_protocol"``: the version
    of the recipe protocol that chose their rates (:data:`fgvc_lib.study.recipes.PROTOCOL_VERSION`), when one did."""
    counts: Dict[str, Tuple[int, dict]] = {}
    for machine in found:
        if machine is not None:
            key = json.dumps(machine, sort_keys=True)
            counts[key] = (counts.get(key, (0, machine))[0] + 1, machine)
    data = {"machines": [{"runs": n, "machine": m} for n, m in sorted(counts.values(), key=lambda c: -c[0])],
            "unrecorded": sum(machine is None for machine in found)}
    if pretraining:
        data["pretraining"] = pretraining
    if testbed:
        data["testbed"] = testbed
    if recipe_protocol is not None:
        data["recipe_protocol"] = recipe_protocol
    text = json.dumps(data, indent=1, sort_keys=True)
    return atomic_write_text(Path(path), text + "\n")


def recipe_protocol_of(folder: PathLike) -> int:
    """The recipe protocol's version a results folder's rates were chosen under (its ``machines.json``; a file that
    names none predates the versions: 1)."""
    path = Path(folder) / MACHINES_NAME
    return int(json.loads(path.read_text()).get("recipe_protocol", 1)) if path.is_file() else 1


def machines_line(folder: PathLike) -> str:
    """SUMMARY.md's line naming the machines a results folder's runs trained on (from its ``machines.json``)."""
    from .machine import describe

    path = Path(folder) / MACHINES_NAME
    if not path.is_file():
        return (f"Trained on: not recorded (no {MACHINES_NAME}: results written before runs named their machine and "
                f"pretraining, 2026-12-05, or by a run that stopped before its claims). A cold run from another draw "
                f"of the embedded pretraining may give other numbers: `make check`.")
    data = json.loads(path.read_text())
    parts = [f"{describe(entry['machine'])} ({entry['runs']} run(s))" for entry in data.get("machines", [])]
    if data.get("unrecorded"):
        parts.append(f"not recorded ({data['unrecorded']} run(s) trained before records named their machine)")
    line = "Trained on: " + "; ".join(parts) + "."
    return line + (f" Started from the {data['pretraining']}." if data.get("pretraining") else "")


def pretraining_warning(folders: Sequence[Tuple[str, str, Path]]) -> str:
    """One line for SUMMARY.md's head naming the results folders (``(notebook, profile, folder)`` of profiles with the
    embedded pretraining) whose ``machines.json`` does not name the pretraining their runs started from; "" when
    every one does."""
    missing = []
    for name, profile, folder in folders:
        path = Path(folder) / MACHINES_NAME
        if not path.is_file() or not json.loads(path.read_text()).get("pretraining"):
            missing.append(name if profile == "cpu" else f"{name} ({profile})")
    if not missing:
        return ""
    from .pretraining import PretrainingConfig

    return (f"**Pretraining not recorded.** The runs of {len(missing)} results folder(s) ({', '.join(missing)}) "
            "started from an embedded pretraining that their files do not name: they were trained before runs recorded "
            "it (2026-12-05). Results written before then started from the former 12-epoch pretraining, whose outcome "
            "moved with the float rounding of what trained it; this code pretrains for "
            f"{PretrainingConfig().epochs} epochs (the smoke profile fewer), so a cold `make reproduce` gives other "
            "numbers.")


REPLICATIONS_TITLE = "Replications: runs trained cold again"


def replication_warning(found: Sequence[tuple]) -> str:
    """One line for SUMMARY.md's head when a replication changed committed verdicts (per replication, how many
    decided verdicts it lost or turned into the opposite) or two replications of the same variants disagree
    (:func:`fgvc_lib.replication.twins`); ``found``: :func:`fgvc_lib.replication.compared`; "" when neither."""
    changed = []
    for notebook, label, _, _, _, table in found:
        if table is None:
            continue
        counts = table["change"].value_counts()
        parts = [f"{counts[c]} {word}" for c, word in (("opposite", "turned into the opposite verdict"),
                                                       ("lost", "no longer decided")) if c in counts]
        if parts:
            changed.append(f"{notebook} on {label}: " + ", ".join(parts))
    from .replication import twins

    disagree = []
    for notebook, first, second, table in twins(found):
        counts = table["change"].value_counts()
        parts = [f"{counts[c]} {word}" for c, word in (("opposite", "opposite"),) if c in counts]
        one_only = sum(counts.get(c, 0) for c in ("lost", "gained"))
        parts += [f"{one_only} decided in one only"] if one_only else []
        if parts:
            disagree.append(f"{notebook}, {first} against {second}: " + ", ".join(parts))
    if not changed and not disagree:
        return ""
    text = "**Not reproducible from a cold start.**"
    if changed:
        text += (" Claims re-measured from runs trained cold again (with other seeds, on another machine, or from "
                 "another draw of the embedded pretraining) changed committed verdicts (" + "; ".join(changed) + ").")
    if disagree:
        text += (" Two cold runs of the same variants and seeds disagree (" + "; ".join(disagree) + ").")
    return (text + " See \"" + REPLICATIONS_TITLE + "\" below. Every run of a notebook starts from one pretraining "
            "draw, which the intervals here do not count: read every verdict as that draw's.")


def replication_sections(found: Sequence[tuple]) -> List[str]:
    """SUMMARY.md's section on the replications (``found``: :func:`fgvc_lib.replication.compared`): per
    replication its machine and pretraining, each claim's committed and replicated verdict, and a tally of what became
    of the verdicts; then replications of the same variants against each other (:func:`fgvc_lib.replication.twins`);
    [] without any."""
    from .replication import UNMATCHED, chosen_rates, twins

    if not found:
        return []
    lines = [f"## {REPLICATIONS_TITLE}", "",
             "Claims measured again from runs trained cold (`results/replications/`, `python -m fgvc_lib.replication`), "
             "beside the committed ones: with other seeds (`--seeds`; `--whole` executes the whole notebook, so "
             "that the claims its cells score are measured too), on another machine, or from another draw of the "
             "embedded pretraining (`--pretraining-seed`). A verdict that other seeds take away rests on the seeds "
             "drawn more than its interval says: read it as fragile. Every run of a notebook starts from one pretraining, whose outcome moved with "
             "the float rounding of what trained it (issue 19); the committed intervals vary the fine-tuning seeds and "
             "the test images, not that draw. A change of verdict here is one they did not count (a replication that "
             "chose another learning rate changed that too).", ""]
    for notebook, label, folder, settings, committed_dir, table in found:
        rates = "; ".join(f"{variant} {lr:g} (committed: {chosen_rates(committed_dir).get(variant, float('nan')):g})"
                          for variant, lr in chosen_rates(folder).items())
        draw = (f"; pretraining seed {settings['pretraining_seed']}" if "pretraining_seed" in settings else "")
        then, now = recipe_protocol_of(committed_dir), settings.get("recipe_protocol", 1)
        draw += (f"; recipe protocol {now}" + (f" (the committed results': {then})" if then != now else "")
                 if rates else "")
        lines += [f"### {notebook}: {label}", "", machines_line(folder), "",
                  f"Profile {settings.get('profile')}{draw}; variants {', '.join(settings.get('variants', [])) or '?'}; "
                  f"seeds {', '.join(map(str, settings.get('seeds', []))) or '?'}."
                  + (f" Rates the recipe protocol chose there: {rates}." if rates else ""), ""]
        if table is None:
            from .replication import same_task

            lines += [f"*Not compared: the committed results and this replication trained on different synthetic "
                      f"tasks (their {MACHINES_NAME} name different testbeds, or one names none).*"
                      if not same_task(committed_dir, folder) else
                      f"*No claims to compare: {CLAIMS_NAME} or the replication's is missing.*", ""]
            continue
        counts = table["change"].value_counts()
        lines += [markdown_table(table), "",
                  f"Of {len(table)} claim(s): " + ", ".join(f"{counts[c]} {c}" for c in
                                                           ("same", "lost", "gained", "opposite", "changed",
                                                            UNMATCHED)
                                                           if c in counts) + ".", ""]
    for notebook, first, second, table in twins(found):
        counts = table["change"].value_counts()
        lines += [f"### {notebook}: {first} against {second}", "",
                  "The same variants and seeds trained cold twice; the second's verdict beside the first's.", "",
                  markdown_table(table), "",
                  f"Of {len(table)} claim(s): " + ", ".join(f"{n} {c}" for c, n in counts.items()) + ".", ""]
    return lines


def write_summary(results_dir: PathLike) -> Path:
    """Build and atomically write ``<results_dir>/SUMMARY.md``; returns its path."""
    root = Path(results_dir)
    return atomic_write_text(root / SUMMARY_NAME, build_summary(root))
