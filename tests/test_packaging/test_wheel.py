"""The package as a user installs it: a wheel built from this tree, installed without an editable path, imported
from outside the repository, builds a CenterMask from a config file and predicts on an image."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap

from tests.helpers import REPO_ROOT

#: a small CenterMask-Lite (VoVNetV2-19-slim-dw, 3 classes, random weights), self-contained: the repository's
#: configs are not part of the wheel
CONFIG = '''
custom_imports = dict(imports=['centermask_mm'], allow_failed_imports=False)
default_scope = 'mmdet'
model = dict(
    type='CenterMask',
    num_classes=3,
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0],
                           bgr_to_rgb=False, pad_size_divisor=32),
    backbone=dict(type='VoVNet', arch='V-19-slim-dw-eSE', out_indices=(1, 2, 3), frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    neck=dict(type='FPN', in_channels=[256, 384, 512], out_channels=128, start_level=0, add_extra_convs='on_output',
              num_outs=5, relu_before_extra_convs=True),
    bbox_head=dict(
        type='CenterMaskFCOSHead', in_channels=128, feat_channels=128, stacked_convs=2, strides=[8, 16, 32, 64, 128],
        regress_ranges=((-1, 64), (64, 128), (128, 256), (256, 512), (512, 1e8)),
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True), conv_bias=True, centerness_on_reg=True,
        norm_on_bbox=True, center_sampling=True, center_sample_radius=1.5,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='FCOSIoULoss', mode='giou', smooth=1.0, loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    roi_head=dict(
        type='CenterMaskRoIHead',
        mask_roi_extractor=dict(type='ScaleAdaptiveRoIExtractor', out_channels=128, featmap_strides=[8, 16, 32],
                                roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0, aligned=True)),
        mask_head=dict(type='SAGMaskHead', num_convs=2, roi_feat_size=14, in_channels=128, conv_out_channels=128,
                       loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0)),
        mask_iou_head=dict(type='CenterMaskIoUHead', num_convs=2, num_fcs=2, roi_feat_size=14, in_channels=128,
                           conv_out_channels=128, fc_out_channels=1024, area_ratio='reference',
                           loss_iou=dict(type='MSELoss', loss_weight=0.5))),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, score_thr=0.0, nms=dict(type='nms', iou_threshold=0.6), min_bbox_size=-1,
                 score_sqrt=True, clip_bbox=False, max_per_img=50),
        rcnn=dict(mask_thr_binary=0.5, postprocess='detectron2')))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
'''

PREDICT = '''
import sys

import numpy as np
import torch

import centermask_mm
from mmdet.apis import inference_detector, init_detector

config, site = sys.argv[1:]
from_elsewhere = [name for name, module in sys.modules.items() if name.startswith('centermask_mm')
                  and getattr(module, '__file__', None) and not module.__file__.startswith(site)]
assert centermask_mm.__file__.startswith(site) and not from_elsewhere, (centermask_mm.__file__, from_elsewhere)
torch.manual_seed(0)
model = init_detector(config, device='cpu', palette='random')  # no dataset to read a palette from
image = np.random.RandomState(0).randint(0, 256, (64, 64, 3), dtype=np.uint8)
pred = inference_detector(model, image).pred_instances
print('MODEL', type(model).__name__, centermask_mm.__version__)
print('FIELDS', ','.join(sorted(pred.keys())))
print('DETECTIONS', len(pred), tuple(pred.masks.shape[1:]))
'''

#: what the wheel is built from (the rest of the repository is not packaged)
SOURCES = ('setup.py', 'README.md', 'centermask_mm')


def run(args, **kwargs):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=240, **kwargs)
    assert proc.returncode == 0, (args, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout


def test_wheel_installs_and_predicts_from_a_config_file(tmp_path):
    src = tmp_path / 'src'  # a copy, so that the build writes its build/ and egg-info outside the repository
    for name in SOURCES:
        if osp.isdir(osp.join(REPO_ROOT, name)):
            shutil.copytree(osp.join(REPO_ROOT, name), src / name,
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info'))
        elif osp.exists(osp.join(REPO_ROOT, name)):
            src.mkdir(exist_ok=True)
            shutil.copy(osp.join(REPO_ROOT, name), src / name)
    dist, site = tmp_path / 'dist', tmp_path / 'site'
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '--no-index', '-w',
         str(dist), str(src)])
    wheels = list(dist.glob('centermask_mm-*.whl'))
    assert len(wheels) == 1, wheels
    run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--target', str(site),
         str(wheels[0])])
    assert (site / 'centermask_mm' / '__init__.py').exists() and not (site / 'tools').exists()
    assert not (site / 'tests').exists() and not (site / 'configs').exists()

    work = tmp_path / 'elsewhere'  # the working directory: neither the repository nor the wheel's folder
    work.mkdir()
    config, script = work / 'centermask-lite_tiny.py', work / 'predict.py'
    config.write_text(textwrap.dedent(CONFIG))
    script.write_text(textwrap.dedent(PREDICT))
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    env['PYTHONPATH'] = str(site)  # the venv's site-packages still give torch, mmcv, mmdet
    out = run([sys.executable, str(script), str(config), str(site) + os.sep], cwd=work, env=env)
    lines = dict(line.split(' ', 1) for line in out.splitlines() if line.split(' ', 1)[0] in
                 ('MODEL', 'FIELDS', 'DETECTIONS'))
    assert lines['MODEL'].startswith('CenterMask '), out
    assert set(lines['FIELDS'].split(',')) >= {'bboxes', 'labels', 'masks', 'scores'}, out
    count, mask_shape = lines['DETECTIONS'].split(' ', 1)
    assert int(count) > 0 and mask_shape == '(64, 64)', out
