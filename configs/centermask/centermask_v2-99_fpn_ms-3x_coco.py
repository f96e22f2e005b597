# CenterMask V2-99-FPN, multi-scale 3x on COCO (centermask2 reference: 41.4 mask AP / 46.0 box AP).
# Pretrained backbone: convert vovnet99_ese_detectron2.pth with tools/model_converters/vovnet2mmdet.py.
_base_ = './centermask_v2-39_fpn_ms-3x_coco.py'

model = dict(backbone=dict(
    arch='V-99-eSE', init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vovnet99_ese_mmdet.pth')))
