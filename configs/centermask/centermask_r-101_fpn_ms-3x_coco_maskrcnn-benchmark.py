# CenterMask R-101-FPN of the paper code (maskrcnn-benchmark), ms 3x (its README: 38.6 mask AP / 43.7 box AP on
# val2017).
_base_ = './centermask_r-50_fpn_ms-3x_coco_maskrcnn-benchmark.py'

model = dict(backbone=dict(depth=101, init_cfg=dict(checkpoint='open-mmlab://detectron2/resnet101_caffe')))
