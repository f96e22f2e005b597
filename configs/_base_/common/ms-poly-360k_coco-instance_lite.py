# CenterMask-Lite's COCO recipe (ref §7.1): 4x = 360k iters, steps 300k/340k; train short side 580 or 600
# (max 1000), test 600 (max 1000) with detectron2's resize. Everything else as the 3x recipe.
_base_ = './ms-poly-270k_coco-instance.py'

max_iter = 360000
train_cfg = dict(max_iters=max_iter)
param_scheduler = [  # the same warmup, later steps
    _base_.param_scheduler[0],
    dict(type='MultiStepLR', begin=0, end=max_iter, by_epoch=False, milestones=[300000, 340000], gamma=0.1),
]
# SafeLoadImageFromFile: mmcv's loader that names a file it cannot read (and can skip it, skip_broken=True);
# the test pipeline keeps mmcv's, which mmdet's DetInferencer looks for by name.
train_pipeline = [
    dict(type='SafeLoadImageFromFile', backend_args=None, imdecode_backend='pillow'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False),
    dict(type='RandomChoiceResize', scales=[(1000, 580), (1000, 600)], keep_ratio=True, backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [_base_.test_pipeline[0], dict(_base_.test_resize, scale=600, max_size=1000)] + _base_.test_pipeline[2:]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
