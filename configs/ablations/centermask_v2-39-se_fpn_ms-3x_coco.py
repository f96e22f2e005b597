# Ablation (VoVNetV2 attention): the original two-FC SE (ratio 16) in place of eSE.
_base_ = '../centermask/centermask_v2-39_fpn_ms-3x_coco.py'

model = dict(backbone=dict(attn='se'))
