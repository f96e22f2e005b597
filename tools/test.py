"""Test a checkpoint: mmdet's tools/test.py with centermask_mm loaded (same flags).
With ``--launcher pytorch`` and no CUDA device it runs distributed on CPU with gloo
(centermask_mm.utils.cpu_dist_runner.CPUDistributedRunner).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--show-dir DIR] [--cfg-options ...]
"""
from centermask_mm.utils.cpu_dist_runner import use_cpu_distributed_runner
from centermask_mm.utils.mmdet_tools import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('test.py', patch=use_cpu_distributed_runner)
