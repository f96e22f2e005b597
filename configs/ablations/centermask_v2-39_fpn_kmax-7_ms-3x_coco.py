# Ablation (Eq. 2): k_max = 7 (the paper text's P7) in k = ceil(k_max - log2(A_img / A_roi)), levels still clamped
# to the pooled P3-P5.
_base_ = '../centermask/centermask_v2-39_fpn_ms-3x_coco.py'

model = dict(roi_head=dict(mask_roi_extractor=dict(k_max=7)))
