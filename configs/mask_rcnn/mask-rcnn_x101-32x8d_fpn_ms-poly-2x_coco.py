# Mask R-CNN X-101-32x8d-FPN, multi-scale 2x (CenterMask README, paper code, val2017: 38.9 mask AP / 43.7 box AP).
_base_ = './mask-rcnn_r101-caffe_fpn_ms-poly-2x_coco.py'

model = dict(backbone=_base_.maskrcnn_benchmark_resnext101)
