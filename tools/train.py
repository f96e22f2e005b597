"""Train a model: mmdet's tools/train.py with centermask_mm loaded (same flags).
With ``--launcher pytorch`` and no CUDA device it runs distributed on CPU with gloo: it adds
``--cfg-options runner_type=CPUDistributedRunner`` (centermask_mm.engine.CPUDistributedRunner) unless the config or
the command line choose a runner_type.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
"""
import sys

from centermask_mm.utils.mmdet_tools import cpu_distributed_args, run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('train.py', cpu_distributed_args(sys.argv[1:]))
