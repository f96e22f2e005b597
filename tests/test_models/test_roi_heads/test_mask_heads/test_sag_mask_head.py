import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

from centermask_mm.models.roi_heads import SpatialAttention


def test_spatial_attention_output_and_gradient():
    sam = SpatialAttention(3)
    assert sam.conv.bias is None and sam.conv.in_channels == 2 and sam.conv.out_channels == 1
    x = torch.randn(2, 8, 14, 14, requires_grad=True)
    out = sam(x)
    pooled = torch.cat([x.mean(1, keepdim=True), x.max(1, keepdim=True)[0]], 1)
    expected = x * torch.sigmoid(torch.nn.functional.conv2d(pooled, sam.conv.weight, padding=1))
    assert torch.allclose(out, expected, atol=1e-6)
    out.sum().backward()
    assert x.grad is not None and sam.conv.weight.grad is not None
    assert sam.conv.weight.grad.abs().sum() > 0


def test_sag_mask_head_shapes_and_attention_position():
    head = MODELS.build(dict(type='SAGMaskHead', num_convs=2, roi_feat_size=14, in_channels=16,
                             conv_out_channels=16, num_classes=5))
    head.init_weights()
    assert head.conv_logits.weight.std() < 0.01  # normal(std=0.001) as the reference predictor
    x = torch.rand(3, 16, 14, 14)
    out = head(x)
    assert out.shape == (3, 5, 28, 28)
    seen = {}
    head.spatial_attention.register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    head.upsample.register_forward_pre_hook(lambda m, i: seen.update(after_sam='shape' in seen))
    head(x)
    assert seen['shape'] == (3, 16, 14, 14) and seen['after_sam']  # SAM sits after the convs, before the deconv


@pytest.mark.parametrize('with_sam', [True, False])
def test_sag_mask_head_computes_its_definition(with_sam):
    """§4.1: 3x3 convs with bias and ReLU; SAM: ``x * sigmoid(conv3x3([mean_c(x), max_c(x)]))`` (no bias); the 2x2
    stride-2 deconv with ReLU; the 1x1 class logits. ``with_sam=False`` leaves out the SAM step only."""
    head = MODELS.build(dict(type='SAGMaskHead', num_convs=2, roi_feat_size=14, in_channels=8,
                             conv_out_channels=8, num_classes=3, with_sam=with_sam))
    head.init_weights()
    for conv in head.convs:  # non-zero biases, so a dropped bias or ReLU shows
        torch.nn.init.uniform_(conv.conv.bias, -0.5, 0.5)
    torch.nn.init.uniform_(head.upsample.bias, -0.5, 0.5)
    torch.nn.init.normal_(head.conv_logits.weight, std=0.5)
    x = torch.randn(2, 8, 14, 14)
    y = x
    for conv in head.convs:
        y = torch.relu(F.conv2d(y, conv.conv.weight, conv.conv.bias, padding=1))
    if with_sam:
        gate = torch.sigmoid(F.conv2d(torch.cat([y.mean(1, keepdim=True), y.amax(1, keepdim=True)], 1),
                                      head.spatial_attention.conv.weight, padding=1))
        assert not torch.allclose(gate, torch.full_like(gate, gate.mean().item()), atol=1e-3)  # a real map
        y = y * gate
    y = torch.relu(F.conv_transpose2d(y, head.upsample.weight, head.upsample.bias, stride=2))
    expected = F.conv2d(y, head.conv_logits.weight, head.conv_logits.bias)
    with torch.no_grad():
        out = head(x)
    assert out.shape == (2, 3, 28, 28)
    assert torch.allclose(out, expected, atol=1e-5)
