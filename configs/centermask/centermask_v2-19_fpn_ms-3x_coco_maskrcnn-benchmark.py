# CenterMask V2-19-FPN of the paper code (maskrcnn-benchmark), ms 3x (its README: 34.7 mask AP / 39.7 box AP on
# val2017).
_base_ = './centermask_v2-39_fpn_ms-3x_coco_maskrcnn-benchmark.py'

model = dict(backbone=dict(arch='V-19-eSE'))
