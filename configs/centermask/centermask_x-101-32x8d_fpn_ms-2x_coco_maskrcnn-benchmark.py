# CenterMask X-101-32x8d-FPN of the paper code (maskrcnn-benchmark), ms 2x (its README: 39.1 mask AP / 44.3 box AP
# on val2017).
_base_ = './centermask_r-101_fpn_ms-2x_coco_maskrcnn-benchmark.py'

model = dict(backbone=_base_.maskrcnn_benchmark_resnext101)
