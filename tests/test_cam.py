"""Grad-CAM wrappers, localisation scores and CAM figures (fgvc_lib.cam)."""
import matplotlib

matplotlib.use("Agg")  # noqa: E402  (tests only; the library itself never touches the backend)

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn as nn
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from pytorch_grad_cam import GradCAM

from fgvc_lib.backbones import build_backbone
from fgvc_lib.cam import (BranchLogits, box_mask, cam_grid, compute_cams, energy_in_box,
                          feature_activation_map, localization_scores, pointing_game, valid_branches)
from fgvc_lib.models.output import ModelOutput

torch.set_num_threads(1)
SIZE = 64


class TinyNet(nn.Module):
    """A contract model on a slim VGG-16: a global (average-pooled) and a local (max-pooled) head."""

    branch_names = ("final", "global", "local")

    def __init__(self, n_classes: int = 5):
        super().__init__()
        self.backbone = build_backbone("vgg16", width=0.125)
        c = self.backbone.out_channels
        self.global_head = nn.Linear(c, n_classes)
        self.local_head = nn.Conv2d(c, n_classes, 1)

    def forward(self, x):
        f = self.backbone(x)["conv5_3"]
        g = self.global_head(f.mean((2, 3)))
        loc = self.local_head(f).amax((2, 3))
        return ModelOutput((g + loc) / 2, {"branch_logits": {"global": g, "local": loc}})

    def cam_target_layers(self):
        layer = self.backbone.net.features[29]  # the ReLU after conv5_3
        assert isinstance(layer, nn.ReLU)
        return [layer]


class SideNet(nn.Module):
    """Two branches reading different layers: "top" reads conv5_3, "side" a 1x1 module on conv4_3 that
    nothing else reads (like CLAN's mid-level refinement modules)."""

    branch_names = ("final", "top", "side")

    def __init__(self, n_classes: int = 4):
        super().__init__()
        self.backbone = build_backbone("vgg16", width=0.125)
        self.side = nn.Conv2d(self.backbone.stage_channels["conv4_3"], 16, 1)
        self.top_head = nn.Linear(self.backbone.out_channels, n_classes)
        self.side_head = nn.Linear(16, n_classes)

    def forward(self, x):
        f = self.backbone(x, ("conv4_3", "conv5_3"))
        top = self.top_head(f["conv5_3"].mean((2, 3)))
        side = self.side_head(self.side(f["conv4_3"]).relu().mean((2, 3)))
        return ModelOutput(top + side, {"branch_logits": {"top": top, "side": side}})

    def cam_target_layers(self):
        return [self.backbone.net.features[29], self.side]


class SpotNet(nn.Module):
    """Features = ReLU(sum of RGB) at full resolution; class 0 rewards them, class 1 penalises them.

    Grad-CAM of class 0 is therefore the bright region of the image, and of class 1 all zeros.
    """

    branch_names = ("final",)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1, bias=False)
        self.act = nn.ReLU()
        self.fc = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.fc.weight.copy_(torch.tensor([[1.0], [-1.0]]))

    def forward(self, x):
        f = self.act(self.conv(x))
        return ModelOutput(self.fc(f.mean((2, 3))), {"branch_logits": {}})

    def cam_target_layers(self):
        return [self.act]


def bright_square_images(boxes, size=SIZE):
    images = torch.zeros(len(boxes), 3, size, size)
    for i, (x, y, w, h) in enumerate(boxes):
        images[i, :, y:y + h, x:x + w] = 1.0
    return images


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(1)
    return torch.randn(3, 3, SIZE, SIZE)


def all_hooks(model):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# --------------------------------------------------------------------------- BranchLogits


def test_branch_logits_selects_branch(tiny, batch):
    with torch.no_grad():
        out = tiny(batch)
        assert torch.equal(BranchLogits(tiny)(batch), out.logits)
        assert torch.equal(BranchLogits(tiny, "final")(batch), out.logits)
        assert torch.equal(BranchLogits(tiny, "local")(batch), out.extras["branch_logits"]["local"])
    assert valid_branches(tiny) == ["final", "global", "local"]


def test_branch_logits_unknown_branch_lists_valid_ones(tiny):
    with pytest.raises(ValueError, match="final, global, local"):
        BranchLogits(tiny, "parts")


def test_branch_logits_plain_tensor_model():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.randn(2, 3, 8, 8)
    assert BranchLogits(net)(x).shape == (2, 2)
    with pytest.raises(ValueError, match="plain tensor"):
        BranchLogits(net, "global")(x)


# --------------------------------------------------------------------------- compute_cams


def test_cams_shape_range_and_branches_differ(tiny, batch):
    cams = compute_cams(tiny, batch)
    assert cams.shape == (3, SIZE, SIZE) and cams.dtype == np.float32
    assert np.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1
    assert np.allclose(cams.reshape(3, -1).max(1), 1.0, atol=1e-3), "each non-empty map is scaled to max 1"
    local = compute_cams(tiny, batch, branch="local")
    global_ = compute_cams(tiny, batch, branch="global")
    assert not np.allclose(local, global_, atol=1e-3), "different branches should give different maps"


def test_default_targets_are_the_branch_prediction(tiny, batch):
    with torch.no_grad():
        predicted = tiny(batch).branch("global").argmax(1)
    default = compute_cams(tiny, batch, branch="global")
    explicit = compute_cams(tiny, batch, branch="global", targets=predicted)
    assert np.allclose(default, explicit, atol=1e-5)
    per_class = [compute_cams(tiny, batch, branch="global", targets=[k] * 3) for k in range(5)]
    assert any(not np.allclose(per_class[0], other, atol=1e-3) for other in per_class[1:]), \
        "the target class must change the map"
    assert np.allclose(per_class[int(predicted[0])][0], default[0], atol=1e-5)


def test_chunking_and_no_grad_context_give_the_same_maps(tiny, batch):
    whole = compute_cams(tiny, batch)
    with torch.no_grad():
        chunked = compute_cams(tiny, batch, batch_size=2)
    assert np.allclose(whole, chunked, atol=1e-5)


def test_model_state_is_restored(batch):
    torch.manual_seed(0)
    model = TinyNet()
    model.train()
    model.backbone.eval()  # a mixed mode, as with a frozen feature extractor
    marker = torch.full_like(model.global_head.weight, 7.0)
    model.global_head.weight.grad = marker
    params_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    compute_cams(model, batch[:2])
    assert model.training and model.global_head.training and not model.backbone.training
    assert model.global_head.weight.grad is marker
    assert model.local_head.weight.grad is None
    assert all_hooks(model) == 0, "grad-cam hooks must be removed"
    for n, p in model.named_parameters():
        assert torch.equal(p, params_before[n]), n
    with pytest.raises(ValueError, match="valid branches"):
        compute_cams(model, batch[:1], branch="nope")
    assert model.training and all_hooks(model) == 0


def test_frozen_feature_extractor_still_gets_maps(batch):
    torch.manual_seed(0)
    model = TinyNet()
    reference = compute_cams(model, batch)
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    frozen = compute_cams(model, batch)
    assert np.allclose(reference, frozen, atol=1e-5)
    assert frozen.reshape(3, -1).max(1).min() > 0.99
    assert all(not p.requires_grad for p in model.backbone.parameters()), "freezing must be left as it was"
    # Without an input that requires grad, grad-cam alone gets no gradient at a frozen layer:
    cam = GradCAM(model=BranchLogits(model), target_layers=model.cam_target_layers())
    try:
        with pytest.raises(Exception):
            cam(input_tensor=batch.clone(), targets=None)
    finally:
        cam.activations_and_grads.release()


def test_default_layers_a_branch_does_not_read_are_skipped(batch):
    torch.manual_seed(0)
    model = SideNet()
    top_layer, side_layer = model.cam_target_layers()
    top = compute_cams(model, batch, branch="top")
    assert np.allclose(top, compute_cams(model, batch, branch="top", target_layers=[top_layer]), atol=1e-5)
    side = compute_cams(model, batch, branch="side")
    assert np.allclose(side, compute_cams(model, batch, branch="side", target_layers=[side_layer]), atol=1e-5)
    final = compute_cams(model, batch)  # both layers, averaged by grad-cam
    assert final.shape == (3, SIZE, SIZE) and np.isfinite(final).all()
    with pytest.raises(ValueError, match=r"#1 \(Conv2d\) do not influence branch 'top'"):
        compute_cams(model, batch, branch="top", target_layers=[top_layer, side_layer])
    with pytest.raises(ValueError, match="none of the target layers"):
        compute_cams(model, batch, branch="top", target_layers=[side_layer])
    assert all_hooks(model) == 0


def test_layers_chosen_per_branch_when_the_model_supports_it(batch):
    torch.manual_seed(0)
    model = SideNet()
    calls = []

    def per_branch(branch=None):
        calls.append(branch)
        return [model.side] if branch == "side" else [model.backbone.net.features[29]]

    model.cam_target_layers = per_branch
    compute_cams(model, batch[:1], branch="side")
    assert calls == ["side"]


def test_baseline_model_if_available(batch):
    baseline = pytest.importorskip("fgvc_lib.models.baseline")
    torch.manual_seed(0)
    model = baseline.BaselineNet(build_backbone("vgg16", width=0.125), 5)
    with torch.no_grad():  # positive class weights on non-negative features: a non-empty map for any class
        model.classifier.weight.abs_()
    cams = compute_cams(model, batch)
    assert cams.shape == (3, SIZE, SIZE) and cams.max() > 0.99 and all_hooks(model) == 0


def test_cam_finds_the_bright_part_and_empty_maps_score_zero():
    boxes = [(40, 8, 12, 10), (5, 30, 16, 20)]
    images = bright_square_images(boxes)
    model = SpotNet()
    cams = compute_cams(model, images, targets=[0, 0])
    scores = localization_scores(cams, boxes)
    assert scores == {"pointing": 1.0, "energy": pytest.approx(1.0, abs=1e-6), "n": 2}
    empty = compute_cams(model, images, targets=[1, 1])
    assert np.all(empty == 0)
    assert localization_scores(empty, boxes) == {"pointing": 0.0, "energy": 0.0, "n": 2}
    with pytest.raises(ValueError, match="one class index"):
        compute_cams(model, images, targets=[0])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="CAM method"):
        compute_cams(SpotNet(), torch.zeros(1, 3, 8, 8), method="magic")
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        compute_cams(SpotNet(), torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="target_layers"):
        compute_cams(nn.Sequential(nn.Conv2d(3, 1, 1)), torch.zeros(1, 3, 8, 8))


# --------------------------------------------------------------------------- localisation


def test_box_mask_clips_and_covers_fractional_pixels():
    m = box_mask((10, 10), (8, -3, 5, 5))  # partly outside right and top
    assert m.sum() == 2 * 2 and m[0:2, 8:10].all()
    assert box_mask((10, 10), (20, 20, 3, 3)).sum() == 0  # fully outside
    assert box_mask((10, 10), (1.5, 1.5, 1.0, 1.0)).sum() == 4  # overlaps 2x2 pixels
    assert box_mask((10, 10), (4, 4, 1, 1), tolerance=1).sum() == 9
    with pytest.raises(ValueError, match="w, h >= 0"):
        box_mask((10, 10), (0, 0, -1, 2))


def test_pointing_game_and_energy_by_hand():
    cam = np.zeros((10, 10))
    cam[2, 7] = 1.0
    cam[8, 1] = 0.5
    assert pointing_game(cam, (6, 1, 3, 3))
    assert not pointing_game(cam, (0, 6, 4, 4))
    assert pointing_game(cam, (8, 2, 1, 1), tolerance=1)
    assert energy_in_box(cam, (6, 1, 3, 3)) == pytest.approx(1.0 / 1.5)
    assert energy_in_box(cam, (0, 6, 4, 4)) == pytest.approx(0.5 / 1.5)
    assert energy_in_box(cam, (0, 0, 10, 10)) == pytest.approx(1.0)
    assert energy_in_box(cam, (50, 50, 5, 5)) == 0.0  # box outside the image
    zeros = np.zeros((10, 10))
    assert pointing_game(zeros, (0, 0, 10, 10)) is False
    assert energy_in_box(zeros, (0, 0, 10, 10)) == 0.0
    nan_cam = np.full((4, 4), np.nan)
    assert energy_in_box(nan_cam, (0, 0, 4, 4)) == 0.0 and not pointing_game(nan_cam, (0, 0, 4, 4))


def test_localization_scores_batch_and_shape_errors():
    cams = np.zeros((2, 10, 10))
    cams[0, 1, 1] = 1.0
    cams[1, 9, 9] = 1.0
    scores = localization_scores(cams, [(0, 0, 3, 3), (0, 0, 3, 3)])
    assert scores["pointing"] == 0.5 and scores["energy"] == pytest.approx(0.5) and scores["n"] == 2
    with pytest.raises(ValueError, match="one \\(x, y, w, h\\) per CAM"):
        localization_scores(cams, [(0, 0, 3, 3)])
    with pytest.raises(ValueError, match="empty"):
        localization_scores(np.zeros((0, 4, 4)), np.zeros((0, 4)))


# --------------------------------------------------------------------------- maps and figures


def test_feature_activation_map():
    fmap = torch.zeros(2, 4, 4, 4)
    fmap[0, :, 1, 2] = 3.0
    fmap[1, 0, 3, 0] = 1.0
    maps = feature_activation_map(fmap, size=(16, 32))
    assert maps.shape == (2, 16, 32) and maps.min() >= 0 and maps.max() <= 1
    row, col = np.unravel_index(maps[0].argmax(), maps[0].shape)
    assert 4 <= row < 8 and 16 <= col < 24  # feature cell (1, 2) scaled by (4, 8)
    single = feature_activation_map(fmap[1])
    assert single.shape == (4, 4) and single[3, 0] == pytest.approx(1.0) and single.sum() == pytest.approx(1.0)


def test_cam_grid_layout_boxes_and_no_pyplot_state(tmp_path):
    boxes = [(40, 8, 12, 10), (5, 30, 16, 20)]
    images = bright_square_images(boxes) * 2 - 1  # "normalised" images in [-1, 1]
    cams = {"A": np.random.rand(2, SIZE, SIZE), "B": np.random.rand(2, 8, 8)}  # B at feature resolution
    open_before = plt.get_fignums()
    fig = cam_grid(images, cams, titles=["c1", "c2"], boxes=boxes, denormalize=lambda x: (x + 1) / 2)
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == open_before, "cam_grid must not register figures with pyplot"
    axes = fig.axes
    assert len(axes) == 2 * 3
    assert [ax.get_title() for ax in axes[:3]] == ["input", "A", "B"]
    assert axes[0].get_ylabel() == "c1" and axes[3].get_ylabel() == "c2"
    assert all(sum(isinstance(p, Rectangle) for p in ax.patches) == 1 for ax in axes)
    shown = axes[0].get_images()[0].get_array()
    assert np.allclose(np.asarray(shown), ((images[0] + 1) / 2).permute(1, 2, 0).numpy())
    path = tmp_path / "grid.png"
    fig.savefig(path, dpi=50)
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="B=2"):
        cam_grid(images, {"A": np.zeros((3, SIZE, SIZE))})
    with pytest.raises(ValueError, match="one per row"):
        cam_grid(images, cams, titles=["only one"])
