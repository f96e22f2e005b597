# CenterMask V2-57-FPN, multi-scale 3x on COCO (centermask2 reference: 40.5 mask AP / 45.1 box AP).
# Pretrained backbone: convert vovnet57_ese_detectron2.pth with tools/model_converters/vovnet2mmdet.py.
_base_ = './centermask_v2-39_fpn_ms-3x_coco.py'

model = dict(backbone=dict(
    arch='V-57-eSE', init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vovnet57_ese_mmdet.pth')))
