# Ablation (mask refinement): PointRend's point head on the 28x28 SAG-Mask logits, masks refined to 112x112 at test
# (_base_/models/point-rend_sag-mask.py).
_base_ = ['../centermask/centermask_v2-39_fpn_ms-3x_coco.py', '../_base_/models/point-rend_sag-mask.py']

model = dict(roi_head=_base_.point_rend_roi_head, train_cfg=_base_.point_rend_train_cfg,
             test_cfg=_base_.point_rend_test_cfg)
