"""Unit tests of CRA-SMRA (fgvc_lib.models.cra_smra) and FeatureBackbone.forward_between.

Every module is checked against a literal evaluation written here (loops over channels, positions,
maps), not against the module's own helpers.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from fgvc_lib.backbones import build_backbone
from fgvc_lib.cam import compute_cams
from fgvc_lib.models.cra_smra import (CBAM, STAGES, ChannelReAttention, CRASMRA, CRASMRAConfig, CRASMRALoss,
                                      SpatialMultiRegionAttention, StagePairedCRASMRALoss, build_cra_smra,
                                      cra_smra_loss, diversity_loss, stage_activation_maps, suppression_window)
from fgvc_lib.models.output import ModelOutput

torch.set_num_threads(1)

NUM_CLASSES = 3
IMAGE = 64      # conv3_x / pool3 8x8, conv4_x / pool4 4x4, conv5_x / pool5 2x2
WIDTH = 0.125
BACKBONES = [("resnet50", {}), ("vgg16", {"batch_norm": True})]
BRANCHES = ("stage3", "stage4", "stage5", "concat")


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _images(batch=2, seed=0):
    return torch.rand(batch, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(seed))


def _model(name="resnet50", kwargs=None, **changes) -> CRASMRA:
    torch.manual_seed(0)
    backbone = build_backbone(name, width=WIDTH, **(kwargs or {}))
    return build_cra_smra(backbone, NUM_CLASSES, CRASMRAConfig(**changes))


def _literal_importance(x: torch.Tensor, fc1: nn.Linear, fc2: nn.Linear) -> torch.Tensor:
    """sigmoid(FC2(ReLU(FC1(avg))) + FC2(ReLU(FC1(max)))) with loops over channels and positions."""
    b_count, c_count, height, width = x.shape
    w1, b1, w2, b2 = fc1.weight.tolist(), fc1.bias.tolist(), fc2.weight.tolist(), fc2.bias.tolist()
    out = torch.zeros(b_count, c_count, dtype=torch.float64)
    for b in range(b_count):
        avg, mx = [], []
        for c in range(c_count):
            values = [x[b, c, i, j].item() for i in range(height) for j in range(width)]
            avg.append(sum(values) / len(values))
            mx.append(max(values))

        def mlp(d):
            hidden = [max(0.0, b1[k] + sum(w1[k][c] * d[c] for c in range(c_count))) for k in range(len(b1))]
            return [b2[c] + sum(w2[c][k] * hidden[k] for k in range(len(hidden))) for c in range(c_count)]

        a_out, m_out = mlp(avg), mlp(mx)
        for c in range(c_count):
            out[b, c] = _sigmoid(a_out[c] + m_out[c])
    return out


def _literal_mask(importance: list, omega: float, delta: float) -> list:
    """S of one image: softmax of I over channels, omega where I*_c >= delta * max I*, else 1."""
    exps = [math.exp(v) for v in importance]
    total = sum(exps)
    normalised = [e / total for e in exps]
    top = max(normalised)
    return [omega if normalised[c] >= delta * top else 1.0 for c in range(len(importance))]


def _set_importance(cram: ChannelReAttention, logits_half: list) -> None:
    """Make I = sigmoid(2 * bias2) for every input: FC1 outputs 0, so both descriptors give FC2's bias."""
    with torch.no_grad():
        cram.mlp.fc1.weight.zero_()
        cram.mlp.fc1.bias.zero_()
        cram.mlp.fc2.weight.normal_()
        cram.mlp.fc2.bias.copy_(torch.tensor(logits_half))


# --------------------------------------------------------------------------- FeatureBackbone.forward_between

@pytest.mark.parametrize("name,kwargs", BACKBONES)
def test_forward_between_chained_equals_forward(name, kwargs):
    torch.manual_seed(0)
    backbone = build_backbone(name, width=WIDTH, **kwargs).eval()
    stages = STAGES["resnet" if name.startswith("resnet") else "vgg"]
    x = _images()
    with torch.no_grad():
        reference = backbone(x, stages)
        y, previous = x, None
        for stage in stages:
            y = backbone.forward_between(y, previous, stage)
            assert torch.equal(y, reference[stage]), stage
            previous = stage
    with pytest.raises(ValueError, match="does not come after"):
        backbone.forward_between(reference[stages[1]], stages[1], stages[0])
    with pytest.raises(ValueError, match="no stage"):
        backbone.forward_between(x, None, "conv9_x")


# --------------------------------------------------------------------------- CRAM (sec. 3.1)

@pytest.mark.parametrize("name,kwargs", BACKBONES)
def test_cram_shapes_per_stage(name, kwargs):
    model = _model(name, kwargs).eval()
    with torch.no_grad():
        out = model(_images())
    width = model.unified_channels
    assert width == model.backbone.stage_channels[model.stages[0]]
    for stage, side in zip(model.stages, (8, 4, 2)):
        channels = model.backbone.stage_channels[stage]
        raw = out.extras["backbone_maps"][stage]
        assert raw.shape == (2, channels, side, side)
        assert out.extras["features"][stage].shape == (2, width, side, side)
        assert out.extras["channel_importance"][stage].shape == (2, channels)
        assert out.extras["suppression_mask"][stage].shape == (2, channels)
        site = model.sites[stage](raw)
        assert site["suppressed"].shape == raw.shape and site["reweighted"].shape == raw.shape


def test_cram_importance_matches_literal_mlp():
    torch.manual_seed(1)
    cram = ChannelReAttention(6, 4, reduction=2)
    x = torch.randn(2, 6, 3, 4)
    out = cram(x)
    expected = _literal_importance(x, cram.mlp.fc1, cram.mlp.fc2)
    assert torch.allclose(out["importance"].double(), expected, atol=1e-6)
    for b in range(2):
        for c in range(6):
            for i in range(3):
                for j in range(4):
                    want = out["importance"][b, c].item() * x[b, c, i, j].item()
                    assert abs(out["reweighted"][b, c, i, j].item() - want) < 1e-6
                    want_s = out["mask"][b, c].item() * x[b, c, i, j].item()
                    assert abs(out["suppressed"][b, c, i, j].item() - want_s) < 1e-6
    assert out["enhanced"].shape == (2, 4, 3, 4)
    assert torch.allclose(out["enhanced"], cram.unify(out["reweighted"]))


def test_cram_reduction_keeps_at_least_one_hidden_unit():
    cram = ChannelReAttention(8, 8, reduction=16)
    assert cram.mlp.fc1.out_features == 1


@pytest.mark.parametrize("omega,delta", [(0.5, 0.9), (0.3, 0.99), (0.5, 0.5), (0.25, 1.0)])
def test_mask_suppresses_exactly_channels_near_the_maximum(omega, delta):
    torch.manual_seed(2)
    # I = sigmoid(2 * b): spread so that the threshold separates several channels from the rest
    half_logits = [2.0, 1.95, -1.0, 0.5, 2.0, -3.0, 1.0, 1.9]
    cram = ChannelReAttention(8, 4, reduction=4, omega=omega, delta=delta)
    _set_importance(cram, half_logits)
    x = torch.rand(2, 8, 3, 3) + 0.1
    out = cram(x)
    importance = [_sigmoid(2 * v) for v in half_logits]
    assert torch.allclose(out["importance"][0].double(), torch.tensor(importance, dtype=torch.float64), atol=1e-6)
    expected = _literal_mask(importance, omega, delta)
    for b in range(2):
        for c in range(8):
            assert out["mask"][b, c].item() == pytest.approx(expected[c]), (b, c)
            assert torch.allclose(out["suppressed"][b, c], expected[c] * x[b, c])
    if delta == 1.0:   # only the argmax channels (0 and 4 tie)
        assert [c for c in range(8) if expected[c] != 1.0] == [0, 4]
    assert 0 < sum(v != 1.0 for v in expected) < 8


def test_mask_omega_one_is_no_suppression_and_no_gradient_through_mask():
    cram = ChannelReAttention(5, 3, reduction=1, omega=1.0, delta=0.5)
    x = torch.rand(2, 5, 4, 4, requires_grad=True)
    out = cram(x)
    assert torch.equal(out["mask"], torch.ones(2, 5))
    assert torch.equal(out["suppressed"], x)
    assert not out["mask"].requires_grad


def test_mask_off_when_not_suppressing():
    cram = ChannelReAttention(5, 3, reduction=1, omega=0.5, delta=0.5)
    x = torch.rand(1, 5, 2, 2)
    out = cram(x, suppress=False)
    assert torch.equal(out["mask"], torch.ones(1, 5)) and torch.equal(out["suppressed"], x)


@pytest.mark.parametrize("delta", [0.1, 0.3, math.exp(-1.0)])
def test_every_delta_up_to_one_over_e_suppresses_every_channel(delta):
    # I = sigmoid(.) lies in (0, 1), so softmax(I)_c / max softmax(I) = exp(I_c - I_max) > 1/e >= delta
    half_logits = [8.0, -8.0, 0.0, 3.0, -5.0, 1.0]          # I from about 1e-7 to 1 - 1e-7
    cram = ChannelReAttention(6, 4, reduction=2, omega=0.5, delta=delta)
    _set_importance(cram, half_logits)
    out = cram(torch.rand(1, 6, 2, 2))
    assert out["mask"].tolist() == [[0.5] * 6]


def test_suppression_window_is_minus_log_delta_on_the_importance():
    # channel c is suppressed exactly when I_c >= I_max + ln(delta): check by hand at delta = 0.5
    assert suppression_window(0.5) == pytest.approx(math.log(2.0))
    assert suppression_window(1.0) == 0.0 and suppression_window(math.exp(-1.0)) == pytest.approx(1.0)
    importance = [0.95, 0.95 - 0.69, 0.95 - 0.70, 0.2]        # within 0.69 of the top: channels 0 and 1
    assert _literal_mask(importance, 0.5, 0.5) == [0.5, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="delta"):
        suppression_window(0.0)


# --------------------------------------------------------------------------- SMRAM and L_div (sec. 3.2)

def _literal_div(maps: torch.Tensor, form: str) -> float:
    batch, n, positions = maps.shape
    total = 0.0
    for b in range(batch):
        ccmp = sum(max(maps[b, l, j].item() for l in range(n)) for j in range(positions))
        h = ccmp / n
        total += (1.0 - h) if form == "mcloss" else (1.0 - h) / (1.0 - 1.0 / n)
    return total / batch


def test_div_is_zero_for_disjoint_and_one_for_identical_maps():
    disjoint = torch.zeros(2, 3, 6)
    for l in range(3):
        disjoint[:, l, 2 * l] = 0.5
        disjoint[:, l, 2 * l + 1] = 0.5
    identical = torch.softmax(torch.randn(1, 1, 6), dim=2).expand(2, 3, 6).contiguous()
    assert diversity_loss(disjoint).item() == pytest.approx(0.0, abs=1e-7)
    assert diversity_loss(identical).item() == pytest.approx(1.0, abs=1e-6)
    assert diversity_loss(identical, "mcloss").item() == pytest.approx(2.0 / 3.0, abs=1e-6)
    torch.manual_seed(3)
    for _ in range(5):
        maps = torch.softmax(3 * torch.randn(4, 3, 6), dim=2)
        value = diversity_loss(maps).item()
        assert 0.0 <= value <= 1.0
        assert value == pytest.approx(_literal_div(maps, "unit"), abs=1e-6)
        assert diversity_loss(maps, "mcloss").item() == pytest.approx(_literal_div(maps, "mcloss"), abs=1e-6)


def test_div_decreases_as_maps_separate():
    base = torch.zeros(1, 3, 3)
    values = []
    for overlap in (1.0, 0.6, 0.3, 0.0):   # share of each map's mass on a common position
        maps = base.clone()
        for l in range(3):
            maps[0, l, 0] += overlap
            maps[0, l, l] += 1.0 - overlap
        values.append(diversity_loss(maps).item())
    assert values == sorted(values, reverse=True)
    assert values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(0.0)


def test_smram_maps_are_spatial_distributions_at_the_last_size():
    torch.manual_seed(4)
    smram = SpatialMultiRegionAttention(4, 3)
    maps = [torch.rand(2, 4, 8, 8), torch.rand(2, 4, 4, 4), torch.rand(2, 4, 2, 2)]
    out = smram(maps)
    assert out.shape == (2, 3, 4)
    assert torch.allclose(out.sum(dim=2), torch.ones(2, 3), atol=1e-6)
    assert (out >= 0).all()
    # stage 3: the 8x8 map averaged over 4x4 windows, conv block, phi, softmax over the 4 positions
    smram.eval()
    out = smram(maps)
    pooled = torch.zeros(2, 4, 2, 2)
    for i in range(2):
        for j in range(2):
            pooled[:, :, i, j] = maps[0][:, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4].mean(dim=(2, 3))
    scores = smram.phi[0](smram.blocks[0](pooled)).flatten(1)
    for b in range(2):
        exps = [math.exp(scores[b, p].item()) for p in range(4)]
        for p in range(4):
            assert out[b, 0, p].item() == pytest.approx(exps[p] / sum(exps), abs=1e-6)


# --------------------------------------------------------------------------- CBAM

def test_cbam_matches_literal_channel_and_spatial_attention():
    torch.manual_seed(5)
    cbam = CBAM(4, reduction=2, kernel_size=3)
    x = torch.randn(1, 4, 4, 5)
    refined, channel_att, spatial_att = cbam(x)
    expected_c = _literal_importance(x, cbam.channel.fc1, cbam.channel.fc2)
    assert torch.allclose(channel_att.double(), expected_c, atol=1e-6)
    xc = [[[expected_c[0, c].item() * x[0, c, i, j].item() for j in range(5)] for i in range(4)] for c in range(4)]
    mean_map = [[sum(xc[c][i][j] for c in range(4)) / 4 for j in range(5)] for i in range(4)]
    max_map = [[max(xc[c][i][j] for c in range(4)) for j in range(5)] for i in range(4)]
    weight = cbam.spatial.weight[0].tolist()   # (2, 3, 3)
    for i in range(4):
        for j in range(5):
            acc = 0.0
            for k, plane in enumerate((mean_map, max_map)):
                for di in range(3):
                    for dj in range(3):
                        ii, jj = i + di - 1, j + dj - 1
                        if 0 <= ii < 4 and 0 <= jj < 5:
                            acc += weight[k][di][dj] * plane[ii][jj]
            s = _sigmoid(acc)
            assert spatial_att[0, 0, i, j].item() == pytest.approx(s, abs=1e-6)
            for c in range(4):
                assert refined[0, c, i, j].item() == pytest.approx(s * xc[c][i][j], abs=1e-5)


# --------------------------------------------------------------------------- the full model

@pytest.mark.parametrize("name,kwargs", BACKBONES)
def test_model_train_forward_loss_and_gradients(name, kwargs):
    model = _model(name, kwargs).train()
    out = model(_images())
    assert isinstance(out, ModelOutput)
    assert model.branch_names == BRANCHES
    assert tuple(out.extras["branch_logits"]) == BRANCHES
    for logits in out.extras["branch_logits"].values():
        assert logits.shape == (2, NUM_CLASSES)
    assert out.logits.shape == (2, NUM_CLASSES)
    assert out.extras["smram_maps"].shape == (2, 3, 4)
    targets = torch.tensor([0, 2])
    terms = cra_smra_loss()(out, targets)
    assert set(terms) == {"ce_concat", "ce_stage3", "ce_stage4", "ce_stage5", "div"}
    total = sum(terms.values())
    assert torch.isfinite(total)
    ce = nn.functional.cross_entropy
    branches = out.extras["branch_logits"]
    expected = (2 * ce(branches["concat"], targets) + sum(ce(branches[s], targets) for s in BRANCHES[:3])
                + diversity_loss(out.extras["smram_maps"]))
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.backward()
    for stage in model.stages:
        mlp = model.sites[stage].mlp
        assert mlp.fc2.weight.grad is not None and mlp.fc2.weight.grad.abs().sum() > 0, stage
        assert mlp.fc1.weight.grad is not None, stage
    assert any(model.sites[s].mlp.fc1.weight.grad.abs().sum() > 0 for s in model.stages)
    for block in model.smram.blocks:
        assert block[0].weight.grad.abs().sum() > 0
    assert model.smram.phi[0].weight.grad.abs().sum() > 0
    assert next(model.backbone.parameters()).grad is not None


def _literal_ce(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean over the batch of -log softmax(z)_y, with loops."""
    total = 0.0
    for b in range(logits.shape[0]):
        z = logits[b].tolist()
        total += -(z[int(targets[b])] - math.log(sum(math.exp(v) for v in z)))
    return total / logits.shape[0]


def _literal_div_unit(maps: torch.Tensor) -> float:
    batch, n, positions = maps.shape
    total = 0.0
    for b in range(batch):
        h = sum(max(maps[b, l, j].item() for l in range(n)) for j in range(positions)) / n
        total += (1.0 - h) / (1.0 - 1.0 / n)
    return total / batch


@pytest.mark.parametrize("pairing", ["concat", "stages"])
def test_loss_at_non_default_weights_matches_a_hand_computation(pairing):
    alpha, beta, gamma = 0.7, 3.0, 0.25
    model = _model(alpha=alpha, beta=beta, gamma=gamma).train()
    out = model(_images())
    targets = torch.tensor([2, 0])
    loss = cra_smra_loss(model.config, pairing)
    assert type(loss) is (CRASMRALoss if pairing == "concat" else StagePairedCRASMRALoss)
    terms = loss(out, targets)
    branches = out.extras["branch_logits"]
    ce = {name: _literal_ce(branches[name].detach(), targets) for name in BRANCHES}
    div = _literal_div_unit(out.extras["smram_maps"].detach())
    if pairing == "concat":   # alpha * CE(concat) + beta * sum CE(stage) + gamma * L_div
        expected = {"ce_concat": alpha * ce["concat"], "div": gamma * div,
                    **{f"ce_{s}": beta * ce[s] for s in BRANCHES[:3]}}
    else:                     # alpha * sum CE(stage) + beta * CE(concat) + gamma * L_div
        expected = {"ce_concat": beta * ce["concat"], "div": gamma * div,
                    **{f"ce_{s}": alpha * ce[s] for s in BRANCHES[:3]}}
    assert set(terms) == set(expected)
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-5, abs=1e-6), name
    assert sum(terms.values()).item() == pytest.approx(sum(expected.values()), rel=1e-5)
    with pytest.raises(ValueError, match="loss pairing"):
        cra_smra_loss(model.config, "overall")


def test_gamma_zero_loss_equals_the_cram_arms_loss_and_gradients():
    # gamma = 0: SMRAM's maps are computed but weigh nothing, so the full model trains as '+ CRAM'
    # (the study reads gamma = 0 from the '+ CRAM' runs); same seed, same weights for the shared modules
    full, cram = _model(gamma=0.0).train(), _model(smram=False).train()
    assert full.smram is not None and cram.smram is None
    shared = {k: v for k, v in full.state_dict().items() if not k.startswith("smram.")}
    assert set(shared) == set(cram.state_dict())
    assert all(torch.equal(v, cram.state_dict()[k]) for k, v in shared.items())
    images, targets = _images(), torch.tensor([1, 2])
    totals = {}
    for name, model in (("full", full), ("cram", cram)):
        terms = cra_smra_loss(model.config)(model(images), targets)
        totals[name] = sum(terms.values())
        totals[name].backward()
    assert totals["full"].item() == pytest.approx(totals["cram"].item(), rel=1e-6)
    grads = dict(cram.named_parameters())
    for name, parameter in full.named_parameters():
        if name.startswith("smram."):
            assert parameter.grad is None or parameter.grad.abs().sum() == 0, name
        else:
            assert torch.allclose(parameter.grad, grads[name].grad, atol=1e-6), name


def test_model_eval_skips_smram_and_averages_branch_probabilities():
    model = _model().eval()
    calls = []
    handle = model.smram.register_forward_hook(lambda *args: calls.append(1))
    try:
        with torch.no_grad():
            out = model(_images())
    finally:
        handle.remove()
    assert calls == [] and "smram_maps" not in out.extras
    terms = cra_smra_loss()(out, torch.tensor([0, 1]))
    assert "div" not in terms and set(terms) == {"ce_concat", "ce_stage3", "ce_stage4", "ce_stage5"}
    branches = out.extras["branch_logits"]
    for b in range(2):
        probs = [0.0] * NUM_CLASSES
        for name in BRANCHES:
            z = branches[name][b].tolist()
            norm = sum(math.exp(v) for v in z)
            for k in range(NUM_CLASSES):
                probs[k] += math.exp(z[k]) / norm / len(BRANCHES)
        for k in range(NUM_CLASSES):
            assert out.logits[b, k].item() == pytest.approx(math.log(probs[k]), abs=1e-5)
    model_logits = _model(combine="logits").eval()
    with torch.no_grad():
        out = model_logits(_images())
    mean = sum(out.extras["branch_logits"][n] for n in BRANCHES) / 4
    assert torch.allclose(out.logits, mean, atol=1e-6)


@pytest.mark.parametrize("suppress_at_test", [True, False])
def test_suppressed_map_feeds_the_next_stage(suppress_at_test):
    model = _model(suppress_at_test=suppress_at_test).eval()
    with torch.no_grad():
        out = model(_images())
        raw, masks = out.extras["backbone_maps"], out.extras["suppression_mask"]
        for previous, stage in (("conv3_x", "conv4_x"), ("conv4_x", "conv5_x")):
            mask = masks[previous]
            assert torch.equal(mask != 1.0, mask == 0.5)
            if suppress_at_test:
                assert (mask == 0.5).any(dim=1).all()    # the argmax channel at least
            else:
                assert torch.equal(mask, torch.ones_like(mask))
            expected = model.backbone.forward_between(mask[:, :, None, None] * raw[previous], previous, stage)
            assert torch.allclose(raw[stage], expected, atol=1e-6)


@pytest.mark.parametrize("attention,smram", [("none", False), ("cbam", False), ("cram", False), ("none", True)])
def test_variants(attention, smram):
    model = _model(attention=attention, smram=smram).train()
    out = model(_images())
    assert tuple(out.extras["branch_logits"]) == BRANCHES
    assert ("smram_maps" in out.extras) == smram and (model.smram is not None) == smram
    assert ("suppression_mask" in out.extras) == (attention == "cram")
    terms = cra_smra_loss(model.config)(out, torch.tensor([0, 1]))
    assert ("div" in terms) == smram
    sum(terms.values()).backward()
    if attention == "none":   # the plain network: the backbone's own maps flow on unchanged
        model.eval()
        with torch.no_grad():
            x = _images()
            reference = model.backbone(x, model.stages)
            raw = model(x).extras["backbone_maps"]
        for stage in model.stages:
            assert torch.allclose(raw[stage], reference[stage], atol=1e-6)
    if attention == "cbam":
        assert out.extras["spatial_attention"]["conv4_x"].shape == (2, 1, 4, 4)
        assert model.sites["conv3_x"].cbam.spatial.weight.grad.abs().sum() > 0


def test_lr_groups_partition_parameters_with_the_paper_rates():
    from fgvc_lib.engine import TrainConfig, _make_optimizer

    model = _model()
    optimizer = _make_optimizer(model, TrainConfig(lr=2e-4, momentum=0.9))   # the engine reads lr_groups()
    groups = optimizer.param_groups
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len([p for p in model.parameters()])
    rates = {g["name"]: g["lr"] for g in groups}
    assert rates == pytest.approx({"backbone": 2e-4, "cram": 6e-3, "smram": 2e-4, "heads": 6e-3})
    assert {n: m for n, _, m in _model(head_lr="backbone").lr_groups()}["heads"] == pytest.approx(1.0)


def test_cam_targets_and_activation_maps():
    model = _model()
    assert model.cam_target_layers("stage4") == [model.sites["conv4_x"].unify]
    assert model.cam_target_layers() == [model.sites[s].unify for s in model.stages]
    with pytest.raises(ValueError, match="unknown branch"):
        model.cam_target_layers("stage9")
    model.train()
    maps = stage_activation_maps(model, _images())
    assert model.training
    assert [tuple(m.shape) for m in maps.values()] == [(2, 8, 8), (2, 4, 4), (2, 2, 2)]
    model.eval()
    with torch.no_grad():
        features = model(_images()).extras["features"]
    x = features["conv5_x"]
    for b in range(2):
        for i in range(2):
            for j in range(2):
                want = sum(x[b, c, i, j].item() for c in range(x.shape[1])) / x.shape[1]
                assert maps["conv5_x"][b, i, j].item() == pytest.approx(want, abs=1e-6)
    cams = compute_cams(model, _images(), branch="stage4")
    assert cams.shape == (2, IMAGE, IMAGE)


# --------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("changes,parameter", [
    ({"omega": 0.0}, "omega"), ({"omega": 1.5}, "omega"), ({"omega": -0.1}, "omega"),
    ({"delta": 0.0}, "delta"), ({"delta": 1.01}, "delta"),
    ({"alpha": -1.0}, "alpha"), ({"beta": -0.5}, "beta"), ({"gamma": -2.0}, "gamma"),
    ({"attention": "se"}, "attention"), ({"reduction": 0}, "reduction"), ({"div_form": "l2"}, "div_form"),
    ({"combine": "vote"}, "combine"), ({"unified_channels": 0}, "unified_channels"),
    ({"stages": ("conv5_x",)}, "stages"),
])
def test_config_errors_name_the_parameter(changes, parameter):
    with pytest.raises(ValueError, match=parameter):
        CRASMRAConfig(**changes)


def test_config_defaults_and_bad_stage_order():
    c = CRASMRAConfig()
    assert (c.alpha, c.beta, c.gamma, c.omega, c.delta) == (2.0, 1.0, 1.0, 0.5, 0.9)
    assert c.cram_lr_multiplier == pytest.approx(30.0)
    assert c.train_config_kwargs()["scheduler"] == "cosine"
    with pytest.raises(ValueError, match="order"):
        _model(stages=("conv4_x", "conv3_x", "conv5_x"))
    with pytest.raises(ValueError, match="num_classes"):
        build_cra_smra(build_backbone("resnet50", width=WIDTH), 1)
