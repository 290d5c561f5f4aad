"""`make check`: the verdict, the missing committed table or row, and the trial it trains (not trained here)."""
import dataclasses
from pathlib import Path

import pytest

from fgvc_lib import paths, reproduce, reproduction_check
from fgvc_lib.papers import synthetic_dataset
from fgvc_lib.study.jobs import RunRecord

HEADER = "variant,lr,validation_top1,validation_se,chosen,seed,held_out_images\n"


def _write_trials(rows: str) -> Path:
    path = paths.results_dir("00_synthetic_dataset", "cpu") / "recipe_trials.csv"
    path.write_text(HEADER + rows)
    return path


def test_compare_exact_and_different():
    code, text = reproduction_check.compare(56.94444444444444, 56.94444444444444, "a CPU")
    assert code == 0
    assert "reproduces the committed trial exactly" in text and "machine: a CPU" in text

    code, text = reproduction_check.compare(38.19, 56.94, "AMD EPYC, AVX2")
    assert code == 3
    assert "38.19" in text and "56.94" in text and "-18.75" in text
    assert "does not reproduce" in text and "draw of the embedded pretraining" in text
    assert "verdicts and intervals" in text and "AMD EPYC, AVX2" in text


def test_machine_description_names_cpu_and_versions():
    import torch

    text = reproduction_check.machine_description()
    assert f"torch {torch.__version__}" in text and "numpy" in text and "PIL" in text and "torchvision" in text


def test_missing_file_or_row_exits_2(private_dirs, capsys):
    assert reproduction_check.run_check() == 2
    assert "no committed recipe trials" in capsys.readouterr().out

    _write_trials("baseline,0.015,56.9,4.1,True,0,144\nother,0.05,50.0,4.1,False,0,144\n")
    assert reproduction_check.run_check() == 2
    assert "no row for variant 'baseline' at lr 0.05" in capsys.readouterr().out


def test_check_trains_the_trial_select_recipes_would(tmp_path, monkeypatch, capsys):
    for name in ("FGVC_RESULTS_DIR", "FGVC_RUNS_DIR", "FGVC_CACHE_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.delenv("FGVC_PROFILE", raising=False)
    lr = synthetic_dataset.LR
    _write_trials(f"baseline,0.015,56.9,4.1,True,0,144\nbaseline,{lr},56.94444444444444,4.1,False,0,144\n")
    received = []

    def fake_execute_run(job):
        received.append(job)
        return RunRecord(job.variant.name, job.seed, job.run_dir, accuracy=38.19444444444444, seconds=1.0,
                         epochs=1, loaded=False)

    monkeypatch.setattr(reproduction_check, "execute_run", fake_execute_run)
    assert reproduce.main(["--check", "--profile", "smoke", "--notebooks", "03"]) == 3   # other options ignored

    # the job Study.select_recipes itself hands to train_jobs (captured, not recomputed here)
    from fgvc_lib.study import Study

    class Captured(Exception):
        pass

    captured = {}

    def capture(self, jobs, what):
        captured[what] = jobs
        raise Captured
    monkeypatch.setattr(Study, "train_jobs", capture)
    study = Study(synthetic_dataset.STUDY, profile="cpu")
    with pytest.raises(Captured):
        study.select_recipes()
    trial_job = next(job for _, job in captured["trials"] if job.variant.train.lr == lr)
    expected = Path(trial_job.run_dir)
    data = trial_job.data

    (job,) = received
    assert job.variant == trial_job.variant
    assert job.variant.name == f"baseline@lr{lr!r}" and job.variant.train.lr == lr and job.seed == 0
    assert Path(job.run_dir) == expected
    assert str(expected).startswith(str(tmp_path / "fgvc_runs_dir" / "00_synthetic_dataset" / "cpu"))
    assert job.threads == study.threads and job.data == data and job.backbone == study.backbone_spec
    out = capsys.readouterr().out
    assert "measured 38.19 %, committed 56.94 % (difference -18.75 points)" in out and "machine: " in out
    # the pretraining it started from (none trained here: the run was faked, so its record is missing)
    assert "this machine's pretraining: no record" in out and "the committed results name no pretraining" in out


def test_make_check_is_listed():
    makefile = (paths.repo_root() / "Makefile").read_text()
    assert "\ncheck: $(STAMP)\n\t$(PY) -m fgvc_lib.reproduce --check\n" in makefile
    assert "make check" in makefile.split("PYTHON ?=")[0]
    phony = next(line for line in makefile.splitlines() if line.startswith(".PHONY:"))
    assert "check" in phony.split()
