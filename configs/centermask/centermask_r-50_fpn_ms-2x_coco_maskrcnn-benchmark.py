# CenterMask R-50-FPN of the paper code (maskrcnn-benchmark), ms 2x (its README: 36.4 mask AP / 41.2 box AP on val2017).
_base_ = './centermask_v2-39_fpn_ms-2x_coco_maskrcnn-benchmark.py'

model = dict(backbone=_base_.maskrcnn_benchmark_resnet50, neck=dict(in_channels=_base_.resnet_out_channels))
