"""projects/vovnet_semseg: mmseg's Semantic FPN and UPerNet with the mmdet-registered VoVNetV2 (type 'mmdet.VoVNet'
from mmseg's scope) build; Semantic FPN trains a few iterations on CPU on a small generated segmentation set (PNG
images + label maps) through mmseg's BaseSegDataset and an mmengine Runner, and is evaluated by mmseg's IoUMetric."""
import math
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from tests.helpers import REPO_ROOT

PROJECT = osp.join(REPO_ROOT, 'projects', 'vovnet_semseg', 'configs')
CLASSES, SIZE, NUM_TRAIN, NUM_VAL, ITERS = ('background', 'box', 'disc'), 64, 8, 2, 6


def make_seg_split(root, split, num, rng):
    """Write ``img_dir/<split>/*.png`` and ``ann_dir/<split>/*.png`` (labels 0 background, 1 box, 2 disc)."""
    for sub in ('img_dir', 'ann_dir'):
        (root / sub / split).mkdir(parents=True)
    colors = np.array([(90, 90, 160), (40, 200, 40), (200, 40, 40)], np.uint8)
    for i in range(num):
        label = np.zeros((SIZE, SIZE), np.uint8)
        for _ in range(3):
            cls, s = int(rng.integers(1, 3)), int(rng.integers(10, 24))
            x, y = (int(v) for v in rng.integers(0, SIZE - s, 2))
            if cls == 1:
                cv2.rectangle(label, (x, y), (x + s - 1, y + s - 1), cls, -1)
            else:
                cv2.circle(label, (x + s // 2, y + s // 2), s // 2, cls, -1)
        noise = rng.integers(-20, 20, (SIZE, SIZE, 3))
        image = np.clip(colors[label] + noise, 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / 'img_dir' / split / f'{i:03d}.png'), image)
        cv2.imwrite(str(root / 'ann_dir' / split / f'{i:03d}.png'), label)


def small_seg_cfg(name, root, work_dir):
    """The project config with the generated data (3 classes, 64 px), a short schedule, no pretrained file."""
    cfg = Config.fromfile(osp.join(PROJECT, name))
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    cfg.model.backbone.update(init_cfg=None, frozen_stages=-1, norm_eval=False)  # from scratch: train every norm
    for head in ('decode_head', 'auxiliary_head'):
        if cfg.model.get(head):
            cfg.model[head].num_classes = len(CLASSES)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='RandomFlip', prob=0.5),
                dict(type='PackSegInputs')]
    for split, loader in (('train', cfg.train_dataloader), ('val', cfg.val_dataloader)):
        loader.update(num_workers=0, persistent_workers=False, batch_size=4 if split == 'train' else 1)
        loader.dataset = dict(type='BaseSegDataset', data_root=str(root), metainfo=dict(classes=CLASSES),
                              img_suffix='.png', seg_map_suffix='.png',
                              pipeline=pipeline if split == 'train' else pipeline[:2] + pipeline[3:],
                              data_prefix=dict(img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}'))
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=ITERS, val_interval=ITERS + 1)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=ITERS, by_epoch=False)
    cfg.randomness = dict(seed=0)
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.fixture(scope='module')
def seg_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('seg')
    rng = np.random.default_rng(0)
    make_seg_split(root, 'train', NUM_TRAIN, rng)
    make_seg_split(root, 'val', NUM_VAL, rng)
    return root


def test_semantic_fpn_vovnet_trains_and_evaluates(seg_data, tmp_path):
    runner = Runner.from_cfg(small_seg_cfg('fpn_v2-39_4xb4-160k_ade20k-512x512.py', seg_data, tmp_path / 'work'))
    model = runner.model
    assert type(model).__name__ == 'EncoderDecoder' and type(model.decode_head).__name__ == 'FPNHead'
    assert type(model.backbone).__name__ == 'VoVNet' and type(model.backbone).__module__.startswith('centermask_mm')
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    runner.train()
    history = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(history) == ITERS and all(math.isfinite(v) for v in history), history
    assert np.mean(history[-2:]) < history[0], history  # the easy colour-coded classes are learnt at once
    after = dict(runner.model.named_parameters())
    for prefix in ('backbone.stem', 'backbone.stages.3', 'neck', 'decode_head'):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    metrics = runner.val_loop.run()
    assert {'mIoU', 'aAcc'} <= set(metrics) and all(math.isfinite(v) for v in metrics.values())
    assert (tmp_path / 'work' / f'iter_{ITERS}.pth').exists()


def test_upernet_vovnet_builds_and_runs_a_loss_step(seg_data, tmp_path):
    """UPerHead on all four VoVNet stages, the auxiliary FCNHead on stage 4 (768 channels): one loss + backward."""
    cfg = small_seg_cfg('upernet_v2-39_4xb4-160k_ade20k-512x512.py', seg_data, tmp_path)
    for head in (cfg.model.decode_head, cfg.model.auxiliary_head):
        head.norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN needs a process group outside a Runner
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 255, (3, SIZE, SIZE), dtype=torch.uint8, generator=gen) for _ in range(2)]
    samples = []
    for _ in inputs:
        sample = SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 3, (1, SIZE, SIZE), generator=gen)))
        sample.set_metainfo(dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE)))
        samples.append(sample)
    losses = model(**model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True), mode='loss')
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)
    total = losses['decode.loss_ce'] + losses['aux.loss_ce']
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.stages[2].blocks[-1].conv_concat.conv.weight.grad.abs().sum() > 0
