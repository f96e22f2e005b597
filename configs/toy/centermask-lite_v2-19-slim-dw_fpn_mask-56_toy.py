# The toy CenterMask-Lite with 56x56 SAG-Mask masks, targets and MaskIoU input (_base_/models/sag-mask-56.py).
_base_ = ['./centermask-lite_v2-19-slim-dw_fpn_toy.py', '../_base_/models/sag-mask-56.py']

model = dict(roi_head=_base_.mask_56_roi_head, train_cfg=_base_.mask_56_train_cfg)
