# CenterMask-Lite V2-19-slim-FPN, multi-scale 4x on COCO (centermask2 reference: 29.8 mask AP / 32.5 box AP).
# Pretrained backbone: convert vovnet19_ese_slim_detectron2.pth with tools/model_converters/vovnet2mmdet.py.
_base_ = './centermask-lite_v2-19_fpn_ms-4x_coco.py'

model = dict(
    backbone=dict(arch='V-19-slim-eSE', init_cfg=dict(checkpoint='checkpoints/vovnet19_ese_slim_mmdet.pth')),
    neck=dict(in_channels=_base_.vovnet_slim_out_channels[1:]))
