"""Unit tests of SSANet (fgvc_lib.models.ssanet, .ssa_module) and its paper numbers (fgvc_lib.papers.ssanet)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.backbones import build_backbone
from fgvc_lib.models.output import ModelOutput
from fgvc_lib.models.ssa_module import SpatialSelfAttention
from fgvc_lib.models.ssanet import (VARIANTS, ClassifierHead, SSANet, SSANetConfig, build_ssanet, kl_divergence,
                                    ssanet_loss)
from fgvc_lib.papers import ssanet as paper

torch.set_num_threads(1)

NUM_CLASSES = 5
IMAGE = 64  # pool5 of VGG-16 is 2x2 here
WIDTH = 0.125


def _images(batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, IMAGE, IMAGE, generator=g)


def _model(variant="plus", **changes):
    torch.manual_seed(0)
    config = SSANetConfig(variant=variant, **changes)
    return build_ssanet("vgg16", NUM_CLASSES, config, width=WIDTH)


def _output(fe, ssa=None):
    branches = {"fe": fe} if ssa is None else {"fe": fe, "ssa": ssa}
    return ModelOutput(ssa if ssa is not None else fe, {"branch_logits": branches})


# --- SSA block (sec. 3.2, Eqs. 1-2) ---

@pytest.mark.parametrize("aggregation", ["plus", "multiply", "none"])
def test_ssa_shapes_and_attention_rows_sum_to_one(aggregation):
    torch.manual_seed(0)
    block = SpatialSelfAttention(16, aggregation=aggregation, alpha_init=0.3)
    x = torch.randn(2, 16, 3, 5)
    out, s = block(x, return_attention=True)
    assert out.shape == x.shape
    assert s.shape == (2, 15, 15)
    assert (s >= 0).all()
    torch.testing.assert_close(s.sum(dim=-1), torch.ones(2, 15))
    assert block(x).shape == x.shape  # plain call returns only H


def test_ssa_matches_the_equations_elementwise():
    torch.manual_seed(1)
    block = SpatialSelfAttention(4, aggregation="plus", alpha_init=0.7)
    x = torch.randn(1, 4, 2, 3)
    out, s = block(x, return_attention=True)
    a = block.conv_a(x)[0].flatten(1)   # (K, N)
    b = block.conv_b(x)[0].flatten(1)
    c = block.conv_c(x)[0].flatten(1)
    n = a.shape[1]
    for j in range(n):
        energies = torch.stack([(a[:, i] * b[:, j]).sum() for i in range(n)])
        s_j = torch.softmax(energies, 0)
        torch.testing.assert_close(s[0, j], s_j)
        h_j = 0.7 * sum(s_j[i] * c[:, i] for i in range(n)) + x[0].flatten(1)[:, j]  # Eq. 1
        torch.testing.assert_close(out[0].flatten(1)[:, j], h_j)
    mul = SpatialSelfAttention(4, aggregation="multiply", alpha_init=0.7)
    mul.load_state_dict(block.state_dict())
    context = out - x  # alpha * S C from the plus block
    torch.testing.assert_close(mul(x), context * x)  # Eq. 2


def test_ssa_plus_with_alpha_zero_is_identity_and_multiply_is_zero():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 3, 3)
    plus = SpatialSelfAttention(8, aggregation="plus")
    assert plus.alpha.item() == 0.0
    assert torch.equal(plus(x), x)
    mul = SpatialSelfAttention(8, aggregation="multiply")
    assert torch.count_nonzero(mul(x)) == 0


@pytest.mark.parametrize("aggregation", ["plus", "multiply", "none"])
def test_gradient_reaches_alpha_at_initialisation(aggregation):
    torch.manual_seed(0)
    block = SpatialSelfAttention(8, aggregation=aggregation)
    x = torch.rand(2, 8, 3, 3)
    (block(x) * torch.randn(2, 8, 3, 3)).sum().backward()
    assert isinstance(block.alpha, nn.Parameter)
    assert block.alpha.grad is not None and block.alpha.grad.abs().item() > 0


def test_fixed_alpha_is_one_and_not_trainable():
    torch.manual_seed(0)
    block = SpatialSelfAttention(8, aggregation="none", learnable_alpha=False)
    assert not isinstance(block.alpha, nn.Parameter) and block.alpha.item() == 1.0
    assert "alpha" not in dict(block.named_parameters())
    x = torch.randn(2, 8, 2, 2)
    out, s = block(x, return_attention=True)
    c = block.conv_c(x).flatten(2)
    torch.testing.assert_close(out.flatten(2), torch.bmm(c, s.transpose(1, 2)))  # H = S C


def test_qk_reduction_shrinks_a_and_b_only():
    block = SpatialSelfAttention(64, qk_reduction=8)
    assert block.conv_a.out_channels == block.conv_b.out_channels == 8
    assert block.conv_c.out_channels == 64
    default = SpatialSelfAttention(64)
    assert default.conv_a.out_channels == 64  # the paper: A, B, C have K channels


def test_ssa_rejects_bad_arguments():
    with pytest.raises(ValueError, match="plus, multiply, none"):
        SpatialSelfAttention(8, aggregation="concat")
    with pytest.raises(ValueError, match="qk_reduction"):
        SpatialSelfAttention(8, qk_reduction=0)
    with pytest.raises(ValueError, match="feature map"):
        SpatialSelfAttention(8)(torch.randn(2, 4, 3, 3))


# --- classifier head (sec. 3.4) ---

def test_classifier_head_at_paper_config():
    config = SSANetConfig()
    head = ClassifierHead(64, 200, hidden=config.head_hidden, activation=config.head_activation)
    assert config.head_hidden == 1024
    assert head.fc.in_features == 64 and head.fc.out_features == 1024
    assert isinstance(head.bn, nn.BatchNorm1d) and head.bn.num_features == 1024
    assert isinstance(head.act, nn.ReLU)
    assert head.out.in_features == 1024 and head.out.out_features == 200
    out = head(torch.randn(3, 64, 2, 2))
    assert out.shape == (3, 200)
    head.eval()
    x = torch.randn(2, 64, 2, 2)
    torch.testing.assert_close(head(x), head(x.mean(dim=(2, 3), keepdim=True).expand_as(x)))  # GAP first


def test_model_heads_use_config_hidden_size():
    model = _model("plus")
    for head in (model.fe_head, model.ssa_head):
        assert head.fc.out_features == 1024 and isinstance(head.bn, nn.BatchNorm1d)
        assert head.out.out_features == NUM_CLASSES
        assert head.fc.in_features == model.backbone.stage_channels["pool5"] == 64
    small = _model("plus", head_hidden=32, head_activation="none", head_dropout=0.2)
    assert small.fe_head.fc.out_features == 32 and isinstance(small.fe_head.act, nn.Identity)
    assert isinstance(small.ssa_head.dropout, nn.Dropout)


# --- losses (sec. 3.3, Eqs. 3-5, Table 3) ---

def test_ad_loss_terms_and_values():
    torch.manual_seed(0)
    fe, ssa = torch.randn(4, NUM_CLASSES), torch.randn(4, NUM_CLASSES)
    y = torch.tensor([0, 1, 2, 3])
    loss_fn = ssanet_loss(SSANetConfig())
    terms = loss_fn(_output(fe, ssa), y)
    assert tuple(terms) == loss_fn.term_names == ("ce_ssa", "kl_ssa_fe", "ce_ssa_gamma")
    ce = F.cross_entropy(ssa, y)
    p, q = F.softmax(ssa, 1), F.softmax(fe, 1)
    kl = (p * (p.log() - q.log())).sum(1).mean()
    torch.testing.assert_close(terms["ce_ssa"], ce)
    torch.testing.assert_close(terms["ce_ssa_gamma"], 0.5 * ce)
    torch.testing.assert_close(terms["kl_ssa_fe"], kl)
    torch.testing.assert_close(sum(terms.values()), 1.5 * ce + kl)  # Eq. 5
    # the reverse direction is a different number
    rev = ssanet_loss(SSANetConfig(kl_direction="fe_to_ssa"))(_output(fe, ssa), y)
    torch.testing.assert_close(rev["kl_fe_ssa"], (q * (q.log() - p.log())).sum(1).mean())
    assert not torch.isclose(rev["kl_fe_ssa"], kl)
    g = ssanet_loss(SSANetConfig(gamma=2.0))(_output(fe, ssa), y)
    torch.testing.assert_close(g["ce_ssa_gamma"], 2.0 * ce)


def test_kl_is_zero_when_heads_agree_and_positive_otherwise():
    torch.manual_seed(0)
    logits = torch.randn(3, NUM_CLASSES)
    assert kl_divergence(logits, logits).abs().item() < 1e-6
    assert kl_divergence(logits, logits + 4.0).abs().item() < 1e-6  # same softmax
    assert kl_divergence(logits, torch.randn(3, NUM_CLASSES)).item() > 1e-3
    t = kl_divergence(logits, logits * 0.5, temperature=2.0)
    p, q = F.log_softmax(logits / 2, 1), F.log_softmax(logits * 0.5 / 2, 1)
    torch.testing.assert_close(t, (p.exp() * (p - q)).sum(1).mean() * 4.0)


def test_fe_head_learns_only_through_kl_and_teacher_detach():
    torch.manual_seed(0)
    y = torch.tensor([0, 1, 2])
    fe = torch.randn(3, NUM_CLASSES, requires_grad=True)
    ssa = torch.randn(3, NUM_CLASSES, requires_grad=True)
    terms = ssanet_loss(SSANetConfig())(_output(fe, ssa), y)
    sum(terms.values()).backward()
    fe_total = fe.grad.clone()
    assert fe_total.abs().sum() > 0
    fe.grad = None
    ssa.grad = None
    kl_divergence(ssa, fe).backward()
    torch.testing.assert_close(fe_total, fe.grad)  # the CE terms do not touch the FE head
    assert ssa.grad.abs().sum() > 0                # default: no stop-gradient, KL reaches SSA too
    ssa.grad = None
    fe.grad = None
    det = ssanet_loss(SSANetConfig(detach_teacher=True))(_output(fe, ssa), y)
    det["kl_ssa_fe"].backward()
    assert ssa.grad is None and fe.grad.abs().sum() > 0


def test_ce_loss_and_no_attention_loss():
    torch.manual_seed(0)
    fe, ssa = torch.randn(4, NUM_CLASSES), torch.randn(4, NUM_CLASSES)
    y = torch.tensor([4, 3, 2, 1])
    ce_terms = ssanet_loss(SSANetConfig(loss="ce"))(_output(fe, ssa), y)
    assert tuple(ce_terms) == ("ce_ssa", "ce_fe")
    torch.testing.assert_close(ce_terms["ce_ssa"], F.cross_entropy(ssa, y))
    torch.testing.assert_close(ce_terms["ce_fe"], F.cross_entropy(fe, y))
    na = ssanet_loss(SSANetConfig(variant="no-attention"))(_output(fe), y)
    assert tuple(na) == ("ce_fe",)
    torch.testing.assert_close(na["ce_fe"], F.cross_entropy(fe, y))
    with pytest.raises(ValueError, match="missing"):
        ssanet_loss(SSANetConfig())(_output(fe), y)


# --- the model ---

@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_forward_backward(variant):
    model = _model(variant)
    model.train()
    images = _images()
    out = model(images)
    assert isinstance(out, ModelOutput) and out.logits.shape == (3, NUM_CLASSES)
    assert model.branch_names == (("fe",) if variant == "no-attention" else ("fe", "ssa"))
    assert set(out.extras["branch_logits"]) == set(model.branch_names)
    terms = ssanet_loss(model.config)(out, torch.tensor([0, 1, 2]))
    loss = sum(terms.values())
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.trainable_parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.backbone.parameters())
    if variant != "no-attention":
        assert out.extras["attention"].shape == (3, 4, 4)
        assert model.ssa.aggregation == VARIANTS[variant]["aggregation"]
        assert isinstance(model.ssa.alpha, nn.Parameter) == VARIANTS[variant]["learnable_alpha"]
        assert model.ssa.alpha.grad is None or model.ssa.alpha.grad.abs().item() > 0
    model.eval()
    with torch.no_grad():
        again = model(images)
    assert torch.isfinite(again.logits).all()


def test_predict_head_choice():
    images = _images()
    for head in ("ssa", "fe", "mean"):
        model = _model("plus", predict_head=head).eval()
        with torch.no_grad():
            out = model(images)
        fe, ssa = out.branch("fe"), out.branch("ssa")
        expected = {"ssa": ssa, "fe": fe, "mean": 0.5 * (fe + ssa)}[head]
        torch.testing.assert_close(out.logits, expected)
    na = _model("no-attention").eval()
    with torch.no_grad():
        out = na(images)
    torch.testing.assert_close(out.logits, out.branch("fe"))


def test_plus_at_initialisation_feeds_f_to_both_heads():
    model = _model("plus").eval()
    model.ssa_head.load_state_dict(model.fe_head.state_dict())
    with torch.no_grad():
        out = model(_images())
    torch.testing.assert_close(out.branch("ssa"), out.branch("fe"))  # alpha = 0: H = F


def test_frozen_backbone_stays_in_eval_mode_and_gets_no_gradient():
    model = _model("plus")
    model.train()
    assert model.training and model.ssa_head.training
    assert not model.backbone.training
    assert all(not m.training for m in model.backbone.modules())
    assert all(not p.requires_grad for p in model.backbone.parameters())
    out = model(_images())
    sum(ssanet_loss(model.config)(out, torch.tensor([0, 1, 2])).values()).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.trainable_parameters())
    n_backbone = sum(1 for _ in model.backbone.parameters())
    assert len(model.trainable_parameters()) == sum(1 for _ in model.parameters()) - n_backbone


def test_unfrozen_backbone_trains():
    model = _model("plus", freeze_backbone=False)
    model.train()
    assert model.backbone.training
    out = model(_images())
    sum(ssanet_loss(model.config)(out, torch.tensor([0, 1, 2])).values()).backward()
    assert all(p.grad is not None for p in model.backbone.parameters())
    model.set_backbone_frozen(True)
    assert not model.backbone.training and not any(p.requires_grad for p in model.backbone.parameters())


@pytest.mark.parametrize("variant,branch,expected", [
    ("plus", None, "ssa_tap"), ("plus", "fe", "fe_tap"), ("no-attention", None, "fe_tap")])
def test_cam_targets_receive_gradients_with_frozen_backbone(variant, branch, expected):
    model = _model(variant).eval()
    layers = model.cam_target_layers(branch)
    assert layers == [getattr(model, expected)]
    seen = {}

    def hook(module, inputs, output):
        seen["act"] = output
        output.register_hook(lambda g: seen.__setitem__("grad", g))

    handle = layers[0].register_forward_hook(hook)
    out = model(_images())
    out.branch(branch)[:, 1].sum().backward()
    handle.remove()
    assert seen["act"].shape[-2:] == (2, 2)
    assert seen["grad"].abs().sum() > 0


def test_build_from_backbone_instance_and_resnet_stage():
    backbone = build_backbone("resnet34", width=WIDTH)
    model = build_ssanet(backbone, NUM_CLASSES, SSANetConfig(variant="multiply"))
    assert model.feature_stage == "conv5_x"
    out = model.train()(_images(batch=2))
    assert out.logits.shape == (2, NUM_CLASSES)
    assert not model.backbone.training  # frozen ResNet keeps its BN statistics


# --- configuration errors ---

@pytest.mark.parametrize("field,value,valid", [
    ("variant", "full", "no-attention, no-alpha, alpha, multiply, plus"),
    ("aggregation", "concat", "plus, multiply, none"),
    ("loss", "kd", "ad, ce"),
    ("predict_head", "both", "ssa, fe, mean"),
    ("kl_direction", "forward", "ssa_to_fe, fe_to_ssa"),
])
def test_invalid_config_lists_valid_values(field, value, valid):
    with pytest.raises(ValueError, match=valid):
        SSANetConfig(**{field: value})


def test_other_config_errors():
    with pytest.raises(ValueError, match="gamma"):
        SSANetConfig(gamma=-1)
    with pytest.raises(ValueError, match="kl_temperature"):
        SSANetConfig(kl_temperature=0)
    with pytest.raises(ValueError, match="num_classes"):
        build_ssanet("vgg16", 1, width=WIDTH)
    with pytest.raises(ValueError, match="has no stage"):
        build_ssanet("vgg16", NUM_CLASSES, SSANetConfig(feature_stage="pool9"), width=WIDTH)
    with pytest.raises(TypeError, match="FeatureBackbone"):
        SSANet(nn.Conv2d(3, 8, 3), NUM_CLASSES)
    with pytest.raises(ValueError, match="images of shape"):
        _model("plus")(torch.rand(2, 1, IMAGE, IMAGE))


def test_config_defaults_are_the_papers():
    c = SSANetConfig()
    assert (c.gamma, c.alpha_init, c.image_size, c.hflip) == (0.5, 0.0, 448, True)
    assert (c.optimizer, c.momentum, c.weight_decay, c.lr) == ("sgd", 0.9, 5e-4, 1e-3)
    assert (c.scheduler, c.plateau_factor, c.freeze_backbone, c.loss) == ("plateau", 0.3, True, "ad")
    assert c.train_config_kwargs()["plateau_factor"] == 0.3
    override = c.replace(variant="alpha", aggregation="plus")
    assert override.resolved_aggregation == "plus" and override.resolved_learnable_alpha is True
    assert c.replace(variant="no-attention").resolved_aggregation is None


# --- the paper's numbers ---

def test_paper_tables_match_the_text():
    assert paper.TABLE2["no-attention"] == {"cub": 75.0, "cars": 82.9, "dogs": 77.9}
    assert paper.TABLE2["multiply"] == {"cub": 86.5, "cars": 93.0, "dogs": 90.4}
    assert paper.TABLE2["plus"] == {"cub": 88.4, "cars": 94.2, "dogs": 92.2}
    # Table 3's L_AD row is Table 2's CUB column
    for v in paper.TABLE3_VARIANTS:
        assert paper.TABLE3["ad"][v] == paper.TABLE2[v]["cub"]
    # deltas quoted in sec. 4.5
    claims = paper.CLAIMS_BY_ID
    assert claims["ssa_beats_no_attention"].paper_effect == {"cub": 7.3, "cars": 8.6, "dogs": 9.1}
    assert claims["alpha_beats_no_alpha"].paper_effect == {"cub": 0.4, "cars": 0.5, "dogs": 1.1}
    assert claims["plus_beats_multiply"].paper_effect == {"cub": 1.9, "cars": 1.2, "dogs": 1.8}
    assert claims["self_ad_beats_ce"].paper_effect == {"alpha": 1.3, "multiply": 0.9, "plus": 1.3}
    assert claims["rows_ordered"].paper_effect == {"cub": 13.4, "cars": 11.3, "dogs": 14.3}
    assert all(c.holds_in_paper for c in paper.CLAIMS)
    records = paper.paper_records()
    assert len(records) == 15 + 6
    assert {"table", "row", "dataset", "backbone", "metric", "paper"} <= set(records[0])
    assert paper.paper_value("table3", "ce", "plus") == 87.1
    with pytest.raises(KeyError, match="no entry"):
        paper.paper_value("table2", "plus", "aircraft")
    assert math.isclose(sum(r["paper"] for r in records if r["table"] == "table2"),
                        sum(sum(row.values()) for row in paper.TABLE2.values()))


# --- the notebook's study plan, tables and claims (fgvc_lib.ssanet_study) ---

from types import SimpleNamespace  # noqa: E402

from fgvc_lib import ssanet_study  # noqa: E402
from fgvc_lib.experiment import Run  # noqa: E402
from fgvc_lib.profiles import get_profile  # noqa: E402
from fgvc_lib.reporting import RESULT_COLUMNS, claims_table  # noqa: E402


def test_study_parameters_are_checked_with_clear_messages():
    assert ssanet_study.parse_variants("all") == paper.VARIANTS
    assert ssanet_study.parse_variants("plus, no-attention") == ("no-attention", "plus")  # Table 2's order
    with pytest.raises(ValueError, match="unknown variant.*'full'"):
        ssanet_study.parse_variants("plus,full")
    with pytest.raises(ValueError, match="variant must be"):
        ssanet_study.parse_variants("")
    assert ssanet_study.parse_aggregation("") is None
    with pytest.raises(ValueError, match="plus, multiply, none"):
        ssanet_study.parse_aggregation("concat")
    with pytest.raises(ValueError, match="unknown loss 'kd'"):
        ssanet_study.resolve_study("smoke", loss="kd")
    with pytest.raises(ValueError, match="freeze_backbone must be"):
        ssanet_study.resolve_study("smoke", freeze_backbone="yes")
    with pytest.raises(ValueError, match="lr must be"):
        ssanet_study.resolve_study("smoke", lr=-1.0)
    with pytest.raises(ValueError, match="one data_root per dataset"):
        ssanet_study.resolve_study("smoke", dataset="synthetic,cub", data_root="a,b,c")
    with pytest.raises(ValueError, match="unknown profile"):
        ssanet_study.resolve_study("laptop")


def test_freezing_default_and_refusal_without_pretrained_weights():
    smoke, paper_profile = get_profile("smoke"), get_profile("paper")
    assert ssanet_study.resolve_freeze(None, paper_profile) is True  # sec. 4.1: ImageNet weights fixed
    assert ssanet_study.resolve_freeze(None, smoke) is ssanet_study.FREEZE_DEFAULT["smoke"]
    assert ssanet_study.resolve_freeze(False, paper_profile) is False
    random_init = smoke.replace(name="random", pretrained=None)
    assert ssanet_study.resolve_freeze(None, random_init) is False
    with pytest.raises(ValueError, match="no pretrained extractor"):
        ssanet_study.resolve_freeze(True, random_init)


def test_study_plans_table2_and_table3_runs_without_repeats():
    study = ssanet_study.resolve_study("smoke", variant="all", loss="ad")
    assert study.run_names == ["no-attention", "no-alpha/ad", "alpha/ad", "multiply/ad", "plus/ad",
                               "alpha/ce", "multiply/ce", "plus/ce"]
    assert study.table3_runs[("plus", "ad")] == study.table2_runs["plus"] == "plus/ad"
    c = study.config("alpha/ce")
    assert (c.variant, c.loss, c.resolved_aggregation, c.resolved_learnable_alpha) == ("alpha", "ce", "none", True)
    assert study.config("no-attention").attention is False
    assert study.lr == 1e-3 and study.train_config("plus/ad", study.settings[0]).plateau_factor == 0.3
    # the aggregation parameter changes only the two ambiguous rows
    other = ssanet_study.resolve_study("smoke", aggregation="plus", variant="alpha,multiply", loss="ce")
    assert other.config("alpha/ce").resolved_aggregation == "plus"
    assert other.config("multiply/ce").resolved_aggregation == "multiply"
    assert other.run_names == ["alpha/ce", "multiply/ce", "alpha/ad", "multiply/ad"]
    # a different recipe gives a different checkpoint key; the same gives the same
    s = study.settings[0]
    assert study.key("plus/ad", s) == study.key("plus/ad", s) != study.key("plus/ce", s)
    assert ssanet_study.resolve_study("smoke", lr=0.01).key("plus/ad", s) != study.key("plus/ad", s)
    with pytest.raises(ValueError, match="unknown run"):
        study.config("plus")
    plan = study.plan_table()
    assert list(plan.index) == study.run_names and plan.loc["no-attention", "SSA block"] == "no"


def _fake_runs(study, accs, seeds=(0, 1), n=20):
    """Runs whose heads score the given accuracies (fraction) exactly; accs[run][head] per seed."""
    runs = {}
    for name in study.run_names:
        per_seed = []
        for k, seed in enumerate(seeds):
            targets = torch.arange(n) % 4
            outputs = {"targets": targets}
            for head, values in accs[name].items():
                right = round(values[k] * n)
                logits = torch.zeros(n, 4)
                logits[torch.arange(n), (targets + (torch.arange(n) >= right).long()) % 4] = 1.0
                outputs[head] = logits
            outputs["final"] = outputs.get("ssa", outputs["fe"])
            model = SimpleNamespace(ssa=SimpleNamespace(alpha=torch.tensor(0.1 * (k + 1))))
            per_seed.append(Run(name, seed, model, None, outputs))
        runs[name] = per_seed
    return runs


def test_tables_and_claims_from_runs():
    study = ssanet_study.resolve_study("smoke", seeds="0,1")
    accs = {"no-attention": {"fe": [0.50, 0.40]}}
    base = {"no-alpha": 0.60, "alpha": 0.65, "multiply": 0.70, "plus": 0.80}
    for row, acc in base.items():
        accs[f"{row}/ad"] = {"ssa": [acc, acc + 0.05], "fe": [acc - 0.1, acc - 0.05]}
        if row != "no-alpha":
            accs[f"{row}/ce"] = {"ssa": [acc - 0.05, acc - 0.05], "fe": [acc - 0.05, acc]}
    runs = {"synthetic": _fake_runs(study, accs)}

    t2 = ssanet_study.table2(study, runs)
    assert list(t2.columns) == RESULT_COLUMNS and len(t2) == 1 + 4 * 2
    plus = t2[(t2["row"] == "plus") & (t2["metric"] == "top1/ssa_head")].iloc[0]
    assert plus["reproduced"] == pytest.approx(82.5) and plus["paper"] == 88.4  # CUB column on synthetic
    assert t2[(t2["row"] == "plus") & (t2["metric"] == "top1/fe_head")]["paper"].isna().all()
    assert t2[t2["row"] == "no-attention"].iloc[0]["paper"] == 75.0
    view = ssanet_study.heads_view(t2)
    assert list(view.columns) == ["paper", "ours, ssa head", "ours, fe head", "n_seeds", "comparable"]
    assert not view["comparable"].any()

    t3 = ssanet_study.table3(study, runs)
    assert len(t3) == 3 * 2 * 2
    ce = t3[(t3["row"] == "plus/L_CE") & (t3["metric"] == "top1/ssa_head")].iloc[0]
    assert ce["reproduced"] == pytest.approx(75.0) and ce["paper"] == 87.1

    alphas = ssanet_study.alpha_table(study, runs)
    assert set(alphas["row"]) == {"alpha/ad", "multiply/ad", "plus/ad", "alpha/ce", "multiply/ce", "plus/ce"}
    assert alphas["reproduced"].iloc[0] == pytest.approx(0.15)

    entries, skipped = ssanet_study.claims(study, runs)
    assert skipped == []
    table = claims_table(entries).set_index("claim")
    ssa = table.loc["SSA beats no attention (no-alpha vs no-attention) [synthetic]"]
    assert ssa["paper_effect"] == 7.3 and ssa["our_effect"] == pytest.approx(17.5)  # (60-50 + 65-40) / 2
    assert ssa["held"] == "yes"
    ad = table.loc["self-attention distillation beats plain CE (plus) [synthetic]"]
    assert ad["paper_effect"] == 1.3 and ad["our_effect"] == pytest.approx(7.5)

    # a subset of rows skips the claims it cannot test
    few = ssanet_study.resolve_study("smoke", seeds="0,1", variant="no-attention,plus")
    entries, skipped = ssanet_study.claims(few, {"synthetic": _fake_runs(few, accs)})
    assert [e["claim"].split(" [")[0] for e in entries] == [
        "full SSANet beats no attention (plus vs no-attention)", "self-attention distillation beats plain CE (plus)"]
    assert len(skipped) == 5 and all("not" in s for s in skipped)


def test_localization_claims_use_the_reported_heads():
    study = ssanet_study.resolve_study("smoke", seeds="0,1")
    scores = {"plus (ssa head)": [{"part_pointing": 0.5, "part_chance": 0.1}, {"part_pointing": 0.6, "part_chance": 0.1}],
              "no-attention (fe head)": [{"part_pointing": 0.2, "part_chance": 0.1}, {"part_pointing": 0.4, "part_chance": 0.1}]}
    table = claims_table(ssanet_study.localization_claims(study, "synthetic", scores))
    assert table["our_effect"].tolist() == pytest.approx([45.0, 25.0])
    assert table["held"].tolist() == ["yes", "yes"]
    assert ssanet_study.localization_claims(study, "cub", {"plus (ssa head)": [{"object_pointing": 1.0}]}) == []


def test_localization_view_keeps_row_order_and_metric_order():
    study = ssanet_study.resolve_study("smoke", seeds="0,1")
    scores = {"plus (ssa head)": [{"object_pointing": 1.0, "part_pointing": 0.5}, {"object_pointing": 0.5, "part_pointing": 0.5}],
              "no-attention (fe head)": [{"object_pointing": 0.0, "part_pointing": 0.25}] * 2}
    view = ssanet_study.localization_view(ssanet_study.localization_table(study, "synthetic", scores))
    assert list(view.index.get_level_values("row")) == ["plus (ssa head)", "no-attention (fe head)"]
    assert list(view.columns) == ["part_pointing", "object_pointing"]
    assert view.loc[("synthetic", "plus (ssa head)"), "object_pointing"] == "0.75 ± 0.35"
