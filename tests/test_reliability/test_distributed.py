"""Distributed data parallel on CPU: tools/dist_train.sh and tools/dist_test.sh with 2 processes (torchrun + gloo)."""
import contextlib
import copy
import io
import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from centermask_mm.datasets.toy_shapes import generate_toy_shapes
from tests.helpers import REPO_ROOT, tiny_toy_config

# 4 train images, batch 2 per process: each of the 2 processes sees different images at every iteration.
# 3 val images: the distributed sampler pads rank 1 with a repeated image, which the result merge must drop.
# The backbone asks for SyncBN, which has no CPU implementation: it must become BN with a warning.
CONFIG = '''
custom_imports = dict(imports=['centermask_mm', 'rank_dump_hook'], allow_failed_imports=False)
train_cfg = dict(max_iters=2, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
custom_hooks = [dict(type='RankDumpHook')]
model = dict(test_cfg=dict(rpn=dict(score_thr=0.0)), backbone=dict(norm_cfg=dict(type='SyncBN')))
'''

# Imported by the training processes: saves each rank's parameters, the images it trained on and its norm types.
HOOK = '''
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch.nn.modules.batchnorm import _BatchNorm


@HOOKS.register_module()
class RankDumpHook(Hook):
    def _dump(self, runner, tag, img_ids=()):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        torch.save(dict(params={n: p.detach().clone() for n, p in model.named_parameters()},
                        img_ids=list(img_ids), wrapper=type(runner.model).__name__,
                        norms=sorted({type(m).__name__ for m in model.modules() if isinstance(m, _BatchNorm)})),
                   f'{runner.work_dir}/rank{get_rank()}_{tag}.pth')

    def before_train(self, runner):
        self._dump(runner, 'init')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._dump(runner, f'iter{runner.iter + 1}', [s.img_id for s in data_batch['data_samples']])
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(args, tmp, timeout=240):
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               CUDA_VISIBLE_DEVICES='', PYTHONPATH=os.pathsep.join(
                   [str(tmp), REPO_ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    proc = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=timeout)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    return log


def load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def metrics(log):
    line = [ln for ln in log.splitlines() if 'coco/bbox_mAP:' in ln][-1]
    return {k: float(v) for k, v in re.findall(r'(coco/\w+): (-?[\d.]+)', line)}


@pytest.fixture(scope='module')
def ddp_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ddp')
    generate_toy_shapes(str(tmp / 'toy'), num_train=4, num_val=3, img_size=96, seed=0)  # once, before the ranks
    (tmp / 'rank_dump_hook.py').write_text(HOOK)
    config = tmp / 'toy_ddp.py'
    config.write_text(tiny_toy_config(tmp / 'toy', num_val=3, extra=CONFIG))
    work = tmp / 'work'
    log = run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(work)], tmp)
    return tmp, config, work, log


@pytest.mark.slow
def test_two_process_cpu_training_keeps_ranks_identical(ddp_run):
    _, _, work, log = ddp_run
    assert "distributed backend 'nccl' replaced with gloo" in log
    assert 'SyncBN layers reverted to BatchNorm' in log
    assert (work / 'iter_2.pth').exists()
    init = [load(work / f'rank{r}_init.pth') for r in (0, 1)]
    for dump in init:
        assert dump['wrapper'] == 'MMDistributedDataParallel'
        assert dump['norms'] == ['_BatchNormXd']  # the SyncBN of the config, reverted on CPU
    for it in (1, 2):
        rank0, rank1 = (load(work / f'rank{r}_iter{it}.pth') for r in (0, 1))
        assert rank0['img_ids'] and rank1['img_ids'] and not set(rank0['img_ids']) & set(rank1['img_ids'])
        assert rank0['params'].keys() == rank1['params'].keys()
        for name, value in rank0['params'].items():
            assert torch.equal(value, rank1['params'][name]), f'{name} differs between the ranks after iter {it}'
    changed = [n for n, v in load(work / 'rank0_iter2.pth')['params'].items()
               if not torch.equal(v, init[0]['params'][n])]
    assert len(changed) > 0.9 * len(init[0]['params'])  # the steps did train (AdamW moves every trainable weight)


def coco_ap(gt_file, results):
    """pycocotools' mAP (IoU 0.50:0.95, all areas) of COCO-format ``results`` against ``gt_file``: (bbox, segm)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        aps = []
        for kind in ('bbox', 'segm'):
            evaluation = COCOeval(gt, gt.loadRes(copy.deepcopy(results[kind])), kind)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
            aps.append(evaluation.stats[0])
    return tuple(aps)


def predictions_as_ground_truth(val_file, segm_results, out_file):
    """A val annotation file whose instances are the detections of ``segm_results`` (box and RLE mask) whose
    MaskIoU score (the score the segm evaluation ranks by) is above the median one, those with an empty mask left
    out (pycocotools gives two empty masks IoU 0); images and categories those of ``val_file``. Returns the
    instances."""
    from pycocotools import mask as mask_utils
    scores = sorted({r['score'] for r in segm_results})
    threshold = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2  # between two scores: no tie
    val = json.loads(val_file.read_text())
    annotations = [dict(id=i + 1, image_id=r['image_id'], category_id=r['category_id'], bbox=r['bbox'],
                        segmentation=r['segmentation'], area=float(mask_utils.area(r['segmentation'])), iscrowd=0)
                   for i, r in enumerate(segm_results) if r['score'] > threshold]
    annotations = [a for a in annotations if a['area'] > 0]
    out_file.write_text(json.dumps(dict(images=val['images'], categories=val['categories'],
                                        annotations=annotations)))
    return annotations


def match_results(got, expected, kind):
    """Pair each result of ``expected`` with one of ``got``: same image and category, score within 1e-5, box within
    1e-3 px, and (segm) the same mask pixels, decoded from the RLEs. (Near-tied scores may come in another order, so
    the lists are matched, not zipped.)"""
    from pycocotools import mask as mask_utils
    free = list(range(len(got)))
    for r in expected:
        mask = mask_utils.decode(r['segmentation']) if kind == 'segm' else None
        for j in free:
            g = got[j]
            if (g['image_id'], g['category_id']) == (r['image_id'], r['category_id']) and \
                    abs(g['score'] - r['score']) <= 1e-5 and np.abs(np.subtract(g['bbox'], r['bbox'])).max() <= 1e-3 \
                    and (mask is None or np.array_equal(mask_utils.decode(g['segmentation']), mask)):
                free.remove(j)
                break
        else:
            raise AssertionError(f'{kind} result {r} has no counterpart')


@pytest.mark.slow
def test_two_process_cpu_evaluation_merges_to_the_single_process_result(ddp_run):
    """``dist_test.sh`` with 2 processes gives the single-process ``tools/test.py`` results, each with the same mask
    pixels, and the same AP. After 2 training iterations the AP against the toy ground truth is about 0, which a
    dropped or duplicated image hardly changes; so the distributed run is evaluated against a ground truth made of
    the single-process predictions themselves (half of them, by MaskIoU score), where pycocotools gives the
    single-process results an AP well above 0 (each instance found by its own prediction; the lower-scored
    predictions and, for the boxes, the other ranking by box score keep it below 1). A dropped, duplicated or
    altered image or mask in the merged results changes it (dropping one of the 3 images costs about a third)."""
    tmp, config, work, _ = ddp_run
    checkpoint = str(work / 'iter_2.pth')
    val_file, gt_file = tmp / 'toy/annotations/instances_val.json', tmp / 'predictions_as_gt.json'

    def test_run(mode, *cfg_options):
        prefix = tmp / mode / 'results'
        options = ['--work-dir', str(tmp / mode), '--cfg-options', f'test_evaluator.outfile_prefix={prefix}',
                   *cfg_options]
        if mode == 'single':
            log = run([sys.executable, 'tools/test.py', str(config), checkpoint, *options], tmp)
        else:
            log = run(['bash', 'tools/dist_test.sh', str(config), checkpoint, '2', *options], tmp)
            assert 'replaced with gloo' in log
        return metrics(log), {kind: json.loads((tmp / mode / f'results.{kind}.json').read_text())
                              for kind in ('bbox', 'segm')}

    single_metrics, single = test_run('single')
    instances = predictions_as_ground_truth(val_file, single['segm'], gt_file)
    assert len({a['image_id'] for a in instances}) == 3 and len(instances) >= 30
    dist_metrics, dist = test_run('dist', f'test_evaluator.ann_file={gt_file}')

    val_ids = {img['id'] for img in json.loads(val_file.read_text())['images']}
    for kind in ('bbox', 'segm'):
        assert {r['image_id'] for r in single[kind]} == val_ids
        assert len(dist[kind]) == len(single[kind])  # every image once: rank 1's padding was dropped
        match_results(dist[kind], single[kind], kind)
    bbox_ap, segm_ap = coco_ap(gt_file, single)
    assert min(bbox_ap, segm_ap) > 0.25
    assert (dist_metrics['coco/bbox_mAP'], dist_metrics['coco/segm_mAP']) == (round(bbox_ap, 3), round(segm_ap, 3))
    # and against the toy ground truth, the merged results score what the single-process run logged
    bbox_ap, segm_ap = coco_ap(val_file, dist)
    assert (single_metrics['coco/bbox_mAP'], single_metrics['coco/segm_mAP']) == (round(bbox_ap, 3),
                                                                                  round(segm_ap, 3))
