# CenterMask V2-39-FPN, multi-scale 3x on COCO (centermask2 reference: 39.7 mask AP / 44.2 box AP).
# Pretrained backbone: convert vovnet39_ese_detectron2.pth with tools/model_converters/vovnet2mmdet.py.
_base_ = ['../_base_/models/centermask_vovnet-fpn.py', '../_base_/common/ms-poly-270k_coco-instance.py']

model = dict(backbone=dict(
    arch='V-39-eSE', init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vovnet39_ese_mmdet.pth')))
