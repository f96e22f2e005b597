"""Benchmark inference (or the data loader / dataset): mmdet's benchmark.py with centermask_mm loaded, whose
inference task also runs on CPU (``--device cpu``; default: cuda when available).

    python tools/analysis_tools/benchmark.py CONFIG --checkpoint CKPT --task inference [--device cpu]
        [--max-iter N] [--num-warmup N] [--repeat-num N] [--fuse-conv-bn] [--cfg-options ...]
"""
import argparse
import sys

from centermask_mm.utils.benchmark import DeviceInferenceBenchmark
from centermask_mm.utils.mmdet_tools import run_mmdet_tool

if __name__ == '__main__':
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--device', default=DeviceInferenceBenchmark.device)
    known, rest = parser.parse_known_args(sys.argv[1:])
    DeviceInferenceBenchmark.device = known.device
    run_mmdet_tool('analysis_tools/benchmark.py', rest,
                   patch=lambda tool: setattr(tool, 'InferenceBenchmark', DeviceInferenceBenchmark))
