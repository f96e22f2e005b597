# Ablation (mask size): 56x56 SAG-Mask masks, targets and MaskIoU input instead of 28x28 (_base_/models/sag-mask-56.py).
_base_ = ['../centermask/centermask_v2-39_fpn_ms-3x_coco.py', '../_base_/models/sag-mask-56.py']

model = dict(roi_head=_base_.mask_56_roi_head, train_cfg=_base_.mask_56_train_cfg)
