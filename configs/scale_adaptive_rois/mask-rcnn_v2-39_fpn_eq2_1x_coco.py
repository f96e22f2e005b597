# Mask R-CNN (VoVNetV2-39) whose mask branch pools each RoI from the level of CenterMask's Eq. 2 (ref §5) instead of
# Mask R-CNN's canonical-scale rule: the RoI head gets the image sizes (ImageShapesRoIHead), the mask RoI extractor
# applies Eq. 2 on P2-P5 (k_max = 5). The box branch keeps mmdet's rule.
_base_ = '../vovnet/mask-rcnn_v2-39_fpn_1x_coco.py'

model = dict(roi_head=dict(type='ImageShapesRoIHead', base='StandardRoIHead',
                           mask_roi_extractor=dict(type='ScaleAdaptiveRoIExtractor')))
