# CenterMask V2-57-FPN with modulated deformable convs in the OSA blocks of stages 3-5, multi-scale 3x on COCO
# (centermask2 reference: 40.9 mask AP / 45.5 box AP).
_base_ = './centermask_v2-57_fpn_ms-3x_coco.py'

model = dict(backbone=_base_.vovnet_dcn)
