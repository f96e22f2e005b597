# mmdet's Mask Scoring R-CNN with VoVNetV2-39 in place of ResNet-50.
_base_ = ['mmdet::ms_rcnn/ms-rcnn_r50_fpn_1x_coco.py', '../_base_/models/vovnet_backbone.py']

model = dict(
    data_preprocessor=_base_.vovnet_data_preprocessor,
    backbone=_base_.vovnet_backbone,
    neck=dict(in_channels=_base_.vovnet_out_channels))
