# CenterMask X-101-32x8d-FPN of the paper code (maskrcnn-benchmark), ms 3x (its README: 39.1 mask AP / 44.4 box AP on
# val2017; its 2x checkpoint, 39.1 / 44.3, has the same layout).
_base_ = './centermask_r-101_fpn_ms-3x_coco_maskrcnn-benchmark.py'

model = dict(backbone=dict(type='ResNeXt', groups=32, base_width=8, style='pytorch',
                           init_cfg=dict(checkpoint='open-mmlab://detectron2/resnext101_32x8d')))
