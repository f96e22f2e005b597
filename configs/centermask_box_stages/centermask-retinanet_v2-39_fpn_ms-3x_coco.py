# CenterMask V2-39-FPN with mmdet's RetinaNet head as its box stage (its own assigner, losses and decoding; the mask branch,
# schedule and data of centermask_v2-39_fpn_ms-3x_coco). No reference result exists for this combination.
_base_ = ['../centermask/centermask_v2-39_fpn_ms-3x_coco.py', '../_base_/models/box_stages/retinanet.py']

model = dict(bbox_head=_base_.box_stage_head, train_cfg=dict(rpn=_base_.box_stage_train_cfg))
