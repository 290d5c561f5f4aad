"""Recalibrating the synthetic testbed (issue 19, item 0): notebook 00's nearly label-free oracles trained under a
candidate rendering of the task, screened on a few seeds before a rendering becomes the cpu profile's.

Not from a paper. Why: a null result of an attention method means something only on a task where its kind of
attention pays (:data:`fgvc_lib.papers.synthetic_dataset.CONTROL_GAIN`). From the 30-epoch embedded pretraining the
head zoom lost about 10 points and the keypoint-mask pooling 4 to 6 (two pretraining draws, 5 seeds each,
``results/replications/00_synthetic_dataset``) on the rendering the paper notebooks had run on, whose classes differ in
six attributes, two of them (wing pattern, tail shape) away from the head.

What the screens of 2026-12-05 found (``results/calibration``; 5 seeds unless said): with the classes defined by
the head's four attributes the head zoom gained 18.9 [6.8, 31.0] points on the validation split (19.5 [7.9, 31.1]
on the test split, which the first screens read), so that rendering became the profiles'
(:data:`fgvc_lib.profiles.CPU_RENDERING`). The keypoint-mask pooling lost there (-5.4 [-17.4, 6.6] on validation,
-7.9 [-15.3, -0.4] on test); two 2-seed screens with more clutter and distractor parts left it undecided (one of
them started from a pretraining on the head's classes: it was trained before the pretraining drew every
attribute, and its folder was written with that rule set back, as its calibration.json says). Why it does not
pay is not established: it gained +5.9 [3.7, 8.1] under the former 12-epoch pretraining on six attributes and
lost under two 30-epoch draws; a cell of the stride-8 top map draws on the whole 96-px input, most of it from
beyond a part-sized square (:func:`fgvc_lib.room.centre_cell_reach`), one possible reason. The head's classes
cost the baseline: about 42 % top-1 with a spread over seeds of about 5 points, against about 74 % and 3 to 4
points with all six attributes.

A candidate is a set of :class:`fgvc_lib.data.synthetic.SyntheticConfig` overrides on top of the cpu profile's
(:data:`fgvc_lib.profiles.CPU_RENDERING`). The embedded pretraining follows the rendering, so each candidate pretrains
once (about 10 minutes on one core). :func:`screen` trains the kept variants of notebook 00 at the default rate (the
recipe protocol's trials would cost more than the screen; the rate is fixed before looking) on a few seeds, in a runs
folder of its own, and writes ``results/calibration/<label>/``: ``claims.csv`` (every claim those variants decide,
under the one verdict rule), ``calibration.json`` (the overrides, variants, seeds, each variant's mean top-1, the
pretraining, the split scored) and ``machines.json``. :func:`screen_table` sets the candidates side by side.

A screen is scored on the validation split of the recipe protocol (:data:`fgvc_lib.study.recipes.VALIDATION_SHARE`
of every class's training images held out, the same images for every run): the rendering is a choice, and a choice
never reads the test set. ``scored_on="test"`` is kept for the first screens of 2026-12-05, which read it.

Command line: ``python -m fgvc_lib.calibration head-attributes --rendering '{"class_attributes": ["beak_shape",
"beak_colour", "eye_ring", "crest"]}' --variants baseline,oracle-zoom-head,baseline-os8,oracle-pool-keypoints
--seeds 0,1``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence

import pandas as pd

from . import paths
from .atomic import atomic_write_text

CALIBRATION = "calibration"
SETTINGS_NAME = "calibration.json"
# The generator seed of the task a screen draws (its classes and images): not the cpu profile's, so that a rendering
# chosen on screens never read the test images the notebooks are scored on (fgvc_lib.profiles).
SCREEN_SEED = 0
# the screen's columns: each label-free oracle's claim (its text's start) -> the column it fills
SCREENED = {"zoom oracle (head": "zoom gain", "spatial-attention oracle (keypoint mask": "spatial gain (keypoints)",
            "spatial-attention oracle (head box mask": "spatial gain (head box)"}


def calibration_dir(label: str, root: Optional[Path] = None) -> Path:
    """``<results>/calibration/<label>``; a label must be a plain folder name and not a profile's (SUMMARY.md reads
    ``<results>/<folder>/<profile>`` as a notebook's run in that profile)."""
    from .profiles import PROFILE_NAMES

    if not label or "/" in label or label.startswith(".") or label in PROFILE_NAMES:
        raise ValueError(f"a candidate's label must be a plain folder name other than a profile's "
                         f"({', '.join(PROFILE_NAMES)}); got {label!r}")
    return Path(root or paths.results_root()) / CALIBRATION / label


def scored_on_validation(variants: Mapping[str, object], share: float) -> dict:
    """``variants`` (name -> :class:`fgvc_lib.study.Variant`) each trained without ``share`` of every class's training
    images and scored on them (the recipe protocol's validation split, :mod:`fgvc_lib.data.validation`)."""
    import dataclasses

    return {name: dataclasses.replace(v, data=tuple(o for o in v.data if o[0] != "validation") + (("validation", share),))
            for name, v in variants.items()}


def candidate_profile(rendering: Mapping[str, object], base: str = "cpu"):
    """Profile ``base`` with its synthetic set drawn with generator seed :data:`SCREEN_SEED` and ``rendering``
    changed (a ``seed`` in ``rendering`` wins); a key the generator does not know is a ValueError that names the
    valid ones (checked here, before anything trains)."""
    import dataclasses

    from .data.synthetic import SyntheticConfig
    from .profiles import get_profile

    known = {f.name for f in dataclasses.fields(SyntheticConfig)}
    unknown = sorted(set(rendering) - known)
    if unknown:
        raise ValueError(f"unknown rendering knob(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    profile = get_profile(base)
    synthetic = {**profile.synthetic, "seed": SCREEN_SEED,
                 **{k: tuple(v) if isinstance(v, list) else v for k, v in rendering.items()}}
    SyntheticConfig(**synthetic)   # a bad value fails now, with the generator's own message
    return profile.replace(synthetic=synthetic)


SCORED_ON = ("validation", "test")


def screen(label: str, rendering: Mapping[str, object], keep: Sequence[str], seeds: str = "0,1",
           workers: int = 0, scored_on: str = "validation") -> Path:
    """Train notebook 00's variants ``keep`` on the task drawn with ``rendering`` (:func:`candidate_profile`) at the
    default rate on ``seeds``, in ``<runs>/calibration/<label>`` (a re-run loads what finished), scored on
    ``scored_on`` (:data:`SCORED_ON`: the validation split, trained without it, or the test split), and write the
    candidate's folder (:func:`calibration_dir`); returns it."""
    from .papers.synthetic_dataset import STUDY
    from .pretraining import describe_spec
    from .replication import train_kept, write_decided
    from .study.recipes import VALIDATION_SHARE

    if scored_on not in SCORED_ON:
        raise ValueError(f"scored_on must be one of {', '.join(SCORED_ON)}; got {scored_on!r}")
    if not keep:
        raise ValueError("keep names no variant to train: give at least one of notebook 00's variants")
    folder = calibration_dir(label)
    # on the validation split: trained without the held-out share, scored on it
    held_out = (lambda variants: scored_on_validation(variants, VALIDATION_SHARE)) if scored_on == "validation" else None
    study = train_kept(STUDY, keep, paths.runs_root() / CALIBRATION / label, prepare=held_out,
                       profile=candidate_profile(rendering), seeds=seeds, workers=workers, lr_selection="fixed")
    write_decided(study, folder)
    runs = {name: study.runs_of(name) for name in keep}
    top1 = {name: sum(run.accuracy() for run in runs[name]) / len(runs[name]) for name in keep}
    written = {"rendering": dict(rendering), "variants": list(keep), "seeds": list(study.settings.seeds),
               "lr_selection": "fixed", "mean_top1": top1, "pretraining": describe_spec(study.backbone_spec),
               "scored_on": scored_on, "images_scored": int(len(runs[keep[0]][0].correct()))}
    atomic_write_text(folder / SETTINGS_NAME, json.dumps(written, indent=1, sort_keys=True, default=str) + "\n")
    return folder


def screen_table(root: Optional[Path] = None) -> pd.DataFrame:
    """One row per screened candidate under ``<root>/calibration`` (default: the results folder): its rendering, the
    split it was scored on, seeds, the baseline's mean top-1 and each label-free oracle's gain with its interval and
    verdict (:data:`SCREENED`; empty where the candidate did not train it). A folder without both files (a screen
    that stopped before writing them) is left out."""
    from .reporting import CLAIMS_NAME, read_claims

    base = Path(root or paths.results_root()) / CALIBRATION
    rows = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        if not ((folder / SETTINGS_NAME).is_file() and (folder / CLAIMS_NAME).is_file()):
            continue
        settings = json.loads((folder / SETTINGS_NAME).read_text())
        claims = read_claims(folder / CLAIMS_NAME)
        row = {"candidate": folder.name, "rendering": json.dumps(settings["rendering"], sort_keys=True),
               "scored on": settings.get("scored_on", "test"), "seeds": len(settings["seeds"]),
               "baseline top-1": settings["mean_top1"].get("baseline"),
               # the pretraining file and where it was trained: one file name trained on two machines differs
               "pretraining": _pretraining_short(settings.get("pretraining", ""))}
        for start, column in SCREENED.items():
            match = claims[claims["claim"].str.startswith(start)]
            if match.empty:
                row[column], row[f"{column} verdict"] = "", ""
                continue
            found = match.iloc[0]
            row[column] = f"{found['our_effect']:.1f} [{found['ci_low']:.1f}, {found['ci_high']:.1f}]"
            row[f"{column} verdict"] = found["verdict"]
        rows.append(row)
    return pd.DataFrame(rows)


def _pretraining_short(line: str) -> str:
    """A screen's pretraining line (:func:`fgvc_lib.pretraining.describe_record`) cut to its file, last training
    accuracy and machine; "" when the screen recorded none."""
    match = re.match(r"pretraining: (\S+), last epoch's training accuracy (\S+ %).*trained on ([^,]+)", line or "")
    return f"{match.group(1)}, {match.group(2)}, {match.group(3).strip()}" if match else (line or "")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgvc_lib.calibration", description=__doc__.split("\n\n")[0])
    parser.add_argument("label", help="the candidate's folder name, e.g. head-attributes")
    parser.add_argument("--rendering", required=True, help="SyntheticConfig overrides as a JSON object")
    parser.add_argument("--variants", default="baseline,oracle-zoom-head,baseline-os8,oracle-pool-keypoints,"
                                              "oracle-pool-head",
                        help="comma-separated variants of notebook 00 to train")
    parser.add_argument("--seeds", default="0,1", help="the notebook's seeds parameter")
    parser.add_argument("--workers", type=int, default=0, help="runs at once (0: one per core)")
    parser.add_argument("--scored-on", default="validation", choices=SCORED_ON,
                        help="the split the candidate is scored on (default: validation; a choice never reads the test set)")
    args = parser.parse_args(argv)
    try:
        rendering = json.loads(args.rendering)
    except json.JSONDecodeError as error:
        parser.error(f"--rendering is not a JSON object: {error}")
    if not isinstance(rendering, dict):
        parser.error("--rendering must be a JSON object, e.g. '{\"clutter\": 12}'")
    folder = screen(args.label, rendering, [v for v in args.variants.split(",") if v], args.seeds, args.workers,
                    args.scored_on)
    print(screen_table().to_string(index=False))
    print(f"candidate written to {folder}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
