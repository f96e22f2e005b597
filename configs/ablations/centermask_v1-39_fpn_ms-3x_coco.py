# Ablation (VoVNetV1 vs V2): the VoVNetV1-39 layout (no eSE, no residual). The V2 ImageNet checkpoint loads into it
# without its eSE tensors (mmengine warns); use VoVNetV1 ImageNet weights for a faithful V1.
_base_ = '../centermask/centermask_v2-39_fpn_ms-3x_coco.py'

model = dict(backbone=dict(arch='V-39'))
