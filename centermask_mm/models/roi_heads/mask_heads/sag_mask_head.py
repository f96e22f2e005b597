"""Spatial-attention-guided mask head, SAG-Mask (CenterMask §2.4; ref §4.1)."""
import torch
import torch.nn as nn
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS
from torch import Tensor


class SpatialAttention(nn.Module):
    """Spatial attention module, SAM (ref §4.1 ``spatialAtt``).

    ``x [N, C, H, W]`` -> ``a = mean_c(x)``, ``m = max_c(x)`` (``[N, 1, H, W]`` each) ->
    ``s = sigmoid(conv3x3([a, m]))`` (2 -> 1 channels, no bias) -> ``x * s``.
    """

    def __init__(self, kernel_size: int = 3):
        super().__init__()
        if kernel_size not in (3, 7):
            raise ValueError(f'SpatialAttention: kernel_size must be 3 or 7, got {kernel_size}')
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


@MODELS.register_module()
class SAGMaskHead(FCNMaskHead):
    """mmdet's :class:`FCNMaskHead` (convs, 2x deconv to 28x28, class-specific 1x1 logits, mask targets, mean
    BCE loss, pasting) with a :class:`SpatialAttention` between the convs and the deconv, which FCNMaskHead has no
    hook for. The predictor is initialised with normal(std=0.001) as in the reference.

    ``forward(x [N, in_channels, 14, 14]) -> [N, num_classes, 28, 28]`` mask logits.
    """

    def __init__(self, sam_kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.spatial_attention = SpatialAttention(sam_kernel_size)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.kaiming_normal_(self.spatial_attention.conv.weight, mode='fan_out', nonlinearity='relu')
        nn.init.normal_(self.conv_logits.weight, std=0.001)
        nn.init.constant_(self.conv_logits.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = conv(x)
        x = self.spatial_attention(x)
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == 'deconv':
                x = self.relu(x)
        return self.conv_logits(x)
