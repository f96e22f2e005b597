"""tools/analysis_tools/ablation_table.py (centermask_mm.utils.ablation_table) on two tiny toy runs: one iteration of
CenterMask-Lite on 2 generated 96-px images each, validated; the second with a one-conv SAG-Mask head."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from centermask_mm.utils.ablation_table import find_run
from tests.helpers import REPO_ROOT, run_python, short_cpu_training, tiny_toy_config

#: an untrained model still outputs boxes to evaluate at score threshold 0
VARIANTS = {
    'sag-mask': "model = dict(test_cfg=dict(rpn=dict(score_thr=0.0)))",
    'one-conv': "model = dict(test_cfg=dict(rpn=dict(score_thr=0.0)), roi_head=dict(mask_head=dict(num_convs=1)))",
}


class KeepValMetrics(Hook):
    """The metrics the validation returned, as the runner hands them to its hooks (not read from a log)."""

    def __init__(self):
        self.metrics = None

    def after_val_epoch(self, runner, metrics=None):
        self.metrics = dict(metrics)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """{name: (work dir, validation metrics)} of the two finished runs."""
    tmp = tmp_path_factory.mktemp('ablation')
    done = {}
    for name, extra in VARIANTS.items():
        config = tmp / f'{name}.py'
        config.write_text(tiny_toy_config(tmp / 'toy', num_train=2, num_val=2, extra=extra))
        cfg = short_cpu_training(Config.fromfile(str(config)), tmp / 'work' / name, iters=1, lr=0.005,
                                 val_interval=1)
        # its own logger and visualizer (mmengine reuses an instance of the same name: the visualizer is named
        # 'visualizer' in mmdet's default runtime, the logger after the start second)
        cfg.experiment_name = cfg.visualizer.name = str(cfg.work_dir)
        runner = Runner.from_cfg(cfg)
        keep = KeepValMetrics()
        runner.register_hook(keep)
        runner.train()
        assert keep.metrics and 'coco/segm_mAP' in keep.metrics, keep.metrics
        done[name] = (tmp / 'work' / name, keep.metrics)
    return done


def table_rows(text):
    """{first cell: cells} of the markdown table rows of ``text`` (header and rule left out)."""
    rows = {}
    for line in text.splitlines():
        if line.startswith('| ') and not line.startswith('| Run |'):
            cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
            rows[cells[0]] = cells
    return rows


def evaluated_again(work_dir, copy, metrics):
    """A copy of ``work_dir`` with a later evaluation of ``metrics`` as tools/test.py dumps it
    (``<timestamp>/<timestamp>.json``)."""
    copy = shutil.copytree(work_dir, copy)
    stamp = '29991231_235959'
    (copy / stamp).mkdir()
    (copy / stamp / f'{stamp}.json').write_text(json.dumps(dict(metrics, time=0.1)))
    return copy


def test_table_and_plot_from_two_runs(runs, tmp_path):
    """A row per run with the APs of its own validation, its own model's parameters, FLOPs and latency; a third
    row, a run evaluated again with distinct APs, shows each AP in its own column."""
    out, plot = tmp_path / 'docs' / 'ablation.md', tmp_path / 'docs' / 'speed.png'
    tested = {'coco/segm_mAP': 0.25, 'coco/boundary_mAP': 0.125, 'coco/bbox_mAP': 0.5}
    runs = dict(runs, tested=(evaluated_again(runs['sag-mask'][0], tmp_path / 'tested', tested), tested))
    run_python('tools/analysis_tools/ablation_table.py', *(str(work_dir) for work_dir, _ in runs.values()),
               '--out', str(out), '--plot', str(plot), '--input-size', '96', '--repeats', '2', '--warmup', '0',
               '--threads', '1')
    text = out.read_text()
    header = text.splitlines()[0]
    assert f'torch {torch.__version__}' in header and f'{os.cpu_count()} CPUs' in header
    assert 'ablation_table.py' in header and '--repeats 2' in header and '--threads 1' in header
    rows = table_rows(text)
    assert sorted(rows) == sorted(runs)
    params = {}
    for name, (work_dir, metrics) in runs.items():
        _, mask_ap, boundary_ap, box_ap, n_params, flops, latency, checkpoint = rows[name]
        assert mask_ap == f'{metrics["coco/segm_mAP"]:.3f}' and box_ap == f'{metrics["coco/bbox_mAP"]:.3f}'
        assert boundary_ap == (f'{metrics["coco/boundary_mAP"]:.3f}' if 'coco/boundary_mAP' in metrics else '-')
        config, = glob.glob(str(work_dir / '*.py'))  # the config the runner dumped
        model = MODELS.build(Config.fromfile(config).model)
        params[name] = sum(p.numel() for p in model.parameters())
        assert int(n_params.replace(',', '')) == params[name]
        assert flops[-1] in 'KMG' and float(flops[:-1]) > 0
        assert float(latency.split()[0]) > 0 and checkpoint == 'iter_1.pth'
    assert params['one-conv'] < params['sag-mask'] == params['tested']  # each row is its own run's model
    assert rows['tested'][1:4] == ['0.250', '0.125', '0.500']
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_a_run_without_checkpoint_or_results_is_named(runs, tmp_path):
    work_dir, _ = runs['sag-mask']
    no_checkpoint = shutil.copytree(work_dir, tmp_path / 'no_checkpoint', ignore=shutil.ignore_patterns('*.pth'))
    (no_checkpoint / 'last_checkpoint').write_text(str(no_checkpoint / 'iter_1.pth'))  # names a deleted file
    with pytest.raises(FileNotFoundError, match=re.escape(f"{no_checkpoint}: no checkpoint")):
        find_run(str(no_checkpoint))
    no_results = shutil.copytree(work_dir, tmp_path / 'no_results', ignore=shutil.ignore_patterns('2*'))
    with pytest.raises(FileNotFoundError, match=re.escape(f"{no_results}: no evaluation results")):
        find_run(str(no_results))
    # the tool stops before measuring anything, naming the run
    proc = subprocess.run([sys.executable, 'tools/analysis_tools/ablation_table.py', str(work_dir), str(no_results),
                           '--out', str(tmp_path / 'table.md')], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and f'{no_results}: no evaluation results' in proc.stderr
    assert not (tmp_path / 'table.md').exists()


def test_newest_results_and_highest_checkpoint_win(runs, tmp_path):
    """A later tools/test.py evaluation (``<timestamp>/<timestamp>.json``) beats the training's validation; without
    a ``last_checkpoint`` file the highest iteration (by number, not by name) is the last checkpoint."""
    work_dir, _ = runs['sag-mask']
    stamp = '29991231_235959'
    copy = evaluated_again(work_dir, tmp_path / 'copy',
                           {'coco/bbox_mAP': 0.5, 'coco/segm_mAP': 0.25, 'coco/boundary_mAP': 0.125})
    os.remove(copy / 'last_checkpoint')
    for n in (9, 10):
        shutil.copy(copy / 'iter_1.pth', copy / f'iter_{n}.pth')
    run = find_run(str(copy))
    assert run.metrics == {'coco/bbox_mAP': 0.5, 'coco/segm_mAP': 0.25, 'coco/boundary_mAP': 0.125}
    assert run.results_file == str(copy / stamp / f'{stamp}.json')
    assert os.path.basename(run.checkpoint) == 'iter_10.pth'
    assert find_run(str(work_dir)).checkpoint.endswith('iter_1.pth')  # named by last_checkpoint
