# COCO instance segmentation, multi-scale (640..800 "choice", max 1333) with polygon masks, iteration-based:
# mmdet's 90k recipe stretched to centermask2's 3x (ref §7.1): 270k iters, steps 210k/250k, batch 16, lr 0.01,
# linear warmup 1000 iters from 1/1000, SGD momentum 0.9, weight decay 1e-4 (none on norms).
_base_ = 'mmdet::common/ms-poly-90k_coco-instance.py'

max_iter = 270000
train_cfg = dict(max_iters=max_iter)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_iter, by_epoch=False, milestones=[210000, 250000], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=0.01), paramwise_cfg=dict(norm_decay_mult=0.))
# SafeLoadImageFromFile: mmcv's loader that names a file it cannot read (skip_broken=True skips it with a warning);
# the rest of mmdet's pipeline as it is. The test pipeline keeps mmcv's loader, which mmdet's DetInferencer looks for.
train_pipeline = [dict(type='SafeLoadImageFromFile', backend_args=None, imdecode_backend='pillow')
                  ] + _base_.train_pipeline[1:]
# detectron2's training images (findings D12): crowd-only images dropped, no minimum image size
train_dataloader = dict(dataset=dict(
    type='CenterMaskCocoDataset', filter_cfg=dict(filter_empty_gt=True, min_size=0, filter_crowd_only=True),
    pipeline=train_pipeline))
# centermask2's test resize (detectron2's ResizeShortestEdge, which mmdet ships with the same arithmetic: short side
# 800, long side at most 1333, both sides rounded); mmdet's Resize(keep_ratio=True) gives some sizes one pixel more
test_resize = dict(type='ResizeShortestEdge', scale=800, max_size=1333, backend='pillow')
test_pipeline = [_base_.test_pipeline[0], test_resize] + _base_.test_pipeline[2:]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# batch 16 is global in the reference (findings D6): `tools/train.py CONFIG --auto-scale-lr` scales lr 0.01 by
# (GPUs x 2) / 16 on another number of GPUs
auto_scale_lr = dict(enable=False, base_batch_size=16)
# checkpoints written atomically, pruned only after the new one is on disk, with the torch RNG state (resume
# continues the same random stream): centermask_mm.engine.ReliableCheckpointHook (README "Reliability")
default_hooks = dict(checkpoint=dict(type='ReliableCheckpointHook'))
