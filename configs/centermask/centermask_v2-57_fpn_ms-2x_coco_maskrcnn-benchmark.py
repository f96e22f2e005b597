# CenterMask V2-57-FPN of the paper code (maskrcnn-benchmark), ms 2x (its README: 38.5 mask AP / 43.8 box AP on
# val2017).
_base_ = './centermask_v2-39_fpn_ms-2x_coco_maskrcnn-benchmark.py'

model = dict(backbone=dict(arch='V-57-eSE', init_cfg=dict(checkpoint='checkpoints/vovnet57_ese_mmdet.pth')))
