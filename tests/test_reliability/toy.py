"""The tiny toy training the reliability tests run (tests/test_tools' CONFIG: 4 generated 96-px images, batch 2),
without validation, deterministic, one log line (window 1: each iteration's own losses) per iteration."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

from tests.helpers import REPO_ROOT, tiny_toy_config

TOY_DATA = dict(num_train=4, num_val=2, img_size=96, seed=0)
CONFIG = '''
val_dataloader = None
val_cfg = None
val_evaluator = None
train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(checkpoint=dict(interval={ckpt_interval}, max_keep_ckpts={max_keep}), logger=dict(interval=1))
log_processor = dict(window_size=1)
randomness = dict(seed=0, deterministic=True)
# 4 RoIs per image (1 positive): the GT boxes alone exceed it, so the RoI sampler draws from torch's RNG every step
model = dict(train_cfg=dict(rcnn=dict(sampler=dict(num=4))))
'''


def write_config(tmp_path, name='toy.py', iters=6, ckpt_interval=2, max_keep=-1, extra=''):
    """A config file under ``tmp_path`` (data generated under ``tmp_path/toy`` on first use)."""
    path = osp.join(tmp_path, name)
    text = CONFIG.format(iters=iters, ckpt_interval=ckpt_interval, max_keep=max_keep)
    with open(path, 'w') as f:
        f.write(tiny_toy_config(osp.join(tmp_path, 'toy'), with_val=False, extra=text + textwrap.dedent(extra)))
    return path


def train_command(config, work_dir, *args):
    return [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), str(config), '--work-dir', str(work_dir),
            *args]


def subprocess_env():
    """The tools import ``centermask_mm`` and (for the kill hook) ``tests`` from this checkout."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT, os.environ.get('PYTHONPATH', '')]))


def train(config, work_dir, *args, timeout=300):
    proc = subprocess.run(train_command(config, work_dir, *args), cwd=REPO_ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def logged_train_scalars(work_dir):
    """The per-iteration records of mmengine's json scalar log (``<work_dir>/<timestamp>/vis_data/scalars.json``)."""
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(files) == 1, files
    with open(files[0]) as f:
        return [json.loads(line) for line in f if line.strip()]
