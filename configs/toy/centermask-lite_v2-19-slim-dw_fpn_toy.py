# The embedded default (README main job): CenterMask-Lite with VoVNetV2-19-slim-dw trained from scratch on the
# generated toy shapes on CPU, evaluated with CocoBoundaryMetric (bbox, segm, boundary).
_base_ = ['../_base_/models/centermask-lite_vovnet-fpn.py', '../_base_/datasets/toy_shapes_instance.py',
          '../_base_/schedules/toy_cpu.py']

num_classes = 3
model = dict(
    backbone=dict(  # from scratch: trainable BN instead of the frozen BN of ImageNet-initialised configs
        arch='V-19-slim-dw-eSE', norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    neck=dict(in_channels=_base_.vovnet_slim_out_channels[1:]),
    num_classes=num_classes,
    roi_head=dict(mask_iou_head=dict(init_cfg=_base_.mask_iou_init_from_scratch)),
    # CPU budget, training only: decode the mask branch's RoIs from the top 200 (not 1000) locations per level,
    # which keeps CPU NMS cheap once the model is confident, and sample 32 RoIs per image (<= 8 positives, not
    # 512 / 128) for the mask and MaskIoU heads, which dominate a CPU training step. Testing is the reference's.
    train_cfg=dict(rpn_proposal=dict(nms_pre=200), rcnn=dict(sampler=dict(num=32))))
