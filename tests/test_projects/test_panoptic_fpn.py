"""configs/vovnet/panoptic-fpn_v2-39_fpn_1x_coco.py (mmdet's Panoptic FPN with VoVNetV2-39) trains on CPU on a small
generated COCO-panoptic set (images, panoptic PNGs with RGB-encoded segment ids, panoptic json) through mmdet's
CocoPanopticDataset / LoadPanopticAnnotations and an mmengine Runner, and is evaluated by CocoPanopticMetric."""
import json
import math

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from tests.helpers import config_path, short_cpu_training

pytestmark = pytest.mark.slow  # trains a panoptic model for a few iterations

NUM_TRAIN, NUM_VAL, SIZE, ITERS = 4, 2, 96, 3
CATEGORIES = [dict(id=1, name='box', isthing=1, supercategory='shape'),
              dict(id=2, name='disc', isthing=1, supercategory='shape'),
              dict(id=7, name='ground', isthing=0, supercategory='stuff')]
COLORS = {1: (40, 200, 40), 2: (200, 40, 40), 7: (90, 90, 160)}


def make_panoptic_split(root, split, num, rng):
    """Write ``split/*.jpg``, ``annotations/panoptic_<split>/*.png`` and ``annotations/panoptic_<split>.json``:
    one 'ground' stuff segment and two or three non-overlapping box / disc things per image."""
    (root / split).mkdir(parents=True)
    (root / 'annotations' / f'panoptic_{split}').mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(num):
        img = np.full((SIZE, SIZE, 3), COLORS[7], np.uint8)
        ids = np.full((SIZE, SIZE), 1, np.int64)  # segment 1: the ground
        segments = [(1, 7)]
        for k, x in enumerate(range(4, SIZE - 28, 32)[:2 + i % 2]):
            seg_id, cat = k + 2, int(rng.integers(1, 3))
            y, s = int(rng.integers(4, SIZE - 32)), int(rng.integers(18, 28))
            mask = np.zeros((SIZE, SIZE), np.uint8)
            if cat == 1:
                cv2.rectangle(mask, (x, y), (x + s - 1, y + s - 1), 1, -1)
            else:
                cv2.circle(mask, (x + s // 2, y + s // 2), s // 2, 1, -1)
            img[mask > 0] = COLORS[cat]
            ids[mask > 0] = seg_id
            segments.append((seg_id, cat))
        png = np.stack([(ids >> (8 * c)) & 255 for c in range(3)], -1).astype(np.uint8)
        cv2.imwrite(str(root / split / f'{i:04d}.jpg'), img)
        cv2.imwrite(str(root / 'annotations' / f'panoptic_{split}' / f'{i:04d}.png'), png[..., ::-1])  # RGB
        segments_info = []
        for seg_id, cat in segments:
            ys, xs = np.nonzero(ids == seg_id)
            bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
            segments_info.append(dict(id=seg_id, category_id=cat, area=int(len(xs)), bbox=bbox, iscrowd=0))
        images.append(dict(id=i, file_name=f'{i:04d}.jpg', height=SIZE, width=SIZE))
        annotations.append(dict(image_id=i, file_name=f'{i:04d}.png', segments_info=segments_info))
    ann_file = root / 'annotations' / f'panoptic_{split}.json'
    ann_file.write_text(json.dumps(dict(images=images, annotations=annotations, categories=CATEGORIES)))


def small_panoptic_cfg(root, work_dir):
    """The shipped config, unchanged but for the data (3 classes, 96 px), a 3-iteration schedule, fewer training
    RoIs and no pretrained checkpoint."""
    cfg = Config.fromfile(config_path('vovnet', 'panoptic-fpn_v2-39_fpn_1x_coco.py'))
    metainfo = dict(classes=('box', 'disc', 'ground'), thing_classes=('box', 'disc'), stuff_classes=('ground', ))
    model = cfg.model
    # from scratch: no pretrained file, so every stage and norm trains (frozen BN stats at 0/1 diverge)
    model.backbone.update(init_cfg=None, frozen_stages=-1, norm_eval=False)
    # a CPU-sized RoI budget (the 2000 proposals / 512 RoIs of the COCO schedule cost ~20 s an iteration)
    model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=64)
    model.train_cfg.rcnn.sampler.num = 32
    model.roi_head.bbox_head.num_classes = model.roi_head.mask_head.num_classes = 2
    for head in (model.semantic_head, model.panoptic_fusion_head):
        head.num_things_classes, head.num_stuff_classes = 2, 1
    model.test_cfg.panoptic.stuff_area_limit = 64
    for split, loader in (('train', cfg.train_dataloader), ('val', cfg.val_dataloader)):
        loader.update(num_workers=0, persistent_workers=False, batch_size=2 if split == 'train' else 1)
        loader.dataset.update(data_root=str(root), metainfo=metainfo, ann_file=f'annotations/panoptic_{split}.json',
                              data_prefix=dict(img=f'{split}/', seg=f'annotations/panoptic_{split}/'))
        for step in loader.dataset.pipeline:
            if step.type == 'Resize':
                step.scale = (SIZE, SIZE)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.update(ann_file=str(root / 'annotations' / 'panoptic_val.json'),
                             seg_prefix=str(root / 'annotations' / 'panoptic_val'))
    cfg.test_evaluator = cfg.val_evaluator
    return short_cpu_training(cfg, work_dir, ITERS, lr=0.005, val_interval=ITERS + 1)


def test_panoptic_fpn_vovnet_trains_and_evaluates(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / 'panoptic'
    make_panoptic_split(root, 'train', NUM_TRAIN, rng)
    make_panoptic_split(root, 'val', NUM_VAL, rng)
    runner = Runner.from_cfg(small_panoptic_cfg(root, tmp_path / 'work'))
    assert type(runner.model).__name__ == 'PanopticFPN' and type(runner.model.backbone).__name__ == 'VoVNet'

    # the loader decodes the RGB-encoded PNGs into thing masks and the semantic map (stuff 'ground' = label 2)
    sample = runner.train_dataloader.dataset[0]['data_samples']
    assert len(sample.gt_instances) >= 2 and set(sample.gt_instances.labels.tolist()) <= {0, 1}
    assert set(np.unique(sample.gt_sem_seg.sem_seg.numpy()).tolist()) <= {0, 1, 2}
    assert (sample.gt_sem_seg.sem_seg == 2).float().mean() > 0.3

    before = {k: v.detach().clone() for k, v in runner.model.named_parameters() if v.requires_grad}
    runner.train()
    hub = runner.message_hub
    for key in ('loss', 'loss_seg', 'loss_mask', 'loss_rpn_cls', 'loss_cls'):
        history = hub.get_scalar(f'train/{key}').data[0]
        assert len(history) == ITERS and all(math.isfinite(v) for v in history), (key, history)
    after = dict(runner.model.named_parameters())
    for prefix in ('backbone.stem', 'backbone.stages.3', 'semantic_head', 'roi_head.mask_head', 'neck'):
        changed = [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]
        assert changed, f'{prefix} parameters did not change'

    # panoptic predictions (heuristic fusion) scored by panopticapi's PQ through CocoPanopticMetric
    metrics = runner.val_loop.run()
    assert {'coco_panoptic/PQ', 'coco_panoptic/PQ_th', 'coco_panoptic/PQ_st'} <= set(metrics)
    assert all(math.isfinite(metrics[k]) for k in metrics)
    assert (tmp_path / 'work' / f'iter_{ITERS}.pth').exists()
