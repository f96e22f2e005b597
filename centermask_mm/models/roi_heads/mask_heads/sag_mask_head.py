"""Spatial-attention-guided mask head, SAG-Mask (CenterMask §2.4; ref §4.1)."""
from typing import List

import torch
import torch.nn as nn
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.utils import InstanceList
from mmengine.config import ConfigDict
from torch import Tensor
from torch.nn.modules.utils import _pair


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

    Mask targets (findings D4): mmdet's ``mask_target`` clips each RoI to the image before cropping the GT mask,
    while the RoI features are pooled from the unclipped FCOS box, so a RoI crossing the border learns a stretched
    target. With ``clip_target_rois=False`` (the default; centermask2's ``mask_rcnn_loss`` crops the polygons in the
    unclipped proposal box) the GT mask (polygons or bitmaps) is cropped and resized in the unclipped RoI;
    ``True`` gives mmdet's targets. The MaskIoU targets are derived from these targets.

    ``with_sam=False`` (the SAM ablation, configs/ablations/) drops the spatial attention and leaves a plain FCN mask
    head with everything else unchanged (targets, init, predictor).
    """

    def __init__(self, sam_kernel_size: int = 3, clip_target_rois: bool = False, with_sam: bool = True, **kwargs):
        super().__init__(**kwargs)
        if with_sam not in (True, False):
            raise ValueError(f'SAGMaskHead: invalid with_sam={with_sam!r}; valid choices are [True, False]')
        self.spatial_attention = SpatialAttention(sam_kernel_size) if with_sam else None
        self.clip_target_rois = clip_target_rois

    def get_targets(self, sampling_results: List[SamplingResult], batch_gt_instances: InstanceList,
                    rcnn_train_cfg: ConfigDict) -> Tensor:
        """``[num_pos, mask_size, mask_size]`` targets of the positive RoIs of the batch, in RoI order."""
        if self.clip_target_rois:
            return super().get_targets(sampling_results, batch_gt_instances, rcnn_train_cfg)
        mask_size = _pair(rcnn_train_cfg.mask_size)
        binarize = not rcnn_train_cfg.get('soft_mask_target', False)
        targets = []
        for res, gt_instances in zip(sampling_results, batch_gt_instances):
            rois = res.pos_priors
            if rois.shape[0] == 0:
                targets.append(rois.new_zeros((0, ) + mask_size))
                continue
            masks = gt_instances.masks.crop_and_resize(
                rois.detach().cpu().numpy(), mask_size, inds=res.pos_assigned_gt_inds.cpu().numpy(),
                device=rois.device, binarize=binarize).to_ndarray()
            targets.append(torch.from_numpy(masks).float().to(rois.device))
        return torch.cat(targets)

    def init_weights(self) -> None:
        super().init_weights()
        if self.spatial_attention is not None:
            nn.init.kaiming_normal_(self.spatial_attention.conv.weight, mode='fan_out', nonlinearity='relu')
        nn.init.normal_(self.conv_logits.weight, std=0.001)
        nn.init.constant_(self.conv_logits.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = conv(x)
        if self.spatial_attention is not None:
            x = self.spatial_attention(x)
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == 'deconv':
                x = self.relu(x)
        return self.conv_logits(x)
