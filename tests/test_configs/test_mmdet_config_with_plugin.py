"""An mmdet config that only adds ``custom_imports`` of the package trains, checkpoints and resumes on CPU."""
import os.path as osp
import textwrap

from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import Runner

from centermask_mm.datasets import generate_toy_shapes

CONFIG = '''
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['centermask_mm'], allow_failed_imports=False)

pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{root}/', ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 metainfo=dict(classes=('rectangle', 'ellipse', 'triangle')), pipeline=pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]),
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={max_iters})
param_scheduler = []
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
'''


def _config(tmp_path, root, max_iters, resume):
    path = tmp_path / f'mask-rcnn_{max_iters}.py'
    path.write_text(textwrap.dedent(CONFIG.format(root=root, max_iters=max_iters)))
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.resume = resume
    return cfg


def test_mask_rcnn_config_trains_saves_and_resumes(tmp_path):
    root = str(tmp_path / 'toy')
    generate_toy_shapes(root, num_train=4, num_val=1, img_size=96)
    cfg = _config(tmp_path, root, max_iters=2, resume=False)
    assert cfg.model.type == 'MaskRCNN'
    assert type(MODELS.build(cfg.model)).__name__ == 'MaskRCNN'

    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert osp.exists(osp.join(cfg.work_dir, 'iter_2.pth'))

    resumed = Runner.from_cfg(_config(tmp_path, root, max_iters=4, resume=True))
    resumed.train()
    assert resumed.iter == 4
    # the message hub came back from the checkpoint: 2 logged iterations before + 2 after the resume
    logs, _ = resumed.message_hub.get_scalar('train/loss').data
    assert len(logs) == 4
    assert osp.exists(osp.join(cfg.work_dir, 'iter_4.pth'))
