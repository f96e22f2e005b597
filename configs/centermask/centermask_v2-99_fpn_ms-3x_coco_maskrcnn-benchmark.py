# CenterMask V2-99-FPN of the paper code (maskrcnn-benchmark), ms 3x (its README: 40.2 mask AP / 45.6 box AP on val2017;
# 40.6 / 45.8 on test-dev).
_base_ = './centermask_v2-39_fpn_ms-3x_coco_maskrcnn-benchmark.py'

model = dict(backbone=dict(arch='V-99-eSE'))
