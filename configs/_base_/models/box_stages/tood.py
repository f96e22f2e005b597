# mmdet's TOOD head (the settings of mmdet's tood_r50_fpn_1x_coco) as CenterMask's box stage: task-aligned head and
# task-aligned assignment (train_cfg.rpn), quality focal and GIoU losses. num_classes comes from CenterMask's
# num_classes. TOOD trains its first initial_epoch epochs with ATSS assignment and focal loss, counting epochs in
# mmengine's message hub; CenterMask's schedules are iteration-based (the epoch stays 0), so initial_epoch=0 here:
# the task-aligned phase from the first iteration.
box_stage_head = dict(
    _delete_=True,
    type='TOODHead', in_channels=256, stacked_convs=6, feat_channels=256, anchor_type='anchor_free',
    anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8, scales_per_octave=1,
                          strides=[8, 16, 32, 64, 128]),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0], target_stds=[0.1, 0.1, 0.2, 0.2]),
    initial_loss_cls=dict(type='FocalLoss', use_sigmoid=True, activated=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
    loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, activated=True, beta=2.0, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=2.0))
box_stage_train_cfg = dict(initial_epoch=0, initial_assigner=dict(type='ATSSAssigner', topk=9),
                           assigner=dict(type='TaskAlignedAssigner', topk=13), alpha=1, beta=6, allowed_border=-1,
                           pos_weight=-1, debug=False)
