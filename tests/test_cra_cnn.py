"""Unit tests of CRA-CNN (fgvc_lib.models.cra_cnn, .cra_transform).

Equations 3-8 are checked against references written out in the tests (explicit loops and
arithmetic); slim backbones (width 0.125), 64 px inputs, 32 px attention images, batches <= 4.
"""
import math

import pytest
import torch

from fgvc_lib.backbones import build_backbone
from fgvc_lib.complexity import count_parameters, model_complexity
from fgvc_lib.models.baseline import BaselineNet
from fgvc_lib.models.cra_cnn import (CRACNNConfig, build_cra_cnn, contrastive_loss, cra_cnn_loss,
                                     pair_indices, restriction_active, restriction_loss)
from fgvc_lib.models.cra_transform import (AttentionRedundancyTransformer, attention_region_mask,
                                           attention_theta, clip_theta_grad, redundancy_image,
                                           restrict_gamma, sample_affine)

torch.set_num_threads(1)
WIDTH, SIZE, ATT, CLASSES = 0.125, 64, 32, 5
PAPER_T = (0.4, 0.4, 0.4, math.pi / 7)
E = (0.0, 0.0, 0.5, 0.0)


def slim(name="resnet50"):
    if name.startswith("vgg"):
        return build_backbone(name, width=WIDTH, batch_norm=True)
    return build_backbone(name, width=WIDTH)


def make_model(name="resnet50", seed=0, **changes):
    torch.manual_seed(seed)
    return build_cra_cnn(slim(name), CLASSES, CRACNNConfig(attention_size=ATT, **changes))


def batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, SIZE, SIZE, generator=g), torch.arange(n) % CLASSES


# ---------------------------------------------------------------- references written out by hand
def literal_matrix(x, y, s, a):
    """Eq. 4's matrix for one image."""
    return [[s * math.cos(a), -s * math.sin(a), x], [s * math.sin(a), s * math.cos(a), y]]


def grid_coordinate(index, count, align_corners):
    """Normalised coordinate of pixel ``index`` of ``count`` (torch's two conventions)."""
    if align_corners:
        return -1.0 + 2.0 * index / (count - 1)
    return -1.0 + (2.0 * index + 1.0) / count


def to_pixel(coordinate, count, align_corners):
    if align_corners:
        return (coordinate + 1.0) / 2.0 * (count - 1)
    return ((coordinate + 1.0) * count - 1.0) / 2.0


def loop_sample(image, matrix, out_h, out_w, align_corners):
    """Eq. 3-4 + bilinear kernel, one output pixel at a time; zeros outside the image."""
    channels, height, width = image.shape
    out = torch.zeros(channels, out_h, out_w, dtype=torch.float64)
    for i in range(out_h):
        for j in range(out_w):
            x = grid_coordinate(j, out_w, align_corners)
            y = grid_coordinate(i, out_h, align_corners)
            xs = matrix[0][0] * x + matrix[0][1] * y + matrix[0][2]
            ys = matrix[1][0] * x + matrix[1][1] * y + matrix[1][2]
            px, py = to_pixel(xs, width, align_corners), to_pixel(ys, height, align_corners)
            x0, y0 = math.floor(px), math.floor(py)
            wx, wy = px - x0, py - y0
            for dy in (0, 1):
                for dx in (0, 1):
                    xx, yy = x0 + dx, y0 + dy
                    if 0 <= xx < width and 0 <= yy < height:
                        weight = (wx if dx else 1.0 - wx) * (wy if dy else 1.0 - wy)
                        out[:, i, j] += weight * image[:, yy, xx].double()
    return out


def loop_region(matrix, height, width, align_corners):
    """1 where A^-1 (p - t) lies in [-1, 1]^2 (explicit 2x2 inverse), per pixel centre."""
    (a, b, tx), (c, d, ty) = matrix
    det = a * d - b * c
    mask = torch.zeros(height, width, dtype=torch.float64)
    for i in range(height):
        for j in range(width):
            px = grid_coordinate(j, width, align_corners) - tx
            py = grid_coordinate(i, height, align_corners) - ty
            u = (d * px - b * py) / det
            v = (-c * px + a * py) / det
            mask[i, j] = float(abs(u) <= 1.0 and abs(v) <= 1.0)
    return mask


def literal_eq7(g, e=E, t=PAPER_T, eps=1e-6):
    total = 0.0
    for k in range(4):
        z = abs(g[k] - e[k]) - t[k]
        total += max(0.0, z) / (z + eps) * (g[k] - e[k]) ** 2
    return math.sqrt(total)


# ---------------------------------------------------------------- eq. 6
@pytest.mark.parametrize("alpha_l, alpha_s", [(0.5, 1.0), (0.3, 0.8)])
def test_restriction_eq6_by_hand(alpha_l, alpha_s):
    raw = [[0.3, -2.0, 1.0, 0.7], [-0.5, 0.0, -3.0, -2.5], [10.0, -10.0, 0.2, 4.0]]
    got = restrict_gamma(torch.tensor(raw, dtype=torch.float64), alpha_l, alpha_s)
    for row, out in zip(raw, got.tolist()):
        expected = [alpha_l * math.tanh(row[0]), alpha_l * math.tanh(row[1]), alpha_s * math.tanh(row[2]), row[3]]
        assert out == pytest.approx(expected, abs=1e-12)
    assert got[2, 0] <= alpha_l and got[2, 1] >= -alpha_l          # bounded location
    assert got[2, 3] == 4.0                                          # the angle is not squashed


# ---------------------------------------------------------------- eq. 3-4 (AT module)
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("gamma_res", [(0.1, -0.2, 0.45, 0.3), (-0.35, 0.3, 0.7, -1.1), (0.0, 0.0, 0.5, 0.0),
                                       (0.45, 0.4, -0.9, 2.0)])
def test_attention_sampling_matches_explicit_loops(align_corners, gamma_res):
    image = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    theta = attention_theta(torch.tensor([gamma_res], dtype=torch.float64))
    for row, literal in zip(theta[0].tolist(), literal_matrix(*gamma_res)):
        assert row == pytest.approx(literal, abs=1e-12)
    got = sample_affine(image[None], theta, 4, align_corners)[0]
    expected = loop_sample(image, literal_matrix(*gamma_res), 4, 4, align_corners)
    assert torch.allclose(got, expected, atol=1e-10)


def test_art_module_restricts_then_samples():
    """Raw Gamma -> eq. 6 by hand -> eq. 4 by hand -> loops, against the module end to end."""
    image = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    raw = [0.4, -0.7, 0.2, 0.5]
    art = AttentionRedundancyTransformer(4, "restricted", alpha_l=0.5, alpha_s=1.0)
    out = art(image, torch.tensor([raw], dtype=torch.float64))
    res = (0.5 * math.tanh(raw[0]), 0.5 * math.tanh(raw[1]), 1.0 * math.tanh(raw[2]), raw[3])
    expected = loop_sample(image[0], literal_matrix(*res), 4, 4, True)
    assert torch.allclose(out["attention"][0], expected, atol=1e-10)
    assert out["gamma"][0].tolist() == pytest.approx(res, abs=1e-12)


# ---------------------------------------------------------------- eq. 5 (RT module)
@pytest.mark.parametrize("align_corners", [True, False])
def test_expectation_region_is_the_central_half_crop(align_corners):
    theta = attention_theta(torch.tensor([E]))
    mask = attention_region_mask(theta, 8, 8, align_corners)[0, 0]
    expected = torch.zeros(8, 8)
    expected[2:6, 2:6] = 1
    assert torch.equal(mask, expected)


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("gamma_res", [(0.1, -0.15, 0.45, 0.3), (-0.3, 0.25, 0.6, -0.8)])
def test_redundancy_matches_explicit_loops(align_corners, gamma_res):
    image = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    theta = attention_theta(torch.tensor([gamma_res], dtype=torch.float64))
    matrix = literal_matrix(*gamma_res)
    identity = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    region = loop_region(matrix, 8, 8, align_corners)
    assert 0 < region.sum() < 64
    # "input": zero the region at 8 x 8, then resize to 4 x 4
    got, mask = redundancy_image(image[None], theta, 4, align_corners, "input")
    assert torch.equal(mask[0, 0], region)
    expected = loop_sample(image * (1 - region), identity, 4, 4, align_corners)
    assert torch.allclose(got[0], expected, atol=1e-10)
    # "attention": resize first, then zero the region on the 4 x 4 grid
    got, mask = redundancy_image(image[None], theta, 4, align_corners, "attention")
    small_region = loop_region(matrix, 4, 4, align_corners)
    assert torch.equal(mask[0, 0], small_region)
    expected = loop_sample(image, identity, 4, 4, align_corners) * (1 - small_region)
    assert torch.allclose(got[0], expected, atol=1e-10)


# ---------------------------------------------------------------- eq. 7
def test_restriction_loss_eq7_by_hand():
    rows = [[0.1, -0.2, 0.6, 0.1],        # every component inside its dead zone
            [0.45, 0.0, 0.5, 0.0],        # one location past 0.4
            [0.45, -0.48, 0.05, 1.0]]     # all four past their thresholds
    gamma = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    got = restriction_loss(gamma, E, PAPER_T, eps=1e-6)
    assert got.tolist() == pytest.approx([literal_eq7(r) for r in rows], abs=1e-12)
    assert got[0] == 0
    assert got[1].item() == pytest.approx(0.45, abs=1e-4)   # the whole distance, not the 0.05 excess
    got.sum().backward()
    assert torch.isfinite(gamma.grad).all()
    assert torch.equal(gamma.grad[0], torch.zeros(4, dtype=torch.float64))   # full freedom inside
    assert gamma.grad[1].tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0], abs=1e-4)
    # the official code's angle threshold pi leaves the angle free
    assert restriction_loss(torch.tensor([[0.0, 0.0, 0.5, 3.0]]), E, (0.4, 0.4, 0.4, math.pi)).item() == 0
    assert restriction_loss(torch.tensor([[0.0, 0.0, 0.5, 3.0]]), E, PAPER_T).item() == pytest.approx(3.0, abs=1e-4)


# ---------------------------------------------------------------- eq. 8
def hinge(anchor, positive, negative, margin, squared=False):
    power = 2 if squared else 1
    return max(math.dist(anchor, positive) ** power - math.dist(anchor, negative) ** power + margin, 0.0)


def test_contrastive_loss_eq8_by_hand():
    pairs = pair_indices(2)
    assert pairs.tolist() == [[0, 1]]
    r = torch.tensor([[0.0, 0.0], [0.1, 0.0]])
    far = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    assert contrastive_loss(far, r, pairs, margin=0.7).item() == 0.0      # attention far from redundancy
    near = torch.tensor([[0.5, 0.0], [0.0, 3.0]])
    expected = (hinge((0, 0), (0.1, 0), (0.5, 0), 0.7) + hinge((0.1, 0), (0, 0), (0, 3), 0.7)) / 2
    assert expected == pytest.approx(0.15)
    assert contrastive_loss(near, r, pairs, margin=0.7).item() == pytest.approx(expected, abs=1e-6)


def test_contrastive_loss_official_code_variant_by_hand():
    pairs = pair_indices(2)
    a = torch.tensor([[0.0, 0.0], [0.2, 0.0]])
    r = torch.tensor([[0.3, 0.0], [1.0, 0.0]])
    got = contrastive_loss(a, r, pairs, margin=0.1, distance="squared", triplet="code")
    expected = (hinge((0, 0), (0.2, 0), (0.3, 0), 0.1, squared=True)
                + hinge((0.2, 0), (0, 0), (1, 0), 0.1, squared=True)) / 2
    assert expected == pytest.approx(0.025)
    assert got.item() == pytest.approx(expected, abs=1e-6)
    assert contrastive_loss(a, r, pairs, margin=0.1, distance="squared", triplet="paper").item() != \
        pytest.approx(expected, abs=1e-6)


def test_contrastive_pairs_within_a_pair_of_images():
    g = torch.Generator().manual_seed(4)
    a, r = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    pairs = pair_indices(4)
    assert pairs.tolist() == [[0, 1], [2, 3]]
    terms = []
    for m, n in [(0, 1), (1, 0), (2, 3), (3, 2)]:
        terms.append(hinge(r[m].tolist(), r[n].tolist(), a[m].tolist(), 0.7))
    assert contrastive_loss(a, r, pairs).item() == pytest.approx(sum(terms) / 4, abs=1e-5)
    assert pair_indices(5).tolist() == [[0, 1], [2, 3]]      # an odd batch leaves its last image out
    assert pair_indices(1).numel() == 0
    assert contrastive_loss(a[:1], r[:1], pair_indices(1)).item() == 0.0
    torch.manual_seed(0)
    random_pairs = pair_indices(7, "random")
    assert random_pairs.shape == (3, 2) and len(set(random_pairs.flatten().tolist())) == 6


# ---------------------------------------------------------------- L_res schedule (sec. 4.1)
def schedule(epochs, mode="schedule"):
    config = CRACNNConfig(restriction=mode)
    return [restriction_active(config, e, epochs) for e in range(epochs)]


def test_restriction_schedule_of_section_4_1():
    full = schedule(230)
    assert all(full[0:50]) and not any(full[50:95]) and all(full[95:140])
    assert not any(full[140:185]) and all(full[185:230])
    assert schedule(46) == [True] * 10 + [False] * 9 + [True] * 9 + [False] * 9 + [True] * 9
    assert schedule(10) == [True, True, False, False, True, True, False, False, True, True]
    # the cpu profile's 8 epochs: epoch e reads the paper's epoch round(e x 229 / 7) = 0, 33, 65, 98, 131, 164,
    # 196, 229: on (< 50), on, off (50-94), on (95-139), on, off (140-184), on (185-229), on
    assert schedule(8) == [True, True, False, True, True, False, True, True]
    assert schedule(2) == [True, True]
    assert schedule(1) == [True]
    assert schedule(12, "on") == [True] * 12
    assert schedule(12, "off") == [False] * 12
    assert schedule(200, "code") == [True] * 46 + [False] * 154
    assert schedule(20, "code") == [True] * 5 + [False] * 15
    with pytest.raises(ValueError, match="epoch"):
        restriction_active(CRACNNConfig(), 10, 10)


@pytest.mark.parametrize("epochs", range(1, 61))
def test_restriction_schedule_starts_and_ends_switched_on_as_the_papers(epochs):
    # sec. 4.1 over 230 epochs: on for 0-49, off 50-94, on 95-139, off 140-184, on 185-229
    paper = [e < 50 or 95 <= e < 140 or 185 <= e for e in range(230)]
    assert paper[0] and paper[-1]
    run = schedule(epochs)
    assert run[0] is True and run[-1] is True


def test_start_epoch_switches_the_restriction_term():
    model = make_model().train()
    with torch.no_grad():
        model.gamma_fc.bias[0] = 3.0          # x = 0.5 tanh 3 = 0.497: past the 0.4 threshold
    images, targets = batch(2)
    assert model.start_epoch(0, 10) is True
    on = cra_cnn_loss(model(images), targets)
    assert on["res"].item() == pytest.approx(0.5 * math.tanh(3.0), abs=1e-4)
    assert model.start_epoch(2, 10) is False
    off = cra_cnn_loss(model(images), targets)
    assert off["res"].item() == 0.0
    assert set(on) == set(off) == {"ce", "ce_ar", "res", "cntr"}


# ---------------------------------------------------------------- test time = N_cls only
@pytest.mark.parametrize("name", ["resnet50", "vgg16"])
def test_eval_runs_only_the_classification_stream(name, monkeypatch):
    model = make_model(name).eval()
    images, _ = batch(2)

    def forbidden(*args, **kwargs):
        raise AssertionError("not part of the deployed network")

    for module in (model.ar_backbone, model.ar_classifier, model.gamma_fc, model.art):
        monkeypatch.setattr(module, "forward", forbidden)
    with torch.no_grad():
        out = model(images)
        deployed = model.deployed().eval()(images)
    assert torch.equal(out.logits, deployed.logits)
    assert out.extras["branch_logits"] == {}
    with pytest.raises(ValueError, match="training mode"):
        cra_cnn_loss(out, torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("name", ["resnet50", "vgg16"])
def test_deployed_network_costs_what_the_baseline_costs(name):
    model = make_model(name)
    torch.manual_seed(0)
    baseline = BaselineNet(slim(name), CLASSES)
    deployed = model_complexity(model.deployed(), SIZE)
    assert deployed == model_complexity(baseline, SIZE)
    assert model_complexity(model, SIZE)["macs"] == deployed["macs"]          # eval forward: N_cls only
    extra = count_parameters(model) - deployed["params"]
    assert extra == count_parameters(model.ar_backbone) + count_parameters(model.ar_classifier) + \
        count_parameters(model.gamma_fc)


def test_attention_stream_is_an_independent_copy():
    model = make_model()
    own = {id(p) for p in model.backbone.parameters()}
    assert not own & {id(p) for p in model.ar_backbone.parameters()}
    for (name, p), q in zip(model.backbone.named_parameters(), model.ar_backbone.parameters()):
        assert torch.equal(p, q), name                 # same starting weights
    ran = {id(p) for _, m in model.ar_backbone._steps for p in m.parameters()}
    assert ran == {id(p) for p in model.ar_backbone.parameters()}   # the copy runs its own weights
    images, _ = batch(2)
    model.eval()
    with torch.no_grad():
        before = model.backbone(images)["conv5_x"]
        for q in model.ar_backbone.parameters():
            q.add_(0.5)
        assert torch.equal(model.backbone(images)["conv5_x"], before)
        assert not torch.equal(model.ar_backbone(images)["conv5_x"], before)


# ---------------------------------------------------------------- training outputs and gradients
def test_training_extras_and_attend():
    model = make_model().train()
    images, targets = batch(4)
    out = model(images)
    ex = out.extras
    assert ex["attention_image"].shape == ex["redundancy_image"].shape == (4, 3, ATT, ATT)
    assert ex["gamma_raw"].shape == ex["gamma"].shape == (4, 4) and ex["theta"].shape == (4, 2, 3)
    assert ex["branch_logits"]["ar"].shape == (4, CLASSES)
    assert torch.allclose(ex["gamma"], torch.tensor([E] * 4), atol=1e-6)    # starts at E
    terms = cra_cnn_loss(out, targets)
    assert all(torch.isfinite(v) for v in terms.values())
    model.eval()
    with torch.no_grad():
        seen = model.attend(images)
    crop = sample_affine(images, torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]] * 4), ATT)
    assert torch.allclose(seen["attention"], crop, atol=1e-6)     # E = the centred half crop
    assert seen["redundancy"].shape == (4, 3, ATT, ATT) and seen["gamma"].shape == (4, 4)


@pytest.mark.parametrize("term", ["ce_ar", "cntr"])
def test_gamma_layer_is_trained_through_the_sampling(term):
    model = make_model(restriction="off").train()
    images, targets = batch(4)
    terms = cra_cnn_loss(model(images), targets)
    assert terms["res"].item() == 0.0
    terms[term].backward()
    grad = model.gamma_fc.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert model.classifier.weight.grad is None          # N_cls's classifier is not on this path


class _LiteralART(torch.nn.Module):
    """Stands in for the ART module: image m's attention image is ``attention[m]`` everywhere and its
    redundancy image ``redundancy[m]`` everywhere (3 channels, 4 x 4 px)."""

    def __init__(self, attention, redundancy):
        super().__init__()
        self.attention, self.redundancy = attention, redundancy

    def forward(self, images, gamma_raw):
        full = lambda values: torch.tensor(values).view(-1, 1, 1, 1).expand(-1, 3, 4, 4).clone()  # noqa: E731
        return {"attention": full(self.attention), "redundancy": full(self.redundancy), "mask": None,
                "gamma_raw": gamma_raw, "gamma": gamma_raw, "theta": None}


class _Identity(torch.nn.Module):
    """Stands in for N_ar's backbone: the image itself as the top feature map (pooling = channel means)."""

    def __init__(self, stage):
        super().__init__()
        self.stage = stage

    def forward(self, images, stages=None):
        return {self.stage: images}


def test_eq8_attention_and_redundancy_features_reach_the_triplet_in_their_roles():
    model = make_model(margin=1.0, restriction="off").train()
    # N_ar = identity backbone + identity classifier: f_ar of an image whose pixels are all v is (v, v, v)
    model.ar_backbone = _Identity(model.stage)
    model.ar_classifier = torch.nn.Linear(3, 3)
    with torch.no_grad():
        model.ar_classifier.weight.copy_(torch.eye(3))
        model.ar_classifier.bias.zero_()
    model.art = _LiteralART(attention=[0.0, 3.0], redundancy=[1.0, 1.5])
    images, _ = batch(2)
    targets = torch.tensor([0, 2])
    out = model(images)
    assert torch.equal(out.extras["contrast_attention"], torch.tensor([[0.0] * 3, [3.0] * 3]))
    assert torch.equal(out.extras["contrast_redundancy"], torch.tensor([[1.0] * 3, [1.5] * 3]))
    terms = cra_cnn_loss(out, targets)
    # eq. 8, pair (0, 1), margin 1, d Euclidean over 3 equal entries (a factor sqrt 3):
    #   max(d(r0, r1) - d(r0, a0) + 1, 0) = max(0.5 r3 - 1 r3 + 1, 0) = 1 - 0.5 r3 = 0.1340
    #   max(d(r1, r0) - d(r1, a1) + 1, 0) = max(0.5 r3 - 1.5 r3 + 1, 0) = 0
    # mean over the two hinges: (1 - 0.5 r3) / 2 = 0.0670. With a and r swapped it would be
    # ((3 r3 - r3 + 1) + (3 r3 - 1.5 r3 + 1)) / 2 = (3.5 r3 + 2) / 2 = 4.03.
    r3 = math.sqrt(3.0)
    assert terms["cntr"].item() == pytest.approx((1.0 - 0.5 * r3) / 2.0, abs=1e-5)
    # L_cls_ar: equal logits give log 3 here (which image it classifies is checked in the next test)
    assert terms["ce_ar"].item() == pytest.approx(math.log(3.0), abs=1e-6)


def test_eq9_cls_ar_classifies_the_attention_image_not_the_redundancy_image():
    model = make_model(restriction="off").train()
    model.ar_backbone = _Identity(model.stage)
    model.ar_classifier = torch.nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.ar_classifier.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    # attention pixels 2 -> logits (2, 0, 0); redundancy pixels 0 -> logits (0, 0, 0)
    model.art = _LiteralART(attention=[2.0, 2.0], redundancy=[0.0, 0.0])
    images, _ = batch(2)
    terms = cra_cnn_loss(model(images), torch.tensor([0, 1]))
    # by hand: image 0 (class 0): -log(e^2 / (e^2 + 2)); image 1 (class 1): -log(1 / (e^2 + 2))
    e2 = math.exp(2.0)
    expected = (-math.log(e2 / (e2 + 2.0)) - math.log(1.0 / (e2 + 2.0))) / 2.0
    assert terms["ce_ar"].item() == pytest.approx(expected, abs=1e-5)   # the redundancy image would give log 3


@pytest.mark.parametrize("term", ["ce_ar", "cntr"])
def test_n_ar_losses_reach_the_classification_streams_backbone(term):
    # Gamma's layer starts at zero weights by default, which blocks the path at the start; random weights here
    model = make_model(restriction="off", zero_init_gamma=False).train()
    images, targets = batch(4)
    terms = cra_cnn_loss(model(images), targets)
    terms[term].backward()
    grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum().item() for g in grads) > 0     # through Gamma and the sampling
    assert model.classifier.weight.grad is None                       # N_cls's classifier is not on this path


def test_n_ar_loss_gradient_at_the_backbone_matches_a_finite_difference():
    # ce_ar as a function of one N_cls backbone weight, in double precision, without the gradient clip (which
    # changes the gradient on purpose): the central difference is the reference
    torch.manual_seed(0)
    model = build_cra_cnn(slim("vgg16"), CLASSES, CRACNNConfig(attention_size=ATT, restriction="off",
                                                               zero_init_gamma=False, theta_grad_clip=None))
    model = model.double().train()
    images, targets = batch(2)
    images = images.double()
    # batch norm in training mode changes its running statistics only, not the output of this batch
    loss = lambda: cra_cnn_loss(model(images), targets)["ce_ar"]  # noqa: E731
    loss().backward()
    weight = next(p for p in model.backbone.parameters() if p.dim() == 4)
    index = tuple(int(i) for i in torch.nonzero(weight.grad.abs() == weight.grad.abs().max())[0])
    analytic = weight.grad[index].item()
    assert analytic != 0.0
    step = 1e-7   # small: bilinear sampling and ReLU are piecewise linear, a larger step crosses their kinks
    with torch.no_grad():
        weight[index] += step
        plus = loss().item()
        weight[index] -= 2 * step
        minus = loss().item()
        weight[index] += step
    assert (plus - minus) / (2 * step) == pytest.approx(analytic, rel=1e-4)


def test_standalone_stn_is_a_plain_stn():
    from fgvc_lib.models.baseline import cross_entropy_loss
    from fgvc_lib.models.cra_cnn import build_standalone_stn

    torch.manual_seed(0)
    model = build_standalone_stn(slim("vgg16"), CLASSES, CRACNNConfig(attention_size=ATT)).train()
    assert model.gamma_fc.out_features == 6 and model.config.transform == "free"
    images, targets = batch(2)
    out = model(images)
    # the identity at the start: the attention image is the whole image resized (align_corners grid)
    resized = torch.nn.functional.interpolate(images, size=(ATT, ATT), mode="bilinear", align_corners=True)
    assert torch.allclose(out.extras["attention_image"], resized, atol=1e-4)   # float rounding of the grid
    # its prediction is the classifier on that image, in training and at test time alike
    model.eval()
    with torch.no_grad():
        expected = model.classifier(model.classifier_backbone(resized, (model.stage,))[model.stage].mean(dim=(2, 3)))
        assert torch.allclose(model(images).logits, expected, atol=1e-4)
    model.train()
    terms = cross_entropy_loss(model(images), targets)
    assert set(terms) == {"ce"}
    terms["ce"].backward()
    assert (model.gamma_fc.bias.grad != 0).any()          # the localization net learns through the sampler
    assert not hasattr(model, "ar_backbone")              # no N_ar, no triplet, no redundancy loss


def test_free_stn_variant_has_six_unconstrained_parameters():
    model = make_model(transform="free").train()
    assert model.gamma_fc.out_features == 6
    images, targets = batch(2)
    out = model(images)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert torch.equal(out.extras["theta"], identity.expand(2, 2, 3))     # STN start: the identity
    free = torch.tensor([2.0, 0.3, -1.5, 0.1, -2.5, 0.7])
    with torch.no_grad():
        model.gamma_fc.bias.copy_(free)
    out = model(images)
    assert torch.equal(out.extras["theta"][0].flatten(), free)            # no tanh, no bound
    terms = cra_cnn_loss(out, targets)
    assert terms["res"].item() == 0.0
    terms["ce_ar"].backward()
    # every entry learns: each row of the localization layer's weight gets a gradient. (Not its bias: the per-image
    # gradients are clipped to [-1, 1] (clip_theta_grad), and two images clipped to +1 and -1 sum to exactly 0, which
    # happened on an Intel AVX512 machine; the weight's row sums them times each image's own features, which differ.)
    assert (model.gamma_fc.weight.grad.abs().sum(dim=1) != 0).all()


def test_theta_gradient_clip_of_the_official_code():
    theta = torch.zeros(2, 2, 3, requires_grad=True)
    weights = torch.tensor([[[5.0, -0.1, 0.2], [0.0, -3.0, 0.3]], [[0.05, 0.0, 9.0], [-9.0, 0.4, 0.0]]])
    (clip_theta_grad(theta, 1.0) * weights).sum().div(2).backward()    # a batch-mean loss
    assert torch.allclose(theta.grad * 2, weights.clamp(-1.0, 1.0))
    assert clip_theta_grad(theta, None) is theta


def test_official_code_configuration_trains():
    torch.manual_seed(0)
    model = build_cra_cnn(slim("vgg16"), CLASSES, CRACNNConfig.official_code(attention_size=ATT)).train()
    images, targets = batch(4)
    terms = cra_cnn_loss(model(images), targets)
    sum(terms.values()).backward()
    assert all(torch.isfinite(v) for v in terms.values())
    assert model.gamma_fc.weight.grad.abs().max() > 0


# ---------------------------------------------------------------- configuration errors
@pytest.mark.parametrize("changes, message", [
    ({"alpha_l": 0.0}, r"alpha_l.*\(0, 1\]"), ({"alpha_l": 1.5}, r"alpha_l.*\(0, 1\]"),
    ({"alpha_s": -0.1}, r"alpha_s.*\(0, 1\]"), ({"attention_size": 1}, "attention_size.*>= 2"),
    ({"margin": -0.1}, "margin.*>= 0"), ({"thresholds": (0.4, 0.4, -0.1, 0.4)}, "thresholds.*>= 0"),
    ({"expectation": (0.0, 0.0, 0.5)}, "expectation.*4 entries"),
    ({"expectation": (0.0, 0.0, 1.0, 0.0)}, "expectation.*alpha_s"),
    ({"restriction": "sometimes"}, "restriction.*schedule"), ({"transform": "affine"}, "transform.*free"),
    ({"distance": "l1"}, "distance.*squared"), ({"pairing": "same_class"}, "pairing.*consecutive"),
    ({"triplet": "x"}, "triplet.*paper"), ({"contrast_features": "x"}, "contrast_features.*logits"),
    ({"redundancy_resolution": "x"}, "redundancy_resolution.*input"),
    ({"schedule_block": 0}, "schedule_block.*>= 1"), ({"restriction_eps": 0.0}, "restriction_eps.*> 0"),
    ({"theta_grad_clip": 0.0}, "theta_grad_clip.*> 0"),
])
def test_bad_configuration_raises(changes, message):
    with pytest.raises(ValueError, match=message):
        CRACNNConfig(**changes).validate()


def test_bad_model_arguments_raise():
    with pytest.raises(ValueError, match="attention_size must be >= 32"):
        build_cra_cnn(slim(), CLASSES, CRACNNConfig(attention_size=16))
    with pytest.raises(ValueError, match="num_classes"):
        build_cra_cnn(slim(), 1, CRACNNConfig(attention_size=ATT))


def test_default_training_stays_finite_where_the_unclipped_transform_diverges():
    """The default clips the gradient reaching the affine matrix (the official code's choice); without
    it a slim ResNet-50 blew Gamma up within a few epochs at the paper's lr in our runs."""
    from fgvc_lib.engine import TrainConfig, fit

    x, y = batch(8, seed=3)
    loader = [(x[:4], y[:4]), (x[4:], y[4:])]
    gammas = {}
    for clip in (1.0, None):
        model = make_model(seed=1, theta_grad_clip=clip)
        result = fit(model, loader, cra_cnn_loss, TrainConfig(epochs=4, lr=1e-3, progress=False))
        model.eval()
        with torch.no_grad():
            gammas[clip] = model.attend(x)["gamma_raw"].abs().max().item()
        if clip is not None:
            assert math.isfinite(result.history.last["train_loss"])
    assert CRACNNConfig().theta_grad_clip == 1.0
    assert gammas[1.0] < 10.0
    assert not gammas[None] < 10.0      # nan or a blown-up Gamma


def test_identity_parameters_give_the_whole_image_and_a_quarter_turn_rotates_it():
    image = torch.randn(1, 3, 9, 9, dtype=torch.float64)
    identity = attention_theta(torch.tensor([[0.0, 0.0, 1.0, 0.0]], dtype=torch.float64))
    assert torch.allclose(sample_affine(image, identity, 9), image)            # scale 1, no shift: the input
    quarter = attention_theta(torch.tensor([[0.0, 0.0, 1.0, math.pi / 2]], dtype=torch.float64))
    rotated = sample_affine(image, quarter, 9)
    # output (row i, column j) sits at (x, y) and reads the input at (x cos a - y sin a, x sin a + y cos a)
    # = (-y, x): row j, column 8 - i, which is a counter-clockwise quarter turn
    expected = torch.empty_like(image)
    for i in range(9):
        for j in range(9):
            expected[..., i, j] = image[..., j, 8 - i]
    assert torch.allclose(rotated, expected, atol=1e-9)
    assert torch.allclose(rotated, torch.rot90(image, k=1, dims=(2, 3)), atol=1e-9)
