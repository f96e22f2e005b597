# The embedded default dataset (centermask_mm.datasets.ToyShapesDataset): generated under data_root on first use,
# COCO format, 3 classes, 128x128 images. Evaluated by CocoBoundaryMetric: mmdet's CocoMetric (bbox + segm AP,
# pycocotools) and Boundary AP (faster-coco-eval).
dataset_type = 'ToyShapesDataset'
data_root = 'data/toy_shapes/'
img_size = 128
toy_generator = dict(num_train=256, num_val=16, img_size=img_size, seed=0)
backend_args = None

# SafeLoadImageFromFile: mmcv's loader that names a file it cannot read (and can skip it, skip_broken=True);
# the test pipeline keeps mmcv's, which mmdet's DetInferencer looks for by name.
train_pipeline = [
    dict(type='SafeLoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, generator=toy_generator,
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline, backend_args=backend_args))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, generator=toy_generator,
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'), test_mode=True,
                 pipeline=test_pipeline, backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoBoundaryMetric', ann_file=data_root + 'annotations/instances_val.json',
                     metric=['bbox', 'segm', 'boundary'], format_only=False, backend_args=backend_args)
test_evaluator = val_evaluator
