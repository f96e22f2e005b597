# Ablation (MaskIoU): no MaskIoU head; mask_scores are the FCOS box scores.
_base_ = '../centermask/centermask_v2-39_fpn_ms-3x_coco.py'

model = dict(roi_head=dict(mask_iou_head=None))
