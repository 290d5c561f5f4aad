"""The spatial-attention oracle (fgvc_lib.models.mask_pooling) against a literal evaluation of its pooling."""
import pytest
import torch

from fgvc_lib.backbones import build_backbone
from fgvc_lib.models.mask_pooling import MaskPooledNet, strided_baseline


def _pooled_by_hand(features, mask):
    """sum_ij w_ij F_cij / sum_ij w_ij, with w_ij the share of cell (i, j)'s pixels inside the mask, cell by cell."""
    n, c, h, w = features.shape
    cell_h, cell_w = mask.shape[-2] // h, mask.shape[-1] // w
    out = torch.zeros(n, c)
    for b in range(n):
        weights = torch.zeros(h, w)
        for i in range(h):
            for j in range(w):
                weights[i, j] = mask[b, i * cell_h:(i + 1) * cell_h, j * cell_w:(j + 1) * cell_w].mean()
        if weights.sum() == 0:
            weights = torch.ones(h, w)
        for k in range(c):
            out[b, k] = (features[b, k] * weights).sum() / weights.sum()
    return out


def test_mask_pooling_weights_each_cell_by_its_share_of_the_region():
    torch.manual_seed(0)
    model = MaskPooledNet(build_backbone("vgg16", width=0.125, batch_norm=True), 5, output_stride=8).eval()
    images = torch.randn(3, 4, 64, 64)
    mask = torch.zeros(3, 64, 64)
    mask[0, 10:30, 5:20] = 1.0          # a box over parts of several cells
    mask[1, 40:41, 40:44] = 1.0         # a sliver inside one cell
    images[:, 3] = mask                 # image 2: an empty mask -> the plain average
    with torch.no_grad():
        output = model(images)
        features = output.extras["features"][model.stage]
        assert features.shape[-2:] == (8, 8)                                # stride 8 at 64 px
        expected = model.classifier(_pooled_by_hand(features, mask))
    assert torch.allclose(output.logits, expected, atol=1e-5)
    plain = model.classifier(features.mean(dim=(2, 3)))
    assert torch.allclose(output.logits[2], plain[2], atol=1e-5)
    assert not torch.allclose(output.logits[0], plain[0], atol=1e-3)        # the mask changes the pooling


def test_mask_pooling_needs_the_mask_channel_and_the_reference_runs_at_the_same_stride():
    model = MaskPooledNet(build_backbone("vgg16", width=0.125, batch_norm=True), 5, output_stride=8)
    with pytest.raises(ValueError, match="data option 'mask'"):
        model(torch.randn(2, 3, 64, 64))
    reference = strided_baseline(build_backbone("vgg16", width=0.125, batch_norm=True), 5, output_stride=8)
    features = reference(torch.randn(2, 3, 64, 64)).extras["features"][reference.stage]
    assert features.shape[-2:] == (8, 8)
    published = strided_baseline(build_backbone("vgg16", width=0.125, batch_norm=True), 5)
    assert published(torch.randn(2, 3, 64, 64)).extras["features"][published.stage].shape[-2:] == (4, 4)
