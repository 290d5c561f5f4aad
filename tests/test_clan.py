"""Unit tests of CLAN (fgvc_lib.models.clan, .clan_modules) and its paper numbers (fgvc_lib.papers.clan).

Slim backbones (width 0.125) at 64 px, batch 2; Table 5's complexity at full width on the meta device.
"""
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from fgvc_lib.backbones import build_backbone
from fgvc_lib.complexity import model_complexity
from fgvc_lib.models.baseline import BaselineNet
from fgvc_lib.models.clan import (CLAN_STAGES, CLANConfig, build_clan, clan_loss,
                                  combine_branches)
from fgvc_lib.models.clan_modules import (CLSA_POOLINGS, RELATIONS, CrossLayerContextAttention,
                                          CrossLayerSpatialAttention)
from fgvc_lib.models.output import ModelOutput
from fgvc_lib.papers import clan as paper
from fgvc_lib.papers import clan_complexity, clan_views
from fgvc_lib.profiles import get_profile
from fgvc_lib.reporting import RESULT_COLUMNS
from fgvc_lib.study import Accuracy, Fixed, Printed, Run, Score, Study
from fgvc_lib.study.jobs import RunRecord
from fgvc_lib.study.parameters import resolve
from fgvc_lib.study.runner import DataBundle

torch.set_num_threads(1)
WIDTH, SIZE, BATCH, CLASSES = 0.125, 64, 2, 5


def slim(name="vgg16"):
    return build_backbone(name, width=WIDTH)


def images(seed=0, size=SIZE):
    return torch.randn(BATCH, 3, size, size, generator=torch.Generator().manual_seed(seed))


def maps(seed=0, mid=(8, 8, 8), top=(12, 4, 4)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, *mid, generator=g), torch.randn(BATCH, *top, generator=g)


# ---------------------------------------------------------------- CLCA / non-local
@pytest.mark.parametrize("relation", RELATIONS)
def test_clca_keeps_shape_and_is_identity_when_w_y_is_zero(relation):
    torch.manual_seed(0)
    mid, top = maps()
    plain = CrossLayerContextAttention(8, 12, relation=relation, output_norm=False)
    assert plain.w_y.weight.abs().sum() == 0
    assert torch.equal(plain(mid, top), mid)                               # eq. 3 with W_y = 0
    normed = CrossLayerContextAttention(8, 12, relation=relation).train()  # default: BN after W_y
    assert normed.norm is not None and normed.norm.weight.abs().sum() == 0
    assert torch.equal(normed(mid, top), mid)                              # BN scale starts at 0
    for output_norm in (False, True):
        live = CrossLayerContextAttention(8, 12, relation=relation, output_norm=output_norm,
                                          zero_init_output=False)
        out = live(mid, top)
        assert out.shape == mid.shape and torch.isfinite(out).all()
        assert not torch.allclose(out, mid)


@pytest.mark.parametrize("relation", ("gaussian", "embedded_gaussian"))
def test_softmax_relations_rows_sum_to_one(relation):
    torch.manual_seed(0)
    mid, top = maps()
    rel = CrossLayerContextAttention(8, 12, relation=relation).relations(mid, top)
    assert rel.shape == (BATCH, 64, 64)
    assert (rel >= 0).all()
    torch.testing.assert_close(rel.sum(-1), torch.ones(BATCH, 64))


def test_dot_product_relation_is_divided_by_n():
    torch.manual_seed(0)
    mid, top = maps()
    block = CrossLayerContextAttention(8, 12, relation="dot_product")
    fused = block.w_l(mid) + F.interpolate(block.w_g(top), size=(8, 8), mode="bilinear", align_corners=False)
    theta, phi = block.theta(fused).flatten(2), block.phi(fused).flatten(2)
    expected = theta.transpose(1, 2) @ phi / 64
    torch.testing.assert_close(block.relations(mid, top), expected)


def test_gradient_reaches_the_top_map_in_clca_but_not_in_nonlocal():
    torch.manual_seed(0)
    mid, top = maps()
    top.requires_grad_(True)
    clca = CrossLayerContextAttention(8, 12, zero_init_output=False)
    clca(mid, top).square().sum().backward()
    assert clca.w_g.weight.grad is not None and clca.w_g.weight.grad.abs().sum() > 0
    assert top.grad is not None and top.grad.abs().sum() > 0

    top.grad = None
    nonlocal_block = CrossLayerContextAttention(8, relation="dot_product", use_top=False, zero_init_output=False)
    assert not hasattr(nonlocal_block, "w_g") and not hasattr(nonlocal_block, "w_l")
    out = nonlocal_block(mid, top)
    out.square().sum().backward()
    assert out.shape == mid.shape
    assert top.grad is None                                # relations from the mid map alone
    assert nonlocal_block.theta.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("upsample", ("bilinear", "nearest"))
def test_cheaper_computation_orders_give_the_same_output(upsample):
    torch.manual_seed(0)
    mid, top = maps(mid=(8, 9, 7), top=(12, 3, 2))         # non-integer scale factors on purpose
    fast = CrossLayerContextAttention(8, 12, top_upsample=upsample, zero_init_output=False)
    literal = CrossLayerContextAttention(8, 12, top_upsample=upsample, zero_init_output=False,
                                         project_top_first=False, efficient_dot_product=False)
    literal.load_state_dict(fast.state_dict())
    torch.testing.assert_close(fast(mid, top), literal(mid, top), rtol=1e-5, atol=1e-5)


# Literal evaluation of eq. 1-3 (section 3.1) and eq. 5-7 (3.1.1): position by position and channel by
# channel, in Python floats, from the module's weights. A 1 x 1 convolution is the paper's matrix W plus
# its bias b, so every "W x" below is "W x + b".
def _affine(conv, vector):
    weight, bias = conv.weight[:, :, 0, 0].tolist(), conv.bias.tolist()
    return [bias[o] + sum(weight[o][c] * vector[c] for c in range(len(vector))) for o in range(len(weight))]


def _dot(u, v):
    return sum(a * b for a, b in zip(u, v))


def _clca_literal(block, mid, top, factor):
    """``\\hat l_i^s`` of eq. 3 for every image and position; ``top`` is upsampled by ``factor``
    (nearest: position (r, c) of the mid map reads (r // factor, c // factor) of the top map)."""
    batch, channels, height, width = mid.shape
    positions = [(r, c) for r in range(height) for c in range(width)]
    n = len(positions)
    out = torch.empty_like(mid)
    for b in range(batch):
        l_s = [mid[b, :, r, c].tolist() for r, c in positions]                             # l_i^s
        if block.use_top:
            l_n = [top[b, :, r // factor, c // factor].tolist() for r, c in positions]     # upsampled l_i^N
            fused = [[x + y for x, y in zip(_affine(block.w_l, l_s[i]), _affine(block.w_g, l_n[i]))]
                     for i in range(n)]                                                    # eq. 1
        else:
            fused = l_s                                                                    # non-local
        if block.relation == "gaussian":
            theta = phi = fused                                                            # eq. 5
        else:
            theta = [_affine(block.theta, v) for v in fused]                               # eq. 6-7
            phi = [_affine(block.phi, v) for v in fused]
        keys = [_affine(block.w_k, v) for v in l_s]                                        # k(l_j)
        for i, (r, c) in enumerate(positions):
            if block.relation == "dot_product":
                f = [_dot(theta[i], phi[j]) for j in range(n)]                            # eq. 7
                normaliser = n
            else:
                f = [math.exp(_dot(theta[i], phi[j])) for j in range(n)]                  # eq. 5-6
                normaliser = sum(f)
            y = [sum(f[j] * keys[j][m] for j in range(n)) / normaliser for m in range(len(keys[0]))]  # eq. 2
            z = _affine(block.w_y, y)                                                      # W_y y
            for channel in range(channels):
                out[b, channel, r, c] = z[channel] + l_s[i][channel]                      # eq. 3
    return out


@pytest.mark.parametrize("relation", RELATIONS)
@pytest.mark.parametrize("factor", (1, 2))
def test_clca_matches_a_literal_evaluation_of_eq_1_to_3(relation, factor):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    mid = 0.5 * torch.randn(2, 6, 4, 4, generator=g, dtype=torch.float64)
    top = 0.5 * torch.randn(2, 5, 4 // factor, 4 // factor, generator=g, dtype=torch.float64)
    for fast in (True, False):
        block = CrossLayerContextAttention(6, 5, inter_channels=3, relation=relation, output_norm=False,
                                           zero_init_output=False, top_upsample="nearest",
                                           project_top_first=fast, efficient_dot_product=fast).double()
        for conv in block.modules():
            if isinstance(conv, torch.nn.Conv2d):
                torch.nn.init.normal_(conv.bias, std=0.3, generator=g)
        torch.testing.assert_close(block(mid, top), _clca_literal(block, mid, top, factor), rtol=1e-9, atol=1e-9)
    plain = CrossLayerContextAttention(6, relation=relation, inter_channels=3, use_top=False, output_norm=False,
                                       zero_init_output=False).double()
    torch.testing.assert_close(plain(mid), _clca_literal(plain, mid, None, factor), rtol=1e-9, atol=1e-9)


def test_clca_rejects_bad_input():
    with pytest.raises(ValueError, match="valid values: gaussian, embedded_gaussian, dot_product"):
        CrossLayerContextAttention(8, 12, relation="cosine")
    with pytest.raises(ValueError, match="top_channels"):
        CrossLayerContextAttention(8, None)
    block = CrossLayerContextAttention(8, 12)
    mid, top = maps()
    with pytest.raises(ValueError, match="12 channels"):
        block(mid, top[:, :5])
    with pytest.raises(ValueError, match="mid-level map"):
        block(top, top)


# ---------------------------------------------------------------- CLSA
@pytest.mark.parametrize("pooling", CLSA_POOLINGS)
def test_clsa_attention_map_pooling_range_and_resolution(pooling):
    torch.manual_seed(0)
    mid, top = maps(mid=(8, 8, 8), top=(12, 4, 4))
    clsa = CrossLayerSpatialAttention(pooling)
    assert clsa.conv.in_channels == (2 if pooling == "avg&max" else 1) and clsa.conv.kernel_size == (3, 3)
    weighted, m_s, m_top = clsa(mid, top)
    assert m_s.shape == (BATCH, 1, 8, 8) and m_top.shape == (BATCH, 1, 4, 4)
    assert ((m_s > 0) & (m_s < 1)).all()                                   # sigmoid
    torch.testing.assert_close(m_top, F.avg_pool2d(m_s, 2))                # R = average pooling
    torch.testing.assert_close(weighted, m_top * top)                      # eq. 9
    # the map depends on the chosen pooling only: a channel permutation leaves it unchanged
    torch.testing.assert_close(clsa.attention_map(mid.flip(1)), m_s)


def _clsa_literal(clsa, mid, top):
    """Eq. 8 (channel pooling, K as a zero-padded 3 x 3 convolution, sigmoid) and eq. 9 (R = the mean of
    each block of mid-level cells under one top-level cell, times L^N), position by position."""
    batch, channels, height, width = mid.shape
    kernel, bias = clsa.conv.weight[0].tolist(), clsa.conv.bias.item()       # K: (planes, 3, 3)
    th, tw = top.shape[-2:]
    fy, fx = height // th, width // tw
    attention = torch.empty(batch, 1, height, width, dtype=mid.dtype)
    weighted = torch.empty_like(top)
    for b in range(batch):
        avg = [[sum(mid[b, ch, r, c].item() for ch in range(channels)) / channels for c in range(width)]
               for r in range(height)]
        mx = [[max(mid[b, ch, r, c].item() for ch in range(channels)) for c in range(width)] for r in range(height)]
        planes = {"avg": [avg], "max": [mx], "avg&max": [avg, mx]}[clsa.pooling]   # [AvgPool; MaxPool]
        for r in range(height):
            for c in range(width):
                total = bias
                for p, plane in enumerate(planes):
                    for dy in range(3):
                        for dx in range(3):
                            rr, cc = r + dy - 1, c + dx - 1
                            if 0 <= rr < height and 0 <= cc < width:
                                total += kernel[p][dy][dx] * plane[rr][cc]
                attention[b, 0, r, c] = 1.0 / (1.0 + math.exp(-total))                    # M^s
        for r in range(th):
            for c in range(tw):
                cells = [attention[b, 0, r * fy + i, c * fx + j].item() for i in range(fy) for j in range(fx)]
                weighted[b, :, r, c] = sum(cells) / len(cells) * top[b, :, r, c]           # R(M^s) L^N
    return weighted, attention


@pytest.mark.parametrize("pooling", CLSA_POOLINGS)
def test_clsa_matches_a_literal_evaluation_of_eq_8_and_9(pooling):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    mid = torch.randn(2, 5, 6, 6, generator=g, dtype=torch.float64)
    top = torch.randn(2, 4, 3, 3, generator=g, dtype=torch.float64)
    clsa = CrossLayerSpatialAttention(pooling).double()
    weighted, m_s, _ = clsa(mid, top)
    expected_weighted, expected_m = _clsa_literal(clsa, mid, top)
    torch.testing.assert_close(m_s, expected_m, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(weighted, expected_weighted, rtol=1e-9, atol=1e-9)


def test_clsa_average_and_max_pooling_are_different_paths():
    """Table 3 compares them: with one and the same kernel, avg and max pooling must give different maps,
    and in avg&max the first kernel plane reads the channel average, the second the channel maximum."""
    g = torch.Generator().manual_seed(3)
    mid = torch.randn(2, 8, 6, 6, generator=g)
    avg, mx, both = (CrossLayerSpatialAttention(p) for p in ("avg", "max", "avg&max"))
    with torch.no_grad():
        kernel = torch.randn(1, 1, 3, 3, generator=g)
        for block in (avg, mx):
            block.conv.weight.copy_(kernel)
            block.conv.bias.fill_(0.1)
        assert not torch.allclose(avg.attention_map(mid), mx.attention_map(mid), atol=1e-3)
        both.conv.bias.fill_(0.1)
        both.conv.weight.copy_(torch.cat([kernel, torch.zeros_like(kernel)], dim=1))
        torch.testing.assert_close(both.attention_map(mid), avg.attention_map(mid))
        both.conv.weight.copy_(torch.cat([torch.zeros_like(kernel), kernel], dim=1))
        torch.testing.assert_close(both.attention_map(mid), mx.attention_map(mid))
    # the pooled planes themselves: channel mean and channel maximum
    expected_avg = torch.sigmoid(F.conv2d(mid.mean(1, keepdim=True), kernel, torch.tensor([0.1]), padding=1))
    expected_max = torch.sigmoid(F.conv2d(mid.amax(1, keepdim=True), kernel, torch.tensor([0.1]), padding=1))
    torch.testing.assert_close(avg.attention_map(mid), expected_avg)
    torch.testing.assert_close(mx.attention_map(mid), expected_max)


def test_clsa_reads_the_clca_refined_mid_map_not_the_raw_one():
    """Eq. 10 / Figure 3: CLSA takes \\hat L^s, the CLCA output (hooks on both modules)."""
    torch.manual_seed(0)
    model = build_clan(slim(), CLASSES, CLANConfig(scales=3, zero_init_output=False)).eval()
    seen = {}
    def keep(key, what):
        return lambda module, inputs, output: seen.__setitem__(key, output if what == "output" else inputs[0])

    hooks = [model.mid_modules[name].register_forward_hook(keep(("clca", name), "output")) for name in ("P", "A")]
    hooks += [model.clsa[name].register_forward_hook(keep(("clsa", name), "input")) for name in ("P", "A")]
    x = images()
    with torch.no_grad():
        out = model(x)
        raw = model.backbone(x, ("conv5_2", "conv4_3"))
    for h in hooks:
        h.remove()
    for name, stage in (("P", "conv5_2"), ("A", "conv4_3")):
        assert seen[("clsa", name)] is seen[("clca", name)]
        assert not torch.allclose(seen[("clsa", name)], raw[stage], atol=1e-4)
        torch.testing.assert_close(out.extras["clsa_attention"][stage],
                                   model.clsa[name].attention_map(seen[("clca", name)]))
    # and by perturbation: changing only the refined map changes CLSA's attention
    original = model.mid_modules["P"].forward
    model.mid_modules["P"].forward = lambda mid, top: original(mid, top) + 5.0 * (torch.arange(mid.shape[-1]) % 2)
    with torch.no_grad():
        moved = model(x).extras["clsa_attention"]["conv5_2"]
    assert not torch.allclose(moved, out.extras["clsa_attention"]["conv5_2"], atol=1e-4)


def test_clsa_other_activations_and_downsampling():
    torch.manual_seed(0)
    mid, top = maps()
    soft = CrossLayerSpatialAttention(activation="softmax")
    _, m_s, m_top = soft(mid, top)
    assert (m_s > 0).all()
    torch.testing.assert_close(m_s.mean(dim=(1, 2, 3)), torch.ones(BATCH))  # mean 1: uniform = no change
    torch.testing.assert_close(m_top.mean(dim=(1, 2, 3)), torch.ones(BATCH))
    _, _, m_bil = CrossLayerSpatialAttention(downsample="bilinear")(mid, top)
    assert m_bil.shape == (BATCH, 1, 4, 4)
    raw = CrossLayerSpatialAttention(activation="none")
    assert (raw.attention_map(mid) < 0).any()                               # unbounded raw map
    same = CrossLayerSpatialAttention()
    _, m_s, m_top = same(mid, mid[:, :8])                                   # same resolution: R = identity
    assert torch.equal(m_s, m_top)
    for kwargs, valid in ((dict(pooling="sum"), "valid values: avg, max, avg&max"),
                          (dict(activation="tanh"), "valid values: sigmoid, softmax, none"),
                          (dict(downsample="nearest"), "valid values: avg, bilinear")):
        with pytest.raises(ValueError, match=valid):
            CrossLayerSpatialAttention(**kwargs)


# ---------------------------------------------------------------- branches and loss
@pytest.mark.parametrize("backbone,scales,names,stages", [
    ("vgg16", 2, ("G", "P", "CLSA"), {"G": "pool5", "P": "conv5_2"}),
    ("vgg16", 3, ("G", "P", "A", "CLSA"), {"G": "pool5", "P": "conv5_2", "A": "conv4_3"}),
    ("resnet50", 2, ("G", "P", "CLSA"), {"G": "conv5_x", "P": "conv4_x"}),
])
def test_branch_names_and_stages(backbone, scales, names, stages):
    torch.manual_seed(0)
    bb = slim(backbone)
    model = build_clan(bb, CLASSES, CLANConfig(scales=scales))
    assert model.branch_names == names
    assert {k: v for k, v in model.branch_stages.items() if v} == stages
    assert model.heads["CLSA"].in_features == bb.out_channels * (scales - 1)  # eq. 11 concatenation
    out = model(images())
    assert set(out.extras["branch_logits"]) == set(names)
    assert all(v.shape == (BATCH, CLASSES) for v in out.extras["branch_logits"].values())
    no_clsa = build_clan(slim(backbone), CLASSES, CLANConfig(scales=scales, use_clsa=False))
    assert no_clsa.branch_names == names[:-1]
    assert "clsa_attention" not in no_clsa(images()).extras


def test_vgg_top_map_is_pool5_at_half_the_resolution_of_conv5_2():
    """Section 4.1 keeps VGG-16 up to its last max-pooling: the top map is conv5_3 max-pooled (2 x 2,
    stride 2), which CLCA upsamples to conv5_2's resolution (section 3.1); G reads its average."""
    torch.manual_seed(0)
    model = build_clan(slim(), CLASSES, CLANConfig(scales=3)).eval()
    x = images()
    with torch.no_grad():
        out = model(x)
        raw = model.backbone(x, ("conv5_3", "conv5_2"))
    top, conv5_3 = out.extras["features"]["pool5"], raw["conv5_3"]
    assert model.top_stage == "pool5" and top.shape[-1] * 2 == raw["conv5_2"].shape[-1]
    for r in range(top.shape[-2]):
        for c in range(top.shape[-1]):
            window = conv5_3[..., 2 * r:2 * r + 2, 2 * c:2 * c + 2]
            torch.testing.assert_close(top[..., r, c], window.amax(dim=(-2, -1)))
    torch.testing.assert_close(out.extras["branch_logits"]["G"], model.heads["G"](top.mean(dim=(2, 3))))
    other = build_clan(slim(), CLASSES, CLANConfig(scales=3, top_stage="conv5_3"))
    assert other.top_stage == "conv5_3" and other.mid_stages == ("conv5_2", "conv4_3")


def test_paper_default_scales_per_backbone():
    assert build_clan(slim("vgg16"), CLASSES).scales == 3      # paper's best VGG-16 model
    assert build_clan(slim("resnet50"), CLASSES).scales == 2   # ResNets: 2 scales only


def test_combine_branches_any_subset():
    g = torch.Generator().manual_seed(0)
    branch = {n: torch.randn(BATCH, CLASSES, generator=g) for n in ("G", "P", "A", "CLSA")}
    for names in (("G",), ("G", "P"), ("P", "CLSA"), ("G", "P", "A", "CLSA")):
        probs = torch.stack([branch[n].softmax(-1) for n in names]).mean(0)
        torch.testing.assert_close(combine_branches(branch, names).softmax(-1), probs)
        torch.testing.assert_close(combine_branches(branch, names).exp(), probs)   # log of the mean
        torch.testing.assert_close(combine_branches(branch, names, mode="logits"),
                                   torch.stack([branch[n] for n in names]).mean(0))
    torch.testing.assert_close(combine_branches(branch), combine_branches(branch, ("G", "P", "A", "CLSA")))
    with pytest.raises(ValueError, match="available: G, P, A, CLSA"):
        combine_branches(branch, ("G", "X"))
    with pytest.raises(ValueError, match="at least one"):
        combine_branches(branch, ())
    with pytest.raises(ValueError, match="valid values: prob, logits"):
        combine_branches(branch, ("G",), mode="vote")


@pytest.mark.parametrize("combine", ("prob", "logits"))
def test_final_prediction_is_the_combination_of_all_branches(combine):
    torch.manual_seed(0)
    model = build_clan(slim(), CLASSES, CLANConfig(scales=3, combine=combine)).eval()
    with torch.no_grad():
        out = model(images())
    assert isinstance(out, ModelOutput)
    torch.testing.assert_close(out.logits, combine_branches(out.extras["branch_logits"], mode=combine))
    torch.testing.assert_close(out.branch("A"), out.extras["branch_logits"]["A"])


def test_loss_has_one_cross_entropy_per_branch_and_sums():
    torch.manual_seed(0)
    model = build_clan(slim(), CLASSES, CLANConfig(scales=3))
    targets = torch.tensor([1, 3])
    out = model(images())
    terms = clan_loss(out, targets)
    assert set(terms) == {"ce_G", "ce_P", "ce_A", "ce_CLSA"}
    for name, logits in out.extras["branch_logits"].items():
        torch.testing.assert_close(terms[f"ce_{name}"], F.cross_entropy(logits, targets))
    total = sum(terms.values())
    torch.testing.assert_close(total, sum(F.cross_entropy(v, targets) for v in out.extras["branch_logits"].values()))
    assert total.item() > 4 * 0.5 * math.log(CLASSES)  # four untrained heads: each CE near log(5)
    with pytest.raises(ValueError, match="branch_logits"):
        clan_loss(ModelOutput(out.logits, {}), targets)


# ---------------------------------------------------------------- full model
@pytest.mark.parametrize("backbone,overrides", [
    ("vgg16", dict(scales=2)),
    ("vgg16", dict(scales=3)),
    ("vgg16", dict(scales=3, relation="gaussian", output_norm=True)),
    ("vgg16", dict(scales=3, relation="embedded_gaussian", clsa_pooling="max")),
    ("vgg16", dict(scales=3, mid_module="nonlocal", clsa_pooling="avg")),
    ("vgg16", dict(scales=3, mid_module="gap")),
    ("resnet50", dict(scales=2)),
])
def test_full_model_forward_backward_without_nan(backbone, overrides):
    torch.manual_seed(0)
    model = build_clan(slim(backbone), CLASSES, CLANConfig(**overrides)).train()
    out = model(images())
    loss = sum(clan_loss(out, torch.tensor([0, 4])).values())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(out.logits).all()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    for name, head in model.heads.items():
        assert head.weight.grad.abs().sum() > 0, name
    features = out.extras["features"]
    assert list(features) == [model.top_stage, *model.mid_stages]
    for stage in model.mid_stages:
        assert out.extras["clsa_attention"][stage].shape[-2:] == features[stage].shape[-2:]
        assert out.extras["clsa_attention_top"][stage].shape[-2:] == features[model.top_stage].shape[-2:]


def test_default_dot_product_clca_trains_stably_at_the_papers_learning_rate():
    """Without the BatchNorm after W_y this diverged to NaN within ~10 steps (see CLANConfig)."""
    torch.manual_seed(0)
    model = build_clan(slim("resnet50"), 4, CLANConfig())
    x, y = images(size=48).repeat(2, 1, 1, 1), torch.tensor([0, 1, 2, 3])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    losses = []
    for _ in range(16):
        loss = sum(clan_loss(model(x), y).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def test_gap_variant_uses_the_raw_mid_maps_and_clca_starts_as_identity():
    torch.manual_seed(0)
    bb = slim()
    x = images()
    raw = bb(x, ("conv5_2", "conv4_3", "pool5"))
    for module in ("gap", "clca", "nonlocal"):  # zero-initialised W_y: the refined map is the raw map
        model = build_clan(bb, CLASSES, CLANConfig(scales=3, mid_module=module)).eval()
        with torch.no_grad():
            feats = model(x).extras["features"]
        for stage in ("pool5", "conv5_2", "conv4_3"):
            torch.testing.assert_close(feats[stage], raw[stage])


def test_cam_target_layers_produce_the_feature_maps():
    torch.manual_seed(0)
    model = build_clan(slim(), CLASSES, CLANConfig(scales=3, zero_init_output=False)).eval()
    layers = model.cam_target_layers()
    assert layers[0] is model.backbone.stage_module("pool5")
    assert layers[1:] == [model.mid_modules["P"], model.mid_modules["A"]]
    captured = []
    hooks = [layer.register_forward_hook(lambda m, i, o: captured.append(o)) for layer in layers]
    with torch.no_grad():
        out = model(images())
    for h in hooks:
        h.remove()
    feats = out.extras["features"]
    for tensor, stage in zip(captured, ("pool5", "conv5_2", "conv4_3")):
        torch.testing.assert_close(tensor, feats[stage])


def test_invalid_configurations_raise_clear_errors():
    bb = slim()
    cases = [
        (dict(relation="cosine"), "relation metric 'cosine'.*dot_product"),
        (dict(clsa_pooling="sum"), "CLSA pooling 'sum'.*avg&max"),
        (dict(mid_module="se"), "mid_module 'se'.*clca, nonlocal, gap"),
        (dict(combine="vote"), "valid values: prob, logits"),
        (dict(scales=1), "scales"),
        (dict(scales=4), "scales 2, 3"),
        (dict(clsa_kernel_size=4), "odd"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            build_clan(bb, CLASSES, CLANConfig(**overrides))
    with pytest.raises(ValueError, match="resnet50 is defined for scales 2 .*got scales=3"):
        build_clan(slim("resnet50"), CLASSES, CLANConfig(scales=3))
    with pytest.raises(ValueError, match="num_classes"):
        build_clan(bb, 1)
    with pytest.raises(ValueError, match="differ from the top stage 'pool5'"):
        build_clan(bb, CLASSES, CLANConfig(mid_stages=("pool5",)))
    with pytest.raises(ValueError, match="comes after the top stage"):
        build_clan(bb, CLASSES, CLANConfig(top_stage="conv5_3", mid_stages=("pool5",)))
    with pytest.raises(ValueError, match="has no stage 'conv9_9'"):
        build_clan(bb, CLASSES, CLANConfig(top_stage="conv9_9"))
    with pytest.raises(ValueError, match="has no stage 'conv9_9'"):
        build_clan(bb, CLASSES, CLANConfig(mid_stages=("conv9_9",)))
    with pytest.raises(ValueError, match="disagrees"):
        build_clan(bb, CLASSES, CLANConfig(scales=2, mid_stages=("conv5_2", "conv4_3")))
    bb.name = "custom_net"
    with pytest.raises(ValueError, match="no CLAN stage table for backbone 'custom_net'"):
        build_clan(bb, CLASSES)
    # an explicit list of mid stages works on any backbone, e.g. 3 scales on a ResNet
    model = build_clan(slim("resnet50"), CLASSES, CLANConfig(mid_stages=("conv4_x", "conv3_x")))
    assert model.branch_names == ("G", "P", "A", "CLSA") and model.scales == 3
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.zeros(3, SIZE, SIZE))


def test_training_recipe_of_section_4_1():
    cfg = CLANConfig()
    assert (cfg.image_size, cfg.batch_size, cfg.epochs, cfg.lr, cfg.momentum, cfg.weight_decay) == \
        (448, 36, 120, 0.01, 0.9, 1e-4)
    assert cfg.lr_schedule("vgg16") == (30, 0.1) and cfg.lr_schedule("resnet101") == (2, 0.9)
    train = paper.train_config(cfg, "vgg16")
    assert (train.epochs, train.step_size, train.gamma, train.scheduler, train.optimizer) == (120, 30, 0.1, "step", "sgd")
    short = paper.train_config(cfg, "vgg16", epochs=12, max_batches=3)
    assert (short.epochs, short.step_size, short.max_batches) == (12, 3, 3)
    with pytest.raises(ValueError, match="VGG-16 and ResNets"):
        cfg.lr_schedule("densenet161")
    assert set(CLAN_STAGES) >= {"vgg16", "resnet50", "resnet101"}


# ---------------------------------------------------------------- Table 5 (full width, meta device)
def _full_width(kind, scales=None, **overrides):
    with torch.device("meta"):
        backbone = build_backbone("vgg16")
        if kind == "baseline":
            return BaselineNet(backbone, paper.TABLE5_NUM_CLASSES, stage="pool5")
        return build_clan(backbone, paper.TABLE5_NUM_CLASSES, CLANConfig(scales=scales, **overrides))


def _macs_by_op(model):
    x = torch.zeros(1, 3, paper.TABLE5_IMAGE_SIZE, paper.TABLE5_IMAGE_SIZE, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return {str(op): flops // 2 for op, flops in counter.get_flop_counts()["Global"].items()}


# Our counts (fgvc_lib.complexity: every parameter; MACs = FlopCounterMode flops / 2, attention
# products included) with the default config (pool5 top map). Exact integers: any architecture change
# shows here.
OURS = {"VGG-16": (14_817_288, 61_386_625_024),
        "2-scale CLAN": (16_074_411, 62_157_547_296),
        "3-scale CLAN": (17_331_334, 65_086_481_312)}


def test_table5_complexity_at_full_width():
    models = {"VGG-16": _full_width("baseline"), "2-scale CLAN": _full_width("clan", 2),
              "3-scale CLAN": _full_width("clan", 3)}
    for row, model in models.items():
        stats = model_complexity(model, paper.TABLE5_IMAGE_SIZE)
        assert (stats["params"], stats["macs"]) == OURS[row], (row, stats)
        params_paper = paper.STUDY.printed["table5"][row]["params_m"] * 1e6
        macs_paper = paper.STUDY.printed["table5"][row]["macs_g"] * 1e9
        assert abs(stats["params"] / params_paper - 1) < 0.02, row
        assert abs(stats["macs"] / macs_paper - 1) < 0.02, row
    # The CLAN rows' increments match the added modules: 2 CLCA blocks at C_s = C_g = 512, C_int = 256
    clca = 2 * 512 * 512 + 4 * 512 * 256 + 2 * 512 + 3 * 256 + 512  # W_l, W_g, theta, phi, k, y (+bias)
    clca += 2 * 512                                                  # BatchNorm after W_y
    assert OURS["2-scale CLAN"][0] - OURS["VGG-16"][0] == clca + 2 * (512 * 200 + 200) + 2 * 9 + 1
    assert OURS["3-scale CLAN"][0] - OURS["2-scale CLAN"][0] == clca + (512 * 200 + 200) + 512 * 200 + 2 * 9 + 1


def test_table5_increments_fit_pool5_without_the_attention_products():
    """The multiply-adds CLAN adds to VGG-16, counted here operator by operator at 448 px. With pool5 as
    the top map (14 x 14, upsampled to conv5_2's 28 x 28 and conv4_3's 56 x 56) and the bmm products
    left out they are the paper's (Table 5: 62.30 - 61.63 and 64.83 - 61.63); with conv5_3 they are not.
    Forming eq. 2's n x n relation matrix literally would add n^2 products at conv4_3 (n = 56 x 56)."""
    base = _macs_by_op(_full_width("baseline"))
    table5 = paper.STUDY.printed["table5"]
    printed = {s: table5[f"{s}-scale CLAN"]["macs_g"] - table5["VGG-16"]["macs_g"] for s in (2, 3)}
    assert (round(printed[2], 2), round(printed[3], 2)) == (0.67, 3.2)
    c_int, n5, n4, n_top = 256, 28 * 28, 56 * 56, 14 * 14
    for scales in (2, 3):
        for top, close in (("pool5", True), ("conv5_3", False)):
            ours = _macs_by_op(_full_width("clan", scales, top_stage=top))
            added = sum(ours.values()) - sum(base.values()) - ours["aten.bmm"]
            assert (abs(added / 1e9 - printed[scales]) < 0.02) == close, (scales, top, added)
            mids = (n5, n4)[:scales - 1]
            assert ours["aten.bmm"] == sum(2 * n * c_int * c_int for n in mids)    # theta (phi^T k), then / n
    pool5 = _macs_by_op(_full_width("clan", 3))
    literal = _macs_by_op(_full_width("clan", 3, project_top_first=False, efficient_dot_product=False))
    assert literal["aten.bmm"] == 2 * (n4 * n4 * c_int) + 2 * (n5 * n5 * c_int)   # (theta phi^T) k at both mids
    # W_g once per mid map: at the top's 14 x 14 before upsampling, or at each mid resolution after it
    assert literal["aten.convolution"] - pool5["aten.convolution"] == (n5 + n4 - 2 * n_top) * 512 * 512
    assert sum(literal.values()) / (table5["3-scale CLAN"]["macs_g"] * 1e9) - 1 > 0.08


# ---------------------------------------------------------------- paper numbers
# The six tables as printed in the paper (arXiv 2210.08784), typed here from its text: columns split on
# " | ", "-" where the paper prints none. Table 6 also keeps the "1-stage" and "Sep. Init." marks.
PRINTED = {
    "table1": """
        Gaussian          | 84.6 | 84.5
        Embedded Gaussian | 85.1 | 85.7
        Dot Product       | 85.2 | 85.8""",
    "table2": """
        GAP       | 78.7 | 90.4 | 86.3
        Non-local | 84.8 | 92.5 | 89.5
        CLCA      | 85.8 | 92.9 | 90.6""",
    "table3": """
        CLCA + CLSA(Avg)     | 85.3 | 85.6
        CLCA + CLSA(Max)     | 85.7 | 86.0
        CLCA + CLSA(Avg&Max) | 86.0 | 86.8""",
    "table4": """
        G-Branch         | 84.1 | 91.5 | 90.1
        P-Branch         | 85.2 | 91.8 | 90.3
        A-Branch         | 83.1 | 88.7 | 88.1
        CLSA-Branch      | 85.8 | 92.6 | 90.4
        G + P            | 85.3 | 92.1 | 90.6
        G + P + A        | 85.8 | 92.9 | 90.6
        G + P + A + CLSA | 86.8 | 93.1 | 91.0""",
    "table5": """
        VGG-16       | 15.03 | 61.63
        2-scale CLAN | 16.08 | 62.30
        3-scale CLAN | 17.34 | 64.83""",
    "table6": """
        VGG-16        | VGG-16     | yes | no  | 79.1 | 87.0 | 85.1
        ResNet-50     | ResNet-50  | yes | no  | 86.0 | 92.0 | 89.9
        ResNet-101    | ResNet-101 | yes | no  | 86.4 | 92.5 | 90.5
        B-CNN         | VGG-16     | yes | no  | 84.1 | 91.3 | 84.1
        CBP           | VGG-16     | yes | no  | 84.0 | -    | -
        LRBP          | VGG-16     | yes | no  | 84.2 | 90.9 | 87.3
        DBT-Net       | ResNet-50  | yes | no  | 87.5 | 94.1 | 91.2
        DBT-Net       | ResNet-101 | yes | no  | 88.1 | 94.5 | 91.6
        RA-CNN        | VGG-19     | no  | yes | 85.3 | 92.5 | 88.2
        MA-CNN        | VGG-19     | no  | no  | 86.5 | 92.8 | 89.9
        MAMC          | ResNet-50  | yes | no  | 86.2 | 92.8 | -
        MAMC          | ResNet-101 | yes | no  | 86.5 | 93.0 | -
        DFB-CNN       | ResNet-50  | yes | yes | 87.4 | 93.8 | 92.0
        TASN          | ResNet-50  | yes | no  | 87.9 | 93.8 | -
        CLAN(2-scale) | VGG-16     | yes | no  | 85.9 | 92.9 | 90.3
        CLAN(3-scale) | VGG-16     | yes | no  | 86.8 | 93.1 | 91.0
        CLAN(2-scale) | ResNet-50  | yes | no  | 88.1 | 94.2 | 93.2
        CLAN(2-scale) | ResNet-101 | yes | no  | 88.7 | 94.5 | 93.3""",
}
PRINTED_COLUMNS = {"table1": ("2-scale", "3-scale"), "table3": ("2-scale", "3-scale"),
                   "table5": ("params_m", "macs_g")}


def _printed(table):
    """``{row: {column: value}}`` of a PRINTED table (Table 6 rows as "<method> (<base model>)", a "-" absent),
    and Table 6's marks ``{row: (one-stage, separate initialisation)}``."""
    out, marks = {}, {}
    for line in PRINTED[table].strip().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if table == "table6":
            method, base, one_stage, sep_init, *values = cells
            row = f"{method} ({base})"
            marks[row] = (one_stage == "yes", sep_init == "yes")
        else:
            row, *values = cells
        columns = PRINTED_COLUMNS.get(table, ("cub", "cars", "aircraft"))
        out[row] = {c: float(v) for c, v in zip(columns, values, strict=True) if v != "-"}
    return out, marks


@pytest.mark.parametrize("table", sorted(PRINTED))
def test_every_printed_cell_is_the_papers(table):
    printed, marks = _printed(table)
    declared = paper.STUDY.printed[table]
    assert declared == printed                      # every row, column and value, in any order
    assert list(declared) == list(printed)          # and in the paper's row order
    for row, values in printed.items():
        for column, value in values.items():
            assert paper.STUDY.printed_value(Printed(table, row, column), "cub") == value
    if table == "table6":
        assert paper.TABLE6_MARKS == marks


def test_paper_tables_as_printed():
    value = paper.STUDY.printed_value
    assert value(Printed("table1", "Dot Product", "3-scale"), "cub") == 85.8
    assert value(Printed("table2", "CLCA", "aircraft"), "cub") == 90.6
    assert value(Printed("table3", "CLCA + CLSA(Avg&Max)", "2-scale"), "cub") == 86.0
    assert value(Printed("table4", "G + P + A + CLSA", "cars"), "cub") == 93.1
    assert value(Printed("table5", "3-scale CLAN", "macs_g"), "cub") == 64.83
    assert value(Printed("table6", "CLAN(2-scale) (ResNet-101)", "aircraft"), "cub") == 93.3
    assert value(Printed("table6", "CBP (VGG-16)", "cars"), "cub") is None
    # without a column, the one printed for the run's dataset: the synthetic birds read CUB's, Dogs none
    assert [value(Printed("table2", "CLCA"), d) for d in ("cub", "cars", "aircraft", "synthetic", "dogs")] == [
        85.8, 92.9, 90.6, 85.8, None]
    assert len(paper.STUDY.printed["table6"]) == len(paper.TABLE6_MARKS) == 18
    # Tables 2 and 4 agree on the CLCA / G + P + A entries (our reading of Tables 1-2)
    assert paper.STUDY.printed["table2"]["CLCA"] == paper.STUDY.printed["table4"]["G + P + A"]
    with pytest.raises(KeyError, match="its rows"):
        value(Printed("table4", "H-Branch"), "cub")
    tables = {t: paper.STUDY.printed_table(t) for t in paper.STUDY.printed}
    assert {t: int(df.notna().sum().sum()) for t, df in tables.items()} == {
        "table1": 6, "table2": 9, "table3": 6, "table4": 21, "table5": 6, "table6": 18 * 3 - 5}
    assert tables["table6"].loc["CBP (VGG-16)"].isna().tolist() == [False, True, True]


def _printed_effects(settings, dataset):
    """``{claim id: [the paper's effect of each study claim]}`` as the runner computes it on ``dataset``."""
    found = paper.measured_claims(_on(settings, dataset))
    return {cid: [paper.STUDY.paper_effect(c, dataset) for c in entry]
            for cid, entry in found.items() if not isinstance(entry, str)}


def test_claims_effects_are_computed_from_the_tables():
    """The claims name printed cells; the runner computes the paper's effect in the run's dataset's column."""
    settings = resolve(paper.STUDY, {"profile": "cpu"})
    effects = {d: _printed_effects(settings, d) for d in ("cub", "cars", "aircraft", "synthetic", "dogs")}
    assert [effects[d]["clca_beats_nonlocal"] for d in ("cub", "cars", "aircraft")] == [[1.0], [0.4], [1.1]]
    assert [effects[d]["clca_beats_gap"] for d in ("cub", "cars", "aircraft")] == [[7.1], [2.5], [4.3]]
    assert effects["cub"]["gaussian_worst"] == [round((0.6 + 1.3 + 0.5 + 1.2) / 4, 6)]   # the mean of 4 gaps
    assert effects["cars"]["gaussian_worst"] == [None]              # Tables 1 and 3 print CUB-200-2011 only
    assert {cid: effects["synthetic"][cid] for cid in effects["cub"]} == effects["cub"]   # the birds read CUB's
    assert {cid for cid, e in effects["dogs"].items() if e != [None] * len(e)} == {
        "two_scales_cost_more", "three_scales_cost_more"}          # Dogs: no column; Table 5 names its own
    # every measured claim holds in the paper's own tables, a second mid-level branch on Aircraft aside (0.0)
    for dataset in ("cub", "cars", "aircraft"):
        for cid, values in effects[dataset].items():
            for effect in values:
                if effect is None:
                    continue
                if cid == "dot_similar_embedded":
                    assert abs(effect) <= 0.5
                elif (cid, dataset) == ("second_mid_branch_helps", "aircraft"):
                    assert effect == 0.0
                else:
                    assert effect > 0, (cid, dataset, effect)
    # of the claims not measured, CLAN and DBT-Net (ResNet-101) tie on Cars in the paper's Table 6, as its reason says
    table6 = paper.STUDY.printed["table6"]
    assert table6["CLAN(2-scale) (ResNet-101)"]["cars"] == table6["DBT-Net (ResNet-101)"]["cars"]
    assert "tie" in paper.UNMEASURED["resnet101_beats_dbtnet"]


@pytest.mark.usefixtures("private_dirs")
def test_cells_are_beside_every_reproduced_printed_number_and_models_have_their_branches():
    """Over the backbones and the paper's datasets the cells show every number of Tables 1-4 and Table 6's
    baseline and CLAN rows; every model a cell reads builds and has the branches the cell combines."""
    shown = set()
    for backbone in paper.BACKBONES:
        settings = _study(backbone=backbone).settings
        for dataset in ("cub", "cars", "aircraft"):
            for cell in paper.cells(_on(settings, dataset)):
                if paper.STUDY.cell_number(cell, dataset) is not None:
                    p = cell.printed
                    shown.add((p.table, p.row, p.column or paper.STUDY.column(dataset)))
    reproduced = {"VGG-16 (VGG-16)", "ResNet-50 (ResNet-50)", "ResNet-101 (ResNet-101)", "CLAN(2-scale) (VGG-16)",
                  "CLAN(3-scale) (VGG-16)", "CLAN(2-scale) (ResNet-50)", "CLAN(2-scale) (ResNet-101)"}
    assert shown == {(t, r, c) for t, rows in paper.STUDY.printed.items() for r, columns in rows.items()
                     for c in columns if t in ("table1", "table2", "table3", "table4") or r in reproduced}
    study = _study()
    for key, variant in study.variants.items():
        if "config" not in getattr(variant.model, "keywords", {}):
            continue
        with torch.device("meta"):
            model = variant.model(build_backbone("vgg16", width=WIDTH), CLASSES)
        for cell in study.cells:
            if cell.measure.variant == key and cell.measure.branches:
                assert set(cell.measure.branches) <= set(model.branch_names), (key, cell)
    # the paper's 3-scale CLAN is one model shared by Tables 1-4 and 6 (the cpu profile's Tables 1-3 read a copy)
    assert _study("smoke").plan_table().loc["clan_vgg16_3s", "tables"] == "table1, table2, table3, table4, table6"


# ---------------------------------------------------------------- notebook 03's study (clan.STUDY on fgvc_lib.study)
N_TEST = 20


def _study(profile="cpu", **params):
    return Study(paper.STUDY, profile=profile, **params)


def _tier(study, key):
    return dict(study.variants[key].details)["tier"]


def _config(study, key):
    return study.variants[key].model.keywords["config"]


def _run_folder(study, key):
    """The run key (folder name) of ``key``, as the runner computes it; no training."""
    return next(Path(job.run_dir).parent.name for _, job in study.jobs() if job.variant.name == key)


@pytest.mark.usefixtures("private_dirs")
def test_study_plans_main_models_for_every_seed_and_ablations_for_the_first():
    study = _study()
    settings = study.settings
    # the baseline, the paper's CLAN at 2 and 3 scales, and a model for every other row of Tables 1-3
    vgg = {"vgg16_baseline", "clan_vgg16_2s", "clan_vgg16_3s", "clan_vgg16_2s_gaussian", "clan_vgg16_3s_gaussian",
           "clan_vgg16_2s_embedded_gaussian", "clan_vgg16_3s_embedded_gaussian", "clan_vgg16_3s_gap",
           "clan_vgg16_3s_nonlocal", "clan_vgg16_2s_clsa_avg", "clan_vgg16_3s_clsa_avg", "clan_vgg16_2s_clsa_max",
           "clan_vgg16_3s_clsa_max"}
    # cpu: ablations for the first 3 seeds and a quarter of the epochs, the reference CLANs retrained at that length
    epochs, short = settings.epochs, settings.ablation_epochs
    assert short == max(1, round(epochs / 4)) and short < epochs
    copy = f"clan_vgg16_3s_e{short}"
    assert len(vgg) == 13 and set(study.variants) == vgg | {f"clan_vgg16_2s_e{short}", copy}
    main = [k for k in study.variants if _tier(study, k) == "main"]
    assert main == ["vgg16_baseline", "clan_vgg16_2s", "clan_vgg16_3s"]
    assert list(study.variants)[:3] == main                                   # trained first
    seeds = list(get_profile("cpu").seeds)
    assert len(seeds) >= 5 and settings.seeds == seeds and settings.ablation_seeds == seeds[:3]
    assert study.variants["clan_vgg16_3s"].seeds == tuple(seeds)
    assert study.variants["clan_vgg16_3s_gap"].seeds == (0, 1, 2)
    assert study.variants["clan_vgg16_3s"].train.epochs == epochs and study.variants[copy].train.epochs == short
    assert paper.ablation_key(settings, "clan_vgg16_3s") == copy
    assert paper.ablation_key(settings, "clan_vgg16_3s_gap") == "clan_vgg16_3s_gap"
    assert study.variants["clan_vgg16_3s_gap"].train.epochs == short
    assert _config(study, copy) == _config(study, "clan_vgg16_3s")           # same model, shorter recipe
    assert _study(ablation_epochs=3).settings.ablation_epochs == 3
    same_length = _study(ablation_epochs=epochs)
    assert len(same_length.variants) == 13
    assert paper.ablation_key(same_length.settings, "clan_vgg16_3s") == "clan_vgg16_3s"
    assert settings.scales == 3 and paper.main_key(settings) == "clan_vgg16_3s"
    assert paper.STUDY.skipped(settings) == {} and study.tables == ["table1", "table2", "table3", "table4", "table6"]
    assert _study(ablation_seeds=2).settings.ablation_seeds == seeds[:2]
    smoke = _study("smoke")
    assert smoke.settings.ablation_seeds == [0] and smoke.settings.ablation_epochs == 1 and len(smoke.variants) == 13
    # the paper's recipe (section 4.1), rescaled to the profile's epochs, for every model
    train = study.variants["vgg16_baseline"].train
    assert (train.lr, train.momentum, train.weight_decay, train.gamma, train.epochs) == (0.01, 0.9, 1e-4, 0.1, epochs)
    paper_run = _study("paper", dataset="synthetic")                          # the paper's recipe, section 4.1
    ps = paper_run.settings
    assert (ps.epochs, ps.batch_size, ps.image_size) == (120, 36, 448)
    assert ps.ablation_seeds == ps.seeds and ps.ablation_epochs == 120
    recipe = paper_run.variants["clan_vgg16_3s"].train
    assert (recipe.epochs, recipe.step_size, recipe.gamma) == (120, 30, 0.1)
    recipe = _study("paper", dataset="synthetic", backbone="resnet50").variants["clan_resnet50_2s"].train
    assert (recipe.step_size, recipe.gamma) == (2, 0.9)                       # ResNet: x0.9 every 2 epochs
    # another relation metric changes the main CLAN models; Tables 1-3 keep the paper's models
    gaussian = _study(relation="gaussian", scales=2)
    gs = gaussian.settings
    assert paper.main_key(gs) == "clan_vgg16_2s_gaussian"
    assert _tier(gaussian, "clan_vgg16_2s_gaussian") == "main" and _tier(gaussian, "clan_vgg16_2s") == "ablation"
    assert paper.ablation_key(gs, "clan_vgg16_2s_gaussian") == f"clan_vgg16_2s_gaussian_e{short}"
    assert f"clan_vgg16_2s_e{short}" not in gaussian.variants            # the dot-product CLAN is an ablation here
    assert _config(gaussian, "clan_vgg16_3s_gaussian").relation == "gaussian"
    # run keys (folder names) separate every model, even beyond the name, and change with the profile
    folders = {key: _run_folder(study, key) for key in study.variants}
    assert all(folder.startswith(key + "-") for key, folder in folders.items())
    assert len({folder.rsplit("-", 1)[1] for folder in folders.values()}) == 15
    assert _run_folder(smoke, "clan_vgg16_3s") != folders["clan_vgg16_3s"]
    table = study.plan_table()
    assert table.loc["clan_vgg16_3s", "tables"] == "table4, table6"
    assert table.loc[copy, "tables"] == "table1, table2, table3" and table.loc[copy, "epochs"] == short
    assert table.loc["clan_vgg16_3s_nonlocal", "mid_module"] == "nonlocal"
    assert table.loc["clan_vgg16_3s_clsa_max", "clsa"] == "max" and table.loc["clan_vgg16_3s", "tier"] == "main"


@pytest.mark.usefixtures("private_dirs")
def test_study_on_a_resnet_skips_the_vgg_ablations(capsys):
    study = _study(backbone="resnet101")
    settings = study.settings
    assert list(study.variants) == ["resnet101_baseline", "clan_resnet101_2s"] and settings.scales == 2
    assert set(paper.STUDY.skipped(settings)) == {"table1", "table2", "table3"}
    assert study.tables == ["table4", "table6"]
    assert study.report("table1") is None                           # says why, needs no run
    assert "table1 not rebuilt: a VGG-16 ablation" in capsys.readouterr().out
    assert paper.figure_stages(settings) == ("conv5_x", "conv4_x")
    assert list(paper.figure_models(settings)) == ["baseline", "CLAN"]
    assert list(paper.table6_rows(settings)) == ["ResNet-101 (ResNet-101)", "CLAN(2-scale) (ResNet-101)"]
    eg = _study(backbone="resnet50", relation="embedded_gaussian")
    assert _config(eg, "clan_resnet50_2s_embedded_gaussian").relation == "embedded_gaussian"


@pytest.mark.parametrize("params,message", [
    (dict(backbone="resnet50", scales=3), "parameter scales: scales=3 is not defined on resnet50"),
    (dict(relation="cosine"), "parameter relation: unknown relation metric 'cosine'.*dot_product"),
    (dict(scales=4), "parameter scales: must be 2, 3 or 0"),
    (dict(scales="3"), "parameter scales: must be 2, 3 or 0"),
    (dict(backbone="vgg19"), "parameter backbone: unknown backbone 'vgg19'; valid here: vgg16, resnet50, resnet101"),
    (dict(ablation_seeds=-1), "parameter ablation_seeds: must be an integer >= 0"),
    (dict(ablation_epochs=1.5), "parameter ablation_epochs: must be an integer >= 0"),
    (dict(output_stride=12), r"parameter output_stride: must be 0 \(the profile's\) or one of 8, 16, 32; got 12"),
    (dict(output_stride=-8), "parameter output_stride: must be an integer >= 0"),
    (dict(backbone="resnet50", output_stride=8), "parameter output_stride: 8 needs a VGG backbone; resnet50"),
    (dict(mid_module="gap"), r"unknown parameter\(s\) mid_module; valid: profile, .*, scales, relation"),
])
def test_study_rejects_invalid_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        resolve(paper.STUDY, {"profile": "cpu", **params})
    with pytest.raises(ValueError, match=message):
        _study(**params)


def _logits(correct: int, confident: bool = True, offset: int = 0):
    """(N_TEST, CLASSES) logits right on ``correct`` images (starting at ``offset``), wrong elsewhere."""
    targets = torch.arange(N_TEST) % CLASSES
    wrong = (targets + 1) % CLASSES
    right = torch.zeros(N_TEST, dtype=torch.bool)
    right[offset:offset + correct] = True
    predicted = torch.where(right, targets, wrong)
    return F.one_hot(predicted, CLASSES).float() * (4.0 if confident else 1.0)


def _branches(variant):
    config = getattr(variant.model, "keywords", {}).get("config")
    if config is None:
        return ()                                          # the baseline has no branch
    return ("G", "P", "A", "CLSA") if config.scales == 3 else ("G", "P", "CLSA")


def _fake_runs(study, correct):
    """Fill ``study.runs`` without training: every branch of every run is right on ``correct[key]``
    test images (default 10 of N_TEST), one more for seed 1 than for seed 0."""
    dataset = study.datasets[0]
    # the claims' resolution (two test images) reads the test split's length: a stand-in of N_TEST
    study._data[dataset] = DataBundle(dataset, list(range(4 * N_TEST)), list(range(N_TEST)), None, None)
    study.runs = {dataset: {}}
    for key, variant in study.variants.items():
        runs = []
        for seed in variant.seeds:
            n = correct.get(key, 10) + seed
            run = Run(study, dataset, variant, RunRecord(key, seed, f"/no/run/{key}/seed{seed}", 100.0 * n / N_TEST,
                                                         1.0, variant.train.epochs, loaded=True))
            outputs = {b: _logits(n) for b in _branches(variant)}
            outputs.update(final=_logits(n), targets=torch.arange(N_TEST) % CLASSES)
            run.__dict__["outputs"] = outputs              # what Run.outputs would load from outputs.pt
            runs.append(run)
        study.runs[dataset][key] = runs
    return study


@pytest.mark.usefixtures("private_dirs")
def test_tables_from_stored_logits_with_the_papers_numbers_beside():
    study = _fake_runs(_study(ablation_epochs=2),
                       {"clan_vgg16_3s": 16, "clan_vgg16_2s": 12, "vgg16_baseline": 8, "clan_vgg16_3s_e2": 15,
                        "clan_vgg16_2s_gaussian": 9, "clan_vgg16_3s_gaussian": 9})
    t1 = study.table("table1")
    assert list(t1.columns) == RESULT_COLUMNS and len(t1) == 6
    row = t1.set_index("row").loc["Dot Product [3-scale]"]
    # the 2-epoch copy, the 3 ablation seeds: 15, 16 and 17 of 20 test images right
    assert (row["paper"], row["reproduced"], row["n_seeds"]) == (85.8, pytest.approx(80.0), 3)
    assert t1.set_index("row").loc["Gaussian [2-scale]", "reproduced"] == pytest.approx(50.0)
    assert set(t1["dataset"]) == {"synthetic"} and set(t1["profile"]) == {"cpu"} and set(t1["backbone"]) == {"vgg16"}
    t2 = study.table("table2")
    assert list(t2["row"]) == ["GAP", "Non-local", "CLCA"]
    assert t2["paper"].tolist() == [78.7, 84.8, 85.8]                                # synthetic -> CUB column
    assert len(study.table("table3")) == 6
    t6 = study.table("table6").set_index("row")
    seeds = study.settings.seeds                                                     # 16 + seed right of N_TEST
    assert t6.loc["CLAN(3-scale) (VGG-16)", "reproduced"] == pytest.approx(np.mean([100 * (16 + s) / N_TEST
                                                                                    for s in seeds]))
    assert t6.loc["VGG-16 (VGG-16)", "n_seeds"] == len(seeds) and t6.loc["VGG-16 (VGG-16)", "paper"] == 79.1
    view = study.report("table6")                                                    # written, paper beside ours
    assert (study.results_dir / "table6.csv").is_file() and not view["comparable"].any()

    # Table 4 combines the branches of one stored model: G is confidently right on the first half and
    # weakly wrong on the second, P the other way round -> each branch 50 %, G + P right everywhere.
    targets = torch.arange(N_TEST) % CLASSES
    first = (torch.arange(N_TEST) < N_TEST // 2).unsqueeze(1)
    right, wrong = F.one_hot(targets, CLASSES).float(), F.one_hot((targets + 1) % CLASSES, CLASSES).float()
    g, p = torch.where(first, 4 * right, wrong), torch.where(first, wrong, 4 * right)
    for run in study.runs_of("clan_vgg16_3s"):
        run.outputs.update(G=g, P=p, A=wrong, CLSA=g)
    t4 = study.table("table4").set_index("row")
    assert t4.loc["G-Branch", "reproduced"] == 50.0 and t4.loc["P-Branch", "reproduced"] == 50.0
    assert t4.loc["A-Branch", "reproduced"] == 0.0 and t4.loc["G + P", "reproduced"] == 100.0
    assert t4.loc["G + P", "reproduced"] == study.runs_of("clan_vgg16_3s")[0].accuracy(("G", "P"))
    assert t4.loc["G + P", "n_seeds"] == len(seeds)
    assert t4.loc["G + P + A + CLSA", "paper"] == 86.8
    # the paper's rule is the mean of the branches' probabilities, not of their logits
    probabilities = torch.stack([g.softmax(1), p.softmax(1), wrong.softmax(1)]).mean(0)
    expected = 100.0 * (probabilities.argmax(1) == targets).float().mean().item()
    assert t4.loc["G + P + A", "reproduced"] == pytest.approx(expected)
    # a 2-scale CLAN has no A rows and no paper numbers
    two = _fake_runs(_study(scales=2, ablation_epochs=2), {}).table("table4")
    assert list(two["row"]) == ["G-Branch", "P-Branch", "CLSA-Branch", "G + P", "G + P + CLSA"]
    assert two["paper"].isna().all()


def _on(settings, dataset):
    """``settings`` read as if the study ran on ``dataset`` (no data is built)."""
    import dataclasses

    return dataclasses.replace(settings, datasets=[dataclasses.replace(settings.datasets[0], name=dataset)])


@pytest.mark.usefixtures("private_dirs")
@pytest.mark.parametrize("params,dataset", [
    ({}, "synthetic"), ({"scales": 2}, "synthetic"), ({}, "cub"), ({"backbone": "resnet50"}, "synthetic"),
    ({"relation": "gaussian"}, "cars")])
def test_every_declared_claim_is_measured_or_says_why(params, dataset):
    settings = _on(_study(**params).settings, dataset)
    found = paper.measured_claims(settings)
    assert list(found) == list(paper.CLAIMS)
    claims, not_measured = paper.claims(settings)
    reasons = {cid: entry for cid, entry in found.items() if isinstance(entry, str)}
    assert len(not_measured) == len(reasons)
    for cid, reason in reasons.items():
        section, text = paper.CLAIMS[cid]
        assert reason and f"{section}: {text} - {reason}" in not_measured
    measured = [c for cid, entry in found.items() if not isinstance(entry, str) for c in entry]
    assert measured == claims and all(c.pairs for c in claims)
    assert len({c.text for c in claims}) == len(claims)
    assert "two_scales_cost_slight" in reasons and "threshold" in reasons["two_scales_cost_slight"]
    assert set(paper.UNMEASURED) <= set(reasons)                  # 'slight', other methods, text-only claims
    if settings.backbone == "vgg16" and settings.scales == 3 and dataset == "synthetic":
        # the notebook's default measures all else
        assert set(reasons) == set(paper.UNMEASURED)
    if settings.backbone != "vgg16":
        assert {"gaussian_worst", "clca_beats_nonlocal", "three_scales_beat_two", "clca_maps_on_object",
                "baseline_conv4_3_background", "second_mid_branch_helps"} <= set(reasons)
    if dataset != "synthetic":
        assert "no box per part" in reasons["clsa_attention_diverse"]


def test_no_claim_carries_an_invented_threshold():
    """'slight' (Table 5) is not measured; the complexity claims are decided by the counts' signs alone."""
    assert "threshold" in paper.UNMEASURED["two_scales_cost_slight"]
    found = paper.measured_claims(resolve(paper.STUDY, {"profile": "cpu"}))
    complexity = {cid: entry for cid, entry in found.items() if not isinstance(entry, str)
                  and any(c.text.startswith("Table 5") for c in entry)}
    assert set(complexity) == {"two_scales_cost_more", "three_scales_cost_more"}
    for (claim,) in complexity.values():     # counts: the runner's smallest effect for counts, no other threshold
        assert claim.measured_as == "count" and claim.kind == "greater" and "%" not in claim.note


@pytest.mark.usefixtures("private_dirs")
def test_claims_pair_the_right_measures_with_the_papers_effects():
    study = _study(ablation_epochs=2)
    found = paper.measured_claims(study.settings)

    def effect(claim):   # the paper's effect as the runner computes it from the claim's printed cells
        return paper.STUDY.paper_effect(claim, study.settings.dataset)

    (three,) = found["three_scales_beat_two"]
    assert three.pairs == ((Accuracy("clan_vgg16_2s"), Accuracy("clan_vgg16_3s")),) and effect(three) == 0.9
    (backbone,) = found["clan_beats_baseline"]
    assert backbone.pairs == ((Accuracy("vgg16_baseline"), Accuracy("clan_vgg16_3s")),)
    assert effect(backbone) == round(86.8 - 79.1, 2)
    (relation,) = found["gaussian_worst"]                   # Tables 1-3 read the 2-epoch copies on the ablation seeds
    assert relation.seeds == (0, 1, 2) and effect(relation) == round((0.6 + 1.3 + 0.5 + 1.2) / 4, 2)
    assert (Accuracy("clan_vgg16_3s_gaussian", ("G", "P", "A")), Accuracy("clan_vgg16_3s_e2", ("G", "P", "A"))) \
        in relation.pairs
    (similar,) = found["dot_similar_embedded"]
    assert similar.kind == "similar" and effect(similar) == 0.1
    (gap,) = found["nonlocal_beats_gap"]
    assert effect(gap) == round(84.8 - 78.7, 2)
    (clsa,) = found["clsa_branch_helps"]
    assert clsa.pairs == ((Accuracy("clan_vgg16_3s", ("G", "P", "A")),
                           Accuracy("clan_vgg16_3s", ("G", "P", "A", "CLSA"))),)
    assert effect(clsa) == round(86.8 - 85.8, 2)
    # Table 5: our counts (OURS) and the paper's, both as the smaller of the parameter and MAC increments in
    # % of VGG-16's; decided by the sign alone
    def smaller(counts, big, small):
        return min(100 * (counts[big][i] - counts[small][i]) / counts["VGG-16"][i] for i in (0, 1))
    printed = {row: (v["params_m"], v["macs_g"]) for row, v in paper.STUDY.printed["table5"].items()}
    for cid, big, small in (("two_scales_cost_more", "2-scale CLAN", "VGG-16"),
                            ("three_scales_cost_more", "3-scale CLAN", "2-scale CLAN")):
        (claim,) = found[cid]
        (a, b), = claim.pairs
        assert isinstance(a, Fixed) and isinstance(b, Fixed) and a.value == 0.0
        assert b.value == pytest.approx(smaller(OURS, big, small), rel=1e-9) and b.value > 0
        assert effect(claim) == round(smaller(printed, big, small), 2)
    assert effect(found["two_scales_cost_more"][0]) == round(100 * (62.30 - 61.63) / 61.63, 2)
    # figures: per-image scores under the names clan_views.score_maps records
    (fig4,) = found["clca_maps_on_object"]
    assert fig4.pairs == tuple((Score(f"non-local: {s} activation: object_energy"),
                                Score(f"CLAN: {s} activation: object_energy")) for s in ("conv5_2", "conv4_3"))
    (fig5,) = found["baseline_conv4_3_background"]
    assert fig5.pairs == ((Score("baseline: conv4_3 Grad-CAM: object_energy"),
                           Score("CLAN: conv4_3 Grad-CAM: object_energy")),)
    against_top, against_baseline = found["clsa_attention_diverse"]
    assert against_top.pairs == tuple((Score("CLAN: conv5_3 activation: part_diversity"),
                                       Score(f"CLAN: CLSA {s}: part_diversity")) for s in ("conv5_2", "conv4_3"))
    assert against_baseline.pairs == tuple((Score(f"baseline: {s} activation: part_diversity"),
                                            Score(f"CLAN: CLSA {s}: part_diversity")) for s in ("conv5_2", "conv4_3"))
    two = paper.measured_claims(_study(scales=2).settings)
    assert [p[1].name for p in two["clsa_attention_diverse"][0].pairs] == ["CLAN: CLSA conv5_2: part_diversity"]
    assert effect(two["clsa_branch_helps"][0]) is None          # G + P + CLSA: no printed row


@pytest.mark.usefixtures("private_dirs")
def test_claims_table_from_stored_logits_reaches_every_accuracy_claim():
    study = _fake_runs(_study(ablation_epochs=2), {"clan_vgg16_3s": 15, "clan_vgg16_2s": 12, "vgg16_baseline": 8,
                                                   "clan_vgg16_3s_e2": 15, "clan_vgg16_2s_e2": 12})
    table, skipped = study.claims_table()
    claims, not_measured = paper.claims(study.settings)
    figures = [c.text for c in claims if c.text.startswith("Figure")]
    assert sorted(table["claim"]) == sorted(c.text for c in claims if not c.text.startswith("Figure"))
    # the figure claims read per-image map scores that only the notebook's maps section records
    assert len(figures) == 6 and all(any(s.startswith(text) for s in skipped) for text in figures)
    assert set(not_measured) <= set(skipped)
    table = table.set_index("claim")
    for claim in claims:                         # Table 5: counts, decided by the sign of the increment
        if claim.text.startswith("Table 5"):
            row = table.loc[claim.text]
            assert row["verdict"] == "held" and row["our_effect"] == pytest.approx(claim.pairs[0][1].value)
    from fgvc_lib.statistics import HALF_WIDTH, MAIN_HALF_WIDTH
    targets = table["half_width_target"]
    assert targets["Table 6: CLAN (3-scale) beats the fine-tuned VGG-16"] == MAIN_HALF_WIDTH
    assert (targets.drop("Table 6: CLAN (3-scale) beats the fine-tuned VGG-16") == HALF_WIDTH).all()


def test_table5_in_the_results_format_with_an_operator_breakdown():
    table, breakdown = clan_complexity.table5("vgg16", "cpu")
    assert list(table.columns) == RESULT_COLUMNS
    ours = table.set_index(["row", "metric"])["reproduced"]
    for row, (params, macs) in OURS.items():
        assert ours[(row, "params_m")] == params / 1e6 and ours[(row, "macs_g")] == macs / 1e9
    assert table.set_index(["row", "metric"]).loc[("3-scale CLAN", "macs_g"), "paper"] == 64.83
    assert clan_complexity.table5_counts()["2-scale CLAN"]["macs_g"] == OURS["2-scale CLAN"][1] / 1e9
    view = clan_complexity.table5_view(table)
    assert view.loc["3-scale CLAN", "gap macs %"] == round(100 * (65.086481312 / 64.83 - 1), 2)
    assert (view[["gap params %", "gap macs %"]].abs() < 2).all().all()
    for row in clan_complexity.EXTRA_ROWS:                                 # in the breakdown only
        assert row not in view.index and row in breakdown.index
    assert breakdown.loc[clan_complexity.LITERAL_ROW, "MACs (G)"] == pytest.approx(70.847, abs=1e-3)
    assert breakdown.loc["3-scale CLAN, conv5_3 top", "MACs (G)"] == pytest.approx(65.395, abs=1e-3)
    assert breakdown.loc["3-scale CLAN", "bmm (G)"] == pytest.approx(0.514, abs=1e-3)
    increments = clan_complexity.table5_increments()
    assert list(increments.columns) == ["2-scale CLAN", "3-scale CLAN"]
    assert increments.loc["paper: MACs (G)"].tolist() == [0.67, 3.2]
    assert increments.loc["ours, pool5 top: MACs (G)"].tolist() == [
        round((OURS[r][1] - OURS["VGG-16"][1]) / 1e9, 3) for r in ("2-scale CLAN", "3-scale CLAN")]
    assert increments.loc["ours, pool5 top: MACs without bmm (G)"].tolist() == [0.668, 3.186]
    assert increments.loc["ours, conv5_3 top: MACs without bmm (G)"].tolist() == [0.822, 3.494]
    assert increments.loc["paper: params (M)"].tolist() == [1.05, 2.31]
    resnet = clan_complexity.table5("resnet50", "cpu")[0]
    assert resnet["row"].unique().tolist()[3:] == ["ResNet-50", "2-scale CLAN (ResNet-50)"]
    assert resnet.set_index(["row", "metric"])["paper"].loc["ResNet-50"].isna().all()


def _cam_sample(x, labels):
    from fgvc_lib.localization import CamSample

    return CamSample([0, 1], x, labels, np.array([[0, 0, 32, 32], [0, 0, 64, 64]], dtype=float),
                     [[(0, 0, 8, 8)], [(56, 56, 8, 8)]], ["a", "b"])


def test_maps_of_every_layer_and_their_scores():
    from fgvc_lib.localization import score_cams
    torch.manual_seed(0)
    clan = build_clan(slim(), CLASSES, CLANConfig(scales=3, zero_init_output=False)).eval()
    base = BaselineNet(slim(), CLASSES).eval()
    assert clan_views.stage_layer(clan, "conv5_2") is clan.mid_modules["P"]
    assert clan_views.stage_layer(base, "conv5_2") is base.backbone.stage_module("conv5_2")
    x, labels = images(), torch.tensor([1, 3])
    stages = ("conv5_3", "conv5_2", "conv4_3")
    maps = clan_views.model_maps(clan, x, labels, stages)
    assert list(maps) == [f"{s} activation" for s in stages] + [f"{s} Grad-CAM" for s in stages] + \
        ["CLSA conv5_2", "CLSA conv4_3"]
    for m in maps.values():
        assert m.shape == (BATCH, SIZE, SIZE) and m.min() >= 0 and m.max() <= 1
    assert not clan.training
    base_maps = clan_views.model_maps(base, x, labels, stages)
    assert len(base_maps) == 6                                   # no CLSA maps for the baseline
    # the refined mid map (not the raw backbone map) is what CLAN's activation map shows
    raw = base.backbone(x, ("conv5_2",))["conv5_2"]
    assert not torch.allclose(clan_views.stage_maps(clan, x, ("conv5_2",))["conv5_2"],
                              clan.backbone(x, ("conv5_2",))["conv5_2"])
    assert raw.shape[1] == clan.backbone.stage_channels["conv5_2"]
    sample = _cam_sample(x, labels)
    peak = np.zeros((BATCH, SIZE, SIZE), dtype=np.float32)
    peak[0, 2, 2] = peak[1, 10, 10] = 1.0
    assert score_cams(peak, sample)["part_pointing"] == 0.5
    with pytest.raises(ValueError, match="kind must be one of"):
        clan_views.map_figure({"CLAN": clan}, stages, sample, "saliency")


PARTS = [{"beak": (0, 0, 16, 16), "wing": (24, 24, 24, 24), "tail": (48, 0, 16, 16)},
         {"beak": (40, 40, 16, 16), "wing": (0, 0, 32, 32), "tail": (0, 48, 16, 16)}]


@pytest.mark.usefixtures("private_dirs")
def test_map_scores_are_per_image_and_named_as_the_figure_claims_read_them():
    """score_maps' names and the Figure 4-6 claims of clan.STUDY must match: once the scores are
    recorded, every figure claim is measured; every score has one value per test image and seed."""
    torch.manual_seed(0)
    x, labels = images(), torch.tensor([1, 3])
    study = _study()
    stages = paper.figure_stages(study.settings)
    models = {"baseline": BaselineNet(slim(), CLASSES, stage="pool5"),
              "non-local": build_clan(slim(), CLASSES, CLANConfig(scales=3, mid_module="nonlocal")),
              "CLAN": build_clan(slim(), CLASSES, CLANConfig(scales=3, zero_init_output=False))}
    assert list(models) == list(paper.figure_models(study.settings))
    runs = {label: [SimpleNamespace(seed=seed, model=model.eval()) for seed in (0, 1)]
            for label, model in models.items()}
    sample = _cam_sample(x, labels)
    scores = clan_views.score_maps(runs, stages, sample, parts=PARTS)
    for values in scores.values():
        assert values.keys() == {0, 1} and all(np.shape(v) == (BATCH,) for v in values.values())
    assert all(((0 <= v) & (v <= 100)).all() for v in scores["CLAN: CLSA conv5_2: part_pointing"].values())
    maps = clan_views.model_maps(models["CLAN"], x, labels, stages)
    np.testing.assert_allclose(scores["CLAN: CLSA conv4_3: part_diversity"][1],
                               clan_views.part_diversity(maps["CLSA conv4_3"], PARTS))
    from fgvc_lib.localization import CamSample, score_cams
    for i in range(BATCH):                                # per image = score_cams of that image alone
        one = CamSample([i], x[i:i + 1], labels[i:i + 1], sample.object_boxes[i:i + 1], sample.part_boxes[i:i + 1],
                        sample.titles[i:i + 1])
        alone = score_cams(maps["conv4_3 Grad-CAM"][i:i + 1], one)
        assert scores["CLAN: conv4_3 Grad-CAM: object_energy"][0][i] == pytest.approx(100 * alone["object_energy"])
    claims, not_measured = paper.claims(study.settings)
    figures = [c for c in claims if c.text.startswith("Figure")]
    # the claims no configuration measures ('slight' of Table 5 among them)
    assert len(figures) == 6 and len(not_measured) == len(paper.UNMEASURED)
    names = {side.name for claim in figures for pair in claim.pairs for side in pair}
    assert names <= set(scores), names - set(scores)
    study.record_all(scores)
    for claim in figures:                        # measured on both seeds and every image
        entry = study.claim_entry(claim)
        assert isinstance(entry, dict), entry
        assert (entry["n_seeds"], entry["n_images"]) == (2, BATCH)
    # the effect of a claim over two pairs: per seed and image, the mean of the two differences
    against_top = next(c for c in figures if "top-level map" in c.text)
    (a1, b1), (a2, b2) = against_top.pairs
    per_seed = [np.mean([(scores[b1.name][s] - scores[a1.name][s] + scores[b2.name][s] - scores[a2.name][s]) / 2])
                for s in (0, 1)]
    assert study.claim_entry(against_top)["our_effect"] == pytest.approx(np.mean(per_seed))


def test_part_boxes_of_the_synthetic_set_in_sample_pixels():
    from fgvc_lib.localization import CamSample

    class Data:
        def annotation(self, index):
            return {"image_size": (128, 256), "part_boxes": {"beak": (64, 128, 32, 64), "eye": (0, 0, 8, 8)}}

    sample = CamSample([3, 5], torch.zeros(2, 3, 64, 64), torch.tensor([0, 1]), np.zeros((2, 4)), [[], []], ["a", "b"])
    boxes = clan_views.part_boxes(Data(), sample)
    assert boxes == [{"beak": (32.0, 32.0, 16.0, 16.0), "eye": (0.0, 0.0, 4.0, 2.0)}] * 2
    class Real(Data):
        def annotation(self, index):
            return {"image_size": (128, 256), "parts": {"beak": (1, 2)}}
    assert clan_views.part_boxes(Real(), sample) is None


def _literal_peaks(cam, radius):
    """Pixels that are the maximum of their (2 radius + 1)^2 window and reach half the map's maximum."""
    height, width = cam.shape
    top = cam.max()
    peaks = []
    for r in range(height):
        for c in range(width):
            window = cam[max(0, r - radius):r + radius + 1, max(0, c - radius):c + radius + 1]
            if top > 0 and cam[r, c] >= window.max() and cam[r, c] >= 0.5 * top:
                peaks.append((float(r), float(c)))
    return peaks


def _blobs(size, centres):
    rows, cols = np.mgrid[0:size, 0:size]
    return sum(a * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * 3.0 ** 2)) for (r, c), a in centres.items())


def test_part_diversity_counts_the_distinct_parts_the_peaks_fall_on():
    # three blobs: on the beak (row 8, col 8), on the wing (row 36, col 36), and a weak one on the tail (below
    # half the maximum: not a peak); a box around the whole head also holds the beak's peak
    cam = _blobs(64, {(8, 8): 1.0, (36, 36): 0.8, (8, 56): 0.3})
    boxes = {"beak": (0, 0, 16, 16), "head": (0, 0, 30, 30), "wing": (24, 24, 24, 24), "tail": (48, 0, 16, 16)}
    for radius in (1, 2, 4):
        assert sorted(clan_views.map_peaks(cam, radius)) == sorted(_literal_peaks(cam, radius))
    assert sorted(clan_views.map_peaks(cam, 2)) == [(8.0, 8.0), (36.0, 36.0)]
    assert clan_views.parts_reached(cam, boxes, 2) == ["beak", "wing"]      # the smallest box holding a peak
    assert clan_views.part_diversity(cam[None], [boxes], 2).tolist() == [50.0]
    one_blob = _blobs(64, {(8, 8): 1.0})
    flat = np.zeros((64, 64))
    plateau = np.zeros((64, 64))
    plateau[30:35, 40:45] = 1.0                                               # a flat top is one peak
    assert clan_views.map_peaks(plateau, 2) == [(32.0, 42.0)]
    three = clan_views.part_diversity(np.stack([one_blob, flat, plateau]), [boxes, boxes, {}], 2)
    assert three[:2].tolist() == [25.0, 0.0] and np.isnan(three[2])
    assert np.isnan(clan_views.part_diversity(plateau[None], [{}])[0])          # no part boxes: undefined
    assert clan_views.map_peaks(np.zeros((8, 8))) == []
    with pytest.raises(ValueError, match="one part-box mapping per map"):
        clan_views.part_diversity(cam[None], [boxes, boxes])


def test_map_correlation_per_image():
    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 8))
    np.testing.assert_allclose(clan_views.map_correlation(a, a), np.ones(3))
    np.testing.assert_allclose(clan_views.map_correlation(a, 1 - a), -np.ones(3))
    assert clan_views.map_correlation(a, np.ones_like(a)).tolist() == [0.0] * 3
    b = a.copy()
    b[1] = rng.random((8, 8))
    x, y = a[1].ravel() - a[1].mean(), b[1].ravel() - b[1].mean()
    assert clan_views.map_correlation(a, b)[1] == pytest.approx((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


@pytest.mark.usefixtures("private_dirs")
def test_attention_sites_are_the_refined_mid_maps_and_the_attended_top_map():
    # the published VGG-16: conv4_3 and conv5_2 come before the 3rd and 4th max-pooling (strides 8 and 16),
    # pool5 after the 5th; the cpu profile runs it at output stride 8, where all three share stride 8
    def sites(study):   # as the room table reads them: off the study's backbone
        return paper.attention_sites(study.settings, study.backbone_spec.build(weights=False))

    published = sites(_study(scales=3, output_stride=32))
    assert [(site.split()[0], stride) for site, stride in published.items()] == [("conv5_2", 16), ("conv4_3", 8),
                                                                                 ("pool5", 32)]
    cpu = _study(scales=3)
    assert cpu.settings.output_stride == paper.OUTPUT_STRIDES["cpu"] == 8
    assert list(sites(cpu).values()) == [8, 8, 8]
    assert paper.published_sites(cpu) == published   # notebook 03's room table of the published network
    assert _study(profile="smoke").settings.output_stride is None
    assert _study(profile="paper", dataset="synthetic").settings.output_stride is None
    assert [site.split()[0] for site in sites(_study(scales=2))] == ["conv5_2", "pool5"]
    resnet = sites(_study(backbone="resnet50"))
    assert [(site.split()[0], stride) for site, stride in resnet.items()] == [("conv4_x", 16), ("conv5_x", 32)]


@pytest.mark.usefixtures("private_dirs")
def test_tables_1_to_3_claims_compare_arms_of_the_same_short_budget_and_say_so():
    """The cpu profile trains the ablations for a quarter of the epochs: every Tables 1-3 claim reads
    models of that one length on the ablation seeds, and its note says so; the main claims carry no
    such note. The paper's effects are labelled with the paper's setting on the synthetic set."""
    study = _study()
    settings = study.settings
    assert settings.ablation_epochs < settings.epochs
    models = paper._models(settings)
    claims, _ = paper.claims(settings)
    short = [c for c in claims if c.text.split(":")[0] in ("Table 1", "Table 2", "Table 3")]
    assert len(short) == 6
    for claim in short:
        keys = {side.variant for pair in claim.pairs for side in pair}
        assert {models[k]["epochs"] for k in keys} == {settings.ablation_epochs}, claim.text
        assert claim.seeds == tuple(settings.ablation_seeds)
        assert f"{settings.ablation_epochs} of the run's {settings.epochs} epochs" in claim.note
        assert claim.paper_setting == "CUB-200-2011, VGG-16"
    for claim in claims:
        if claim not in short:
            assert "ablation budget" not in claim.note
    full = paper.claims(_study(ablation_epochs=8).settings)[0]
    assert not any("ablation budget" in c.note for c in full)
    on_cub = paper.claims(_on(settings, "cub"))[0]
    assert all(c.paper_setting == "" for c in on_cub)
    (fig5,) = [c for c in claims if "repeats" in c.text]   # a claim of a decrease: CLAN minus baseline, below 0
    assert fig5.direction == -1 and fig5.pairs[0][1].name == "CLAN: top/mid Grad-CAM correlation"
