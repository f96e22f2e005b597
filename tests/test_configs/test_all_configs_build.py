"""Configs are short children of shared bases; a representative subset predicts on a small CPU input (every config
builds: tests/test_reliability/test_bad_configs.py)."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs

from tests.helpers import CONFIG_ROOT, load_config

CONFIGS = sorted(osp.relpath(p, CONFIG_ROOT) for p in glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)
                 if '_base_' not in p)
# VoVNet (toy Lite), mmdet's MobileNetV2 and ResNet in CenterMask, mmdet's SingleRoIExtractor (Mask R-CNN level
# rule), no MaskIoU head, and mmdet's Mask R-CNN
PREDICT = ['toy/centermask-lite_v2-19-slim-dw_fpn_toy.py',
           'centermask/centermask-lite_mobilenetv2_fpn_ms-4x_coco_maskrcnn-benchmark.py',
           'centermask/centermask_r-50_fpn_ms-2x_coco_maskrcnn-benchmark.py',
           'ablations/centermask_v2-39_fpn_mask-rcnn-level_ms-3x_coco.py',
           'ablations/centermask_v2-39_fpn_no-maskiou_ms-3x_coco.py',
           'mask_rcnn/mask-rcnn_r50-caffe_fpn_ms-poly-2x_coco.py']


def build(name):
    cfg = load_config(name).model
    cfg.backbone.init_cfg = None
    return MODELS.build(cfg)


def test_configs_are_found():
    assert {osp.dirname(c) for c in CONFIGS} >= {'ablations', 'centermask', 'custom', 'mask_rcnn', 'toy', 'vovnet'}
    assert set(PREDICT) <= set(CONFIGS)


def test_configs_are_short_children():
    """Every config is a child of a shared base (issue "zoo": configs average <= 20 lines); the build of each is
    tests/test_reliability/test_bad_configs.py::test_every_config_builds."""
    root = osp.dirname(CONFIG_ROOT)
    files = [osp.join(CONFIG_ROOT, c) for c in CONFIGS] + glob.glob(osp.join(root, 'projects', '*', 'configs', '*.py'))
    lengths = {f: sum(1 for _ in open(f)) for f in files}
    assert len(lengths) >= 50 and sum(lengths.values()) / len(lengths) <= 20, lengths
    for f in files:
        assert '_base_' in open(f).read(), f'{f} inherits nothing'


@pytest.mark.parametrize('name', PREDICT)
def test_predict_on_cpu(name):
    model = build(name).eval()
    model.init_weights()
    packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, 96, 128)], num_items=[2], with_mask=True)
    with torch.no_grad():
        (sample, ) = model.test_step(packed)
    pred = sample.pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.scores) == len(pred.labels) == len(pred.masks)
    assert tuple(pred.masks.shape[1:]) == tuple(sample.ori_shape)
