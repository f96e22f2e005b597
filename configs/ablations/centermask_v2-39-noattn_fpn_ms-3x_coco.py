# Ablation (VoVNetV2 attention): no channel attention in the OSA blocks (eSE off).
_base_ = '../centermask/centermask_v2-39_fpn_ms-3x_coco.py'

model = dict(backbone=dict(attn=None))
