# CenterMask V2-39-FPN of the paper code (maskrcnn-benchmark), ms 3x (its README: 38.5 mask AP / 43.5 box AP on
# val2017; 2x: centermask_v2-39_fpn_ms-2x_coco_maskrcnn-benchmark.py).
# Load a converted checkpoint (tools/model_converters/centermask2mmdet.py).
_base_ = ['./centermask_v2-39_fpn_ms-3x_coco.py', '../_base_/models/centermask_maskrcnn-benchmark.py']

model = _base_.maskrcnn_benchmark_model
# the paper code's test resize (maskrcnn-benchmark: the long side truncated, not rounded)
test_pipeline = [_base_.test_pipeline[0], dict(_base_.test_pipeline[1], type='MaskRCNNBenchmarkResize')
                 ] + _base_.test_pipeline[2:]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
