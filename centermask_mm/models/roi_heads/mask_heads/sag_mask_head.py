"""Spatial-attention-guided mask head, SAG-Mask (CenterMask §2.4; ref §4.1)."""
from typing import List

import torch
import torch.nn as nn
from mmcv.cnn import build_upsample_layer
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

    ``forward(x [N, in_channels, 14, 14]) -> [N, num_classes, mask_size, mask_size]`` mask logits (28x28 by default).

    Mask targets (findings D4): mmdet's ``mask_target`` clips each RoI to the image before cropping the GT mask,
    while the RoI features are pooled from the unclipped FCOS box, so a RoI crossing the border learns a stretched
    target. With ``clip_target_rois=False`` (the default; centermask2's ``mask_rcnn_loss`` crops the polygons in the
    unclipped proposal box) the GT mask (polygons or bitmaps) is cropped and resized in the unclipped RoI;
    ``True`` gives mmdet's targets. The MaskIoU targets are derived from these targets.

    ``with_sam=False`` (the SAM ablation, configs/ablations/) drops the spatial attention and leaves a plain FCN mask
    head with everything else unchanged (targets, init, predictor).

    Mask size: ``mask_size`` (28, the reference's, §4.1) is the side of the predicted masks. A larger one repeats
    the upsampling stage of §4.1 step 3 (deconv 2x2 stride 2 + ReLU, Kaiming fan_out init as mmdet gives
    ``upsample``) on the upsampled features until ``roi_feat_size * scale_factor ** stages == mask_size``: for 56,
    14 -> 28 (``upsample``) -> 56 (``extra_upsamples[0]``), then the 1x1 logits at 56x56. A second upsampling rather
    than a larger RoI (RoIAlign 28x28) because the RoI pooling (§4.2, §5), the 14x14 convs and SAM, and the MaskIoU
    head's pooled features (§6) stay the reference's, and the added cost is one deconv and the logits at 56x56, where
    a 28x28 RoI would quadruple the work of every conv of both heads and the MaskIoU head's first FC. At 28 the head
    has no ``extra_upsamples`` and computes what it did before (same state-dict keys, same outputs). The targets
    follow ``train_cfg.rcnn.mask_size``, which must be the same (checked in :meth:`get_targets`); the MaskIoU head
    max-pools the mask to its 14x14 features (``CenterMaskIoUHead(mask_size=...)``); the paste takes any size.
    """

    def __init__(self, sam_kernel_size: int = 3, clip_target_rois: bool = False, with_sam: bool = True,
                 mask_size: int = 28, **kwargs):
        super().__init__(**kwargs)
        if with_sam not in (True, False):
            raise ValueError(f'SAGMaskHead: invalid with_sam={with_sam!r}; valid choices are [True, False]')
        self.spatial_attention = SpatialAttention(sam_kernel_size) if with_sam else None
        self.clip_target_rois = clip_target_rois
        self.mask_size = mask_size
        self.extra_upsamples = nn.ModuleList(
            self._build_upsample() for _ in range(self._upsample_stages(mask_size) - 1))

    def _upsample_stages(self, mask_size: int) -> int:
        """How many upsampling stages bring ``roi_feat_size`` to ``mask_size`` (1 for 14 -> 28)."""
        size, stages = self.roi_feat_size[0], 0
        if self.upsample is not None and self.scale_factor > 1:
            while size < mask_size:
                size, stages = size * self.scale_factor, stages + 1
        if size != mask_size or self.roi_feat_size[0] != self.roi_feat_size[1]:
            raise ValueError(f'SAGMaskHead: mask_size={mask_size!r} is not roi_feat_size={self.roi_feat_size[0]} '
                             f'times a power of the upsampling scale_factor={self.scale_factor} '
                             f'(upsample_cfg type {self.upsample_method!r}), e.g. 28 or 56 from 14 with 2')
        return stages

    def _build_upsample(self) -> nn.Module:
        """One more upsampling stage like ``upsample``, on the upsampled features (``conv_out_channels``)."""
        cfg = dict(self.upsample_cfg)
        if self.upsample_method == 'deconv':
            cfg.update(in_channels=self.conv_out_channels, out_channels=self.conv_out_channels,
                       kernel_size=self.scale_factor, stride=self.scale_factor)
        elif self.upsample_method in ('nearest', 'bilinear'):
            cfg.update(scale_factor=self.scale_factor, mode=self.upsample_method,
                       align_corners=None if self.upsample_method == 'nearest' else False)
        else:
            raise ValueError(f'SAGMaskHead: mask_size={self.mask_size} needs more than one upsampling stage, built '
                             f"for upsample_cfg type 'deconv', 'nearest' or 'bilinear', not {self.upsample_method!r}")
        return build_upsample_layer(cfg)

    def get_targets(self, sampling_results: List[SamplingResult], batch_gt_instances: InstanceList,
                    rcnn_train_cfg: ConfigDict) -> Tensor:
        """``[num_pos, mask_size, mask_size]`` targets of the positive RoIs of the batch, in RoI order; the
        ``rcnn_train_cfg.mask_size`` must be the head's ``mask_size``."""
        if _pair(rcnn_train_cfg.mask_size) != _pair(self.mask_size):
            raise ValueError(f'SAGMaskHead: train_cfg.rcnn.mask_size={rcnn_train_cfg.mask_size} differs from the mask '
                             f"head's mask_size={self.mask_size}; set both (and the MaskIoU head's) to one value")
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
        for upsample in self.extra_upsamples:  # mmdet's init of ``upsample`` (the parameter-free ones have none)
            if isinstance(upsample, nn.ConvTranspose2d):
                nn.init.kaiming_normal_(upsample.weight, mode='fan_out', nonlinearity='relu')
                nn.init.constant_(upsample.bias, 0)
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
            for upsample in self.extra_upsamples:
                x = upsample(x)
                if self.upsample_method == 'deconv':
                    x = self.relu(x)
        return self.conv_logits(x)
