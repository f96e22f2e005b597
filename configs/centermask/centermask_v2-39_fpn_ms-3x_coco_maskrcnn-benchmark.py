# CenterMask V2-39-FPN of the paper code (maskrcnn-benchmark), ms 3x (its README: 38.5 mask AP / 43.5 box AP on
# val2017; 2x: centermask_v2-39_fpn_ms-2x_coco_maskrcnn-benchmark.py).
# Load a converted checkpoint (tools/model_converters/centermask2mmdet.py).
_base_ = ['./centermask_v2-39_fpn_ms-3x_coco.py', '../_base_/models/centermask_maskrcnn-benchmark.py']

model = _base_.maskrcnn_benchmark_model
