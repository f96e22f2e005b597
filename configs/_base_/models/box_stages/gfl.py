# mmdet's GFL head (the settings of mmdet's gfl_r50_fpn_1x_coco) as CenterMask's box stage: ATSS assignment
# (train_cfg.rpn), quality focal, distribution focal and GIoU losses. num_classes comes from CenterMask's num_classes.
box_stage_head = dict(
    _delete_=True,
    type='GFLHead', in_channels=256, stacked_convs=4, feat_channels=256, reg_max=16,
    anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8, scales_per_octave=1,
                          strides=[8, 16, 32, 64, 128]),
    loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
    loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
    loss_bbox=dict(type='GIoULoss', loss_weight=2.0))
box_stage_train_cfg = dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1, debug=False)
