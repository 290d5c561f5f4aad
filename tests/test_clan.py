"""Unit tests of CLAN (fgvc_lib.models.clan, .clan_modules) and its paper numbers (fgvc_lib.papers.clan).

Slim backbones (width 0.125) at 64 px, batch 2; Table 5's complexity at full width on the meta device.
"""
import math

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


def test_clca_rejects_bad_input():
    with pytest.raises(ValueError, match="valid values: 'gaussian', 'embedded_gaussian', 'dot_product'"):
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
    for kwargs, valid in ((dict(pooling="sum"), "'avg&max'"), (dict(activation="tanh"), "'sigmoid'"),
                          (dict(downsample="nearest"), "'bilinear'")):
        with pytest.raises(ValueError, match=valid):
            CrossLayerSpatialAttention(**kwargs)


# ---------------------------------------------------------------- branches and loss
@pytest.mark.parametrize("backbone,scales,names,stages", [
    ("vgg16", 2, ("G", "P", "CLSA"), {"G": "conv5_3", "P": "conv5_2"}),
    ("vgg16", 3, ("G", "P", "A", "CLSA"), {"G": "conv5_3", "P": "conv5_2", "A": "conv4_3"}),
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
    with pytest.raises(ValueError, match="'prob', 'logits'"):
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
    raw = bb(x, ("conv5_2", "conv4_3", "conv5_3"))
    for module in ("gap", "clca", "nonlocal"):  # zero-initialised W_y: the refined map is the raw map
        model = build_clan(bb, CLASSES, CLANConfig(scales=3, mid_module=module)).eval()
        with torch.no_grad():
            feats = model(x).extras["features"]
        for stage in ("conv5_3", "conv5_2", "conv4_3"):
            torch.testing.assert_close(feats[stage], raw[stage])


def test_cam_target_layers_produce_the_feature_maps():
    torch.manual_seed(0)
    model = build_clan(slim(), CLASSES, CLANConfig(scales=3, zero_init_output=False)).eval()
    layers = model.cam_target_layers()
    assert layers[0] is model.backbone.stage_module("conv5_3")
    assert layers[1:] == [model.mid_modules["P"], model.mid_modules["A"]]
    captured = []
    hooks = [layer.register_forward_hook(lambda m, i, o: captured.append(o)) for layer in layers]
    with torch.no_grad():
        out = model(images())
    for h in hooks:
        h.remove()
    feats = out.extras["features"]
    for tensor, stage in zip(captured, ("conv5_3", "conv5_2", "conv4_3")):
        torch.testing.assert_close(tensor, feats[stage])


def test_invalid_configurations_raise_clear_errors():
    bb = slim()
    cases = [
        (dict(relation="cosine"), "relation metric 'cosine'.*'dot_product'"),
        (dict(clsa_pooling="sum"), "CLSA pooling 'sum'.*'avg&max'"),
        (dict(mid_module="se"), "mid_module 'se'.*'clca', 'nonlocal', 'gap'"),
        (dict(combine="vote"), "'prob', 'logits'"),
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
    with pytest.raises(ValueError, match="comes after the top stage"):
        build_clan(bb, CLASSES, CLANConfig(mid_stages=("pool5",)))
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
    train = cfg.train_config("vgg16")
    assert (train.epochs, train.step_size, train.gamma, train.scheduler, train.optimizer) == (120, 30, 0.1, "step", "sgd")
    short = cfg.train_config("vgg16", epochs=12, max_batches=3)
    assert (short.epochs, short.step_size, short.max_batches) == (12, 3, 3)
    with pytest.raises(ValueError, match="VGG-16 and ResNets"):
        cfg.lr_schedule("densenet161")
    assert set(CLAN_STAGES) >= {"vgg16", "resnet50", "resnet101"}


# ---------------------------------------------------------------- Table 5 (full width, meta device)
def _full_width(kind, scales=None, **overrides):
    with torch.device("meta"):
        backbone = build_backbone("vgg16")
        if kind == "baseline":
            return BaselineNet(backbone, paper.TABLE5_NUM_CLASSES)
        return build_clan(backbone, paper.TABLE5_NUM_CLASSES, CLANConfig(scales=scales, **overrides))


def _macs_by_op(model):
    x = torch.zeros(1, 3, paper.TABLE5_IMAGE_SIZE, paper.TABLE5_IMAGE_SIZE, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return {str(op): flops // 2 for op, flops in counter.get_flop_counts()["Global"].items()}


# Our counts (fgvc_lib.complexity: every parameter; MACs = FlopCounterMode flops / 2, attention
# products included) with the default config. Exact integers: any architecture change shows here.
OURS = {"VGG-16": (14_817_288, 61_386_625_024),
        "2-scale CLAN": (16_074_411, 62_311_687_968),
        "3-scale CLAN": (17_331_334, 65_394_762_656)}


def test_table5_complexity_at_full_width():
    models = {"VGG-16": _full_width("baseline"), "2-scale CLAN": _full_width("clan", 2),
              "3-scale CLAN": _full_width("clan", 3)}
    for row, model in models.items():
        stats = model_complexity(model, paper.TABLE5_IMAGE_SIZE)
        assert (stats["params"], stats["macs"]) == OURS[row], (row, stats)
        params_paper = paper.TABLE5[row]["params_m"] * 1e6
        macs_paper = paper.TABLE5[row]["macs_g"] * 1e9
        assert abs(stats["params"] / params_paper - 1) < 0.02, row
        assert abs(stats["macs"] / macs_paper - 1) < 0.02, row
    # The CLAN rows' increments match the added modules: 2 CLCA blocks at C_s = C_g = 512, C_int = 256
    clca = 2 * 512 * 512 + 4 * 512 * 256 + 2 * 512 + 3 * 256 + 512  # W_l, W_g, theta, phi, k, y (+bias)
    clca += 2 * 512                                                  # BatchNorm after W_y
    assert OURS["2-scale CLAN"][0] - OURS["VGG-16"][0] == clca + 2 * (512 * 200 + 200) + 2 * 9 + 1
    assert OURS["3-scale CLAN"][0] - OURS["2-scale CLAN"][0] == clca + (512 * 200 + 200) + 512 * 200 + 2 * 9 + 1


def test_table5_gap_comes_from_the_attention_products():
    """Explains the MAC counts: convolutions alone are within 0.2 % of the paper's CLAN rows; the
    3-scale count depends on how eq. 2 is evaluated, because conv4_3 has n = 56 x 56 positions."""
    ours = _macs_by_op(_full_width("clan", 3))
    literal = _macs_by_op(_full_width("clan", 3, project_top_first=False, efficient_dot_product=False))
    paper_macs = paper.TABLE5["3-scale CLAN"]["macs_g"] * 1e9
    assert abs(ours["aten.convolution"] / paper_macs - 1) < 0.002
    n, c_int = 56 * 56, 256
    literal_products = 2 * (n * n * c_int) + 2 * ((28 * 28) ** 2 * c_int)        # (theta phi^T) k at both mids
    assert literal["aten.bmm"] == literal_products
    assert ours["aten.bmm"] == 2 * (n * c_int * c_int) + 2 * (28 * 28 * c_int * c_int)  # theta (phi^T k)
    assert sum(literal.values()) / paper_macs - 1 > 0.08                          # +9 %: n^2 products
    assert literal["aten.convolution"] - ours["aten.convolution"] == (n - 28 * 28) * 512 * 512  # W_g order


# ---------------------------------------------------------------- paper numbers
def test_paper_tables_as_printed():
    assert paper.paper_value("table1", "Dot Product", "3-scale") == 85.8
    assert paper.paper_value("table2", "CLCA", "aircraft") == 90.6
    assert paper.paper_value("table3", "CLCA + CLSA(Avg&Max)", "2-scale") == 86.0
    assert paper.paper_value("table4", "G + P + A + CLSA", "cars") == 93.1
    assert paper.paper_value("table5", "3-scale CLAN", "macs_g") == 64.83
    assert paper.paper_value("table6", "CLAN(2-scale) (ResNet-101)", "aircraft") == 93.3
    assert paper.paper_value("table6", "CBP (VGG-16)", "cars") is None
    assert len(paper.TABLE6) == len(paper.TABLE6_META) == 18
    # Tables 2 and 4 agree on the CLCA / G + P + A entries (our reading of Tables 1-2)
    assert paper.TABLE2["CLCA"] == paper.TABLE4["G + P + A"]
    with pytest.raises(KeyError, match="rows"):
        paper.paper_value("table4", "H-Branch", "cub")
    records = paper.paper_records()
    assert len(records) == 6 + 9 + 6 + 21 + 6 + 18 * 3
    assert {"table", "row", "dataset", "backbone", "metric", "paper"} <= set(records[0])


def test_claims_effects_are_computed_from_the_tables():
    claims = paper.CLAIMS_BY_ID
    assert claims["clca_beats_nonlocal"].paper_effect == {
        "table2:CLCA[cub] vs table2:Non-local[cub]": 1.0, "table2:CLCA[cars] vs table2:Non-local[cars]": 0.4,
        "table2:CLCA[aircraft] vs table2:Non-local[aircraft]": 1.1}
    assert claims["gaussian_worst"].mean_paper_effect == 0.9
    assert all(c.holds_in_paper for c in paper.CLAIMS)
    assert {c.kind for c in paper.CLAIMS} <= {"greater", "not_worse", "similar", "complexity", "qualitative"}


def test_experiment_plan_models_build_and_cells_point_to_them():
    for reading in (True, False):
        models, cells = paper.experiment_plan(reading)
        printed = {(t, r, c) for t, rows in paper.TABLES.items() for r, cols in rows.items() for c in cols
                   if t != "table6" or paper.TABLE6_META[r][4]}   # other methods' rows are not reproduced
        assert {(c["table"], c["row"], c["column"]) for c in cells} == printed and len(cells) == len(printed)
        for cell in cells:
            assert cell["model"] in models
            paper.paper_value(cell["table"], cell["row"], cell["column"])  # KeyError if not printed
        for key, spec in models.items():
            if spec["kind"] != "clan":
                continue
            with torch.device("meta"):
                model = build_clan(build_backbone(spec["backbone"], width=WIDTH), CLASSES, CLANConfig(**spec["config"]))
            for cell in cells:
                if cell["model"] == key and cell["branches"]:
                    assert set(cell["branches"]) <= set(model.branch_names), (key, cell)
    models, cells = paper.experiment_plan()
    assert models["clan_vgg16_3s"]["config"] == {"scales": 3}   # the default CLAN is shared by 5 tables
    assert {c["table"] for c in cells if c["model"] == "clan_vgg16_3s"} == {"table1", "table2", "table3", "table4",
                                                                          "table5", "table6"}


# ---------------------------------------------------------------- notebook 03's study (clan.STUDY on fgvc_lib.study)
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from fgvc_lib.models import clan_maps  # noqa: E402
from fgvc_lib.papers import clan_complexity  # noqa: E402
from fgvc_lib.reporting import RESULT_COLUMNS  # noqa: E402
from fgvc_lib.study import Run, Study  # noqa: E402
from fgvc_lib.study.jobs import RunRecord  # noqa: E402
from fgvc_lib.study.parameters import resolve  # noqa: E402
from fgvc_lib.study.runner import DataBundle  # noqa: E402

N_TEST = 20


@pytest.fixture
def private_dirs(tmp_path, monkeypatch):
    """Results, runs and caches of these tests go to a temporary folder, never the repository's."""
    for name in ("FGVC_RESULTS_DIR", "FGVC_RUNS_DIR", "FGVC_CACHE_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


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
    plan, _ = paper.experiment_plan()
    vgg = {k for k, spec in plan.items() if spec["backbone"] == "vgg16"}
    # cpu: ablations for one seed and a quarter of the epochs, the reference CLANs retrained at that length
    epochs, short = settings.epochs, settings.ablation_epochs
    assert short == max(1, round(epochs / 4)) and short < epochs
    copy = f"clan_vgg16_3s_e{short}"
    assert len(vgg) == 13 and set(study.variants) == vgg | {f"clan_vgg16_2s_e{short}", copy}
    main = [k for k in study.variants if _tier(study, k) == "main"]
    assert main == ["vgg16_baseline", "clan_vgg16_2s", "clan_vgg16_3s"]
    assert list(study.variants)[:3] == main                                   # trained first
    assert settings.seeds == [0, 1] and settings.ablation_seeds == [0]
    assert study.variants["clan_vgg16_3s"].seeds == (0, 1) and study.variants["clan_vgg16_3s_gap"].seeds == (0,)
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
    assert _study(ablation_seeds=2).settings.ablation_seeds == [0, 1]
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
    (dict(relation="cosine"), "parameter relation: unknown relation metric 'cosine'.*'dot_product'"),
    (dict(scales=4), "parameter scales: must be 2, 3 or 0"),
    (dict(scales="3"), "parameter scales: must be 2, 3 or 0"),
    (dict(backbone="vgg19"), "parameter backbone: unknown backbone 'vgg19'; valid here: vgg16, resnet50, resnet101"),
    (dict(ablation_seeds=-1), "parameter ablation_seeds: must be an integer >= 0"),
    (dict(ablation_epochs=1.5), "parameter ablation_epochs: must be an integer >= 0"),
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
    # the 2-epoch copy, seed 0
    assert (row["paper"], row["reproduced"], row["n_seeds"]) == (85.8, pytest.approx(75.0), 1)
    assert t1.set_index("row").loc["Gaussian [2-scale]", "reproduced"] == pytest.approx(45.0)
    assert set(t1["dataset"]) == {"synthetic"} and set(t1["profile"]) == {"cpu"} and set(t1["backbone"]) == {"vgg16"}
    t2 = study.table("table2")
    assert list(t2["row"]) == ["GAP", "Non-local", "CLCA"]
    assert t2["paper"].tolist() == [78.7, 84.8, 85.8]                                # synthetic -> CUB column
    assert len(study.table("table3")) == 6
    t6 = study.table("table6").set_index("row")
    assert t6.loc["CLAN(3-scale) (VGG-16)", "reproduced"] == pytest.approx(82.5)     # seeds 0, 1: 80 and 85
    assert t6.loc["VGG-16 (VGG-16)", "n_seeds"] == 2 and t6.loc["VGG-16 (VGG-16)", "paper"] == 79.1
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
    assert t4.loc["G + P", "n_seeds"] == 2
    assert t4.loc["G + P + A + CLSA", "paper"] == 86.8
    # the paper's rule is the mean of the branches' probabilities, not of their logits
    probabilities = torch.stack([g.softmax(1), p.softmax(1), wrong.softmax(1)]).mean(0)
    expected = 100.0 * (probabilities.argmax(1) == targets).float().mean().item()
    assert t4.loc["G + P + A", "reproduced"] == pytest.approx(expected)
    # a 2-scale CLAN has no A rows and no paper numbers
    two = _fake_runs(_study(scales=2, ablation_epochs=2), {}).table("table4")
    assert list(two["row"]) == ["G-Branch", "P-Branch", "CLSA-Branch", "G + P", "G + P + CLSA"]
    assert two["paper"].isna().all()


TABLE5_CLAIM = ("Table 5: 2-scale CLAN adds a slight cost to VGG-16 and 3 scales add more (effect: MACs added by "
                "2-scale, % of VGG-16; counts at 448 px)")


@pytest.mark.usefixtures("private_dirs")
def test_claims_are_paired_by_seed_with_the_papers_effects():
    study = _fake_runs(_study(ablation_epochs=2), {"clan_vgg16_3s": 15, "clan_vgg16_2s": 12, "vgg16_baseline": 8,
                                                   "clan_vgg16_3s_e2": 15, "clan_vgg16_2s_e2": 12})
    table, skipped = study.claims_table()
    table = table.set_index("claim")
    assert len(table) == 12
    # the figure claims read localization scores that only the notebook's maps section records
    assert len(skipped) == 3 and all("no score" in s for s in skipped)
    assert [s.split(":")[0] for s in skipped] == ["Figure 4", "Figure 5", "Figure 6"]
    three = table.loc["Table 6: 3-scale CLAN beats 2-scale CLAN"]
    assert (three["paper_effect"], three["our_effect"], three["n_seeds"]) == (0.9, pytest.approx(15.0), 2)
    assert three["held"] == "yes" and three["our_std"] == pytest.approx(0.0, abs=1e-4)  # 15 points on both seeds
    backbone = table.loc["Table 6: CLAN (3-scale) beats the fine-tuned VGG-16"]
    assert (backbone["paper_effect"], backbone["our_effect"]) == (7.7, pytest.approx(35.0))
    relation = table.loc["Table 1: dot product and embedded Gaussian beat Gaussian (mean of 4 gaps)"]
    assert relation["n_seeds"] == 1 and relation["held"] == "inconclusive"    # one ablation seed
    # dot product - Gaussian: 75 - 50 (3s), 60 - 50 (2s); embedded Gaussian - Gaussian: 0, 0
    assert relation["our_effect"] == pytest.approx((25 + 10 + 0 + 0) / 4)
    assert relation["paper_effect"] == paper.CLAIMS_BY_ID["gaussian_worst"].mean_paper_effect == 0.9
    gap = table.loc["Table 2: non-local beats GAP"]
    assert gap["paper_effect"] == round(84.8 - 78.7, 2) and gap["n_seeds"] == 1
    table4 = table.loc["Table 4: G + P + A + CLSA beats G + P + A (clan_vgg16_3s)"]
    assert table4["paper_effect"] == round(86.8 - 85.8, 2) and table4["our_effect"] == pytest.approx(0.0)
    # Table 5 is counted, not sampled: one value, decided by the ordering of the counts
    complexity = table.loc[TABLE5_CLAIM]
    assert complexity["paper_effect"] == round(100 * (62.30 / 61.63 - 1), 2)
    assert complexity["our_effect"] == pytest.approx(100 * (OURS["2-scale CLAN"][1] / OURS["VGG-16"][1] - 1))
    assert complexity["n_seeds"] == 1 and complexity["held"] == "yes"
    # "dot product and embedded Gaussian are similar" reaches the table; with one seed it cannot be decided
    similar = "Table 1: dot product and embedded Gaussian are similar (no difference; mean of 2 gaps)"
    assert table.loc[similar, "paper_effect"] == 0.1 and table.loc[similar, "held"] == "inconclusive"
    worse = _fake_runs(_study(ablation_epochs=2), {"clan_vgg16_3s": 5, "clan_vgg16_2s": 12})
    table = worse.claims_table()[0].set_index("claim")
    assert table.loc["Table 6: 3-scale CLAN beats 2-scale CLAN", "held"] == "no"

    # two ablation seeds: "similar" holds when the gap stays within two test images, fails beyond
    correct = {"clan_vgg16_2s_e2": 12, "clan_vgg16_3s_e2": 15}
    same = _fake_runs(_study(ablation_epochs=2, ablation_seeds=2),
                      {**correct, "clan_vgg16_2s_embedded_gaussian": 12, "clan_vgg16_3s_embedded_gaussian": 15})
    row = same.claims_table()[0].set_index("claim").loc[similar]
    assert (row["our_effect"], row["n_seeds"], row["held"]) == (pytest.approx(0.0), 2, "yes")
    apart = _fake_runs(_study(ablation_epochs=2, ablation_seeds=2), correct)   # embedded Gaussian: 10 + seed
    row = apart.claims_table()[0].set_index("claim").loc[similar]
    assert row["our_effect"] == pytest.approx((60 - 50 + 75 - 50) / 2) and row["held"] == "no"

    resnet = _fake_runs(_study(backbone="resnet50"), {})
    table, skipped = resnet.claims_table()
    assert [c.split(":")[0] for c in table["claim"]] == ["Table 4"] * 3 + ["Table 6", "Table 5"]
    assert table["paper_effect"][:3].isna().all()                     # no paper numbers for a ResNet Table 4
    assert table.set_index("claim").loc["Table 6: CLAN (2-scale) beats the fine-tuned ResNet-50",
                                        "paper_effect"] == round(88.1 - 86.0, 2)
    assert skipped[0].startswith("Table 1-3 claims") and "not run with resnet50" in skipped[0]
    assert skipped[1].startswith("Figure 4 claim") and len(skipped) == 4


def test_table5_in_the_results_format_with_an_operator_breakdown():
    table, breakdown = clan_complexity.table5("vgg16", "cpu")
    assert list(table.columns) == RESULT_COLUMNS
    ours = table.set_index(["row", "metric"])["reproduced"]
    for row, (params, macs) in OURS.items():
        assert ours[(row, "params_m")] == params / 1e6 and ours[(row, "macs_g")] == macs / 1e9
    assert table.set_index(["row", "metric"]).loc[("3-scale CLAN", "macs_g"), "paper"] == 64.83
    assert clan_complexity.table5_counts()["2-scale CLAN"]["macs_g"] == OURS["2-scale CLAN"][1] / 1e9
    view = clan_complexity.table5_view(table)
    assert view.loc["3-scale CLAN", "gap macs %"] == round(100 * (65.394762656 / 64.83 - 1), 2)
    assert (view[["gap params %", "gap macs %"]].abs() < 2).all().all()
    assert clan_complexity.LITERAL_ROW not in view.index                   # in the breakdown only
    assert breakdown.loc[clan_complexity.LITERAL_ROW, "MACs (G)"] == pytest.approx(70.847, abs=1e-3)
    assert breakdown.loc["3-scale CLAN", "bmm (G)"] == pytest.approx(0.514, abs=1e-3)
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
    assert clan_maps.stage_layer(clan, "conv5_2") is clan.mid_modules["P"]
    assert clan_maps.stage_layer(base, "conv5_2") is base.backbone.stage_module("conv5_2")
    x, labels = images(), torch.tensor([1, 3])
    stages = ("conv5_3", "conv5_2", "conv4_3")
    maps = clan_maps.model_maps(clan, x, labels, stages)
    assert list(maps) == [f"{s} activation" for s in stages] + [f"{s} Grad-CAM" for s in stages] + \
        ["CLSA conv5_2", "CLSA conv4_3"]
    for m in maps.values():
        assert m.shape == (BATCH, SIZE, SIZE) and m.min() >= 0 and m.max() <= 1
    assert not clan.training
    base_maps = clan_maps.model_maps(base, x, labels, stages)
    assert len(base_maps) == 6                                   # no CLSA maps for the baseline
    # the refined mid map (not the raw backbone map) is what CLAN's activation map shows
    raw = base.backbone(x, ("conv5_2",))["conv5_2"]
    assert not torch.allclose(clan_maps.stage_maps(clan, x, ("conv5_2",))["conv5_2"],
                              clan.backbone(x, ("conv5_2",))["conv5_2"])
    assert raw.shape[1] == clan.backbone.stage_channels["conv5_2"]
    sample = _cam_sample(x, labels)
    peak = np.zeros((BATCH, SIZE, SIZE), dtype=np.float32)
    peak[0, 2, 2] = peak[1, 10, 10] = 1.0
    assert score_cams(peak, sample)["part_pointing"] == 0.5
    with pytest.raises(ValueError, match="kind must be one of"):
        clan_maps.map_figure({"CLAN": clan}, stages, sample, "saliency")


@pytest.mark.usefixtures("private_dirs")
def test_map_scores_are_named_as_the_figure_claims_read_them():
    """score_maps' names and the Figure 4-6 claims of clan.STUDY must match: once the scores are
    recorded, every figure claim is measured."""
    torch.manual_seed(0)
    x, labels = images(), torch.tensor([1, 3])
    study = _study()
    stages = paper.figure_stages(study.settings)
    models = {"baseline": BaselineNet(slim(), CLASSES),
              "non-local": build_clan(slim(), CLASSES, CLANConfig(scales=3, mid_module="nonlocal")),
              "CLAN": build_clan(slim(), CLASSES, CLANConfig(scales=3, zero_init_output=False))}
    assert list(models) == list(paper.figure_models(study.settings))
    runs = {label: [SimpleNamespace(seed=seed, model=model.eval()) for seed in (0, 1)]
            for label, model in models.items()}
    scores = clan_maps.score_maps(runs, stages, _cam_sample(x, labels))
    assert scores["CLAN: top/mid Grad-CAM correlation"].keys() == {0, 1}
    assert all(0 <= v <= 100 for v in scores["CLAN: CLSA conv5_2: part_pointing"].values())
    study.record_all(scores, resolution=100.0)
    claims, not_measured = paper.claims(study.settings)
    figures = [c for c in claims if c.text.startswith("Figure")]
    assert len(figures) == 3 and not not_measured
    for claim in figures:
        entry = study.claim_entry(claim)
        assert isinstance(entry, dict), entry
        assert len(entry["values"]) == 2 and entry["resolution"] == 100.0


def test_map_correlation():
    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 8))
    assert clan_maps.map_correlation(a, a) == pytest.approx(1.0)
    assert clan_maps.map_correlation(a, 1 - a) == pytest.approx(-1.0)
    assert clan_maps.map_correlation(a, np.ones_like(a)) == 0.0
