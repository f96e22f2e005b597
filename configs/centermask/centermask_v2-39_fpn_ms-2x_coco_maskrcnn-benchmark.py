# CenterMask V2-39-FPN of the paper code (maskrcnn-benchmark), ms 2x (its README: 37.7 mask AP / 42.6 box AP on
# val2017). The 3x config with the 2x schedule (180k iters); its checkpoint has the 3x one's layout.
_base_ = ['../_base_/models/centermask_vovnet-fpn.py', '../_base_/common/ms-poly-180k_coco-instance.py',
          '../_base_/models/centermask_maskrcnn-benchmark.py']

model = dict(_base_.maskrcnn_benchmark_model, backbone=dict(
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vovnet39_ese_mmdet.pth')))
# the paper code's test resize (maskrcnn-benchmark: the long side truncated, not rounded)
test_pipeline = [_base_.test_pipeline[0], dict(_base_.test_pipeline[1], type='MaskRCNNBenchmarkResize')
                 ] + _base_.test_pipeline[2:]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
