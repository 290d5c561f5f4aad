"""Views run where the study runs (issue 20, part 3): ``Run.model`` is loaded onto ``Study.device``, and
every view that runs a model (Grad-CAM, localization scores, the papers' stage maps, attention and patches,
SSANet's frozen features) moves its images to the model's own device a batch at a time and brings only
its results back to the CPU.

* ``test_a_view_runs_where_its_model_is``: per entry point and device (the CPU, plus CUDA when there is
  one), a forward pre-hook on every module records the device of the inputs; they must all be on the
  model's device, the results on the CPU, and equal to the CPU path's (bit for bit on the CPU).
* ``test_a_view_moves_cpu_images_to_the_models_device``: the same entry points with the model on the
  ``meta`` device and the images on the CPU, run until the view reads a value (meta tensors have none):
  on a machine without a GPU this is what shows that the images are moved before the model sees them.
* ``test_the_cpu_default_is_todays_whole_batch_path``: on the CPU a view's default batch is still the
  whole sample, so its numbers are those of the committed outputs (written out as the code computed them
  before this change).
* ``test_run_model_is_loaded_onto_the_study_device``: a tiny study (tests/study_paper.py) and a
  checkpoint written here; ``Run.model`` lands on ``Study.device`` in eval mode, and
  ``Study.localization`` runs it there.
"""
from __future__ import annotations

import contextlib
import copy
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")  # noqa: E402  (tests only)

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from fgvc_lib.backbones import build_backbone
from fgvc_lib.cam import (DEVICE_BATCH_SIZE, BranchLogits, compute_cams, feature_activation_map, model_device,
                          view_batch_size)
from fgvc_lib.localization import CamSample, localize, score_cams
from fgvc_lib.models.baseline import BaselineNet
from fgvc_lib.models.clan import CLANConfig, build_clan
from fgvc_lib.models.cra_cnn import CRACNNConfig, build_cra_cnn
from fgvc_lib.models.cra_smra import CRASMRAConfig, build_cra_smra, stage_activation_maps
from fgvc_lib.models.frozen_features import FrozenFeatureMemo
from fgvc_lib.models.recurrent_attention import RecurrentAttentionConfig, RecurrentAttentionNet
from fgvc_lib.models.ssanet import build_ssanet
from fgvc_lib.papers import clan_views, cra_cnn_views, cra_smra_views
from fgvc_lib.papers import recurrent_attention_views as ra_views

torch.set_num_threads(1)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SIZE, N, CLASSES, WIDTH = 64, 3, 5, 0.125
CLAN_STAGES = ("conv5_3", "conv5_2", "conv4_3")


def _sample() -> CamSample:
    images = torch.randn(N, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    return CamSample(list(range(N)), images, torch.tensor([0, 3, 1]),
                     np.array([[0, 0, 32, 32], [8, 8, 48, 48], [0, 0, 64, 64]], dtype=np.float64),
                     [[(0, 0, 16, 16), (30, 30, 10, 10)], [(40, 40, 16, 16)], [(0, 48, 16, 16)]], ["a", "b", "c"])


def _show(t: torch.Tensor) -> torch.Tensor:
    return ((t - t.min()) / (t.max() - t.min() + 1e-6)).clamp(0, 1)


# --------------------------------------------------------------------------- tiny models (CPU, eval, seeded)
def _baseline():
    torch.manual_seed(0)
    return BaselineNet(build_backbone("vgg16", width=WIDTH), CLASSES)


def _ssanet():
    torch.manual_seed(0)
    return build_ssanet("vgg16", CLASSES, feature_memo=FrozenFeatureMemo(disk=False), width=WIDTH)


def _cra_cnn():
    torch.manual_seed(0)
    return build_cra_cnn(build_backbone("vgg16", width=WIDTH, batch_norm=True), CLASSES,
                         CRACNNConfig(attention_size=32))


def _cra_smra():
    torch.manual_seed(0)
    return build_cra_smra(build_backbone("vgg16", width=WIDTH, batch_norm=True), CLASSES,
                          CRASMRAConfig(smram=False, delta=0.97, omega=0.5))


def _clan():
    torch.manual_seed(0)
    return build_clan(build_backbone("vgg16", width=WIDTH), CLASSES, CLANConfig(scales=3, zero_init_output=False))


def _recurrent():
    torch.manual_seed(0)
    slim = lambda: build_backbone("vgg16", width=0.0625, batch_norm=True)  # noqa: E731
    return RecurrentAttentionNet(slim(), slim(), CLASSES, RecurrentAttentionConfig(patch_size=32, time_steps=4,
                                                                                     num_patches=3))


def _closed(figure) -> str:
    """A figure's kind, once closed (figures are checked for running, not for their pixels)."""
    plt.close(figure)
    return type(figure).__name__


def _runs(model):
    return [SimpleNamespace(model=model, seed=0)]


# name -> (model factory, view call on (model, sample), results are maps: compared with a tolerance off the CPU)
CASES = {
    "compute_cams": (_baseline, lambda m, s: compute_cams(m, s.images, targets=s.labels), True),
    "compute_cams, batches of 2": (_baseline, lambda m, s: compute_cams(m, s.images, targets=s.labels, batch_size=2),
                                   True),
    "localize": (_baseline, lambda m, s: localize(m, s, per_image=True), False),
    "localize SSANet (frozen features)": (_ssanet, lambda m, s: localize(m, s, per_image=True, batch_size=2), False),
    "cra_cnn attend": (_cra_cnn, lambda m, s: cra_cnn_views.attend(m, s.images, batch_size=2), True),
    "cra_cnn attention_iou": (_cra_cnn, lambda m, s: cra_cnn_views.attention_iou(m, s), False),
    "cra_cnn gamma_table": (_cra_cnn, lambda m, s: cra_cnn_views.gamma_table(_runs(m), s.images), True),
    "cra_cnn attention_figure": (_cra_cnn, lambda m, s: _closed(cra_cnn_views.attention_figure({"m": m}, s, _show, 2)),
                                 False),
    "cra_smra upsampled_stage_maps": (_cra_smra, lambda m, s: cra_smra_views.upsampled_stage_maps(m, s.images, 2),
                                      True),
    "cra_smra stage_map_scores": (_cra_smra, lambda m, s: cra_smra_views.stage_map_scores(m, s), False),
    "cra_smra suppressed_channel_shares": (_cra_smra, lambda m, s: cra_smra_views.suppressed_channel_shares(
        m, s.images, batch_size=2), False),
    "cra_smra suppression_table": (_cra_smra, lambda m, s: cra_smra_views.suppression_table({"m": [m]}, s.images),
                                   False),
    "cra_smra stage_map_figure": (_cra_smra, lambda m, s: _closed(cra_smra_views.stage_map_figure(
        {"m": m}, s.images[:1], _show, s.titles[:1])), False),
    "clan stage_maps": (_clan, lambda m, s: {k: v.cpu() for k, v in clan_views.stage_maps(m, s.images,
                                                                                          CLAN_STAGES).items()}, True),
    "clan model_maps": (_clan, lambda m, s: clan_views.model_maps(m, s.images, s.labels, CLAN_STAGES), True),
    "clan model_maps, batches of 2": (_clan, lambda m, s: clan_views.model_maps(m, s.images, s.labels, CLAN_STAGES,
                                                                                batch_size=2), True),
    "clan score_maps": (_clan, lambda m, s: clan_views.score_maps({"m": _runs(m)}, CLAN_STAGES, s), False),
    "clan map_figure": (_clan, lambda m, s: _closed(clan_views.map_figure({"m": m}, CLAN_STAGES, s, "CLSA")), False),
    "recurrent evaluation_patches": (_recurrent, lambda m, s: ra_views.evaluation_patches(m, s.images, 2), True),
    "recurrent step_cams": (_recurrent, lambda m, s: ra_views.step_cams(m, s.images[..., :32, :32], s.labels, [1, 4]),
                            True),
    "recurrent step_map_scores": (_recurrent, lambda m, s: ra_views.step_map_scores(m, s, [1, 4]), False),
    "recurrent patch_scores": (_recurrent, lambda m, s: ra_views.patch_scores(m, s, batch_size=2), False),
    "recurrent step_map_figure": (_recurrent, lambda m, s: _closed(ra_views.step_map_figure({"m": m}, s, _show, 1,
                                                                                            [1, 4])), False),
}


# SSANet's frozen-feature memo stands aside for an extractor with hooks: hook the top module alone there
TOP_MODULE_ONLY = {"localize SSANet (frozen features)"}


@contextlib.contextmanager
def input_devices(model, top_only: bool = False):
    """The devices of every tensor handed to any module of ``model`` (``top_only``: to ``model`` itself)
    while in the block."""
    seen = set()

    def hook(_module, args):
        seen.update(a.device.type for a in args if isinstance(a, torch.Tensor))

    handles = [m.register_forward_pre_hook(hook) for m in ([model] if top_only else model.modules())]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


@pytest.fixture
def exact_matmul():
    """No TF32 on CUDA while a test compares with the CPU."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def _on_cpu(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.device.type == "cpu"
    if isinstance(value, dict):
        return all(_on_cpu(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_on_cpu(v) for v in value)
    return True


def _same(got, expected, exact: bool, maps: bool, where: str = "") -> None:
    """Equal bit for bit (``exact``); else the same structure, and close where the values are maps (scores
    built on maps may flip a peak between neighbouring pixels on another device)."""
    if isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key in expected:
            _same(got[key], expected[key], exact, maps, f"{where}/{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for k, (a, b) in enumerate(zip(got, expected)):
            _same(a, b, exact, maps, f"{where}[{k}]")
    elif isinstance(expected, pd.DataFrame):
        assert list(got.columns) == list(expected.columns) and got.shape == expected.shape, where
        _same(got.to_numpy(), expected.to_numpy(), exact, maps, where)
    elif isinstance(expected, (np.ndarray, torch.Tensor)):
        a, b = np.asarray(got), np.asarray(expected)
        assert a.shape == b.shape and a.dtype == b.dtype, where
        if exact:
            assert np.array_equal(a, b, equal_nan=True), where
        elif maps and a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-3, err_msg=where)
    elif exact or maps:
        assert got == expected, where


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CASES))
def test_a_view_runs_where_its_model_is(case, device, exact_matmul):
    factory, view, maps = CASES[case]
    sample = _sample()
    reference = factory().eval()
    expected = view(copy.deepcopy(reference), sample)
    model = copy.deepcopy(reference).to(device)
    assert model_device(model).type == device
    with input_devices(model, top_only=case in TOP_MODULE_ONLY) as seen:
        got = view(model, sample)
    assert seen == {device}, f"{case}: the model saw inputs on {seen}, it lives on {device}"
    memo = getattr(model, "feature_memo", None)
    if memo is not None and device in memo.devices:
        assert memo.misses > 0   # the frozen features came through the memo, as in a notebook
    assert _on_cpu(got), f"{case}: results must come back to the CPU"
    assert sample.images.device.type == "cpu"   # the caller's images are left where they were
    _same(got, expected, exact=device == "cpu", maps=maps, where=case)


@pytest.mark.parametrize("case", list(CASES))
def test_a_view_moves_cpu_images_to_the_models_device(case):
    factory, view, _ = CASES[case]
    model = factory().eval().to("meta")
    with input_devices(model, top_only=case in TOP_MODULE_ONLY) as seen:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            view(model, _sample())   # meta tensors have no values: the view stops where it reads one
    assert seen == {"meta"}, f"{case}: the model saw inputs on {seen}, it lives on meta"


def test_the_cpu_default_is_todays_whole_batch_path():
    sample = _sample()
    x, labels = sample.images, sample.labels
    assert view_batch_size(None, 7, "cpu") == 7 and view_batch_size(None, 7, "cuda") == DEVICE_BATCH_SIZE
    assert view_batch_size(3, 7, "cuda") == 3 and model_device(object()).type == "cpu"
    with pytest.raises(ValueError, match="batch_size"):
        view_batch_size(0, 7, "cpu")
    # Grad-CAM: the package on the whole batch
    model = _baseline().eval()
    with GradCAM(model=BranchLogits(model), target_layers=model.cam_target_layers()) as cam:
        direct = np.clip(cam(input_tensor=x.clone().requires_grad_(True),
                             targets=[ClassifierOutputTarget(int(t)) for t in labels]).astype(np.float32), 0, 1)
    cams, scores = localize(model, sample, per_image=True)
    assert np.array_equal(cams, direct) and np.array_equal(compute_cams(model, x, targets=labels), direct)
    assert all(np.array_equal(v, score_cams(direct, sample, per_image=True)[k]) for k, v in scores.items())
    # CLAN: the channel means of one forward pass on the whole batch
    clan = _clan().eval()
    with torch.no_grad():
        features = clan(x.contiguous()).extras
    activation = clan_views.activation_maps(clan, x, CLAN_STAGES[1:])
    for stage in CLAN_STAGES[1:]:
        assert np.array_equal(activation[stage], feature_activation_map(features["features"][stage], (SIZE, SIZE)))
        assert np.array_equal(clan_views.clsa_maps(clan, x)[stage],
                              feature_activation_map(features["clsa_attention"][stage], (SIZE, SIZE)))
    # CRA-CNN's attention and CRA-SMRA's stage maps: batches of 64, as before
    cra = _cra_cnn().eval()
    with torch.no_grad():
        art = cra.attend(x)
    assert all(torch.equal(v, art[k]) for k, v in cra_cnn_views.attend(cra, x).items())
    smra = _cra_smra().eval()
    with torch.no_grad():
        stages = stage_activation_maps(smra, x)
    upsampled = torch.stack([F.interpolate(m[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]
                             for m in stages.values()], dim=1)
    assert torch.equal(cra_smra_views.upsampled_stage_maps(smra, x), upsampled)
    # the recurrent model's test patches: one call on the whole batch
    net = _recurrent().eval()
    with torch.no_grad():
        patches, boxes = net.patches(x)
    got = ra_views.evaluation_patches(net, x)
    assert torch.equal(got[0], patches) and torch.equal(got[1], boxes)


@pytest.mark.usefixtures("private_dirs")
@pytest.mark.parametrize("device", DEVICES + ["meta"])
def test_run_model_is_loaded_onto_the_study_device(device, monkeypatch, tmp_path, exact_matmul):
    import study_paper
    from fgvc_lib.engine import CHECKPOINT_NAME, resolve_device
    from fgvc_lib.study import Run, Study
    from fgvc_lib.study.jobs import RunRecord

    monkeypatch.setenv("FGVC_PROFILE", "smoke")
    study = Study(study_paper.PAPER, variants="plain", seeds="0")
    assert study.device == resolve_device("auto")
    trained = study.untrained_model("plain").eval()
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.01)   # not the freshly built weights
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"model": trained.state_dict()}, run_dir / CHECKPOINT_NAME)
    record = RunRecord("plain", 0, str(run_dir), 50.0, 1.0, 1, True)
    monkeypatch.setattr(Study, "device", property(lambda self: torch.device(device)))
    run = Run(study, "synthetic", study.variants["plain"], record)
    model = run.model
    assert not model.training
    assert {t.device.type for t in list(model.parameters()) + list(model.buffers())} == {device}
    if device == "meta":
        return
    for (name, value), (_, saved) in zip(model.state_dict().items(), trained.state_dict().items()):
        assert torch.equal(value.cpu(), saved), name
    # Study.localization runs the model where it is and records per-image scores
    study.runs = {"synthetic": {"plain": [run]}}
    sample = study.cam_sample(per_class=1)
    with input_devices(model) as seen:
        scores = study.localization({"plain": ("plain", None)}, sample, batch_size=2)
    assert seen == {device}
    expected = localize(copy.deepcopy(model).cpu(), sample, per_image=True, batch_size=2)[1]
    if device == "cpu":
        assert scores["plain"] == [{k: float(v.mean()) for k, v in expected.items()}]
        recorded = study.scores[("synthetic", "plain: object_energy")][0]
        assert np.array_equal(recorded, 100.0 * expected["object_energy"])
    else:
        assert list(scores["plain"][0]) == list(expected)
