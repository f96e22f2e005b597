# Ablation (RoI level assignment): Mask R-CNN's rule k = floor(4 + log2(sqrt(wh) / 224)) instead of Eq. 2, with
# mmdet's SingleRoIExtractor on P3-P5: level index k - 3 = floor(log2(sqrt(wh) / 112)), so finest_scale=112 (its
# default 56 is the rule on P2-P5).
_base_ = '../centermask/centermask_v2-39_fpn_ms-3x_coco.py'

model = dict(roi_head=dict(mask_roi_extractor=dict(type='SingleRoIExtractor', finest_scale=112)))
