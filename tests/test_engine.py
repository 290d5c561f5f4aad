"""The training engine: losses logged, determinism, resume after a kill, seeds, bad input."""
import dataclasses
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fgvc_lib.engine import TrainConfig, evaluate, fit, repeat_over_seeds
from fgvc_lib.models.baseline import cross_entropy_loss

from engine_task import config, make_task

HERE = Path(__file__).parent


def two_term_loss(output, targets):
    ce = torch.nn.functional.cross_entropy(output.logits, targets)
    return {"ce": ce, "l2": output.logits.pow(2).mean()}


def test_fit_logs_every_loss_term_and_weights_them():
    model, loader = make_task()
    result = fit(model, loader, two_term_loss, config(epochs=2, loss_weights={"l2": 0.0}))
    record = result.history.last
    assert {"train_loss", "train_ce", "train_l2", "train_acc", "lr", "seconds"} <= set(record)
    assert record["train_loss"] == pytest.approx(record["train_ce"], rel=1e-6)  # l2 weighted by 0
    assert len(result.history.epochs) == 2
    assert result.history.series("lr") == [0.05, 0.05]


def test_same_seed_same_metrics_and_different_seed_differs():
    runs = []
    for seed in (0, 0, 1):
        model, loader = make_task(seed)
        runs.append(fit(model, loader, cross_entropy_loss, config(epochs=2, seed=seed)).history.epochs)
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]
    assert strip(runs[0]) == strip(runs[1])
    assert strip(runs[0]) != strip(runs[2])


def _batch_targets(seed, **changes):
    seen = []

    def recording_loss(output, targets):
        seen.append(targets.tolist())
        return cross_entropy_loss(output, targets)

    model, loader = make_task(seed)
    fit(model, loader, recording_loss, config(epochs=2, seed=seed, **changes))
    return seen


def test_a_fixed_data_seed_gives_every_seed_the_same_batches():
    assert _batch_targets(1, data_seed=0) == _batch_targets(2, data_seed=0)
    assert _batch_targets(1) != _batch_targets(2)
    assert _batch_targets(0) == _batch_targets(5, data_seed=0)   # data_seed 0 is what seed 0 alone gives


def test_a_model_schedule_is_told_each_epoch_and_the_run_length(tmp_path):
    model, loader = make_task()
    seen = []
    model.start_epoch = lambda epoch, epochs: seen.append((epoch, epochs))
    fit(model, loader, cross_entropy_loss, config(epochs=2), checkpoint_dir=tmp_path)
    assert seen == [(0, 2), (1, 2)]
    seen.clear()
    fit(model, loader, cross_entropy_loss, config(epochs=3), checkpoint_dir=tmp_path / "other")
    assert seen == [(0, 3), (1, 3), (2, 3)]


def _loss_that_breaks_in_epoch(epoch: int, batches_per_epoch: int = 4):
    """Cross-entropy that turns NaN at the second batch of ``epoch`` (1-based) and stays NaN."""
    calls = {"n": 0}

    def loss(output, targets):
        calls["n"] += 1
        ce = cross_entropy_loss(output, targets)["ce"]
        if calls["n"] >= (epoch - 1) * batches_per_epoch + 2:
            ce = ce * float("nan")
        return {"ce": ce}
    return loss


def test_a_diverging_run_raises_by_default_and_stops_with_its_last_finite_model_when_asked(tmp_path):
    model, loader = make_task()
    with pytest.raises(FloatingPointError, match="training loss became nan at epoch 2"):
        fit(model, loader, _loss_that_breaks_in_epoch(2), config(epochs=3))

    # the reference: the same run, stopped after its first (finite) epoch
    reference, loader = make_task()
    fit(reference, loader, _loss_that_breaks_in_epoch(2), config(epochs=1))
    model, loader = make_task()
    result = fit(model, loader, _loss_that_breaks_in_epoch(2), config(epochs=3, on_divergence="stop"),
                 checkpoint_dir=tmp_path)
    assert result.diverged_epoch == 2
    assert [e["epoch"] for e in result.history.epochs] == [1, 2] and result.history.epochs[1]["diverged"]
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in model.state_dict().items())
    assert all(torch.isfinite(v.float()).all() for v in model.state_dict().values())
    # resuming a stopped run trains nothing and reports the same divergence
    again, loader = make_task()
    resumed = fit(again, loader, _loss_that_breaks_in_epoch(1), config(epochs=3, on_divergence="stop"),
                  checkpoint_dir=tmp_path)
    assert resumed.diverged_epoch == 2 and resumed.resumed_from_epoch == 3
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in again.state_dict().items())


def test_options_added_later_leave_the_default_fingerprint_alone():
    assert config().fingerprint() == config(on_divergence="raise").fingerprint()
    assert config().fingerprint() != config(on_divergence="stop").fingerprint()
    assert config().fingerprint() != config(data_seed=0).fingerprint()
    assert config(init_seed=0).fingerprint() not in (config().fingerprint(), config(data_seed=0).fingerprint())
    assert config(compile=True).fingerprint() == config().fingerprint()   # how fast, not what is trained
    # the hash of the fields the options did not exist among (checkpoints written before them still resume)
    added_later = ("on_divergence", "data_seed", "init_seed", "compile")
    fields = {k: v for k, v in dataclasses.asdict(config()).items() if k not in ("progress", "device", *added_later)}
    before = hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:12]
    assert config().fingerprint() == before


def test_a_model_with_lr_groups_trains_each_group_at_its_rate():
    model, loader = make_task()
    head = list(model.classifier.parameters())
    body = [p for p in model.parameters() if all(p is not h for h in head)]
    model.lr_groups = lambda: [("body", body, 1.0), ("head", head, 30.0)]
    result = fit(model, loader, cross_entropy_loss, config(epochs=1, lr=0.002, scheduler="none"))
    assert result.history.last["lr"] == 0.002             # the first group's rate is logged
    from fgvc_lib.engine import parameter_groups

    groups = parameter_groups(model, 0.002)
    assert [(g["name"], g["lr"], len(g["params"])) for g in groups] == [("body", 0.002, len(body)),
                                                                        ("head", 0.06, len(head))]
    model.lr_groups = lambda: [("body", body, 1.0)]
    with pytest.raises(ValueError, match="leaves 2 trainable parameter"):
        parameter_groups(model, 0.002)
    model.lr_groups = lambda: [("body", body, 1.0), ("again", body[:1] + head, 1.0)]
    with pytest.raises(ValueError, match="repeats parameters"):
        parameter_groups(model, 0.002)


def test_killed_run_resumes_to_the_same_final_metrics(tmp_path):
    model, loader = make_task()
    reference = fit(model, loader, cross_entropy_loss, config())
    reference_acc = evaluate(reference.model, loader)

    checkpoint = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(HERE / "engine_task.py"), str(checkpoint), "0.15"], cwd=HERE)
    try:
        deadline = time.time() + 120
        while not (checkpoint / "last.pt").exists():
            assert proc.poll() is None, "the training subprocess ended before its first checkpoint"
            assert time.time() < deadline, "no checkpoint written within 120 s"
            time.sleep(0.05)
        proc.kill()  # SIGKILL in the middle of epoch 2
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_epochs = torch.load(checkpoint / "last.pt", weights_only=False)["epoch"]
    assert 1 <= killed_epochs < 4
    model, loader = make_task()
    resumed = fit(model, loader, cross_entropy_loss, config(), checkpoint_dir=checkpoint)
    assert resumed.resumed_from_epoch == killed_epochs
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]
    assert strip(resumed.history.epochs) == strip(reference.history.epochs)
    assert evaluate(resumed.model, loader) == reference_acc

    # A finished run is loaded, not retrained; another configuration refuses the checkpoint.
    model, loader = make_task()
    again = fit(model, loader, cross_entropy_loss, config(), checkpoint_dir=checkpoint)
    assert again.resumed_from_epoch == 4 and strip(again.history.epochs) == strip(reference.history.epochs)
    with pytest.raises(RuntimeError, match="different training configuration"):
        fit(model, loader, cross_entropy_loss, config(epochs=5, lr=0.1), checkpoint_dir=checkpoint)


def test_evaluate_scores_every_branch():
    from fgvc_lib.models.output import ModelOutput

    class TwoBranch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(3, 4)
            self.b = torch.nn.Linear(3, 4)

        def forward(self, x):
            pooled = x.mean(dim=(2, 3))
            a, b = self.a(pooled), self.b(pooled)
            return ModelOutput(a + b, {"branch_logits": {"A": a, "B": b}})

    _, loader = make_task()
    metrics = evaluate(TwoBranch(), loader)
    assert set(metrics) == {"acc", "acc/A", "acc/B"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())


def test_repeat_over_seeds_mean_and_std():
    summary = repeat_over_seeds(lambda s: {"acc": 0.5 + 0.1 * s}, [0, 1, 2])
    assert summary.mean["acc"] == pytest.approx(0.6)
    assert summary.std["acc"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="at least one seed"):
        repeat_over_seeds(lambda s: {}, [])


@pytest.mark.parametrize("change, message", [
    (dict(epochs=-1), "epochs must be a positive integer"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(lr=0.0), "lr must be positive"),
    (dict(optimizer="rmsprop"), "valid: sgd, adam"),
    (dict(scheduler="poly"), "valid: none, step, multistep, plateau, cosine"),
    (dict(scheduler="multistep"), "multistep needs increasing milestones"),
    (dict(scheduler="multistep", milestones=(3, 2)), "multistep needs increasing milestones"),
    (dict(on_divergence="ignore"), "valid: raise, stop"),
])
def test_bad_config_fails_before_any_work(change, message):
    model, loader = make_task()
    with pytest.raises(ValueError, match=message):
        fit(model, loader, cross_entropy_loss, TrainConfig(**change))


def test_multistep_scheduler_decays_after_each_milestone():
    model, loader = make_task()
    result = fit(model, loader, cross_entropy_loss, config(epochs=4, scheduler="multistep", milestones=(1, 3),
                                                             gamma=0.1))
    assert result.history.series("lr") == pytest.approx([0.05, 0.005, 0.005, 0.0005])


def test_plateau_scheduler_and_max_batches():
    model, loader = make_task()
    result = fit(model, loader, cross_entropy_loss,
                 TrainConfig(epochs=2, lr=0.01, scheduler="plateau", max_batches=2, progress=False))
    assert len(result.history.epochs) == 2
