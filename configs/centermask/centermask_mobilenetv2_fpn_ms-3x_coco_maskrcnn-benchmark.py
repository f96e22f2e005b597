# CenterMask MobileNetV2-FPN of the paper code (maskrcnn-benchmark), ms 3x (its README: 31.2 mask AP / 35.5 box AP
# on val2017). Backbone: mmdet's registered MobileNetV2 (no code of ours); its checkpoint is not convertible yet.
_base_ = './centermask_v2-39_fpn_ms-3x_coco_maskrcnn-benchmark.py'

model = dict(backbone=_base_.maskrcnn_benchmark_mobilenetv2, neck=dict(in_channels=_base_.mobilenetv2_out_channels))
