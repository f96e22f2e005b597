"""Every configs/vovnet/* config (mmdet's detector with VoVNetV2 swapped in) builds and runs a loss and a predict
step on CPU."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs

from centermask_mm.models.backbones import VoVNet
from tests.helpers import CONFIG_ROOT, model_cfg

CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIG_ROOT, 'vovnet', '*.py')))


def test_the_six_detectors_are_there():
    kinds = {name.split('_')[0] for name in CONFIGS}
    assert {'retinanet', 'faster-rcnn', 'mask-rcnn', 'cascade-mask-rcnn', 'fcos', 'atss', 'panoptic-fpn'} <= kinds


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_and_runs(name):
    cfg = model_cfg('vovnet', name)
    assert cfg.backbone.type == 'VoVNet'
    arch = VoVNet.arch_settings[cfg.backbone.arch]
    assert list(cfg.neck.in_channels) == [arch['stage_out_channels'][i] for i in cfg.backbone.out_indices]
    cfg.backbone.init_cfg = None
    model = MODELS.build(cfg)
    panoptic = name.startswith('panoptic')
    with_mask = panoptic or 'mask_head' in (cfg.get('roi_head') or {})  # Mask R-CNN, Cascade, MS R-CNN
    packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, 128, 128)], num_items=[2], with_mask=with_mask,
                            with_semantic=panoptic)
    model.train()
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    total = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False), mode='predict')
    if panoptic:  # PanopticFPN returns the fused panoptic map (ids: class + instance * INSTANCE_OFFSET)
        assert len(results) == 1 and results[0].pred_panoptic_seg.sem_seg.shape[-2:] == (128, 128)
    else:
        assert len(results) == 1 and 'bboxes' in results[0].pred_instances
