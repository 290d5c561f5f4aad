"""Where the project keeps things on disk: the one place that knows the folder conventions.

Every folder can be moved with an environment variable (tests and ``make test`` point them at a
temporary folder so that a test run never touches the committed results):

* results: ``$FGVC_RESULTS_DIR``, default ``<repository>/results``. Results are committed, so a run
  must never write over results that belong to another profile. The rule:

  - the default profile (:data:`fgvc_lib.profiles.DEFAULT_PROFILE`, ``cpu``) writes to
    ``results/<notebook>/``, flat; this is the run that is committed;
  - every other profile writes to ``results/<notebook>/<profile>/`` (``results/05_ssanet/smoke/``,
    ``results/03_clan/paper/``); these subfolders are ignored by git (see ``.gitignore``), so a
    smoke or paper run can sit next to the committed numbers without replacing them.

  ``results/SUMMARY.md`` (:func:`fgvc_lib.reporting.write_summary`) gives each of these folders its
  own section.
* checkpoints of training runs: ``$FGVC_RUNS_DIR``, default ``<repository>/.cache/runs``, then
  ``<notebook>/<profile>/`` (one folder per profile whatever the profile, since runs are never
  committed).
* caches shared by every checkout (the synthetic datasets, the embedded pretraining):
  ``$FGVC_CACHE_DIR``, default ``~/.cache/fgvc_lib``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .profiles import DEFAULT_PROFILE, PROFILE_NAMES

__all__ = ["repo_root", "results_root", "results_dir", "runs_root", "runs_dir", "cache_dir"]


def _from_env(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else default


def _check_name(what: str, name: str, example: str) -> None:
    # The name becomes a folder name: refuse anything that would land somewhere else.
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"{what} must be a plain name such as {example!r} (no folders); got {name!r}")


def repo_root() -> Path:
    """The repository folder: the parent of the ``fgvc_lib`` package."""
    return Path(__file__).resolve().parent.parent


def results_root() -> Path:
    """The folder of all results: ``$FGVC_RESULTS_DIR`` if set, else ``<repository>/results``."""
    return _from_env("FGVC_RESULTS_DIR", repo_root() / "results")


def results_dir(notebook: str, profile: str) -> Path:
    """The folder a notebook's run in ``profile`` writes its results to, created if missing.

    ``results_root()/<notebook>`` for the default profile, ``results_root()/<notebook>/<profile>``
    for any other. ``profile`` is a profile name; an unknown one raises ``ValueError``.
    """
    _check_name("notebook", notebook, "05_ssanet")
    if profile not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILE_NAMES)}")
    folder = results_root() / notebook
    if profile != DEFAULT_PROFILE:
        folder = folder / profile
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def runs_root() -> Path:
    """The folder of all training runs: ``$FGVC_RUNS_DIR`` if set, else ``<repository>/.cache/runs``."""
    return _from_env("FGVC_RUNS_DIR", repo_root() / ".cache" / "runs")


def runs_dir(notebook: str, profile: str) -> Path:
    """Where a notebook's training runs in ``profile`` keep their checkpoints (not created).

    ``$FGVC_RUNS_DIR`` if set, else ``<repository>/.cache/runs``, then ``<notebook>/<profile>``.
    Any plain profile name is accepted here (a test may train under a profile of its own).
    """
    _check_name("notebook", notebook, "05_ssanet")
    _check_name("profile", profile, DEFAULT_PROFILE)
    return runs_root() / notebook / profile


def cache_dir() -> Path:
    """The cache shared by every checkout: ``$FGVC_CACHE_DIR`` if set, else ``~/.cache/fgvc_lib``."""
    return _from_env("FGVC_CACHE_DIR", Path.home() / ".cache" / "fgvc_lib")
