"""Side-by-side speed of CenterMask and mmdet's instance-segmentation models in one process (a benchmark, not a test).

    python tools/analysis_tools/compare_models.py [--device cpu|cuda] [--precision fp32|amp|fp16] [--size H W]
        [--fuse-conv-bn] [--channels-last] [--cuda-graph]
        [--batch N] [--repeats R] [--models NAME ...] [--no-train] [--no-flops] [--cudnn-benchmark] [--threads T]
        [--out docs/benchmarks.json]

All models are built first, from their configs with random weights. For each: parameters, FLOPs (mmengine's
analysis of the tensor-mode forward, the mask branch included, where a head has a tensor mode; and, for every model,
torch's FlopCounterMode over one batch-1 trained-like test_step, halved to mmengine's 1 multiply-add = 1 FLOP), aten
operator calls and sync-like ops of one predict. Then in two regimes (worst
case: score thresholds 0, not run for SOLOv2, which would build tens of GB of masks; trained-like: class-aware NMS
fed the 1000 best candidates of an image, SOLOv2 masks built for at most 1000 candidates): peak memory and
detections from one untimed call per model, the end-to-end ``test_step`` at batch 1 and batch N timed round-robin
(a warm-up of every model, then --repeats rounds of one call per model; median and min-max), the split into
pre-processing / backbone+neck / heads+post-processing; last, model by model, the training step (forward, backward,
SGD step, batch 2). Writes the JSON and prints markdown tables with ratios to Mask R-CNN R-50: the median (min-max) of
the per-round ratios (see docs/benchmarks.md).
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys

import mmcv
import mmdet
import torch

import centermask_mm

# model_comparison.py of this folder: Python puts a script's own directory first on sys.path
from model_comparison import MODEL_ZOO, PRECISIONS, compare, markdown


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--size', nargs=2, type=int, default=[800, 1216], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds before the timed ones')
    parser.add_argument('--repeats', type=int, default=3, help='timed rounds (one call per model each)')
    parser.add_argument('--nms-input', type=int, default=1000,
                        help="trained-like: candidates per image into NMS and into SOLOv2's mask building")
    parser.add_argument('--models', nargs='+', default=list(MODEL_ZOO), choices=list(MODEL_ZOO), metavar='NAME',
                        help='default: all of them (see model_comparison.py in this folder); SOLOv2 R-50 runs '
                        'the trained-like regime only')
    parser.add_argument('--precision', default='fp32', choices=PRECISIONS,
                        help='inference precision: amp = autocast float16 (mmengine TestLoop fp16=True), '
                        'fp16 = half weights and input')
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help='every model with BatchNorm folded into its convolutions (inference)')
    parser.add_argument('--channels-last', action='store_true',
                        help='every model with channels-last convolutions (inference; mmcv ops fed NCHW)')
    parser.add_argument('--cuda-graph', action='store_true',
                        help='every model with backbone, neck and dense head replayed from CUDA graphs (GPU only)')
    parser.add_argument('--no-train', action='store_true', help='skip the training step')
    parser.add_argument('--no-flops', action='store_true', help='skip both FLOP counts (device-independent, slow)')
    parser.add_argument('--cudnn-benchmark', action='store_true',
                        help='torch.backends.cudnn.benchmark = True (env_cfg cudnn_benchmark in mmengine configs)')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (torch.set_num_threads)')
    parser.add_argument('--out', default='docs/benchmarks.json')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    machine = dict(device=args.device, cpu_threads=torch.get_num_threads(), cpu=platform.processor() or
                   platform.machine(), cores=os.cpu_count(), torch=torch.__version__,
                   gpu=torch.cuda.get_device_name() if args.device.startswith('cuda') else None,
                   cuda=torch.version.cuda, mmcv=mmcv.__version__, mmdet=mmdet.__version__,
                   centermask_mm=centermask_mm.__version__, input=f'{args.size[0]}x{args.size[1]}',
                   batch=args.batch, repeats=args.repeats, nms_input=args.nms_input, precision=args.precision,
                   fuse_conv_bn=args.fuse_conv_bn, channels_last=args.channels_last, cuda_graph=args.cuda_graph,
                   cudnn_benchmark=args.cudnn_benchmark)
    print(f'machine: {machine}')
    if osp.dirname(args.out):
        os.makedirs(osp.dirname(args.out), exist_ok=True)

    def save(results):
        with open(args.out, 'w') as f:
            json.dump(dict(machine=machine, results=results), f, indent=1)

    results = compare(args.models, args.device, args.size[0], args.size[1], args.batch, args.warmup, args.repeats,
                      args.nms_input, train=not args.no_train, flops=not args.no_flops, precision=args.precision,
                      fuse_conv_bn=args.fuse_conv_bn, channels_last=args.channels_last, cuda_graph=args.cuda_graph,
                      on_result=save)
    print(markdown(results, args.batch))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    sys.exit(main())
