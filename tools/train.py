"""Train a model: mmdet's tools/train.py with centermask_mm loaded (same flags).
With ``--launcher pytorch`` and no CUDA device it runs distributed on CPU with gloo
(centermask_mm.utils.cpu_dist_runner.CPUDistributedRunner).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
"""
from centermask_mm.utils.cpu_dist_runner import use_cpu_distributed_runner
from centermask_mm.utils.mmdet_tools import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('train.py', patch=use_cpu_distributed_runner)
