# Cascade Mask R-CNN (VoVNetV2-39) whose three mask heads pool each RoI from the level of Eq. 2 (ref §5); the box
# stages keep mmdet's rule.
_base_ = '../vovnet/cascade-mask-rcnn_v2-39_fpn_1x_coco.py'

model = dict(roi_head=dict(type='ImageShapesRoIHead', base='CascadeRoIHead',
                           mask_roi_extractor=dict(type='ScaleAdaptiveRoIExtractor')))
