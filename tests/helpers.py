"""Shared test helpers: config paths and small detector inputs."""
import copy
import os.path as osp

from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')


def config_path(*parts):
    return osp.join(CONFIG_ROOT, *parts)


def load_config(*parts):
    return Config.fromfile(config_path(*parts))


def model_cfg(*parts):
    return copy.deepcopy(load_config(*parts).model)


LITE_TOY = ('toy', 'centermask-lite_v2-19-slim-dw_fpn_toy.py')  # V-19-slim-dw: stage outputs 112, 256, 384, 512


def apply_dotted(cfg, changes):
    """Set each ``{'dotted.key': value}`` of ``changes`` in the config dict ``cfg``; a value ``None`` removes the key."""
    for dotted, value in changes.items():
        *parents, key = dotted.split('.')
        node = cfg
        for parent in parents:
            node = node[parent]
        if value is None:
            node.pop(key)
        else:
            node[key] = value
    return cfg


def build_with(**changes):
    """Build the toy CenterMask-Lite model after applying ``changes`` ({'dotted.key': value})."""
    cfg = apply_dotted(model_cfg(*LITE_TOY), changes)
    from mmdet.registry import MODELS
    return MODELS.build(cfg)


#: lines every tiny toy training of the tests shares: the toy CenterMask-Lite config on a few generated 96-px images
TINY_TOY_BASE = '''
_base_ = '{repo}/configs/toy/centermask-lite_v2-19-slim-dw_fpn_toy.py'
data_root = '{root}/'
gen = dict(num_train={num_train}, num_val={num_val}, img_size=96, seed=0)
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root, generator=gen))
'''
TINY_TOY_VAL = '''
val_dataloader = dict(dataset=dict(data_root=data_root, generator=gen))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
'''


def tiny_toy_config(root, num_train=4, num_val=2, with_val=True, extra=''):
    """Text of a tiny toy training config (data generated under ``root`` on first use), then ``extra`` lines."""
    import textwrap
    text = TINY_TOY_BASE.format(repo=REPO_ROOT, root=root, num_train=num_train, num_val=num_val)
    return textwrap.dedent(text + (TINY_TOY_VAL if with_val else '')) + textwrap.dedent(extra)


def short_cpu_training(cfg, work_dir, iters, lr, val_interval):
    """``cfg`` (an mmengine config of any OpenMMLab task) made a few-iteration, seeded CPU run: iteration loop, no LR
    schedule, constant ``lr``, a log line per iteration, one checkpoint at the end."""
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=val_interval)
    cfg.param_scheduler = []
    cfg.optim_wrapper.optimizer.lr = lr
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=iters, by_epoch=False)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=0)
    cfg.work_dir = str(work_dir)
    return cfg


def run_python(*args, timeout=300):
    """Run ``python ARGS...`` (a tool of this repository) from the repository root; assert it succeeds; its output."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr
