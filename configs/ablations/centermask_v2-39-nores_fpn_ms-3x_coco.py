# Ablation (VoVNetV2 identity mapping): no residual connection in OSA blocks 2..B of a stage.
_base_ = '../centermask/centermask_v2-39_fpn_ms-3x_coco.py'

model = dict(backbone=dict(residual=False))
