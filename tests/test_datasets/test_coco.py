"""detectron2's choice of training images (findings D12): crowd-only images dropped; GT boxes clipped."""
import json

import cv2
import numpy as np
import pytest
from mmdet.registry import DATASETS

from tests.helpers import load_config


def write_coco(root):
    (root / 'img').mkdir()
    images, anns = [], []
    for i, kind in enumerate(['normal', 'crowd_only', 'mixed', 'empty']):
        cv2.imwrite(str(root / 'img' / f'{i}.png'), np.full((48, 64, 3), 100, np.uint8))
        images.append(dict(id=i, file_name=f'{i}.png', height=48, width=64))
        box = [40.0, 10.0, 40.0, 20.0]  # reaches x = 80, beyond the 64-px image
        poly = [[40, 10, 64, 10, 64, 30, 40, 30]]
        if kind in ('normal', 'mixed'):
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=1, bbox=box, area=480, iscrowd=0,
                             segmentation=poly))
        if kind in ('crowd_only', 'mixed'):
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=1, bbox=[2.0, 2.0, 10.0, 10.0], area=100,
                             iscrowd=1, segmentation=[[2, 2, 12, 2, 12, 12, 2, 12]]))
    (root / 'ann.json').write_text(json.dumps(dict(images=images, annotations=anns,
                                                   categories=[dict(id=1, name='thing')])))


def dataset(root, filter_cfg, pipeline=()):
    return DATASETS.build(dict(type='CenterMaskCocoDataset', data_root=str(root), ann_file='ann.json',
                               data_prefix=dict(img='img/'), metainfo=dict(classes=('thing', )),
                               filter_cfg=filter_cfg, pipeline=list(pipeline)))


@pytest.mark.parametrize('crowd_filter, expected', [(True, ['0.png', '2.png']), (False, ['0.png', '1.png', '2.png'])])
def test_crowd_only_images_are_dropped_when_asked(tmp_path, crowd_filter, expected):
    write_coco(tmp_path)
    ds = dataset(tmp_path, dict(filter_empty_gt=True, min_size=0, filter_crowd_only=crowd_filter))
    assert sorted(ds.get_data_info(i)['img_path'].rsplit('/', 1)[-1] for i in range(len(ds))) == expected


def test_coco_configs_filter_like_detectron2():
    cfg = load_config('centermask', 'centermask_v2-39_fpn_ms-3x_coco.py').train_dataloader.dataset
    assert cfg.type == 'CenterMaskCocoDataset'
    assert dict(cfg.filter_cfg) == dict(filter_empty_gt=True, min_size=0, filter_crowd_only=True)


def test_gt_boxes_are_clipped_to_the_image_by_the_pipeline(tmp_path):
    write_coco(tmp_path)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
                                                     poly2mask=False),
                dict(type='Resize', scale=(64, 48), keep_ratio=True)]
    sample = dataset(tmp_path, dict(filter_empty_gt=True, filter_crowd_only=True), pipeline)[0]
    assert sample['gt_bboxes'].tensor.tolist()[0] == [40.0, 10.0, 64.0, 30.0]


def test_test_mode_keeps_every_image(tmp_path):
    """The crowd-only filter applies to training only: the evaluated image set is the annotation file's."""
    write_coco(tmp_path)
    ds = DATASETS.build(dict(type='CenterMaskCocoDataset', data_root=str(tmp_path), ann_file='ann.json',
                             data_prefix=dict(img='img/'), metainfo=dict(classes=('thing', )), test_mode=True,
                             filter_cfg=dict(filter_empty_gt=True, min_size=0, filter_crowd_only=True), pipeline=[]))
    assert sorted(ds.get_data_info(i)['img_path'].rsplit('/', 1)[-1] for i in range(len(ds))) == \
        ['0.png', '1.png', '2.png', '3.png']


def test_instance_without_segmentation_is_loaded_as_ignored(tmp_path):
    """An annotation without ``segmentation`` loads (no KeyError in LoadAnnotations) and is ignored, beside a
    normal one."""
    (tmp_path / 'img').mkdir()
    cv2.imwrite(str(tmp_path / 'img' / '0.png'), np.full((48, 64, 3), 100, np.uint8))
    anns = [dict(id=1, image_id=0, category_id=1, bbox=[4.0, 4.0, 20.0, 20.0], area=400, iscrowd=0,
                 segmentation=[[4, 4, 24, 4, 24, 24, 4, 24]]),
            dict(id=2, image_id=0, category_id=1, bbox=[30.0, 10.0, 10.0, 10.0], area=100, iscrowd=0)]
    (tmp_path / 'ann.json').write_text(json.dumps(dict(images=[dict(id=0, file_name='0.png', height=48, width=64)],
                                                       annotations=anns, categories=[dict(id=1, name='thing')])))
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
                                                     poly2mask=False)]
    sample = dataset(tmp_path, dict(filter_empty_gt=True, min_size=0), pipeline)[0]
    assert sample['gt_bboxes'].tensor.tolist() == [[4.0, 4.0, 24.0, 24.0], [30.0, 10.0, 40.0, 20.0]]
    assert sample['gt_ignore_flags'].tolist() == [False, True]
