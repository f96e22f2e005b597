# CenterMask-Lite V2-39-FPN, multi-scale 4x on COCO (centermask2 reference: 36.7 mask AP / 40.9 box AP).
# Pretrained backbone: convert vovnet39_ese_detectron2.pth with tools/model_converters/vovnet2mmdet.py.
_base_ = './centermask-lite_v2-19_fpn_ms-4x_coco.py'

model = dict(
    backbone=dict(arch='V-39-eSE', init_cfg=dict(checkpoint='checkpoints/vovnet39_ese_mmdet.pth')))
