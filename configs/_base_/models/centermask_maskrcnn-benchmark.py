# How the paper code (youngwanLEE/CenterMask, maskrcnn-benchmark) differs from centermask2 in the network and its
# decoding (ref §3.3, §4.2, §7.1), as model overrides for the zoo configs of its published checkpoints:
# BGR255 input with its own mean, FCOS regression exp(scale * x) in pixels (no stride normalisation), candidates
# above 0.03, score cls * ctr (no sqrt), boxes clipped to the image, legacy RoIAlign (aligned=False, 2 samples).
# Not reproduced here: its box area with +1 and eps 1e-6 in Eq. 2, its clip to (w - 1, h - 1), its mask pasting
# (maskrcnn-benchmark's Masker); the final post-processing is centermask2's.
maskrcnn_benchmark_fcos_decode = dict(score_thr=0.03, score_sqrt=False, clip_bbox=True)
maskrcnn_benchmark_model = dict(
    data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717]),
    bbox_head=dict(norm_on_bbox=False),
    roi_head=dict(mask_roi_extractor=dict(roi_layer=dict(sampling_ratio=2, aligned=False))),
    train_cfg=dict(rpn_proposal=maskrcnn_benchmark_fcos_decode),
    test_cfg=dict(rpn=maskrcnn_benchmark_fcos_decode))
# Its ResNet models: MSRA ResNets (stride in the 1x1 conv: mmdet's 'caffe' style), frozen BN, stem and first stage
# frozen (FREEZE_CONV_BODY_AT 2); its ResNeXt-101-32x8d puts the stride in the 3x3 conv ('pytorch' style).
maskrcnn_benchmark_resnet50 = dict(
    _delete_=True, type='ResNet', depth=50, num_stages=4, out_indices=(1, 2, 3), frozen_stages=1,
    norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, style='caffe',
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://detectron2/resnet50_caffe'))
resnet_out_channels = [512, 1024, 2048]  # stage3..stage5 of ResNet-50/101 and ResNeXt-101
maskrcnn_benchmark_resnext101 = dict(type='ResNeXt', groups=32, base_width=8, style='pytorch',
                                     init_cfg=dict(checkpoint='open-mmlab://detectron2/resnext101_32x8d'))
# Its MobileNetV2 models ("MNV2-FPN-RETINANET"): the stride 8/16/32 outputs (32, 96, 320 channels) of mmdet's
# MobileNetV2, SyncBN (USE_SYNCBN), nothing frozen (FREEZE_CONV_BODY_AT 0). Its ImageNet weights (FCOS's
# mobilenet_v2-ecbe2b5.pth) are not mapped; mmdet's own ImageNet MobileNetV2 is the init here (an RGB,
# ImageNet-normalised model: for training from it, set the data_preprocessor to mmdet's MobileNetV2 configs').
maskrcnn_benchmark_mobilenetv2 = dict(
    _delete_=True, type='MobileNetV2', out_indices=(2, 4, 6), frozen_stages=-1,
    norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False,
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://mmdet/mobilenet_v2'))
mobilenetv2_out_channels = [32, 96, 320]
