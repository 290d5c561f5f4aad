"""Parameter and multiply-add counts (fgvc_lib.complexity)."""
import time

import pytest
import torch
import torch.nn as nn
import torchvision

from fgvc_lib.complexity import count_parameters, format_complexity, model_complexity
from fgvc_lib.models.output import ModelOutput

torch.set_num_threads(1)


class TwoLayer(nn.Module):
    """conv 3->4 (3x3, no bias) then linear 4->5 on the global average: MACs known by hand."""

    def __init__(self, needs_real_values: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 5)
        self.needs_real_values = needs_real_values
        self.saw_training = None

    def forward(self, x):
        self.saw_training = self.training
        f = self.bn(self.conv(x)).relu().mean((2, 3))
        if self.needs_real_values:
            f = f * (1.0 + 0.0 * f.sum().item())  # .item() has no value on the meta device
        logits = self.fc(f)
        return ModelOutput(logits, {"branch_logits": {"head": logits}})


def expected_macs(h, w, batch=1):
    return batch * (h * w * 4 * 3 * 3 * 3 + 4 * 5)


def test_resnet50_matches_published_counts():
    model = torchvision.models.resnet50()
    start = time.perf_counter()
    stats = model_complexity(model, 224)
    elapsed = time.perf_counter() - start
    assert stats["params"] == 25_557_032
    assert round(stats["params"] / 1e6, 2) == 25.56
    assert round(stats["macs"] / 1e9, 2) == 4.09
    assert format_complexity(stats) == "25.56 M params, 4.09 G MACs"
    assert elapsed < 5.0, f"counting took {elapsed:.2f} s; the meta-device path should be well under a second"


def test_hand_counted_model_with_model_output_and_rectangular_batch():
    model = TwoLayer()
    assert model_complexity(model, 16)["macs"] == expected_macs(16, 16)
    stats = model_complexity(model, (8, 12), batch_size=3)
    assert stats["macs"] == expected_macs(8, 12, batch=3)
    assert stats["params"] == 3 * 4 * 9 + 2 * 4 + 4 * 5 + 5


def test_fallback_to_real_forward_gives_same_count():
    model = TwoLayer(needs_real_values=True)
    from torch.func import functional_call

    stand_ins = {n: torch.empty_like(t, device="meta")
                 for n, t in list(model.named_parameters()) + list(model.named_buffers())}
    with pytest.raises(Exception):  # this model really cannot run on the meta device
        functional_call(model, stand_ins, (torch.zeros(1, 3, 16, 16, device="meta"),))
    assert model_complexity(model, 16)["macs"] == expected_macs(16, 16)
    assert model_complexity(model, 16, use_meta=False)["macs"] == expected_macs(16, 16)


def test_frozen_parameters_are_counted_and_modes_restored():
    model = TwoLayer(needs_real_values=True)  # forces the real forward pass, so saw_training is set
    for p in model.conv.parameters():
        p.requires_grad_(False)
    model.train()
    model.bn.eval()  # a mixed mode (frozen batch-norm) must come back exactly
    before = {name: t.clone() for name, t in model.state_dict().items()}
    stats = model_complexity(model, 16)
    assert model.saw_training is False, "the count must run in eval mode"
    assert model.training and model.fc.training and not model.bn.training
    assert stats["params"] == count_parameters(model) == 3 * 4 * 9 + 2 * 4 + 4 * 5 + 5
    assert count_parameters(model, trainable_only=True) == 2 * 4 + 4 * 5 + 5
    for name, t in model.state_dict().items():  # batch-norm statistics untouched (eval, no_grad)
        assert torch.equal(t, before[name]), name
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="image_size"):
        model_complexity(TwoLayer(), (8, 8, 8))
    with pytest.raises(ValueError, match="positive"):
        model_complexity(TwoLayer(), 0)
    with pytest.raises(ValueError, match="device="):
        model_complexity(TwoLayer(needs_real_values=True), 8, device="meta")
    with pytest.raises(TypeError, match="nn.Module"):
        model_complexity(lambda x: x, 8)


class Attention(nn.Module):
    """A 1x1 conv then a (B, n, C) x (B, C, n) product: convolution and bmm MACs known by hand."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)

    def forward(self, x):
        f = self.conv(x).flatten(2)                    # (B, 4, n)
        return torch.bmm(f.transpose(1, 2), f).mean()  # (B, n, n): n * n * 4 MACs per image


def test_macs_by_operator_splits_the_total():
    from fgvc_lib.complexity import macs_by_operator

    by_op = macs_by_operator(TwoLayer(), 16)
    assert by_op == {"convolution": 16 * 16 * 4 * 27, "addmm": 4 * 5}
    assert sum(by_op.values()) == model_complexity(TwoLayer(), 16)["macs"]
    n = 6 * 5
    attention = macs_by_operator(Attention(), (6, 5), batch_size=2)
    assert attention == {"bmm": 2 * n * n * 4, "convolution": 2 * n * 3 * 4}
    assert list(attention) == ["bmm", "convolution"]               # largest first
    real = macs_by_operator(TwoLayer(needs_real_values=True), 16)  # fallback to the real pass
    assert real == by_op
    model = TwoLayer(needs_real_values=True)
    model.train()
    macs_by_operator(model, 8)
    assert model.training and model.saw_training is False
    with pytest.raises(TypeError, match="nn.Module"):
        macs_by_operator(lambda x: x, 8)
    with pytest.raises(ValueError, match="device="):
        macs_by_operator(TwoLayer(needs_real_values=True), 8, device="meta")
