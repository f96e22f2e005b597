# CenterMask V2-57-FPN of the paper code (maskrcnn-benchmark), ms 3x (its README: 39.4 mask AP / 44.6 box AP on
# val2017).
_base_ = './centermask_v2-39_fpn_ms-3x_coco_maskrcnn-benchmark.py'

model = dict(backbone=dict(arch='V-57-eSE'))
