# Full CenterMask (VoVNetV2-39, 256-channel FPN, 4-conv heads) on the generated toy shapes, from scratch on CPU.
_base_ = ['../_base_/models/centermask_vovnet-fpn.py', '../_base_/datasets/toy_shapes_instance.py',
          '../_base_/schedules/toy_cpu.py']

num_classes = 3
model = dict(
    backbone=dict(arch='V-39-eSE', norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    num_classes=num_classes,
    roi_head=dict(mask_iou_head=dict(init_cfg=_base_.mask_iou_init_from_scratch)))
