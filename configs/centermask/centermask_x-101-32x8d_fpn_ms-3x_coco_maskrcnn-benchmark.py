# CenterMask X-101-32x8d-FPN of the paper code (maskrcnn-benchmark), ms 3x (its README: 39.1 mask AP / 44.4 box AP on
# val2017; 39.6 / 44.6 on test-dev).
_base_ = './centermask_r-101_fpn_ms-3x_coco_maskrcnn-benchmark.py'

model = dict(backbone=_base_.maskrcnn_benchmark_resnext101)
