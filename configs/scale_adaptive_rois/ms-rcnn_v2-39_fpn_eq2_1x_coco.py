# Mask Scoring R-CNN (VoVNetV2-39) whose mask and MaskIoU heads see RoIs pooled at the level of Eq. 2 (ref §5); the
# box branch keeps mmdet's rule.
_base_ = '../vovnet/ms-rcnn_v2-39_fpn_1x_coco.py'

model = dict(roi_head=dict(type='ImageShapesRoIHead', base='MaskScoringRoIHead',
                           mask_roi_extractor=dict(type='ScaleAdaptiveRoIExtractor')))
