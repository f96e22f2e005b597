"""FCOS's IoU loss as centermask2 computes it (``centermask/layers/iou_loss.py``; ref §3.2, findings D5)."""
from typing import Optional

import torch
from mmdet.models.losses.utils import weighted_loss
from mmdet.registry import MODELS
from torch import Tensor, nn

MODES = ('iou', 'linear_iou', 'giou')


@weighted_loss
def fcos_iou_loss(pred: Tensor, target: Tensor, mode: str = 'giou', smooth: float = 1.0) -> Tensor:
    """Per-box loss for ``pred`` and ``target`` boxes ``[n, 4]`` (x1, y1, x2, y2) decoded from the same location.

    With I, U the intersection and union areas and C the area of the smallest enclosing box:
    ``iou = (I + smooth) / (U + smooth)``; ``'giou'``: ``1 - (iou - (C - U) / C)``, ``'linear_iou'``: ``1 - iou``,
    ``'iou'``: ``-log(iou)``. FCOSHead decodes ``norm_on_bbox`` predictions and targets in stride units, so the +1
    smoothing acts in stride units as in the reference (which computes the same areas from l, t, r, b).
    """
    area_pred = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_target = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    w_inter = (torch.min(pred[:, 2], target[:, 2]) - torch.max(pred[:, 0], target[:, 0])).clamp(min=0)
    h_inter = (torch.min(pred[:, 3], target[:, 3]) - torch.max(pred[:, 1], target[:, 1])).clamp(min=0)
    inter = w_inter * h_inter
    union = area_pred + area_target - inter
    ious = (inter + smooth) / (union + smooth)
    if mode == 'iou':
        return -torch.log(ious)
    if mode == 'linear_iou':
        return 1 - ious
    enclose = ((torch.max(pred[:, 2], target[:, 2]) - torch.min(pred[:, 0], target[:, 0])) *
               (torch.max(pred[:, 3], target[:, 3]) - torch.min(pred[:, 1], target[:, 1])))
    return 1 - (ious - (enclose - union) / enclose)


@MODELS.register_module()
class FCOSIoULoss(nn.Module):
    """centermask2's FCOS box loss (``LOC_LOSS_TYPE: giou``), a drop-in for mmdet's ``GIoULoss`` in ``FCOSHead``.

    It differs from mmdet's GIoU (``I / max(U, eps)``) by the ``+smooth`` on intersection and union, which
    matters for small boxes (a few stride units: a smaller gradient than mmdet's). ``forward`` takes mmdet's loss
    arguments (``weight [n]``, ``avg_factor``, ``reduction_override``); FCOSHead passes the centerness targets as
    weights and their all-reduced sum as ``avg_factor``, the reference's normalisation.
    """

    def __init__(self, mode: str = 'giou', smooth: float = 1.0, reduction: str = 'mean', loss_weight: float = 1.0):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'FCOSIoULoss: mode must be one of {MODES}, got {mode!r}')
        self.mode, self.smooth, self.reduction, self.loss_weight = mode, smooth, reduction, loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> Tensor:
        reduction = reduction_override if reduction_override else self.reduction
        if weight is not None and weight.dim() > 1:
            weight = weight.mean(-1)
        return self.loss_weight * fcos_iou_loss(pred, target, weight, mode=self.mode, smooth=self.smooth,
                                                reduction=reduction, avg_factor=avg_factor)
