# CenterMask-Lite V2-19-FPN of the paper code (maskrcnn-benchmark), ms 4x (its README: 32.4 mask AP / 35.9 box AP).
_base_ = ['./centermask-lite_v2-19_fpn_ms-4x_coco.py', '../_base_/models/centermask_maskrcnn-benchmark.py']

model = _base_.maskrcnn_benchmark_model
# the paper code's test resize (maskrcnn-benchmark: the long side truncated, not rounded)
test_pipeline = [_base_.test_pipeline[0], dict(_base_.test_pipeline[1], type='MaskRCNNBenchmarkResize')
                 ] + _base_.test_pipeline[2:]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
