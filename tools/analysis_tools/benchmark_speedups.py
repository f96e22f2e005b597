"""How much the inference speed-ups (--fuse-conv-bn, --channels-last of tools/test.py) save, per model, in one run.

    python tools/analysis_tools/benchmark_speedups.py [--models NAME ...] [--device cpu|cuda] [--size H W]
        [--repeats R] [--precision fp32|amp|fp16] [--no-fuse-conv-bn] [--no-channels-last] [--cuda-graph]
        [--threads T] [--out F]

Each model of compare_models' zoo is built with random weights and copied; the copy gets
centermask_mm.engine.speed_up_for_inference. Both are timed round-robin (batch 1, trained-like regime; see
docs/benchmarks.md): the median ms of each and the median (min-max) of the per-round ratio sped-up / as built.
"""
import argparse
import json

import torch

# model_comparison.py of this folder: Python puts a script's own directory first on sys.path
from model_comparison import MODEL_ZOO, PRECISIONS, compare_speedups

DEFAULT = ['CenterMask R-50', 'CenterMask V2-39', 'CenterMask-Lite V-19', 'Mask R-CNN R-50']


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=DEFAULT, choices=list(MODEL_ZOO), metavar='NAME')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--size', nargs=2, type=int, default=[800, 1216], metavar=('H', 'W'))
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--precision', default='fp32', choices=PRECISIONS)
    parser.add_argument('--no-fuse-conv-bn', action='store_true')
    parser.add_argument('--no-channels-last', action='store_true')
    parser.add_argument('--cuda-graph', action='store_true',
                        help='also replay backbone, neck and dense head from CUDA graphs (GPU only)')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (torch.set_num_threads)')
    parser.add_argument('--out', default=None, help='JSON file for the results')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = compare_speedups(args.models, args.device, args.size[0], args.size[1], args.warmup, args.repeats,
                               precision=args.precision, fuse_conv_bn=not args.no_fuse_conv_bn,
                               channels_last=not args.no_channels_last, cuda_graph=args.cuda_graph)
    speedups = [name for name, on in (('fuse_conv_bn', not args.no_fuse_conv_bn),
                                       ('channels_last', not args.no_channels_last),
                                       ('cuda_graph', args.cuda_graph)) if on]
    print(f'\nsped up = {"+".join(speedups) or "nothing"}')
    print(f'\n{args.device} ({torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"}, '
          f'{torch.get_num_threads()} threads), {args.precision}, {args.size[0]}x{args.size[1]}, batch 1, '
          f'median of {args.repeats} rounds\n')
    print('| model | as built ms | sped up ms | ratio (per round) | detections | sorted-score diff | identical |')
    print('|---|---|---|---|---|---|---|')
    for name, r in results.items():
        if 'error' in r:
            print(f'| {name} | FAILED: {r["error"]} | | | | | |')
            continue
        ratio = r['ratio']
        print(f'| {name} | {r["as_built"]["median_ms"]:.1f} | {r["sped_up"]["median_ms"]:.1f} | '
              f'{ratio["median"]:.2f} ({ratio["min"]:.2f}-{ratio["max"]:.2f}) | {r["detections"][0]} | '
              f'{r["max_sorted_score_diff"]:.1e} | {"yes" if r["identical_outputs"] else "no"} |')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(device=args.device, size=args.size, precision=args.precision, speedups=speedups,
                           results=results), f,
                      indent=1)


if __name__ == '__main__':
    main()
