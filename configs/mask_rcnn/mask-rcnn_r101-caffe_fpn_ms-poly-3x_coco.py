# Mask R-CNN R-101-FPN, multi-scale 3x (CenterMask README, paper code, val2017: 38.0 mask AP / 42.4 box AP).
_base_ = './mask-rcnn_r50-caffe_fpn_ms-poly-3x_coco.py'

model = dict(backbone=dict(depth=101, init_cfg=dict(checkpoint='open-mmlab://detectron2/resnet101_caffe')))
