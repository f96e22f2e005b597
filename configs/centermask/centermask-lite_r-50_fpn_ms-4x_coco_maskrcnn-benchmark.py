# CenterMask-Lite R-50-FPN of the paper code (maskrcnn-benchmark), ms 4x (its README: 32.9 mask AP / 36.7 box AP,
# test-dev).
_base_ = './centermask-lite_v2-19_fpn_ms-4x_coco_maskrcnn-benchmark.py'

model = dict(backbone=_base_.maskrcnn_benchmark_resnet50, neck=dict(in_channels=_base_.resnet_out_channels))
