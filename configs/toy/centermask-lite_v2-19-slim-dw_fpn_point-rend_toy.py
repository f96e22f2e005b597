# The toy CenterMask-Lite with PointRend's point head on the SAG-Mask logits (_base_/models/point-rend_sag-mask.py).
_base_ = ['./centermask-lite_v2-19-slim-dw_fpn_toy.py', '../_base_/models/point-rend_sag-mask.py']

model = dict(roi_head=_base_.point_rend_roi_head, train_cfg=_base_.point_rend_train_cfg,
             test_cfg=_base_.point_rend_test_cfg)
