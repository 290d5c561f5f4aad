"""The knob grid (fgvc_lib.study.knobs); the engine's separated seeds it relies on are tested in test_engine."""
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fgvc_lib.papers import synthetic_dataset
from fgvc_lib.study import Study, knobs
from fgvc_lib.study.knobs import Knobs

from engine_task import config


# --------------------------------------------------------------------------- grid points


def test_knobs_reject_bad_points():
    with pytest.raises(ValueError, match="fixed"):
        Knobs("x", fixed="both")
    with pytest.raises(ValueError, match="epochs"):
        Knobs("x", epochs=0)
    with pytest.raises(ValueError, match="lr_factor"):
        Knobs("x", lr_factor=0.0)
    assert Knobs("x").kind == "recipe" and Knobs("x", fixed="init").kind == "initialisation fixed"
    assert Knobs("x").is_own and not Knobs("x", epochs=3).is_own and not Knobs("x", fixed="data").is_own


@pytest.fixture
def study(private_dirs):
    return Study(synthetic_dataset.STUDY, profile="smoke", executor="inline")


def test_the_studys_own_point_shares_the_studys_runs(study):
    own = knobs.point_jobs(study, Knobs("own"), "baseline")
    planned = [job.run_dir for _, job in study.jobs() if job.variant.name == "baseline"]
    assert [job.run_dir for job in own] == planned


def test_each_knob_changes_what_it_names_and_nothing_else(study):
    base = study.variants["baseline"]
    spec = study.data_spec("synthetic")
    per_class = dict(spec.synthetic)["train_per_class"]
    more, = knobs.point_jobs(study, Knobs("more", train_per_class=2 * per_class), "baseline")
    assert dict(more.data.synthetic) == {**dict(spec.synthetic), "train_per_class": 2 * per_class}
    assert more.variant.train == base.train
    faster, = knobs.point_jobs(study, Knobs("lr", lr_factor=3.0, epochs=5, scheduler="none", batch_size=7), "baseline")
    assert faster.variant.train.lr == pytest.approx(3 * base.train.lr)
    assert (faster.variant.train.epochs, faster.variant.train.scheduler, faster.data.batch_size) == (5, "none", 7)
    assert faster.data.synthetic == spec.synthetic
    data_fixed, = knobs.point_jobs(study, Knobs("d", fixed="data"), "baseline")
    init_fixed, = knobs.point_jobs(study, Knobs("i", fixed="init"), "baseline")
    assert (data_fixed.variant.train.data_seed, data_fixed.variant.train.init_seed) == (0, None)
    assert (init_fixed.variant.train.data_seed, init_fixed.variant.train.init_seed) == (None, 0)
    own, = knobs.point_jobs(study, Knobs("own"), "baseline")
    dirs = {job.run_dir for job in (own, more, faster, data_fixed, init_fixed)}
    assert len(dirs) == 5   # every point trains in a folder of its own


def test_a_point_names_a_planned_arm(study):
    with pytest.raises(ValueError, match="no variant 'nope'"):
        knobs.point_jobs(study, Knobs("own"), "nope")


# --------------------------------------------------------------------------- one row, by hand


def _run(correct, seconds):
    return SimpleNamespace(correct=lambda: np.asarray(correct, dtype=float), record=SimpleNamespace(seconds=seconds))


def test_a_row_measures_the_spreads_by_hand():
    # 3 seeds x 4 images; a's accuracies 50, 75, 25; b - a per seed: +25, 0, +50
    a = [[100, 0, 100, 0], [100, 100, 100, 0], [0, 0, 100, 0]]
    b = [[100, 100, 100, 0], [100, 100, 100, 0], [100, 100, 100, 0]]
    job = SimpleNamespace(variant=SimpleNamespace(train=config(epochs=3)),
                          data=SimpleNamespace(synthetic=(("train_per_class", 9), ("num_classes", 2)), batch_size=16))
    row = knobs._row(Knobs("p"), [_run(x, 10.0) for x in a], [_run(x, 20.0) for x in b], job, 2.0)
    assert row["a top-1"] == pytest.approx(50.0)
    assert row["a sd"] == pytest.approx(25.0)                 # sd of 50, 75, 25
    assert row["difference"] == pytest.approx(25.0)
    assert row["difference sd"] == pytest.approx(25.0)        # sd of 25, 0, 50
    assert row["se_seed"] == pytest.approx(25.0 / math.sqrt(3))
    assert row["seconds per run"] == pytest.approx(15.0) and row["comparison seconds"] == pytest.approx(90.0)
    assert (row["train per class"], row["epochs"], row["batch"], row["seeds"]) == (9, 3, 16, 3)
    assert row["comparison images"] == 9 * 2 * 3 * 6   # per class x classes x epochs x runs (2 arms x 3 seeds)
    # the interval's df are at most 2 (seeds) + 3 (images): t(0.975, 5) = 2.5706, times se >= se_seed
    assert row["half-width"] >= 2.5706 * row["se_seed"]
    assert math.isnan(row["seeds for target"])   # 4 test images: their own variation alone exceeds +-2


def _table(*rows):
    columns = ["point", "kind", "comparison images", "half-width", "seeds"]
    return pd.DataFrame([{**dict(zip(columns, r)), "own recipe": r[0] == "own", "comparison seconds": 1.0,
                          "se_seed": 0.3, "se_test": 0.4, "seeds for target": 12.0, "difference": 5.0,
                          "a top-1": 60.0} for r in rows])


def test_the_cheapest_recipe_point_that_reaches_the_target_is_chosen():
    table = _table(("own", "recipe", 100.0, 2.5, 5), ("more data", "recipe", 200.0, 1.5, 5),
                   ("more epochs", "recipe", 150.0, 1.9, 5), ("split", "data order fixed", 10.0, 0.5, 5))
    assert knobs.cheapest_point(table, 2.0)["point"] == "more epochs"
    assert "The cheapest point that reaches +-2 points is more epochs" in knobs.choice_text(table, 2.0)
    assert knobs.cheapest_point(table, 1.0) is None
    assert "No recipe point" in knobs.choice_text(table, 1.0)
    assert "It is the cheapest point" in knobs.choice_text(table, 3.0)
    # a standard deviation from 5 seeds: chi-square(4) 95 % bounds, sqrt(4 / 11.14) and sqrt(4 / 0.484)
    assert "within a factor of 0.6 to 2.9" in knobs.choice_text(table, 3.0)
    assert "Of its standard error (0.50 points), the test images' part is 0.40 and the seeds' 0.30: more seeds " \
           "alone would need 12 seeds" in knobs.choice_text(table, 2.0)
    with pytest.raises(ValueError, match="own recipe"):
        knobs.choice_text(table.assign(**{"own recipe": False}))
    # no seed count found: too many seeds where the test images' part alone is narrower than +-2 (1.96 x 0.4),
    # perhaps none where it is wider (1.96 x 1.5 = 2.9)
    unknown = table.assign(**{"seeds for target": math.nan})
    assert "alone would need more than 200 seeds to reach" in knobs.choice_text(unknown, 2.0)
    assert "if any number would do (the test images' part alone is +-2.9)" in \
           knobs.choice_text(unknown.assign(se_test=1.5), 2.0)


def test_summary_states_the_variance_finding_from_knobs_csv(tmp_path):
    from fgvc_lib.reporting import KNOB_COLUMNS, KNOBS_NAME, variance_finding

    assert variance_finding(tmp_path) == ""
    rows = [("own", "recipe", True, 4.0, 3.1), ("more data", "recipe", False, 2.5, 2.2),
            ("d", "data order fixed", False, 1.0, 1.5), ("i", "initialisation fixed", False, 3.0, 2.9)]
    table = pd.DataFrame([{c: 1.0 for c in KNOB_COLUMNS} | {"point": p, "kind": k, "own recipe": own,
                                                            "comparison": "b - a", "difference sd": sd,
                                                            "half-width": hw, "comparison images": 6000.0}
                          for p, k, own, sd, hw in rows])
    (tmp_path / "00_x").mkdir()
    table.to_csv(tmp_path / "00_x" / KNOBS_NAME, index=False)
    text = variance_finding(tmp_path)
    assert "comparison b - a" in text and "half-width of 3.10" in text and "No recipe point" in text
    assert "4.00 points with both sources varying, 3.00 with the data order alone varying, 1.00 with the " \
           "initialisation alone" in text
