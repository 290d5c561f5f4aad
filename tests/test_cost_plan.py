"""The cost plan (fgvc_lib.study.cost_plan, issue 20 item 6): runs, epochs, images and hours per variant from a
short throughput probe; ``plan_only`` stops ``Study.run`` before any training; ``make reproduce PLAN=1`` prints
the plans and a grand total without papermill. Smoke profile, the tiny paper of tests/study_paper.py."""
from __future__ import annotations

import math

import pytest

import study_paper
from conftest import use_smoke_folders
from fgvc_lib import reproduce
from fgvc_lib.data.validation import validation_indices
from fgvc_lib.study import Study
from fgvc_lib.study.cost_plan import PlanOnly, images_per_epoch
from fgvc_lib.study.recipes import VALIDATION_SHARE

PAPER = study_paper.PAPER


@pytest.fixture(scope="module", autouse=True)
def smoke_env(tmp_path_factory):
    """Smoke profile; one cache for the module (the synthetic set is made once), results and runs of its own."""
    root = tmp_path_factory.mktemp("cost_plan")
    with pytest.MonkeyPatch.context() as mp:
        use_smoke_folders(mp, root)
        yield root


@pytest.mark.parametrize("batch_size", [16, 8])   # 8: the profile's max_batches caps an epoch
def test_cost_table_counts_runs_epochs_and_images_per_variant(smoke_env, batch_size, capsys):
    study = Study(PAPER, variants="plain,cropped,tuned,shared", seeds="0,1", epochs=2, batch_size=batch_size,
                  executor="inline")
    table = study.cost_plan(probe_steps=2)
    # independently of the plan: the training split, the profile's cap, the validation share of the trials
    train_set = study.data().train_set
    cap = study.profile.max_batches * batch_size
    assert len(train_set) % batch_size != 1          # no batch dropped: an epoch reads the split or the cap
    per_epoch = min(len(train_set), cap)
    kept = len(validation_indices(train_set.targets, VALIDATION_SHARE)[0])
    per_trial_epoch = min(kept, cap)
    trials = {"tuned": 2}                             # study_paper: tuned tries two rates; shared takes its rate
    assert list(table.index) == ["plain", "cropped", "tuned", "shared", "total"]
    for name in ("plain", "cropped", "tuned", "shared"):
        row = table.loc[name]
        assert (row["runs"], row["epochs"], row["images_per_epoch"]) == (2, 2, per_epoch)
        assert row["trial_runs"] == trials.get(name, 0)
        assert row["images"] == 2 * 2 * per_epoch + trials.get(name, 0) * 2 * per_trial_epoch
        assert row["images_per_s"] > 0
        assert math.isclose(row["hours"], row["images"] / row["images_per_s"] / 3600.0)
    rows, total = table.drop(index="total"), table.loc["total"]
    assert total["runs"] == rows["runs"].sum() == 8 and total["trial_runs"] == 2
    assert total["images"] == rows["images"].sum()
    assert math.isclose(total["hours"], rows["hours"].sum())
    assert table.attrs["device"]
    printed = capsys.readouterr().out
    assert "cost plan of 99_tiny" in printed and f"hours of one run at a time on this machine's {table.attrs['device']}" in printed
    assert not study.runs_dir.exists()                # nothing trained, no run folder


def test_images_per_epoch_follows_the_loader_and_the_cap():
    class Loader:
        def __init__(self, size, batch, drop_last):
            self.dataset, self.batch_size, self.drop_last = range(size), batch, drop_last

        def __len__(self):
            return self.dataset.__len__() // self.batch_size + (0 if self.drop_last else
                                                                 bool(len(self.dataset) % self.batch_size))
    assert images_per_epoch(Loader(50, 16, False), None) == 50
    assert images_per_epoch(Loader(49, 16, True), None) == 48
    assert images_per_epoch(Loader(50, 16, False), 2) == 32
    assert images_per_epoch(Loader(50, 16, False), 4) == 50


def test_plan_only_prints_the_plan_and_trains_nothing(smoke_env, capsys):
    study = Study(PAPER, variants="plain", plan_only=True, executor="inline")
    assert study.settings.execution.plan_only
    with pytest.raises(PlanOnly, match="nothing was trained. To train, set plan_only = False"):
        study.run()
    assert "cost plan of 99_tiny" in capsys.readouterr().out
    assert not study.runs_dir.exists() and not study.runs


def test_reproduce_plan_prints_a_grand_total_without_papermill(smoke_env, monkeypatch, capsys):
    import papermill

    def refuse(*args, **kwargs):
        raise AssertionError("--plan must not execute a notebook")
    monkeypatch.setattr(papermill, "execute_notebook", refuse)
    results = smoke_env / "plan_results"
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(results))
    assert reproduce.main(["--profile", "smoke", "--notebooks", "05", "--plan", "1", "--loader-workers", "0",
                           "--compile", ""]) == 0
    out = capsys.readouterr().out
    assert "== 05_ssanet: plan (profile=smoke, loader_workers=0)" in out and "cost plan of 05_ssanet" in out
    assert "grand total (1 notebook(s)): " in out and "hours of one run at a time on this machine's " in out
    assert not results.exists()                         # no executed copy, no SUMMARY.md


def test_reproduce_passes_the_new_parameters_to_papermill(tmp_path, monkeypatch):
    passed = {}

    def run_notebook(name, wanted):
        passed[name] = reproduce.notebook_parameters(reproduce.NOTEBOOK_DIR / f"{name}.ipynb", wanted)
    monkeypatch.setattr(reproduce, "run_notebook", run_notebook)
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path))
    assert reproduce.main(["--profile", "smoke", "--notebooks", "03", "--loader-workers", "4", "--compile", "1",
                           "--plan", ""]) == 0
    assert passed["03_clan"]["loader_workers"] == 4 and passed["03_clan"]["compile"] is True
    passed.clear()
    assert reproduce.main(["--profile", "smoke", "--notebooks", "03", "--loader-workers", "", "--compile", ""]) == 0
    assert "loader_workers" not in passed["03_clan"] and "compile" not in passed["03_clan"]
    for bad in (["--loader-workers", "-1"], ["--compile", "maybe"], ["--plan", "2"]):
        with pytest.raises(SystemExit):
            reproduce.main(["--profile", "smoke", "--notebooks", "03", *bad])


def test_a_frozen_extractors_memo_is_filled_once_then_read():
    from fgvc_lib.study.cost_plan import MEMO_FORMS, _hours

    assert MEMO_FORMS == 2                                    # an image as it is and flipped
    # no memo: every image at the probed rate
    assert _hours(1000, 100, 10.0, None, 0) == (1000 / 10.0 / 3600.0, 0)
    # the first variant fills the memo: 2 epochs' worth (200 images) at 10/s, the other 800 at 100/s
    hours, filled = _hours(1000, 100, 10.0, 100.0, 0)
    assert hours == pytest.approx((200 / 10.0 + 800 / 100.0) / 3600.0) and filled == 200
    # a later variant of the same notebook finds it filled: all at the memo's rate
    assert _hours(1000, 100, 10.0, 100.0, 200) == (pytest.approx(1000 / 100.0 / 3600.0), 200)
    # a variant smaller than the memo's share
    assert _hours(150, 100, 10.0, 100.0, 0) == (pytest.approx(150 / 10.0 / 3600.0), 150)


def test_the_main_column_marks_the_variants_of_the_main_comparisons(smoke_env):
    from fgvc_lib.papers import synthetic_dataset
    from fgvc_lib.study.cost_plan import main_variants

    study = Study(synthetic_dataset.STUDY, profile="smoke", executor="inline")
    # notebook 00's main claims: the zoom oracle (head) against the baseline, the head-box-mask spatial oracle
    # against the baseline at its stride, and the baseline against chance (a fixed number, no variant)
    assert main_variants(study) == {"baseline", "oracle-zoom-head", "baseline-os8", "oracle-pool-head"}


def test_notebook_00s_plan_counts_its_knob_grid(smoke_env):
    from fgvc_lib.papers import synthetic_dataset

    study = Study(synthetic_dataset.STUDY, profile="smoke", executor="inline", seeds="0,1", knob_grid=True)
    points = [p for p in synthetic_dataset.knob_points(study.settings) if not p.is_own]
    extra = synthetic_dataset.knob_grid_runs(study)
    assert [label for label, _ in extra] == [f"knob grid: {p.label}" for p in points]
    assert all(len(jobs) == 2 * 2 for _, jobs in extra)       # two arms x two seeds; the own point adds none
    planned = {job.run_dir for _, job in study.jobs()}
    assert not planned & {job.run_dir for _, jobs in extra for job in jobs}
    table = study.cost_plan(probe_steps=1)
    per_class = dict(study.data_spec("synthetic").synthetic)["train_per_class"]
    for point in points:
        row = table.loc[f"knob grid: {point.label}"]
        assert row["runs"] == 4 and row["trial_runs"] == 0 and not row["main"]
        if point.train_per_class is not None:                # the smaller generated set, read whole
            assert point.train_per_class < per_class
            assert row["images"] == 4 * row["epochs"] * row["images_per_epoch"]
    assert table.loc["total", "runs"] == sum(len(v.seeds) for v in study.variants.values()) + 4 * len(points)
    assert table.attrs["main_hours"] == pytest.approx(table[table["main"]]["hours"].sum())
    without = Study(synthetic_dataset.STUDY, profile="smoke", executor="inline", seeds="0,1", knob_grid=False)
    assert synthetic_dataset.knob_grid_runs(without) == []
