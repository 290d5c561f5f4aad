"""Unit tests of SSANet (fgvc_lib.models.ssanet, .ssa_module) and its paper numbers (fgvc_lib.papers.ssanet)."""
from __future__ import annotations

import ast
import dataclasses
import math
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.backbones import build_backbone
from fgvc_lib.models import frozen_features
from fgvc_lib.models.frozen_features import FrozenFeatureMemo, module_state_token, weights_fingerprint
from fgvc_lib.models.output import ModelOutput
from fgvc_lib.models.ssa_module import SSANetSelfAttention
from fgvc_lib.models.ssanet import (VARIANTS, ClassifierHead, SSANet, SSANetConfig, SSANetLoss, build_ssanet,
                                    kl_divergence, ssanet_loss)
from fgvc_lib.papers import ssanet as paper
from fgvc_lib.profiles import get_profile
from fgvc_lib.reporting import RESULT_COLUMNS, claims_table, read_table
from fgvc_lib.study import Accuracy, Printed, Run, Study
from fgvc_lib.study.jobs import RunRecord
from fgvc_lib.study.parameters import check_declared, resolve
from fgvc_lib.study.runner import TOP1, DataBundle

torch.set_num_threads(1)

NUM_CLASSES = 5
IMAGE = 64  # pool5 of VGG-16 is 2x2 here
WIDTH = 0.125


DEFAULT_FEATURE_FOLDER = frozen_features.default_folder


@pytest.fixture(autouse=True)
def feature_cache(tmp_path, monkeypatch):
    """The feature memo's disk files of every test go to a folder of the test's own, never to the shared
    cache (a model built with ``feature_memo=True`` writes there when it changes mode)."""
    folder = tmp_path / "frozen_features"
    monkeypatch.setattr(frozen_features, "default_folder", lambda: folder)
    return folder


def _images(batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, IMAGE, IMAGE, generator=g)


def _model(variant="plus", feature_memo=True, **changes):
    torch.manual_seed(0)
    config = SSANetConfig(variant=variant, **changes)
    return build_ssanet("vgg16", NUM_CLASSES, config, feature_memo=feature_memo, width=WIDTH)


def _trainable(model):
    """The parameters an optimiser gets (the frozen backbone's are not)."""
    return [p for p in model.parameters() if p.requires_grad]


def _output(fe, ssa=None):
    branches = {"fe": fe} if ssa is None else {"fe": fe, "ssa": ssa}
    return ModelOutput(ssa if ssa is not None else fe, {"branch_logits": branches})


# --- SSA block (sec. 3.2, Eqs. 1-2) ---

@pytest.mark.parametrize("aggregation", ["plus", "multiply", "none"])
def test_ssa_shapes_and_attention_rows_sum_to_one(aggregation):
    torch.manual_seed(0)
    block = SSANetSelfAttention(16, aggregation=aggregation, alpha_init=0.3)
    x = torch.randn(2, 16, 3, 5)
    out, s = block(x, return_attention=True)
    assert out.shape == x.shape
    assert s.shape == (2, 15, 15)
    assert (s >= 0).all()
    torch.testing.assert_close(s.sum(dim=-1), torch.ones(2, 15))
    assert block(x).shape == x.shape  # plain call returns only H


def test_ssa_matches_the_equations_elementwise():
    torch.manual_seed(1)
    block = SSANetSelfAttention(4, aggregation="plus", alpha_init=0.7)
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
    mul = SSANetSelfAttention(4, aggregation="multiply", alpha_init=0.7)
    mul.load_state_dict(block.state_dict())
    context = out - x  # alpha * S C from the plus block
    torch.testing.assert_close(mul(x), context * x)  # Eq. 2


def test_ssa_plus_with_alpha_zero_is_identity_and_multiply_is_zero():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 3, 3)
    plus = SSANetSelfAttention(8, aggregation="plus")
    assert plus.alpha.item() == 0.0
    assert torch.equal(plus(x), x)
    mul = SSANetSelfAttention(8, aggregation="multiply")
    assert torch.count_nonzero(mul(x)) == 0


@pytest.mark.parametrize("aggregation", ["plus", "multiply", "none"])
def test_gradient_reaches_alpha_at_initialisation(aggregation):
    torch.manual_seed(0)
    block = SSANetSelfAttention(8, aggregation=aggregation)
    x = torch.rand(2, 8, 3, 3)
    (block(x) * torch.randn(2, 8, 3, 3)).sum().backward()
    assert isinstance(block.alpha, nn.Parameter)
    assert block.alpha.grad is not None and block.alpha.grad.abs().item() > 0


def test_fixed_alpha_is_one_and_not_trainable():
    torch.manual_seed(0)
    block = SSANetSelfAttention(8, aggregation="none", learnable_alpha=False)
    assert not isinstance(block.alpha, nn.Parameter) and block.alpha.item() == 1.0
    assert "alpha" not in dict(block.named_parameters())
    x = torch.randn(2, 8, 2, 2)
    out, s = block(x, return_attention=True)
    c = block.conv_c(x).flatten(2)
    torch.testing.assert_close(out.flatten(2), torch.bmm(c, s.transpose(1, 2)))  # H = S C


def test_qk_reduction_shrinks_a_and_b_only():
    block = SSANetSelfAttention(64, qk_reduction=8)
    assert block.conv_a.out_channels == block.conv_b.out_channels == 8
    assert block.conv_c.out_channels == 64
    default = SSANetSelfAttention(64)
    assert default.conv_a.out_channels == 64  # the paper: A, B, C have K channels


def test_ssa_rejects_bad_arguments():
    with pytest.raises(ValueError, match="plus, multiply, none"):
        SSANetSelfAttention(8, aggregation="concat")
    with pytest.raises(ValueError, match="qk_reduction"):
        SSANetSelfAttention(8, qk_reduction=0)
    with pytest.raises(ValueError, match="feature map"):
        SSANetSelfAttention(8)(torch.randn(2, 4, 3, 3))


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


def test_other_reading_of_eq4_puts_gamma_ce_on_the_fe_head():
    torch.manual_seed(0)
    y = torch.tensor([0, 1, 2, 3])
    fe = torch.randn(4, NUM_CLASSES, requires_grad=True)
    ssa = torch.randn(4, NUM_CLASSES, requires_grad=True)
    loss_fn = ssanet_loss(SSANetConfig(gamma_ce_head="fe"))
    terms = loss_fn(_output(fe, ssa), y)
    assert tuple(terms) == loss_fn.term_names == ("ce_ssa", "kl_ssa_fe", "ce_fe_gamma")
    # L = CE(y, y_SSA) + KL(p_SSA || p_FE) + gamma CE(y, y_FE), written out with log-softmax by hand
    log_p, log_q = ssa.log_softmax(1), fe.log_softmax(1)
    ce_ssa = -log_p[torch.arange(4), y].mean()
    ce_fe = -log_q[torch.arange(4), y].mean()
    kl = (log_p.exp() * (log_p - log_q)).sum(1).mean()
    torch.testing.assert_close(terms["ce_fe_gamma"], 0.5 * ce_fe)
    torch.testing.assert_close(sum(terms.values()), ce_ssa + kl + 0.5 * ce_fe)
    # the FE head now learns from the labels too: its gradient is no longer the KL's alone
    sum(terms.values()).backward()
    total = fe.grad.clone()
    fe.grad = None
    kl_divergence(ssa, fe).backward()
    assert not torch.allclose(total, fe.grad)
    torch.testing.assert_close(total - fe.grad, 0.5 * (log_q.exp() - F.one_hot(y, NUM_CLASSES)).detach() / 4)
    # the reading does not touch L_CE (Table 3) or no-attention
    assert ssanet_loss(SSANetConfig(loss="ce", gamma_ce_head="fe")).term_names == ("ce_ssa", "ce_fe")
    assert ssanet_loss(SSANetConfig(variant="no-attention", gamma_ce_head="fe")).term_names == ("ce_fe",)


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
    grads = [p.grad for p in _trainable(model)]
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


@pytest.mark.parametrize("variant", ["alpha", "multiply", "plus"])
@pytest.mark.parametrize("loss", ["ad", "ce"])
def test_alpha_gets_a_gradient_and_moves_in_a_training_step(variant, loss):
    """Sec. 3.2: alpha is learnable and starts at 0; one SGD step of the paper's recipe must move it."""
    model = _model(variant, loss=loss).train()
    assert isinstance(model.ssa.alpha, nn.Parameter) and model.ssa.alpha.item() == 0.0
    assert any(p is model.ssa.alpha for p in _trainable(model))
    config = model.config
    optimizer = torch.optim.SGD(_trainable(model), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    optimizer.zero_grad()
    out = model(_images(batch=4))
    sum(ssanet_loss(config)(out, torch.tensor([0, 1, 2, 3])).values()).backward()
    grad = model.ssa.alpha.grad
    assert grad is not None and torch.isfinite(grad) and grad.abs().item() > 0
    optimizer.step()
    # SGD from alpha = 0 (decay of 0 is 0): alpha = -lr * grad exactly
    torch.testing.assert_close(model.ssa.alpha.detach(), -config.lr * grad)
    assert model.ssa.alpha.item() != 0.0


def _fe_head_logits_and_grads(model, images, targets):
    model.zero_grad(set_to_none=True)
    out = model(images)
    sum(ssanet_loss(model.config)(out, targets).values()).backward()
    grads = {name: p.grad.clone() for name, p in model.fe_head.named_parameters()}
    return out.branch("fe").detach(), grads


@pytest.mark.parametrize("loss", ["ce", "ad"])
def test_fe_head_under_cross_entropy_is_independent_of_the_ssa_branch(loss):
    """Table 3's L_CE trains the two heads apart: changing the SSA block and head leaves the FE head's
    logits and the gradient of the loss on the FE head's weights unchanged. Under L_AD (Eq. 4's KL)
    the same change reaches the FE head's gradient, which shows the check can fail."""
    model = _model("plus", loss=loss).train()
    images, targets = _images(batch=4), torch.tensor([0, 1, 2, 3])
    logits, grads = _fe_head_logits_and_grads(model, images, targets)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in list(model.ssa.parameters()) + list(model.ssa_head.parameters()):
            p.add_(torch.randn(p.shape, generator=generator))
    logits2, grads2 = _fe_head_logits_and_grads(model, images, targets)
    assert torch.equal(logits, logits2)  # the FE head never reads the SSA branch
    if loss == "ce":
        assert all(torch.equal(grads[name], grads2[name]) for name in grads)
    else:
        assert not all(torch.allclose(grads[name], grads2[name]) for name in grads)


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
    assert all(p.requires_grad for p in _trainable(model))
    n_backbone = sum(1 for _ in model.backbone.parameters())
    assert len(_trainable(model)) == sum(1 for _ in model.parameters()) - n_backbone


def test_unfrozen_backbone_trains():
    model = _model("plus", freeze_backbone=False)
    model.train()
    assert model.backbone.training
    out = model(_images())
    sum(ssanet_loss(model.config)(out, torch.tensor([0, 1, 2])).values()).backward()
    assert all(p.grad is not None for p in model.backbone.parameters())
    model.set_backbone_frozen(True)
    assert not model.backbone.training and not any(p.requires_grad for p in model.backbone.parameters())


# --- the memo of the frozen extractor's features (fgvc_lib.models.frozen_features) ---

def _pool5(model, images):
    """F computed straight from the backbone, without the model or its memo."""
    with torch.no_grad():
        return model.backbone(images.contiguous(), ("pool5",))["pool5"]


def _count_extractor_calls(model):
    calls = []
    extract = model._extract
    model._extract = lambda images: calls.append(images.shape[0]) or extract(images)
    return calls


def test_memo_returns_exactly_what_the_extractor_computes():
    model = _model("plus").eval()
    memo = model.feature_memo
    assert isinstance(memo, FrozenFeatureMemo) and len(memo) == 0
    calls = _count_extractor_calls(model)
    images = _images(batch=4)
    first = model.features(images)
    assert torch.equal(first, _pool5(model, images)) and calls == [4] and len(memo) == 4
    second = model.features(images)                      # every image a hit: the extractor does not run
    assert torch.equal(second, first) and calls == [4] and (memo.hits, memo.misses) == (4, 4)
    # a batch mixing seen and new images runs the extractor on the new ones only
    mixed = torch.cat([images[:2], _images(batch=3, seed=1)[:2]])
    out = model.features(mixed)
    assert calls == [4, 2]
    assert torch.equal(out[:2], first[:2])
    assert torch.equal(out, _pool5(model, mixed))        # any batch of two or more gives the same bits
    # and the model's logits are those of a model without a memo
    plain = _model("plus", feature_memo=False).eval()
    with torch.no_grad():
        assert torch.equal(model(images).logits, plain(images).logits)


def test_a_flipped_image_is_its_own_entry():
    model = _model("plus").eval()
    images = _images(batch=2)
    flipped = images.flip(-1)                            # what RandomHorizontalFlip hands the model
    model.features(images)
    out = model.features(flipped)
    assert len(model.feature_memo) == 4 and model.feature_memo.hits == 0
    assert torch.equal(out, _pool5(model, flipped))
    assert not torch.equal(out, _pool5(model, images))


def test_memo_serves_train_and_eval_mode_alike_and_never_stores_gradients():
    model = _model("plus").train()                       # the frozen extractor stays in eval mode
    calls = _count_extractor_calls(model)
    images, targets = _images(batch=4), torch.tensor([0, 1, 2, 3])
    for _ in range(2):                                   # the second step is served by the memo
        out = model(images)
        sum(ssanet_loss(model.config)(out, targets).values()).backward()
    assert calls == [4] and model.feature_memo.hits == 4
    assert all(p.grad is not None for p in model.ssa_head.parameters())
    assert all(p.grad is None for p in model.backbone.parameters())
    stored = list(model.feature_memo._entries.values())
    assert all(not t.requires_grad and t.grad_fn is None for t in stored)
    feats = model.features(images)
    assert feats.requires_grad and feats.is_leaf          # a leaf for Grad-CAM hooks, cut from the memo
    with torch.no_grad():
        assert not model.features(images).requires_grad
    model.eval()
    with torch.no_grad():
        model(images)
    assert calls == [4]                                   # eval mode reads the same entries


def test_unfreezing_bypasses_and_empties_the_memo():
    model = _model("plus").eval()
    images = _images(batch=3)
    model.features(images)
    assert len(model.feature_memo) == 3
    model.set_backbone_frozen(False)
    assert len(model.feature_memo) == 0
    calls = _count_extractor_calls(model)
    model.train()
    out = model(images)
    sum(ssanet_loss(model.config)(out, torch.tensor([0, 1, 2])).values()).backward()
    assert calls == [3] and len(model.feature_memo) == 0 and model.feature_memo.hits == 0
    assert all(p.grad is not None for p in model.backbone.parameters())  # the extractor trains again
    model.eval()                                         # in eval mode too, an unfrozen extractor always runs
    with torch.no_grad():
        model(images)
        model(images)
    assert calls == [3, 3, 3] and len(model.feature_memo) == 0
    model.set_backbone_frozen(True)
    model.features(images)
    model.features(images)
    assert calls == [3, 3, 3, 3] and model.feature_memo.hits == 3


def test_memo_forgets_when_the_extractor_changes_and_steps_aside_when_it_must():
    model = _model("plus").eval()
    calls = _count_extractor_calls(model)
    images = _images(batch=2)
    model.features(images)
    token = module_state_token(model.backbone)
    with torch.no_grad():
        next(model.backbone.parameters()).mul_(1.5)     # new weights (e.g. a checkpoint loaded)
    assert module_state_token(model.backbone) != token
    out = model.features(images)
    assert calls == [2, 2] and torch.equal(out, _pool5(model, images))
    model.load_state_dict(_model("plus").state_dict())
    assert torch.equal(model.features(images), _pool5(model, images)) and calls == [2, 2, 2]
    # an extractor put in training mode (batch statistics) is never served from the memo
    model.backbone.train()
    model.features(images)
    model.features(images)
    assert calls == [2, 2, 2, 2, 2]
    model.backbone.eval()
    # nor is one with a forward hook, which a hit would skip
    seen = []
    conv = next(m for m in model.backbone.modules() if isinstance(m, nn.Conv2d))
    handle = conv.register_forward_hook(lambda *args: seen.append(1))
    model.features(images)
    model.features(images)
    handle.remove()
    assert len(seen) == 2
    off = _model("plus", feature_memo=False).eval()
    assert off.feature_memo is None
    off_calls = _count_extractor_calls(off)
    off.features(images)
    off.features(images)
    assert off_calls == [2, 2]
    with pytest.raises(TypeError, match="feature_memo"):
        _model("plus", feature_memo="yes")
    own = FrozenFeatureMemo(max_bytes=10 ** 6)
    assert _model("plus", feature_memo=own).feature_memo is own   # an empty memo given is the one used


def test_memo_keys_bound_and_copies():
    import copy
    import pickle

    calls = []

    def extractor(x):
        calls.append(x.shape[0])
        return x.sum(dim=1, keepdim=True) * 2.0

    images = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    entry_bytes = 1 * 4 * 4 * 4
    memo = FrozenFeatureMemo(max_bytes=2 * entry_bytes)
    torch.testing.assert_close(memo(extractor, images), images.sum(1, keepdim=True) * 2.0)
    assert len(memo) == 2 and memo.bytes == 2 * entry_bytes          # the first image was evicted (LRU)
    memo(extractor, images[2:])
    assert calls == [3] and memo.hits == 1
    memo(extractor, images[:1])
    assert calls == [3, 2]                               # a lone miss runs as a pair (see the next test)
    # the same values in another dtype are another entry; another token empties the memo
    memo = FrozenFeatureMemo()
    memo(extractor, images)
    memo(extractor, images.double())
    assert calls[-1] == 3 and len(memo) == 6
    memo(extractor, images, token=("new weights",))
    assert calls[-1] == 3 and len(memo) == 3
    # never copied or saved with a model; the settings are
    for clone in (copy.deepcopy(memo), pickle.loads(pickle.dumps(memo))):
        assert len(clone) == 0 and clone.bytes == 0 and clone.max_bytes == memo.max_bytes
    model = _model("plus").eval()
    model.features(_images(batch=2))
    assert len(copy.deepcopy(model).feature_memo) == 0 and len(model.feature_memo) == 2
    # where it applies: its devices only, and max_bytes=0 turns it off
    backbone = model.backbone
    assert memo.applies(backbone, images) and not FrozenFeatureMemo(devices=("cuda",)).applies(backbone, images)
    assert not FrozenFeatureMemo(max_bytes=0).applies(backbone, images)
    with pytest.raises(ValueError, match="max_bytes"):
        FrozenFeatureMemo(max_bytes=-1)
    with pytest.raises(ValueError, match="devices"):
        FrozenFeatureMemo(devices="cpu")


def test_a_lone_miss_is_computed_as_in_a_batch():
    """A batch of one image takes another convolution path on CPU (last bits differ); the memo runs a
    lone miss as a pair, so an entry is the same bits whatever batch it was computed in."""
    model = _model("plus").eval()
    images = _images(batch=4)
    batched = _pool5(model, images)
    for i in range(4):
        alone = _model("plus").eval()                    # an empty memo: image i is a miss on its own
        assert torch.equal(alone.features(images[i:i + 1])[0], batched[i])
    mixed = model.features(images[:3])
    assert torch.equal(model.features(images)[3], batched[3]) and torch.equal(mixed, batched[:3])


# --- the memo shared on disk, across runs and processes ---

def _model_seeded(seed, **changes):
    """A model whose extractor weights depend on ``seed`` (``_model`` always uses seed 0)."""
    torch.manual_seed(seed)
    return build_ssanet("vgg16", NUM_CLASSES, SSANetConfig(variant="plus", **changes), width=WIDTH).eval()


def test_default_folder_is_under_the_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FGVC_CACHE_DIR", str(tmp_path / "cache"))
    assert DEFAULT_FEATURE_FOLDER() == tmp_path / "cache" / "frozen_features"
    assert FrozenFeatureMemo().folder == frozen_features.default_folder()  # (this test's own folder)
    assert FrozenFeatureMemo(disk=False).folder is None and FrozenFeatureMemo(disk=tmp_path).folder == tmp_path


def test_a_second_model_reads_the_first_ones_features_from_disk(feature_cache):
    first = _model("plus").eval()
    images = _images(batch=4)
    expected = first.features(images)
    assert not feature_cache.exists()                    # nothing written before a change of mode
    first.train()                                        # the engine's start of an epoch: the memo is saved
    files = sorted(feature_cache.glob("*.pt"))
    assert [f.name for f in files] == [f"{first.extractor_fingerprint()}-float32-3x{IMAGE}x{IMAGE}.pt"]
    assert first.feature_memo.stats()["unsaved"] == 0 and not first.feature_memo.save()  # nothing new: no write

    second = _model("plus").eval()                       # another run: same weights, empty memory
    calls = _count_extractor_calls(second)
    out = second.features(images)
    assert calls == [] and second.feature_memo.loaded == 4 and second.feature_memo.hits == 4
    assert torch.equal(out, expected)
    with torch.no_grad():
        logits = second(images).logits
    assert torch.equal(logits, _model("plus", feature_memo=False).eval()(images).logits)
    second.features(images.flip(-1))                     # an image not on disk is still computed
    assert calls == [4]
    second.eval()
    third = _model("plus").eval()
    third_calls = _count_extractor_calls(third)
    third.features(torch.cat([images, images.flip(-1)]))
    assert third_calls == [] and third.feature_memo.loaded == 8

    memory_only = _model("plus", feature_memo=FrozenFeatureMemo(disk=False)).eval()
    memory_calls = _count_extractor_calls(memory_only)
    memory_only.features(images)
    memory_only.train()
    assert memory_calls == [4] and memory_only.feature_memo.loaded == 0


def test_other_weights_or_another_stage_use_another_file(feature_cache):
    images = _images(batch=2)
    a, b = _model_seeded(0), _model_seeded(1)
    assert a.extractor_fingerprint() != b.extractor_fingerprint()
    assert a.extractor_fingerprint() == _model_seeded(0).extractor_fingerprint()  # the weights' bytes, not ids
    pool4 = _model_seeded(0, feature_stage="pool4")
    assert pool4.extractor_fingerprint() != a.extractor_fingerprint()
    for model in (a, b, pool4):
        model.features(images)
        model.train()
    assert len(list(feature_cache.glob("*.pt"))) == 3
    # a model with b's weights reads b's file, not a's
    again = _model_seeded(1)
    calls = _count_extractor_calls(again)
    assert torch.equal(again.features(images), b.features(images)) and calls == []
    assert not torch.equal(b.features(images), a.features(images))
    # the fingerprint follows the weights' bytes
    token = weights_fingerprint(a.backbone)
    with torch.no_grad():
        next(a.backbone.parameters()).view(-1)[0] += 1.0
    assert weights_fingerprint(a.backbone) != token


def test_weights_changed_behind_the_token_are_never_saved(feature_cache):
    model = _model("plus").eval()
    model.features(_images(batch=2))
    with torch.no_grad():
        next(model.backbone.parameters()).data.mul_(2.0)  # through .data: the version counter does not move
    with pytest.warns(RuntimeWarning, match="changed without its state token"):
        model.train()
    assert not list(feature_cache.glob("*.pt")) and len(model.feature_memo) == 0


def test_a_corrupt_or_foreign_cache_file_is_ignored_with_a_warning(feature_cache):
    images = _images(batch=3)
    model = _model("plus").eval()
    expected = _pool5(model, images)
    path = feature_cache / f"{model.extractor_fingerprint()}-float32-3x{IMAGE}x{IMAGE}.pt"
    feature_cache.mkdir(parents=True)
    for content, message in ((b"not a torch file", "unreadable"), (b"", "unreadable"),
                             ({"format": "something else"}, "does not hold"),
                             ({"format": frozen_features.DISK_FORMAT, "fingerprint": "0" * 32, "context": "x",
                               "keys": [], "values": torch.zeros(0)}, "does not hold")):
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        fresh = _model("plus").eval()
        calls = _count_extractor_calls(fresh)
        with pytest.warns(RuntimeWarning, match=message):
            out = fresh.features(images)
        assert calls == [3] and torch.equal(out, expected)  # computed again, never a crash
    fresh.train()                                          # the next save replaces the bad file
    reader = _model("plus").eval()
    calls = _count_extractor_calls(reader)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(reader.features(images), expected)
    assert calls == []
    # a file truncated by a killed writer (os.replace makes this rare, a full disk can still do it)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="unreadable"):
        _model("plus").eval().features(images)


def test_two_writers_merge_and_wait_for_each_other(feature_cache):
    import threading

    from fgvc_lib.locks import exclusive

    seen, new = _images(batch=3, seed=0), _images(batch=3, seed=1)
    a, b = _model("plus").eval(), _model("plus").eval()
    a.features(seen)                                      # two runs started on an empty cache:
    b.features(new)                                       # each computed its own images
    assert a.feature_memo.save() and b.feature_memo.save()  # b merges what a wrote, it does not replace it
    reader = _model("plus").eval()
    calls = _count_extractor_calls(reader)
    reader.features(torch.cat([seen, new]))
    assert calls == [] and reader.feature_memo.loaded == 6

    # a writer waits while another holds the lock, then merges what that one wrote
    c, d = _model("plus").eval(), _model("plus").eval()
    third, fourth = _images(batch=2, seed=2), _images(batch=2, seed=3)
    c.features(third)
    d.features(fourth)
    with exclusive(feature_cache / frozen_features.LOCK_NAME):
        writer = threading.Thread(target=d.feature_memo.save)
        writer.start()
        writer.join(timeout=1.0)
        assert writer.is_alive()                          # blocked on the lock
    writer.join(timeout=30)
    assert not writer.is_alive()
    c.feature_memo.save()                                 # after d: merges d's entries too
    reader = _model("plus").eval()
    calls = _count_extractor_calls(reader)
    reader.features(torch.cat([seen, new, third, fourth]))
    assert calls == [] and reader.feature_memo.loaded == 10
    assert not list(feature_cache.glob("*.tmp")) and not list(feature_cache.glob(".*.tmp"))  # no leftovers


def test_disk_budgets_keep_the_most_recent_entries_and_files(tmp_path):
    def extractor(x):
        return x.sum(dim=1, keepdim=True)

    entry = 1 * 4 * 4 * 4                                # bytes of one (1, 4, 4) float32 entry
    images = torch.rand(5, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    memo = FrozenFeatureMemo(disk=tmp_path, disk_max_bytes=3 * entry)
    memo(extractor, images, token=("w",), fingerprint=lambda: "toy")
    memo(extractor, images[1:2], token=("w",), fingerprint=lambda: "toy")  # image 1 used again: most recent
    assert memo.save()
    (path,) = tmp_path.glob("toy-*.pt")
    assert path.name == "toy-float32-3x4x4.pt"
    kept = torch.load(path, weights_only=True)
    assert len(kept["keys"]) == 3 and kept["values"].shape == (3, 1, 4, 4)  # the file holds 3 entries at most
    reader = FrozenFeatureMemo(disk=tmp_path)
    calls = []
    reader(lambda x: calls.append(x.shape[0]) or extractor(x), images, token=("w",), fingerprint=lambda: "toy")
    assert calls == [2] and reader.loaded == 3            # images 3, 4 and 1 (the most recent) came from disk
    # no fingerprint: memory only; the folder keeps its most recently used files within its budget
    plain = FrozenFeatureMemo(disk=tmp_path)
    plain(extractor, images, token=("w",))
    assert not plain.save()
    no_token = FrozenFeatureMemo(disk=tmp_path)                   # a fingerprint without a state token
    no_token(extractor, images[:2], fingerprint=lambda: "tokenless")
    assert no_token.save() and (tmp_path / "tokenless-float32-3x4x4.pt").is_file()
    (tmp_path / "tokenless-float32-3x4x4.pt").unlink()
    size = path.stat().st_size
    small = FrozenFeatureMemo(disk=tmp_path, folder_max_bytes=2 * size)
    for name in ("a", "b", "c"):
        small(extractor, images[:3], token=(name,), fingerprint=lambda name=name: name)
        small.save()
        time.sleep(0.01)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["b-float32-3x4x4.pt", "c-float32-3x4x4.pt"]
    with pytest.raises(ValueError, match="disk_max_bytes"):
        FrozenFeatureMemo(disk_max_bytes=-1)
    with pytest.raises(ValueError, match="disk must be"):
        FrozenFeatureMemo(disk=3)


def _smoke_run(variant, seed, epochs=5, feature_memo=True):
    """A tiny training run from the smoke profile's pieces (its data, pretrained slim VGG-16 and recipe),
    as a worker would do it; returns the test logits of every head, and the extractor's batch sizes."""
    from fgvc_lib.engine import TrainConfig, collect_outputs, fit

    study = _study()
    train_loader, test_loader = study.data_spec("synthetic").loaders()
    spec = study.variants[variant]
    torch.manual_seed(seed)
    model = spec.model(study.backbone_spec.build(), len(train_loader.dataset.classes), feature_memo=feature_memo)
    calls = []
    extract = model._extract
    model._extract = lambda x: calls.append((x.shape[0], x.shape[0] == 2 and torch.equal(x[0], x[1]))) or extract(x)
    config = TrainConfig(**{**spec.train.__dict__, "epochs": epochs, "seed": seed, "max_batches": 3,
                            "device": "cpu", "progress": False})
    fit(model, train_loader, spec.loss, config)
    return collect_outputs(model, test_loader), calls


def test_training_with_a_warm_disk_cache_gives_the_same_numbers_as_with_a_cold_one(feature_cache, monkeypatch):
    """Run (plus-ad, seed 1) trained on an empty cache, and again after another run (seed 0, other batch
    orders) filled it: the same logits, bit for bit, and the warm run barely runs the extractor."""
    cold, cold_calls = _smoke_run("plus-ad", seed=1)
    assert any(lone for _, lone in cold_calls)           # a lone miss occurred (computed as a pair)
    monkeypatch.setattr(frozen_features, "default_folder", lambda: feature_cache.parent / "second")
    _, filler_calls = _smoke_run("plus-ce", seed=0)
    warm, warm_calls = _smoke_run("plus-ad", seed=1)
    assert set(cold) == set(warm) == {"final", "fe", "ssa", "targets"}
    for name in cold:
        assert torch.equal(cold[name], warm[name]), name
    assert sum(n for n, _ in warm_calls) < sum(n for n, _ in cold_calls) / 2
    assert sum(n for n, _ in warm_calls) + sum(n for n, _ in filler_calls) > 0
    # and the memo changes nothing at all: the same run without it (no batch of one in this loader)
    plain, _ = _smoke_run("plus-ad", seed=1, feature_memo=False)
    assert all(torch.equal(cold[name], plain[name]) for name in cold)


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
    ("gamma_ce_head", "both", "ssa, fe"),
    ("head_activation", "gelu", "relu, none"),
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
    assert (c.head_hidden, c.kl_temperature, c.gamma_ce_head) == (1024, 1.0, "ssa")  # sec. 3.4; Eq. 4: T = 1
    assert c.head_activation == "relu"  # our choice where sec. 3.4 names no activation
    assert c.train_config_kwargs()["plateau_factor"] == 0.3
    override = c.replace(variant="alpha", aggregation="plus")
    assert override.resolved_aggregation == "plus" and override.resolved_learnable_alpha is True
    assert c.replace(variant="no-attention").resolved_aggregation is None


# --- the paper's numbers ---

def test_paper_tables_every_printed_cell():
    table2, table3 = paper.STUDY.printed["table2"], paper.STUDY.printed["table3"]
    assert {row: table2[row] for row in paper.VARIANTS} == {
        "no-attention": {"cub": 75.0, "cars": 82.9, "dogs": 77.9},
        "no-alpha": {"cub": 82.3, "cars": 91.5, "dogs": 87.0},
        "alpha": {"cub": 82.7, "cars": 92.0, "dogs": 88.1},
        "multiply": {"cub": 86.5, "cars": 93.0, "dogs": 90.4},
        "plus": {"cub": 88.4, "cars": 94.2, "dogs": 92.2}}
    assert list(table2)[-5:] == list(paper.VARIANTS)          # SSANet's rows close Table 2, as printed
    assert table3 == {"alpha/L_CE": {"cub": 81.4}, "multiply/L_CE": {"cub": 85.6}, "plus/L_CE": {"cub": 87.1},
                      "alpha/L_AD": {"cub": 82.7}, "multiply/L_AD": {"cub": 86.5}, "plus/L_AD": {"cub": 88.4}}
    # Table 3's L_AD row is Table 2's CUB column
    for v in paper.TABLE3_VARIANTS:
        assert table3[f"{v}/L_AD"] == {"cub": table2[v]["cub"]}
    # the runner's look-ups: the dataset's column (the synthetic birds read CUB-Birds'); none where the paper
    # prints none (Table 3 beside Cars) or has no column (aircraft); an undeclared row is a declaration error
    assert [paper.STUDY.column(d) for d in ("cub", "cars", "dogs", "synthetic", "aircraft")] == [
        "cub", "cars", "dogs", "cub", None]
    assert paper.STUDY.printed_value(Printed("table3", "plus/L_CE"), "synthetic") == 87.1
    assert paper.STUDY.printed_value(Printed("table3", "plus/L_CE"), "cars") is None
    assert paper.STUDY.printed_value(Printed("table2", "plus"), "dogs") == 92.2
    assert paper.STUDY.printed_value(Printed("table2", "plus"), "aircraft") is None
    with pytest.raises(KeyError, match="no printed row 'full' of table 'table2'"):
        paper.STUDY.printed_value(Printed("table2", "full"), "cub")


def test_the_runner_computes_the_deltas_the_paper_quotes(tmp_path):
    """Each claim's paper effect, as the runner computes it from the printed cells the claim names (sec. 4.5
    quotes these deltas), in each dataset's column."""
    effects = {}
    for dataset in ("cub", "cars", "dogs"):
        settings = resolve(paper.STUDY, {"profile": "paper", "dataset": dataset, "data_root": str(tmp_path)})
        claims, _ = paper.claims(settings)
        effects[dataset] = {c.text.split(" [")[0]: (c, paper.STUDY.paper_effect(c, dataset)) for c in claims}

    def across(text):
        return [effects[d][text][1] for d in ("cub", "cars", "dogs")]

    assert across("SSA beats no attention (no-alpha vs no-attention)") == pytest.approx([7.3, 8.6, 9.1])
    assert across("alpha beats no-alpha") == pytest.approx([0.4, 0.5, 1.1])
    assert across("alpha does not change accuracy (alpha vs no-alpha, no difference)") == pytest.approx([0.4, 0.5, 1.1])
    assert across("multiply beats alpha") == pytest.approx([3.8, 1.0, 2.3])
    assert across("plus beats multiply") == pytest.approx([1.9, 1.2, 1.8])
    assert across("full SSANet beats no attention (plus vs no-attention)") == pytest.approx([13.4, 11.3, 14.3])
    for row, gain in (("alpha", 1.3), ("multiply", 0.9), ("plus", 1.3)):   # Table 3: L_AD minus L_CE, CUB only
        assert across(f"self-attention distillation beats plain CE ({row})") == [pytest.approx(gain), None, None]
    # the paper's own tables support every claim but one: "alpha does not significantly affect the network",
    # whose Dogs gap (1.1) is above the smallest accuracy effect of interest
    against = [(text, dataset) for dataset, by_text in effects.items() for text, (claim, effect) in by_text.items()
               if effect is not None and not (abs(effect) < claim.smallest_effect if claim.kind == "similar"
                                              else effect > 0)]
    assert against == [("alpha does not change accuracy (alpha vs no-alpha, no difference)", "dogs")]
    # the SSANet numbers the paper prints: 5 rows x 3 datasets in Table 2, 6 in Table 3
    assert sum(len(paper.STUDY.printed["table2"][v]) for v in paper.VARIANTS) == 15
    assert len(paper.STUDY.printed["table3"]) == 6


# Table 2 of the paper above the SSANet rows, typed from the paper: method [reference], Aux, Birds, Cars, Dogs.
PAPER_TABLE2_OTHERS = """
B-CNN [8]              No  84.1 – –
SPDA-CNN [29]          Yes 85.1 – –
FCAN [9]               No  84.3 91.3 84.5
DB [30]                No  – – 87.7
FCAN [9]               Yes – 89.1 –
PDFR [10]              No  82.6 – 71.9
RA-CNN [11]            No  85.3 92.5 87.3
DVAN [6]               No  79.0 87.1 81.5
PC-DenseNet-161 [31]   No  – – 83.6
LTPA [32]              Yes 73.1 – –
WS-DAN [33]            No  – – 90.0
DFL-CNN [34]           No  86.5 93.8 –
WLHR [7]               No  83.7 – –
HDWE [35]              Yes 84.3 – 76.9
ACBNT [12]             No  87.6 – –
EfficientNet-BO [36]   No  – – 61.2
HPB [13]               No  87.1 93.7 –
SEF [37]               No  – – 88.8
WSCP [38]              Yes 86.2 – –
NPA [39]               Yes – 92.8 –
PC [14]                No  – 83.6 61.9
HIHCA [40]             No  85.3 91.7 –
DCL-VGG [41]           No  86.9 94.1 –
Bilinear CNN [42]      No  84.1 91.3 –
OPAM [43]              No  85.8 92.2 –
API-Net [44]           No  – – 90.3
"""


def test_table2_comparison_rows_match_the_paper_cell_by_cell():
    typed = []
    for line in PAPER_TABLE2_OTHERS.strip().splitlines():
        name, rest = line.split("]")
        aux, *numbers = rest.split()
        typed.append((f"{name.strip()}]" + (" (Aux)" if aux == "Yes" else ""),
                      {d: float(v) for d, v in zip(("cub", "cars", "dogs"), numbers) if v != "–"}))
    table2 = paper.STUDY.printed["table2"]
    ours = [(row, numbers) for row, numbers in table2.items() if row not in paper.VARIANTS]
    assert len(ours) == len(typed) == 26
    for row, expected in zip(ours, typed):     # same order, every cell, every dash, every Aux
        assert row == expected
    labels = [row for row, _ in ours]
    assert len(set(labels)) == len(labels) and "FCAN [9] (Aux)" in labels and "FCAN [9]" in labels
    # the view's rows below ours: every other method with a number in the column, in the paper's order
    for column in ("cub", "cars", "dogs"):
        others = paper.other_methods(column)
        assert list(others.items()) == [(row, numbers[column]) for row, numbers in typed if column in numbers]
    # the differences the text quotes (secs. 4.2 and 4.4), from the data
    plus = table2["plus"]
    assert [round(plus["cub"] - table2[m]["cub"], 1) for m in
            ("SPDA-CNN [29] (Aux)", "LTPA [32] (Aux)", "HDWE [35] (Aux)", "WSCP [38] (Aux)")] == [3.3, 15.3, 4.1, 2.2]
    assert [round(plus["dogs"] - table2[m]["dogs"], 1) for m in ("WS-DAN [33]", "API-Net [44]")] == [2.2, 1.9]
    assert round(plus["dogs"] - table2["HDWE [35] (Aux)"]["dogs"], 1) == 15.3


# --- notebook 05's study, declared for the study runner (fgvc_lib.papers.ssanet, fgvc_lib.study) ---

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_ssanet.ipynb"
TABLE2_ORDER = ["no-attention", "no-alpha-ad", "alpha-ad", "multiply-ad", "plus-ad"]


def _study(**params) -> Study:
    return Study(paper.STUDY, profile="smoke", **params)


def _folders(tmp_path, *names) -> str:
    """Empty folders standing for real datasets' roots (the runner only checks that they exist)."""
    roots = []
    for name in names:
        (tmp_path / name).mkdir(exist_ok=True)
        roots.append(str(tmp_path / name))
    return ",".join(roots)


def test_notebook_declares_the_common_parameters_then_the_papers_with_their_defaults():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [node for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)]
    names = [node.targets[0].id for node in assigned]
    check_declared(paper.STUDY, names)
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in assigned}
    assert {p.name: values[p.name] for p in paper.PARAMETERS} == {p.name: p.default for p in paper.PARAMETERS}
    with pytest.raises(ValueError, match="in that order"):
        check_declared(paper.STUDY, names[:-2] + names[-1:] + names[-2:-1])


@pytest.mark.parametrize("params,message", [
    ({"variant": "plus,full"}, r"parameter variant: unknown variant\(s\) 'full'; valid: 'all' or any of "
                               r"no-attention, no-alpha, alpha, multiply, plus"),
    ({"variant": ""}, "parameter variant: must be 'all' or a comma-separated list of no-attention"),
    ({"variant": 3}, "parameter variant: must be 'all'"),
    ({"aggregation": "concat"}, r"parameter aggregation: unknown aggregation 'concat'; valid: '' \(each row's "
                                r"preset\) or plus, multiply, none"),
    ({"loss": "kd"}, r"parameter loss: unknown loss 'kd'; valid: 'ad' \(self-attention distillation"),
    ({"gamma_ce_head": "both"}, r"parameter gamma_ce_head: unknown gamma_ce_head 'both'; valid: 'ssa' \(Eq. 4 as "
                                r"printed: gamma \* CE\(y, y_SSA\)\) or 'fe' \(the other reading"),
    ({"gamma_ce_head": None}, "parameter gamma_ce_head: unknown gamma_ce_head None"),
    ({"freeze_backbone": "yes"}, r"parameter freeze_backbone: must be True, False or None \(the profile's default\)"),
    ({"lr": -1.0}, r"parameter lr: must be a number >= 0; got -1.0"),
    ({"lr": "fast"}, "parameter lr: must be a number >= 0"),
    ({"backbone": "alexnet"}, "parameter backbone: unknown backbone 'alexnet'; valid here: vgg16, vgg19"),
    ({"dataset": "synthetic,cub,cars,dogs"}, r"parameter dataset: this notebook takes 3 dataset\(s\) at a time"),
    ({"dataset": "synthetic,cub", "data_root": "a,b,c"}, "parameter data_root: give one folder per dataset"),
    ({"dataset": "cub"}, "parameter data_root: dataset 'cub' needs data_root"),
    ({"scales": 2}, "unknown parameter.*scales"),
])
def test_parameters_are_checked_with_clear_messages(params, message):
    with pytest.raises(ValueError, match=message):
        _study(**params)


def test_parameters_resolve_against_the_profile():
    study = _study(variant="plus, no-attention")
    assert study.settings.variant == ("no-attention", "plus")            # Table 2's order
    assert _study().settings.variant == paper.VARIANTS
    assert study.settings.aggregation is None and study.settings.loss == "ad"
    assert study.settings.gamma_ce_head == "ssa" and _study(gamma_ce_head="fe").settings.gamma_ce_head == "fe"
    assert study.settings.freeze_backbone is paper.FREEZE_DEFAULT["smoke"] is True
    assert study.settings.lr == paper.LR_DEFAULT["smoke"] == 1e-3
    assert _study(lr=0.01).settings.lr == 0.01 and _study(freeze_backbone=False).settings.freeze_backbone is False
    assert (study.settings.epochs, study.settings.image_size) == (1, 64)  # the smoke profile's
    assert (paper.STUDY.recipe_epochs, paper.STUDY.recipe_batch_size, paper.STUDY.max_datasets) == (60, 16, 3)
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        Study(paper.STUDY, profile="laptop")


def test_freezing_default_and_refusal_without_pretrained_weights():
    smoke, paper_profile = get_profile("smoke"), get_profile("paper")
    assert paper.resolve_freeze(None, paper_profile) is True  # sec. 4.1: ImageNet weights fixed
    assert paper.resolve_freeze(None, smoke) is paper.FREEZE_DEFAULT["smoke"]
    assert paper.resolve_freeze(False, paper_profile) is False
    random_init = smoke.replace(name="random", pretrained=None)
    assert paper.resolve_freeze(None, random_init) is False
    with pytest.raises(ValueError, match="no pretrained extractor"):
        paper.resolve_freeze(True, random_init)
    settings = SimpleNamespace(profile=random_init, options={"freeze_backbone": True, "lr": 0.0})
    with pytest.raises(ValueError, match="parameter freeze_backbone: profile 'random' has no pretrained"):
        paper.finalize(settings)
    settings.options["freeze_backbone"] = None
    paper.finalize(settings)
    assert settings.options == {"freeze_backbone": False, "lr": 1e-3}  # unknown profile: the recipe's rate


def test_plan_trains_table2_then_the_rest_of_table3_once_each():
    study = _study()
    assert list(study.variants) == TABLE2_ORDER + ["alpha-ce", "multiply-ce", "plus-ce"]
    configs = paper.configs(study.settings)
    c = configs["alpha-ce"]
    assert (c.variant, c.loss, c.resolved_aggregation, c.resolved_learnable_alpha) == ("alpha", "ce", "none", True)
    assert configs["no-attention"].attention is False and configs["no-attention"].loss == "ce"
    assert all(c.freeze_backbone and c.lr == 1e-3 and c.backbone == "vgg16" for c in configs.values())
    plus = study.variants["plus-ad"]
    assert plus.model.func is build_ssanet and plus.model.keywords == {"config": configs["plus-ad"]}
    assert isinstance(plus.loss, SSANetLoss) and plus.loss.config == configs["plus-ad"]
    assert plus.loss.term_names == ("ce_ssa", "kl_ssa_fe", "ce_ssa_gamma")         # Eq. 5
    assert study.variants["plus-ce"].loss.term_names == ("ce_ssa", "ce_fe")         # Table 3's L_CE
    assert (plus.train.epochs, plus.train.lr, plus.train.scheduler, plus.train.plateau_factor,
            plus.train.weight_decay) == (1, 1e-3, "plateau", 0.3, 5e-4)            # sec. 4.1
    assert all(v.seeds == (0,) for v in study.variants.values())
    assert _study(seeds="0,1").variants["alpha-ce"].seeds == (0, 1)
    model = plus.model(build_backbone("vgg16", width=WIDTH), NUM_CLASSES)
    assert model.config == configs["plus-ad"] and model.ssa.aggregation == "plus"
    assert not any(p.requires_grad for p in model.backbone.parameters())

    plan = study.plan_table()
    assert list(plan.index) == list(study.variants)
    assert plan.loc["no-attention", "SSA block"] == "no" and plan.loc["no-attention", "loss"] == "CE on FE head"
    assert plan.loc["alpha-ad", "alpha"] == "learnable (init 0)" and plan.loc["no-alpha-ad", "alpha"] == "fixed 1"
    assert plan.loc["plus-ad", "tables"] == "table2, table3" and plan.loc["plus-ce", "tables"] == "table3"
    assert plan.loc["plus-ce", "loss"] == "L_CE" and plan.loc["no-alpha-ad", "tables"] == "table2"

    # the aggregation parameter changes only the two rows the paper leaves open
    other = _study(aggregation="plus", variant="alpha,multiply", loss="ce")
    assert list(other.variants) == ["alpha-ce", "multiply-ce", "alpha-ad", "multiply-ad"]
    other_configs = paper.configs(other.settings)
    assert other_configs["alpha-ce"].resolved_aggregation == "plus"
    assert other_configs["multiply-ce"].resolved_aggregation == "multiply"
    assert list(_study(variant="no-attention,no-alpha").variants) == ["no-attention", "no-alpha-ad"]

    # the other reading of Eq. 4 changes the L_AD runs only
    assert all(c.gamma_ce_head == "ssa" for c in configs.values())
    fe_configs = paper.configs(_study(gamma_ce_head="fe").settings)
    assert {n for n, c in fe_configs.items() if c.gamma_ce_head == "fe"} == {
        "no-alpha-ad", "alpha-ad", "multiply-ad", "plus-ad"}
    fe_plan = _study(gamma_ce_head="fe")
    assert fe_plan.variants["plus-ad"].loss.term_names == ("ce_ssa", "kl_ssa_fe", "ce_fe_gamma")
    assert fe_plan.plan_table().loc["plus-ad", "loss"] == "L_AD, gamma CE on FE head"
    assert fe_plan.plan_table().loc["plus-ce", "loss"] == "L_CE"


def test_run_folders_follow_the_recipe():
    def folders(study):
        return {job.variant.name: Path(job.run_dir).parent.name for _, job in study.jobs()}

    base = folders(_study())
    assert base == folders(_study())
    assert all(folder.startswith(f"{name}-") for name, folder in base.items())
    assert folders(_study(lr=0.01))["plus-ad"] != base["plus-ad"]
    assert folders(_study(freeze_backbone=False))["plus-ad"] != base["plus-ad"]
    assert folders(_study(aggregation="plus"))["alpha-ad"] != base["alpha-ad"]
    assert folders(_study(aggregation="plus"))["plus-ad"] == base["plus-ad"]
    # Table 3's cross-entropy runs are the same runs whatever loss Table 2 uses
    assert folders(_study(loss="ce"))["plus-ce"] == base["plus-ce"]
    # and whichever reading of Eq. 4 the L_AD runs use
    other_reading = folders(_study(gamma_ce_head="fe"))
    assert other_reading["plus-ce"] == base["plus-ce"] and other_reading["no-attention"] == base["no-attention"]
    assert other_reading["plus-ad"] != base["plus-ad"]


def test_cells_put_the_papers_number_beside_the_head_it_reports():
    study = _study()

    def number(cell):
        return paper.STUDY.cell_number(cell, cell.dataset)

    assert all(c.metric == TOP1 for c in study.cells)
    table2 = {c.row: c for c in study.cells if c.table == "table2"}
    assert list(table2) == ["no-attention", "no-alpha", "no-alpha [FE head]", "alpha", "alpha [FE head]",
                            "multiply", "multiply [FE head]", "plus", "plus [FE head]"]
    assert table2["plus"].measure == Accuracy("plus-ad", ("ssa",)) and number(table2["plus"]) == 88.4  # CUB column
    assert table2["plus [FE head]"].measure == Accuracy("plus-ad", ("fe",)) and number(table2["plus [FE head]"]) is None
    assert table2["no-attention"].measure == Accuracy("no-attention", ("fe",))
    assert number(table2["no-attention"]) == 75.0
    assert _study(loss="ce").cells[1].measure == Accuracy("no-alpha-ce", ("ssa",))
    table3 = {c.row: c for c in study.cells if c.table == "table3"}
    assert list(table3)[:4] == ["alpha/L_CE", "alpha/L_CE [FE head]", "alpha/L_AD", "alpha/L_AD [FE head]"]
    assert len(table3) == 3 * 2 * 2
    assert table3["plus/L_CE"].measure == Accuracy("plus-ce", ("ssa",)) and number(table3["plus/L_CE"]) == 87.1
    assert table3["alpha/L_AD"].measure == Accuracy("alpha-ad", ("ssa",)) and number(table3["alpha/L_AD"]) == 82.7
    assert table3["multiply/L_CE [FE head]"].measure == Accuracy("multiply-ce", ("fe",))
    assert number(table3["multiply/L_CE [FE head]"]) is None
    few = _study(variant="no-attention,no-alpha")
    assert few.tables == ["table2"] and "alpha, multiply, plus" in paper.skipped_tables(few.settings)["table3"]
    assert paper.skipped_tables(study.settings) == {}


def test_several_datasets_each_beside_their_own_column(tmp_path):
    study = _study(dataset="cub,cars,dogs", data_root=_folders(tmp_path, "cub", "cars", "dogs"))
    printed = {(c.dataset, c.table, c.row): paper.STUDY.cell_number(c, c.dataset) for c in study.cells}
    assert [printed[(d, "table2", "plus")] for d in ("cub", "cars", "dogs")] == [88.4, 94.2, 92.2]
    assert [printed[(d, "table2", "no-attention")] for d in ("cub", "cars", "dogs")] == [75.0, 82.9, 77.9]
    assert printed[("cub", "table3", "plus/L_AD")] == 88.4
    assert printed[("cars", "table3", "plus/L_AD")] is None and printed[("dogs", "table3", "alpha/L_CE")] is None
    assert len(study.cells) == 3 * (9 + 12)


def _accs(base, fe_gap=0.1):
    """Accuracies (fractions, two seeds) of every variant's heads: the printed head of row r trained with
    L_AD scores ``base[r] + (0, 0.05)``, with L_CE 0.05 less; the FE heads ``fe_gap`` less."""
    accs = {"no-attention": {"fe": [base["no-attention"], base["no-attention"] - 0.1]}}
    for row in paper.VARIANTS[1:]:
        acc = base[row]
        accs[f"{row}-ad"] = {"ssa": [acc, acc + 0.05], "fe": [acc - fe_gap, acc + 0.05 - fe_gap]}
        accs[f"{row}-ce"] = {"ssa": [acc - 0.05, acc - 0.05], "fe": [acc - 0.05, acc]}
    return accs


BASE = {"no-attention": 0.50, "no-alpha": 0.60, "alpha": 0.65, "multiply": 0.70, "plus": 0.80}


def _fake_runs(study, accs, dataset="synthetic", n=20):
    """Fill ``study.runs[dataset]`` with runs whose heads score ``accs[variant][head][k]`` (fractions)
    exactly on ``n`` test images at seed k; the learned alpha of seed k is 0.1 (k + 1)."""
    study._data[dataset] = DataBundle(dataset, SimpleNamespace(classes=list(range(4))), list(range(n)), None, None)
    runs = study.runs.setdefault(dataset, {})
    targets = torch.arange(n) % 4
    for name, variant in study.variants.items():
        runs[name] = []
        for k, seed in enumerate(variant.seeds):
            outputs = {"targets": targets}
            for head, values in accs[name].items():
                right = round(values[k] * n)
                logits = torch.zeros(n, 4)
                logits[torch.arange(n), (targets + (torch.arange(n) >= right).long()) % 4] = 1.0
                outputs[head] = logits
            outputs["final"] = outputs.get("ssa", outputs["fe"])
            run = Run(study, dataset, variant, RunRecord(name, seed, f"/nowhere/{name}/seed{seed}", 0.0, 0.0, 1, True))
            run.__dict__["outputs"] = outputs   # what Run.outputs would load from outputs.pt
            run.__dict__["model"] = SimpleNamespace(ssa=SimpleNamespace(alpha=torch.tensor(0.1 * (k + 1))))
            runs[name].append(run)


def test_tables_from_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    study = _study(seeds="0,1")
    _fake_runs(study, _accs(BASE))

    t2 = study.table("table2")
    assert list(t2.columns) == RESULT_COLUMNS and len(t2) == 1 + 4 * 2 and set(t2["metric"]) == {"top1"}
    rows = t2.set_index("row")
    assert rows.loc["plus", "reproduced"] == pytest.approx(82.5) and rows.loc["plus", "paper"] == 88.4
    assert rows.loc["plus [FE head]", "reproduced"] == pytest.approx(72.5)
    assert math.isnan(rows.loc["plus [FE head]", "paper"])
    assert rows.loc["no-attention", "reproduced"] == pytest.approx(45.0) and rows.loc["no-attention", "paper"] == 75.0
    assert (rows["n_seeds"] == 2).all() and (rows["profile"] == "smoke").all()

    view = study.report("table2", view=paper.heads_view)
    assert read_table(study.results_dir / "table2.csv").equals(t2)
    assert list(view.columns) == ["paper", "ours, SSA head", "ours, FE head", "n_seeds", "comparable"]
    assert list(view.index.get_level_values("row")) == list(paper.VARIANTS)
    assert view.loc[("synthetic", "plus"), "ours, SSA head"] == "82.50 ± 3.54"
    assert view.loc[("synthetic", "plus"), "ours, FE head"] == "72.50 ± 3.54"
    assert view.loc[("synthetic", "plus"), "paper"] == 88.4
    assert view.loc[("synthetic", "no-attention"), "ours, SSA head"] == ""
    assert view.loc[("synthetic", "no-attention"), "ours, FE head"] == "45.00 ± 7.07"
    assert not view["comparable"].any()

    t3 = study.table("table3").set_index("row")
    assert len(t3) == 12 and t3.loc["plus/L_CE", "reproduced"] == pytest.approx(75.0)
    assert t3.loc["plus/L_CE", "paper"] == 87.1 and t3.loc["plus/L_AD", "reproduced"] == pytest.approx(82.5)
    assert t3.loc["plus/L_CE [FE head]", "reproduced"] == pytest.approx(77.5)
    view3 = paper.heads_view(study.table("table3"))
    assert len(view3) == 6 and view3.loc[("synthetic", "alpha/L_CE"), "paper"] == 81.4

    alphas = paper.alpha_table(study)
    assert list(alphas["row"]) == ["alpha-ad", "multiply-ad", "plus-ad", "alpha-ce", "multiply-ce", "plus-ce"]
    assert set(alphas["metric"]) == {"alpha"} and alphas["paper"].isna().all()
    assert alphas["reproduced"].tolist() == pytest.approx([0.15] * 6)

    few = _study(seeds="0,1", variant="no-attention,no-alpha")
    _fake_runs(few, _accs(BASE))
    assert few.report("table3") is None and len(paper.alpha_table(few)) == 0


def test_table2_view_prints_the_papers_other_methods_paper_only(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    study = _study(seeds="0,1", dataset="synthetic,cars", data_root=_folders(tmp_path, "synthetic", "cars"))
    _fake_runs(study, _accs(BASE), "synthetic")
    _fake_runs(study, _accs(BASE), "cars")
    view = study.report("table2", view=paper.table2_view)
    assert list(view.columns) == ["aux", "paper", "ours, SSA head", "ours, FE head", "n_seeds", "comparable"]
    synthetic = view.loc["synthetic"]
    # our rows first, as heads_view shows them
    assert list(synthetic.index[:5]) == list(paper.VARIANTS)
    assert synthetic.loc["plus", "ours, SSA head"] == "82.50 ± 3.54" and synthetic.loc["plus", "aux"] == "no"
    assert repr(synthetic.loc["plus", "n_seeds"]) == "2" and synthetic.loc["plus", "comparable"] is False
    # then every method of Table 2 with a Birds number (the synthetic set's paper column), in the paper's order
    others = list(synthetic.index[5:])
    assert others == ["B-CNN [8]", "SPDA-CNN [29] (Aux)", "FCAN [9]", "PDFR [10]", "RA-CNN [11]", "DVAN [6]",
                      "LTPA [32] (Aux)", "DFL-CNN [34]", "WLHR [7]", "HDWE [35] (Aux)", "ACBNT [12]", "HPB [13]",
                      "WSCP [38] (Aux)", "HIHCA [40]", "DCL-VGG [41]", "Bilinear CNN [42]", "OPAM [43]"]
    rcnn = synthetic.loc["RA-CNN [11]"]
    assert rcnn["paper"] == 85.3 and rcnn["aux"] == "no"
    assert (rcnn["ours, SSA head"], rcnn["ours, FE head"], rcnn["n_seeds"], rcnn["comparable"]) == ("", "", "", "")
    assert synthetic.loc["LTPA [32] (Aux)", "aux"] == "yes" and synthetic.loc["LTPA [32] (Aux)", "paper"] == 73.1
    cars = view.loc["cars"]
    assert cars.loc["FCAN [9]", "paper"] == 91.3 and cars.loc["FCAN [9] (Aux)", "paper"] == 89.1
    assert cars.loc["plus", "paper"] == 94.2 and "PDFR [10]" not in cars.index  # PDFR has no Cars number
    assert len(cars) == 5 + 12  # one line per row (both heads side by side), 12 methods with a Cars number
    # the CSV holds our rows only
    assert len(read_table(study.results_dir / "table2.csv")) == 2 * 9


def test_attention_site_is_f_and_the_room_table_counts_its_cells(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    study = _study()
    assert paper.attention_sites(study.settings, study.backbone_spec.build(weights=False)) == {
        "F (pool5), read by the SSA block": 32}  # VGG-16's pool5
    model = study.variants["plus-ad"].model(build_backbone("vgg16", width=WIDTH), NUM_CLASSES)
    assert model.backbone.stage_strides[model.feature_stage] == 32
    room = study.room_table().set_index("site").loc["F (pool5), read by the SSA block"]
    assert room["map"] == "2 x 2" and room["stride"] == 32   # 64 px in the smoke profile
    assert room["parts_scored"] > 0 and room["room"] == "no"  # a part is a fraction of a 32 x 32 cell


def test_complexity_of_each_table2_row():
    study = _study()
    study._data["synthetic"] = DataBundle("synthetic", SimpleNamespace(classes=list(range(6))), [], None, None)
    table = paper.complexity_table(study)
    assert list(table.index) == list(paper.VARIANTS)
    assert table.loc["alpha", "trainable params"] == table.loc["no-alpha", "trainable params"] + 1  # alpha
    assert (table.loc["plus", "params"] - table.loc["plus", "trainable params"]
            == table.loc["no-attention", "params"] - table.loc["no-attention", "trainable params"])  # frozen FE
    assert set(table["feature map F"]) == {"64 x 2^2"}  # pool5 of the slim VGG-16 at 64 px


def test_the_cpu_profile_reads_a_12_by_12_f_at_output_stride_8(tmp_path, monkeypatch):
    """The cpu profile's SSANet: the profile's 96 px, VGG at output stride 8, so pool5 (F) is 96 / 8 = 12 cells a
    side, as notebook 00's spatial oracle's map; the frozen features of stride 8 and stride 32 never share a memo
    entry (the memo's fingerprint reads the module, dilations and pool sizes included)."""
    monkeypatch.setenv("FGVC_RESULTS_DIR", str(tmp_path / "results"))
    study = Study(paper.STUDY, profile="cpu")
    assert study.settings.image_size == 96 and study.backbone_spec.output_stride == 8
    backbone = study.backbone_spec.build(weights=False)
    assert paper.attention_sites(study.settings, backbone) == {"F (pool5), read by the SSA block": 8}
    model = study.variants["plus-ad"].model(backbone, NUM_CLASSES)
    features = model.backbone(torch.zeros(2, 3, 96, 96), (model.feature_stage,))[model.feature_stage]
    assert tuple(features.shape[-2:]) == (12, 12)
    study._data["synthetic"] = DataBundle("synthetic", SimpleNamespace(classes=list(range(12))), [], None, None)
    assert set(paper.complexity_table(study)["feature map F"]) == {"64 x 12^2"}
    published = dataclasses.replace(study.backbone_spec, output_stride=None).build(weights=False)
    published.load_state_dict(backbone.state_dict())   # the same weights, another stride
    assert weights_fingerprint(published) != weights_fingerprint(backbone)


def test_claims_pair_seeds_on_the_printed_heads_with_the_papers_effects():
    study = _study(seeds="0,1")
    _fake_runs(study, _accs(BASE))
    table, not_measured = study.claims_table()
    table = table.set_index("claim")
    assert len(table) == 10
    ssa = table.loc["SSA beats no attention (no-alpha vs no-attention) [synthetic]"]
    assert ssa["paper_effect"] == 7.3 and ssa["our_effect"] == pytest.approx(17.5)  # (60-50 + 65-40) / 2
    assert ssa["n_seeds"] == 2 and ssa["n_images"] == 20
    full = table.loc["full SSANet beats no attention (plus vs no-attention) [synthetic]"]
    assert full["paper_effect"] == 13.4 and full["our_effect"] == pytest.approx(37.5)
    assert table.loc["alpha beats no-alpha [synthetic]", "paper_effect"] == 0.4
    ad = table.loc["self-attention distillation beats plain CE (plus) [synthetic]"]
    assert ad["paper_effect"] == 1.3 and ad["our_effect"] == pytest.approx(7.5)
    # Self-AD and the FE head: the FE heads of the L_AD runs 10 points under their SSA heads, the L_CE
    # runs' FE heads 5 under the SSA heads of L_AD: 5 points below L_CE in every row, at both seeds
    fe = table.loc["self-attention distillation helps the FE head (L_AD vs L_CE, FE head, mean over alpha, "
                   "multiply, plus) [synthetic]"]
    assert math.isnan(fe["paper_effect"]) and fe["our_effect"] == pytest.approx(-5.0)
    # no localization scores recorded yet: those claims are listed as not measured, beside the text-only claims
    assert len(not_measured) == 2 + len(paper.NOT_MEASURED) + 1
    assert sum("no score" in note for note in not_measured) == 2
    similar = table.loc["alpha does not change accuracy (alpha vs no-alpha, no difference) [synthetic]"]
    assert similar["direction"] == 0 and similar["paper_effect"] == 0.4
    assert (table["paper_setting"][table["paper_effect"].notna()] == "CUB-Birds, VGG-16").all()

    reversed_study = _study(seeds="0,1")
    _fake_runs(reversed_study, _accs({**BASE, "plus": 0.45}, fe_gap=-0.1))
    table = reversed_study.claims_table()[0].set_index("claim")
    assert table.loc["plus beats multiply [synthetic]", "our_effect"] == pytest.approx(-25.0)
    fe = table.filter(like="helps the FE head", axis=0)
    assert len(fe) == 1 and fe["our_effect"].iloc[0] == pytest.approx(15.0)


def test_fe_head_claim_pairs_each_l_ad_fe_head_with_its_l_ce_twin():
    claims, _ = paper.claims(_study(seeds="0,1,2").settings)
    fe = [c for c in claims if "FE head" in c.text]
    assert len(fe) == 1
    claim = fe[0]
    assert paper.STUDY.paper_effect(claim, "synthetic") is None and claim.direction == 1 and claim.kind == "greater"
    assert claim.dataset == "synthetic" and claim.seeds is None
    assert claim.pairs == tuple((Accuracy(f"{row}-ce", ("fe",)), Accuracy(f"{row}-ad", ("fe",)))
                                for row in ("alpha", "multiply", "plus"))
    one = [c for c in paper.claims(_study(variant="plus").settings)[0] if "FE head" in c.text]
    assert one[0].pairs == ((Accuracy("plus-ce", ("fe",)), Accuracy("plus-ad", ("fe",))),)
    assert one[0].text.startswith("self-attention distillation helps the FE head (L_AD vs L_CE, FE head, plus)")
    none_claims, skipped = paper.claims(_study(variant="no-attention,no-alpha").settings)
    assert not any("FE head" in c.text for c in none_claims)
    assert any("helps the FE head" in s and "none of the rows alpha, multiply, plus was trained" in s
               for s in skipped)


def test_claims_of_rows_not_trained_are_not_measured():
    few = _study(seeds="0,1", variant="no-attention,plus")
    claims, skipped = paper.claims(few.settings)
    assert [c.text.split(" [")[0] for c in claims] == [
        "full SSANet beats no attention (plus vs no-attention)", "self-attention distillation beats plain CE (plus)",
        "self-attention distillation helps the FE head (L_AD vs L_CE, FE head, plus)",
        "plus attends to the discriminative part: pointing above chance",
        "plus localizes the discriminative part better than no-attention (pointing)"]
    rows = [s for s in skipped if s.endswith(("was not trained", "were not both trained"))]
    assert len(rows) == 7
    assert len(skipped) == len(rows) + len(paper.NOT_MEASURED) + 1
    none = paper.claims(_study(variant="alpha,multiply").settings)
    assert [c.text.split(" [")[0] for c in none[0]] == [
        "multiply beats alpha", "self-attention distillation beats plain CE (alpha)", "self-attention distillation beats plain CE (multiply)",
        "self-attention distillation helps the FE head (L_AD vs L_CE, FE head, mean over alpha, multiply)"]
    assert sum("row plus was not trained" in s for s in none[1]) == 3  # Table 3's plus and both map claims


def test_each_dataset_measures_its_claims_on_its_own_test_set(tmp_path):
    """Every dataset's claims use that dataset's runs and its own test images."""
    study = _study(seeds="0,1", dataset="synthetic,cars", data_root=_folders(tmp_path, "synthetic", "cars"))
    steady = _accs({**BASE, "multiply": 0.75})
    steady["plus-ad"]["ssa"] = [0.80, 0.85]  # plus beats multiply by 5 points at both seeds (spread 0)
    _fake_runs(study, steady, "synthetic", n=1000)
    _fake_runs(study, steady, "cars", n=20)
    table, not_measured = study.claims_table()
    table = table.set_index("claim")
    assert len(table) == 2 * 10
    big, small = table.loc["plus beats multiply [synthetic]"], table.loc["plus beats multiply [cars]"]
    assert big["our_effect"] == pytest.approx(5.0) and small["our_effect"] == pytest.approx(5.0)
    assert (big["n_images"], small["n_images"]) == (1000, 20)
    # the same 5 points: 50 of 1000 images decide it on one set, 1 of 20 on the other
    assert big["ci_high"] - big["ci_low"] < small["ci_high"] - small["ci_low"]
    assert big["paper_effect"] == 1.9 and small["paper_effect"] == 1.2  # CUB column, Cars column
    assert math.isnan(table.loc["self-attention distillation beats plain CE (plus) [cars]", "paper_effect"])
    assert table.filter(like="helps the FE head", axis=0)["n_images"].tolist() == [1000, 20]
    assert any("cars has no boxes of the discriminative parts" in n for n in not_measured)


def test_localization_claims_read_the_scores_of_the_printed_heads():
    study = _study(seeds="0,1")
    models = paper.localization_models(study.settings)
    assert models["plus"] == ("plus-ad", "ssa") and models["plus [FE head]"] == ("plus-ad", "fe")
    assert models["no-attention"] == ("no-attention", "fe") and len(models) == 9

    def hits(k, n=40):  # per scored image, as study.localization records it: 100 on the part, else 0
        return [100.0] * k + [0.0] * (n - k)

    scores = {"plus: part_pointing": {0: hits(20), 1: hits(24)}, "plus: part_chance": {0: [10.0] * 40, 1: [10.0] * 40},
              "plus [FE head]: part_pointing": {0: hits(0), 1: hits(0)},
              "no-attention: part_pointing": {0: hits(8), 1: hits(16)}}
    study.record_all(scores)
    claims, skipped = paper.localization_claims(study.settings)
    assert skipped == [] and all(c.dataset == "synthetic" and paper.STUDY.paper_effect(c, "synthetic") is None
                              for c in claims)
    table = claims_table([study.claim_entry(c) for c in claims])
    assert table["our_effect"].tolist() == pytest.approx([45.0, 25.0])  # (50 + 60) / 2 - 10; (30 + 20) / 2
    assert table["n_images"].tolist() == [40, 40] and table["n_seeds"].tolist() == [2, 2]


def test_paper_setting_names_the_papers_column_where_it_is_not_ours():
    settings = _study().settings
    assert paper.paper_setting(settings, "synthetic") == "CUB-Birds, VGG-16"
    assert paper.paper_setting(settings, "cars") == ""
    assert paper.paper_setting(_study(backbone="resnet50").settings, "cars") == "Stanford Cars, VGG-16"
    assert paper.paper_setting(settings, "stanford_dogs_unknown") == ""
    # the claim that the modules plug into other backbones is listed only when the run uses VGG-16
    assert any(n.startswith("Conclusion:") for n in paper.claims(settings)[1])
    assert not any(n.startswith("Conclusion:") for n in paper.claims(_study(backbone="resnet50").settings)[1])
