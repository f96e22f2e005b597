"""Test a checkpoint: mmdet's tools/test.py with centermask_mm loaded (same flags), plus two inference speed-ups.
With ``--launcher pytorch`` and no CUDA device it runs distributed on CPU with gloo: it adds
``--cfg-options runner_type=CPUDistributedRunner`` (centermask_mm.engine.CPUDistributedRunner) unless the config or
the command line choose a runner_type.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--show-dir DIR] [--cfg-options ...]
        [--fuse-conv-bn] [--channels-last]

--fuse-conv-bn folds BatchNorm into the convolutions (as mmdet 2.x's flag of the same name), --channels-last runs the
convolutions in channels-last memory format; both after the checkpoint is loaded, the predictions unchanged up to
float rounding (centermask_mm.engine.InferenceSpeedupHook; docs/benchmarks.md has the times).
"""
import argparse
import sys

from centermask_mm.utils.mmdet_tools import add_custom_hook, cpu_distributed_args, run_mmdet_tool


def split_speedup_flags(argv):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--fuse-conv-bn', action='store_true')
    parser.add_argument('--channels-last', action='store_true')
    return parser.parse_known_args(argv)


if __name__ == '__main__':
    speedups, mmdet_argv = split_speedup_flags(sys.argv[1:])
    if '-h' in mmdet_argv or '--help' in mmdet_argv:  # ours first, then mmdet's parser prints its flags and exits
        print(__doc__)

    def patch(tool_module):
        add_custom_hook(tool_module, dict(type='InferenceSpeedupHook', fuse_conv_bn=speedups.fuse_conv_bn,
                                          channels_last=speedups.channels_last))

    run_mmdet_tool('test.py', cpu_distributed_args(mmdet_argv),
                   patch=patch if speedups.fuse_conv_bn or speedups.channels_last else None)
