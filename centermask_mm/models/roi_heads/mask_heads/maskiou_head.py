"""MaskIoU head with centermask2's MaskIoU targets (ref §6; findings D10)."""
import numpy as np
import pycocotools.mask as mask_utils
import torch
from mmcv.cnn import MaxPool2d
from mmdet.models.roi_heads.mask_heads import MaskIoUHead
from mmdet.registry import MODELS
from mmdet.structures.mask import PolygonMasks
from torch import Tensor

AREA_RATIOS = ('reference', 'mmdet')


@MODELS.register_module()
class CenterMaskIoUHead(MaskIoUHead):
    """mmdet's :class:`MaskIoUHead` (same layers, loss and keys) whose targets follow centermask2's
    ``mask_rcnn_loss`` when ``area_ratio='reference'`` (the default):

    * the share of the GT instance inside the RoI is the pycocotools area of its polygons shifted to the RoI's
      float origin and rasterised in an ``int(w) x int(h)`` canvas, over the polygons' area, clamped to [0, 1] and
      to at least 1e-10 (mmdet: exact area of the polygons cropped by the integer box, ``+1e-7``);
    * ``IoU = max(overlap, 0) / max(|pred| + full - overlap, 1)`` with ``full = |target| / ratio`` (mmdet leaves
      the union unclamped, so an empty prediction of an empty target gives NaN instead of 0; both are excluded
      from the loss, which only counts targets > 0).

    Bitmap GT masks (no polygons, which the reference requires) use mmdet's area ratio. ``area_ratio='mmdet'``
    gives mmdet's targets unchanged.

    Input (§6): ``forward(mask_feat [N, C, R, R], mask_preds [N, mask_size, mask_size]) -> [N, num_classes]``,
    ``R = roi_feat_size`` (14). The mask probability is max-pooled to ``R x R`` with kernel and stride
    ``mask_size / R``: 2 for the reference's 28 (mmdet's fixed ``MaxPool2d(2, 2)``, so the same module and outputs),
    4 for the 56x56 masks of ``SAGMaskHead(mask_size=56)``. The targets are computed at ``mask_size`` (pixel counts
    of the prediction and target in the same grid), so they need no change.
    """

    def __init__(self, area_ratio: str = 'reference', mask_size: int = 28, roi_feat_size: int = 14, **kwargs):
        if area_ratio not in AREA_RATIOS:
            raise ValueError(f'CenterMaskIoUHead: area_ratio must be one of {AREA_RATIOS}, got {area_ratio!r}')
        if isinstance(mask_size, bool) or not isinstance(mask_size, int) or mask_size < roi_feat_size or \
                mask_size % roi_feat_size:
            raise ValueError(f'CenterMaskIoUHead: mask_size={mask_size!r} must be a multiple of '
                             f'roi_feat_size={roi_feat_size} (the mask is max-pooled to the features\' size)')
        super().__init__(roi_feat_size=roi_feat_size, **kwargs)
        self.area_ratio = area_ratio
        self.mask_size = mask_size
        self.max_pool = MaxPool2d(mask_size // roi_feat_size, mask_size // roi_feat_size)

    def get_targets(self, sampling_results, batch_gt_instances, mask_preds: Tensor, mask_targets: Tensor,
                    rcnn_train_cfg) -> Tensor:
        if self.area_ratio == 'mmdet':
            return super().get_targets(sampling_results, batch_gt_instances, mask_preds, mask_targets,
                                       rcnn_train_cfg)
        ratios = torch.cat([
            self._reference_area_ratio(res.pos_priors, res.pos_assigned_gt_inds, gt.masks)
            for res, gt in zip(sampling_results, batch_gt_instances)
        ]).clamp(min=1e-10)
        preds = (mask_preds > rcnn_train_cfg.mask_thr_binary).float()
        overlap = (preds * mask_targets).sum((-1, -2)).clamp(min=0)
        full = mask_targets.sum((-1, -2)) / ratios
        union = (preds.sum((-1, -2)) + full - overlap).clamp(min=1)
        return overlap / union

    def _reference_area_ratio(self, rois: Tensor, gt_inds: Tensor, gt_masks) -> Tensor:
        """``[n]`` share of each assigned GT instance inside its RoI (``rois [n, 4]``, unclipped)."""
        if not isinstance(gt_masks, PolygonMasks):
            return self._get_area_ratio(rois, gt_inds, gt_masks)
        gt_areas = gt_masks.areas
        ratios = []
        for (x1, y1, x2, y2), ind in zip(rois.detach().cpu().numpy().astype(np.float64), gt_inds.tolist()):
            h, w = int(y2 - y1), int(x2 - x1)
            inside = 0.0
            if h > 0 and w > 0:
                shifted = []
                for poly in gt_masks.masks[ind]:
                    poly = np.asarray(poly, dtype=np.float64).copy()
                    poly[0::2] -= x1
                    poly[1::2] -= y1
                    shifted.append(poly)
                inside = float(mask_utils.area(mask_utils.frPyObjects(shifted, h, w)).sum())
            ratios.append(min(max(inside / gt_areas[ind], 0.0), 1.0) if gt_areas[ind] > 0 else 0.0)
        return rois.new_tensor(ratios)
