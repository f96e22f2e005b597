# CenterMask-Lite V2-19-FPN of the paper code (maskrcnn-benchmark), ms 4x (its README: 32.4 mask AP / 35.9 box AP).
_base_ = ['./centermask-lite_v2-19_fpn_ms-4x_coco.py', '../_base_/models/centermask_maskrcnn-benchmark.py']

model = _base_.maskrcnn_benchmark_model
