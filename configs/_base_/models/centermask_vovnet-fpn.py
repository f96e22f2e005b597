# CenterMask (ref §3-§7, centermask2 Base-CenterMask-VoVNet): VoVNetV2-39 + FPN P3-P7 + FCOS + SAG-Mask + MaskIoU.
_base_ = './vovnet_backbone.py'

# How FCOS turns its maps into boxes (ref §3.3); training RoIs (<= 100/img) and test detections (50/img) share it.
# score_sqrt / clip_bbox: centermask2 decoding; maskrcnn-benchmark checkpoints want False / True.
# min_bbox_size=-1: zero-size boxes are kept through NMS as in the reference (findings D8); the final
# post-processing drops them. (0 drops them before NMS, mmdet's way.)
fcos_decode = dict(nms_pre=1000, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.6), min_bbox_size=-1,
                   score_sqrt=True, clip_bbox=False)
# mmdet's MaskIoUHead init (Caffe2Xavier FCs), for training from scratch with short warmups (the toy configs): with
# the reference's fan_out FCs, loss_mask_iou blew up in the SGD learning test and the segm AP stayed far below this
# init's.
mask_iou_init_from_scratch = [dict(type='Kaiming', override=dict(name='convs')),
                              dict(type='Caffe2Xavier', override=dict(name='fcs')),
                              dict(type='Normal', std=0.01, override=dict(name='fc_mask_iou'))]
model = dict(
    type='CenterMask',
    num_classes=80,  # the one place for the class count: CenterMask sets it in the FCOS, mask and MaskIoU heads
    data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32, **_base_.vovnet_data_preprocessor),
    backbone=dict(  # FrozenBN, FREEZE_AT 0 (ref §1.5)
        type='VoVNet', arch='V-39-eSE', out_indices=(1, 2, 3), frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True),
    neck=dict(  # P6 from the FPN output P5, P7 from ReLU(P6) (ref §3.1)
        type='FPN', in_channels=_base_.vovnet_out_channels[1:], out_channels=256, start_level=0, add_extra_convs='on_output',
        num_outs=5, relu_before_extra_convs=True,
        init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')),  # detectron2's c2_xavier_fill (findings D7)
    bbox_head=dict(
        type='CenterMaskFCOSHead', in_channels=256, stacked_convs=4, feat_channels=256,
        strides=[8, 16, 32, 64, 128], regress_ranges=((-1, 64), (64, 128), (128, 256), (256, 512), (512, 1e8)),
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True), conv_bias=True, centerness_on_reg=True,
        norm_on_bbox=True, center_sampling=True, center_sample_radius=1.5,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='FCOSIoULoss', mode='giou', smooth=1.0, loss_weight=1.0),  # centermask2's (findings D5)
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    roi_head=dict(
        type='CenterMaskRoIHead',
        mask_roi_extractor=dict(
            type='ScaleAdaptiveRoIExtractor', out_channels=256, featmap_strides=[8, 16, 32],
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0, aligned=True)),
        mask_head=dict(
            type='SAGMaskHead', num_convs=4, roi_feat_size=14, in_channels=256, conv_out_channels=256,
            loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0),
            clip_target_rois=False),  # targets cropped in the unclipped RoI, as the reference (findings D4)
        mask_iou_head=dict(
            type='CenterMaskIoUHead', area_ratio='reference', num_convs=4, num_fcs=2, roi_feat_size=14,
            in_channels=256, conv_out_channels=256, fc_out_channels=1024,
            loss_iou=dict(type='MSELoss', loss_weight=0.5),
            # centermask2 MaskIoUHead: kaiming_normal (fan_out, relu) for convs *and* FCs (findings D7)
            init_cfg=[dict(type='Kaiming', override=dict(name='convs')), dict(type='Kaiming', override=dict(name='fcs')),
                      dict(type='Normal', std=0.01, override=dict(name='fc_mask_iou'))])),
    train_cfg=dict(
        rpn_proposal=dict(fcos_decode, max_per_img=100),
        rcnn=dict(  # detectron2's matcher: IoU >= 0.5, no low-quality matches; 512 RoIs at 25 % positive
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                          match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                         add_gt_as_proposals=True),
            # MaskIoU targets binarise the mask *logits* at mask_thr_binary (mmdet MaskIoUHead.get_targets):
            # 0.0 is the reference's `logits > 0` (ref §6)
            mask_size=28, pos_weight=-1, mask_thr_binary=0.0)),
    # postprocess='detectron2': final boxes clipped to the image, empty ones dropped, masks pasted into the clipped
    # boxes (centermask2; findings D2/D3). 'mmdet' (with rpn min_bbox_size=0) gives mmdet's FCNMaskHead output.
    test_cfg=dict(rpn=dict(fcos_decode, max_per_img=50), rcnn=dict(mask_thr_binary=0.5, postprocess='detectron2')))
