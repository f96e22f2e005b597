# CenterMask-Lite MobileNetV2-FPN of the paper code (maskrcnn-benchmark), ms 4x (its README: 26.7 mask AP / 30.2 box
# AP, test-dev). Backbone: mmdet's registered MobileNetV2 (no code of ours); its checkpoint is not convertible yet.
_base_ = './centermask-lite_v2-19_fpn_ms-4x_coco_maskrcnn-benchmark.py'

model = dict(backbone=_base_.maskrcnn_benchmark_mobilenetv2, neck=dict(in_channels=_base_.mobilenetv2_out_channels))
