"""projects/vovnet_classification: VoVNetV2-39 as an mmpretrain ImageNet-style classifier (backbone + global average
pooling + linear head) trains a few iterations on CPU on a generated ImageFolder set, and its saved checkpoint,
converted by tools/model_converters/vovnet2mmdet.py (mmdet layout), loads into the detectors' VoVNet backbone with
every tensor equal to the classifier's."""
import math
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config
from mmengine.runner import Runner

from centermask_mm.utils.safe_checkpoint import safe_torch_load
from tests.helpers import REPO_ROOT, model_cfg, short_cpu_training

CONFIG = osp.join(REPO_ROOT, 'projects', 'vovnet_classification', 'configs', 'vovnet-v2-39_8xb32_in1k.py')
CLASSES, SIZE, PER_CLASS, ITERS = ('boxes', 'discs'), 64, 6, 4


def make_image_folder(root, split, num, rng):
    """``<split>/<class>/*.png``: red-ish boxes vs green-ish discs on noise (ImageFolder layout)."""
    for cls in CLASSES:
        (root / split / cls).mkdir(parents=True)
        for i in range(num):
            img = rng.integers(0, 80, (SIZE, SIZE, 3)).astype(np.uint8)
            s, (x, y) = int(rng.integers(20, 36)), (int(v) for v in rng.integers(2, SIZE - 38, 2))
            if cls == 'boxes':
                cv2.rectangle(img, (x, y), (x + s, y + s), (40, 40, 220), -1)
            else:
                cv2.circle(img, (x + s // 2, y + s // 2), s // 2, (40, 220, 40), -1)
            cv2.imwrite(str(root / split / cls / f'{i:03d}.png'), img)


def small_cls_cfg(root, work_dir):
    """The project config with the generated 2-class data at 64 px and a 4-iteration schedule."""
    cfg = Config.fromfile(CONFIG)
    cfg.model.head.update(num_classes=len(CLASSES), topk=(1, ))
    cfg.data_preprocessor.num_classes = len(CLASSES)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5, direction='horizontal'),
                dict(type='PackInputs')]
    for split, loader in (('train', cfg.train_dataloader), ('val', cfg.val_dataloader)):
        loader.update(batch_size=8 if split == 'train' else 4, num_workers=0, persistent_workers=False)
        loader.dataset = dict(type='CustomDataset', data_root=str(root), data_prefix=split,
                              pipeline=pipeline if split == 'train' else pipeline[::2])
    cfg.val_evaluator = dict(type='Accuracy', topk=(1, ))
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
    return short_cpu_training(cfg, work_dir, ITERS, lr=0.01, val_interval=ITERS)


def test_classifier_trains_and_its_backbone_loads_into_the_detectors(tmp_path):
    rng = np.random.default_rng(0)
    make_image_folder(tmp_path / 'data', 'train', PER_CLASS, rng)
    make_image_folder(tmp_path / 'data', 'val', 2, rng)
    runner = Runner.from_cfg(small_cls_cfg(tmp_path / 'data', tmp_path / 'work'))
    model = runner.model
    assert type(model).__name__ == 'ImageClassifier' and type(model.backbone).__name__ == 'VoVNet'
    assert runner.train_dataloader.dataset.metainfo['classes'] == CLASSES  # classes from the folder names
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    runner.train()  # validates (Accuracy) at the last iteration
    history = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(history) == ITERS and all(math.isfinite(v) for v in history), history
    for prefix in ('backbone.stem', 'backbone.stages.3', 'head.fc'):
        assert any(not torch.equal(before[k], v) for k, v in model.named_parameters() if k.startswith(prefix))
    assert math.isfinite(runner.message_hub.get_scalar('val/accuracy/top1').current())

    # the classifier checkpoint -> the converter (mmdet layout: backbone.* kept, head.fc.* dropped) -> a detector
    checkpoint = tmp_path / 'work' / f'iter_{ITERS}.pth'
    classifier = safe_torch_load(str(checkpoint), map_location='cpu')['state_dict']
    converted = tmp_path / 'vovnet39_classifier_mmdet.pth'
    proc = subprocess.run([sys.executable, 'tools/model_converters/vovnet2mmdet.py', str(checkpoint), str(converted)],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert 'layout: mmdet' in out and 'arch: V-39-eSE, ese_last_block_only=False' in out
    assert 'head.fc.weight' in out

    cfg = model_cfg('vovnet', 'faster-rcnn_v2-39_fpn_1x_coco.py')
    cfg.backbone.init_cfg.checkpoint = str(converted)
    detector = DET_MODELS.build(cfg)
    fresh = {k: v.clone() for k, v in detector.backbone.state_dict().items()}
    detector.init_weights()
    loaded = detector.backbone.state_dict()
    compared = [k for k in loaded if not k.endswith('num_batches_tracked')]
    assert len(compared) == len([k for k in classifier if k.startswith('backbone.')
                                 and not k.endswith('num_batches_tracked')])
    for key in compared:
        assert torch.equal(loaded[key], classifier[f'backbone.{key}']), key
    assert any(not torch.equal(fresh[k], loaded[k]) for k in compared)  # the weights did move
