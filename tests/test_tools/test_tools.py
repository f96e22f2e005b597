"""Each tool's entry point on a tiny toy run (2 iterations, 96-px images)."""
import glob
import os
import os.path as osp
import shutil
import subprocess

import pytest

from tests.helpers import REPO_ROOT, tiny_toy_config, run_python

CONFIG = '''
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
model = dict(test_cfg=dict(rpn=dict(score_thr=0.0)))  # an untrained model still outputs boxes to evaluate
'''


run = run_python  # a tool of this repository, from its root: output, asserting success


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('tools')
    config = tmp / 'toy_tiny.py'
    config.write_text(tiny_toy_config(tmp / 'toy', extra=CONFIG))
    work_dir = tmp / 'work'
    log = run('tools/train.py', str(config), '--work-dir', str(work_dir))
    assert 'coco/segm_mAP' in log
    return config, work_dir, work_dir / 'iter_2.pth'


def test_train_writes_checkpoint_and_resume_flag(trained, tmp_path):
    config, work_dir, checkpoint = trained
    assert checkpoint.exists()
    work_dir = shutil.copytree(work_dir, tmp_path / 'work')  # resume in a copy: the other tests use iter_2.pth
    log = run('tools/train.py', str(config), '--work-dir', str(work_dir), '--resume',
              '--cfg-options', 'train_cfg.max_iters=3', 'train_cfg.val_interval=3')
    assert 'resumed epoch: 0, iter: 2' in log
    assert (work_dir / 'iter_3.pth').exists()


def test_test_tool_evaluates_and_dumps(trained, tmp_path):
    config, _, checkpoint = trained
    out = tmp_path / 'results.pkl'
    log = run('tools/test.py', str(config), str(checkpoint), '--work-dir', str(tmp_path), '--out', str(out))
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log
    assert out.exists()


def test_test_tool_help_lists_the_speedup_flags_and_mmdets():
    log = run('tools/test.py', '--help')
    assert '--fuse-conv-bn' in log and '--channels-last' in log  # ours
    assert '--show-dir' in log and '--cfg-options' in log  # mmdet's


def mask_branch_flops_per_roi(width=128, num_convs=2, num_classes=3, fc_width=1024, roi_size=14):
    """Multiply-accumulates of the mask branch for one RoI (mmengine's FLOP convention: one per multiply-accumulate
    of a convolution or linear layer, bias and element-wise operations not counted), from the layers of ref §4.1
    (SAG-Mask) and §6 (MaskIoU head) with CenterMask-Lite's widths (ref §7.1: FPN 128, 2 convs x 128 in each head)
    and the toy dataset's 3 classes."""
    def conv(c_in, c_out, kernel, out_side):  # every output pixel of every output channel: kernel^2 * c_in
        return kernel * kernel * c_in * c_out * out_side * out_side
    side, mask_side = roi_size, 2 * roi_size
    mask_head = (num_convs * conv(width, width, 3, side)  # 3x3 convs on the 14x14 RoI features
                 + conv(2, 1, 3, side)  # SAM: 3x3 conv of the mean and max maps to one
                 + width * width * 2 * 2 * side * side  # 2x2 stride-2 transposed conv: each input pixel feeds 2x2
                 + conv(width, num_classes, 1, mask_side))  # 1x1 logits per class at 28x28
    mask_iou_head = (conv(width + 1, width, 3, side)  # RoI features + the max-pooled mask probability
                     + (num_convs - 2) * conv(width, width, 3, side)
                     + conv(width, width, 3, side // 2)  # the last conv has stride 2: 14 -> 7
                     + width * (side // 2) ** 2 * fc_width + fc_width * fc_width + fc_width * num_classes)
    return mask_head + mask_iou_head


def test_get_flops_counts_the_mask_branch(trained):
    """The tool's total with the mask branch exceeds the one without it by exactly the mask and MaskIoU heads'
    multiply-accumulates for the RoIs it fed: the 50 test detections of ref §4.5 (an untrained model at score
    threshold 0 fills them)."""
    import re
    config, _, _ = trained
    log = run('tools/analysis_tools/get_flops.py', str(config), '--num-images', '1')
    assert 'Flops:' in log and 'Params:' in log and 'Flops without the mask branch:' in log
    found = re.search(r'Exact flops per image \(mean over 1 images\): (\d+) with the mask branch, (\d+) without, '
                      r'(-?\d+) in the mask branch on ([\d.]+) RoIs', log)
    assert found, log[-3000:]
    with_mask, without, branch, rois = int(found[1]), int(found[2]), int(found[3]), float(found[4])
    assert rois == 50
    assert with_mask > without > 0 and branch == with_mask - without
    assert branch == 50 * mask_branch_flops_per_roi()


def test_benchmark_runs_on_cpu(trained, tmp_path):
    config, _, checkpoint = trained
    log = run('tools/analysis_tools/benchmark.py', str(config), '--checkpoint', str(checkpoint), '--task',
              'inference', '--device', 'cpu', '--max-iter', '2', '--num-warmup', '1', '--log-interval', '1',
              '--work-dir', str(tmp_path))
    assert 'ms/img (cpu)' in log


def test_browse_dataset_writes_images(trained, tmp_path):
    config, _, _ = trained
    run('tools/analysis_tools/browse_dataset.py', str(config), '--output-dir', str(tmp_path), '--not-show')
    assert len(glob.glob(osp.join(tmp_path, '*.png'))) >= 1



@pytest.mark.parametrize('script, args, extra', [
    ('dist_train.sh', ['CFG.py', '2'], ['--amp']),
    ('dist_test.sh', ['CFG.py', 'CKPT.pth', '2'], ['--out', 'r.pkl']),
])
def test_dist_scripts_call_torchrun_with_the_multi_node_variables(tmp_path, script, args, extra):
    """The multi-node variables reach torchrun (a real 2-process CPU run: tests/test_reliability)."""
    fake_python = tmp_path / 'python'
    fake_python.write_text('#!/usr/bin/env bash\necho "$@"\n')
    fake_python.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake_python), NNODES='2', NODE_RANK='1', MASTER_ADDR='10.1.2.3', PORT='29999')
    proc = subprocess.run(['bash', f'tools/{script}', *args, *extra], cwd=REPO_ROOT, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()
    assert words[:2] == ['-m', 'torch.distributed.run']
    for expected in ('--nnodes=2', '--node_rank=1', '--master_addr=10.1.2.3', '--nproc_per_node=2',
                     '--master_port=29999', '--launcher', 'pytorch'):
        assert expected in words
    tool = 'tools/train.py' if script == 'dist_train.sh' else 'tools/test.py'
    position = next(i for i, w in enumerate(words) if w.endswith(tool))
    assert words[position + 1:position + len(args)] == args[:-1]  # config (and checkpoint) follow the tool
    assert words[-len(extra):] == extra


def test_test_tool_on_a_converted_published_checkpoint(tmp_path):
    """A centermask2-layout CenterMask-Lite checkpoint (random values, 3 classes) converted with the CLI and evaluated
    end to end by tools/test.py with CocoMetric on the toy data."""
    import torch

    from tests.reference_layouts import centermask2_shapes, fill
    config = tmp_path / 'toy_tiny.py'
    config.write_text(tiny_toy_config(tmp_path / 'toy', extra=CONFIG))
    src, dst = tmp_path / 'centermask2-lite.pth', tmp_path / 'converted.pth'
    torch.save(dict(model=fill(centermask2_shapes('V-19-slim-dw-eSE', lite=True, num_classes=3)), iteration=1), src)
    log = run('tools/model_converters/centermask2mmdet.py', str(src), str(dst), '--config', str(config))
    assert 'every parameter and buffer of the model is covered' in log
    log = run('tools/test.py', str(config), str(dst), '--work-dir', str(tmp_path))
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log
    assert 'do not match exactly' not in log and 'missing keys' not in log


def test_compare_models_runs_and_writes_json(tmp_path):
    import json
    import statistics
    out = tmp_path / 'bench.json'
    log = run('tools/analysis_tools/compare_models.py', '--models', 'CenterMask-Lite V-19-slim-dw', 'Mask R-CNN R-50',
              '--size', '128', '160', '--warmup', '0', '--repeats', '2', '--no-train', '--out', str(out),
              timeout=600)  # minutes on a busy 2-core machine
    assert '**trained-like regime**' in log and '| Mask R-CNN R-50 |' in log
    results = json.loads(out.read_text())['results']
    lite, base = results['CenterMask-Lite V-19-slim-dw'], results['Mask R-CNN R-50']
    assert lite['aten_calls'] > 0 and lite['trained']['batch1']['median_ms'] > 0
    assert lite['predict_gflops'] > 0 and f'| {lite["predict_gflops"]:.0f} | {lite["aten_calls"]} |' in log
    assert lite['worst']['detections'] == 50 and base['worst']['detections'] == 100
    for regime in ('worst', 'trained'):  # the ratio of each round, from the times of that round (round-robin)
        times, base_times = lite[regime]['batch1']['times_ms'], base[regime]['batch1']['times_ms']
        assert len(times) == len(base_times) == 2 and lite[regime]['peak_mem_mb'] >= 0
        per_round = [t / b for t, b in zip(times, base_times)]
        ratio = lite[regime]['ratio']
        assert ratio['per_round'] == per_round and ratio['median'] == statistics.median(per_round)
        assert (ratio['min'], ratio['max']) == (min(per_round), max(per_round))
        assert base[regime]['ratio']['per_round'] == [1.0, 1.0]
        assert f'| {ratio["median"]:.2f} ({ratio["min"]:.2f}-{ratio["max"]:.2f}) |' in log


def test_trained_like_regime_caps_the_nms_input():
    import torch
    from mmdet.models.layers import multiclass_nms

    from tools.analysis_tools.model_comparison import cap_nms_input
    seen = []
    boxes = torch.rand(3000, 4) * 50
    boxes[:, 2:] += boxes[:, :2]
    scores = torch.rand(3000, 81)
    import mmdet.models.layers.bbox_nms as bbox_nms
    original = bbox_nms.batched_nms
    try:
        bbox_nms.batched_nms = lambda b, s, i, cfg, class_agnostic=False: (seen.append(len(s)), original(
            b, s, i, cfg, class_agnostic))[1]
        with cap_nms_input(1000):
            dets, labels = multiclass_nms(boxes, scores, 0.0, dict(type='nms', iou_threshold=0.5), max_num=100)
    finally:
        bbox_nms.batched_nms = original
    assert seen == [1000] and len(dets) == 100  # 3000 boxes x 80 classes in, the best 1000 into NMS
