# Ablation (SAG-Mask): spatial attention (SAM) off, i.e. a plain FCN mask head; targets and init unchanged.
_base_ = '../centermask/centermask_v2-39_fpn_ms-3x_coco.py'

model = dict(roi_head=dict(mask_head=dict(with_sam=False)))
