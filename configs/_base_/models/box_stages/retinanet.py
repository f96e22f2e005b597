# mmdet's RetinaNet head (the settings of mmdet's retinanet_r50_fpn) as CenterMask's box stage: 9 anchors per location,
# IoU assignment (train_cfg.rpn), focal and L1 losses. num_classes comes from CenterMask's num_classes.
box_stage_head = dict(
    _delete_=True,
    type='RetinaHead', in_channels=256, stacked_convs=4, feat_channels=256,
    anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                          strides=[8, 16, 32, 64, 128]),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0], target_stds=[1.0, 1.0, 1.0, 1.0]),
    loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
    loss_bbox=dict(type='L1Loss', loss_weight=1.0))
box_stage_train_cfg = dict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
    sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False)
