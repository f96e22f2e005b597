# CenterMask-Lite (ref §7.1, centermask2 Base-CenterMask-Lite-VoVNet): 128-channel FPN, 2-conv FCOS towers,
# 2x128 SAG-Mask and MaskIoU heads, VoVNetV2-19.
_base_ = './centermask_vovnet-fpn.py'

fpn_channels = 128
model = dict(
    backbone=dict(arch='V-19-eSE'),
    neck=dict(out_channels=fpn_channels),
    bbox_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels, stacked_convs=2),
    roi_head=dict(
        mask_roi_extractor=dict(out_channels=fpn_channels),
        mask_head=dict(num_convs=2, in_channels=fpn_channels, conv_out_channels=128),
        mask_iou_head=dict(num_convs=2, in_channels=fpn_channels, conv_out_channels=128)))
