"""Own data: the class count lives in model.num_classes only (CenterMask writes it into the FCOS, mask and MaskIoU
heads), the custom example derives it from its class names, and it trains on a generated 2-class COCO folder."""
import json
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import Runner

from centermask_mm.datasets.toy_shapes import generate_toy_shapes
from tests.helpers import CONFIG_ROOT, model_cfg

CUSTOM = ('custom', 'centermask-lite_v2-19_fpn_ms-4x_custom.py')


def head_classes(model):
    return (model.bbox_head.num_classes, model.bbox_head.conv_cls.out_channels,
            model.roi_head.mask_head.num_classes, model.roi_head.mask_head.conv_logits.out_channels,
            model.roi_head.mask_iou_head.num_classes, model.roi_head.mask_iou_head.fc_mask_iou.out_features)


def build(cfg):
    cfg.backbone.init_cfg = None
    return MODELS.build(cfg)


def test_custom_config_sets_every_head_from_the_class_names():
    cfg = Config.fromfile(osp.join(CONFIG_ROOT, *CUSTOM))
    assert cfg.model.num_classes == len(cfg.classes) == 2
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.metainfo.classes == cfg.classes and loader.dataset.data_root == cfg.data_root
    assert head_classes(build(cfg.model)) == (2, ) * 6
    assert all('num_classes' not in h for h in (cfg.model.bbox_head, cfg.model.roi_head.mask_head,
                                                 cfg.model.roi_head.mask_iou_head))  # set in one place only


def test_editing_only_the_class_names_changes_every_head(tmp_path):
    with open(osp.join(CONFIG_ROOT, *CUSTOM)) as f:
        text = f.read()
    text = text.replace("'../centermask/", repr(osp.join(CONFIG_ROOT, 'centermask', ''))[:-1])
    text = text.replace("classes = ('cat', 'dog')", "classes = ('a', 'b', 'c', 'd', 'e')")
    (tmp_path / 'mine.py').write_text(text)
    assert head_classes(build(Config.fromfile(str(tmp_path / 'mine.py')).model)) == (5, ) * 6


@pytest.mark.parametrize('head', ['bbox_head', 'roi_head.mask_head', 'roi_head.mask_iou_head'])
def test_a_head_cannot_disagree_with_model_num_classes(head):
    cfg = model_cfg(*CUSTOM)
    node = cfg
    for part in head.split('.'):
        node = node[part]
    node['num_classes'] = 80
    with pytest.raises(ValueError, match=rf'disagree with model.num_classes=2: .*model.{head}.num_classes=80'):
        build(cfg)
    node['num_classes'] = 2  # the same value is allowed
    assert head_classes(build(cfg)) == (2, ) * 6


@pytest.mark.parametrize('value', [0, '2', 2.0, True])
def test_invalid_num_classes(value):
    cfg = model_cfg(*CUSTOM)
    cfg.num_classes = value
    with pytest.raises(ValueError, match='invalid model.num_classes'):
        build(cfg)


def write_two_class_coco(root):
    """The toy generator's COCO folder reduced to two classes (triangles dropped), renamed."""
    ann_files = generate_toy_shapes(str(root), num_train=6, num_val=2, img_size=64, seed=3)
    for ann_file in ann_files.values():
        with open(ann_file) as f:
            data = json.load(f)
        data['categories'] = [dict(id=1, name='box'), dict(id=2, name='blob')]
        data['annotations'] = [a for a in data['annotations'] if a['category_id'] in (1, 2)]
        with open(ann_file, 'w') as f:
            json.dump(data, f)
    return ('box', 'blob')


def small_custom_config(tmp_path, classes, **model):
    with open(osp.join(CONFIG_ROOT, *CUSTOM)) as f:
        text = f.read()
    text = text.replace("'../centermask/", repr(osp.join(CONFIG_ROOT, 'centermask', ''))[:-1])
    text = text.replace("data_root = 'data/my_dataset/'", f"data_root = '{tmp_path / 'data'}/'")
    text = text.replace("classes = ('cat', 'dog')", f'classes = {classes!r}')
    (tmp_path / 'mine.py').write_text(text)
    cfg = Config.fromfile(str(tmp_path / 'mine.py'))
    # CPU and a few iterations: small images, no ImageNet weights (so: trainable norms and the MaskIoU init for
    # training from scratch, as the toy configs; frozen random norms diverge, see docs/user_guides/train_test.md),
    # no validation, a fixed seed
    cfg.model.backbone.update(init_cfg=None, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False)
    cfg.model.roi_head.mask_iou_head.init_cfg = cfg.mask_iou_init_from_scratch
    cfg.randomness = dict(seed=0)
    cfg.model.update(model)
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.pipeline[2].scales = [(96, 64)]
    cfg.train_cfg.update(max_iters=3, val_interval=100)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint.interval = 100
    cfg.work_dir = str(tmp_path / 'work')
    return cfg


def test_custom_config_trains_on_a_two_class_coco_folder(tmp_path):
    classes = write_two_class_coco(tmp_path / 'data')
    runner = Runner.from_cfg(small_custom_config(tmp_path, classes))
    assert runner.train_dataloader.dataset.metainfo['classes'] == classes
    model = runner.train()
    assert runner.iter == 3 and head_classes(model) == (2, ) * 6
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss))


def test_model_and_dataset_class_counts_are_compared_before_training(tmp_path):
    classes = write_two_class_coco(tmp_path / 'data')
    runner = Runner.from_cfg(small_custom_config(tmp_path, classes, num_classes=3))  # edited against the rule
    with pytest.raises(AssertionError, match=r'num_classes` \(3\).*length of `classes` 2'):
        runner.train()
