"""An ablation table from finished runs: what ``tools/analysis_tools/ablation_table.py`` collects and how.

A run is the work dir of mmdet's ``tools/train.py`` (or ``tools/test.py``) as mmengine's ``Runner`` leaves it:

* the config: the ``*.py`` the runner dumps into the work dir (the newest, if several);
* the checkpoint: the one named by the ``last_checkpoint`` file (``CheckpointHook``), else the highest
  ``iter_*.pth`` / ``epoch_*.pth`` in the work dir;
* the evaluation: the newest record holding ``coco/segm_mAP`` or ``coco/bbox_mAP`` among the runner's logs,
  ``<timestamp>/vis_data/scalars.json`` (one json line per logged step, validation metrics included) of a training,
  and ``<timestamp>/<timestamp>.json`` (one json object) of ``tools/test.py``; newest = latest timestamp folder, then
  last line. Boundary AP is ``coco/boundary_mAP`` (``CocoBoundaryMetric``), absent from plain ``CocoMetric`` runs.

Parameters and FLOPs are mmengine's ``get_model_complexity_info`` on the tensor-mode forward, as mmdet's
``tools/analysis_tools/get_flops.py`` does (one FLOP per multiply-accumulate; RoIAlign and NMS not counted);
latency is the median of ``model.test_step`` (pre-processing to pasted masks) on the CPU. Both use one fixed,
seeded input of the given size, and, unless asked otherwise, every test-time ``score_thr`` set to 0 so that each
model fills its maximum detection count and the mask branch runs on as many RoIs in every row.
"""
import copy
import datetime
import glob
import json
import os
import os.path as osp
import platform
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from .benchmark import time_calls

#: table column -> the metric key mmdet's CocoMetric (and our CocoBoundaryMetric) logs
METRIC_KEYS = OrderedDict([('mask_ap', 'coco/segm_mAP'), ('boundary_ap', 'coco/boundary_mAP'),
                           ('box_ap', 'coco/bbox_mAP')])
#: a record is an evaluation result if it holds one of these
RESULT_KEYS = ('coco/segm_mAP', 'coco/bbox_mAP')


@dataclass
class FinishedRun:
    """The files of a finished run and its logged evaluation."""
    work_dir: str
    config: str
    checkpoint: str
    metrics: Dict[str, float]
    results_file: str


@dataclass
class AblationRow:
    """One run's row: its label, APs (None where not logged), size, cost and speed."""
    label: str
    run: FinishedRun
    mask_ap: Optional[float]
    boundary_ap: Optional[float]
    box_ap: Optional[float]
    params: int
    flops: int
    latency_ms: float
    latency_range_ms: Tuple[float, float]


def find_config(work_dir: str) -> str:
    """The config the runner dumped into ``work_dir`` (the newest ``*.py``)."""
    configs = glob.glob(osp.join(work_dir, '*.py'))
    if not configs:
        raise FileNotFoundError(f'{work_dir}: no config (*.py) in the work dir: not the work dir of a tools/train.py '
                                'or tools/test.py run')
    return max(configs, key=lambda path: (osp.getmtime(path), path))


def _checkpoint_number(path: str) -> int:
    return int(re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', osp.basename(path))[1])


def find_checkpoint(work_dir: str) -> str:
    """The last checkpoint of ``work_dir``: the one named in ``last_checkpoint`` (if it, or a file of that name in
    ``work_dir``, exists), else the highest ``iter_*.pth`` / ``epoch_*.pth``."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        for candidate in (osp.join(work_dir, osp.basename(named)), named):  # a moved work dir keeps the basename
            if named and osp.isfile(candidate):
                return candidate
    checkpoints = [path for path in glob.glob(osp.join(work_dir, '*.pth'))
                   if re.fullmatch(r'(?:iter|epoch)_\d+\.pth', osp.basename(path))]
    if not checkpoints:
        raise FileNotFoundError(f'{work_dir}: no checkpoint (no last_checkpoint file naming an existing file, no '
                                'iter_*.pth or epoch_*.pth)')
    return max(checkpoints, key=_checkpoint_number)


def _records(path: str) -> List[dict]:
    """The json records of a log file: one per line (``scalars.json``), or the whole file (a test dump)."""
    with open(path) as f:
        text = f.read()
    try:
        whole = json.loads(text)
        return [whole] if isinstance(whole, dict) else []
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def find_results(work_dir: str) -> Tuple[Dict[str, float], str]:
    """``(metrics, file)`` of the newest evaluation logged in ``work_dir`` (see the module docstring)."""
    found = None
    for run_dir in sorted(d for d in glob.glob(osp.join(work_dir, '*')) if osp.isdir(d)):
        stamp = osp.basename(run_dir)
        for path in (osp.join(run_dir, 'vis_data', 'scalars.json'), osp.join(run_dir, f'{stamp}.json')):
            if not osp.isfile(path):
                continue
            for record in _records(path):
                if any(key in record for key in RESULT_KEYS):
                    found = (record, path)  # later folders, then later lines, win
    if found is None:
        raise FileNotFoundError(f'{work_dir}: no evaluation results (no record with {" or ".join(RESULT_KEYS)} in '
                                '<timestamp>/vis_data/scalars.json or <timestamp>/<timestamp>.json): validate the run '
                                '(val_interval) or evaluate its checkpoint with tools/test.py --work-dir WORK_DIR')
    record, path = found
    metrics = {key: float(value) for key, value in record.items() if key.startswith('coco/')}
    return metrics, path


def find_run(work_dir: str) -> FinishedRun:
    """Config, last checkpoint and last evaluation of a finished run; a ``FileNotFoundError`` naming ``work_dir``
    when one is missing."""
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'{work_dir}: not a directory')
    config, checkpoint = find_config(work_dir), find_checkpoint(work_dir)
    metrics, results_file = find_results(work_dir)
    return FinishedRun(work_dir, config, checkpoint, metrics, results_file)


def _set_score_thresholds(cfg, value: float):
    if isinstance(cfg, dict):
        for key in cfg:
            if key == 'score_thr':
                cfg[key] = value
            else:
                _set_score_thresholds(cfg[key], value)


def build_trained_model(run: FinishedRun, score_thr: Optional[float] = 0.0) -> torch.nn.Module:
    """The model of ``run``'s config with its checkpoint loaded, in eval mode on the CPU; every test-time
    ``score_thr`` set to ``score_thr`` (None: as configured)."""
    from mmdet.registry import MODELS
    from mmengine.runner import load_checkpoint
    cfg = Config.fromfile(run.config)
    model_cfg = copy.deepcopy(cfg.model)
    if score_thr is not None:
        _set_score_thresholds(model_cfg.get('test_cfg'), score_thr)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = MODELS.build(model_cfg)
        load_checkpoint(model, run.checkpoint, map_location='cpu', logger='silent')
    return model.eval()


def fixed_input(height: int, width: int, seed: int = 0) -> dict:
    """A ``test_step`` batch of one seeded random uint8 image of ``height x width``."""
    from mmdet.structures import DetDataSample
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    sample = DetDataSample(metainfo=dict(img_id=0, img_shape=(height, width), ori_shape=(height, width),
                                         scale_factor=(1.0, 1.0)))
    return dict(inputs=[image], data_samples=[sample])


class _TensorMode(torch.nn.Module):
    """``model``'s tensor-mode forward on fixed data samples (what mmdet's get_flops makes with
    ``partial(model.forward, data_samples=...)``), as a module of its own instead of a patched instance."""

    def __init__(self, model: torch.nn.Module, data_samples):
        super().__init__()
        self.model, self.data_samples = model, data_samples

    def forward(self, inputs):
        return self.model(inputs, self.data_samples, mode='tensor')


def params_and_flops(model: torch.nn.Module, data: dict) -> Tuple[int, int]:
    """Parameters and FLOPs of ``model`` on ``data`` by mmengine's ``get_model_complexity_info``, the way mmdet's
    get_flops.py calls it."""
    from mmengine.analysis import get_model_complexity_info
    with torch.no_grad():
        inputs = model.data_preprocessor(copy.copy(data), False)
        info = get_model_complexity_info(_TensorMode(model, inputs['data_samples']), inputs=inputs['inputs'],
                                         show_table=False, show_arch=False)
    return int(info['params']), int(info['flops'])


def cpu_latency(model: torch.nn.Module, data: dict, repeats: int, warmup: int = 1) -> Dict[str, float]:
    """Median, min and max ms of ``repeats`` timed ``model.test_step(data)`` on the CPU after ``warmup`` untimed
    ones."""
    def predict():
        with torch.no_grad():
            model.test_step(data)

    return time_calls(predict, 'cpu', warmup, repeats)


def collect(work_dirs: Sequence[str], input_size: Tuple[int, int] = (320, 320), repeats: int = 10,
            threads: int = 1, labels: Optional[Sequence[str]] = None, score_thr: Optional[float] = 0.0,
            warmup: int = 1) -> List[AblationRow]:
    """A row per work dir. Every run is located first (a missing config, checkpoint or result fails before any
    measurement); then each model is loaded and measured with ``threads`` CPU threads."""
    if labels is not None and len(labels) != len(work_dirs):
        raise ValueError(f'{len(labels)} labels for {len(work_dirs)} work dirs')
    runs = [find_run(work_dir) for work_dir in work_dirs]
    labels = labels or [osp.basename(osp.normpath(work_dir)) for work_dir in work_dirs]
    height, width = input_size
    data = fixed_input(height, width)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        for label, run in zip(labels, runs):
            model = build_trained_model(run, score_thr)
            params, flops = params_and_flops(model, data)
            latency = cpu_latency(model, data, repeats, warmup)
            aps = {column: run.metrics.get(key) for column, key in METRIC_KEYS.items()}
            rows.append(AblationRow(label, run, params=params, flops=flops, latency_ms=latency['median_ms'],
                                    latency_range_ms=(latency['min_ms'], latency['max_ms']), **aps))
    finally:
        torch.set_num_threads(old_threads)
    return rows


def environment_line(command: str, threads: int, input_size: Tuple[int, int], repeats: int,
                     score_thr: Optional[float]) -> str:
    """The header of a table: date, machine, torch, the measurement settings and the exact command."""
    thr = 'as configured' if score_thr is None else f'every test-time score_thr = {score_thr:g}'
    return (f'Made {datetime.date.today().isoformat()} on {platform.platform()} ({platform.machine()}, '
            f'{os.cpu_count()} CPUs), torch {torch.__version__}; latency: median of {repeats} CPU predicts '
            f'(model.test_step, batch 1) of a {input_size[0]}x{input_size[1]} input with {threads} thread(s), '
            f'FLOPs on the same input ({thr}); command: `{command}`')


def _shown(path: str) -> str:
    """``path`` relative to the working directory when under it (a table in docs/ names ``work_dirs/...``)."""
    relative = osp.relpath(path)
    return path if relative.startswith('..') else relative


def _ap(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.3f}'


def markdown_table(rows: Sequence[AblationRow], header: str) -> str:
    """``header``, the table (a row per run) and where each row's numbers come from."""
    from mmengine.analysis.print_helper import _format_size
    lines = [header, '',
             '| Run | mask AP | Boundary AP | box AP | Params | FLOPs | CPU latency, ms (min-max) | Checkpoint |',
             '|---|---|---|---|---|---|---|---|']
    for row in rows:
        low, high = row.latency_range_ms
        lines.append(f'| {row.label} | {_ap(row.mask_ap)} | {_ap(row.boundary_ap)} | {_ap(row.box_ap)} | '
                     f'{row.params:,} | {_format_size(row.flops)} | {row.latency_ms:.1f} ({low:.1f}-{high:.1f}) | '
                     f'{osp.basename(row.run.checkpoint)} |')
    lines.append('')
    for row in rows:
        run = row.run
        lines.append(f'- {row.label}: config `{_shown(run.config)}`, checkpoint `{_shown(run.checkpoint)}`, results '
                     f'`{_shown(run.results_file)}`')
    return '\n'.join(lines) + '\n'


def plot_speed_accuracy(rows: Sequence[AblationRow], path: str, title: str = '') -> None:
    """A PNG of mask AP against CPU latency, one labelled point per run (runs without mask AP left out)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for row in rows:
        if row.mask_ap is None:
            continue
        ax.scatter(row.latency_ms, row.mask_ap)
        ax.annotate(row.label, (row.latency_ms, row.mask_ap), textcoords='offset points', xytext=(4, 4),
                    fontsize=8)
    ax.set_xlabel('CPU latency (ms, median)')
    ax.set_ylabel('mask AP')
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
