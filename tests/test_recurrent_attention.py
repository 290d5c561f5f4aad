"""Recurrently refined attention (fgvc_lib.models.recurrent_attention): each module against a literal,
loop-based evaluation of the thesis's equation written here, the patches, the loss, the variants, the
views' scores and the notebook's parameter checks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from fgvc_lib.backbones import build_backbone
from fgvc_lib.engine import parameter_groups
from fgvc_lib.models.recurrent_attention import (
    RecurrentAttentionConfig,
    RecurrentAttentionLoss,
    RecurrentAttentionNet,
    RecurrentAttentionSelfAttention,
    StepAttention,
    class_activation_maps,
    crop_patches,
    peak_boxes,
    ranking_loss,
)
from fgvc_lib.papers import recurrent_attention_views as views

NUM_CLASSES = 5


def tiny_backbone():
    return build_backbone("vgg16", width=0.0625, batch_norm=True)


def tiny_model(**changes):
    config = RecurrentAttentionConfig(patch_size=32, time_steps=4, num_patches=3, **changes)
    torch.manual_seed(0)
    return RecurrentAttentionNet(tiny_backbone(), tiny_backbone(), NUM_CLASSES, config)


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# ----------------------------------------------------------------------------- patches (sec. 3.1.2)
def test_class_activation_map_is_the_class_weighted_sum_of_channels():
    torch.manual_seed(1)
    features = torch.randn(2, 3, 4, 5)
    classifier = nn.Linear(3, 4)
    classes = torch.tensor([2, 0])
    cams = class_activation_maps(features, classifier, classes).detach()
    for b in range(2):
        for i in range(4):
            for j in range(5):
                expected = sum(classifier.weight[classes[b], c].item() * features[b, c, i, j].item() for c in range(3))
                assert float(cams[b, i, j]) == pytest.approx(expected, abs=1e-5)


def test_peak_boxes_centre_on_the_peaks_in_height_order_and_stay_inside_the_image():
    cams = torch.zeros(1, 8, 8)
    cams[0, 2, 5] = 3.0      # the highest peak: cell (row 2, col 5), centre (x 44, y 20) in a 64-px image
    cams[0, 6, 1] = 2.0      # far from it
    cams[0, 2, 6] = 2.5      # 8 px from the first peak, closer than half a box: excluded
    boxes = peak_boxes(cams, (64, 64), count=3, box_fraction=0.375)  # 24-px boxes
    assert boxes.shape == (1, 3, 4)
    assert boxes[0, 0].tolist() == [32.0, 8.0, 56.0, 32.0]           # centred on (44, 20)
    assert boxes[0, 1].tolist() == [0.0, 40.0, 24.0, 64.0]           # the second peak, (12, 52)
    big = peak_boxes(torch.randn(4, 8, 8), (64, 64), count=10, box_fraction=0.75)
    assert (big[..., :2] >= 0).all() and (big[..., 2:] <= 64).all()
    assert torch.allclose(big[..., 2] - big[..., 0], torch.full((4, 10), 48.0))


def test_peak_boxes_repeat_in_order_when_no_cell_is_left():
    boxes = peak_boxes(torch.randn(1, 2, 2), (32, 32), count=5, box_fraction=1.0)
    assert torch.equal(boxes[0, 1:], boxes[0, :1].expand(4, 4))       # one box covers every cell


def test_crop_patches_cuts_the_box_and_resizes_it():
    ramp = torch.arange(64, dtype=torch.float32)
    image = (ramp[None, :] + 100 * ramp[:, None]).expand(3, 64, 64)[None].contiguous()   # linear in x and y
    patch = crop_patches(image, torch.tensor([[16.0, 8.0, 32.0, 40.0]]), patch_size=16)
    expected_x = 16 + (torch.arange(16) + 0.5) * 1.0 - 0.5     # 16 px wide box -> 16 columns
    expected_y = 8 + (torch.arange(16) + 0.5) * 2.0 - 0.5      # 32 px tall box -> 16 rows
    assert torch.allclose(patch[0, 0], expected_x[None, :] + 100 * expected_y[:, None], atol=1e-3)


def test_patches_come_from_the_image_alone_and_follow_the_predicted_class_cam():
    model = tiny_model().eval()
    images = torch.randn(2, 3, 64, 64)
    out = model(images)
    features, logits = model.global_stream(images)
    cams = class_activation_maps(features, model.global_classifier, logits.argmax(1))
    assert torch.equal(out.extras["boxes"], peak_boxes(cams, (64, 64), 3, 0.5))
    assert (out.extras["patch_index"] == 0).all()                     # evaluation: the highest peak
    model.train()
    torch.manual_seed(3)
    indices = torch.stack([model(images).extras["patch_index"] for _ in range(6)])
    assert indices.unique().numel() > 1                               # training: a random box


# ----------------------------------------------------------------------------- step attention (eq. 3.5-3.6)
@pytest.mark.parametrize("mode", ["per_step", "shared"])
def test_step_attention_is_a_softmax_over_steps_of_w_dot_phi(mode):
    torch.manual_seed(2)
    module = StepAttention(hidden=3, steps=4, mode=mode)
    phi = torch.randn(2, 4, 3)
    aggregated, alpha = module(phi)
    assert torch.allclose(alpha.sum(dim=1), torch.ones(2))
    for b in range(2):
        scores = []
        for t in range(4):
            w = module.weight[t if mode == "per_step" else 0].detach()
            score = sum(float(w[d]) * float(phi[b, t, d]) for d in range(3))
            scores.append(score)
        weights = [math.exp(s) / sum(math.exp(u) for u in scores) for s in scores]
        for t in range(4):
            assert alpha[b, t].item() == pytest.approx(weights[t], abs=1e-6)
        for d in range(3):
            expected = sum(weights[t] * float(phi[b, t, d]) for t in range(4))
            assert aggregated[b, d].item() == pytest.approx(expected, abs=1e-6)


def literal_lstm(lstm: nn.LSTM, inputs):
    """Hochreiter & Schmidhuber's gates, element by element, for a stacked nn.LSTM (gate order i, f, g, o)."""
    layers, hidden = lstm.num_layers, lstm.hidden_size
    h = [[0.0] * hidden for _ in range(layers)]
    c = [[0.0] * hidden for _ in range(layers)]
    tops = []
    for x in inputs:
        below = list(x)
        for layer in range(layers):
            w_ih = getattr(lstm, f"weight_ih_l{layer}").tolist()
            w_hh = getattr(lstm, f"weight_hh_l{layer}").tolist()
            bias = [a + b for a, b in zip(getattr(lstm, f"bias_ih_l{layer}").tolist(),
                                          getattr(lstm, f"bias_hh_l{layer}").tolist())]
            pre = [sum(w_ih[r][k] * below[k] for k in range(len(below)))
                   + sum(w_hh[r][k] * h[layer][k] for k in range(hidden)) + bias[r] for r in range(4 * hidden)]
            new_c, new_h = [], []
            for u in range(hidden):
                i, f = sigmoid(pre[u]), sigmoid(pre[hidden + u])
                g, o = math.tanh(pre[2 * hidden + u]), sigmoid(pre[3 * hidden + u])
                new_c.append(f * c[layer][u] + i * g)
                new_h.append(o * math.tanh(new_c[-1]))
            c[layer], h[layer] = new_c, new_h
            below = new_h
        tops.append(list(h[-1]))
    return tops


def test_the_same_feature_enters_every_step_and_phi_is_the_top_layer_state():
    model = tiny_model().eval()
    patch_map = torch.randn(1, model.patch_backbone.out_channels, 2, 2)
    phi = model.step_features(patch_map)
    feature = patch_map.mean(dim=(2, 3))[0].tolist()
    expected = literal_lstm(model.lstm, [feature] * model.steps)
    assert phi.shape == (1, model.steps, model.lstm.hidden_size)
    assert np.allclose(phi[0].detach().numpy(), np.array(expected), atol=1e-5)


def test_branches_join_the_streams_and_read_steps_and_sums_through_the_local_classifier():
    model = tiny_model(local_weight=0.25).eval()      # lambda' != 1: it weighs the local stream only
    images = torch.randn(2, 3, 64, 64)
    out = model(images)
    branches = out.extras["branch_logits"]
    assert torch.allclose(out.logits, branches["global"] + 0.25 * branches["local"], atol=1e-5)
    patches, _ = model.patches(images)
    local = model.local_stream(patches)
    phi = local["phi"]
    weight, bias = model.local_classifier.weight, model.local_classifier.bias
    for k in range(1, model.steps + 1):
        total = sum(phi[:, t] for t in range(k))
        assert torch.allclose(branches[f"sum{k}"], branches["global"] + 0.25 * (total @ weight.T + bias), atol=1e-5)
        assert torch.allclose(branches[f"step{k}"], branches["global"] + 0.25 * (phi[:, k - 1] @ weight.T + bias),
                              atol=1e-5)
        mean = total / k                        # Table 6.2 on the classifier's scale
        assert torch.allclose(branches[f"mean{k}"], branches["global"] + 0.25 * (mean @ weight.T + bias), atol=1e-5)
    attended = (local["alpha"][..., None] * phi).sum(1)
    assert torch.allclose(branches["local"], attended @ weight.T + bias, atol=1e-5)


def _literal_grad_cam(model, patches, labels, step):
    """Grad-CAM of the true class's step-``step`` logit, by hand: the patch CNN's top map A, the gradient of
    the logit with respect to A, channel weights = the gradient's spatial mean, ReLU of the weighted sum of
    A's channels, scaled to [0, 1] (minimum to 0, maximum to 1) and resized to the patch bilinearly."""
    top = model.patch_backbone.top_stage
    maps = []
    for b in range(len(patches)):
        activation = model.patch_backbone(patches[b:b + 1], (top,))[top].detach().requires_grad_(True)
        phi = model.step_features(activation)                         # (1, T, H)
        logit = model.local_classifier(phi[0, step - 1])[int(labels[b])]
        (gradient,) = torch.autograd.grad(logit, activation)
        a, g = activation[0].detach().numpy(), gradient[0].numpy()
        cam = np.zeros(a.shape[1:])
        for c in range(a.shape[0]):
            cam += g[c].mean() * a[c]
        cam = np.maximum(cam, 0.0)
        cam = cam - cam.min()
        cam = cam / (1e-7 + cam.max())
        resized = torch.nn.functional.interpolate(torch.tensor(cam)[None, None], size=patches.shape[-2:],
                                                  mode="bilinear", align_corners=False)[0, 0].numpy()
        maps.append(resized)
    return np.stack(maps)


def test_step_grad_cam_is_read_from_that_step_s_hidden_state():
    model = tiny_model().eval()
    torch.manual_seed(3)
    patches = torch.randn(2, 3, 32, 32)
    labels = torch.tensor([1, 3])
    ours = views.step_cams(model, patches, labels, steps=[1, 4])
    literal = [_literal_grad_cam(model, patches, labels, t) for t in (1, 4)]
    for got, expected in zip(ours, literal):
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 0.01
    # the steps' maps differ, and each matches its own step better than the other's (a swap fails)
    assert np.abs(literal[0] - literal[1]).max() > 0.05
    assert np.abs(ours[0] - literal[0]).mean() < np.abs(ours[0] - literal[1]).mean()


def test_table_6_1_rows():
    images = torch.randn(2, 3, 64, 64)
    cnn = tiny_model(local="cnn").eval()
    out = cnn(images)
    assert cnn.lstm is None and set(out.extras["branch_logits"]) == {"global", "local"}
    patches, _ = cnn.patches(images)
    feature = cnn.patch_backbone(patches)[cnn.patch_backbone.top_stage].mean(dim=(2, 3))
    assert torch.allclose(out.extras["branch_logits"]["local"], cnn.local_classifier(feature), atol=1e-5)
    lstm = tiny_model(local="lstm").eval()
    out = lstm(images)
    assert lstm.step_attention is None
    assert torch.allclose(out.extras["branch_logits"]["local"], out.extras["step_logits"][:, -1])


# ----------------------------------------------------------------------------- loss (eq. 3.8-3.11)
def test_ranking_loss_is_the_hinge_on_true_class_probabilities():
    torch.manual_seed(4)
    g, l, t = torch.randn(3, 4), torch.randn(3, 4), torch.tensor([0, 3, 1])
    expected = 0.0
    for b in range(3):
        p_g = math.exp(g[b, t[b]]) / sum(math.exp(v) for v in g[b].tolist())
        p_l = math.exp(l[b, t[b]]) / sum(math.exp(v) for v in l[b].tolist())
        expected += max(0.0, p_g - p_l + 0.5) / 3
    assert float(ranking_loss(g, l, t, margin=0.5)) == pytest.approx(expected, abs=1e-6)
    assert float(ranking_loss(torch.zeros(1, 2), torch.tensor([[0.0, 50.0]]), torch.tensor([1]), 0.5)) == 0.0


@pytest.mark.parametrize("gradient, global_moves", [("local", False), ("both", True)])
def test_ranking_loss_gradient_reaches_the_global_stream_only_when_literal(gradient, global_moves):
    g = torch.randn(2, 3, requires_grad=True)
    l = torch.randn(2, 3, requires_grad=True)
    ranking_loss(g, l, torch.tensor([0, 2]), 0.5, gradient=gradient).backward()
    assert (g.grad is not None and bool(g.grad.abs().sum() > 0)) == global_moves
    assert l.grad.abs().sum() > 0


def cross_entropy(logits, target):
    row = logits.tolist()
    return -row[target] + math.log(sum(math.exp(v) for v in row))


@pytest.mark.parametrize("local", ["attention", "lstm"])
def test_loss_terms_are_eq_3_8_to_3_11(local):
    model = tiny_model(local=local).train()
    config = model.config.replace(local_weight=0.7, rank_weight=0.3)
    torch.manual_seed(5)
    out = model(torch.randn(2, 3, 64, 64))
    targets = torch.tensor([1, 4])
    terms = RecurrentAttentionLoss(config)(out, targets)
    g, l = out.extras["branch_logits"]["global"], out.extras["branch_logits"]["local"]
    assert terms["ce_global"].item() == pytest.approx(sum(cross_entropy(g[b], targets[b]) for b in range(2)) / 2, abs=1e-5)
    if local == "lstm":   # Table 6.1's CNN + LSTM: cross-entropy on every step
        steps = out.extras["step_logits"]
        local_ce = sum(cross_entropy(steps[b, t], targets[b]) for b in range(2) for t in range(steps.shape[1]))
        local_ce /= 2 * steps.shape[1]
    else:
        local_ce = sum(cross_entropy(l[b], targets[b]) for b in range(2)) / 2
    assert terms["ce_local"].item() == pytest.approx(0.7 * local_ce, abs=1e-5)
    assert terms["rank"].item() == pytest.approx(0.3 * ranking_loss(g, l, targets, 0.5).item(), abs=1e-6)
    assert "rank" not in RecurrentAttentionLoss(config.replace(ranking_loss=False))(out, targets)


def test_local_stream_trains_at_ten_times_the_rate():
    model = tiny_model()
    groups = parameter_groups(model, lr=1e-3)
    rates = {g["name"] if "name" in g else i: g["lr"] for i, g in enumerate(groups)}
    assert sorted(rates.values()) == pytest.approx([1e-3, 1e-2])
    local = next(g for g in groups if g["lr"] == pytest.approx(1e-2))
    assert any(p is model.local_classifier.weight for p in local["params"])
    assert all(p is not model.global_classifier.weight for p in local["params"])


# ----------------------------------------------------------------------------- self-attention (chapter 7)
def test_self_attention_block_against_eq_7_1_by_loops():
    torch.manual_seed(6)
    block = RecurrentAttentionSelfAttention(channels=6, map_size=(2, 3), hidden=4, out_features=5,
                                            key_fraction=0.5, spatial_channels=2)
    features, hidden = torch.randn(1, 6, 2, 3), torch.randn(1, 4)
    out, attention = block(features, hidden)
    query = block.query(hidden)[0].tolist()                        # the MLP's output is the query vector
    keys = [[features[0, c, i, j].item() for c in range(3)] + [block.bias_map[s, i, j].item() for s in range(2)]
            for i in range(2) for j in range(3)]
    values = [[features[0, 3 + c, i, j].item() for c in range(3)] + [block.bias_map[s, i, j].item() for s in range(2)]
              for i in range(2) for j in range(3)]
    logits = [sum(q * k for q, k in zip(query, key)) / math.sqrt(5) for key in keys]
    weights = [math.exp(v) / sum(math.exp(u) for u in logits) for v in logits]
    assert np.allclose(attention[0].detach().numpy().ravel(), weights, atol=1e-6)
    assert attention[0].sum().item() == pytest.approx(1.0)
    answer = torch.tensor([[sum(w * v[c] for w, v in zip(weights, values)) for c in range(5)]])
    assert torch.allclose(out, block.answer(answer), atol=1e-5)


def test_self_attention_model_feeds_each_step_from_the_previous_hidden_state():
    model = tiny_model(self_attention=True).eval()
    images = torch.randn(2, 3, 64, 64)
    out = model(images)
    assert out.logits.shape == (2, NUM_CLASSES) and "sum4" in out.extras["branch_logits"]
    patches, _ = model.patches(images)
    top = model.patch_backbone.top_stage
    patch_map = model.patch_backbone(patches, (top,))[top]
    hidden = torch.zeros(model.lstm.num_layers, 2, model.lstm.hidden_size)
    state, tops = (hidden, hidden.clone()), []
    for _ in range(model.steps):
        step_input, _ = model.self_attention(patch_map, state[0][-1])
        result, state = model.lstm(step_input[:, None], state)
        tops.append(result[:, 0])
    assert torch.allclose(model.step_features(patch_map), torch.stack(tops, 1), atol=1e-5)


def test_defaults_are_the_thesis_values():
    config = RecurrentAttentionConfig()
    assert (config.time_steps, config.lstm_layers, config.patch_size, config.num_patches) == (10, 2, 224, 10)
    assert (config.margin, config.rank_weight, config.local_weight, config.local_lr_multiplier) == (0.5, 0.5, 1.0, 10.0)
    assert (config.local, config.step_attention, config.ranking_loss) == ("attention", "per_step", True)


def test_paper_profile_recipe():
    from fgvc_lib.papers import recurrent_attention as paper
    from fgvc_lib.study.parameters import resolve

    settings = resolve(paper.STUDY, {"profile": "paper", "dataset": "synthetic"})
    assert (settings.backbone, settings.patch_backbone, settings.image_size, settings.patch_size) == \
        ("vgg19", "vgg19", 448, 224)
    train = paper.recipe(settings)
    assert (train.lr, train.scheduler, train.step_size, train.gamma, train.epochs) == (1e-3, "step", 40, 0.1, 120)
    assert paper.model_config(settings, "attention", False).local_lr_multiplier == pytest.approx(10.0)
    with_sa = resolve(paper.STUDY, {"profile": "paper", "dataset": "synthetic", "self_attention": "on"})
    assert with_sa.patch_backbone == "resnet34"                       # ch. 7's patch CNN


def test_config_rejects_bad_values_with_the_reason():
    with pytest.raises(ValueError, match="unknown local"):
        RecurrentAttentionConfig(local="gru")
    with pytest.raises(ValueError, match="needs local"):
        RecurrentAttentionConfig(local="cnn", self_attention=True)
    with pytest.raises(ValueError, match="margin"):
        RecurrentAttentionConfig(margin=-1)
    with pytest.raises(ValueError, match="box_fraction"):
        RecurrentAttentionConfig(box_fraction=0)


# ----------------------------------------------------------------------------- the views' scores
def test_half_mass_area_counts_the_pixels_holding_half_the_mass():
    assert views.half_mass_area(np.ones((4, 4))) == pytest.approx(50.0)
    assert views.half_mass_area(np.zeros((4, 4))) == pytest.approx(50.0)            # flat: no evidence
    spike = np.zeros((4, 4))
    spike[1, 2] = 1.0
    assert views.half_mass_area(spike) == pytest.approx(100.0 / 16)
    two = np.zeros((4, 4))
    two[0, 0], two[3, 3], two[2, 2] = 0.3, 0.3, 0.4      # 0.4 < half; 0.4 + 0.3 >= half: two pixels
    assert views.half_mass_area(two) == pytest.approx(200.0 / 16)


def test_parts_move_into_patch_pixels_and_are_scored():
    moved = views.parts_in_patch([[20.0, 30.0, 8.0, 4.0]], [16.0, 24.0, 48.0, 56.0], patch_size=16)
    assert moved == [[2.0, 3.0, 4.0, 2.0]]                  # a 32-px box shown at 16 px: halved
    cam = np.zeros((16, 16))
    cam[3:5, 2:6] = 1.0
    cam[10, 10] = 2.0
    assert views.mass_on_parts(cam, moved) == pytest.approx(100.0 * 8 / 10)
    assert views.covers_a_part([16, 24, 48, 56], [[20, 30, 8, 4]]) == 100.0
    assert views.covers_a_part([0, 0, 10, 10], [[20, 30, 8, 4]]) == 0.0
    assert views.centre_box((64, 64), 32) == [16.0, 16.0, 48.0, 48.0]


def test_step_maps_are_scored_per_step_and_image():
    from fgvc_lib.localization import CamSample

    model = tiny_model()
    sample = CamSample([0, 1], torch.randn(2, 3, 64, 64), torch.tensor([0, 3]), np.zeros((2, 4)),
                       [[[10, 10, 8, 8]], [[40, 30, 6, 6]]], ["a", "b"])
    scores = views.step_map_scores(model, sample)
    assert sorted(scores) == sorted([f"step {t}: map area" for t in range(1, 5)] +
                                    [f"step {t}: map on parts" for t in range(1, 5)])
    assert all(v.shape == (2,) and ((v >= 0) & (v <= 100)).all() for v in scores.values())
    patch = views.patch_scores(model, sample)
    assert set(patch) == {"patch covers a part", "centre box covers a part", "parts' share of the patch"}
    _, boxes = views.evaluation_patches(model, sample.images)
    for image, (x, y, w, h) in enumerate([(10, 10, 8, 8), (40, 30, 6, 6)]):   # overlap of part and box / box area
        x1, y1, x2, y2 = boxes[image].tolist()
        overlap = max(0.0, min(x + w, x2) - max(x, x1)) * max(0.0, min(y + h, y2) - max(y, y1))
        assert patch["parts' share of the patch"][image] == pytest.approx(100.0 * overlap / (x2 - x1) / (y2 - y1))
    assert model.training                                   # the views leave the model's mode as it was


# ----------------------------------------------------------------------------- the notebook's parameters
@pytest.mark.parametrize("changes, message", [
    ({"ranking_loss": "yes"}, "parameter ranking_loss"),
    ({"variant": "cnn", "self_attention": "on"}, "parameter self_attention"),
    ({"patch_size": 8}, "parameter patch_size"),
    ({"patch_backbone": "alexnet"}, "parameter patch_backbone"),
    ({"time_steps": 0}, "parameter time_steps"),
])
def test_bad_parameters_stop_with_the_parameter_named(changes, message):
    from fgvc_lib.papers import recurrent_attention as paper
    from fgvc_lib.study import Study

    with pytest.raises(ValueError, match=message):
        Study(paper.STUDY, profile="smoke", **changes)


def test_profile_defaults_resolve_patch_size_and_patch_backbone():
    from fgvc_lib.papers import recurrent_attention as paper
    from fgvc_lib.study.parameters import resolve

    smoke = resolve(paper.STUDY, {"profile": "smoke"})
    assert (smoke.patch_size, smoke.patch_backbone, smoke.backbone) == (smoke.image_size // 2, "vgg16", "vgg16")
    assert paper.main_variant(smoke) == "attention"
    with_sa = resolve(paper.STUDY, {"profile": "smoke", "self_attention": "on"})
    assert paper.main_variant(with_sa) == "attention_sa"
