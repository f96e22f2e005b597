# CenterMask-Lite V2-19-FPN, multi-scale 4x on COCO (centermask2 reference: 32.8 mask AP / 35.9 box AP).
# Pretrained backbone: convert vovnet19_ese_detectron2.pth with tools/model_converters/vovnet2mmdet.py.
_base_ = ['../_base_/models/centermask-lite_vovnet-fpn.py', '../_base_/common/ms-poly-360k_coco-instance_lite.py']

model = dict(backbone=dict(
    arch='V-19-eSE', init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vovnet19_ese_mmdet.pth')))
