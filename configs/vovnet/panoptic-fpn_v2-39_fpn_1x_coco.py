# mmdet's Panoptic FPN (Mask R-CNN + PanopticFPNHead semantic branch + heuristic fusion) with VoVNetV2-39 in place of
# ResNet-50. Training loads the panoptic PNGs with mmdet's LoadPanopticAnnotations and evaluation uses
# CocoPanopticMetric: both need `panopticapi` (requirements/tests_nodeps.txt).
_base_ = ['mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py', '../_base_/models/vovnet_backbone.py']

model = dict(
    data_preprocessor=_base_.vovnet_data_preprocessor,
    backbone=_base_.vovnet_backbone,
    neck=dict(in_channels=_base_.vovnet_out_channels))
