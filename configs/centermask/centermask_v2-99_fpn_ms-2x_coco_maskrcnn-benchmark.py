# CenterMask V2-99-FPN of the paper code (maskrcnn-benchmark), ms 2x (its README: 39.6 mask AP / 44.8 box AP on
# val2017).
_base_ = './centermask_v2-39_fpn_ms-2x_coco_maskrcnn-benchmark.py'

model = dict(backbone=dict(arch='V-99-eSE', init_cfg=dict(checkpoint='checkpoints/vovnet99_ese_mmdet.pth')))
