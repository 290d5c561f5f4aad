"""The one study runner (fgvc_lib.study) on a tiny paper declared for these tests (tests/study_paper.py).

Everything runs in the smoke profile (slim VGG-16 with batch norm, 64 px, a few batches of the tiny
synthetic set). The module shares one cache folder, so the synthetic set and the embedded
pretraining are made once; each grid of runs gets its own runs folder. Runs trained elsewhere (a
spawn process pool, submitit's local executor) unpickle the tiny paper's functions: this folder is
put on PYTHONPATH for them.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

import study_paper
from conftest import use_smoke_folders
from fgvc_lib.engine import TrainConfig
from fgvc_lib.locks import exclusive
from fgvc_lib.models.baseline import BaselineNet, cross_entropy_loss
from fgvc_lib.reporting import CLAIM_COLUMNS, RESULT_COLUMNS, read_claims, read_table
from fgvc_lib.statistics import VERDICTS
from fgvc_lib.study import Accuracy, Cell, Claim, Fixed, Paper, Parameter, Run, Score, Study, Variant
from fgvc_lib.study import executors
from fgvc_lib.study.executors import InlineExecutor, PoolExecutor, RunFailed, SubmititExecutor, make_executor
from fgvc_lib.study.jobs import LOCK_NAME, RECORD_NAME, RunRecord, execute_run, run_key
from fgvc_lib.study.parameters import Execution, check_declared, parameters_table

HERE = Path(__file__).resolve().parent
PAPER = study_paper.PAPER


@pytest.fixture(scope="module", autouse=True)
def study_env(tmp_path_factory):
    """Smoke profile; caches, runs and results in a folder of this module; tests/ importable by workers."""
    root = tmp_path_factory.mktemp("study")
    with pytest.MonkeyPatch.context() as mp:
        use_smoke_folders(mp, root)
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p))
        threads = torch.get_num_threads()
        yield root
        torch.set_num_threads(threads)   # a Study applies the profile's thread count to this process


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A runs folder of the test's own."""
    monkeypatch.setenv("FGVC_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture(autouse=True)
def loss_hook():
    """counted_loss's counter and crash switch, reset around every test."""
    study_paper.LOSS_CALLS.update(calls=0, fail_after=None)
    yield study_paper.LOSS_CALLS
    study_paper.LOSS_CALLS.update(calls=0, fail_after=None)


def grid(folder: Path, executor: str, **params) -> Study:
    """Train (or load) the tiny paper's grid with ``executor``, its runs under ``folder``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FGVC_RUNS_DIR", str(folder))
        return Study(PAPER, executor=executor, **params).run()


def same_runs(study: Study, reference: Study) -> None:
    """Both studies trained the same runs to the same test logits, accuracy and history."""
    strip = lambda history: [{k: v for k, v in e.items() if k != "seconds"} for e in history.epochs]
    for variant, runs in reference.runs["synthetic"].items():
        others = study.runs_of(variant)
        assert [r.seed for r in others] == [r.seed for r in runs]
        for run, other in zip(runs, others):
            assert other.record.accuracy == run.record.accuracy, (variant, run.seed)
            assert other.outputs.keys() == run.outputs.keys()
            assert all(torch.equal(other.outputs[k], run.outputs[k]) for k in run.outputs), (variant, run.seed)
            assert strip(other.history) == strip(run.history)


@pytest.fixture(scope="module")
def inline_grid(study_env):
    """The reference grid (plain and slow, seed 0), trained here, one run after the other."""
    study_paper.LOSS_CALLS.update(calls=0, fail_after=None)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)   # runs train on the profile's one thread, then the caller's count returns
    try:
        study = grid(study_env / "runs-inline", "inline")
        study.threads_after = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    study.calls_per_run = study_paper.LOSS_CALLS["calls"] // 2    # training batches of one run
    return study


# ---------------------------------------------------------------- parameters and declarations
def test_parameters_are_checked_once_before_any_work_with_clear_messages():
    planned = []
    paper = Paper(**{**PAPER.__dict__, "plan": lambda settings: planned.append(settings) or PAPER.plan(settings)})
    for values, message in ((dict(lr=-1), "parameter lr: must be a number >= 0; got -1"),
                            (dict(variants="plain,fancy"), "parameter variants: name variants among plain, slow"),
                            (dict(colour="red"), r"unknown parameter\(s\) colour; valid: profile, .*, variants, lr$"),
                            (dict(executor="gpu"), "parameter executor: got 'gpu'"),
                            (dict(backbone="resnet50"), "valid here: vgg16, resnet34$"),
                            (dict(image_size=8), "parameter image_size: 8 is below the minimum 32")):
        with pytest.raises(ValueError, match=message):
            Study(paper, **values)
    assert planned == []                                   # nothing planned, nothing built
    study = Study(paper, variants="slow", lr=0.5, seeds="3")
    assert len(planned) == 1 and planned[0] is study.settings  # resolved once, then planned
    assert study.settings.variants == ["slow"] and study.settings.lr == 0.5 and study.settings.seeds == [3]
    assert study.settings.profile.name == "smoke" and list(study.variants) == ["slow"]
    assert study.variants["slow"].train.lr == pytest.approx(0.05) and study.variants["slow"].seeds == (3,)
    with pytest.raises(AttributeError, match="Settings has no parameter 'width'"):
        study.settings.width
    assert "variants=['slow'] lr=0.5" in study.settings.describe()
    assert [p["name"] for p in parameters_table(PAPER)][-2:] == ["variants", "lr"]
    # a paper's own parameters never shadow the common ones
    with pytest.raises(ValueError, match=r"redeclares common parameter\(s\) \['epochs'\]"):
        Study(Paper(**{**PAPER.__dict__, "parameters": (Parameter("epochs", 3, "clash"),)}))

    def finalize(settings):   # cross-parameter checks see every resolved value
        if settings.lr > 0.1 and "slow" not in settings.variants:
            raise ValueError("parameter lr: above 0.1 only with the slow variant")
    checked = Paper(**{**PAPER.__dict__, "finalize": finalize})
    with pytest.raises(ValueError, match="above 0.1 only with the slow variant"):
        Study(checked, variants="plain", lr=0.5)
    # the notebook's parameters cell must declare exactly the paper's parameters, in order
    declared = [p["name"] for p in parameters_table(PAPER)]
    check_declared(PAPER, declared)
    with pytest.raises(ValueError, match=r"missing \['lr'\], extra \['rate'\]"):
        check_declared(PAPER, declared[:-1] + ["rate"])


def test_plans_and_claims_are_checked_when_declared():
    twice = Paper(**{**PAPER.__dict__, "plan": lambda settings: PAPER.plan(settings) * 2})
    with pytest.raises(ValueError, match="plans variant 'plain' twice"):
        Study(twice)
    orphan = Paper(**{**PAPER.__dict__, "cells": lambda settings: [Cell("t", "r", Accuracy("fancy"))]})
    with pytest.raises(ValueError, match="cell t/r reads variant 'fancy', which the plan does not train"):
        Study(orphan)
    train = TrainConfig(epochs=1)
    with pytest.raises(ValueError, match="free of '/'"):
        Variant("a/b", BaselineNet, cross_entropy_loss, train, (0,))
    with pytest.raises(ValueError, match="has no seed"):
        Variant("a", BaselineNet, cross_entropy_loss, train, ())
    with pytest.raises(ValueError, match="test view 'uncropped' needs resize_mode='resize_crop'"):
        Variant("a", BaselineNet, cross_entropy_loss, train, (0,), test_views=("uncropped",))
    unviewed = Paper(**{**PAPER.__dict__, "cells": lambda settings: [Cell("t", "r", Accuracy("plain", view="uncropped"))]})
    with pytest.raises(ValueError, match="cell t/r reads test view 'uncropped' of variant 'plain', which does not "
                                         "score it"):
        Study(unviewed)
    pair = ((Accuracy("a"), Accuracy("b")),)
    for bad, message in ((dict(kind="bigger"), "claim kind must be one of greater, similar; got 'bigger'"),
                         (dict(direction=0), "direction must be"), (dict(pairs=()), "compares nothing")):
        with pytest.raises(ValueError, match=message):
            Claim(**{"text": "b beats a", "pairs": pair, **bad})


@pytest.mark.usefixtures("private_dirs")
def test_a_variants_seed_tier_keeps_the_first_of_its_seeds():
    """The runner owns the seed counts of each tier (docs/DESIGN.md, Contracts): the plan passes every seed and
    the tier, the study's variant trains the tier's first seeds in the profile; a paper's parameter may set them."""
    from fgvc_lib.study.paper import SEED_TIERS, tier_seeds

    def plan(settings):
        return [dataclasses.replace(v, seed_tier="ablation" if v.name == "slow" else "main")
                for v in PAPER.plan(settings)]

    tiered = Paper(**{**PAPER.__dict__, "plan": plan})
    assert SEED_TIERS["ablation"] == {"smoke": 1, "cpu": 3, "paper": 1} and SEED_TIERS["main"] == {}
    smoke = Study(tiered, seeds="0,1,2,3")
    assert smoke.variants["plain"].seeds == (0, 1, 2, 3) and smoke.variants["slow"].seeds == (0,)
    assert [job.seed for _, job in smoke.jobs() if job.variant.name == "slow"] == [0]
    cpu = Study(tiered, profile="cpu")
    assert cpu.variants["plain"].seeds == (0, 1, 2, 3, 4) and cpu.variants["slow"].seeds == (0, 1, 2)
    assert tier_seeds(cpu.settings, "ablation") == (0, 1, 2) and tier_seeds(cpu.settings, "cpu_ablation") == (0, 1, 2)
    assert tier_seeds(smoke.settings, "cpu_ablation") == (0, 1, 2, 3)   # every seed outside the cpu profile
    cpu.settings.seed_counts["ablation"] = 4                              # a paper's parameter sets the count
    assert tier_seeds(cpu.settings, "ablation") == (0, 1, 2, 3)
    with pytest.raises(ValueError, match="unknown seed tier 'few'; valid: main, ablation, cpu_ablation"):
        Variant("a", BaselineNet, cross_entropy_loss, TrainConfig(epochs=1), (0,), seed_tier="few")


# ---------------------------------------------------------------- run keys
def _folder(study: Study, variant: str = "plain") -> str:
    return next(Path(job.run_dir).parent.name for _, job in study.jobs() if job.variant.name == variant)


def test_run_keys_name_everything_that_shapes_a_run(monkeypatch):
    base = Study(PAPER, seeds="0,1")
    plain = [job for _, job in base.jobs() if job.variant.name == "plain"]
    # one folder per variant, one sub-folder per seed
    folder = base.runs_dir / "synthetic" / _folder(base)
    assert [Path(j.run_dir) for j in plain] == [folder / "seed0", folder / "seed1"]
    key = _folder(base)
    assert key.startswith("plain-") and _folder(base, "slow").startswith("slow-")
    assert key == run_key(base.variants["plain"], base.data_spec("synthetic"), base.backbone_spec)
    # equal inputs, equal key; more or fewer seeds reuse the same runs
    assert _folder(Study(PAPER, seeds="0,1")) == key == _folder(Study(PAPER, seeds="0"))
    assert _folder(Study(PAPER, variants="plain", executor="inline", workers=3)) == key  # how it runs: no part
    changed = {"recipe (lr)": Study(PAPER, lr=0.01), "recipe (epochs)": Study(PAPER, epochs=2),
               "backbone": Study(PAPER, backbone="resnet34"), "image size": Study(PAPER, image_size=96),
               "batch size": Study(PAPER, batch_size=8), "profile": Study(PAPER, profile="cpu")}
    folders = {what: _folder(study) for what, study in changed.items()}
    assert key not in folders.values() and len(set(folders.values())) == len(folders), folders
    import fgvc_lib.data.synthetic as synthetic
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    assert _folder(Study(PAPER)) != key                     # other birds, other runs (and other pretraining)
    monkeypatch.undo()
    assert _folder(Study(PAPER)) == key


def test_run_keys_are_the_same_in_another_process():
    """A notebook re-run (another process) must find the runs of the last one."""
    from fgvc_lib.papers import clan

    code = ("import json, study_paper; from fgvc_lib.study import Study; from fgvc_lib.papers import clan; "
            "studies = (Study(study_paper.PAPER), Study(clan.STUDY)); "
            "print(json.dumps([job.run_dir for study in studies for _, job in study.jobs()]))")
    here = [job.run_dir for study in (Study(PAPER), Study(clan.STUDY)) for _, job in study.jobs()]
    there = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                      cwd=HERE).stdout)
    assert there == here and len(set(here)) == len(here)


# ---------------------------------------------------------------- executors
def test_executor_choice(monkeypatch, tmp_path):
    monkeypatch.setattr(executors, "cpu_cores", lambda: 4)
    monkeypatch.setattr(executors, "cuda_devices", lambda: 0)

    def pick(runs, threads=1, **execution):
        executor = make_executor(Execution(**execution), runs, tmp_path, threads)
        executor.shutdown()                              # a pool starts its processes on the first submit only
        return executor

    assert isinstance(pick(1), InlineExecutor)                                   # auto, one run: here
    pool = pick(3)                                                               # auto, several: a pool
    assert isinstance(pool, PoolExecutor) and pool.kind == "local"
    assert (pool.capacity, pool.devices, pool.threads) == (3, ["cpu"] * 3, 1)    # one single-threaded run a core
    assert pick(10).capacity == 4 and pick(10, workers=2).capacity == 2
    assert isinstance(pick(10, workers=1), InlineExecutor) and isinstance(pick(10, executor="inline"), InlineExecutor)
    alone = pick(1, threads=2, executor="local")                                 # asked for: one worker, all threads
    assert isinstance(alone, PoolExecutor) and (alone.capacity, alone.threads) == (1, 2)
    for kind in ("submitit-debug", "submitit-local"):
        chosen = pick(2, executor=kind)
        assert isinstance(chosen, SubmititExecutor) and chosen.kind == kind and chosen.threads == 1
    monkeypatch.setattr(executors, "cuda_devices", lambda: 2)
    gpus = pick(5)
    assert (gpus.capacity, gpus.devices, gpus.threads) == (2, ["cuda:0", "cuda:1"], None)  # one run per GPU


# ---------------------------------------------------------------- training, loading, resuming
def test_inline_grid_trains_every_run_once(inline_grid):
    seeds = {variant: [r.seed for r in runs] for variant, runs in inline_grid.runs["synthetic"].items()}
    assert seeds == {"plain": [0], "slow": [0]}
    for runs in inline_grid.runs["synthetic"].values():
        run = runs[0]
        assert not run.record.loaded and run.record.epochs == 1 and (run.run_dir / RECORD_NAME).is_file()
        assert run.outputs["final"].shape == (24, 6) and run.record.accuracy == run.accuracy()
        assert run.model.classifier.out_features == 6 and not run.model.training
    assert inline_grid.calls_per_run == 3                 # the smoke profile's max_batches
    assert inline_grid.threads_after == 2                 # the caller's thread count is restored
    summary = inline_grid.runs_summary()
    assert list(summary.index) == [("plain", 0), ("slow", 0)] and "train_s" in summary
    # each record names the machine it trained on; the study writes them beside its results
    import platform
    import torch
    from fgvc_lib import reporting
    from fgvc_lib.study.jobs import read_machine

    machine = read_machine(inline_grid.runs["synthetic"]["plain"][0].run_dir)
    assert machine["torch"] == torch.__version__ and machine["python"] == platform.python_version()
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    written = json.loads(inline_grid.write_machines().read_text())
    started = written.pop("pretraining")
    testbed = written.pop("testbed")     # the synthetic task, from the profile's generator settings
    assert written == {"machines": [{"runs": 2, "machine": machine}], "unrecorded": 0}
    smoke = inline_grid.profile.synthetic
    assert testbed.startswith("synthetic: ") and f"class_attributes={smoke['class_attributes']}" in testbed
    assert f"num_classes={smoke['num_classes']}" in testbed and reporting.testbed_of(inline_grid.results_dir) == testbed
    # and the pretraining the runs' records say they started from (the smoke profile's, trained in this test)
    from fgvc_lib.pretraining import describe_record
    from fgvc_lib.study.jobs import read_pretraining

    named = read_pretraining(inline_grid.runs["synthetic"]["plain"][0].run_dir)
    assert named["file"].startswith("vgg16_bn_w0.125_64px_") and named["epochs"] == 1 and "history" not in named
    assert started == describe_record(named) and "after 1 epochs" in started
    assert f"; input {inline_grid.settings.image_size} px; pretraining {named['file']}" in testbed
    line = reporting.machines_line(inline_grid.results_dir)
    assert line.startswith(f"Trained on: {machine['cpu']}") and line.endswith(f"Started from the {started}.")


def test_a_test_view_is_scored_when_the_run_ends_and_read_by_accuracy(runs_dir, loss_hook):
    from fgvc_lib.data import build_test_loader
    from fgvc_lib.engine import collect_outputs
    from fgvc_lib.study.jobs import outputs_name

    study = Study(PAPER, executor="inline", variants="cropped").run()
    run = study.runs_of("cropped")[0]
    path = run.run_dir / outputs_name("uncropped")
    assert path.is_file()
    # the reference: the run's model on the uncropped test images (64 -> 73 px, synthetic squares), and the
    # usual test images are the 64-px center crops
    spec = study.data_spec("synthetic")
    loader = build_test_loader("synthetic", None, 64, spec.batch_size, resize_mode="resize_crop", view="uncropped",
                               config=study.data("synthetic").test_set.config)
    assert next(iter(loader))[0].shape[2:] == (73, 73)
    reference = collect_outputs(run.model, loader, spec.max_batches)
    assert torch.allclose(run.view_outputs("uncropped")["final"], reference["final"], atol=1e-5)
    hits = (reference["final"].argmax(1) == reference["targets"]).double().numpy() * 100
    assert study.per_image(Accuracy("cropped", view="uncropped"))[0] == pytest.approx(hits)
    assert run.accuracy(view="uncropped") == pytest.approx(hits.mean())
    assert "final (uncropped)" in study.runs_summary()
    # a run finished before its variant asked for the view scores it when first read, and keeps it
    path.unlink()
    again = Study(PAPER, executor="inline", variants="cropped").run()
    assert loss_hook["calls"] == 3          # the first study's training only
    assert torch.allclose(again.runs_of("cropped")[0].view_outputs("uncropped")["final"], reference["final"],
                          atol=1e-5)
    assert path.is_file()


def test_a_finished_grid_is_loaded_not_retrained(inline_grid, study_env, capsys, loss_hook):
    capsys.readouterr()
    again = grid(study_env / "runs-inline", "inline")
    out = capsys.readouterr().out
    assert "2 run(s): 2 finished earlier (loaded), 0 to train" in out and "executor:" not in out
    assert loss_hook["calls"] == 0
    assert all(run.record.loaded for runs in again.runs["synthetic"].values() for run in runs)
    same_runs(again, inline_grid)


def test_finished_runs_load_from_a_moved_runs_folder(inline_grid, study_env, tmp_path, loss_hook):
    """Runs are found by their key wherever the runs folder now lives (a moved checkout, another mount)."""
    shutil.copytree(study_env / "runs-inline", tmp_path / "moved")
    moved = grid(tmp_path / "moved", "inline")
    assert loss_hook["calls"] == 0
    for runs in moved.runs["synthetic"].values():
        assert runs[0].record.loaded and (tmp_path / "moved") in runs[0].run_dir.parents
    same_runs(moved, inline_grid)


@pytest.mark.parametrize("executor", ["local", "submitit-debug", "submitit-local"])
def test_every_executor_trains_the_same_runs(executor, inline_grid, tmp_path, capsys):
    study = grid(tmp_path / "runs", executor)
    out = capsys.readouterr().out
    assert f"executor: {executor}, 2 run(s) at a time" in out
    assert all(not run.record.loaded for runs in study.runs["synthetic"].values() for run in runs)
    same_runs(study, inline_grid)                         # determinism across processes and executors


def test_a_crashed_run_resumes_from_its_checkpoint(tmp_path, loss_hook, inline_grid):
    per_epoch = inline_grid.calls_per_run
    reference = grid(tmp_path / "reference", "inline", variants="plain", epochs=2)
    loss_hook.update(calls=0, fail_after=per_epoch)       # dies at the first batch of epoch 2
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FGVC_RUNS_DIR", str(tmp_path / "crashed"))
        study = Study(PAPER, executor="inline", variants="plain", epochs=2)
        with pytest.raises(RunFailed, match="simulated crash"):
            study.run()
        run_dir = Path(study.jobs()[0][1].run_dir)
        checkpoint = torch.load(run_dir / "last.pt", weights_only=False)
        assert checkpoint["epoch"] == 1 and not (run_dir / RECORD_NAME).exists()
        loss_hook.update(calls=0, fail_after=None)
        study.run()
    assert loss_hook["calls"] == per_epoch                # epoch 2 only
    run = study.runs_of("plain")[0]
    assert not run.record.loaded and run.record.epochs == 2
    assert run.history.epochs[0] == checkpoint["history"][0]   # epoch 1 came from the checkpoint, not retrained
    same_runs(study, reference)


def test_two_callers_never_train_the_same_run_at_once(runs_dir, loss_hook, inline_grid):
    study = Study(PAPER, variants="plain")
    study.data()
    study.backbone_spec.build()                           # caches warm: the threads below only train
    job = study.jobs()[0][1]
    results, errors = [], []

    def ask():
        try:
            results.append(execute_run(job))
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    callers = [threading.Thread(target=ask) for _ in range(2)]
    with exclusive(Path(job.run_dir) / LOCK_NAME):        # a third process holds the run
        for caller in callers:
            caller.start()
        time.sleep(1.5)
        assert all(c.is_alive() for c in callers) and not results
        assert not (Path(job.run_dir) / "last.pt").exists()
    for caller in callers:
        caller.join(timeout=120)
    assert not errors and len(results) == 2
    assert sorted(r.loaded for r in results) == [False, True]   # one trained, the other loaded its result
    assert loss_hook["calls"] == inline_grid.calls_per_run
    assert results[0].accuracy == results[1].accuracy == inline_grid.runs_of("plain")[0].record.accuracy


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_a_failing_run_reports_the_workers_traceback(executor, runs_dir):
    with pytest.raises(RunFailed) as info:
        Study(PAPER, variants="broken", executor=executor).run()
    message = str(info.value)
    assert message.startswith("run broken seed 0 failed (its log: ")
    assert "The worker's traceback:" in message
    assert "broken_model" in message and "this model factory refuses to build, on purpose" in message
    assert not list(runs_dir.rglob(RECORD_NAME))


# ---------------------------------------------------------------- tables and claims from stored outputs
N_TEST, CLASSES = 24, 6   # the smoke profile's synthetic test split
TARGETS = torch.arange(N_TEST) % CLASSES
CORRECT = {"a": 12, "b": 18, "c": 18}   # right test images of seed 0; seed s gets s more


def _right_on(n: int, scale: float = 1.0, first: bool = True):
    """Logits right on ``n`` test images (the first ones, or the last with ``first=False``)."""
    index = torch.arange(N_TEST)
    right = index < n if first else index >= N_TEST - n
    return scale * F.one_hot(torch.where(right, TARGETS, (TARGETS + 1) % CLASSES), CLASSES).float()


def _fake_plan(settings):
    return [Variant(name, BaselineNet, cross_entropy_loss, TrainConfig(epochs=1), (0, 1, 2)) for name in CORRECT]


def _fake_cells(settings):
    return [Cell("t1", "a", Accuracy("a"), 60.0), Cell("t1", "b", Accuracy("b"), 70.0),
            Cell("t1", "b [x+y]", Accuracy("b", ("x", "y"))), Cell("t1", "b, seeds 0-1", Accuracy("b"), seeds=(0, 1)),
            Cell("t2", "c", Accuracy("c"), 1.5, metric="top1_other")]


SIGN_ONLY = "a is below b (a sign, no number)"


def _fake_claims(settings):
    a, b, c = Accuracy("a"), Accuracy("b"), Accuracy("c")
    claims = [
        Claim("b beats a", ((a, b),), 2.0),
        Claim(SIGN_ONLY, ((b, a),), direction=-1),
        Claim("b and c are similar", ((b, c),), 0.1, kind="similar"),
        Claim("a and b are similar", ((a, b),), kind="similar"),
        Claim("b beats a on seeds 0 and 1", ((a, b),), 2.0, seeds=(0, 1)),
        Claim("b and c beat a (mean of 2 gaps)", ((a, b), (a, c)), 1.0),
        Claim("b has more parameters", ((Fixed("a params (M)", 10.0), Fixed("b params (M)", 12.5)),), 2.0,
              note="a count"),
        Claim("a count without a verdict", ((Fixed("x", 1.0), Fixed("y", 2.0)),), 1.0),
        Claim("b's energy beats a's", ((Score("a: energy"), Score("b: energy")),), 5.0),
        Claim("c's energy beats a's", ((Score("a: energy"), Score("c: energy")),), 5.0),
        Claim("never recorded", ((Score("a: nothing"), Score("b: nothing")),), 1.0),
        Claim("d beats a", ((a, Accuracy("d")),), 1.0),
    ]
    return claims, ["a claim this configuration cannot measure: the reason"]


FAKE = Paper(key="fake", notebook="97_fake", title="fake runs", backbones=("vgg16",), plan=_fake_plan,
             cells=_fake_cells, claims=_fake_claims, skipped=lambda settings: {"t9": "it needs a GPU"})


@pytest.fixture
def fake_study(tmp_path, monkeypatch):
    """A study of FAKE whose runs are stored outputs, set directly (nothing trains)."""
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    study = Study(FAKE)
    with pytest.raises(RuntimeError, match=r"call study.run\(\) first"):
        study.values(Accuracy("a"))
    assert len(study.data().test_set) == N_TEST
    return _with_fake_runs(study)


def _with_fake_runs(study):
    """``study`` with stored outputs set directly as its runs (CORRECT[name] + seed images right)."""
    study.runs = {"synthetic": {}}
    for name, variant in study.variants.items():
        runs = []
        for seed in variant.seeds:
            n = CORRECT[name] + seed
            run = Run(study, "synthetic", variant, RunRecord(name, seed, f"/no/run/{name}", 100.0 * n / N_TEST, 1.0,
                                                              1, loaded=True))
            outputs = {"final": _right_on(n), "targets": TARGETS}
            if name == "b":   # x: sure on the first half, unsure on the rest; y the other way round
                outputs.update(x=torch.where(torch.arange(N_TEST)[:, None] < 12, _right_on(12, 4), _right_on(0)),
                               y=torch.where(torch.arange(N_TEST)[:, None] < 12, _right_on(0), _right_on(12, 4, False)))
            run.__dict__["outputs"] = outputs             # what Run.outputs would load from outputs.pt
            runs.append(run)
        study.runs["synthetic"][name] = runs
    return study


def test_tables_from_cells(fake_study, capsys):
    study = fake_study
    assert study.tables == ["t1", "t2"]
    t1 = study.table("t1")
    assert list(t1.columns) == RESULT_COLUMNS and list(t1["row"]) == ["a", "b", "b [x+y]", "b, seeds 0-1"]
    rows = t1.set_index("row")
    assert rows.loc["a", "reproduced"] == pytest.approx(100 * 13 / 24) and rows.loc["a", "n_seeds"] == 3
    assert rows.loc["a", "std"] == pytest.approx(100 / 24) and rows.loc["a", "paper"] == 60.0
    assert rows.loc["b, seeds 0-1", "reproduced"] == pytest.approx(100 * 18.5 / 24)
    assert rows.loc["b, seeds 0-1", "n_seeds"] == 2 and rows["paper"].isna().tolist() == [False, False, True, True]
    assert set(t1["dataset"]) == {"synthetic"} and set(t1["backbone"]) == {"vgg16"} and set(t1["profile"]) == {"smoke"}
    # each branch is right on half of the images; their mean probability everywhere
    run = study.runs_of("b")[0]
    assert run.accuracy(("x",)) == 50.0 and run.accuracy(("y",)) == 50.0
    assert rows.loc["b [x+y]", "reproduced"] == 100.0 and rows.loc["b [x+y]", "std"] == 0.0
    assert run.metrics["acc/x"] == 0.5 and study.runs_summary().loc[("b", 1), "y"] == 50.0
    with pytest.raises(KeyError, match=r"run b has no branch \['z'\]; it has \['x', 'y'\]"):
        run.accuracy(("x", "z"))
    assert study.table("t2")["metric"].tolist() == ["top1_other"]
    with pytest.raises(KeyError, match="no cell of table 't9' in this plan; tables: t1, t2"):
        study.table("t9")
    view = study.report("t1")
    written = read_table(study.results_dir / "t1.csv")
    assert written.equals(t1) and list(view.index) == list(t1["row"])
    assert view.loc["a", "reproduced"].startswith("54.17 ± 4.17") and not view["comparable"].any()
    assert study.report("t9") is None and "t9 not rebuilt: it needs a GPU" in capsys.readouterr().out


def test_a_cell_can_read_a_recorded_score(fake_study):
    study = fake_study
    study.cells.append(Cell("t3", "sum of steps", Score("a: summed"), 50.0))
    assert study.plan_table().loc["a", "tables"] == "t1"     # a Score cell names no variant
    with pytest.raises(KeyError, match="no score 'a: summed' recorded"):
        study.table("t3")
    study.record("a: summed", {0: [100.0, 0.0], 1: [100.0, 100.0]})
    row = study.table("t3").iloc[0]
    assert (row["reproduced"], row["n_seeds"], row["paper"]) == (75.0, 2, 50.0)
    Study(Paper(**{**FAKE.__dict__, "cells": lambda settings: [Cell("t", "r", Score("anything"))]}))   # accepted


def test_claims_from_claim_data(fake_study):
    study = fake_study
    study.record("a: energy", {0: [10.0, 12.0], 1: [20.0, 22.0], 2: [30.0, 32.0]})  # per scored image
    study.record("b: energy", {0: [15.0, 17.0], 1: [26.0, 28.0], 2: [34.0, 36.0]})
    study.record("c: energy", {1: 30.0, 2: 40.0})                                     # no per-image values
    table, skipped = study.claims_table()
    assert list(table.columns) == CLAIM_COLUMNS
    assert skipped[0] == "a claim this configuration cannot measure: the reason"
    assert skipped[1] == "c's energy beats a's: the two sides score different numbers of images (2 and 1)"
    assert skipped[2].startswith("never recorded: no score 'a: nothing' recorded for synthetic")
    assert skipped[3].startswith("d beats a: variant 'd' was not trained") and len(skipped) == 4
    rows = table.set_index("claim")
    # paired by seed and image: seed s has b right and a wrong on images 12+s .. 17+s (100 points each)
    beats = rows.loc["b beats a"]
    assert (beats["paper_effect"], beats["n_seeds"], beats["n_images"], beats["verdict"]) == (2.0, 3, N_TEST, "held")
    assert beats["our_effect"] == pytest.approx(25.0) and beats["our_std"] == pytest.approx(0.0, abs=1e-4)
    # no seed spread: the interval is the test set's alone, 25 +- t(23) * sd(images) / sqrt(24), where
    # an image's mean over the 3 seeds is 100 * (seeds for which it lies in the window) / 3
    image_means = [100.0 * sum(12 + s <= i < 18 + s for s in range(3)) / 3 for i in range(N_TEST)]
    half = stats.t.ppf(0.975, N_TEST - 1) * np.std(image_means, ddof=1) / math.sqrt(N_TEST)
    assert (beats["ci_low"], beats["ci_high"]) == (pytest.approx(25.0 - half), pytest.approx(25.0 + half))
    assert beats["p_improvement"] == 1.0 and beats["half_width_target"] == 3.0
    assert beats["seeds_needed"] != beats["seeds_needed"]          # NaN: more seeds cannot narrow the test term
    assert "more test images needed" in beats["note"]
    sign = rows.loc[SIGN_ONLY]
    assert math.isnan(sign["paper_effect"]) and sign["our_effect"] == pytest.approx(-25.0)
    assert sign["verdict"] == "held" and sign["p_improvement"] == 1.0
    # two separately trained arms that predict alike: a finding, measured (not "untestable")
    alike = rows.loc["b and c are similar"]
    assert (alike["paper_effect"], alike["verdict"], alike["against_paper"]) == (0.1, "held", "")
    assert rows.loc["a and b are similar", "verdict"] == "reversed"        # 25 points: a difference, shown
    assert rows.loc["b beats a on seeds 0 and 1", "n_seeds"] == 2
    assert rows.loc["b and c beat a (mean of 2 gaps)", "our_effect"] == pytest.approx(25.0)
    fixed = rows.loc["b has more parameters"]
    assert (fixed["our_effect"], fixed["ci_low"], fixed["ci_high"], fixed["verdict"]) == (2.5, 2.5, 2.5, "held")
    assert fixed["note"] == "a count" and rows.loc["a count without a verdict", "verdict"] == "held"
    energy = rows.loc["b's energy beats a's"]
    assert energy["our_effect"] == pytest.approx(5.0) and energy["our_std"] == pytest.approx(1.0)
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)                   # both images agree: the seeds' t alone
    assert energy["ci_low"] == pytest.approx(5.0 - half) and energy["n_images"] == 2 and energy["verdict"] == "held"
    assert (energy["measure"], energy["smallest_effect"], fixed["measure"], beats["measure"]) == \
        ("score", 2.0, "count", "accuracy")
    assert beats["against_paper"] == "larger than the paper's" and sign["against_paper"] == ""
    assert sign["direction"] == -1 and rows.loc["a and b are similar", "direction"] == 0
    path = study.write_claims(table)
    assert path == study.results_dir / "claims.csv"
    assert read_claims(path)["claim"].tolist() == table["claim"].tolist()
    assert read_claims(path).equals(table.astype({"seeds_needed": "float64"}))
    extra, _ = study.claims_table(extra=[Claim("c beats b", ((Accuracy("b"), Accuracy("c")),), 1.0)])
    assert extra["claim"].iloc[-1] == "c beats b" and extra["verdict"].iloc[-1] in VERDICTS


def test_record_rejects_scores_of_different_images(fake_study):
    with pytest.raises(ValueError, match="every seed must score the same images"):
        fake_study.record("x", {0: [1.0, 2.0], 1: [1.0]})
    with pytest.raises(ValueError, match="finite"):
        fake_study.record("x", {0: [float("nan")]})


def test_output_stride_builds_a_dilated_backbone_and_keys_its_runs_apart():
    import dataclasses

    from fgvc_lib.study.jobs import BackboneSpec

    published = BackboneSpec("vgg16", 0.125, True, None)
    dilated = dataclasses.replace(published, output_stride=8)
    assert "output_stride" not in published.identity()       # run folders from before the option keep their keys
    assert dilated.identity()["output_stride"] == 8
    assert published.build().stage_strides["pool5"] == 32
    assert dilated.build().stage_strides["pool5"] == 8
    assert dilated.build(weights=False).stage_strides["pool5"] == 8   # also when a checkpoint is loaded into it


def test_a_claim_of_no_difference_between_arms_that_predict_alike_is_not_testable(fake_study):
    study = fake_study
    itself = Claim("a is as accurate as itself", ((Accuracy("a"), Accuracy("a")),), kind="similar")
    entry = study.claim_entry(itself)
    assert isinstance(entry, str) and "not testable here" in entry and "on at most 0.00 % of the test images" in entry
    # seed s: a is right on its first CORRECT['a'] + s images, b on its first CORRECT['b'] + s, and both give
    # the same wrong class elsewhere: they predict differently on CORRECT['b'] - CORRECT['a'] images per seed
    expected = 100.0 * (CORRECT["b"] - CORRECT["a"]) / N_TEST
    assert study.prediction_disagreement(Accuracy("a"), Accuracy("b")) == pytest.approx([expected] * 3)
    # b's two branches x and y: each right on one half, so they disagree on at least half the images
    assert isinstance(study.claim_entry(Claim("x and y are as accurate", ((Accuracy("b", ("x",)),
                                                                           Accuracy("b", ("y",))),),
                                              kind="similar")), dict)
    assert isinstance(study.claim_entry(Claim("a and b are similar", ((Accuracy("a"), Accuracy("b")),),
                                              kind="similar")), dict)
    # a claim of a difference is measured whatever the predictions
    assert isinstance(study.claim_entry(Claim("a beats itself", ((Accuracy("a"), Accuracy("a")),))), dict)


def test_recipe_selection_chooses_the_rate_on_held_out_training_images(runs_dir, monkeypatch):
    import fgvc_lib.data as data_module

    splits = []
    real = data_module.build_dataset

    def spy(name, root, split, transform=None, **options):
        splits.append(split)
        return real(name, root, split, transform, **options)

    study = Study(PAPER, executor="inline", variants="plain,tuned,shared", seeds="0,1")
    assert study.plan_table().loc["tuned", "lr"] == "0.0005, 0.05 or beyond, on validation"
    assert study.plan_table().loc["plain", "lr"] == "0.05"
    assert study.plan_table().loc["shared", "lr"] == "the rate chosen for tuned"
    study.data()    # the study's own loaders, built first as run() does; the spy then sees the trials alone
    monkeypatch.setattr(data_module, "build_dataset", spy)
    trials = study.select_recipes()
    assert set(splits) == {"train"}                          # the trials never read the test split
    assert set(trials["variant"]) == {"tuned"} and trials["lr"].tolist()[:2] == [0.0005, 0.05]
    # a two-rate grid's best is always an end: then a rate 3 times beyond it, while the new end wins, 2 at most
    rates, scores = trials["lr"].tolist(), trials["validation_top1"].tolist()
    assert 3 <= len(rates) <= 4
    def score_of(rate, tried):
        return scores[rates[:tried].index(rate)]

    for tried in range(2, len(rates) + 1):
        top, bottom, best = max(rates[:tried]), min(rates[:tried]), max(scores[:tried])
        if tried == len(rates):                              # no further trial: the cap, or the best is inside
            assert tried == 4 or best not in (score_of(top, tried), score_of(bottom, tried))
        elif score_of(top, tried) == best:                   # the top wins or ties: 3 times above it
            assert rates[tried] == pytest.approx(top * 3, rel=1e-5)
        else:                                                # else the bottom must win: 3 times below it
            assert score_of(bottom, tried) == best and rates[tried] == pytest.approx(bottom / 3, rel=1e-5)
    best = trials.loc[trials["validation_top1"].idxmax()]
    first_best = trials[trials["validation_top1"] == best["validation_top1"]].iloc[0]
    assert trials["chosen"].tolist() == [lr == first_best["lr"] for lr in trials["lr"]]
    assert study.variants["tuned"].train.lr == first_best["lr"] and study.variants["plain"].train.lr == 0.05
    assert study.variants["shared"].train.lr == first_best["lr"]             # lr_from: tuned's choice, no trials
    assert study.plan_table().loc["shared", "lr"] == f"{first_best['lr']:g} chosen for tuned"
    assert study.plan_table().loc["tuned", "lr"].startswith(f"{first_best['lr']:g} (chosen on validation")
    # each trial scored the held-out fifth of every class of the training split: 20 % of its images
    train_split = study.data().train_set
    trial = next(p for p in (runs_dir / "99_tiny" / "smoke" / "synthetic").iterdir() if p.name.startswith("tuned@"))
    held_targets = torch.load(trial / "seed0" / "outputs.pt", weights_only=True)["targets"]
    per_class = np.bincount(held_targets.numpy(), minlength=len(train_split.classes))
    totals = np.bincount(np.asarray(train_split.targets), minlength=len(train_split.classes))
    assert per_class.tolist() == [round(0.2 * n) for n in totals]
    assert (trials["held_out_images"] == per_class.sum()).all()
    p = trials["validation_top1"] / 100.0                                # binomial standard error, by hand
    assert np.allclose(trials["validation_se"], 100.0 * np.sqrt(p * (1 - p) / per_class.sum()))
    monkeypatch.setattr(data_module, "build_dataset", real)
    study.run()                                              # the real runs: the chosen rate, every seed
    assert [r.seed for r in study.runs_of("tuned")] == [0, 1] and len(study.recipe_trials) == len(rates)


def test_a_variant_takes_its_rate_only_from_a_variant_that_chooses_one():
    with pytest.raises(ValueError, match="takes its learning rate from 'tuned', which the plan does not train"):
        Study(PAPER, executor="inline", variants="plain,shared")
    with pytest.raises(ValueError, match="cannot be combined with lr_trials"):
        Variant("both", object, object, None, (0,), lr_trials=(0.1,), lr_from="other")


def test_a_grid_whose_end_wins_is_extended_three_times_further_twice_at_most():
    from fgvc_lib.study.recipes import edge_extension

    # notebook 02's backbone, 2026-12-05: the middle rate won, no extra trial
    assert edge_extension({0.015: 54.2, 0.05: 54.9, 0.15: 34.0}, planned=3) is None
    assert edge_extension({0.003: 25.0, 0.01: 40.3, 0.03: 50.0}, planned=3) == 0.09       # 03's baseline: the top
    assert edge_extension({0.015: 52.8, 0.05: 43.1, 0.15: 27.8}, planned=3) == 0.005      # 02's CRA-SMRA: the bottom
    assert edge_extension({0.003: 25.0, 0.01: 40.3, 0.03: 50.0, 0.09: 51.0}, planned=3) == 0.27   # the new end won
    assert edge_extension({0.003: 25.0, 0.01: 40.3, 0.03: 50.0, 0.09: 49.0}, planned=3) is None   # now inside
    assert edge_extension({0.003: 1.0, 0.01: 2.0, 0.03: 3.0, 0.09: 4.0, 0.27: 5.0}, planned=3) is None  # 2 steps done
    assert edge_extension({0.1: 60.0, 0.3: 60.0}, planned=2) == pytest.approx(0.9)       # both ends tie: upward
    assert edge_extension({0.01: 40.0, 0.03: 50.0, 0.09: 50.0}, planned=3) == 0.27         # the top ties the best
    assert edge_extension({0.01: 50.0, 0.03: 50.0, 0.09: 40.0}, planned=3) == pytest.approx(0.00333333)  # bottom
    with pytest.raises(ValueError, match="every candidate rate diverged"):
        edge_extension({0.01: float("-inf"), 0.03: float("-inf")}, planned=2)
    assert edge_extension({0.01: 40.0, 0.03: 50.0, 0.09: float("-inf")}, planned=3) is None   # a diverged end
    assert edge_extension({0.05: 50.0}, planned=1) is None                               # one rate: no grid


def test_choose_takes_the_best_finite_score_first_listed_among_equals_and_refuses_all_diverged():
    from fgvc_lib.study.recipes import choose

    assert choose({0.1: 50.0, 0.3: 60.0, 1.0: 60.0}) == 0.3                   # the first of the tied best
    assert choose({0.1: float("-inf"), 0.3: 40.0}) == 0.3                     # a diverged trial is never chosen
    with pytest.raises(ValueError, match="every candidate rate diverged"):
        choose({0.1: float("-inf"), 0.3: float("-inf")})


def test_protocol_tunes_the_method_and_its_baseline_and_shares_the_methods_rate():
    from fgvc_lib.study import recipes
    from fgvc_lib.study.parameters import resolve

    variants = [Variant(name, object, object, TrainConfig(epochs=1, lr=lr), (0, 1))
                for name, lr in (("baseline", 0.05), ("method", 0.01), ("ablation", 0.01))]
    cpu = resolve(PAPER, {"profile": "cpu"})
    planned = {v.name: v for v in recipes.protocol(cpu, variants, tuned=("baseline", "method"), lead="method")}
    assert planned["baseline"].lr_trials == (0.015, 0.05, 0.15)              # 0.3, 1, 3 x each arm's own default
    assert planned["method"].lr_trials == (0.003, 0.01, 0.03)
    assert planned["ablation"].lr_trials == () and planned["ablation"].lr_from == "method"
    cpu.options["lr_selection"] = "fixed"                                    # the notebook's parameter: rates fixed
    assert recipes.protocol(cpu, variants, tuned=("baseline", "method"), lead="method") == variants


def test_a_run_builds_its_model_from_init_seed_when_the_recipe_fixes_it(runs_dir):
    """Two seeds with the data order fixed still differ (their initialisations do); with the initialisation
    fixed too, they are one run trained twice."""
    study = Study(PAPER, variants="plain", seeds="0,1", executor="inline")
    study.data()
    outputs = {}
    for fixed in (("data_seed",), ("data_seed", "init_seed")):
        template = [job for _, job in study.jobs()]
        train = dataclasses.replace(template[0].variant.train, **{name: 0 for name in fixed})
        variant = dataclasses.replace(template[0].variant, train=train)
        folder = runs_dir / "+".join(fixed)
        runs = [execute_run(dataclasses.replace(job, variant=variant, run_dir=str(folder / f"seed{job.seed}")))
                for job in template]
        outputs[fixed] = [torch.load(Path(r.run_dir) / "outputs.pt", weights_only=True)["final"] for r in runs]
    assert not torch.equal(*outputs[("data_seed",)])
    assert torch.equal(*outputs[("data_seed", "init_seed")])


def test_the_runner_reads_printed_cells_and_computes_the_papers_effects(tmp_path, monkeypatch):
    """Cells and claims name printed cells; the runner looks the numbers up in the dataset's column."""
    from fgvc_lib.study import Printed

    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    printed = {"T1": {"A": {"cub": 60.0, "cars": 70.0}, "B": {"cub": 62.5, "cars": 71.0}, "C": {"cub": 61.0}},
               "G": {"step 1": {"cub": 1.25}, "step 2": {"cub": 0.5}}}   # gains printed as gains
    cells = lambda settings: [Cell("t1", "a", Accuracy("a"), printed=Printed("T1", "A")),
                              Cell("t1", "c", Accuracy("c"), printed=Printed("T1", "C", column="cub"))]
    claims = lambda settings: ([
        Claim("b beats a", ((Accuracy("a"), Accuracy("b")),), printed=((Printed("T1", "A"), Printed("T1", "B")),)),
        Claim("b and c beat a (the smaller gain)", ((Accuracy("a"), Accuracy("b")), (Accuracy("a"), Accuracy("c"))),
              printed=((Printed("T1", "A"), Printed("T1", "B")), (Printed("T1", "A"), Printed("T1", "C"))),
              combine=min),
        Claim("b beats a in the cars column", ((Accuracy("a"), Accuracy("b")),),
              printed=((Printed("T1", "A", "cars"), Printed("T1", "B", "cars")),)),
        Claim("c beats a where c has no cars number", ((Accuracy("a"), Accuracy("c")),),
              printed=((Printed("T1", "A", "cars"), Printed("T1", "C", "cars")),)),
        Claim("b beats a by two printed steps", ((Accuracy("a"), Accuracy("b")),),
              printed=(Printed("G", "step 1"), Printed("G", "step 2")), combine=sum),
    ], [])
    paper = dataclasses.replace(FAKE, printed=printed, paper_column={"synthetic": "cub"}, cells=cells, claims=claims)
    study = _with_fake_runs(Study(paper))
    assert study.table("t1").set_index("row")["paper"].to_dict() == {"a": 60.0, "c": 61.0}
    effects = study.claims_table()[0].set_index("claim")["paper_effect"]
    assert effects["b beats a"] == 2.5 and effects["b and c beat a (the smaller gain)"] == 1.0
    assert effects["b beats a in the cars column"] == 1.0 and effects["b beats a by two printed steps"] == 1.75
    assert np.isnan(effects["c beats a where c has no cars number"])
    assert paper.printed_table("T1").loc["C"].isna().tolist() == [False, True]
    wrong = lambda settings: [Cell("t1", "a", Accuracy("a"), printed=Printed("T1", "Z"))]
    with pytest.raises(KeyError, match="no printed row 'Z' of table 'T1' \\(its rows: A, B, C\\)"):
        Study(dataclasses.replace(paper, cells=wrong))
    with pytest.raises(ValueError, match="not both"):
        Claim("x", ((Accuracy("a"), Accuracy("b")),), 1.0, printed=((Printed("T1", "A"), Printed("T1", "B")),))
    with pytest.raises(ValueError, match="not both"):
        Cell("t1", "a", Accuracy("a"), 60.0, printed=Printed("T1", "A"))
