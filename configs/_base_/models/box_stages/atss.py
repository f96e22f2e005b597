# mmdet's ATSS head (the settings of mmdet's atss_r50_fpn_1x_coco) as CenterMask's box stage: its own ATSS assigner
# (train_cfg.rpn), focal/GIoU/centerness losses and box decoding. num_classes comes from CenterMask's num_classes.
box_stage_head = dict(
    _delete_=True,
    type='ATSSHead', in_channels=256, stacked_convs=4, feat_channels=256,
    anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8, scales_per_octave=1,
                          strides=[8, 16, 32, 64, 128]),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0], target_stds=[0.1, 0.1, 0.2, 0.2]),
    loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
    loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
box_stage_train_cfg = dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1, debug=False)
