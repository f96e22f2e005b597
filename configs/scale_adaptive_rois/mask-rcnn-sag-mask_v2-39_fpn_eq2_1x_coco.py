# "Mask R-CNN + SAG-Mask + Eq. 2", the comparison the paper makes for CenterMask's mask branch (its Tables are not
# reproduced in docs/reference.md): Mask R-CNN (VoVNetV2-39) with the SAG-Mask head on RoIs pooled at the level of
# Eq. 2 (ref §4, §5). No reference result exists for it here.
_base_ = './mask-rcnn_v2-39_fpn_eq2_1x_coco.py'

model = dict(roi_head=dict(mask_head=dict(type='SAGMaskHead')))
