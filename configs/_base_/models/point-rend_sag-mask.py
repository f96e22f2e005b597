# PointRend on the SAG-Mask head (PointRendCenterMaskRoIHead's docstring): mmdet's MaskPointHead (3 FCs of 256, the
# coarse logits concatenated to each), trained on 14x14 points per positive RoI (3x oversampled, 75 % the most
# uncertain); at test the 28x28 logits are refined in 2 subdivision steps of 2x, 28x28 points each, to 112x112
# (PointRend's own setting reaches 224; the refined logits keep every class, so each step quadruples their memory).
# Added to a CenterMask config with model = dict(roi_head=_base_.point_rend_roi_head,
# train_cfg=_base_.point_rend_train_cfg, test_cfg=_base_.point_rend_test_cfg).
point_rend_roi_head = dict(
    type='PointRendCenterMaskRoIHead',
    point_head=dict(type='MaskPointHead', num_fcs=3, fc_channels=256, coarse_pred_each_layer=True,
                    loss_point=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0)))
point_rend_train_cfg = dict(rcnn=dict(num_points=14 * 14, oversample_ratio=3, importance_sample_ratio=0.75))
point_rend_test_cfg = dict(rcnn=dict(subdivision_steps=2, subdivision_num_points=28 * 28, scale_factor=2))
