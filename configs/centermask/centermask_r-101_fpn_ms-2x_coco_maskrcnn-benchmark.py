# CenterMask R-101-FPN of the paper code (maskrcnn-benchmark), ms 2x (its README: 38.0 mask AP / 43.1 box AP on
# val2017; 38.3 / 43.1 on test-dev).
_base_ = './centermask_r-50_fpn_ms-2x_coco_maskrcnn-benchmark.py'

model = dict(backbone=dict(depth=101, init_cfg=dict(checkpoint='open-mmlab://detectron2/resnet101_caffe')))
