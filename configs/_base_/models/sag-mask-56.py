# SAG-Mask at 56x56 (SAGMaskHead's docstring): a second 2x deconv stage in the mask head (14 -> 28 -> 56), targets at
# 56x56, and the MaskIoU head max-pooling the mask 4x to its 14x14 features; the RoI pooling is unchanged. Added to a
# CenterMask config with model = dict(roi_head=_base_.mask_56_roi_head, train_cfg=_base_.mask_56_train_cfg).
mask_size = 56
mask_56_roi_head = dict(mask_head=dict(mask_size=mask_size), mask_iou_head=dict(mask_size=mask_size))
mask_56_train_cfg = dict(rcnn=dict(mask_size=mask_size))
