# CenterMask-Lite V2-39-FPN of the paper code (maskrcnn-benchmark), ms 4x (its README: 36.3 mask AP / 40.7 box AP).
_base_ = './centermask-lite_v2-19_fpn_ms-4x_coco_maskrcnn-benchmark.py'

model = dict(backbone=dict(arch='V-39-eSE'))
