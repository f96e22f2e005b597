import torch
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
