# CenterMask V2-99-FPN with modulated deformable convs in the OSA blocks of stages 3-5, multi-scale 3x on COCO
# (centermask2 reference: 42.0 mask AP / 46.9 box AP).
_base_ = './centermask_v2-99_fpn_ms-3x_coco.py'

model = dict(backbone=_base_.vovnet_dcn)
